//! [`Batches`]: mini-batches of a matrix's rows, the way a training loop reads a file.
//!
//! A loader that draws every row at random touches a new block of the file for nearly every
//! row. Loaders for training (annbatch's, scvi-tools') draw random *runs* of consecutive rows
//! instead, mix a few dozen runs and cut the mix into batches: every block read serves many
//! rows, and the batches are still close to uniformly random. [`Batches`] does the same on top
//! of the block cache: the runs are shuffled up front, the rows of each group of runs are
//! shuffled when the batches reach it, and each batch is one read of its rows, whose blocks
//! the batches before it have mostly brought into the cache.
//!
//! A caller may also give the batches (a sampler's epoch), of any rows. Where the matrix's
//! chunks are then decoded whole (compressed), consecutive batches are read together as one
//! window: each chunk the window touches is decoded once for all of its batches, instead of
//! once per batch that touches it. Drawn batches are read one by one: their runs already
//! share blocks through the cache, and a window would read far ahead of the first batch
//! (measured slower on both kinds of compressed stores).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;

use annpage_engine::{Error, Result};

use annpage_engine::paged::{BlockCache, MemoryPolicy};

use crate::data::Matrix;
use crate::AxisIndex;

/// How [`BackedMatrixView::batches`](crate::BackedMatrixView::batches) cuts a matrix's rows
/// into batches.
///
/// The defaults are annbatch's (runs of 512 rows, 32 runs mixed) with batches of 256 rows.
/// Batches reach the rows of a run through the cache: keep a group of runs
/// (`run_rows × preload_runs` rows) well within the cache's budget.
///
/// ```
/// use annpage::BatchOptions;
/// let opts = BatchOptions { batch_size: 128, seed: 7, ..BatchOptions::default() };
/// assert!(opts.shuffle);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// Rows per batch. Every batch but the last holds exactly this many.
    pub batch_size: usize,
    /// Rows in a run: consecutive rows drawn together (annbatch's `chunk_size`).
    pub run_rows: usize,
    /// Runs mixed together: a batch's rows come from the shuffled rows of a group of this
    /// many runs (annbatch's `preload_nchunks`).
    pub preload_runs: usize,
    /// Shuffle the runs and the rows within each group of runs. Without it, the batches are
    /// the rows in order.
    pub shuffle: bool,
    /// The generator's seed: the same seed and options give the same batches (for another
    /// order each epoch, give each epoch its own seed).
    pub seed: u64,
    /// Leave out the last batch when it holds fewer than `batch_size` rows.
    pub drop_last: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            batch_size: 256,
            run_rows: 512,
            preload_runs: 32,
            shuffle: true,
            seed: 0,
            drop_last: false,
        }
    }
}

/// One batch: the rows it holds (positions among the view's rows, in the batch's order) and
/// their values, row `i` of `x` being row `rows[i]` of the view.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Positions among the view's rows.
    pub rows: Vec<usize>,
    /// The rows' values, with every column of the view, stored as the matrix is (CSR, CSC or
    /// dense; a CSC matrix reads every column block for each batch: convert it first).
    pub x: Matrix,
}

/// Reads rows (positions among a view's or a collection's rows, in the order given) into
/// memory.
pub(crate) type RowReader = Arc<dyn Fn(&[usize]) -> Result<Matrix> + Send + Sync>;

/// An upper bound of the bytes rows (positions) take once read.
type RowBytes = Box<dyn Fn(&[usize]) -> u64 + Send + Sync>;

/// How [`Batches`] groups batches into windows read at once: for a matrix whose chunks are
/// decoded whole, where a batch read on its own would decode every chunk it touches.
pub(crate) struct Windows {
    /// The bytes a window's reading may hold (at least one batch is read at a time).
    limit: u64,
    /// The bytes reading rows holds (their result, and any copy the read makes of it).
    bytes_of: RowBytes,
    /// `limit` taken out of the cache's budget until the last window is read (each window's
    /// read holds it too, so that a read left running by a dropped iterator stays counted).
    room: Arc<dyn Send + Sync>,
}

