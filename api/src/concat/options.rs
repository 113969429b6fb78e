//! The arguments of [`concat()`](fn@crate::concat): how the other axis is joined and how the
//! elements that are not concatenated are chosen.

use crate::{Axis, Error, Result};

/// How the names of the other axis are joined.
///
/// ```
/// use annpage::{concat, AnnData, ConcatOptions, Join};
/// let mut a = AnnData::new(1, 2);
/// a.set_var_names(vec!["g1", "g2"])?;
/// let mut b = AnnData::new(1, 2);
/// b.set_var_names(vec!["g3", "g2"])?;
/// let inner = concat(&[a.clone(), b.clone()], &ConcatOptions::default())?;
/// assert_eq!(inner.var_names(), ["g2"]);
/// let outer = concat(&[a, b], &ConcatOptions { join: Join::Outer, ..Default::default() })?;
/// assert_eq!(outer.var_names(), ["g1", "g2", "g3"]); // sorted, as pandas unites them
/// # Ok::<(), annpage::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Join {
    /// Keep the names every object has (anndata's default).
    #[default]
    Inner,
    /// Keep the names any object has; values an object lacks are filled.
    Outer,
}

/// How elements that are not concatenated (those of the other axis, and `uns`) are chosen
/// among the objects' values.
///
/// ```
/// use annpage::data::{Element, Scalar};
/// use annpage::{concat, AnnData, ConcatOptions, MergeStrategy};
/// let mut a = AnnData::new(1, 1);
/// a.uns_mut().insert("method".into(), Element::Scalar(Scalar::String("leiden".into())));
/// a.uns_mut().insert("n_pcs".into(), Element::Scalar(Scalar::I64(30)));
/// let mut b = AnnData::new(1, 1);
/// b.uns_mut().insert("method".into(), Element::Scalar(Scalar::String("leiden".into())));
/// b.uns_mut().insert("n_pcs".into(), Element::Scalar(Scalar::I64(50)));
/// let keys = |s| {
///     let options = ConcatOptions { uns_merge: Some(s), ..Default::default() };
///     let r = concat(&[a.clone(), b.clone()], &options).unwrap();
///     r.uns().keys().cloned().collect::<Vec<_>>()
/// };
/// assert_eq!(keys(MergeStrategy::Same), ["method"]); // equal everywhere
/// assert_eq!(keys(MergeStrategy::First), ["method", "n_pcs"]); // n_pcs from the first
/// assert!(keys(MergeStrategy::Only).is_empty()); // every key is in both
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MergeStrategy {
    /// Elements every object has, with equal values.
    Same,
    /// Elements whose value is the same in every object that has them.
    Unique,
    /// The first value of each element.
    First,
    /// Elements exactly one object has.
    Only,
}

/// Parses `anndata.concat`'s `join` argument, `"inner"` or `"outer"`.
///
/// ```
/// use annpage::Join;
/// assert_eq!("outer".parse::<Join>()?, Join::Outer);
/// # Ok::<(), annpage::Error>(())
/// ```
impl std::str::FromStr for Join {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "inner" => Ok(Join::Inner),
            "outer" => Ok(Join::Outer),
            other => Err(Error::invalid(format!(
                "join must be 'inner' or 'outer', not {other:?}"
            ))),
        }
    }
}

/// Parses a merge strategy as anndata names it: `"same"`, `"unique"`, `"first"` or `"only"`.
///
/// ```
/// use annpage::MergeStrategy;
/// assert_eq!("first".parse::<MergeStrategy>()?, MergeStrategy::First);
/// assert!("any".parse::<MergeStrategy>().is_err());
/// # Ok::<(), annpage::Error>(())
/// ```
impl std::str::FromStr for MergeStrategy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "same" => Ok(MergeStrategy::Same),
            "unique" => Ok(MergeStrategy::Unique),
            "first" => Ok(MergeStrategy::First),
            "only" => Ok(MergeStrategy::Only),
            other => Err(Error::invalid(format!(
                "unknown merge strategy {other:?} (same, unique, first or only)"
            ))),
        }
    }
}

