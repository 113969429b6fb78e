//! [`BackedMatrixView`]: a matrix element of a backed file and the rows and columns a handle
//! selects of it.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use annpage_engine::data::{CompactString, DType, Matrix};
use annpage_engine::error::ResultExt;
use annpage_engine::paged::{BackedMatrix, Chunks, MatrixKind, ReadPath, ScanBuffers};
use annpage_engine::select::AxisIndex;
use annpage_engine::{Error, Result};

use super::batches::{BatchOptions, Batches, RowReader, Windows};
use super::shared::{Shared, Snapshot};
use crate::Selection;
use annpage_engine::file::probe::{FrameId, FrameLayout, MatrixSlot};

/// A matrix element (`X`, a layer, an `obsp`/`varp` entry, `raw.X`) of a backed file, with the
/// rows and columns its handle selects. Nothing is read until asked for.
///
/// Views are cheap to clone and may be used from several threads at once. Reads go through
/// the handle's block cache (see [`super::BackedAnnData`]). A view keeps its file open (and,
/// for [`super::Mode::ReadWrite`], counts as a handle: pending changes are written back
/// when the last handle or view is dropped).
///
/// ```no_run
/// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
/// use annpage::Selection;
/// let adata = read_h5ad_backed("data.h5ad", Mode::Read, BackedOptions::default())?;
/// let x = adata.x().expect("the file has an X");
/// // Two genes of every cell: streams over the row blocks of a CSR matrix.
/// let genes = x.columns(&Selection::names(["CD3E", "LYZ"]))?;
/// assert_eq!(genes.shape(), (adata.n_obs(), 2));
/// # Ok::<(), annpage::Error>(())
/// ```
#[derive(Clone)]
pub struct BackedMatrixView {
    shared: Arc<Shared>,
    slot: MatrixSlot,
    element: String,
    rows: AxisIndex,
    cols: AxisIndex,
    row_axis: FrameId,
    col_axis: FrameId,
}

impl BackedMatrixView {
    pub(super) fn new(
        shared: Arc<Shared>,
        slot: MatrixSlot,
        element: String,
        (rows, row_axis): (AxisIndex, FrameId),
        (cols, col_axis): (AxisIndex, FrameId),
    ) -> Self {
        BackedMatrixView {
            shared,
            slot,
            element,
            rows,
            cols,
            row_axis,
            col_axis,
        }
    }

