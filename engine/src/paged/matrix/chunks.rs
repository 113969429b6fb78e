//! Fetching a plan's blocks (loaded on the worker pool, a window ahead of the copying) and
//! iterating over a selection in chunks of rows.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Weak};

use crate::cache::{BlockKey, Retention};
use crate::data::{ArrayData, Matrix};
use crate::paged::ahead::{Load, Loader, Want};
use crate::paged::block::Block;
use crate::paged::block::{Spare, Spares};
use crate::paged::plan::ReadPlan;
use crate::select::AxisIndex;
use crate::{Error, Result};

use super::{BackedMatrix, Inner, MemoryPolicy};

/// Loads wants for a [`Loader`]'s workers.
struct Loads {
    matrix: Arc<Inner>,
    retention: Retention,
    /// The buffers of blocks the reader is done with, for loads to refill.
    spares: Arc<Spares>,
}

impl Load for Loads {
    fn load(&self, want: &Want) -> Result<Arc<Block>> {
        self.matrix.fetch_want(want, self.retention, &self.spares)
    }
}

/// Fetches blocks for reads: through the cache, keeping or discarding loaded blocks; loading
/// the blocks a plan needs on worker threads, ahead of the copying; and remembering the last
/// whole block fetched so that consecutive chunks share it.
pub(super) struct Fetcher {
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
    pub(super) fn per_request(threads: usize) -> Self {
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
    pub(super) fn for_plan<'a>(
        &'a mut self,
        inner: &'a Arc<Inner>,
        plan: &ReadPlan,
    ) -> impl FnMut(usize) -> Result<Arc<Block>> + 'a {
        let retention = self.retention.unwrap_or_else(|| {
            MemoryPolicy::new(inner.cache.capacity()).retention(plan.estimated_bytes())
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
                let source = Arc::new(Loads {
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

/// Buffers of chunks handed back after one pass, for the next pass to read into: passes over
/// several matrices in turn (a collection's files) share one, so that only the first pass
/// allocates memory that the kernel must zero. Clones share the buffers; at most two
/// chunks' worth are held.
///
/// ```
/// use std::sync::Arc;
/// use annpage_engine::paged::{BackedMatrix, BlockCache, InMemoryReader, MatrixSource, ScanBuffers};
/// use annpage_engine::data::ArrayData;
/// use annpage_engine::select::AxisIndex;
/// let values = ArrayData::from(ndarray::Array2::from_shape_fn((1 << 12, 8), |(i, _)| i as f64));
/// let source = MatrixSource::dense("/X", Box::new(InMemoryReader::new("/X", values).unwrap()));
/// let m = BackedMatrix::new(source, Arc::new(BlockCache::new(1 << 20))).unwrap();
/// let (rows, cols) = (AxisIndex::full(1 << 12), AxisIndex::full(8));
/// let buffers = ScanBuffers::default();
/// for _pass in 0..2 {
///     let mut chunks = m.scan_reusing(&rows, &cols, 1 << 10, &buffers).unwrap();
///     while let Some(chunk) = chunks.next() {
///         let (_rows, matrix) = chunk.unwrap();
///         chunks.recycle(matrix);
///     }
/// }
/// ```
#[derive(Clone, Debug, Default)]
pub struct ScanBuffers(Arc<Spares>);

impl ScanBuffers {
    /// Keeps the buffers of `chunk` for a later pass (drops them when enough are held).
    pub fn recycle(&self, chunk: Matrix) {
        self.0.put(Spare::from_matrix(chunk));
    }

    /// [`ScanBuffers::recycle`] for a sparse chunk already taken apart
    /// ([`SparseMatrix::into_parts`](crate::data::SparseMatrix::into_parts)): its offsets,
    /// minor indices and values.
    ///
    /// ```
    /// use annpage_engine::data::{ArrayData, Matrix, SparseFormat, SparseMatrix};
    /// use annpage_engine::paged::ScanBuffers;
    /// let m = SparseMatrix::new(SparseFormat::Csr, (1, 3), vec![0, 1], vec![2], ArrayData::from(vec![1.0f32]))?;
    /// let (_, _, indptr, indices, data) = m.into_parts();
    /// ScanBuffers::default().recycle_parts(indptr, indices, data);
    /// # Ok::<(), annpage_engine::Error>(())
    /// ```
    pub fn recycle_parts(&self, indptr: Vec<u64>, indices: Vec<u32>, data: ArrayData) {
        self.0.put(Spare {
            indptr,
            indices: Some(indices),
            values: Some(data),
        });
    }

    /// A handle that does not keep the buffers: for chunks that may outlive the pass, whose
    /// buffers are then simply freed instead of kept for a pass that will not come.
    ///
    /// ```
    /// use annpage_engine::paged::ScanBuffers;
    /// let buffers = ScanBuffers::default();
    /// let weak = buffers.downgrade();
    /// assert!(weak.upgrade().is_some());
    /// drop(buffers);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn downgrade(&self) -> WeakScanBuffers {
        WeakScanBuffers(Arc::downgrade(&self.0))
    }
}

/// A [`ScanBuffers`] that does not keep its buffers alive (see [`ScanBuffers::downgrade`]).
#[derive(Clone, Debug, Default)]
pub struct WeakScanBuffers(Weak<Spares>);

impl WeakScanBuffers {
    /// The buffers, while a [`ScanBuffers`] (or the pass reading into them) still holds them.
    pub fn upgrade(&self) -> Option<ScanBuffers> {
        self.0.upgrade().map(ScanBuffers)
    }
}

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
    /// use annpage_engine::paged::{BackedMatrix, BlockCache, InMemoryReader, MatrixSource};
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

    /// Where chunks are handed back when the caller gives them away and is done with them
    /// only after the iteration has moved on (chunks lent to another thread or language):
    /// the same as [`Chunks::recycle`] from wherever the chunk ended up. `None` where this
    /// scan would drop them (see [`Chunks::recycle`]).
    pub fn buffers(&self) -> Option<ScanBuffers> {
        self.whole
            .as_ref()
            .map(|_| ScanBuffers(Arc::clone(&self.fetcher.spares)))
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

impl BackedMatrix {
    /// Starts the pass [`BackedMatrix::plan_scan`] plans.
    pub(super) fn chunks_kept(
        &self,
        rows: &AxisIndex,
        cols: &AxisIndex,
        chunk_rows: usize,
        retention: Option<Retention>,
        buffers: Option<&ScanBuffers>,
    ) -> Result<Chunks> {
        self.inner.check(rows, cols)?;
        if chunk_rows == 0 {
            return Err(Error::invalid("chunks must hold at least one row"));
        }
        let plan = self.plan_scan(rows, cols, chunk_rows, retention)?;
        let mut fetcher = Fetcher::fixed(plan.retention, self.inner.threads);
        if let Some(buffers) = buffers {
            fetcher.spares = Arc::clone(&buffers.0);
        }
        let loader = plan.window.map(|window| {
            let source = Arc::new(Loads {
                matrix: Arc::clone(&self.inner),
                retention: plan.retention,
                spares: Arc::clone(&fetcher.spares),
            });
            let inner = &self.inner;
            Loader::start(source, plan.wants, &inner.workers, inner.threads, window)
        });
        let whole = if plan.whole_chunks {
            loader
        } else {
            fetcher.ahead = loader;
            None
        };
        Ok(Chunks {
            matrix: self.clone(),
            rows: rows.clone(),
            cols: cols.clone(),
            chunk_rows,
            next: 0,
            failed: false,
            fetcher,
            whole,
        })
    }
}
