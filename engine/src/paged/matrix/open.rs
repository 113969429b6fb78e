//! Opening a backed matrix: its datasets checked against each other, `indptr` read and
//! checked, the major axis cut into blocks.

use std::mem::size_of;

use crate::data::integers_as_u64;
use crate::data::{DType, SparseFormat, MAX_MINOR};
use crate::error::ResultExt;
use crate::paged::block::Blocking;
use crate::paged::io::RangeReader;
use crate::paged::source::SourceKind;
use crate::{Error, Result};

use super::Datasets;

/// How many `indptr` entries are read at once when opening a sparse matrix.
const INDPTR_READ: usize = 1 << 20;

/// Checks the datasets of a source and cuts the major axis into blocks.
pub(super) fn open_datasets(
    kind: SourceKind,
    block_bytes: usize,
) -> Result<((usize, usize), DType, Datasets, Blocking)> {
    match kind {
        SourceKind::Dense(values) => {
            let [rows, cols] = *values.shape() else {
                return Err(Error::shape(format!(
                    "a matrix must be 2-d, this array has shape {:?}",
                    values.shape()
                )));
            };
            let dtype = values.dtype();
            if dtype == DType::String {
                return Err(Error::malformed("a matrix cannot hold strings"));
            }
            let row_bytes = cols.saturating_mul(dtype.size());
            let blocking = Blocking::dense(rows, row_bytes, block_bytes, values.chunk_rows());
            Ok(((rows, cols), dtype, Datasets::Dense { values }, blocking))
        }
        SourceKind::Sparse {
            format,
            shape,
            indptr,
            indices,
            data,
        } => {
            let (major, minor) = match format {
                SparseFormat::Csr => shape,
                SparseFormat::Csc => (shape.1, shape.0),
            };
            let offsets = read_indptr(indptr.as_ref(), major)?;
            let nnz = offsets.last().copied().unwrap_or(0);
            for (name, reader) in [("indices", &indices), ("data", &data)] {
                match *reader.shape() {
                    [n] if n as u64 == nnz => {}
                    ref other => {
                        return Err(Error::malformed(format!(
                            "'{name}' has shape {other:?}, expected [{nnz}] (the last indptr value)"
                        )))
                    }
                }
            }
            if !indices.dtype().is_integer() {
                return Err(Error::malformed(format!(
                    "'indices' must hold integers, found {}",
                    indices.dtype()
                )));
            }
            let dtype = data.dtype();
            if dtype == DType::String {
                return Err(Error::malformed("sparse data cannot hold strings"));
            }
            if minor as u64 > MAX_MINOR {
                return Err(Error::unsupported(format!(
                    "a sparse matrix whose minor dimension ({minor}) exceeds 2^32"
                )));
            }
            let entry_bytes = dtype.size() + size_of::<u32>();
            let blocking = Blocking::sparse(&offsets, entry_bytes, block_bytes, data.chunk_rows());
            let datasets = Datasets::Sparse {
                format,
                indptr: offsets,
                entry_bytes,
                indices,
                data,
            };
            Ok((shape, dtype, datasets, blocking))
        }
    }
}

/// Reads and checks `indptr` for `major` slices, a piece at a time.
fn read_indptr(reader: &dyn RangeReader, major: usize) -> Result<Vec<u64>> {
    let n = major + 1;
    if reader.shape() != [n] {
        return Err(Error::malformed(format!(
            "'indptr' has shape {:?}, expected [{n}] for {major} major slices",
            reader.shape()
        )));
    }
    let mut offsets = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let end = n.min(start + INDPTR_READ);
        let piece = reader.read_rows(start..end)?;
        let values = integers_as_u64(&piece).in_element(reader.element())?;
        if values.len() != end - start {
            return Err(Error::malformed(format!(
                "'indptr': read {} values, expected {}",
                values.len(),
                end - start
            )));
        }
        offsets.extend(values);
        start = end;
    }
    if offsets.first() != Some(&0) {
        return Err(Error::malformed("'indptr' must start at 0"));
    }
    if offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err(Error::malformed("'indptr' is not non-decreasing"));
    }
    Ok(offsets)
}

pub(super) fn metadata_bytes(datasets: &Datasets, blocking: &Blocking) -> usize {
    let indptr = match datasets {
        Datasets::Sparse { indptr, .. } => indptr.capacity() * size_of::<u64>(),
        Datasets::Dense { .. } => 0,
    };
    indptr + blocking.heap_bytes()
}
