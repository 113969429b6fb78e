//! [`BackedMatrix`]: a matrix element read on demand, block by block, through a byte-bounded
//! cache.

use std::collections::HashMap;
use std::fmt;
use std::mem::size_of;
use std::ops::Range;
use std::sync::Arc;

use super::ahead::{Load, Loader, Want};
use super::block::{block_bytes_for_budget, Block, Blocking};
use super::gather::{self, with_value, SparseParts};
use super::minor::MinorMap;
use super::plan::{is_increasing, Piece, ReadPlan};
use super::pool::WorkerPool;
use super::reuse::{Spare, Spares};
use super::source::{MatrixSource, RangeReader, ReadPath, SourceKind};
use crate::cache::{BlockKey, Cache, MatrixId, Reservation, Retention};
use crate::data::{ArrayData, DType, Matrix, SparseFormat, SparseMatrix, MAX_MINOR};
use crate::error::ResultExt;
use crate::h5::read::integers_as_u64;
use crate::select::AxisIndex;
use crate::{Error, Result};

/// The cache of decoded blocks that backed matrices share.
pub type BlockCache = Cache<Block>;

/// How many `indptr` entries are read at once when opening a sparse matrix.
const INDPTR_READ: usize = 1 << 20;

/// How a backed matrix is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatrixKind {
    /// One 2-d dataset, read in blocks of rows.
    Dense,
    /// A CSR matrix (read in blocks of rows) or CSC matrix (in blocks of columns).
    Sparse(SparseFormat),
}

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
/// use annpage_engine::backed::{BackedMatrix, BlockCache, InMemoryReader, MatrixSource};
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
    storage: Storage,
    blocking: Blocking,
    cache: Arc<BlockCache>,
    reservation: Reservation<Block>,
    /// The threads that load blocks ahead of a read.
    workers: Arc<WorkerPool>,
    /// How many of them one read uses.
    threads: usize,
}

