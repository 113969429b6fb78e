//! Data-frame columns as pandas holds them while concatenating: reindexing, equality, and the
//! column anndata writes from them.

use annpage_engine::data::{
    ArrayData, Categorical, Column, CompactString, DType, Nullable, NullableKind, StringNa,
};
use annpage_engine::{Error, Result};

use super::plan::Reindexer;
use super::values::{self, Obj};

/// A pandas dtype, `Void` for a column a frame does not have.
#[derive(Clone, Debug)]
pub(super) enum PType {
    Void,
    Np(DType),
    Object,
    Cat { categories: Vec<Obj>, ordered: bool },
    Masked(NullableKind, DType),
}

impl PartialEq for PType {
    /// pandas' dtype equality; unordered categoricals are equal over the same set of
    /// categories.
    fn eq(&self, other: &PType) -> bool {
        match (self, other) {
            (PType::Void, PType::Void) | (PType::Object, PType::Object) => true,
            (PType::Np(a), PType::Np(b)) => a == b,
            (PType::Masked(k, a), PType::Masked(l, b)) => k == l && a == b,
            (
                PType::Cat {
                    categories: a,
                    ordered: oa,
                },
                PType::Cat {
                    categories: b,
                    ordered: ob,
                },
            ) => {
                oa == ob
                    && a.len() == b.len()
                    && if *oa {
                        a == b
                    } else {
                        a.iter().all(|x| b.contains(x))
                    }
            }
            _ => false,
        }
    }
}

/// A column as pandas holds it: a numpy array, a numpy `object` array, a categorical or a
/// masked (nullable) array.
#[derive(Clone, Debug)]
pub(super) enum PCol {
    /// A numeric or boolean numpy array (floats may hold NaN).
    Np(ArrayData),
    /// Python objects: strings, or values pandas could not keep typed.
    Obj(Vec<Obj>),
    Cat(Categorical),
    Masked(Nullable),
}

impl PCol {
    pub(super) fn from_column(c: &Column) -> PCol {
        match c {
            Column::Array(ArrayData::String(s)) => {
                PCol::Obj(s.iter().map(|v| Obj::Str(v.clone())).collect())
            }
            Column::Array(a) => PCol::Np(a.clone()),
            Column::Categorical(c) => PCol::Cat(c.clone()),
            Column::Nullable(n) => PCol::Masked(n.clone()),
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            PCol::Np(a) => a.len(),
            PCol::Obj(o) => o.len(),
            PCol::Cat(c) => c.codes.len(),
            PCol::Masked(m) => m.mask().len(),
        }
    }

    pub(super) fn ptype(&self) -> PType {
        match self {
            PCol::Np(a) => PType::Np(a.dtype()),
            PCol::Obj(_) => PType::Object,
            PCol::Cat(c) => PType::Cat {
                categories: values::to_objects(&c.categories).into_iter().collect(),
                ordered: c.ordered,
            },
            PCol::Masked(m) => PType::Masked(m.kind(), m.values().dtype()),
        }
    }

    /// pandas' `JoinUnit.is_na`: a column that can hold missing values and is empty or all
    /// missing.
    pub(super) fn is_na(&self) -> bool {
        let all = |mut it: Box<dyn Iterator<Item = bool> + '_>| it.all(|b| b);
        match self {
            PCol::Np(ArrayData::F16(a)) => all(Box::new(a.iter().map(|v| v.is_nan()))),
            PCol::Np(ArrayData::F32(a)) => all(Box::new(a.iter().map(|v| v.is_nan()))),
            PCol::Np(ArrayData::F64(a)) => all(Box::new(a.iter().map(|v| v.is_nan()))),
            PCol::Np(_) => false,
            PCol::Obj(o) => o.iter().all(|v| matches!(v, Obj::Missing)),
            PCol::Cat(c) => c.codes.iter().all(|&c| c < 0),
            PCol::Masked(m) => m.mask().iter().all(|&b| b),
        }
    }

    /// The values as Python objects (missing values as [`Obj::Missing`]).
    pub(super) fn objects(&self) -> Vec<Obj> {
        match self {
            PCol::Np(a) => values::to_objects(a).into_iter().collect(),
            PCol::Obj(o) => o.clone(),
            PCol::Cat(c) => {
                let cats: Vec<Obj> = values::to_objects(&c.categories).into_iter().collect();
                c.codes
                    .iter()
                    .map(|&k| usize::try_from(k).map_or(Obj::Missing, |k| cats[k].clone()))
                    .collect()
            }
            PCol::Masked(m) => values::to_objects(m.values())
                .into_iter()
                .zip(m.mask())
                .map(|(v, &missing)| if missing { Obj::Missing } else { v })
                .collect(),
        }
    }