impl Windows {
    /// Windows for `batches`, measured by `bytes_of`, each read with room reserved from
    /// `cache`: half its budget ([`MemoryPolicy::scattered_piece_bytes`]), no more than half of
    /// what is not reserved yet (other windows), no more than all of the batches take.
    pub(crate) fn new(
        batches: &[Vec<usize>],
        cache: &Arc<BlockCache>,
        bytes_of: impl Fn(&[usize]) -> u64 + Send + Sync + 'static,
    ) -> Self {
        let total = batches
            .iter()
            .fold(0u64, |acc, b| acc.saturating_add(bytes_of(b)));
        let share = MemoryPolicy::new(cache.budget())
            .scattered_piece_bytes()
            .min(cache.capacity() / 2);
        let limit = (share as u64).min(total);
        Windows {
            limit,
            bytes_of: Box::new(bytes_of),
            room: Arc::new(cache.reserve(limit as usize)),
        }
    }
}

/// Where the batches come from.
enum Order {
    /// Drawn as [`BatchOptions`] says.
    Sampled(Sampler),
    /// Given by the caller.
    Given(std::vec::IntoIter<Vec<usize>>),
}

impl Order {
    fn next_batch(&mut self) -> Option<Vec<usize>> {
        match self {
            Order::Sampled(s) => s.next_batch(),
            Order::Given(batches) => batches.next(),
        }
    }

    fn remaining(&self) -> usize {
        match self {
            Order::Sampled(s) => s.left.div_ceil(s.opts.batch_size),
            Order::Given(batches) => batches.len(),
        }
    }
}

/// Draws batches as [`BatchOptions`] says.
struct Sampler {
    opts: BatchOptions,
    n_rows: usize,
    rng: fastrand::Rng,
    /// The runs in the pass's order.
    runs: Vec<usize>,
    /// The next group's first run in `runs`.
    next_run: usize,
    /// Rows of the groups reached so far not yet drawn, in the order they go.
    pending: Vec<usize>,
    /// Where the next batch starts in `pending`.
    cursor: usize,
    /// Rows left to draw (`drop_last` leaves out the short last batch).
    left: usize,
}

impl Sampler {
    fn new(n_rows: usize, opts: &BatchOptions) -> Result<Sampler> {
        if opts.batch_size == 0 || opts.run_rows == 0 || opts.preload_runs == 0 {
            return Err(Error::invalid(
                "batch_size, run_rows and preload_runs must each be at least 1",
            ));
        }
        let mut rng = fastrand::Rng::with_seed(opts.seed);
        let mut runs: Vec<usize> = (0..n_rows.div_ceil(opts.run_rows)).collect();
        if opts.shuffle {
            rng.shuffle(&mut runs);
        }
        let left = if opts.drop_last {
            n_rows - n_rows % opts.batch_size
        } else {
            n_rows
        };
        Ok(Sampler {
            opts: opts.clone(),
            n_rows,
            rng,
            runs,
            next_run: 0,
            pending: Vec::new(),
            cursor: 0,
            left,
        })
    }

    /// The next batch's rows, reaching further groups of runs as needed.
    fn next_batch(&mut self) -> Option<Vec<usize>> {
        let n = self.opts.batch_size.min(self.left);
        if n == 0 {
            return None;
        }
        self.left -= n;
        while self.pending.len() - self.cursor < n {
            self.pending.drain(..self.cursor);
            self.cursor = 0;
            let end = self
                .next_run
                .saturating_add(self.opts.preload_runs)
                .min(self.runs.len());
            let start = self.pending.len();
            for &run in &self.runs[self.next_run..end] {
                let lo = run * self.opts.run_rows;
                let hi = lo.saturating_add(self.opts.run_rows).min(self.n_rows);
                self.pending.extend(lo..hi);
            }
            self.next_run = end;
            if self.opts.shuffle {
                self.rng.shuffle(&mut self.pending[start..]);
            }
        }
        let rows = self.pending[self.cursor..self.cursor + n].to_vec();
        self.cursor += n;
        Some(rows)
    }
}

/// Consecutive batches read at once: `x` holds their rows one batch after the other.
struct Window {
    batches: VecDeque<Vec<usize>>,
    x: Option<Matrix>,
    /// The first row of `x` of the next batch.
    next_row: usize,
}

