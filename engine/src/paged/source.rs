//! The datasets of a matrix element: found from its metadata ([`open_matrix`]), opened with a
//! [`RangeReader`] each (direct where it can, else libhdf5, as [`ReadOptions`] say), and what
//! the metadata tells of the matrix before it is read ([`MatrixSource::kind`], `shape`,
//! `dtype`).

use std::sync::Arc;

use hdf5::Dataset;

use super::io::{
    default_threads, DirectOpen, DirectReader, H5RangeReader, RangeReader, ReadPath, StoreReader,
};
use super::pool::WorkerPool;
use crate::data::{DType, SparseFormat};
use crate::error::ResultExt;
use crate::format::read::{describe_matrix, MatrixArrays};
use crate::storage::{Array, Group};
use crate::{Error, Result};

pub use crate::format::read::MatrixKind;

/// How matrices are read from HDF5 files.
///
/// ```
/// use annpage_engine::paged::ReadOptions;
/// let o = ReadOptions::default();
/// assert!(o.direct && o.workers.threads() >= 1);
/// let one = ReadOptions::with_threads(1);
/// let shared = one.clone(); // the same worker threads, for another handle
/// assert!(std::sync::Arc::ptr_eq(&one.workers, &shared.workers));
/// ```
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Read and decode stored chunks in annpage where the dataset allows it (else every read
    /// goes through libhdf5).
    pub direct: bool,
    /// The worker threads that load a matrix's blocks ahead of its readers; their number is
    /// also how many threads one large read decodes its chunks on. Clones share them.
    pub workers: Arc<WorkerPool>,
}

impl ReadOptions {
    /// Direct reads with a new pool of `threads` workers (at least 1, at most four per core or
    /// 16: see [`WorkerPool::new`]).
    pub fn with_threads(threads: usize) -> Self {
        ReadOptions {
            direct: true,
            workers: Arc::new(WorkerPool::new(threads)),
        }
    }
}

impl Default for ReadOptions {
    /// Direct reads, with a new pool of one worker per core.
    fn default() -> Self {
        ReadOptions::with_threads(default_threads())
    }
}

/// The datasets of one matrix element and what its metadata says about them, not yet checked
/// against each other ([`super::BackedMatrix::new`] does that).
///
/// ```
/// use annpage_engine::paged::{InMemoryReader, MatrixSource};
/// use annpage_engine::data::{ArrayData, SparseFormat};
/// let reader = |name: &str, a: ArrayData| Box::new(InMemoryReader::new(name, a).unwrap());
/// // [[1, 0], [0, 2]] as CSR.
/// let source = MatrixSource::sparse(
///     "/X",
///     SparseFormat::Csr,
///     (2, 2),
///     reader("/X/indptr", ArrayData::from(vec![0i32, 1, 2])),
///     reader("/X/indices", ArrayData::from(vec![0i32, 1])),
///     reader("/X/data", ArrayData::from(vec![1.0f32, 2.0])),
/// );
/// assert_eq!(source.element(), "/X");
/// ```
#[derive(Debug)]
pub struct MatrixSource {
    element: String,
    kind: SourceKind,
    workers: Option<Arc<WorkerPool>>,
}

/// The datasets of a dense or sparse matrix.
#[derive(Debug)]
pub(crate) enum SourceKind {
    Dense(Box<dyn RangeReader>),
    Sparse {
        format: SparseFormat,
        shape: (usize, usize),
        indptr: Box<dyn RangeReader>,
        indices: Box<dyn RangeReader>,
        data: Box<dyn RangeReader>,
    },
}

impl MatrixSource {
    /// A dense matrix stored as one 2-d dataset.
    pub fn dense(element: impl Into<String>, values: Box<dyn RangeReader>) -> Self {
        MatrixSource {
            element: element.into(),
            kind: SourceKind::Dense(values),
            workers: None,
        }
    }

    /// A CSR or CSC matrix of `shape` stored as its three 1-d datasets.
    pub fn sparse(
        element: impl Into<String>,
        format: SparseFormat,
        shape: (usize, usize),
        indptr: Box<dyn RangeReader>,
        indices: Box<dyn RangeReader>,
        data: Box<dyn RangeReader>,
    ) -> Self {
        MatrixSource {
            element: element.into(),
            kind: SourceKind::Sparse {
                format,
                shape,
                indptr,
                indices,
                data,
            },
            workers: None,
        }
    }