    /// `(rows, columns)` selected.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows.len(), self.cols.len())
    }

    /// The dtype of the values.
    pub fn dtype(&self) -> DType {
        self.slot.dtype()
    }

    /// Dense, CSR or CSC (what [`BackedMatrixView::to_memory`] returns).
    pub fn kind(&self) -> MatrixKind {
        self.slot.kind()
    }

    /// The element, e.g. `/X` or `/layers/counts`.
    pub fn element(&self) -> &str {
        &self.element
    }

    /// The selected rows, as positions in the file's matrix.
    pub fn row_index(&self) -> &AxisIndex {
        &self.rows
    }

    /// The selected columns, as positions in the file's matrix.
    pub fn col_index(&self) -> &AxisIndex {
        &self.cols
    }

    /// How each dataset of the matrix is read (`direct (gzip, 2 threads)`, or through
    /// the HDF5 library and why); empty for a matrix held in memory (a pending change).
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode, ReadOptions, ReadPath};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// let read = ReadOptions::with_threads(1);
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions { read, ..Default::default() })?;
    /// for (dataset, how) in adata.x().unwrap().read_paths()? {
    ///     assert!(matches!(how, ReadPath::Direct { threads: 1, .. }), "{dataset}: {how}");
    /// }
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn read_paths(&self) -> Result<Vec<(String, ReadPath)>> {
        Ok(self
            .backed()
            .in_element(&self.element)
            .in_file(&self.shared.path)?
            .map(|m| m.read_paths())
            .unwrap_or_default())
    }

    /// The backed matrix of a disk slot.
    fn backed(&self) -> Result<Option<BackedMatrix>> {
        match &self.slot {
            MatrixSlot::Disk(meta) => {
                let snap = self.shared.snapshot();
                self.shared.matrix(&snap, meta).map(Some)
            }
            MatrixSlot::Memory(_) => Ok(None),
        }
    }

    /// Reads `rows` × `cols` (positions in the file's matrix).
    pub(super) fn read(&self, rows: &AxisIndex, cols: &AxisIndex) -> Result<Matrix> {
        let read = || match (&self.slot, self.backed()?) {
            (_, Some(m)) => m.read(rows, cols),
            (MatrixSlot::Memory(m), None) => m.subset(rows, cols),
            (MatrixSlot::Disk(_), None) => Err(Error::malformed("not a matrix")),
        };
        read().in_element(&self.element).in_file(&self.shared.path)
    }

    /// The selected rows and columns, in memory: a sparse matrix keeps its format (CSR or
    /// CSC), as anndata's `adata[obs, var].X` does.
    pub fn to_memory(&self) -> Result<Matrix> {
        self.read(&self.rows, &self.cols)
    }

    /// The values the selection stores: for a sparse matrix those of its selected major
    /// slices (rows of CSR, columns of CSC; an upper bound when the other axis is cut), for a
    /// dense one rows × columns. Read from the offsets, which are in memory.
    pub fn stored_values(&self) -> Result<u64> {
        let (rows, cols) = self.shape();
        let format = match self.kind() {
            MatrixKind::Dense => return Ok(rows as u64 * cols as u64),
            MatrixKind::Sparse(format) => format,
        };
        let Some(m) = self.backed_matrix()? else {
            return Ok(match self.to_memory()? {
                Matrix::Sparse(s) => s.nnz() as u64,
                Matrix::Dense(a) => a.len() as u64,
            });
        };
        let indptr = m
            .indptr()
            .ok_or_else(|| self.blame(Error::malformed("a sparse matrix without indptr")))?;
        let major = match format {
            annpage_engine::data::SparseFormat::Csr => &self.rows,
            annpage_engine::data::SparseFormat::Csc => &self.cols,
        };
        Ok(major.iter().map(|i| indptr[i + 1] - indptr[i]).sum())
    }

    /// The selection in chunks of `chunk_rows` rows: each item is the range of rows of the
    /// view (0-based, in the view's order) and the matrix holding them.
    ///
    /// Memory stays within the cache budget plus one chunk: a pass over a matrix larger than
    /// the cache does not keep its blocks (see [`BackedMatrix::chunks`]). Fails if
    /// `chunk_rows` is 0.
    pub fn chunks(&self, chunk_rows: usize) -> Result<MatrixChunks> {
        self.chunks_once(chunk_rows, Pass::Kept)
    }

    /// [`BackedMatrixView::chunks`] for a single pass: what it loads is not kept in the cache,
    /// however small the matrix (see [`BackedMatrix::scan`]). For copies and concatenations,
    /// which read each block once.
    pub fn scan(&self, chunk_rows: usize) -> Result<MatrixChunks> {
        self.chunks_once(chunk_rows, Pass::Once(None))
    }

    /// [`BackedMatrixView::scan`] reading into the buffers an earlier pass handed back to
    /// `buffers` (a collection's files read in turn).
    pub(crate) fn scan_reusing(
        &self,
        chunk_rows: usize,
        buffers: &ScanBuffers,
    ) -> Result<MatrixChunks> {
        self.chunks_once(chunk_rows, Pass::Once(Some(buffers)))
    }

    fn chunks_once(&self, chunk_rows: usize, pass: Pass<'_>) -> Result<MatrixChunks> {
        let path = self.shared.path.clone();
        let inner = match (&self.slot, self.backed().in_file(&path)?) {
            (_, Some(m)) => ChunksInner::Backed(
                match pass {
                    Pass::Kept => m.chunks(&self.rows, &self.cols, chunk_rows),
                    Pass::Once(None) => m.scan(&self.rows, &self.cols, chunk_rows),
                    Pass::Once(Some(b)) => m.scan_reusing(&self.rows, &self.cols, chunk_rows, b),
                }
                .in_element(&self.element)
                .in_file(&path)?,
            ),
            (MatrixSlot::Memory(m), None) => {
                if chunk_rows == 0 {
                    return Err(Error::invalid("chunks must hold at least one row").in_file(&path));
                }
                ChunksInner::Memory {
                    matrix: Arc::clone(m),
                    rows: self.rows.clone(),
                    cols: self.cols.clone(),
                    chunk_rows,
                    next: 0,
                }
            }
            (MatrixSlot::Disk(_), None) => {
                return Err(Error::malformed("not a matrix")
                    .in_element(&self.element)
                    .in_file(&path))
            }
        };
        Ok(MatrixChunks {
            inner,
            element: self.element.clone(),
            path,
            failed: false,
        })
    }

    /// Shuffled batches of the selected rows, as a training loop reads them: random runs of
    /// consecutive rows, mixed a group of runs at a time (see [`Batches`]). Fails if a size
    /// in `opts` is 0.
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, BatchOptions, Mode};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// let opts = BatchOptions { batch_size: 32, run_rows: 16, preload_runs: 4, ..Default::default() };
    /// let mut seen = 0;
    /// for batch in adata.x().unwrap().batches(&opts)? {
    ///     let batch = batch?;
    ///     assert_eq!(batch.x.shape().0, batch.rows.len());
    ///     seen += batch.rows.len();
    /// }
    /// assert_eq!(seen, adata.n_obs());
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn batches(&self, opts: &BatchOptions) -> Result<Batches> {
        Batches::new(self.shape().0, self.row_reader(), opts)
            .in_element(&self.element)
            .in_file(&self.shared.path)
    }

    /// The batches `batches` in the order given (each a list of positions among the view's
    /// rows, in the batch's order; a sampler's epoch): the same batches as a
    /// [`BackedMatrixView::rows`] call per batch, read ahead on a thread of their own. Where
    /// the chunks are compressed, consecutive batches are read together as one window (half
    /// the cache's budget at most), each chunk decoded once per window instead of once per
    /// batch. Fails if a position is out of range.
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// use annpage::Selection;
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// let x = adata.x().unwrap();
    /// let order = vec![vec![9, 2, 40], vec![7], vec![1, 0]];
    /// for (batch, rows) in x.batches_of(order.clone())?.zip(&order) {
    ///     let batch = batch?;
    ///     assert_eq!(&batch.rows, rows);
    ///     assert_eq!(batch.x, x.rows(&Selection::positions(rows.iter().copied()))?);
    /// }
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn batches_of(&self, batches: Vec<Vec<usize>>) -> Result<Batches> {
        let windows = self.windows(&batches)?;
        Batches::given(self.shape().0, self.row_reader(), batches, windows)
            .in_element(&self.element)
            .in_file(&self.shared.path)
    }

    /// Reads positions among the view's rows, for [`Batches`].
    fn row_reader(&self) -> RowReader {
        let view = self.clone();
        Arc::new(move |rows: &[usize]| view.rows(&Selection::positions(rows.iter().copied())))
    }

    /// How [`Batches`] groups `batches` of this view's rows: in windows where the chunks are
    /// decoded whole, each batch on its own otherwise. A read of rows out of order with some
    /// of the columns holds a copy of the rows besides its result: twice the bytes.
    fn windows(&self, batches: &[Vec<usize>]) -> Result<Option<Windows>> {
        let Some(m) = self.backed_matrix()? else {
            return Ok(None);
        };
        if !m.decodes_whole_chunks() {
            return Ok(None);
        }
        let cache = Arc::clone(m.cache());
        let (rows, n_cols) = (self.rows.clone(), self.cols.len());
        let copies = if self.cols.is_full() { 1 } else { 2 };
        let bytes_of = move |batch: &[usize]| {
            let in_file: Vec<usize> = batch.iter().filter_map(|&i| rows.get(i)).collect();
            m.rows_bytes(&in_file, n_cols).saturating_mul(copies)
        };
        Ok(Some(Windows::new(batches, &cache, bytes_of)))
    }

    /// Every selected row of the columns `cols`, which select among the view's columns (names
    /// are the names of the view's columns). For a CSR or dense matrix this streams over the
    /// row blocks, one at a time, instead of loading the matrix.
    pub fn columns(&self, cols: &Selection) -> Result<Matrix> {
        let inner = self.refine(&self.cols, self.col_axis, cols)?;
        self.read(&self.rows, &inner)
    }

    /// The rows `rows` (selecting among the view's rows; names are the names of the view's
    /// rows), with every selected column.
    pub fn rows(&self, rows: &Selection) -> Result<Matrix> {
        let inner = self.refine(&self.rows, self.row_axis, rows)?;
        self.read(&inner, &self.cols)
    }

    /// `selection` among the positions `current` selects, as positions of the file's axis.
    fn refine(
        &self,
        current: &AxisIndex,
        axis: FrameId,
        selection: &Selection,
    ) -> Result<AxisIndex> {
        let names = match selection {
            Selection::Names(wanted) if current.is_full() => {
                // Among every name: the handle's index of them, built once.
                let snap = self.shared.snapshot();
                let found = self
                    .shared
                    .find_names(&snap, self.frame(&snap, axis)?, wanted)
                    .in_file(&self.shared.path)?;
                if let Some(found) = found {
                    return AxisIndex::from_positions(found, current.len())
                        .in_file(&self.shared.path);
                }
                Some(self.names(axis, current)?)
            }
            Selection::Names(_) => Some(self.names(axis, current)?),
            _ => None,
        };
        let inner = selection
            .resolve(current.len(), names.as_deref())
            .in_file(&self.shared.path)?;
        current.compose(&inner).in_file(&self.shared.path)
    }

    /// The names along `axis` of the positions `index`.
    fn names(&self, axis: FrameId, index: &AxisIndex) -> Result<Vec<CompactString>> {
        let snap = self.shared.snapshot();
        self.shared
            .frame_names(&snap, self.frame(&snap, axis)?, index)
            .in_file(&self.shared.path)
    }

    /// The frame along `axis` in `snap`'s layout.
    fn frame<'s>(&self, snap: &'s Snapshot, axis: FrameId) -> Result<&'s FrameLayout> {
        let layout = &snap.layout;
        match axis {
            FrameId::Obs => Ok(&layout.obs),
            FrameId::Var => Ok(&layout.var),
            FrameId::RawVar => match &layout.raw {
                Some(raw) => Ok(&raw.var),
                None => Err(Error::invalid("the file has no raw").in_file(&self.shared.path)),
            },
        }
    }

    /// The slot (for the streaming writer).
    pub(super) fn slot(&self) -> &MatrixSlot {
        &self.slot
    }

    /// The backed matrix (for the streaming writer), `None` for a matrix held in memory.
    pub(crate) fn backed_matrix(&self) -> Result<Option<BackedMatrix>> {
        self.backed().map_err(|e| self.blame(e))
    }

    /// Names this view's file and element in an error raised while reading it (so that a
    /// streaming writer does not blame its output for a bad input).
    pub(super) fn blame(&self, e: Error) -> Error {
        e.in_element(&self.element).in_file(&self.shared.path)
    }
}

