//! What a [`MatrixSource`] says about its matrix before it is opened: kind, shape and dtype,
//! all known from metadata (for callers that describe matrices they may never read).

use super::matrix::MatrixKind;
use super::source::{MatrixSource, SourceKind};
use crate::data::DType;

impl MatrixSource {
    /// Dense, CSR or CSC.
    pub fn kind(&self) -> MatrixKind {
        match self.source_kind() {
            SourceKind::Dense(_) => MatrixKind::Dense,
            SourceKind::Sparse { format, .. } => MatrixKind::Sparse(*format),
        }
    }

    /// `(rows, columns)`: a sparse matrix's `shape` attribute, or a dense dataset's shape when
    /// it is 2-d (`None` otherwise: such a dataset is not a matrix).
    ///
    /// ```
    /// use annpage_engine::backed::{InMemoryReader, MatrixKind, MatrixSource};
    /// use annpage_engine::data::{ArrayData, DType};
    /// let values = ArrayData::from(ndarray::Array2::<f32>::zeros((3, 2)));
    /// let source = MatrixSource::dense("/X", Box::new(InMemoryReader::new("/X", values).unwrap()));
    /// assert_eq!((source.kind(), source.shape(), source.dtype()), (MatrixKind::Dense, Some((3, 2)), DType::F32));
    /// let flat = ArrayData::from(vec![1i64, 2]);
    /// let source = MatrixSource::dense("/v", Box::new(InMemoryReader::new("/v", flat).unwrap()));
    /// assert_eq!(source.shape(), None);
    /// ```
    pub fn shape(&self) -> Option<(usize, usize)> {
        match self.source_kind() {
            SourceKind::Dense(values) => match *values.shape() {
                [rows, cols] => Some((rows, cols)),
                _ => None,
            },
            SourceKind::Sparse { shape, .. } => Some(*shape),
        }
    }

    /// The dtype of the values (a sparse matrix's `data`).
    pub fn dtype(&self) -> DType {
        match self.source_kind() {
            SourceKind::Dense(values) => values.dtype(),
            SourceKind::Sparse { data, .. } => data.dtype(),
        }
    }
}
