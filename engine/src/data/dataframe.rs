//! Data frames (`obs`, `var`, and frames in `uns`/`obsm`) and their column types.

use std::collections::HashSet;

use compact_str::ToCompactString;
use indexmap::IndexMap;

use super::{ArrayData, CompactString, DType};
use crate::select::AxisIndex;
use crate::{Error, Result};

/// Checks that `index` selects from `n` values.
fn check_len(index: &AxisIndex, n: usize, what: &str) -> Result<()> {
    if index.axis_len() == n {
        Ok(())
    } else {
        Err(Error::shape(format!(
            "the selection is for {} rows, the {what} has {n}",
            index.axis_len()
        )))
    }
}

/// The first value of `values` seen before, as Python prints it.
fn first_duplicate(values: &ArrayData) -> Option<String> {
    match values {
        ArrayData::String(a) => {
            let mut seen = HashSet::with_capacity(a.len());
            a.iter()
                .find(|v| !seen.insert(v.as_str()))
                .map(|v| v.to_string())
        }
        other => {
            let names = other.to_python_strings();
            let mut seen = HashSet::with_capacity(names.len());
            names.iter().find(|v| !seen.insert(v.as_str())).cloned()
        }
    }
}

/// A pandas-style categorical: integer codes into a list of categories (`-1` = missing).
#[derive(Clone, Debug, PartialEq)]
pub struct Categorical {
    /// Code of each value; `-1` marks a missing value.
    pub codes: Vec<i32>,
    /// The categories (strings, numbers or bools), 1-d.
    pub categories: ArrayData,
    /// Whether the categories are ordered.
    pub ordered: bool,
}

impl Categorical {
    /// Builds a categorical, checking that every code is `-1` or a valid category position
    /// and that the categories are unique (as pandas does).
    pub fn new(codes: Vec<i32>, categories: ArrayData, ordered: bool) -> Result<Self> {
        let c = Categorical {
            codes,
            categories,
            ordered,
        };
        c.check().map_err(Error::malformed)?;
        Ok(c)
    }

    /// What [`Categorical::new`] checks, for a categorical built field by field: why it is
    /// not one pandas would hold.
    fn check(&self) -> std::result::Result<(), String> {
        if self.categories.ndim() != 1 {
            return Err(format!(
                "categories must be 1-d, not of shape {:?}",
                self.categories.shape()
            ));
        }
        let n = self.categories.len() as i64;
        if let Some(bad) = self.codes.iter().find(|&&c| c < -1 || c as i64 >= n) {
            return Err(format!(
                "categorical code {bad} out of range for {n} categories"
            ));
        }
        if let Some(dup) = first_duplicate(&self.categories) {
            return Err(format!(
                "category '{dup}' appears twice (categories must be unique)"
            ));
        }
        Ok(())
    }

    /// The categorical `pandas.Categorical(values)` makes of a 1-d array: its distinct values
    /// as categories, sorted (strings by code point, numbers by value, `false` before `true`),
    /// NaN as missing; unordered.
    ///
    /// ```
    /// use annpage_engine::data::{ArrayData, Categorical};
    /// let c = Categorical::from_values(&ArrayData::from(vec!["T", "B", "T", "NK"]))?;
    /// assert_eq!((c.codes, c.categories), (vec![2, 0, 2, 1], ArrayData::from(vec!["B", "NK", "T"])));
    /// let n = Categorical::from_values(&ArrayData::from(vec![2.5, f64::NAN, -1.0, 2.5]))?;
    /// assert_eq!((n.codes, n.categories), (vec![1, -1, 0, 1], ArrayData::from(vec![-1.0, 2.5])));
    /// # Ok::<(), annpage_engine::Error>(())
    /// ```
    pub fn from_values(values: &ArrayData) -> Result<Self> {
        if values.ndim() != 1 {
            return Err(Error::shape(format!(
                "categorical values must be 1-d, got shape {:?}",
                values.shape()
            )));
        }
        // Positions of the first occurrence of each distinct value, sorted by value, and the
        // distinct value of every position (None: missing).
        let (firsts, of): (Vec<usize>, Vec<Option<usize>>) =
            match (values.as_strings(), values.to_f64()) {
                (Some(v), _) => distinct_sorted(v.len(), |i| Some(v[i].as_str()), |a, b| a.cmp(b)),
                (None, Some(x)) => {
                    let key = |i: usize| {
                        let v = x[i];
                        // -0.0 and 0.0 are one category, as in pandas.
                        (!v.is_nan()).then_some(if v == 0.0 { 0.0 } else { v })
                    };
                    distinct_sorted(x.len(), key, |a: &f64, b: &f64| a.total_cmp(b))
                }
                (None, None) => return Err(Error::invalid("values of no orderable dtype")),
            };
        if firsts.len() > i32::MAX as usize {
            return Err(Error::unsupported("more than 2^31 categories"));
        }
        let codes = of.iter().map(|c| c.map_or(-1, |c| c as i32)).collect();
        Categorical::new(codes, values.select(0, &firsts), false)
    }