impl fmt::Debug for BackedMatrixView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackedMatrixView")
            .field("element", &self.element)
            .field("kind", &self.kind())
            .field("dtype", &self.dtype())
            .field("shape", &self.shape())
            .finish()
    }
}

/// What a chunked pass does with the blocks it loads.
enum Pass<'a> {
    /// Keeps them in the cache as the budget allows ([`BackedMatrixView::chunks`]).
    Kept,
    /// Reads each once ([`BackedMatrixView::scan`]), into these buffers if given.
    Once(Option<&'a ScanBuffers>),
}

/// Iterator over a [`BackedMatrixView`] (or [`super::BackedAnnData::chunk_x`]) in chunks of
/// rows: `(range of the view's rows, matrix)`. The iteration ends after the first error.
pub struct MatrixChunks {
    inner: ChunksInner,
    element: String,
    path: std::path::PathBuf,
    failed: bool,
}

enum ChunksInner {
    Backed(Chunks),
    Memory {
        matrix: Arc<Matrix>,
        rows: AxisIndex,
        cols: AxisIndex,
        chunk_rows: usize,
        next: usize,
    },
}

impl MatrixChunks {
    /// Hands back a chunk the caller is done with, so that a later chunk is read into its
    /// memory: a one-pass reduction then allocates (and the kernel zeroes) memory for its
    /// first few chunks only, instead of for every chunk. The chunks are the same with or
    /// without it; a matrix that does not fit is dropped.
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// let mut chunks = adata.chunk_x(500)?;
    /// let mut cells = 0;
    /// while let Some(chunk) = chunks.next() {
    ///     let (rows, matrix) = chunk?;
    ///     cells += rows.len();
    ///     chunks.recycle(matrix);
    /// }
    /// assert_eq!(cells, adata.n_obs());
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn recycle(&mut self, chunk: Matrix) {
        if let ChunksInner::Backed(chunks) = &mut self.inner {
            chunks.recycle(chunk);
        }
    }

