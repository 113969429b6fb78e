//! [`BackedMatrix`]: a matrix element read on demand, block by block, through a byte-bounded
//! cache.
//!
//! The handle is here; the jobs behind it are modules of their own: `open` checks a source's
//! datasets and cuts the major axis into blocks; `policy` decides, before any byte is fetched,
//! how each block is read (whole or as runs), whether it is kept, how far ahead blocks are
//! loaded, and plans a chunked pass ([`MemoryPolicy`] holds every share of the budget);
//! `read` executes a plan (fetching through the cache and gathering the result); `chunks`
//! is the fetcher that loads a plan's blocks on the worker pool and the [`Chunks`] iterator.

mod chunks;
mod open;
mod policy;
mod read;

pub use chunks::{Chunks, ScanBuffers, WeakScanBuffers};
pub use policy::MemoryPolicy;

use chunks::Fetcher;
use open::{metadata_bytes, open_datasets};

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use super::block::{Block, BlockCache, Blocking};
use super::io::{ChunkCache, RangeReader, ReadPath};
use super::plan::ReadPlan;
use super::pool::WorkerPool;
use super::source::{MatrixKind, MatrixSource, SourceKind};
use crate::cache::{MatrixId, Reservation, Retention};
use crate::data::{DType, Matrix, SparseFormat};
use crate::error::ResultExt;
use crate::select::AxisIndex;
use crate::Result;

/// A matrix element of a file, read on demand.
///
/// Opening reads the metadata and, for a sparse matrix, `indptr` (kept in memory; its bytes
/// are reserved from the cache's budget, see [`BackedMatrix::metadata_bytes`]). The major axis
/// (rows of CSR and dense matrices, columns of CSC ones) is cut into blocks of about a target
/// size; [`BackedMatrix::read`] reads only the blocks a selection touches, each once per call,
/// through the cache.
///
/// The handle is cheap to clone and may be used from many threads at once. When the last clone
/// is dropped, its blocks are removed from the cache.
///
/// ```
/// use std::sync::Arc;
/// use annpage_engine::paged::{BackedMatrix, BlockCache, InMemoryReader, MatrixSource};
/// use annpage_engine::data::{ArrayData, Matrix, SparseFormat};
/// use annpage_engine::select::{AxisIndex, Selection};
///
/// let reader = |name: &str, a: ArrayData| Box::new(InMemoryReader::new(name, a).unwrap());
/// // [[1, 0, 2], [0, 0, 3], [4, 5, 0]]
/// let source = MatrixSource::sparse(
///     "/X",
///     SparseFormat::Csr,
///     (3, 3),
///     reader("/X/indptr", ArrayData::from(vec![0i32, 2, 3, 5])),
///     reader("/X/indices", ArrayData::from(vec![0i32, 2, 2, 0, 1])),
///     reader("/X/data", ArrayData::from(vec![1.0f32, 2.0, 3.0, 4.0, 5.0])),
/// );
/// let cache = Arc::new(BlockCache::new(64 << 20));
/// let m = BackedMatrix::new(source, cache.clone()).unwrap();
/// let rows = Selection::positions([2, 0]).resolve(3, None).unwrap();
/// let cols = Selection::positions([1, 0]).resolve(3, None).unwrap();
/// let Matrix::Sparse(s) = m.read(&rows, &cols).unwrap() else { unreachable!() };
/// // [[5, 4], [0, 1]]
/// assert_eq!((s.indptr(), s.indices()), (&[0u64, 2, 3][..], &[1u32, 0, 1][..]));
/// assert_eq!(s.data(), &ArrayData::from(vec![4.0f32, 5.0, 1.0]));
/// assert_eq!(cache.stats().misses, 1);
/// ```
#[derive(Clone)]
pub struct BackedMatrix {
    inner: Arc<Inner>,
}

struct Inner {
    id: MatrixId,
    element: String,
    shape: (usize, usize),
    dtype: DType,
    datasets: Datasets,
    blocking: Blocking,
    cache: Arc<BlockCache>,
    reservation: Reservation<Block>,
    /// The threads that load blocks ahead of a read.
    workers: Arc<WorkerPool>,
    /// How many of them one read uses.
    threads: usize,
}

enum Datasets {
    Dense {
        values: Box<dyn RangeReader>,
    },
    Sparse {
        format: SparseFormat,
        indptr: Vec<u64>,
        /// Bytes a block spends per stored value (data and decoded index).
        entry_bytes: usize,
        indices: Box<dyn RangeReader>,
        data: Box<dyn RangeReader>,
    },
}