    /// The values at the positions of `index`, with all categories kept (as pandas' `iloc`).
    pub fn subset(&self, index: &AxisIndex) -> Result<Self> {
        check_len(index, self.codes.len(), "categorical")?;
        Ok(Categorical {
            codes: index.iter().map(|i| self.codes[i]).collect(),
            categories: self.categories.clone(),
            ordered: self.ordered,
        })
    }

    /// Drops the categories no value uses, keeping the order of the others and recoding the
    /// values (pandas' `remove_unused_categories`). Returns, for each old category, whether it
    /// was kept.
    ///
    /// ```
    /// use annpage_engine::data::{ArrayData, Categorical};
    /// let mut c = Categorical::new(vec![2, -1, 2, 0], ArrayData::from(vec!["a", "b", "c"]), false)
    ///     .unwrap();
    /// assert_eq!(c.remove_unused_categories(), [true, false, true]);
    /// assert_eq!(c.codes, [1, -1, 1, 0]);
    /// assert_eq!(c.categories, ArrayData::from(vec!["a", "c"]));
    /// ```
    pub fn remove_unused_categories(&mut self) -> Vec<bool> {
        let mut used = vec![false; self.categories.len()];
        for &c in &self.codes {
            // Codes are -1 or valid positions (checked on construction).
            if let Ok(c) = usize::try_from(c) {
                used[c] = true;
            }
        }
        if used.iter().all(|&u| u) {
            return used;
        }
        // New code of each old category (dropped ones keep -1: no value uses them).
        let mut recode = vec![-1i32; used.len()];
        let mut kept = Vec::new();
        for old in (0..used.len()).filter(|&old| used[old]) {
            // Fewer categories than before, whose codes fitted in i32.
            recode[old] = kept.len() as i32;
            kept.push(old);
        }
        for c in &mut self.codes {
            if let Ok(old) = usize::try_from(*c) {
                *c = recode[old];
            }
        }
        self.categories = self.categories.select(0, &kept);
        used
    }

    /// The smallest signed integer dtype that pandas uses for these codes.
    pub fn code_dtype(&self) -> DType {
        match self.categories.len() {
            n if n < i8::MAX as usize => DType::I8,
            n if n < i16::MAX as usize => DType::I16,
            n if n < i32::MAX as usize => DType::I32,
            _ => DType::I64,
        }
    }
}

/// Which pandas extension array a [`Nullable`] column is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NullableKind {
    /// `nullable-integer` (pandas `Int64` etc.).
    Integer,
    /// `nullable-boolean` (pandas `boolean`).
    Boolean,
    /// `nullable-string-array`, with pandas' marker of a missing string.
    String(StringNa),
}

/// What a pandas string array holds where a value is missing: the `na-value` attribute of a
/// `nullable-string-array` (anndata 0.13; older files have none and mean [`StringNa::Na`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StringNa {
    /// `pd.NA`: pandas' `string` dtype.
    #[default]
    Na,
    /// `NaN`: pandas 3's default `str` dtype (`na-value` `"NaN"`).
    NaN,
}

/// A column with a missing-value mask (`true` = missing).
#[derive(Clone, Debug, PartialEq)]
pub struct Nullable {
    kind: NullableKind,
    values: ArrayData,
    mask: Vec<bool>,
}

