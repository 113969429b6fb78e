//! Data-frame columns as pandas holds them while concatenating, and pandas' rules for the dtype
//! of a concatenated column (`pd.concat` with missing columns, all-NA and empty pieces).

use annpage_engine::data::{ArrayData, Categorical, Column, DType, Nullable, NullableKind};
use annpage_engine::{Error, Result};

use super::plan::Reindexer;
use super::values::{self, Obj};

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

impl PType {
    fn is_extension(&self) -> bool {
        matches!(self, PType::Cat { .. } | PType::Masked(..))
    }

    /// numpy's dtype kind is one of `i`, `u`, `b` (masked integers and booleans too).
    fn kind_iub(&self) -> bool {
        match self {
            PType::Np(d) | PType::Masked(_, d) => d.is_integer() || *d == DType::Bool,
            _ => false,
        }
    }

    fn is_bool(&self) -> bool {
        matches!(
            self,
            PType::Np(DType::Bool) | PType::Masked(NullableKind::Boolean, _)
        )
    }
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
    fn is_na(&self) -> bool {
        let all = |mut it: Box<dyn Iterator<Item = bool> + '_>| it.all(|b| b);
        match self {
            PCol::Np(ArrayData::F32(a)) => all(Box::new(a.iter().map(|v| v.is_nan()))),
            PCol::Np(ArrayData::F64(a)) => all(Box::new(a.iter().map(|v| v.is_nan()))),
            PCol::Np(_) => false,
            PCol::Obj(o) => o.iter().all(|v| matches!(v, Obj::Missing)),
            PCol::Cat(c) => c.codes.iter().all(|&c| c < 0),
            PCol::Masked(m) => m.mask().iter().all(|&b| b),
        }
    }