impl BackedMatrix {
    /// Opens a matrix whose blocks hold about a thirty-second of the cache's budget (within
    /// [64 KiB, 64 MiB]).
    ///
    /// Checks the datasets against each other: a dense matrix must be 2-d; a sparse one needs
    /// 1-d datasets, `indptr` of major + 1 entries running from 0 to the number of stored
    /// values without decreasing, `indices` of integers and `data` of numbers or bools as long
    /// as that number. Index values are checked as blocks are read.
    pub fn new(source: MatrixSource, cache: Arc<BlockCache>) -> Result<Self> {
        let target = MemoryPolicy::new(cache.budget()).block_bytes();
        Self::with_block_bytes(source, cache, target)
    }

    /// Opens a matrix whose blocks hold about `block_bytes` bytes each (see
    /// [`BackedMatrix::new`]).
    pub fn with_block_bytes(
        source: MatrixSource,
        cache: Arc<BlockCache>,
        block_bytes: usize,
    ) -> Result<Self> {
        let (element, kind, workers) = source.into_parts();
        let workers = workers.unwrap_or_else(|| Arc::new(WorkerPool::per_core()));
        let chunks: Arc<dyn ChunkCache> = Arc::clone(&cache) as Arc<dyn ChunkCache>;
        match &kind {
            SourceKind::Dense(values) => values.use_cache(chunks),
            SourceKind::Sparse { indices, data, .. } => {
                indices.use_cache(Arc::clone(&chunks));
                data.use_cache(chunks);
            }
        }
        let (shape, dtype, datasets, blocking) =
            open_datasets(kind, block_bytes.max(1)).in_element(&element)?;
        let metadata = metadata_bytes(&datasets, &blocking);
        let reservation = cache.reserve(metadata);
        Ok(BackedMatrix {
            inner: Arc::new(Inner {
                id: MatrixId::unique(),
                element,
                shape,
                dtype,
                datasets,
                blocking,
                cache,
                reservation,
                threads: workers.threads(),
                workers,
            }),
        })
    }

    /// The matrix element, e.g. `/X`.
    pub fn element(&self) -> &str {
        &self.inner.element
    }

    /// `(rows, columns)`.
    pub fn shape(&self) -> (usize, usize) {
        self.inner.shape
    }

    /// The dtype of the values.
    pub fn dtype(&self) -> DType {
        self.inner.dtype
    }

    /// Dense, CSR or CSC.
    pub fn kind(&self) -> MatrixKind {
        match &self.inner.datasets {
            Datasets::Dense { .. } => MatrixKind::Dense,
            Datasets::Sparse { format, .. } => MatrixKind::Sparse(*format),
        }
    }

    /// How each dataset read for blocks gets its values: `(dataset, path)` for the values of
    /// a dense matrix, or the `indices` and `data` of a sparse one.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use annpage_engine::paged::{BackedMatrix, BlockCache, InMemoryReader, MatrixSource, ReadPath};
    /// use annpage_engine::data::ArrayData;
    /// let values = ArrayData::from(ndarray::Array2::<f32>::zeros((4, 2)));
    /// let source = MatrixSource::dense("/X", Box::new(InMemoryReader::new("/X", values).unwrap()));
    /// let m = BackedMatrix::new(source, Arc::new(BlockCache::new(1 << 20))).unwrap();
    /// assert_eq!(m.read_paths(), [("/X".to_string(), ReadPath::Memory)]);
    /// ```
    pub fn read_paths(&self) -> Vec<(String, ReadPath)> {
        let path = |r: &dyn RangeReader| (r.element().to_string(), r.read_path());
        match &self.inner.datasets {
            Datasets::Dense { values } => vec![path(values.as_ref())],
            Datasets::Sparse { indices, data, .. } => {
                vec![path(indices.as_ref()), path(data.as_ref())]
            }
        }
    }

    /// Whether reading part of a storage chunk of the matrix costs decoding all of it
    /// (compressed chunks): scattered reads then cost every chunk they touch, and reads of
    /// a selection out of order are best made in few large pieces.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use annpage_engine::paged::{BackedMatrix, BlockCache, InMemoryReader, MatrixSource};
    /// use annpage_engine::data::ArrayData;
    /// let values = ArrayData::from(ndarray::Array2::<f32>::zeros((4, 2)));
    /// let source = MatrixSource::dense("/X", Box::new(InMemoryReader::new("/X", values).unwrap()));
    /// let m = BackedMatrix::new(source, Arc::new(BlockCache::new(1 << 20))).unwrap();
    /// assert!(!m.decodes_whole_chunks());
    /// ```
    pub fn decodes_whole_chunks(&self) -> bool {
        match &self.inner.datasets {
            Datasets::Dense { values } => values.decodes_whole_chunks(),
            Datasets::Sparse { indices, data, .. } => {
                indices.decodes_whole_chunks() || data.decodes_whole_chunks()
            }
        }
    }

