//! anndata's merge strategies for elements not aligned to the concatenation axis (`merge`) and,
//! recursively, for `uns` (`uns_merge`), with anndata's notion of equal values.

use annpage_engine::data::{ArrayData, Element, Mapping, Scalar};
use annpage_engine::{Error, Result};
use indexmap::IndexMap;

use super::column::PCol;
use super::frame;
use super::matrix::{self, Mat};
use super::values::{self, Obj};
use super::MergeStrategy;

/// A value that merge strategies can pick: compared with anndata's `equal`, and for `uns`,
/// nested mappings merged recursively.
pub(super) trait Mergeable: Clone {
    /// The nested mapping, for values that are one.
    fn as_map(&self) -> Option<&IndexMap<String, Self>> {
        None
    }
    /// Wraps a merged nested mapping.
    fn from_map(map: IndexMap<String, Self>) -> Self;
    /// anndata's `equal`.
    fn equal(&self, other: &Self) -> Result<bool>;
}

/// The keys every mapping has, in the last mapping's order (anndata's `intersect_keys` over
/// its ordered sets: `a & b` iterates `b`).
pub(super) fn intersect_keys<V>(maps: &[&IndexMap<String, V>]) -> Vec<String> {
    let Some(last) = maps.last() else {
        return Vec::new();
    };
    last.keys()
        .filter(|k| maps.iter().all(|m| m.contains_key(*k)))
        .cloned()
        .collect()
}

/// The keys of all mappings in order of first appearance (anndata's `union_keys`).
pub(super) fn union_keys<V>(maps: &[&IndexMap<String, V>]) -> Vec<String> {
    let mut out: IndexMap<String, ()> = IndexMap::new();
    for m in maps {
        for k in m.keys() {
            out.entry(k.clone()).or_insert(());
        }
    }
    out.into_keys().collect()
}

/// Merges mappings with a strategy (anndata's `merge_nested`): `None` keeps nothing; `Same`
/// keeps the keys every mapping has with values all equal; `Unique` the keys whose values
/// (where present) are all equal; `First` the first value of every key; `Only` the keys
/// exactly one mapping has. Nested mappings are merged key by key, and dropped when empty.
pub(super) fn merge<V: Mergeable>(
    maps: &[&IndexMap<String, V>],
    strategy: Option<MergeStrategy>,
) -> Result<IndexMap<String, V>> {
    let Some(strategy) = strategy else {
        return Ok(IndexMap::new());
    };
    let keys = match strategy {
        MergeStrategy::Same => intersect_keys(maps),
        _ => union_keys(maps),
    };
    let mut out = IndexMap::new();
    for k in keys {
        let vals: Vec<&V> = maps.iter().filter_map(|m| m.get(&k)).collect();
        if vals.is_empty() {
            continue;
        }
        let nested: Option<Vec<&IndexMap<String, V>>> = vals.iter().map(|v| v.as_map()).collect();
        let picked = match nested {
            Some(inner) => {
                let merged = merge(&inner, Some(strategy))?;
                (!merged.is_empty()).then(|| V::from_map(merged))
            }
            None => pick(&vals, strategy)?,
        };
        if let Some(v) = picked {
            out.insert(k, v);
        }
    }
    Ok(out)
}

fn pick<V: Mergeable>(vals: &[&V], strategy: MergeStrategy) -> Result<Option<V>> {
    Ok(match strategy {
        MergeStrategy::Same | MergeStrategy::Unique => {
            for v in &vals[1..] {
                if !vals[0].equal(v)? {
                    return Ok(None);
                }
            }
            Some(vals[0].clone())
        }
        MergeStrategy::First => Some(vals[0].clone()),
        MergeStrategy::Only => (vals.len() == 1).then(|| vals[0].clone()),
    })
}

impl Mergeable for PCol {
    fn from_map(_: IndexMap<String, Self>) -> Self {
        unreachable!("columns are never mappings")
    }
    fn equal(&self, other: &Self) -> Result<bool> {
        Ok(self.equals(other))
    }
}