    /// Sets the worker threads a matrix over this source loads blocks on (by default a pool
    /// of its own, one thread per core).
    pub fn with_workers(mut self, workers: Arc<WorkerPool>) -> Self {
        self.workers = Some(workers);
        self
    }

    /// The matrix element, e.g. `/X` or `/layers/counts`.
    pub fn element(&self) -> &str {
        &self.element
    }

    /// Takes the source apart: element, datasets, workers.
    pub(crate) fn into_parts(self) -> (String, SourceKind, Option<Arc<WorkerPool>>) {
        (self.element, self.kind, self.workers)
    }

    /// The datasets (for the metadata accessors in `meta.rs`).
    pub(crate) fn source_kind(&self) -> &SourceKind {
        &self.kind
    }
}

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
    /// use annpage_engine::paged::{InMemoryReader, MatrixKind, MatrixSource};
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

/// Finds the arrays of the matrix element `name` in `parent` from its metadata only: a dense
/// 2-d array (`array` encoding or none), a `csr_matrix`/`csc_matrix` group, or a legacy sparse
/// group (attributes `h5sparse_format` and `h5sparse_shape`, or no encoding attributes and
/// `data`/`indices`/`indptr` members whose `indptr` length tells the format).
///
/// Nothing but attributes, array headers and chunk tables is read. HDF5 datasets are read
/// directly where [`DirectReader`] can (see [`ReadOptions::default`]), else through libhdf5;
/// other backends' arrays through their own reader ([`StoreReader`]).
#[cfg(test)]
pub(crate) fn open_matrix(parent: &dyn Group, name: &str) -> Result<MatrixSource> {
    open_matrix_with(parent, name, &ReadOptions::default())
}

/// [`open_matrix`] with explicit [`ReadOptions`].
pub(crate) fn open_matrix_with(
    parent: &dyn Group,
    name: &str,
    options: &ReadOptions,
) -> Result<MatrixSource> {
    let element = crate::storage::join_path(&parent.path(), name);
    let layout = describe_matrix(parent, name)?;
    let open = || -> Result<MatrixSource> {
        Ok(match layout.arrays {
            MatrixArrays::Dense(values) => MatrixSource::dense(&element, reader(values, options)?),
            MatrixArrays::Sparse {
                indptr,
                indices,
                data,
            } => {
                let MatrixKind::Sparse(format) = layout.kind else {
                    return Err(Error::malformed("a sparse matrix's kind is not sparse"));
                };
                MatrixSource::sparse(
                    &element,
                    format,
                    layout.shape,
                    reader(indptr, options)?,
                    reader(indices, options)?,
                    reader(data, options)?,
                )
            }
        })
    };
    let source = open().in_element(&element)?;
    Ok(source.with_workers(Arc::clone(&options.workers)))
}

/// The reader for one array: for an HDF5 dataset, direct when the options and the dataset
/// allow it, else through libhdf5; for any other backend, its own reader.
pub(crate) fn reader(array: Box<dyn Array>, options: &ReadOptions) -> Result<Box<dyn RangeReader>> {
    let Some(ds) = array.as_any().downcast_ref::<Dataset>() else {
        let workers = Arc::clone(&options.workers);
        return Ok(Box::new(StoreReader::new(array)?.with_workers(workers)));
    };
    let ds = ds.clone();
    crate::storage::h5::claim::check_claim(&ds)?;
    if !options.direct {
        let off = "direct reads are turned off (ReadOptions::direct)";
        return Ok(Box::new(H5RangeReader::new(ds)?.with_reason(off)));
    }
    match DirectReader::open(&ds, &options.workers)? {
        DirectOpen::Reader(r) => Ok(Box::new(r)),
        DirectOpen::Fallback(reason) => Ok(Box::new(H5RangeReader::new(ds)?.with_reason(reason))),
    }
}

/// How [`reader`] would read `array` with `options`, found from its metadata and chunk index
/// (no values read), for descriptions such as `annpage info`.
pub(crate) fn describe_read_path(array: &dyn Array, options: &ReadOptions) -> Result<ReadPath> {
    let Some(ds) = array.as_any().downcast_ref::<Dataset>() else {
        return Ok(crate::storage::zarr::read_path(array));
    };
    if !options.direct {
        return Ok(ReadPath::Hdf5 {
            reason: "direct reads are turned off (ReadOptions::direct)".into(),
        });
    }
    Ok(match DirectReader::open(ds, &options.workers)? {
        DirectOpen::Reader(r) => r.read_path(),
        DirectOpen::Fallback(reason) => ReadPath::Hdf5 { reason },
    })
}