    /// The bytes [`BackedMatrix::read`] returns for rows `rows` (positions; those out of
    /// range count for nothing) and `n_cols` columns: at most the rows' stored values (and
    /// offsets) for a CSR matrix, rows × columns for a dense one; for a CSC one an estimate,
    /// the stored values in proportion to the rows and columns taken.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use annpage_engine::paged::{BackedMatrix, BlockCache, InMemoryReader, MatrixSource};
    /// use annpage_engine::data::ArrayData;
    /// let values = ArrayData::from(ndarray::Array2::<f32>::zeros((4, 2)));
    /// let source = MatrixSource::dense("/X", Box::new(InMemoryReader::new("/X", values).unwrap()));
    /// let m = BackedMatrix::new(source, Arc::new(BlockCache::new(1 << 20))).unwrap();
    /// assert_eq!(m.rows_bytes(&[3, 0, 3], 2), 3 * 2 * 4);
    /// ```
    pub fn rows_bytes(&self, rows: &[usize], n_cols: usize) -> u64 {
        let inner = &self.inner;
        let (n_rows, all_cols) = inner.shape;
        match &inner.datasets {
            Datasets::Dense { .. } => (rows.len() as u64)
                .saturating_mul(n_cols as u64)
                .saturating_mul(inner.dtype.size() as u64),
            Datasets::Sparse {
                format: SparseFormat::Csr,
                indptr,
                entry_bytes,
                ..
            } => rows
                .iter()
                .filter(|&&r| r < n_rows)
                .map(|&r| (indptr[r + 1] - indptr[r]).saturating_mul(*entry_bytes as u64) + 8)
                .fold(0u64, u64::saturating_add),
            Datasets::Sparse {
                indptr,
                entry_bytes,
                ..
            } => {
                let stored = indptr.last().copied().unwrap_or(0) as f64 * *entry_bytes as f64;
                let share = rows.len() as f64 / n_rows.max(1) as f64 * n_cols as f64
                    / all_cols.max(1) as f64;
                (stored * share) as u64 + 8 * n_cols as u64
            }
        }
    }

    /// The id of the matrix's blocks in the cache.
    pub fn id(&self) -> MatrixId {
        self.inner.id
    }

    /// The cache the matrix reads through.
    pub fn cache(&self) -> &Arc<BlockCache> {
        &self.inner.cache
    }

    /// Number of stored values of a sparse matrix (`None` for a dense one).
    pub fn nnz(&self) -> Option<u64> {
        match &self.inner.datasets {
            Datasets::Sparse { indptr, .. } => indptr.last().copied(),
            Datasets::Dense { .. } => None,
        }
    }

    /// The offsets of each major slice of a sparse matrix, held in memory.
    pub fn indptr(&self) -> Option<&[u64]> {
        match &self.inner.datasets {
            Datasets::Sparse { indptr, .. } => Some(indptr),
            Datasets::Dense { .. } => None,
        }
    }

    /// Bytes held in memory for as long as the matrix is open (`indptr` and the block
    /// boundaries), reserved from the cache's budget.
    pub fn metadata_bytes(&self) -> usize {
        self.inner.reservation.bytes()
    }

    /// Number of blocks along the major axis.
    pub fn n_blocks(&self) -> usize {
        self.inner.blocking.len()
    }

    /// The block holding major position `i` (a row, or a column of a CSC matrix).
    pub fn block_of(&self, i: usize) -> Option<usize> {
        (i < self.inner.blocking.axis_len()).then(|| self.inner.blocking.block_of(i))
    }

    /// The major positions of block `b`.
    pub fn block_range(&self, b: usize) -> Option<Range<usize>> {
        (b < self.n_blocks()).then(|| self.inner.blocking.range(b))
    }

    /// The bytes block `b` takes once decoded, as the cache counts them (0 if there is no
    /// such block).
    pub fn block_bytes(&self, b: usize) -> usize {
        if b < self.n_blocks() {
            self.inner.block_bytes(b)
        } else {
            0
        }
    }

    /// How [`BackedMatrix::read`] would read `rows` and `cols`: the blocks along the major
    /// axis, each once.
    pub fn plan(&self, rows: &AxisIndex, cols: &AxisIndex) -> Result<ReadPlan> {
        self.inner.check(rows, cols)?;
        let (major, _) = self.inner.axes(rows, cols);
        Ok(self.inner.plan(major))
    }