impl Mergeable for Mat {
    fn from_map(_: IndexMap<String, Self>) -> Self {
        unreachable!("matrices are never mappings")
    }
    fn equal(&self, other: &Self) -> Result<bool> {
        matrix::mats_equal(self, other)
    }
}

/// An element aligned to the other axis after reindexing: a matrix-like value or a frame.
#[derive(Clone, Debug)]
pub(super) enum AltValue {
    Mat(Mat),
    Frame(frame::Columns),
}

impl Mergeable for AltValue {
    fn from_map(_: IndexMap<String, Self>) -> Self {
        unreachable!("aligned elements are never mappings")
    }
    fn equal(&self, other: &Self) -> Result<bool> {
        Ok(match (self, other) {
            (AltValue::Mat(a), AltValue::Mat(b)) => matrix::mats_equal(a, b)?,
            (AltValue::Frame(a), AltValue::Frame(b)) => frame::frames_equal(a, b),
            _ => false,
        })
    }
}

impl Mergeable for Element {
    fn as_map(&self) -> Option<&Mapping> {
        match self {
            Element::Dict(m) => Some(m),
            _ => None,
        }
    }
    fn from_map(map: Mapping) -> Self {
        Element::Dict(map)
    }
    fn equal(&self, other: &Self) -> Result<bool> {
        element_equal(self, other)
    }
}

/// A scalar as a Python value (`None` for NaN, which equals nothing).
fn scalar_obj(s: &Scalar) -> Obj {
    values::to_objects(&s.to_array())
        .into_iter()
        .next()
        .unwrap_or(Obj::Missing)
}

/// anndata's `equal` between two `uns` values: scalars by Python `==` (`1 == 1.0`, NaN equal
/// to nothing), arrays by shape, dtype and values (NaN equal to NaN), sparse matrices by
/// value, data frames by `DataFrame.equals`; values of different kinds differ.
fn element_equal(a: &Element, b: &Element) -> Result<bool> {
    Ok(match (a, b) {
        (Element::Scalar(x), Element::Scalar(y)) => {
            let (x, y) = (scalar_obj(x), scalar_obj(y));
            !matches!(x, Obj::Missing) && x == y
        }
        (Element::Array(x), Element::Array(y)) if x.ndim() == 0 && y.ndim() == 0 => {
            let (x, y) = (values::to_objects(x), values::to_objects(y));
            x.iter()
                .zip(&y)
                .all(|(p, q)| !matches!(p, Obj::Missing) && p == q)
        }
        (Element::Array(x), Element::Array(y)) => values::arrays_equal(x, y),
        (Element::Sparse(_), Element::Sparse(_)) => {
            let (Some(x), Some(y)) = (Mat::from_element(a.clone()), Mat::from_element(b.clone()))
            else {
                return Ok(false);
            };
            matrix::mats_equal(&x, &y)?
        }
        (Element::DataFrame(x), Element::DataFrame(y)) => {
            index_equal(x.index(), y.index())
                && frame::frames_equal(&frame::columns(x), &frame::columns(y))
        }
        (Element::Categorical(x), Element::Categorical(y)) => {
            PCol::Cat(x.clone()).equals(&PCol::Cat(y.clone()))
        }
        (Element::Nullable(x), Element::Nullable(y)) => {
            PCol::Masked(x.clone()).equals(&PCol::Masked(y.clone()))
        }
        (Element::Dict(x), Element::Dict(y)) => dict_equal(x, y)?,
        (Element::Opaque(x), Element::Opaque(y)) => x == y,
        _ => false,
    })
}