enum Storage {
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
        let target = block_bytes_for_budget(cache.budget());
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
        match &kind {
            SourceKind::Dense(values) => values.use_cache(&cache),
            SourceKind::Sparse { indices, data, .. } => {
                indices.use_cache(&cache);
                data.use_cache(&cache);
            }
        }
        let (shape, dtype, storage, blocking) =
            open_storage(kind, block_bytes.max(1)).in_element(&element)?;
        let metadata = metadata_bytes(&storage, &blocking);
        let reservation = cache.reserve(metadata);
        Ok(BackedMatrix {
            inner: Arc::new(Inner {
                id: MatrixId::unique(),
                element,
                shape,
                dtype,
                storage,
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
        match &self.inner.storage {
            Storage::Dense { .. } => MatrixKind::Dense,
            Storage::Sparse { format, .. } => MatrixKind::Sparse(*format),
        }
    }

    /// How each dataset read for blocks gets its values: `(dataset, path)` for the values of
    /// a dense matrix, or the `indices` and `data` of a sparse one.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use annpage_engine::backed::{BackedMatrix, BlockCache, InMemoryReader, MatrixSource, ReadPath};
    /// use annpage_engine::data::ArrayData;
    /// let values = ArrayData::from(ndarray::Array2::<f32>::zeros((4, 2)));
    /// let source = MatrixSource::dense("/X", Box::new(InMemoryReader::new("/X", values).unwrap()));
    /// let m = BackedMatrix::new(source, Arc::new(BlockCache::new(1 << 20))).unwrap();
    /// assert_eq!(m.read_paths(), [("/X".to_string(), ReadPath::Memory)]);
    /// ```
    pub fn read_paths(&self) -> Vec<(String, ReadPath)> {
        let path = |r: &dyn RangeReader| (r.element().to_string(), r.read_path());
        match &self.inner.storage {
            Storage::Dense { values } => vec![path(values.as_ref())],
            Storage::Sparse { indices, data, .. } => {
                vec![path(indices.as_ref()), path(data.as_ref())]
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
        match &self.inner.storage {
            Storage::Sparse { indptr, .. } => indptr.last().copied(),
            Storage::Dense { .. } => None,
        }
    }

    /// The offsets of each major slice of a sparse matrix, held in memory.
    pub fn indptr(&self) -> Option<&[u64]> {
        match &self.inner.storage {
            Storage::Sparse { indptr, .. } => Some(indptr),
            Storage::Dense { .. } => None,
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
    /// repeated): a [`SparseMatrix`] in the stored format, or a 2-d dense array.
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
    /// use annpage_engine::backed::{BackedMatrix, BlockCache, InMemoryReader, MatrixSource};
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
        self.chunks_kept(rows, cols, chunk_rows, None)
    }

    /// [`BackedMatrix::chunks`] for a single pass: blocks the iteration loads are never kept
    /// in the cache, however small the matrix (a copy or a concatenation reads each block
    /// once, and several of them in turn would only evict each other). Blocks already cached
    /// are still used.
    pub fn scan(&self, rows: &AxisIndex, cols: &AxisIndex, chunk_rows: usize) -> Result<Chunks> {
        self.chunks_kept(rows, cols, chunk_rows, Some(Retention::Discard))
    }

    fn chunks_kept(
        &self,
        rows: &AxisIndex,
        cols: &AxisIndex,
        chunk_rows: usize,
        retention: Option<Retention>,
    ) -> Result<Chunks> {
        self.inner.check(rows, cols)?;
        if chunk_rows == 0 {
            return Err(Error::invalid("chunks must hold at least one row"));
        }
        let (major, _) = self.inner.axes(rows, cols);
        let touched = self.inner.touched_bytes(major);
        let retention = retention.unwrap_or(if touched <= self.inner.cache.capacity() {
            Retention::Keep
        } else {
            Retention::Discard
        });
        // A scan larger than the cache, of whole consecutive rows: each chunk is read on its
        // own, a window ahead, and handed over without copying.
        let whole = match retention {
            Retention::Discard => self.inner.whole_ranges(rows, cols, chunk_rows),
            Retention::Keep => None,
        };
        if let Some(ranges) = whole {
            let largest = ranges
                .iter()
                .map(|r| self.inner.range_bytes(r.clone()))
                .max()
                .unwrap_or(1)
                .max(1);
            let window = (self.inner.cache.capacity() / 4 / largest).clamp(1, 8);
            let wants = ranges
                .into_iter()
                .enumerate()
                .map(|(k, r)| Want {
                    block: k,
                    span: Some(vec![r]),
                })
                .collect();
            let fetcher = Fetcher::fixed(retention, self.inner.threads);
            let source = Arc::new(Source {
                matrix: Arc::clone(&self.inner),
                retention,
                spares: Arc::clone(&fetcher.spares),
            });
            let inner = &self.inner;
            let loader = Loader::start(source, wants, &inner.workers, inner.threads, window);
            return Ok(Chunks {
                matrix: self.clone(),
                rows: rows.clone(),
                cols: cols.clone(),
                chunk_rows,
                next: 0,
                failed: false,
                fetcher,
                whole: Some(loader),
            });
        }
        // Every block the iteration will fetch, in order: loaded a window ahead of the caller.
        // A block is read whole unless the iteration as a whole needs little of it.
        let mut plans = Vec::new();
        let mut needed: HashMap<usize, u64> = HashMap::new();
        let mut start = 0;
        while start < rows.len() {
            let end = rows.len().min(start.saturating_add(chunk_rows));
            let chunk = rows.compose(&AxisIndex::range(start..end, rows.len())?)?;
            let (major, minor) = self.inner.axes(&chunk, cols);
            if let Some(plan) = self.inner.plan_for(major, minor)? {
                for (b, pieces) in plan.block_pieces() {
                    let cost: u64 = pieces
                        .iter()
                        .map(|p| self.inner.cost(p.src..p.src + p.len))
                        .sum();
                    *needed.entry(b).or_default() += cost;
                }
                plans.push(plan);
            }
            start = end;
        }
        let mut wants: Vec<Want> = Vec::new();
        for plan in &plans {
            for (b, pieces) in plan.block_pieces() {
                let mostly =
                    needed[&b].saturating_mul(4) >= self.inner.cost(self.inner.blocking.range(b));
                let w = if mostly {
                    Want {
                        block: b,
                        span: None,
                    }
                } else {
                    self.inner.want(b, pieces)
                };
                let repeat =
                    matches!(wants.last(), Some(p) if p.block == w.block && p.span.is_none());
                if !repeat {
                    wants.push(w);
                }
            }
        }
        let mut fetcher = Fetcher::fixed(retention, self.inner.threads);
        if self.inner.threads > 1 && wants.len() > 1 {
            let window = self.inner.window(&wants);
            let source = Arc::new(Source {
                matrix: Arc::clone(&self.inner),
                retention,
                spares: Arc::clone(&fetcher.spares),
            });
            let inner = &self.inner;
            let loader = Loader::start(source, wants, &inner.workers, inner.threads, window);
            fetcher.ahead = Some(loader);
        }
        Ok(Chunks {
            matrix: self.clone(),
            rows: rows.clone(),
            cols: cols.clone(),
            chunk_rows,
            next: 0,
            failed: false,
            fetcher,
            whole: None,
        })
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

/// Checks the datasets of a source and cuts the major axis into blocks.
fn open_storage(
    kind: SourceKind,
    block_bytes: usize,
) -> Result<((usize, usize), DType, Storage, Blocking)> {
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
            Ok(((rows, cols), dtype, Storage::Dense { values }, blocking))
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
            let storage = Storage::Sparse {
                format,
                indptr: offsets,
                entry_bytes,
                indices,
                data,
            };
            Ok((shape, dtype, storage, blocking))
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

fn metadata_bytes(storage: &Storage, blocking: &Blocking) -> usize {
    let indptr = match storage {
        Storage::Sparse { indptr, .. } => indptr.capacity() * size_of::<u64>(),
        Storage::Dense { .. } => 0,
    };
    indptr + blocking.heap_bytes()
}

impl Inner {
    fn check(&self, rows: &AxisIndex, cols: &AxisIndex) -> Result<()> {
        let (r, c) = self.shape;
        if rows.axis_len() != r || cols.axis_len() != c {
            return Err(Error::shape(format!(
                "the selection is for shape ({}, {}), the matrix has ({r}, {c})",
                rows.axis_len(),
                cols.axis_len()
            )))
            .in_element(&self.element);
        }
        Ok(())
    }

    /// `(major, minor)` of a selection: rows first unless the matrix is CSC.
    fn axes<'a>(&self, rows: &'a AxisIndex, cols: &'a AxisIndex) -> (&'a AxisIndex, &'a AxisIndex) {
        match &self.storage {
            Storage::Sparse {
                format: SparseFormat::Csc,
                ..
            } => (cols, rows),
            _ => (rows, cols),
        }
    }

    fn plan(&self, major: &AxisIndex) -> ReadPlan {
        ReadPlan::new(major, &self.blocking, |b| self.block_bytes(b))
    }

    /// The bytes block `b` (which must exist) takes once decoded.
    fn block_bytes(&self, b: usize) -> usize {
        size_of::<Block>() + self.range_bytes(self.blocking.range(b))
    }

    /// The bytes major positions `r` take once decoded.
    fn range_bytes(&self, r: Range<usize>) -> usize {
        match &self.storage {
            Storage::Dense { .. } => r.len() * self.shape.1 * self.dtype.size(),
            Storage::Sparse {
                indptr,
                entry_bytes,
                ..
            } => {
                let nnz = (indptr[r.end] - indptr[r.start]) as usize;
                nnz * entry_bytes + (r.len() + 1) * size_of::<u64>()
            }
        }
    }

    /// The major ranges of a chunked iteration that can read each chunk as one piece whose
    /// buffers become the chunk (no copy): whole rows (CSR or dense) of consecutive rows, with
    /// chunks of at least [`WHOLE_CHUNK_MIN_BYTES`] on average. `None` when it cannot.
    fn whole_ranges(
        &self,
        rows: &AxisIndex,
        cols: &AxisIndex,
        chunk_rows: usize,
    ) -> Option<Vec<Range<usize>>> {
        let by_rows = match &self.storage {
            Storage::Dense { .. } => true,
            Storage::Sparse { format, .. } => *format == SparseFormat::Csr,
        };
        let rows = rows.as_range()?;
        if !by_rows || !cols.is_full() || rows.is_empty() || chunk_rows == 0 {
            return None;
        }
        let n = rows.len().div_ceil(chunk_rows);
        if self.range_bytes(rows.clone()) / n < WHOLE_CHUNK_MIN_BYTES {
            return None;
        }
        Some(
            (rows.start..rows.end)
                .step_by(chunk_rows)
                .map(|s| s..rows.end.min(s + chunk_rows))
                .collect(),
        )
    }

    /// The bytes of all blocks holding a position of `major`.
    fn touched_bytes(&self, major: &AxisIndex) -> usize {
        let mut touched = vec![false; self.blocking.len()];
        if let Some(r) = major.as_range() {
            if !r.is_empty() {
                let (first, last) = (
                    self.blocking.block_of(r.start),
                    self.blocking.block_of(r.end - 1),
                );
                touched[first..=last].fill(true);
            }
        } else {
            for p in major {
                touched[self.blocking.block_of(p)] = true;
            }
        }
        touched
            .iter()
            .enumerate()
            .filter(|(_, &t)| t)
            .map(|(b, _)| self.block_bytes(b))
            .sum()
    }

    /// Reads major positions `range` (a block or part of one) from storage, into `spare`'s
    /// buffers where they fit.
    fn load_range(&self, range: Range<usize>, spare: Spare) -> Result<Block> {
        let block = match &self.storage {
            Storage::Dense { values } => {
                Block::load_dense(values.as_ref(), range, self.shape.1, spare)
            }
            Storage::Sparse {
                format,
                indptr,
                indices,
                data,
                ..
            } => {
                let minor = match format {
                    SparseFormat::Csr => self.shape.1,
                    SparseFormat::Csc => self.shape.0,
                };
                Block::load_sparse(indptr, range, indices.as_ref(), data.as_ref(), minor, spare)
            }
        };
        block.in_element(&self.element)
    }

    /// Reads runs of major positions (increasing, disjoint) as one block over their span (a
    /// single run into a spare's buffers if there is one).
    fn load_runs(&self, runs: &[Range<usize>], spares: &Spares) -> Result<Block> {
        if let [run] = runs {
            return self.load_range(run.clone(), spares.take(self.dtype));
        }
        let block = match &self.storage {
            Storage::Dense { values } => {
                Block::load_dense_runs(values.as_ref(), runs, self.shape.1)
            }
            Storage::Sparse {
                format,
                indptr,
                indices,
                data,
                ..
            } => {
                let minor = match format {
                    SparseFormat::Csr => self.shape.1,
                    SparseFormat::Csc => self.shape.0,
                };
                Block::load_sparse_runs(indptr, runs, indices.as_ref(), data.as_ref(), minor)
            }
        };
        block.in_element(&self.element)
    }

    /// What reading major positions `range` costs, in stored values (plus one per position).
    fn cost(&self, range: Range<usize>) -> u64 {
        let n = range.len() as u64;
        match &self.storage {
            Storage::Dense { .. } => n * self.shape.1.max(1) as u64,
            Storage::Sparse { indptr, .. } => indptr[range.end] - indptr[range.start] + n,
        }
    }

    /// What to fetch for block `b` of a plan, whose pieces are `pieces` (sorted by source):
    /// the whole block (through the cache) unless it is not cached and the pieces hold less
    /// than a quarter of it, in which case only their runs (scattered rows: random access).
    fn want(&self, b: usize, pieces: &[Piece]) -> Want {
        let whole = Want {
            block: b,
            span: None,
        };
        if pieces.is_empty() || self.cache.contains(BlockKey::new(self.id, b)) {
            return whole;
        }
        let mut runs: Vec<Range<usize>> = Vec::new();
        for p in pieces {
            let r = p.src..p.src + p.len;
            match runs.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => runs.push(r),
            }
        }
        let needed: u64 = runs.iter().map(|r| self.cost(r.clone())).sum();
        if needed.saturating_mul(4) < self.cost(self.blocking.range(b))
            && !self.touches_most_chunks(b, &runs)
        {
            Want {
                block: b,
                span: Some(runs),
            }
        } else {
            whole
        }
    }

    /// Whether runs of block `b` touch at least half of the block's compressed storage chunks
    /// (of the values): reading them costs about as much decoding as the whole block, which is
    /// then read at once rather than chunk by chunk.
    fn touches_most_chunks(&self, b: usize, runs: &[Range<usize>]) -> bool {
        let (values, entries): (&dyn RangeReader, Box<dyn Fn(usize) -> u64>) = match &self.storage {
            Storage::Dense { values } => (values.as_ref(), Box::new(|i| i as u64)),
            Storage::Sparse { indptr, data, .. } => (data.as_ref(), Box::new(|i| indptr[i])),
        };
        let Some(per) = values.chunk_rows().filter(|&c| c > 0) else {
            return false;
        };
        if !values.decodes_whole_chunks() {
            return false;
        }
        let per = per as u64;
        let chunks = |r: &Range<usize>| {
            let (lo, hi) = (entries(r.start), entries(r.end));
            (hi > lo).then(|| lo / per..=(hi - 1) / per)
        };
        let Some(all) = chunks(&self.blocking.range(b)) else {
            return false;
        };
        let mut touched = 0u64;
        let mut last = None;
        for r in runs.iter().filter_map(chunks) {
            let (lo, hi) = (*r.start(), *r.end());
            let from = match last {
                Some(l) if l >= lo => l + 1,
                _ => lo,
            };
            if hi >= from {
                touched += hi - from + 1;
            }
            last = Some(last.map_or(hi, |l: u64| l.max(hi)));
        }
        touched.saturating_mul(2) > all.end() - all.start()
    }

    /// One want per block of `plan`, in the plan's order.
    fn wants(&self, plan: &ReadPlan) -> Vec<Want> {
        plan.block_pieces()
            .map(|(b, pieces)| self.want(b, pieces))
            .collect()
    }

    /// How many wants may be loaded ahead of the reader: loaded blocks not yet used stay
    /// under a sixteenth of the cache's capacity (at least 2, at most 64).
    fn window(&self, wants: &[Want]) -> usize {
        let largest = wants
            .iter()
            .map(|w| match &w.span {
                None => self.block_bytes(w.block),
                Some(runs) => {
                    let per = self.block_bytes(w.block) as u64;
                    let cost = self.cost(self.blocking.range(w.block)).max(1);
                    let needed: u64 = runs.iter().map(|r| self.cost(r.clone())).sum();
                    (per * needed / cost) as usize
                }
            })
            .max()
            .unwrap_or(1)
            .max(1);
        (self.cache.capacity() / 16 / largest).clamp(2, 64)
    }

    /// Fetches a want: a whole block through the cache, or a span read on its own. What is
    /// loaded and not kept goes into a spare's buffers if there is one (kept blocks are
    /// charged to the cache by length, so they get buffers of exactly their size).
    fn fetch_want(&self, want: &Want, retention: Retention, spares: &Spares) -> Result<Arc<Block>> {
        match &want.span {
            None => {
                let b = want.block;
                let key = BlockKey::new(self.id, b);
                self.cache.get_or_load_with(key, retention, || {
                    let spare = match retention {
                        Retention::Discard => spares.take(self.dtype),
                        Retention::Keep => Spare::default(),
                    };
                    self.load_range(self.blocking.range(b), spare)
                })
            }
            Some(runs) => Ok(Arc::new(self.load_runs(runs, spares)?)),
        }
    }

    /// The plan [`Inner::read`] executes for a selection (`None` when it reads nothing): the
    /// major positions themselves, or their distinct values in increasing order when a sparse
    /// selection along both axes is unsorted.
    fn plan_for(&self, major: &AxisIndex, minor: &AxisIndex) -> Result<Option<ReadPlan>> {
        if major.is_empty() || minor.is_empty() {
            return Ok(None);
        }
        let sparse_mapped = matches!(self.storage, Storage::Sparse { .. }) && !minor.is_full();
        if sparse_mapped && !is_increasing(major) {
            let mut distinct = major.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            let unique = AxisIndex::from_positions(distinct, major.axis_len())?;
            return Ok(Some(self.plan(&unique)));
        }
        Ok(Some(self.plan(major)))
    }

    /// Reads a checked selection.
    fn read(
        self: &Arc<Self>,
        rows: &AxisIndex,
        cols: &AxisIndex,
        fetcher: &mut Fetcher,
    ) -> Result<Matrix> {
        let out_shape = (rows.len(), cols.len());
        let (major, minor) = self.axes(rows, cols);
        let (format, indptr) = match &self.storage {
            Storage::Dense { .. } => {
                if major.is_empty() || minor.is_empty() {
                    return Ok(Matrix::Dense(ArrayData::zeros(
                        self.dtype,
                        &[rows.len(), cols.len()],
                    )));
                }
                let plan = self.plan(major);
                let mut fetch = fetcher.for_plan(self, &plan);
                let ncols = self.shape.1;
                let a = with_value!(self.dtype, V => gather::dense::<V>(&plan, &mut fetch, ncols, cols))?;
                return Ok(Matrix::Dense(a));
            }
            Storage::Sparse { format, indptr, .. } => (*format, indptr),
        };
        if major.is_empty() || minor.is_empty() {
            return Ok(Matrix::Sparse(SparseMatrix::empty(
                format, out_shape, self.dtype,
            )));
        }
        if minor.len() as u64 > MAX_MINOR {
            return Err(Error::unsupported(format!(
                "a sparse result whose minor dimension ({}) exceeds 2^32",
                minor.len()
            )));
        }
        let (out_indptr, indices, data) = if minor.is_full() {
            let plan = self.plan(major);
            let mut fetch = fetcher.for_plan(self, &plan);
            with_value!(self.dtype, V => gather::sparse_whole::<V>(&plan, &mut fetch, major, indptr))?
        } else if is_increasing(major) {
            self.read_mapped(major, minor, fetcher)?
        } else {
            // Read the distinct slices in increasing order once, then arrange them as asked.
            let mut distinct = major.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            let unique = AxisIndex::from_positions(distinct.clone(), major.axis_len())?;
            let (p, i, d) = self.read_mapped(&unique, minor, fetcher)?;
            let compact = self.sparse(format, unique.len(), minor.len(), p, i, d)?;
            let at = major
                .iter()
                .map(|s| distinct.binary_search(&s).unwrap_or_default())
                .collect();
            let picked = AxisIndex::from_positions(at, unique.len())?;
            let full = AxisIndex::full(minor.len());
            let (r, c) = match format {
                SparseFormat::Csr => (&picked, &full),
                SparseFormat::Csc => (&full, &picked),
            };
            return Ok(Matrix::Sparse(compact.subset(r, c)?));
        };
        Ok(Matrix::Sparse(self.sparse(
            format,
            major.len(),
            minor.len(),
            out_indptr,
            indices,
            data,
        )?))
    }

    /// Slices `major` (strictly increasing) restricted to the minor positions `minor`.
    fn read_mapped(
        self: &Arc<Self>,
        major: &AxisIndex,
        minor: &AxisIndex,
        fetcher: &mut Fetcher,
    ) -> Result<SparseParts> {
        let plan = self.plan(major);
        let map = MinorMap::new(minor);
        let mut fetch = fetcher.for_plan(self, &plan);
        with_value!(self.dtype, V => gather::sparse_mapped::<V>(&plan, &mut fetch, &map))
    }

    /// A result matrix from its major and minor lengths, built from gathered parts (offsets
    /// from the checked `indptr`, indices checked on load or mapped below `minor`).
    fn sparse(
        &self,
        format: SparseFormat,
        major: usize,
        minor: usize,
        indptr: Vec<u64>,
        indices: Vec<u32>,
        data: ArrayData,
    ) -> Result<SparseMatrix> {
        let shape = match format {
            SparseFormat::Csr => (major, minor),
            SparseFormat::Csc => (minor, major),
        };
        Ok(SparseMatrix::from_checked_parts(
            format, shape, indptr, indices, data,
        ))
    }
}

/// Loads wants for a [`Loader`]'s workers.
struct Source {
    matrix: Arc<Inner>,
    retention: Retention,
    /// The buffers of blocks the reader is done with, for loads to refill.
    spares: Arc<Spares>,
}

impl Load for Source {
    fn load(&self, want: &Want) -> Result<Arc<Block>> {
        self.matrix.fetch_want(want, self.retention, &self.spares)
    }
}

/// Fetches blocks for reads: through the cache, keeping or discarding loaded blocks; loading
/// the blocks a plan needs on worker threads, ahead of the copying; and remembering the last
/// whole block fetched so that consecutive chunks share it.
struct Fetcher {
    /// `None`: decided for each plan from its size.
    retention: Option<Retention>,
    last: Option<(usize, Arc<Block>)>,
    /// The read-ahead of a chunked iteration: every want of every chunk, in order.
    ahead: Option<Loader>,
    threads: usize,
    /// Blocks read for this request (or iteration) alone, once copied out of, to be read
    /// into again: shared with the loaders.
    spares: Arc<Spares>,
}

impl Fetcher {
    fn per_request(threads: usize) -> Self {
        Fetcher {
            retention: None,
            last: None,
            ahead: None,
            threads,
            spares: Arc::default(),
        }
    }

    fn fixed(retention: Retention, threads: usize) -> Self {
        Fetcher {
            retention: Some(retention),
            ..Fetcher::per_request(threads)
        }
    }

    /// The fetch function for executing `plan`, which asks for the plan's blocks in order.
    fn for_plan<'a>(
        &'a mut self,
        inner: &'a Arc<Inner>,
        plan: &ReadPlan,
    ) -> impl FnMut(usize) -> Result<Arc<Block>> + 'a {
        let retention = self.retention.unwrap_or({
            if plan.estimated_bytes() <= inner.cache.capacity() {
                Retention::Keep
            } else {
                Retention::Discard
            }
        });
        // Without an iteration-wide read-ahead, a plan needing several loads gets its own.
        let mut wants = Vec::new();
        let mut local = None;
        if self.ahead.is_none() {
            wants = inner.wants(plan);
            let to_load = wants
                .iter()
                .filter(|w| {
                    w.span.is_some() || !inner.cache.contains(BlockKey::new(inner.id, w.block))
                })
                .count();
            if self.threads > 1 && to_load > 1 {
                let source = Arc::new(Source {
                    matrix: Arc::clone(inner),
                    retention,
                    spares: Arc::clone(&self.spares),
                });
                let window = inner.window(&wants);
                let loader =
                    Loader::start(source, wants.clone(), &inner.workers, self.threads, window);
                local = Some(loader);
            }
        }
        let mut i = 0;
        move |b| {
            match &self.last {
                Some((last, block)) if *last == b => return Ok(Arc::clone(block)),
                // Not needed again: released before the next block comes in, its buffers kept
                // for a later load unless the cache (or a caller) holds it.
                Some(_) => {
                    if let Some((_, block)) = self.last.take() {
                        self.spares.recycle(block);
                    }
                }
                None => {}
            }
            let loader = local.as_mut().or(self.ahead.as_mut());
            let want = match loader {
                Some(l) if l.peek().is_some_and(|w| w.block == b) => {
                    let want = l.peek().unwrap_or(Want {
                        block: b,
                        span: None,
                    });
                    let block = l
                        .take()
                        .unwrap_or_else(|| inner.fetch_want(&want, retention, &self.spares))?;
                    i += 1;
                    if want.span.is_none() {
                        self.last = Some((b, Arc::clone(&block)));
                    }
                    return Ok(block);
                }
                _ => wants.get(i).filter(|w| w.block == b).cloned(),
            };
            i += 1;
            let want = want.unwrap_or(Want {
                block: b,
                span: None,
            });
            let block = inner.fetch_want(&want, retention, &self.spares)?;
            if want.span.is_none() {
                self.last = Some((b, Arc::clone(&block)));
            }
            Ok(block)
        }
    }
}

/// The smallest average chunk (decoded bytes) that [`BackedMatrix::chunks`] reads as one
/// piece per chunk rather than through blocks.
const WHOLE_CHUNK_MIN_BYTES: usize = 1 << 20;

/// Iterator over a selection in chunks of rows; see [`BackedMatrix::chunks`].
pub struct Chunks {
    matrix: BackedMatrix,
    rows: AxisIndex,
    cols: AxisIndex,
    chunk_rows: usize,
    next: usize,
    failed: bool,
    fetcher: Fetcher,
    /// Chunks read whole, one want per chunk (see `Inner::whole_ranges`), into the buffers of
    /// those handed back (`fetcher.spares`).
    whole: Option<Loader>,
}

impl Chunks {
    /// Hands back a chunk the caller is done with, so that a later chunk is read into its
    /// buffers: a scan then allocates memory (and the kernel zeroes it) for its first few
    /// chunks only. Worth calling in a loop that drops each chunk before the next; the
    /// chunks are the same with or without it. Chunks of a scan that reads through the cache
    /// (one smaller than the cache, or of scattered rows) are simply dropped.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use annpage_engine::backed::{BackedMatrix, BlockCache, InMemoryReader, MatrixSource};
    /// use annpage_engine::data::{ArrayData, Matrix};
    /// use annpage_engine::select::AxisIndex;
    /// let values = ArrayData::from(ndarray::Array2::from_shape_fn((1 << 16, 8), |(i, _)| i as f64));
    /// let source = MatrixSource::dense("/X", Box::new(InMemoryReader::new("/X", values).unwrap()));
    /// let m = BackedMatrix::new(source, Arc::new(BlockCache::new(1 << 20))).unwrap();
    /// let mut chunks = m.chunks(&AxisIndex::full(1 << 16), &AxisIndex::full(8), 1 << 14).unwrap();
    /// let mut total = 0.0;
    /// while let Some(chunk) = chunks.next() {
    ///     let (_rows, matrix) = chunk.unwrap();
    ///     let Matrix::Dense(ArrayData::F64(a)) = &matrix else { unreachable!() };
    ///     total += a.sum();
    ///     chunks.recycle(matrix);
    /// }
    /// assert_eq!(total, 8.0 * ((1u64 << 16) * ((1 << 16) - 1) / 2) as f64);
    /// ```
    pub fn recycle(&mut self, chunk: Matrix) {
        if self.whole.is_some() {
            self.fetcher.spares.put(Spare::from_matrix(chunk));
        }
    }

    fn read_next(&mut self, range: Range<usize>) -> Result<Matrix> {
        if let Some(loader) = &mut self.whole {
            let block = loader
                .take()
                .ok_or_else(|| Error::invalid("the chunked read ended early"))??;
            // Not cached, so normally held only here: its buffers become the chunk.
            let block = Arc::try_unwrap(block).unwrap_or_else(|shared| (*shared).clone());
            let inner = &self.matrix.inner;
            return block.into_matrix(range.len(), inner.shape.1, inner.dtype);
        }
        let inner = AxisIndex::range(range, self.rows.len())?;
        let rows = self.rows.compose(&inner)?;
        self.matrix.inner.read(&rows, &self.cols, &mut self.fetcher)
    }
}

impl Iterator for Chunks {
    type Item = Result<(Range<usize>, Matrix)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next >= self.rows.len() {
            return None;
        }
        let start = self.next;
        let end = self.rows.len().min(start.saturating_add(self.chunk_rows));
        self.next = end;
        let result = self.read_next(start..end);
        self.failed = result.is_err();
        Some(result.map(|m| (start..end, m)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = if self.failed {
            0
        } else {
            (self.rows.len() - self.next).div_ceil(self.chunk_rows)
        };
        (n, Some(n))
    }
}

impl fmt::Debug for Chunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunks")
            .field("matrix", &self.matrix)
            .field("rows", &self.rows.len())
            .field("chunk_rows", &self.chunk_rows)
            .field("next", &self.next)
            .finish()
    }
}