    /// The rows `rows` and columns `cols`, in the order asked for (positions may be unsorted and
    /// repeated): a [`SparseMatrix`](crate::data::SparseMatrix) in the stored format, or a 2-d dense array.
    ///
    /// Reads each block the selection touches once, through the cache. When the blocks read
    /// are more than the cache can hold, blocks not already cached are read without being
    /// kept: a large read does not evict what other readers use.
    ///
    /// Memory: the result, plus one block, plus — for a sparse selection along both axes whose
    /// major positions do not increase — a copy of the distinct major slices selected.
    pub fn read(&self, rows: &AxisIndex, cols: &AxisIndex) -> Result<Matrix> {
        self.inner.check(rows, cols)?;
        self.inner
            .read(rows, cols, &mut Fetcher::per_request(self.inner.threads))
    }

    /// All rows of the columns `cols`: for a CSR or dense matrix, streams over the row blocks
    /// (one at a time, see [`BackedMatrix::read`]) instead of loading the matrix; for a CSC
    /// matrix, reads the blocks holding those columns.
    pub fn read_columns(&self, cols: &AxisIndex) -> Result<Matrix> {
        self.read(&AxisIndex::full(self.shape().0), cols)
    }

    /// The whole matrix.
    pub fn to_memory(&self) -> Result<Matrix> {
        let (r, c) = self.shape();
        self.read(&AxisIndex::full(r), &AxisIndex::full(c))
    }

    /// The selection `rows` × `cols` in chunks of `chunk_rows` result rows: each item is the
    /// range of result rows and the matrix holding them (as [`BackedMatrix::read`] gives it).
    ///
    /// A block that several consecutive chunks need is read once for all of them. If all the
    /// blocks the iteration touches fit in the cache they are kept; otherwise blocks not
    /// already cached are read without being kept, so a pass over a large matrix does not
    /// flush the cache. Chunks of rows of a CSC matrix read every block holding a selected
    /// column for each chunk (unless those blocks fit in the cache).
    ///
    /// Fails if `chunk_rows` is 0 or the selections do not fit the matrix; the iteration ends
    /// after the first failing chunk.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use annpage_engine::paged::{BackedMatrix, BlockCache, InMemoryReader, MatrixSource};
    /// use annpage_engine::data::{ArrayData, Matrix};
    /// use annpage_engine::select::AxisIndex;
    /// let values = ArrayData::from(ndarray::Array2::from_shape_fn((10, 3), |(i, j)| (i * 3 + j) as i64));
    /// let source = MatrixSource::dense("/X", Box::new(InMemoryReader::new("/X", values).unwrap()));
    /// let m = BackedMatrix::new(source, Arc::new(BlockCache::new(1 << 20))).unwrap();
    /// let mut sums = Vec::new();
    /// for chunk in m.chunks(&AxisIndex::full(10), &AxisIndex::full(3), 4).unwrap() {
    ///     let (rows, Matrix::Dense(ArrayData::I64(a))) = chunk.unwrap() else { unreachable!() };
    ///     sums.push((rows, a.sum()));
    /// }
    /// assert_eq!(sums, [(0..4, 66), (4..8, 210), (8..10, 159)]);
    /// ```
    pub fn chunks(&self, rows: &AxisIndex, cols: &AxisIndex, chunk_rows: usize) -> Result<Chunks> {
        self.chunks_kept(rows, cols, chunk_rows, None, None)
    }

    /// [`BackedMatrix::chunks`] for a single pass: blocks the iteration loads are never kept
    /// in the cache, however small the matrix (a copy or a concatenation reads each block
    /// once, and several of them in turn would only evict each other). Blocks already cached
    /// are still used.
    pub fn scan(&self, rows: &AxisIndex, cols: &AxisIndex, chunk_rows: usize) -> Result<Chunks> {
        self.chunks_kept(rows, cols, chunk_rows, Some(Retention::Discard), None)
    }

    /// [`BackedMatrix::scan`] reading into the buffers an earlier pass handed back to
    /// `buffers` (and handing its own back there).
    pub fn scan_reusing(
        &self,
        rows: &AxisIndex,
        cols: &AxisIndex,
        chunk_rows: usize,
        buffers: &ScanBuffers,
    ) -> Result<Chunks> {
        let discard = Some(Retention::Discard);
        self.chunks_kept(rows, cols, chunk_rows, discard, Some(buffers))
    }
}

impl fmt::Debug for BackedMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackedMatrix")
            .field("element", &self.inner.element)
            .field("kind", &self.kind())
            .field("shape", &self.inner.shape)
            .field("dtype", &self.inner.dtype)
            .field("blocks", &self.n_blocks())
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cache.remove_matrix(self.id);
    }
}