impl Nullable {
    /// Builds a nullable column; the values' dtype must suit the kind and the mask must match.
    pub fn new(kind: NullableKind, values: ArrayData, mask: Vec<bool>) -> Result<Self> {
        let ok = match kind {
            NullableKind::Integer => values.dtype().is_integer(),
            NullableKind::Boolean => values.dtype() == DType::Bool,
            NullableKind::String(_) => values.dtype() == DType::String,
        };
        if !ok || values.ndim() != 1 {
            return Err(Error::malformed(format!(
                "{kind:?} nullable column cannot hold {}-d values of dtype {}",
                values.ndim(),
                values.dtype()
            )));
        }
        if mask.len() != values.len() {
            return Err(Error::malformed(format!(
                "nullable column has {} values but a mask of {}",
                values.len(),
                mask.len()
            )));
        }
        Ok(Nullable { kind, values, mask })
    }
    /// The kind of nullable column.
    pub fn kind(&self) -> NullableKind {
        self.kind
    }
    /// The values (those under the mask are unspecified).
    pub fn values(&self) -> &ArrayData {
        &self.values
    }
    /// `true` where the value is missing.
    pub fn mask(&self) -> &[bool] {
        &self.mask
    }
    /// The column taken apart without a copy: its kind, values and mask.
    pub fn into_parts(self) -> (NullableKind, ArrayData, Vec<bool>) {
        (self.kind, self.values, self.mask)
    }
    /// The values at the positions of `index`.
    pub fn subset(&self, index: &AxisIndex) -> Result<Self> {
        check_len(index, self.mask.len(), "nullable array")?;
        Ok(Nullable {
            kind: self.kind,
            values: self.values.subset(0, index)?,
            mask: index.iter().map(|i| self.mask[i]).collect(),
        })
    }
    /// Selects positions (any order, repeats allowed).
    ///
    /// # Panics
    ///
    /// On an index out of bounds; `subset` is the checked form.
    pub fn select(&self, idx: &[usize]) -> Self {
        Nullable {
            kind: self.kind,
            values: self.values.select(0, idx),
            mask: idx.iter().map(|&i| self.mask[i]).collect(),
        }
    }
}

/// One column of a [`DataFrame`].
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// A plain numpy column (numeric, bool or string), 1-d.
    Array(ArrayData),
    /// A categorical column.
    Categorical(Categorical),
    /// A nullable integer, boolean or string column.
    Nullable(Nullable),
}

impl Column {
    /// Why the column is not one a frame can hold, if it is not: an array column that is not
    /// 1-d, a categorical (built field by field) whose codes do not name its categories or
    /// whose categories repeat.
    ///
    /// ```
    /// use annpage_engine::data::{ArrayData, Categorical, Column};
    /// let c = Categorical { codes: vec![0, 3], categories: ArrayData::from(vec!["a"]), ordered: false };
    /// assert!(Column::Categorical(c).check().unwrap_err().contains("out of range"));
    /// ```
    pub fn check(&self) -> std::result::Result<(), String> {
        match self {
            Column::Array(a) if a.ndim() != 1 => Err(format!(
                "an array of shape {:?}: a column is 1-d",
                a.shape()
            )),
            Column::Categorical(c) => c.check(),
            _ => Ok(()),
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Column::Array(a) => a.nrows(),
            Column::Categorical(c) => c.codes.len(),
            Column::Nullable(n) => n.values().len(),
        }
    }
    /// Whether the column has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The values at the positions of `index` (categoricals keep all their categories).
    pub fn subset(&self, index: &AxisIndex) -> Result<Self> {
        Ok(match self {
            Column::Array(a) => {
                check_len(index, a.nrows(), "column")?;
                Column::Array(a.subset(0, index)?)
            }
            Column::Categorical(c) => Column::Categorical(c.subset(index)?),
            Column::Nullable(n) => Column::Nullable(n.subset(index)?),
        })
    }
    /// Selects positions (any order, repeats allowed). Indices must be in bounds.
    ///
    /// # Panics
    ///
    /// On an index out of bounds (or, for an array, an axis it does not have). `subset` is
    /// the checked form, for indices that come from outside.
    pub fn select(&self, idx: &[usize]) -> Self {
        match self {
            Column::Array(a) => Column::Array(a.select(0, idx)),
            Column::Categorical(c) => Column::Categorical(Categorical {
                codes: idx.iter().map(|&i| c.codes[i]).collect(),
                categories: c.categories.clone(),
                ordered: c.ordered,
            }),
            Column::Nullable(n) => Column::Nullable(n.select(idx)),
        }
    }
}