impl Window {
    /// The next batch, cut out of `x` (taken whole if it is the window's only batch). The
    /// window's matrix is dropped with its last batch.
    fn cut(&mut self) -> Option<Result<Batch>> {
        let rows = self.batches.pop_front()?;
        let x = self.x.take()?;
        if self.next_row == 0 && self.batches.is_empty() {
            return Some(Ok(Batch { rows, x }));
        }
        let (n, cols) = x.shape();
        let range = self.next_row..self.next_row + rows.len();
        self.next_row = range.end;
        let part = AxisIndex::range(range, n).and_then(|r| x.subset(&r, &AxisIndex::full(cols)));
        if !self.batches.is_empty() {
            self.x = Some(x);
        }
        Some(part.map(|x| Batch { rows, x }))
    }
}

/// A window being read on a thread of its own, or read already.
enum Ahead {
    Running(Vec<Vec<usize>>, JoinHandle<Result<Matrix>>),
    Ready(Vec<Vec<usize>>, Result<Matrix>),
}

/// The iterator [`BackedMatrixView::batches`](crate::BackedMatrixView::batches) and
/// [`BackedMatrixView::batches_of`](crate::BackedMatrixView::batches_of) (and their
/// [`BackedCollection`](crate::BackedCollection) counterparts) return: one [`Batch`] per step.
/// While the caller works on a batch, the next one (or the next window of batches) is read on
/// a thread of its own, so a training step and the next read overlap. The iteration ends after
/// the first error.
///
/// Memory: the cache's budget, the batch handed out and, outside a window, the batch read
/// ahead; the current group's order (one `usize` per row of a group of runs) and the runs'
/// order (one `usize` per run). A window's read holds at most half the budget (or one batch,
/// when a batch alone holds more), taken out of the cache's budget until the last window is
/// read; the window's rows are held until its last batch is handed out.
pub struct Batches {
    read: RowReader,
    order: Order,
    windows: Option<Windows>,
    /// A batch drawn that did not fit the window before: the next window's first.
    held: Option<Vec<usize>>,
    /// The window whose batches are being handed out.
    current: Option<Window>,
    /// The next window, read while the caller works on the batch before.
    ahead: Option<Ahead>,
}

impl Batches {
    /// Batches over `n_rows` rows drawn as `opts` says, each read by `read`.
    pub(crate) fn new(n_rows: usize, read: RowReader, opts: &BatchOptions) -> Result<Batches> {
        let order = Order::Sampled(Sampler::new(n_rows, opts)?);
        Ok(Batches::with_order(read, order, None))
    }

    /// The batches `batches`, in that order, of positions among `n_rows` rows, each window
    /// (each batch without `windows`) read by `read`. Fails on a position out of range.
    pub(crate) fn given(
        n_rows: usize,
        read: RowReader,
        batches: Vec<Vec<usize>>,
        windows: Option<Windows>,
    ) -> Result<Batches> {
        for (b, rows) in batches.iter().enumerate() {
            if let Some(&r) = rows.iter().find(|&&r| r >= n_rows) {
                return Err(Error::invalid(format!(
                    "batch {b} holds row {r}, out of range for {n_rows} rows"
                )));
            }
        }
        Ok(Batches::with_order(
            read,
            Order::Given(batches.into_iter()),
            windows,
        ))
    }

    fn with_order(read: RowReader, order: Order, windows: Option<Windows>) -> Batches {
        Batches {
            read,
            order,
            windows,
            held: None,
            current: None,
            ahead: None,
        }
    }

    /// Batches left to read.
    pub fn remaining(&self) -> usize {
        let window = |w: &Window| w.batches.len();
        let ahead = match &self.ahead {
            Some(Ahead::Running(b, _) | Ahead::Ready(b, _)) => b.len(),
            None => 0,
        };
        self.order.remaining()
            + usize::from(self.held.is_some())
            + self.current.as_ref().map_or(0, window)
            + ahead
    }