    /// The rows of `r` (pandas' `reindex`): missing rows become NaN, promoting integers to
    /// float64 and booleans to objects.
    pub(super) fn reindex(&self, r: &Reindexer) -> Result<PCol> {
        if r.keeps(self.len()) {
            return Ok(self.clone());
        }
        let map = r.new_to_old();
        let kept: Vec<usize> = map.iter().flatten().copied().collect();
        if !r.fills() {
            return Ok(match self {
                PCol::Np(a) => PCol::Np(a.select(0, &kept)),
                PCol::Obj(o) => PCol::Obj(kept.iter().map(|&i| o[i].clone()).collect()),
                PCol::Cat(c) => PCol::Cat(Categorical {
                    codes: kept.iter().map(|&i| c.codes[i]).collect(),
                    ..c.clone()
                }),
                PCol::Masked(m) => PCol::Masked(m.select(&kept)),
            });
        }
        Ok(match self {
            // anndata 0.13 makes numpy bools pandas' nullable booleans before reindexing a
            // frame with missing rows (object columns of bools cannot be written).
            PCol::Np(ArrayData::Bool(b)) => {
                let values: Vec<bool> = map.iter().map(|i| i.is_some_and(|i| b[i])).collect();
                let mask = map.iter().map(Option::is_none).collect();
                let kind = NullableKind::Boolean;
                PCol::Masked(Nullable::new(kind, ArrayData::from(values), mask)?)
            }
            PCol::Np(a) => match values::promote_for_nan(a.dtype()) {
                Some(dtype) => {
                    let f = values::cast(a, DType::F64)?;
                    let ArrayData::F64(f) = f else {
                        unreachable!("cast to f64")
                    };
                    let v: Vec<f64> = map.iter().map(|o| o.map_or(f64::NAN, |i| f[i])).collect();
                    PCol::Np(values::cast(&ArrayData::from(v), dtype)?)
                }
                None => {
                    let o = self.objects();
                    PCol::Obj(
                        map.iter()
                            .map(|i| i.map_or(Obj::Missing, |i| o[i].clone()))
                            .collect(),
                    )
                }
            },
            PCol::Obj(o) => PCol::Obj(
                map.iter()
                    .map(|i| i.map_or(Obj::Missing, |i| o[i].clone()))
                    .collect(),
            ),
            PCol::Cat(c) => PCol::Cat(Categorical {
                codes: map.iter().map(|i| i.map_or(-1, |i| c.codes[i])).collect(),
                ..c.clone()
            }),
            PCol::Masked(m) if m.mask().is_empty() => {
                // Nothing to pick from: every value is missing.
                let values = ArrayData::zeros(m.values().dtype(), &[map.len()]);
                PCol::Masked(Nullable::new(m.kind(), values, vec![true; map.len()])?)
            }
            PCol::Masked(m) => {
                let picked = m.select(&map.iter().map(|i| i.unwrap_or(0)).collect::<Vec<_>>());
                let mask = map
                    .iter()
                    .zip(picked.mask())
                    .map(|(i, &was)| i.is_none() || was)
                    .collect();
                PCol::Masked(Nullable::new(m.kind(), picked.values().clone(), mask)?)
            }
        })
    }

    /// pandas' `Series.equals`: equal dtypes and values, missing equal to missing.
    pub(super) fn equals(&self, other: &PCol) -> bool {
        if self.ptype() != other.ptype() || self.len() != other.len() {
            return false;
        }
        match (self, other) {
            (PCol::Np(a), PCol::Np(b)) => values::arrays_equal(a, b),
            _ => self.objects() == other.objects(),
        }
    }