/// Python's `==` between two dicts, as anndata reaches it when a key holds dicts in some
/// objects and other values in others: values compared with `==`, where numpy arrays (other
/// than of one element), frames and sparse matrices have no truth value and fail.
fn dict_equal(a: &Mapping, b: &Mapping) -> Result<bool> {
    if a.len() != b.len() {
        return Ok(false);
    }
    for (k, x) in a {
        let Some(y) = b.get(k) else {
            return Ok(false);
        };
        let ambiguous = |e: &Element| match e {
            Element::Array(a) => a.len() != 1,
            Element::DataFrame(_) | Element::Sparse(_) => true,
            _ => false,
        };
        if ambiguous(x) || ambiguous(y) {
            return Err(Error::invalid(format!(
                "comparing two dicts holding '{k}': the truth value of an array is ambiguous \
                 (anndata fails too)"
            )));
        }
        let equal = match (x, y) {
            (Element::Dict(p), Element::Dict(q)) => dict_equal(p, q)?,
            _ => element_equal(x, y)?,
        };
        if !equal {
            return Ok(false);
        }
    }
    Ok(true)
}

/// pandas' `Index.equals`: the same values in the same order, whatever the dtype.
fn index_equal(a: &ArrayData, b: &ArrayData) -> bool {
    a.len() == b.len() && values::to_objects(a) == values::to_objects(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uns(entries: Vec<(&str, Element)>) -> Mapping {
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    fn int(v: i64) -> Element {
        Element::Scalar(Scalar::I64(v))
    }

    /// anndata's docstring example: `a.uns = {"a": 1, "b": 2, "c": {"c.a": 3, "c.b": 4}}`,
    /// `b.uns = {"a": 1, "b": 3, "c": {"c.b": 4}}`,
    /// `c.uns = {"a": 1, "b": 4, "c": {"c.a": 3, "c.b": 4, "c.c": 5}}`.
    #[test]
    fn uns_strategies_match_the_anndata_docs() {
        let a = uns(vec![
            ("a", int(1)),
            ("b", int(2)),
            (
                "c",
                Element::Dict(uns(vec![("c.a", int(3)), ("c.b", int(4))])),
            ),
        ]);
        let b = uns(vec![
            ("a", int(1)),
            ("b", int(3)),
            ("c", Element::Dict(uns(vec![("c.b", int(4))]))),
        ]);
        let c = uns(vec![
            ("a", int(1)),
            ("b", int(4)),
            (
                "c",
                Element::Dict(uns(vec![("c.a", int(3)), ("c.b", int(4)), ("c.c", int(5))])),
            ),
        ]);
        let maps = [&a, &b, &c];
        let run = |s| merge(&maps, Some(s)).unwrap();
        assert_eq!(
            run(MergeStrategy::Same),
            uns(vec![
                ("a", int(1)),
                ("c", Element::Dict(uns(vec![("c.b", int(4))])))
            ])
        );
        let full_c = Element::Dict(uns(vec![("c.a", int(3)), ("c.b", int(4)), ("c.c", int(5))]));
        assert_eq!(
            run(MergeStrategy::Unique),
            uns(vec![("a", int(1)), ("c", full_c.clone())])
        );
        assert_eq!(
            run(MergeStrategy::Only),
            uns(vec![("c", Element::Dict(uns(vec![("c.c", int(5))])))])
        );
        assert_eq!(
            run(MergeStrategy::First),
            uns(vec![("a", int(1)), ("b", int(2)), ("c", full_c)])
        );
        assert!(merge(&maps, None).unwrap().is_empty());
    }

    #[test]
    fn scalars_compare_like_python() {
        let f = |v| Element::Scalar(Scalar::F64(v));
        assert!(element_equal(&int(1), &f(1.0)).unwrap());
        assert!(!element_equal(&f(f64::NAN), &f(f64::NAN)).unwrap());
        let s = Element::Scalar(Scalar::String("1".into()));
        assert!(!element_equal(&s, &int(1)).unwrap());
        // Arrays need the same dtype.
        let a32 = Element::Array(ArrayData::from(vec![1i32, 2]));
        let a64 = Element::Array(ArrayData::from(vec![1i64, 2]));
        assert!(!element_equal(&a32, &a64).unwrap());
        assert!(element_equal(&a64, &a64.clone()).unwrap());
    }
}
