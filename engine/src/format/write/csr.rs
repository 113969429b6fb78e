//! A CSR matrix appended a block of rows at a time: the sink of the streaming converters.

use hdf5::{Dataset, Group};

use super::{create_sparse_group, index_array, sparse_index_dtype, WriteOptions};
use crate::data::{ArrayData, DType, SparseFormat};
use crate::storage::h5::write::{append_rows, create_array, DatasetOptions};
use crate::Result;

/// The `data`, `indices` and `indptr` of a CSR group, grown as blocks of rows are appended.
pub struct CsrAppender {
    data: Dataset,
    indices: Dataset,
    indptr: Dataset,
    index_dtype: DType,
    /// Values appended so far.
    values: u64,
}

impl CsrAppender {
    /// Creates group `name` of `parent` for a CSR matrix of `shape` holding values of `dtype`,
    /// at most `max_values` of them (which, with the shape, sets the index dtype as scipy would).
    pub fn create(
        parent: &Group,
        name: &str,
        shape: (usize, usize),
        dtype: DType,
        max_values: usize,
        options: &WriteOptions,
    ) -> Result<Self> {
        let index_dtype = sparse_index_dtype(shape, max_values);
        let g = create_sparse_group(parent, name, SparseFormat::Csr, shape)?;
        let opts = DatasetOptions {
            chunks: Some(vec![1 << 16]),
            ..options.sparse_options()
        };
        let indptr = create_array(&g, "indptr", index_dtype, &[0], &opts)?;
        append_rows(&indptr, &index_array(&[0u64], index_dtype)?)?;
        Ok(CsrAppender {
            data: create_array(&g, "data", dtype, &[0], &opts)?,
            indices: create_array(&g, "indices", index_dtype, &[0], &opts)?,
            indptr,
            index_dtype,
            values: 0,
        })
    }

    /// Appends rows: their `values` and column `indices`, and where each row ends, counted
    /// from the first value of the block.
    pub fn push(&mut self, values: &ArrayData, indices: &[u32], row_ends: &[u64]) -> Result<()> {
        append_rows(&self.data, values)?;
        append_rows(&self.indices, &index_array(indices, self.index_dtype)?)?;
        let ends: Vec<u64> = row_ends.iter().map(|&e| self.values + e).collect();
        append_rows(&self.indptr, &index_array(&ends, self.index_dtype)?)?;
        self.values += indices.len() as u64;
        Ok(())
    }
}