    /// The column anndata writes: with `strings_to_categoricals` (obs and var), strings that
    /// repeat or miss values become a categorical over their natsorted values. Python objects
    /// that are not all strings, and strings with missing values elsewhere, are refused, as
    /// anndata cannot write them either.
    pub(super) fn into_column(self, strings_to_categoricals: bool) -> Result<Column> {
        let strings = |o: &[Obj]| -> Result<Column> {
            let n_str = o.iter().filter(|v| matches!(v, Obj::Str(_))).count();
            let missing = o.iter().filter(|v| matches!(v, Obj::Missing)).count();
            if n_str + missing != o.len() || (n_str == 0 && !o.is_empty()) {
                let mut kinds: Vec<&str> = o.iter().map(Obj::kind).collect();
                kinds.sort_unstable();
                kinds.dedup();
                return Err(Error::unsupported(format!(
                    "the column would hold Python objects ({}), which anndata cannot write either",
                    kinds.join(", ")
                )));
            }
            let mut uniq: Vec<&str> = o
                .iter()
                .filter_map(|v| match v {
                    Obj::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect();
            uniq.sort_unstable();
            uniq.dedup();
            if strings_to_categoricals && uniq.len() < o.len() {
                let mut cats: Vec<Obj> = uniq.iter().map(|&s| Obj::Str(s.into())).collect();
                values::natsorted(&mut cats);
                return Ok(Column::Categorical(encode(o, cats, false)?));
            }
            if missing > 0 {
                return Err(Error::unsupported(
                    "the column would hold strings with missing values, which anndata cannot write either",
                ));
            }
            Ok(Column::Array(ArrayData::from(
                o.iter()
                    .map(|v| match v {
                        Obj::Str(s) => s.clone(),
                        _ => CompactString::default(),
                    })
                    .collect::<Vec<_>>(),
            )))
        };
        match self {
            PCol::Np(a) => Ok(Column::Array(a)),
            PCol::Obj(o) => strings(&o),
            PCol::Cat(c) => Ok(Column::Categorical(c)),
            PCol::Masked(m)
                if matches!(m.kind(), NullableKind::String(_)) && strings_to_categoricals =>
            {
                // pandas infers strings from the dtype, whatever the values: converted when
                // there are fewer distinct values than rows (missing ones included).
                let objs = PCol::Masked(m.clone()).objects();
                let mut uniq: Vec<CompactString> = objs
                    .iter()
                    .filter_map(|o| match o {
                        Obj::Str(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect();
                uniq.sort_unstable();
                uniq.dedup();
                if uniq.len() >= objs.len() {
                    return Ok(Column::Nullable(m));
                }
                let mut cats: Vec<Obj> = uniq.into_iter().map(Obj::Str).collect();
                values::natsorted(&mut cats);
                Ok(Column::Categorical(encode(&objs, cats, false)?))
            }
            PCol::Masked(m) => Ok(Column::Nullable(m)),
        }
    }
}

/// Whether anndata writes the column through `strings_to_categoricals` (strings held as
/// Python objects or pandas strings): whether it is categorical on disk depends on the rows.
pub(super) fn written_as_strings(c: &PCol) -> Option<bool> {
    match c {
        PCol::Obj(_) => Some(false),
        PCol::Masked(m) if matches!(m.kind(), NullableKind::String(_)) => Some(true),
        _ => None,
    }
}

/// A column that [`PCol::into_column`] turned into a categorical, as anndata writes the same
/// strings once fewer rows are kept: the rule applied again to the values left (`nullable`:
/// pandas strings, else Python objects). Other columns are returned as they are.
pub(super) fn rewrite_strings(col: &Column, nullable: bool) -> Result<Column> {
    let Column::Categorical(c) = col else {
        return Ok(col.clone());
    };
    let ArrayData::String(cats) = &c.categories else {
        return Ok(col.clone());
    };
    let cats = cats
        .as_slice()
        .ok_or_else(|| Error::invalid("categories not contiguous"))?;
    let value = |k: i32| usize::try_from(k).ok().and_then(|k| cats.get(k));
    let pcol = if nullable {
        let values: Vec<CompactString> = c
            .codes
            .iter()
            .map(|&k| value(k).cloned().unwrap_or_default())
            .collect();
        let mask = c.codes.iter().map(|&k| value(k).is_none()).collect();
        PCol::Masked(Nullable::new(
            NullableKind::String(StringNa::Na),
            ArrayData::from(values),
            mask,
        )?)
    } else {
        PCol::Obj(
            c.codes
                .iter()
                .map(|&k| value(k).map_or(Obj::Missing, |s| Obj::Str(s.clone())))
                .collect(),
        )
    };
    pcol.into_column(true)
}

/// A categorical of `values` over `categories` (values not among them become missing).
pub(super) fn encode(values: &[Obj], categories: Vec<Obj>, ordered: bool) -> Result<Categorical> {
    // Strings are looked up by hash; other categories (few, numeric) by Python equality.
    let by_name: std::collections::HashMap<&str, i32> = categories
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match c {
            Obj::Str(s) => Some((s.as_str(), i as i32)),
            _ => None,
        })
        .collect();
    let codes = values
        .iter()
        .map(|v| match v {
            Obj::Missing => -1,
            Obj::Str(s) => by_name.get(s.as_str()).copied().unwrap_or(-1),
            _ => categories
                .iter()
                .position(|c| c == v)
                .map_or(-1, |p| p as i32),
        })
        .collect();
    let numeric = (!categories.iter().all(|c| matches!(c, Obj::Str(_)))).then(|| {
        let mut ints = categories
            .iter()
            .all(|c| matches!(c, Obj::Int(_) | Obj::Bool(_)));
        ints &= !categories.is_empty();
        if ints {
            DType::I64
        } else {
            DType::F64
        }
    });
    let categories = values::from_objects(&categories, numeric)?;
    Categorical::new(codes, categories, ordered)
}