    /// The next window's batches: one, or as many as fit the window's bytes.
    fn next_window(&mut self) -> Vec<Vec<usize>> {
        let mut batches = Vec::new();
        let Some(first) = self.held.take().or_else(|| self.order.next_batch()) else {
            return batches;
        };
        let Some(w) = &self.windows else {
            batches.push(first);
            return batches;
        };
        let mut bytes = (w.bytes_of)(&first);
        batches.push(first);
        while let Some(next) = self.order.next_batch() {
            bytes = bytes.saturating_add((w.bytes_of)(&next));
            if bytes > w.limit {
                self.held = Some(next);
                break;
            }
            batches.push(next);
        }
        batches
    }

    /// Starts reading the next window on a thread of its own (where one can be started).
    fn read_ahead(&mut self) {
        let batches = self.next_window();
        if batches.is_empty() {
            // Every window is read: the room goes back to the cache.
            self.windows = None;
            return;
        }
        let rows: Vec<usize> = batches.iter().flatten().copied().collect();
        let read = Arc::clone(&self.read);
        let room = self.windows.as_ref().map(|w| Arc::clone(&w.room));
        self.ahead = Some(
            match std::thread::Builder::new()
                .name("annpage-batch".into())
                .spawn(move || {
                    let x = read(&rows);
                    drop(room);
                    x
                }) {
                Ok(handle) => Ahead::Running(batches, handle),
                Err(_) => {
                    let rows: Vec<usize> = batches.iter().flatten().copied().collect();
                    let x = (self.read)(&rows);
                    Ahead::Ready(batches, x)
                }
            },
        );
    }

    /// Waits for the window read ahead.
    fn join_ahead(&mut self) -> Option<Result<Window>> {
        let (batches, x) = match self.ahead.take()? {
            Ahead::Ready(batches, x) => (batches, x),
            Ahead::Running(batches, handle) => {
                let x = handle
                    .join()
                    .unwrap_or_else(|_| Err(Error::invalid("reading a batch panicked")));
                (batches, x)
            }
        };
        Some(x.map(|x| Window {
            batches: batches.into(),
            x: Some(x),
            next_row: 0,
        }))
    }

    /// Ends the iteration (after an error).
    fn stop(&mut self) {
        self.order = Order::Given(Vec::new().into_iter());
        self.held = None;
        self.current = None;
        self.windows = None;
    }
}

impl Iterator for Batches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.current.as_ref().is_none_or(|w| w.batches.is_empty()) {
            if self.ahead.is_none() {
                self.read_ahead();
            }
            // Nothing read ahead after `read_ahead`: every window is read (and its room given
            // back there).
            match self.join_ahead()? {
                Ok(window) => self.current = Some(window),
                Err(e) => {
                    self.stop();
                    return Some(Err(e));
                }
            }
        }
        let batch = self.current.as_mut()?.cut()?;
        if batch.is_err() {
            self.stop();
        } else if self.current.as_ref().is_some_and(|w| w.batches.is_empty()) {
            self.current = None;
            self.read_ahead();
        }
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining(), Some(self.remaining()))
    }
}

impl ExactSizeIterator for Batches {}

