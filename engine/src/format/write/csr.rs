//! A CSR matrix appended a block of rows at a time: the sink of the streaming converters.

use super::{create_sparse_group, index_array, sparse_index_dtype, WriteOptions};
use crate::data::{ArrayData, DType, SparseFormat};
use crate::storage::{ArrayOptions, ArrayWriter, GroupWriter};
use crate::Result;

/// The `data`, `indices` and `indptr` of a CSR group, grown as blocks of rows are appended.
pub struct CsrAppender {
    data: Box<dyn ArrayWriter>,
    indices: Box<dyn ArrayWriter>,
    indptr: Box<dyn ArrayWriter>,
    index_dtype: DType,
    /// Values appended so far.
    values: u64,
}

impl CsrAppender {
    /// Creates group `name` of `parent` for a CSR matrix of `shape` holding values of `dtype`,
    /// at most `max_values` of them (which, with the shape, sets the index dtype as scipy would).
    pub fn create(
        parent: &dyn GroupWriter,
        name: &str,
        shape: (usize, usize),
        dtype: DType,
        max_values: usize,
        options: &WriteOptions,
    ) -> Result<Self> {
        let index_dtype = sparse_index_dtype(shape, max_values);
        let g = create_sparse_group(parent, name, SparseFormat::Csr, shape)?;
        let opts = ArrayOptions {
            chunks: Some(vec![1 << 16]),
            ..options.sparse_options()
        };
        let indptr = g.create_array("indptr", index_dtype, &[0], &opts)?;
        indptr.append_rows(&index_array(&[0u64], index_dtype)?)?;
        Ok(CsrAppender {
            data: g.create_array("data", dtype, &[0], &opts)?,
            indices: g.create_array("indices", index_dtype, &[0], &opts)?,
            indptr,
            index_dtype,
            values: 0,
        })
    }

    /// Appends rows: their `values` and column `indices`, and where each row ends, counted
    /// from the first value of the block.
    pub fn push(&mut self, values: &ArrayData, indices: &[u32], row_ends: &[u64]) -> Result<()> {
        self.data.append_rows(values)?;
        self.indices
            .append_rows(&index_array(indices, self.index_dtype)?)?;
        let ends: Vec<u64> = row_ends.iter().map(|&e| self.values + e).collect();
        self.indptr
            .append_rows(&index_array(&ends, self.index_dtype)?)?;
        self.values += indices.len() as u64;
        Ok(())
    }
}