    /// Where to hand chunks back once done with them after the iteration has moved on
    /// (chunks lent to another thread, or to Python's arrays): `None` where
    /// [`MatrixChunks::recycle`] would drop them.
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// let mut chunks = adata.chunk_x(500)?;
    /// let buffers = chunks.buffers();
    /// let kept: Vec<_> = chunks.by_ref().collect::<Result<_, _>>()?;
    /// for (_, m) in kept {
    ///     if let Some(b) = &buffers {
    ///         b.recycle(m);
    ///     }
    /// }
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn buffers(&self) -> Option<ScanBuffers> {
        match &self.inner {
            ChunksInner::Backed(chunks) => chunks.buffers(),
            ChunksInner::Memory { .. } => None,
        }
    }
}

impl Iterator for MatrixChunks {
    type Item = Result<(Range<usize>, Matrix)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = match &mut self.inner {
            ChunksInner::Backed(chunks) => chunks.next()?,
            ChunksInner::Memory {
                matrix,
                rows,
                cols,
                chunk_rows,
                next,
            } => {
                if *next >= rows.len() {
                    return None;
                }
                let range = *next..rows.len().min(next.saturating_add(*chunk_rows));
                *next = range.end;
                AxisIndex::range(range.clone(), rows.len())
                    .and_then(|inner| rows.compose(&inner))
                    .and_then(|picked| matrix.subset(&picked, cols))
                    .map(|m| (range, m))
            }
        };
        self.failed = item.is_err();
        Some(item.in_element(self.element.as_str()).in_file(&self.path))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.failed {
            return (0, Some(0));
        }
        match &self.inner {
            ChunksInner::Backed(c) => c.size_hint(),
            ChunksInner::Memory {
                rows,
                chunk_rows,
                next,
                ..
            } => {
                let n = (rows.len() - (*next).min(rows.len())).div_ceil(*chunk_rows);
                (n, Some(n))
            }
        }
    }
}

impl fmt::Debug for MatrixChunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatrixChunks")
            .field("element", &self.element)
            .field("remaining", &self.size_hint().0)
            .finish()
    }
}