/// A data frame: an index and named columns of equal length.
///
/// ```
/// use annpage_engine::data::{ArrayData, Column, DataFrame};
/// let mut df = DataFrame::from_index(vec!["c1", "c2"]);
/// df.insert("n_genes", Column::Array(ArrayData::from(vec![10i64, 20]))).unwrap();
/// assert_eq!(df.nrows(), 2);
/// assert!(df.insert("bad", Column::Array(ArrayData::from(vec![1i64]))).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DataFrame {
    index: ArrayData,
    index_name: Option<String>,
    /// `Some` when a string index is stored as a `nullable-string-array` with no missing values
    /// (anndata 0.13 writes pandas' `str` and `string` indexes so), with its `na-value`.
    index_na: Option<StringNa>,
    columns: IndexMap<String, Column>,
}

impl DataFrame {
    /// A frame with a string index and no columns.
    pub fn from_index<S: Into<CompactString>>(names: impl IntoIterator<Item = S>) -> Self {
        let names: Vec<CompactString> = names.into_iter().map(Into::into).collect();
        DataFrame {
            index: ArrayData::from(names),
            index_name: None,
            index_na: None,
            columns: IndexMap::new(),
        }
    }

    /// A frame with any 1-d index (strings for obs/var; integers may appear in `uns`).
    pub fn with_index(index: ArrayData) -> Result<Self> {
        if index.ndim() != 1 {
            return Err(Error::malformed(format!(
                "a data frame index must be 1-d, got shape {:?}",
                index.shape()
            )));
        }
        Ok(DataFrame {
            index,
            index_name: None,
            index_na: None,
            columns: IndexMap::new(),
        })
    }

    /// A frame with `n` rows named `"0"`, `"1"`, … (anndata's default names).
    pub fn with_default_index(n: usize) -> Self {
        DataFrame::from_index((0..n).map(|i| i.to_compact_string()))
    }