impl fmt::Debug for Batches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batches")
            .field("windows", &self.windows.as_ref().map(|w| w.limit))
            .field("remaining", &self.remaining())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pass's whole order, every row read as an empty matrix.
    fn order(n: usize, opts: &BatchOptions) -> Vec<usize> {
        let read: RowReader = Arc::new(|rows| {
            let zeros = crate::data::ArrayData::zeros(crate::data::DType::F32, &[rows.len(), 0]);
            Ok(Matrix::Dense(zeros))
        });
        Batches::new(n, read, opts)
            .unwrap()
            .flat_map(|b| b.unwrap().rows)
            .collect()
    }

    fn opts(run_rows: usize, preload_runs: usize, seed: u64) -> BatchOptions {
        BatchOptions {
            run_rows,
            preload_runs,
            seed,
            batch_size: 7,
            ..BatchOptions::default()
        }
    }

    #[test]
    fn the_order_takes_every_row_once_and_a_group_of_runs_at_a_time() {
        let n = 1_003;
        let o = opts(10, 4, 3);
        let order = order(n, &o);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..n).collect::<Vec<_>>());
        // Each stretch of 40 rows in the order comes from at most 4 runs of 10 (every run
        // full: the short last run shifts the groups after it).
        for group in self::order(1_000, &o).chunks(40) {
            let mut runs: Vec<usize> = group.iter().map(|r| r / 10).collect();
            runs.sort_unstable();
            runs.dedup();
            assert!(runs.len() <= 4, "{runs:?}");
        }
        assert_ne!(order, (0..n).collect::<Vec<_>>(), "shuffled");
        assert_eq!(order, self::order(n, &o), "same seed, same order");
        assert_ne!(order, self::order(n, &opts(10, 4, 4)), "another seed");
    }

    #[test]
    fn given_batches_are_read_in_windows_of_at_most_the_limit_and_cut_in_order() {
        // Row r read as the 1×1 value r; each row counts 10 bytes, windows hold 100.
        let calls = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let seen = Arc::clone(&calls);
        let read: RowReader = Arc::new(move |rows| {
            seen.lock().push(rows.to_vec());
            let values = ndarray::Array2::from_shape_fn((rows.len(), 1), |(i, _)| rows[i] as i64);
            Ok(Matrix::Dense(crate::data::ArrayData::from(values)))
        });
        let order = vec![
            vec![3, 1, 4, 1],
            vec![5, 9, 2, 6],
            vec![5, 3, 5, 8],
            vec![9],
            vec![],
        ];
        // A cache of 200 bytes: windows of half of it.
        let cache = Arc::new(BlockCache::new(200));
        let windows = Windows::new(&order, &cache, |rows: &[usize]| 10 * rows.len() as u64);
        let batches = Batches::given(10, read.clone(), order.clone(), Some(windows)).unwrap();
        assert_eq!(batches.len(), 5);
        let got: Vec<Batch> = batches.map(|b| b.unwrap()).collect();
        for (batch, rows) in got.iter().zip(&order) {
            assert_eq!(&batch.rows, rows);
            let values = ndarray::Array2::from_shape_fn((rows.len(), 1), |(i, _)| rows[i] as i64);
            assert_eq!(batch.x, Matrix::Dense(crate::data::ArrayData::from(values)));
        }
        let lens: Vec<usize> = calls.lock().iter().map(Vec::len).collect();
        assert_eq!(lens, [8, 5], "two windows: 80 bytes, then 50");
        // Without windows, one read per batch; a position out of range is refused.
        calls.lock().clear();
        let each = Batches::given(10, read.clone(), order.clone(), None).unwrap();
        assert_eq!(each.count(), 5);
        assert_eq!(calls.lock().len(), 5);
        let err = Batches::given(10, read, vec![vec![10]], None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("batch 0 holds row 10"), "{err}");
    }

    #[test]
    fn sizes_drop_last_and_empty_axes() {
        let plain = BatchOptions {
            shuffle: false,
            batch_size: 2,
            ..BatchOptions::default()
        };
        assert_eq!(order(5, &plain), vec![0, 1, 2, 3, 4]);
        let cut = BatchOptions {
            drop_last: true,
            ..plain.clone()
        };
        assert_eq!(order(5, &cut), vec![0, 1, 2, 3]);
        assert!(order(0, &BatchOptions::default()).is_empty());
        // Sizes far beyond the axis (as Python may pass) take everything in one batch.
        let huge = BatchOptions {
            batch_size: usize::MAX,
            ..opts(usize::MAX, usize::MAX, 1)
        };
        let mut all = order(10, &huge);
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        let read: RowReader = Arc::new(|_| Err(Error::invalid("boom")));
        let mut failing = Batches::new(10, read, &plain).unwrap();
        assert_eq!(failing.len(), 5);
        assert!(failing.next().unwrap().is_err());
        assert!(
            failing.next().is_none(),
            "the iteration ends after an error"
        );
        // The batch read ahead on its own thread: a panic there is an error, not a crash.
        let read: RowReader = Arc::new(|rows| {
            assert!(rows.len() < 2, "a reader's bug");
            Ok(Matrix::Dense(crate::data::ArrayData::zeros(
                crate::data::DType::F32,
                &[rows.len(), 0],
            )))
        });
        let mut panicking = Batches::new(10, read, &plain).unwrap();
        let err = panicking.next().unwrap().unwrap_err().to_string();
        assert!(err.contains("panicked"), "{err}");
    }
}