    /// The values as Python objects (missing values as [`Obj::Missing`]).
    fn objects(&self) -> Vec<Obj> {
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
            PCol::Np(a) => match values::promote_for_fill(a.dtype(), f64::NAN) {
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
            PCol::Masked(m) => {
                let picked = m.select(&map.iter().map(|i| i.unwrap_or(0)).collect::<Vec<_>>());
                let mask = map
                    .iter()
                    .zip(picked.mask())
                    .map(|(i, &was)| i.is_none() || was)
                    .collect();
                if m.mask().is_empty() {
                    // Nothing to pick from: every value is missing.
                    let values = ArrayData::zeros(m.values().dtype(), &[map.len()]);
                    PCol::Masked(Nullable::new(m.kind(), values, vec![true; map.len()])?)
                } else {
                    PCol::Masked(Nullable::new(m.kind(), picked.values().clone(), mask)?)
                }
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
                let mut cats: Vec<Obj> = uniq.iter().map(|s| Obj::Str(s.to_string())).collect();
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
                        _ => String::new(),
                    })
                    .collect::<Vec<_>>(),
            )))
        };
        match self {
            PCol::Np(a) => Ok(Column::Array(a)),
            PCol::Obj(o) => strings(&o),
            PCol::Cat(c) => Ok(Column::Categorical(c)),
            PCol::Masked(m) if m.kind() == NullableKind::String && strings_to_categoricals => {
                // pandas infers strings from the dtype, whatever the values: converted when
                // there are fewer distinct values than rows (missing ones included).
                let objs = PCol::Masked(m.clone()).objects();
                let mut uniq: Vec<String> = objs
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

/// A categorical of `values` over `categories` (values not among them become missing).
fn encode(values: &[Obj], categories: Vec<Obj>, ordered: bool) -> Result<Categorical> {
    let codes = values
        .iter()
        .map(|v| {
            if matches!(v, Obj::Missing) {
                return -1;
            }
            categories
                .iter()
                .position(|c| c == v)
                .map_or(-1, |p| p as i32)
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

/// pandas' `find_common_type` of dtypes (no `Void` among them).
fn common_type(types: &[PType]) -> PType {
    let Some(first) = types.first() else {
        return PType::Object;
    };
    if types.iter().all(|t| t == first) {
        return first.clone();
    }
    if types.iter().any(|t| matches!(t, PType::Cat { .. })) {
        // Categoricals of different categories, or beside other dtypes, fall back to the
        // dtype of their categories.
        let unwrapped: Vec<PType> = types
            .iter()
            .map(|t| match t {
                PType::Cat { categories, .. } => category_type(categories),
                other => other.clone(),
            })
            .collect();
        return common_type(&unwrapped);
    }
    if types.iter().any(|t| matches!(t, PType::Masked(..))) {
        if types
            .iter()
            .any(|t| matches!(t, PType::Masked(NullableKind::String, _) | PType::Object))
        {
            return PType::Object;
        }
        let unwrapped: Vec<PType> = types
            .iter()
            .map(|t| match t {
                PType::Masked(_, d) => PType::Np(*d),
                other => other.clone(),
            })
            .collect();
        return match common_type(&unwrapped) {
            PType::Np(DType::Bool) => PType::Masked(NullableKind::Boolean, DType::Bool),
            PType::Np(d) if d.is_integer() => PType::Masked(NullableKind::Integer, d),
            // pandas would make a nullable float (Float64), which anndata cannot write.
            _ => PType::Object,
        };
    }
    let dtypes: Vec<DType> = types
        .iter()
        .filter_map(|t| match t {
            PType::Np(d) => Some(*d),
            _ => None,
        })
        .collect();
    if dtypes.len() != types.len() {
        return PType::Object;
    }
    let bools = dtypes.iter().filter(|d| **d == DType::Bool).count();
    if bools > 0 && bools < dtypes.len() {
        return PType::Object;
    }
    values::result_type_all(dtypes).map_or(PType::Object, PType::Np)
}

/// The numpy dtype of categories: object for strings, their dtype for numbers.
fn category_type(categories: &[Obj]) -> PType {
    if categories.is_empty() || categories.iter().any(|c| matches!(c, Obj::Str(_))) {
        PType::Object
    } else if categories.iter().all(|c| matches!(c, Obj::Int(_))) {
        PType::Np(DType::I64)
    } else {
        PType::Np(DType::F64)
    }
}

/// pandas' `ensure_dtype_can_hold_na`.
fn can_hold_na(t: PType) -> PType {
    match t {
        PType::Np(DType::Bool) => PType::Object,
        PType::Np(d) if d.is_integer() => PType::Np(DType::F64),
        other => other,
    }
}

/// A column of `len` missing values of dtype `t`.
fn missing(t: &PType, len: usize) -> Result<PCol> {
    Ok(match t {
        PType::Np(d) if d.is_float() => PCol::Np(values::full(*d, &[len], f64::NAN)?),
        PType::Cat {
            categories,
            ordered,
        } => PCol::Cat(encode(
            &vec![Obj::Missing; len],
            categories.clone(),
            *ordered,
        )?),
        PType::Masked(kind, d) => PCol::Masked(Nullable::new(
            *kind,
            ArrayData::zeros(*d, &[len]),
            vec![true; len],
        )?),
        _ => PCol::Obj(vec![Obj::Missing; len]),
    })
}

/// `col.astype(t)`.
fn astype(col: &PCol, t: &PType) -> Result<PCol> {
    if &col.ptype() == t {
        // A no-op, as in pandas: an unordered categorical keeps its own order of the same set
        // of categories.
        return Ok(col.clone());
    }
    Ok(match t {
        PType::Void => col.clone(),
        PType::Object => PCol::Obj(col.objects()),
        PType::Np(d) => match col {
            PCol::Np(a) => PCol::Np(values::cast(a, *d)?),
            other => {
                // Missing values become NaN (only float dtypes hold them).
                let filled: Vec<Obj> = other
                    .objects()
                    .into_iter()
                    .map(|o| {
                        if matches!(o, Obj::Missing) {
                            Obj::Float(f64::NAN)
                        } else {
                            o
                        }
                    })
                    .collect();
                PCol::Np(values::from_objects(&filled, Some(*d))?)
            }
        },
        PType::Cat {
            categories,
            ordered,
        } => PCol::Cat(encode(&col.objects(), categories.clone(), *ordered)?),
        PType::Masked(kind, d) => {
            let objs = col.objects();
            let mask: Vec<bool> = objs.iter().map(|o| matches!(o, Obj::Missing)).collect();
            let placeholder = if *kind == NullableKind::String {
                Obj::Str(String::new())
            } else {
                Obj::Int(0)
            };
            let filled: Vec<Obj> = objs
                .into_iter()
                .map(|o| {
                    if matches!(o, Obj::Missing) {
                        placeholder.clone()
                    } else {
                        o
                    }
                })
                .collect();
            let values = if *kind == NullableKind::String {
                values::from_objects(&filled, None)?
            } else {
                values::from_objects(&filled, Some(*d))?
            };
            PCol::Masked(Nullable::new(*kind, values, mask)?)
        }
    })
}

/// Concatenates columns that all have dtype `t` (after [`astype`]).
fn concat_same(cols: Vec<PCol>, t: &PType) -> Result<PCol> {
    Ok(match t {
        PType::Np(_) => {
            let arrays: Vec<ArrayData> = cols
                .into_iter()
                .map(|c| match c {
                    PCol::Np(a) => a,
                    _ => unreachable!("numpy columns of one dtype"),
                })
                .collect();
            let dtype =
                values::result_type_all(arrays.iter().map(ArrayData::dtype)).unwrap_or(DType::F64);
            let mut out: Vec<Obj> = Vec::new();
            let exact = arrays.iter().all(|a| a.dtype() == dtype);
            if exact {
                return Ok(PCol::Np(concat_arrays(&arrays)?));
            }
            for a in &arrays {
                out.extend(values::to_objects(a));
            }
            PCol::Np(values::from_objects(&out, Some(dtype))?)
        }
        PType::Cat {
            categories,
            ordered,
        } => {
            // pandas' `_concat_same_type` keeps the first piece's order of the categories.
            let categories = match cols.first().map(PCol::ptype) {
                Some(PType::Cat { categories, .. }) => categories,
                _ => categories.clone(),
            };
            let objs: Vec<Obj> = cols.iter().flat_map(PCol::objects).collect();
            PCol::Cat(encode(&objs, categories, *ordered)?)
        }
        PType::Masked(kind, d) => {
            let objs: Vec<Obj> = cols.iter().flat_map(PCol::objects).collect();
            astype(&PCol::Obj(objs), &PType::Masked(*kind, *d))?
        }
        _ => PCol::Obj(cols.iter().flat_map(PCol::objects).collect()),
    })
}

fn concat_arrays(arrays: &[ArrayData]) -> Result<ArrayData> {
    let objs: Vec<Obj> = arrays.iter().flat_map(values::to_objects).collect();
    let dtype = arrays.first().map_or(DType::F64, ArrayData::dtype);
    if dtype == DType::Bool {
        return Ok(ArrayData::from(
            objs.iter()
                .map(|o| matches!(o, Obj::Bool(true)))
                .collect::<Vec<_>>(),
        ));
    }
    if dtype.is_float() {
        let v: Vec<f64> = arrays
            .iter()
            .flat_map(|a| {
                a.to_f64()
                    .map(|x| x.into_iter().collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .collect();
        return values::cast(&ArrayData::from(v), dtype);
    }
    values::from_objects(&objs, Some(dtype))
}

/// anndata's `unify_dtypes` for one column: categoricals everywhere become one categorical
/// over the natsorted union of their categories (or objects, for ordered ones that differ);
/// booleans in a frame set where some frames lack the column become nullable booleans.
pub(super) fn unify(pieces: &mut [Option<PCol>]) -> Result<()> {
    let has_missing = pieces.iter().any(Option::is_none);
    let types: Vec<PType> = pieces.iter().flatten().map(PCol::ptype).collect();
    let target = if types.iter().any(|t| matches!(t, PType::Cat { .. })) {
        if !types.iter().all(|t| matches!(t, PType::Cat { .. })) {
            return Ok(());
        }
        let cats: Vec<(&Vec<Obj>, bool)> = types
            .iter()
            .map(|t| match t {
                PType::Cat {
                    categories,
                    ordered,
                } => (categories, *ordered),
                _ => unreachable!("all categorical"),
            })
            .collect();
        let union = cats
            .iter()
            .skip(1)
            .fold(cats[0].0.clone(), |acc, (c, _)| index_union(&acc, c));
        if !cats.iter().any(|(_, o)| *o) {
            let mut sorted = union;
            values::natsorted(&mut sorted);
            PType::Cat {
                categories: sorted,
                ordered: false,
            }
        } else {
            let with: Vec<_> = cats.iter().filter(|(c, _)| !c.is_empty()).collect();
            if !with.is_empty() && with.iter().all(|(c, o)| *o && **c == union) {
                PType::Cat {
                    categories: with[0].0.clone(),
                    ordered: true,
                }
            } else {
                PType::Object
            }
        }
    } else if !types.is_empty() && types.iter().all(PType::is_bool) && has_missing {
        PType::Masked(NullableKind::Boolean, DType::Bool)
    } else {
        return Ok(());
    };
    for p in pieces.iter_mut().flatten() {
        *p = astype(p, &target)?;
    }
    Ok(())
}

/// pandas' `Index.union` of unique values: equal or empty ones keep their order, otherwise
/// the union sorted (left order then new ones when the values cannot be ordered).
fn index_union(a: &[Obj], b: &[Obj]) -> Vec<Obj> {
    if b.is_empty() || a == b {
        return a.to_vec();
    }
    if a.is_empty() {
        return b.to_vec();
    }
    let mut all = a.to_vec();
    all.extend(b.iter().filter(|v| !a.contains(v)).cloned());
    let orderable = all
        .windows(2)
        .all(|w| values::py_order(&w[0], &w[1]).is_some());
    if orderable {
        all.sort_by(|x, y| values::py_order(x, y).unwrap_or(std::cmp::Ordering::Equal));
    }
    all
}

/// `pd.concat` of one column over frames (`None`: the frame lacks it, with `len` rows),
/// following pandas' block concatenation: uniform pieces are concatenated directly (numpy
/// integers and booleans promote), others take a common dtype that ignores empty and all-NA
/// pieces and can hold the missing values of absent ones.
pub(super) fn concat_column(pieces: Vec<(Option<PCol>, usize)>) -> Result<PCol> {
    let types: Vec<PType> = pieces
        .iter()
        .map(|(c, _)| c.as_ref().map_or(PType::Void, PCol::ptype))
        .collect();
    let first = &types[0];
    let uniform = *first != PType::Void
        && types
            .iter()
            .all(|t| *t != PType::Void && t.is_extension() == first.is_extension())
        && types.iter().all(|t| t == first || t.kind_iub())
        && pieces.iter().all(|(c, _)| {
            c.as_ref()
                .is_some_and(|c| !c.is_na() || c.ptype().is_extension())
        });
    let cols: Vec<PCol>;
    if uniform {
        cols = pieces
            .into_iter()
            .map(|(c, _)| c.expect("uniform pieces exist"))
            .collect();
        if !first.is_extension() {
            return numpy_concat(cols, false);
        }
    } else {
        let has_void = types.contains(&PType::Void);
        let mut kept: Vec<PType> = pieces
            .iter()
            .filter(|(c, _)| c.as_ref().is_some_and(|c| !c.is_na()))
            .map(|(c, _)| c.as_ref().map_or(PType::Void, PCol::ptype))
            .collect();
        if kept.is_empty() {
            kept = types
                .iter()
                .filter(|t| **t != PType::Void)
                .cloned()
                .collect();
        }
        let mut empty = common_type(&kept);
        if has_void {
            empty = can_hold_na(empty);
        }
        let no_na = match &empty {
            PType::Np(DType::Bool) => true,
            PType::Np(d) => d.is_integer() && !has_void,
            _ => false,
        };
        cols = pieces
            .into_iter()
            .map(|(c, len)| match c {
                Some(c) if no_na || !c.is_na() => Ok(c),
                _ => missing(&empty, len),
            })
            .collect::<Result<_>>()?;
        if !cols.iter().any(|c| c.ptype().is_extension()) {
            return numpy_concat(cols, true);
        }
    }
    let ctypes: Vec<PType> = cols.iter().map(PCol::ptype).collect();
    let target = common_type(&ctypes);
    let cast: Vec<PCol> = cols
        .iter()
        .map(|c| astype(c, &target))
        .collect::<Result<_>>()?;
    concat_same(cast, &target)
}

/// `np.concatenate` of numpy columns; `bool_to_object` adds pandas' `concat_compat` rule that
/// booleans beside numbers become objects.
fn numpy_concat(cols: Vec<PCol>, bool_to_object: bool) -> Result<PCol> {
    let types: Vec<PType> = cols.iter().map(PCol::ptype).collect();
    let dtypes: Option<Vec<DType>> = types
        .iter()
        .map(|t| match t {
            PType::Np(d) => Some(*d),
            _ => None,
        })
        .collect();
    let target = match dtypes {
        Some(d) => match values::result_type_all(d.iter().copied()) {
            Some(r) if bool_to_object && d.contains(&DType::Bool) && r != DType::Bool => {
                PType::Object
            }
            Some(r) => PType::Np(r),
            None => PType::Object,
        },
        None => PType::Object,
    };
    let cast: Vec<PCol> = cols
        .iter()
        .map(|c| astype(c, &target))
        .collect::<Result<_>>()?;
    concat_same(cast, &target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn np<T>(v: Vec<T>) -> Option<PCol>
    where
        ArrayData: From<Vec<T>>,
    {
        Some(PCol::Np(ArrayData::from(v)))
    }

    fn dtype_of(pieces: Vec<(Option<PCol>, usize)>) -> String {
        match concat_column(pieces).unwrap().ptype() {
            PType::Np(d) => d.name().to_string(),
            PType::Object => "object".into(),
            PType::Cat { .. } => "category".into(),
            PType::Masked(k, d) => format!("{k:?}{d}"),
            PType::Void => "void".into(),
        }
    }

    /// Expected dtypes from `pd.concat` of one-column frames in the venv (pandas 2.3).
    #[test]
    fn concat_dtypes_follow_pandas() {
        let nan1 = || np(vec![f64::NAN]);
        assert_eq!(dtype_of(vec![(np(vec![1i64]), 1), (None, 1)]), "float64");
        assert_eq!(
            dtype_of(vec![(np(vec![true]), 1), (np(vec![1i64]), 1)]),
            "int64"
        );
        assert_eq!(
            dtype_of(vec![(np(Vec::<bool>::new()), 0), (np(vec![1i64]), 1)]),
            "int64"
        );
        assert_eq!(
            dtype_of(vec![(np(Vec::<f32>::new()), 0), (np(vec![true]), 1)]),
            "object"
        );
        assert_eq!(
            dtype_of(vec![(np(Vec::<i64>::new()), 0), (np(vec![1f32]), 1)]),
            "float64"
        );
        assert_eq!(dtype_of(vec![(nan1(), 1), (np(vec![1i64]), 1)]), "float64");
        assert_eq!(dtype_of(vec![(nan1(), 1), (np(vec![1f32]), 1)]), "float32");
        assert_eq!(dtype_of(vec![(nan1(), 1), (np(vec![true]), 1)]), "object");
        assert_eq!(
            dtype_of(vec![(np(vec![1i8]), 1), (np(vec![1f32]), 1)]),
            "float32"
        );
        assert_eq!(
            dtype_of(vec![(np(vec![1i64]), 1), (np(vec![1u64]), 1)]),
            "float64"
        );
        let cat = Categorical::new(vec![0, 0], ArrayData::from(vec!["x"]), false).unwrap();
        let obj = Some(PCol::Obj(vec![Obj::Str("y".into())]));
        assert_eq!(
            dtype_of(vec![(Some(PCol::Cat(cat.clone())), 2), (obj, 1)]),
            "object"
        );
        assert_eq!(
            dtype_of(vec![(Some(PCol::Cat(cat)), 2), (None, 1)]),
            "category"
        );
        let int64 = Nullable::new(
            NullableKind::Integer,
            ArrayData::from(vec![1i64]),
            vec![false],
        )
        .unwrap();
        assert_eq!(
            dtype_of(vec![(Some(PCol::Masked(int64.clone())), 1), (None, 1)]),
            "Integerint64"
        );
        assert_eq!(
            dtype_of(vec![(Some(PCol::Masked(int64)), 1), (np(vec![1i64]), 1)]),
            "Integerint64"
        );
    }

    /// anndata: categoricals over `['b', 'a10']` and `['a2', 'b']` unify to
    /// `natsorted(['a10', 'a2', 'b'])`, unordered.
    #[test]
    fn categoricals_unify_over_natsorted_categories() {
        let c1 = Categorical::new(vec![0, 1], ArrayData::from(vec!["b", "a10"]), false).unwrap();
        let c2 = Categorical::new(vec![0], ArrayData::from(vec!["a2", "b"]), false).unwrap();
        let mut pieces = vec![Some(PCol::Cat(c1)), Some(PCol::Cat(c2)), None];
        unify(&mut pieces).unwrap();
        let out = concat_column(pieces.into_iter().zip([2, 1, 1]).collect()).unwrap();
        let Ok(Column::Categorical(c)) = out.into_column(true) else {
            panic!()
        };
        assert_eq!(c.categories, ArrayData::from(vec!["a2", "a10", "b"]));
        assert_eq!(c.codes, [2, 1, 0, -1]);
        assert!(!c.ordered);
    }
}
