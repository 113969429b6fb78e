//! pandas dtypes and the dtype of a concatenated column: `pd.concat` with missing columns,
//! all-NA and empty pieces, after anndata's `unify_dtypes`.

use annpage_engine::data::{ArrayData, DType, Nullable, NullableKind};
use annpage_engine::Result;

use super::column::{encode, PCol, PType};
use super::values::{self, Obj};

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
            .any(|t| matches!(t, PType::Masked(NullableKind::String(_), _) | PType::Object))
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
            let placeholder = if matches!(*kind, NullableKind::String(_)) {
                Obj::Str(Default::default())
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
            let values = if matches!(*kind, NullableKind::String(_)) {
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
    use annpage_engine::data::{Categorical, Column};

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
