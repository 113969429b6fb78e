//! Compressed sparse matrices (CSR and CSC).

use super::ArrayData;
use crate::{Error, Result};

/// Row-compressed or column-compressed storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SparseFormat {
    /// Compressed sparse rows: `indptr` runs over rows, `indices` are columns.
    Csr,
    /// Compressed sparse columns: `indptr` runs over columns, `indices` are rows.
    Csc,
}

impl SparseFormat {
    /// The anndata encoding name (`csr_matrix` / `csc_matrix`).
    pub fn encoding(self) -> &'static str {
        match self {
            SparseFormat::Csr => "csr_matrix",
            SparseFormat::Csc => "csc_matrix",
        }
    }
}

/// A compressed sparse matrix whose arrays are known to be consistent.
///
/// Indices within a major slice need not be sorted and explicit zeros may be stored, as in
/// scipy. Construction checks lengths and bounds, so a value of this type is always valid.
///
/// ```
/// use annpage_engine::data::{ArrayData, SparseFormat, SparseMatrix};
/// // [[1, 0], [0, 2]]
/// let m = SparseMatrix::new(SparseFormat::Csr, (2, 2), vec![0, 1, 2], vec![0, 1],
///     ArrayData::from(vec![1.0f32, 2.0])).unwrap();
/// assert_eq!(m.nnz(), 2);
/// assert!(SparseMatrix::new(SparseFormat::Csr, (2, 2), vec![0, 1], vec![0],
///     ArrayData::from(vec![1.0f32])).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SparseMatrix {
    format: SparseFormat,
    shape: (usize, usize),
    indptr: Vec<u64>,
    indices: Vec<u64>,
    data: ArrayData,
}

impl SparseMatrix {
    /// Builds a matrix, checking that `indptr` has `major + 1` non-decreasing entries starting at
    /// 0 and ending at `nnz`, that `indices` and `data` (1-d, not strings) have `nnz` entries, and
    /// that every index is below the minor dimension.
    pub fn new(
        format: SparseFormat,
        shape: (usize, usize),
        indptr: Vec<u64>,
        indices: Vec<u64>,
        data: ArrayData,
    ) -> Result<Self> {
        let (major, minor) = match format {
            SparseFormat::Csr => shape,
            SparseFormat::Csc => (shape.1, shape.0),
        };
        if data.ndim() != 1 {
            return Err(Error::malformed(format!(
                "sparse data must be 1-d, got shape {:?}",
                data.shape()
            )));
        }
        if data.dtype() == super::DType::String {
            return Err(Error::malformed("sparse data cannot hold strings"));
        }
        if indptr.len() != major + 1 {
            return Err(Error::malformed(format!(
                "indptr has {} entries, expected {} for a {} matrix of shape {:?}",
                indptr.len(),
                major + 1,
                format.encoding(),
                shape
            )));
        }
        let nnz = data.len();
        if indices.len() != nnz {
            return Err(Error::malformed(format!(
                "indices has {} entries but data has {}",
                indices.len(),
                nnz
            )));
        }
        if indptr[0] != 0 || indptr[major] != nnz as u64 {
            return Err(Error::malformed(format!(
                "indptr must run from 0 to nnz={nnz}, got {}..{}",
                indptr[0], indptr[major]
            )));
        }
        if indptr.windows(2).any(|w| w[0] > w[1]) {
            return Err(Error::malformed("indptr is not non-decreasing"));
        }
        if let Some(bad) = indices.iter().find(|&&i| i >= minor as u64) {
            return Err(Error::malformed(format!(
                "index {bad} out of bounds for minor dimension {minor}"
            )));
        }
        Ok(SparseMatrix {
            format,
            shape,
            indptr,
            indices,
            data,
        })
    }

    /// An all-zero matrix with no stored values.
    pub fn empty(format: SparseFormat, shape: (usize, usize), dtype: super::DType) -> Self {
        let major = match format {
            SparseFormat::Csr => shape.0,
            SparseFormat::Csc => shape.1,
        };
        SparseMatrix {
            format,
            shape,
            indptr: vec![0; major + 1],
            indices: Vec::new(),
            data: ArrayData::zeros(dtype, &[0]),
        }
    }

    /// CSR or CSC.
    pub fn format(&self) -> SparseFormat {
        self.format
    }
    /// `(rows, columns)`.
    pub fn shape(&self) -> (usize, usize) {
        self.shape
    }
    /// Offsets of each major slice into `indices`/`data` (length major + 1).
    pub fn indptr(&self) -> &[u64] {
        &self.indptr
    }
    /// Minor index of each stored value.
    pub fn indices(&self) -> &[u64] {
        &self.indices
    }
    /// The stored values (1-d).
    pub fn data(&self) -> &ArrayData {
        &self.data
    }
    /// Number of stored values.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
    /// Takes the matrix apart into `(format, shape, indptr, indices, data)`.
    pub fn into_parts(self) -> (SparseFormat, (usize, usize), Vec<u64>, Vec<u64>, ArrayData) {
        (
            self.format,
            self.shape,
            self.indptr,
            self.indices,
            self.data,
        )
    }

    /// The same matrix with rows and columns swapped (CSR becomes CSC over the same arrays).
    pub fn transpose(self) -> Self {
        SparseMatrix {
            format: match self.format {
                SparseFormat::Csr => SparseFormat::Csc,
                SparseFormat::Csc => SparseFormat::Csr,
            },
            shape: (self.shape.1, self.shape.0),
            ..self
        }
    }
}
