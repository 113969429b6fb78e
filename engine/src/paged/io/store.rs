//! [`StoreReader`]: range reads through a storage backend's own array reader, for arrays that
//! no reader of the chunk manager reads faster (every Zarr array; HDF5 datasets have the direct
//! and libhdf5 readers).

use std::ops::Range;

use super::{check_rows, range_dtype, RangeReader, ReadPath};
use crate::data::{ArrayData, DType};
use crate::error::ResultExt;
use crate::storage::Array;
use crate::{Error, Result};

/// A [`RangeReader`] over a 1-d or 2-d [`Array`] of numbers or bools, reading through
/// [`Array::read_rows`] (the backend decodes whole chunks, on as many threads as it uses).
pub struct StoreReader {
    array: Box<dyn Array>,
    element: String,
    shape: Vec<usize>,
    dtype: DType,
    chunk_rows: Option<usize>,
}

impl std::fmt::Debug for StoreReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReader")
            .field("element", &self.element)
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .finish()
    }
}

impl StoreReader {
    /// Reads from `array`, which must be 1-d or 2-d and hold numbers or bools (its claim is
    /// checked first).
    pub fn new(array: Box<dyn Array>) -> Result<Self> {
        let element = array.path();
        let build = || -> Result<(Vec<usize>, DType, Option<usize>)> {
            array.check_claim()?;
            let shape = array.shape()?;
            let dtype = range_dtype(&array.stored_type()?, &shape)?;
            let chunk_rows = array.chunk_rows()?;
            Ok((shape, dtype, chunk_rows))
        };
        let (shape, dtype, chunk_rows) = build().in_element(&element)?;
        Ok(StoreReader {
            array,
            element,
            shape,
            dtype,
            chunk_rows,
        })
    }
}

impl RangeReader for StoreReader {
    fn element(&self) -> &str {
        &self.element
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn dtype(&self) -> DType {
        self.dtype
    }

    fn chunk_rows(&self) -> Option<usize> {
        self.chunk_rows
    }

    fn decodes_whole_chunks(&self) -> bool {
        self.chunk_rows.is_some()
    }

    fn read_path(&self) -> ReadPath {
        ReadPath::Store
    }

    fn read_rows(&self, rows: Range<usize>) -> Result<ArrayData> {
        check_rows(&rows, self.shape[0])?;
        let values = self
            .array
            .read_rows(rows.clone())
            .in_element(&self.element)?;
        let mut expected = self.shape.clone();
        expected[0] = rows.len();
        if values.shape() != expected.as_slice() || values.dtype() != self.dtype {
            return Err(Error::malformed(format!(
                "a read of rows {rows:?} gave {} values of shape {:?}, expected {} of shape \
                 {expected:?}",
                values.dtype(),
                values.shape(),
                self.dtype
            ))
            .in_element(&self.element));
        }
        Ok(values)
    }
}
