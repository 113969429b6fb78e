//! [`H5RangeReader`]: hyperslab reads through libhdf5, for every dataset the direct reader
//! does not read (other filters, layouts, byte orders, or direct reads turned off).

use std::ops::Range;

use hdf5::Dataset;

use super::{check_rows, range_dtype, RangeReader, ReadPath};
use crate::data::{ArrayData, DType};
use crate::error::ResultExt;
use crate::storage::h5::read::{read_hyperslab, stored_type};
use crate::{Error, Result};

/// A [`RangeReader`] over a 1-d or 2-d HDF5 dataset of numbers or bools, reading hyperslabs.
///
/// Integers and floats are read in their stored type; bools are
/// h5py's int8 enum. Other types (strings, compounds, non-bool enums) are refused on
/// construction: backed reads are for matrices.
#[derive(Debug)]
pub struct H5RangeReader {
    dataset: Dataset,
    element: String,
    shape: Vec<usize>,
    dtype: DType,
    chunk_rows: Option<usize>,
    /// Why the dataset is not read directly.
    reason: String,
}

impl H5RangeReader {
    /// Reads from `dataset`, which must have at least one dimension.
    pub fn new(dataset: Dataset) -> Result<Self> {
        let element = dataset.name();
        let build = || -> Result<Self> {
            let space = dataset.space()?;
            let shape = if space.is_null() {
                vec![0]
            } else {
                space.shape()
            };
            let dtype = range_dtype(&stored_type(&dataset)?, &shape)?;
            let chunk_rows = dataset.chunk().and_then(|c| c.first().copied());
            Ok(H5RangeReader {
                dataset: dataset.clone(),
                element: element.clone(),
                shape,
                dtype,
                chunk_rows,
                reason: "direct reads are off".into(),
            })
        };
        build().in_element(&element)
    }

    /// Records why the dataset is read through libhdf5 (see [`RangeReader::read_path`]).
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// Replaces a failure caused by a filter this build lacks with an error naming it.
    fn explain(&self, err: Error) -> Error {
        match self
            .dataset
            .filters()
            .into_iter()
            .find(|f| !f.is_available())
        {
            Some(f) => Error::unsupported(format!(
                "the dataset is compressed with HDF5 filter {}, which this build of annpage \
                 cannot decode",
                f.id()
            )),
            None => err,
        }
    }
}

impl RangeReader for H5RangeReader {
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
        // libhdf5 reads chunked datasets a chunk at a time, through its chunk cache.
        self.chunk_rows.is_some()
    }

    fn read_path(&self) -> ReadPath {
        ReadPath::Hdf5 {
            reason: self.reason.clone(),
        }
    }

    fn read_rows(&self, rows: Range<usize>) -> Result<ArrayData> {
        check_rows(&rows, self.shape[0])?;
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        if shape.contains(&0) {
            // HDF5 refuses empty hyperslabs; there is nothing to read anyway.
            return Ok(ArrayData::zeros(self.dtype, &shape));
        }
        read_hyperslab(&self.dataset, &self.shape, self.dtype, rows)
            .map_err(|e| self.explain(e))
            .in_element(&self.element)
    }
}