/// The arguments of [`concat()`](fn@crate::concat), one for each argument of `anndata.concat`.
///
/// ```
/// use annpage::{Axis, ConcatOptions, Join, MergeStrategy};
/// let options = ConcatOptions {
///     join: Join::Outer,
///     merge: Some(MergeStrategy::Same),
///     label: Some("batch".into()),
///     keys: Some(vec!["a".into(), "b".into()]),
///     index_unique: Some("-".into()),
///     ..ConcatOptions::default()
/// };
/// assert_eq!(options.axis, Axis::Obs);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConcatOptions {
    /// The axis to concatenate along (`obs`: stack the cells).
    pub axis: Axis,
    /// How the other axis's names are joined.
    pub join: Join,
    /// How the elements aligned to the other axis (`var`, `varm`, `varp` when concatenating
    /// cells) are chosen; `None` keeps none of them.
    pub merge: Option<MergeStrategy>,
    /// How `uns` entries are chosen, recursively; `None` keeps none.
    pub uns_merge: Option<MergeStrategy>,
    /// A categorical column to add to the axis's annotations, holding each object's key.
    pub label: Option<String>,
    /// One name per object, for `label` and `index_unique` (default `"0"`, `"1"`, …).
    pub keys: Option<Vec<String>>,
    /// Makes the names unique: each becomes `{name}{index_unique}{key}`.
    pub index_unique: Option<String>,
    /// With an outer join, the value of the entries an object lacks (default: 0 in sparse
    /// matrices, NaN in dense arrays).
    pub fill_value: Option<FillValue>,
    /// Keep `obsp` (`varp`) along the axis as block-diagonal matrices; otherwise they are
    /// dropped.
    pub pairwise: bool,
}

impl ConcatOptions {
    /// The fill of entries a layer's input lacks: `fill_value`, which anndata applies to
    /// layers only with an outer join (X takes `fill_value` whatever the join).
    pub(super) fn layer_fill(&self) -> Option<FillValue> {
        match self.join {
            Join::Inner => None,
            Join::Outer => self.fill_value,
        }
    }
}

/// A fill value as given: a bool, an integer or a float. anndata's dtype rules differ for the
/// three: a filled array takes numpy's promotion of its dtype with bool for a bool (a boolean
/// array stays boolean), int64 for an integer (integers stay integers), float64 for a float.
///
/// ```
/// use annpage::FillValue;
/// assert_eq!(FillValue::from(0).as_f64(), 0.0);
/// assert!(FillValue::from(0.0).is_zero() && !FillValue::from(-1).is_zero());
/// assert_eq!("False".parse(), Ok(FillValue::Bool(false)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FillValue {
    /// A Python `bool` (or numpy bool).
    Bool(bool),
    /// A Python `int` (or numpy integer).
    Int(i64),
    /// A Python `float`.
    Float(f64),
}

impl FillValue {
    /// The value as a float.
    pub fn as_f64(self) -> f64 {
        match self {
            FillValue::Bool(b) => f64::from(u8::from(b)),
            FillValue::Int(i) => i as f64,
            FillValue::Float(f) => f,
        }
    }

    /// Whether the value is zero (sparse matrices then store nothing for it).
    pub fn is_zero(self) -> bool {
        self.as_f64() == 0.0
    }
}

impl From<i64> for FillValue {
    fn from(v: i64) -> Self {
        FillValue::Int(v)
    }
}

impl From<f64> for FillValue {
    fn from(v: f64) -> Self {
        FillValue::Float(v)
    }
}

impl std::str::FromStr for FillValue {
    type Err = std::num::ParseFloatError;

    /// A bool for `True`/`False` (as Python spells them, or lower case), an integer when the
    /// text is one (`0`, `-1`), else a float (`0.5`, `nan`, `1e3`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "True" | "true" => return Ok(FillValue::Bool(true)),
            "False" | "false" => return Ok(FillValue::Bool(false)),
            _ => {}
        }
        match s.trim().parse::<i64>() {
            Ok(i) => Ok(FillValue::Int(i)),
            Err(_) => s.trim().parse::<f64>().map(FillValue::Float),
        }
    }
}