    /// Number of rows.
    pub fn nrows(&self) -> usize {
        self.index.len()
    }
    /// The index.
    pub fn index(&self) -> &ArrayData {
        &self.index
    }
    /// The index as strings, if it holds strings.
    pub fn index_names(&self) -> Option<&[CompactString]> {
        self.index.as_strings()
    }
    /// The index's name (pandas `df.index.name`), if any.
    pub fn index_name(&self) -> Option<&str> {
        self.index_name.as_deref()
    }
    /// Sets the index's name.
    pub fn set_index_name(&mut self, name: Option<String>) {
        self.index_name = name;
    }
    /// How a string index is stored: `None` as a `string-array`, `Some` as a
    /// `nullable-string-array` with that `na-value` (pandas' `str` or `string` index, which
    /// anndata 0.13 writes so and reads back with that dtype).
    ///
    /// ```
    /// use annpage_engine::data::{DataFrame, StringNa};
    /// let mut df = DataFrame::from_index(vec!["a", "b"]);
    /// assert_eq!(df.index_string_na(), None);
    /// df.set_index_string_na(Some(StringNa::NaN))?;
    /// assert_eq!(df.index_string_na(), Some(StringNa::NaN));
    /// # Ok::<(), annpage_engine::Error>(())
    /// ```
    pub fn index_string_na(&self) -> Option<StringNa> {
        self.index_na
    }
    /// Sets how the string index is stored (see [`DataFrame::index_string_na`]); refused for
    /// an index that does not hold strings.
    pub fn set_index_string_na(&mut self, na: Option<StringNa>) -> Result<()> {
        if na.is_some() && self.index.as_strings().is_none() {
            return Err(Error::invalid(format!(
                "a {} index cannot be stored as a nullable string array",
                self.index.dtype()
            )));
        }
        self.index_na = na;
        Ok(())
    }
    /// Replaces the index; the length must stay the same. An index that is not text is
    /// stored as a plain array.
    pub fn set_index(&mut self, index: ArrayData) -> Result<()> {
        if index.ndim() != 1 || index.len() != self.nrows() {
            return Err(Error::shape(format!(
                "new index has shape {:?}, the frame has {} rows",
                index.shape(),
                self.nrows()
            )));
        }
        if index.as_strings().is_none() {
            self.index_na = None;
        }
        self.index = index;
        Ok(())
    }
    /// The columns in order.
    pub fn columns(&self) -> &IndexMap<String, Column> {
        &self.columns
    }
    /// The frame taken apart without a copy: its index, the index's name and its columns.
    ///
    /// ```
    /// use annpage_engine::data::{ArrayData, Column, DataFrame};
    /// let mut df = DataFrame::from_index(vec!["a", "b"]);
    /// df.insert("n", Column::Array(ArrayData::from(vec![1i32, 2])))?;
    /// let (index, name, columns) = df.into_parts();
    /// assert_eq!(index.as_strings().unwrap(), ["a", "b"]);
    /// assert_eq!((name, columns.len()), (None, 1));
    /// # Ok::<(), annpage_engine::Error>(())
    /// ```
    pub fn into_parts(self) -> (ArrayData, Option<String>, IndexMap<String, Column>) {
        (self.index, self.index_name, self.columns)
    }
    /// One column by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.get(name)
    }
    /// Adds or replaces a column; its length must equal the number of rows, an array column
    /// must be 1-d and a categorical's codes must name its (unique) categories.
    pub fn insert(&mut self, name: impl Into<String>, col: Column) -> Result<()> {
        let name = name.into();
        col.check()
            .map_err(|why| Error::invalid(format!("column '{name}': {why}")))?;
        if col.len() != self.nrows() {
            return Err(Error::shape(format!(
                "column '{name}' has {} values, the frame has {} rows",
                col.len(),
                self.nrows()
            )));
        }
        if name == "_index" {
            return Err(Error::invalid("'_index' is a reserved column name"));
        }
        self.columns.insert(name, col);
        Ok(())
    }
    /// Removes a column, returning it.
    pub fn remove(&mut self, name: &str) -> Option<Column> {
        self.columns.shift_remove(name)
    }
    /// The rows at the positions of `index`, in its order (pandas' `iloc`): the index and
    /// every column are selected; categoricals keep all their categories.
    ///
    /// ```
    /// use annpage_engine::data::{ArrayData, Column, DataFrame};
    /// use annpage_engine::select::Selection;
    /// let mut df = DataFrame::from_index(vec!["a", "b", "c"]);
    /// df.insert("n", Column::Array(ArrayData::from(vec![1i64, 2, 3]))).unwrap();
    /// let rows = Selection::slice(None, None, -2).resolve(3, None).unwrap();
    /// let sub = df.subset_rows(&rows).unwrap();
    /// assert_eq!(sub.index_names().unwrap(), ["c", "a"]);
    /// assert_eq!(sub.column("n"), Some(&Column::Array(ArrayData::from(vec![3i64, 1]))));
    /// ```
    pub fn subset_rows(&self, index: &AxisIndex) -> Result<Self> {
        check_len(index, self.nrows(), "data frame")?;
        Ok(DataFrame {
            index: self.index.subset(0, index)?,
            index_name: self.index_name.clone(),
            index_na: self.index_na,
            columns: self
                .columns
                .iter()
                .map(|(k, c)| Ok((k.clone(), c.subset(index)?)))
                .collect::<Result<_>>()?,
        })
    }

    /// Drops unused categories from every categorical column (see
    /// [`Categorical::remove_unused_categories`]), returning each such column's name with,
    /// for each of its old categories, whether it was kept.
    pub fn remove_unused_categories(&mut self) -> Vec<(String, Vec<bool>)> {
        self.columns
            .iter_mut()
            .filter_map(|(name, col)| match col {
                Column::Categorical(c) => Some((name.clone(), c.remove_unused_categories())),
                _ => None,
            })
            .collect()
    }

    /// Selects rows by position (any order, repeats allowed). Indices must be in bounds.
    ///
    /// # Panics
    ///
    /// On an index out of bounds (or, for an array, an axis it does not have). `subset_rows` is
    /// the checked form, for indices that come from outside.
    pub fn select(&self, idx: &[usize]) -> Self {
        DataFrame {
            index: self.index.select(0, idx),
            index_name: self.index_name.clone(),
            index_na: self.index_na,
            columns: self
                .columns
                .iter()
                .map(|(k, c)| (k.clone(), c.select(idx)))
                .collect(),
        }
    }
}

