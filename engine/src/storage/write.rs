//! The writing side of the storage seam: groups and arrays created, filled and given
//! attributes. HDF5 groups implement [`GroupWriter`] and datasets [`ArrayWriter`]; the
//! format layer writes every element through them.

use std::any::Any;
use std::ops::Range;

use crate::data::{ArrayData, AttrValue, DType, RawData};
use crate::{Error, Result};

/// How arrays are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// No compression (anndata's default).
    #[default]
    None,
    /// Deflate at the given level (0–9; h5py's default is 4).
    Gzip(u8),
    /// h5py's LZF filter (filter id 32000).
    Lzf,
}

/// How a new array is stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArrayOptions {
    /// The compression filter (ignored for 0-d datasets).
    pub compression: Compression,
    /// Whether the first axis may grow later (an unlimited maximum, as anndata gives the
    /// `data`/`indices`/`indptr` of sparse matrices). Resizable datasets are always chunked.
    pub resizable: bool,
    /// The chunk shape; `None` chooses h5py's (`guess_chunk`) when chunks are needed.
    /// Giving one makes the dataset chunked even without compression.
    pub chunks: Option<Vec<usize>>,
}

impl ArrayOptions {
    /// Options with the given compression and nothing else.
    pub fn compressed(compression: Compression) -> Self {
        ArrayOptions {
            compression,
            ..ArrayOptions::default()
        }
    }

    /// The same options, with a first axis that may grow.
    pub fn resizable(self) -> Self {
        ArrayOptions {
            resizable: true,
            ..self
        }
    }
}

/// What groups and arrays being written share: a path and attributes.
pub trait AttrWriter: Send + Sync {
    /// The node's path from the root (`/` for the root).
    fn path(&self) -> String;

    /// Sets attribute `name` (replacing any of that name): a 0-d array is a scalar.
    fn set_attr(&self, name: &str, value: &AttrValue) -> Result<()>;

    /// Sets a string attribute.
    fn set_str_attr(&self, name: &str, value: &str) -> Result<()> {
        let value = ndarray::ArrayD::from_elem(ndarray::IxDyn(&[]), value.into());
        self.set_attr(name, &ArrayData::String(value))
    }
}

/// A group being written: members created in it, attributes set on it.
pub trait GroupWriter: AttrWriter {
    /// Whether member `name` exists.
    fn contains(&self, name: &str) -> Result<bool>;

    /// Removes member `name` (and everything below it); nothing when there is none.
    fn remove(&self, name: &str) -> Result<()>;

    /// Creates group `name`.
    fn create_group(&self, name: &str) -> Result<Box<dyn GroupWriter>>;

    /// Opens existing group `name` for writing.
    fn open_group(&self, name: &str) -> Result<Box<dyn GroupWriter>>;

    /// Creates array `name` for values of `dtype` and `shape`, to be filled with
    /// [`ArrayWriter::write_rows`] (or grown with [`ArrayWriter::append_rows`] when
    /// `options.resizable`).
    fn create_array(
        &self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        options: &ArrayOptions,
    ) -> Result<Box<dyn ArrayWriter>>;

    /// Writes `data` (any dtype and shape, including 0-d and empty) as array `name`; nothing
    /// is left behind when it fails.
    fn write_array(
        &self,
        name: &str,
        data: &ArrayData,
        options: &ArrayOptions,
    ) -> Result<Box<dyn ArrayWriter>>;

    /// Writes an array with no shape and no values (anndata's `None`), of `dtype`.
    fn write_null(&self, name: &str, dtype: DType) -> Result<Box<dyn ArrayWriter>>;

    /// Writes a raw array's contents, compound (structured) data included where the backend
    /// stores it.
    fn write_raw(
        &self,
        name: &str,
        data: &RawData,
        options: &ArrayOptions,
    ) -> Result<Box<dyn ArrayWriter>>;
}

/// An array being written.
pub trait ArrayWriter: AttrWriter {
    /// Writes `rows` from row `start` on (along the first axis): the array's dtype and
    /// trailing axes, ending within its length.
    fn write_rows(&self, start: usize, rows: &ArrayData) -> Result<()>;

    /// Appends `rows` at the end of a resizable array; its new length.
    fn append_rows(&self, rows: &ArrayData) -> Result<usize>;

    /// The rows of one chunk (the inner chunks of a sharded array), if the array is chunked:
    /// writes of whole chunks' rows are stored as they come, others wait for their chunk.
    fn chunk_rows(&self) -> Option<usize>;

    /// The array as [`Any`], for writers with a faster path for one backend (parallel gzip
    /// into HDF5 datasets).
    fn as_any(&self) -> &dyn Any;
}

/// Fails unless `rows` fit an array of `shape` row for row: as many axes, the same trailing
/// axes, and the array not 0-d. `noun` names the array in messages ("a dataset", "an array").
pub(crate) fn check_fit(shape: &[usize], rows: &ArrayData, noun: &str) -> Result<()> {
    if shape.is_empty() || rows.ndim() != shape.len() || rows.shape()[1..] != shape[1..] {
        return Err(Error::invalid(format!(
            "rows of shape {:?} do not fit {noun} of shape {shape:?}",
            rows.shape()
        )));
    }
    Ok(())
}

/// The rows `start..start + n` of an array of `len` rows (`noun` in messages), failing unless
/// they end within it.
pub(crate) fn row_range(len: usize, start: usize, n: usize, noun: &str) -> Result<Range<usize>> {
    start
        .checked_add(n)
        .filter(|&end| end <= len)
        .map(|end| start..end)
        .ok_or_else(|| {
            Error::invalid(format!(
                "rows {start}..{} are outside {noun} of {len} rows",
                start.saturating_add(n)
            ))
        })
}
