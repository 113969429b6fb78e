//! Data frames (`obs`, `var`, and frames in `uns`/`obsm`) and their column types.

use indexmap::IndexMap;

use super::{ArrayData, DType};
use crate::{Error, Result};

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
    /// Builds a categorical, checking that every code is `-1` or a valid category position.
    pub fn new(codes: Vec<i32>, categories: ArrayData, ordered: bool) -> Result<Self> {
        let n = categories.len() as i64;
        if let Some(bad) = codes.iter().find(|&&c| c < -1 || c as i64 >= n) {
            return Err(Error::malformed(format!(
                "categorical code {bad} out of range for {n} categories"
            )));
        }
        Ok(Categorical {
            codes,
            categories,
            ordered,
        })
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
    /// `nullable-string-array` (pandas `string`).
    String,
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
            NullableKind::String => values.dtype() == DType::String,
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
    /// Selects positions (any order, repeats allowed).
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
    /// Selects positions (any order, repeats allowed). Indices must be in bounds.
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
/// let mut df = DataFrame::from_index(vec!["c1".to_string(), "c2".to_string()]);
/// df.insert("n_genes", Column::Array(ArrayData::from(vec![10i64, 20]))).unwrap();
/// assert_eq!(df.nrows(), 2);
/// assert!(df.insert("bad", Column::Array(ArrayData::from(vec![1i64]))).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DataFrame {
    index: ArrayData,
    index_name: Option<String>,
    columns: IndexMap<String, Column>,
}

impl DataFrame {
    /// A frame with a string index and no columns.
    pub fn from_index(names: Vec<String>) -> Self {
        DataFrame {
            index: ArrayData::from(names),
            index_name: None,
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
            columns: IndexMap::new(),
        })
    }

    /// A frame with `n` rows named `"0"`, `"1"`, … (anndata's default names).
    pub fn with_default_index(n: usize) -> Self {
        DataFrame::from_index((0..n).map(|i| i.to_string()).collect())
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
    pub fn index_names(&self) -> Option<&[String]> {
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
    /// Replaces the index; the length must stay the same.
    pub fn set_index(&mut self, index: ArrayData) -> Result<()> {
        if index.ndim() != 1 || index.len() != self.nrows() {
            return Err(Error::shape(format!(
                "new index has shape {:?}, the frame has {} rows",
                index.shape(),
                self.nrows()
            )));
        }
        self.index = index;
        Ok(())
    }
    /// The columns in order.
    pub fn columns(&self) -> &IndexMap<String, Column> {
        &self.columns
    }
    /// One column by name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.get(name)
    }
    /// Adds or replaces a column; its length must equal the number of rows.
    pub fn insert(&mut self, name: impl Into<String>, col: Column) -> Result<()> {
        let name = name.into();
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
    /// Selects rows by position (any order, repeats allowed). Indices must be in bounds.
    pub fn select(&self, idx: &[usize]) -> Self {
        DataFrame {
            index: self.index.select(0, idx),
            index_name: self.index_name.clone(),
            columns: self
                .columns
                .iter()
                .map(|(k, c)| (k.clone(), c.select(idx)))
                .collect(),
        }
    }
}
