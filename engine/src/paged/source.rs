//! The datasets of a matrix element: found from its metadata ([`open_matrix`]), opened with a
//! [`RangeReader`] each (direct where it can, else libhdf5, as [`ReadOptions`] say), and what
//! the metadata tells of the matrix before it is read ([`MatrixSource::kind`], `shape`,
//! `dtype`).

use std::sync::Arc;

use hdf5::{Dataset, Group, LocationType};

use super::io::{default_threads, DirectOpen, DirectReader, H5RangeReader, RangeReader};
use super::pool::WorkerPool;
use crate::data::{DType, SparseFormat};
use crate::error::ResultExt;
use crate::format::read::{legacy_format, sparse_shape};
use crate::format::{read_encoding, Encoding};
use crate::{Error, Result};

/// How a backed matrix is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatrixKind {
    /// One 2-d dataset, read in blocks of rows.
    Dense,
    /// A CSR matrix (read in blocks of rows) or CSC matrix (in blocks of columns).
    Sparse(SparseFormat),
}

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
    /// Direct reads with a new pool of `threads` workers (at least 1).
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

/// Finds the datasets of the matrix element `name` in `parent` from its metadata only: a dense
/// 2-d dataset (`array` encoding or none), a `csr_matrix`/`csc_matrix` group, or a legacy sparse
/// group (attributes `h5sparse_format` and `h5sparse_shape`, or no encoding attributes and
/// `data`/`indices`/`indptr` members whose `indptr` length tells the format).
///
/// Nothing but attributes, dataset headers and chunk tables is read. Datasets are read
/// directly where [`DirectReader`] can (see [`ReadOptions::default`]), else through libhdf5.
#[cfg(test)]
pub(crate) fn open_matrix(parent: &Group, name: &str) -> Result<MatrixSource> {
    open_matrix_with(parent, name, &ReadOptions::default())
}

/// [`open_matrix`] with explicit [`ReadOptions`].
pub fn open_matrix_with(parent: &Group, name: &str, options: &ReadOptions) -> Result<MatrixSource> {
    let element = crate::storage::join_path(&parent.name(), name);
    let source = open(parent, name, &element, options).in_element(&element)?;
    Ok(source.with_workers(Arc::clone(&options.workers)))
}

/// The reader for one dataset: direct when the options and the dataset allow it.
pub(crate) fn reader(ds: Dataset, options: &ReadOptions) -> Result<Box<dyn RangeReader>> {
    crate::storage::h5::claim::check_claim(&ds)?;
    if !options.direct {
        let off = "direct reads are turned off (ReadOptions::direct)";
        return Ok(Box::new(H5RangeReader::new(ds)?.with_reason(off)));
    }
    match DirectReader::open(&ds, options.workers.threads())? {
        DirectOpen::Reader(r) => Ok(Box::new(r)),
        DirectOpen::Fallback(reason) => Ok(Box::new(H5RangeReader::new(ds)?.with_reason(reason))),
    }
}

fn open(parent: &Group, name: &str, element: &str, options: &ReadOptions) -> Result<MatrixSource> {
    if !parent.link_exists(name) {
        return Err(Error::malformed(format!("missing member '{name}'")));
    }
    let g = match parent.loc_type_by_name(name)? {
        LocationType::Dataset => {
            let ds = parent.dataset(name)?;
            let encoding = encoding_type(&ds)?;
            return match encoding.as_deref().map(Encoding::parse) {
                None | Some(Some(Encoding::Array)) => {
                    Ok(MatrixSource::dense(element, reader(ds, options)?))
                }
                _ => Err(unexpected(encoding)),
            };
        }
        LocationType::Group => parent.group(name)?,
        #[allow(unreachable_patterns)]
        _ => {
            return Err(Error::unsupported(format!(
                "'{name}' is neither a group nor a dataset"
            )))
        }
    };
    let encoding = encoding_type(&g)?;
    let format = match encoding.as_deref().map(Encoding::parse) {
        Some(Some(Encoding::CsrMatrix)) => SparseFormat::Csr,
        Some(Some(Encoding::CscMatrix)) => SparseFormat::Csc,
        None => legacy_format(&g)?,
        Some(_) => return Err(unexpected(encoding)),
    };
    let shape = sparse_shape(&g)?;
    Ok(MatrixSource::sparse(
        element,
        format,
        shape,
        member(&g, "indptr", options)?,
        member(&g, "indices", options)?,
        member(&g, "data", options)?,
    ))
}

/// The `encoding-type` attribute, `None` when absent or empty (checked with the version, see
/// [`crate::format::check_encoding`]).
fn encoding_type(loc: &dyn crate::storage::Node) -> Result<Option<String>> {
    Ok(read_encoding(loc)?.map(|(t, _)| t))
}

fn unexpected(encoding: Option<String>) -> Error {
    Error::UnexpectedEncoding {
        encoding_type: encoding.unwrap_or_default(),
        version: String::new(),
        expected: "a dense or sparse matrix",
    }
}

/// A reader over member dataset `name` of `g`.
fn member(g: &Group, name: &str, options: &ReadOptions) -> Result<Box<dyn RangeReader>> {
    if !g.link_exists(name) {
        return Err(Error::malformed(format!("missing member '{name}'")));
    }
    if g.loc_type_by_name(name)? != LocationType::Dataset {
        return Err(Error::malformed(format!(
            "member '{name}' is a group, expected a dataset"
        )));
    }
    reader(g.dataset(name)?, options)
}
