//! Mutable access to `obs` and `var` that cannot break the object's shape.

use std::ops::Deref;

use annpage_engine::data::{Column, DataFrame};
use annpage_engine::Result;

/// Edits the columns of `obs` or `var` in place (see [`crate::AnnData::obs_mut`]).
///
/// A plain `&mut DataFrame` would let the frame be replaced by one of another length, or its
/// index by a non-string one; this handle only offers edits that keep the rows and the names.
/// Reading goes through `Deref` to the [`DataFrame`]. Names are changed with
/// [`crate::AnnData::set_obs_names`] / [`crate::AnnData::set_var_names`], which keep the data
/// frames in `obsm`/`varm` in step.
///
/// ```
/// use annpage::data::{ArrayData, Column};
/// use annpage::AnnData;
/// let mut adata = AnnData::new(2, 3);
/// adata.obs_mut().insert("n_genes", Column::Array(ArrayData::from(vec![5i64, 7]))).unwrap();
/// assert!(adata.obs_mut().insert("bad", Column::Array(ArrayData::from(vec![1i64]))).is_err());
/// assert_eq!(adata.obs().columns().len(), 1);
/// ```
#[derive(Debug)]
pub struct FrameMut<'a> {
    frame: &'a mut DataFrame,
}

impl<'a> FrameMut<'a> {
    pub(crate) fn new(frame: &'a mut DataFrame) -> Self {
        FrameMut { frame }
    }

    /// Adds or replaces a column; it must have one value per row.
    pub fn insert(&mut self, name: impl Into<String>, column: Column) -> Result<()> {
        self.frame.insert(name, column)
    }

    /// Removes a column, returning it.
    pub fn remove(&mut self, name: &str) -> Option<Column> {
        self.frame.remove(name)
    }

    /// Sets the name of the index (pandas `df.index.name`).
    pub fn set_index_name(&mut self, name: Option<String>) {
        self.frame.set_index_name(name);
    }
}

impl Deref for FrameMut<'_> {
    type Target = DataFrame;

    fn deref(&self) -> &DataFrame {
        self.frame
    }
}