/// For `n` values with keys `key(i)` (`None`: missing): the first position of each distinct key
/// in `cmp` order, and each position's rank among the distinct keys.
fn distinct_sorted<K: Copy>(
    n: usize,
    key: impl Fn(usize) -> Option<K>,
    cmp: impl Fn(&K, &K) -> std::cmp::Ordering,
) -> (Vec<usize>, Vec<Option<usize>>) {
    let mut order: Vec<usize> = (0..n).filter(|&i| key(i).is_some()).collect();
    // Stable: equal keys keep their positions' order, so the first of a run is the first occurrence.
    order.sort_by(|&a, &b| cmp(&key(a).expect("present"), &key(b).expect("present")));
    let mut firsts = Vec::new();
    let mut of = vec![None; n];
    for (k, &i) in order.iter().enumerate() {
        let new = k == 0
            || cmp(
                &key(order[k - 1]).expect("present"),
                &key(i).expect("present"),
            )
            .is_ne();
        if new {
            firsts.push(i);
        }
        of[i] = Some(firsts.len() - 1);
    }
    (firsts, of)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::Selection;

    fn rows(s: Selection, n: usize) -> AxisIndex {
        s.resolve(n, None).unwrap()
    }

    /// obs of four cells: a categorical over more categories than used, a nullable integer
    /// column and a float column.
    fn frame() -> DataFrame {
        let mut df = DataFrame::from_index(["c0", "c1", "c2", "c3"].map(String::from).to_vec());
        df.set_index_name(Some("cell".into()));
        let ct = Categorical::new(
            vec![1, 2, 1, 0],
            ArrayData::from(vec!["c", "b", "a", "z"]),
            true,
        )
        .unwrap();
        df.insert("ct", Column::Categorical(ct)).unwrap();
        let n = Nullable::new(
            NullableKind::Integer,
            ArrayData::from(vec![10i64, 0, 30, 40]),
            vec![false, true, false, false],
        )
        .unwrap();
        df.insert("n", Column::Nullable(n)).unwrap();
        df.insert(
            "x",
            Column::Array(ArrayData::from(vec![0.5f32, 1.5, 2.5, 3.5])),
        )
        .unwrap();
        df
    }

    #[test]
    fn subset_rows_selects_every_column_in_order() {
        let sub = frame()
            .subset_rows(&rows(Selection::Positions(vec![-1, 1, 1]), 4))
            .unwrap();
        assert_eq!(sub.index_names().unwrap(), ["c3", "c1", "c1"]);
        assert_eq!(sub.index_name(), Some("cell"));
        let Some(Column::Categorical(ct)) = sub.column("ct") else {
            panic!("categorical expected")
        };
        // iloc keeps every category.
        assert_eq!(ct.codes, [0, 2, 2]);
        assert_eq!(ct.categories, ArrayData::from(vec!["c", "b", "a", "z"]));
        assert!(ct.ordered);
        let Some(Column::Nullable(n)) = sub.column("n") else {
            panic!("nullable expected")
        };
        assert_eq!(n.values(), &ArrayData::from(vec![40i64, 0, 0]));
        assert_eq!(n.mask(), [false, true, true]);
        assert_eq!(
            sub.column("x"),
            Some(&Column::Array(ArrayData::from(vec![3.5f32, 1.5, 1.5])))
        );
        let keys: Vec<_> = sub.columns().keys().collect();
        assert_eq!(keys, ["ct", "n", "x"]);
    }

    #[test]
    fn subset_rows_by_mask_and_backwards_slice() {
        let df = frame();
        let masked = df
            .subset_rows(&rows(Selection::Mask(vec![true, false, false, true]), 4))
            .unwrap();
        assert_eq!(masked.index_names().unwrap(), ["c0", "c3"]);
        let back = df
            .subset_rows(&rows(Selection::slice(Some(2), None, -1), 4))
            .unwrap();
        assert_eq!(back.index_names().unwrap(), ["c2", "c1", "c0"]);
        assert_eq!(
            back.column("x"),
            Some(&Column::Array(ArrayData::from(vec![2.5f32, 1.5, 0.5])))
        );
    }

    #[test]
    fn subset_rows_checks_the_length() {
        let e = frame().subset_rows(&AxisIndex::full(3)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch: the selection is for 3 rows, the data frame has 4"
        );
    }

    /// pandas: `pd.Categorical(['b', 'a', 'b', 'c'], categories=['c', 'b', 'a', 'z'],
    /// ordered=True)`, then `.iloc[[2, 0]]` and `.cat.remove_unused_categories()` gives
    /// categories `['b']`, codes `[0, 0]`, still ordered.
    #[test]
    fn unused_categories_are_removed_like_pandas() {
        let mut df = frame()
            .subset_rows(&rows(Selection::positions([2, 0]), 4))
            .unwrap();
        let pruned = df.remove_unused_categories();
        assert_eq!(
            pruned,
            [("ct".to_string(), vec![false, true, false, false])]
        );
        let Some(Column::Categorical(ct)) = df.column("ct") else {
            panic!("categorical expected")
        };
        assert_eq!(ct.codes, [0, 0]);
        assert_eq!(ct.categories, ArrayData::from(vec!["b"]));
        assert!(ct.ordered);
    }

    /// pandas: `pd.Categorical([1, 2, 1, 3]).remove_unused_categories()` after `[[2, 0]]` keeps
    /// the int64 categories `[1]`; an empty selection keeps none.
    #[test]
    fn numeric_and_empty_categoricals() {
        let c =
            Categorical::new(vec![0, 1, 0, 2], ArrayData::from(vec![1i64, 2, 3]), false).unwrap();
        let mut sub = c.subset(&rows(Selection::positions([2, 0]), 4)).unwrap();
        assert_eq!(sub.remove_unused_categories(), [true, false, false]);
        assert_eq!(sub.categories, ArrayData::from(vec![1i64]));
        assert_eq!(sub.codes, [0, 0]);

        let mut empty = c.subset(&rows(Selection::positions([]), 4)).unwrap();
        assert_eq!(empty.remove_unused_categories(), [false, false, false]);
        assert_eq!(empty.categories.dtype(), DType::I64);
        assert!(empty.categories.is_empty());
    }

    #[test]
    fn missing_values_stay_missing_when_categories_go() {
        let mut c =
            Categorical::new(vec![-1, 2, -1], ArrayData::from(vec!["a", "b", "c"]), false).unwrap();
        assert_eq!(c.remove_unused_categories(), [false, false, true]);
        assert_eq!(c.codes, [-1, 0, -1]);
        assert_eq!(c.categories, ArrayData::from(vec!["c"]));
    }

    #[test]
    fn columns_built_field_by_field_are_checked_when_inserted() {
        let mut df = frame();
        let bad_codes = Categorical {
            codes: vec![0, 5, -7, 1],
            categories: ArrayData::from(vec!["a", "b"]),
            ordered: false,
        };
        let e = df
            .insert("ct2", Column::Categorical(bad_codes))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("column 'ct2': categorical code 5 out of range"),
            "{e}"
        );
        let twice = Categorical {
            codes: vec![0, 0, 1, 1],
            categories: ArrayData::from(vec!["a", "a"]),
            ordered: false,
        };
        let e = df.insert("ct3", Column::Categorical(twice)).unwrap_err();
        assert!(e.to_string().contains("category 'a' appears twice"), "{e}");
        let wide = ArrayData::zeros(DType::F32, &[4, 2]);
        let e = df.insert("wide", Column::Array(wide)).unwrap_err();
        assert!(
            e.to_string()
                .contains("column 'wide': an array of shape [4, 2]: a column is 1-d"),
            "{e}"
        );
        assert_eq!(df, frame());
    }
}
