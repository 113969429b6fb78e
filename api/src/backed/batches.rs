//! [`Batches`]: shuffled mini-batches of a matrix's rows, the way a training loop reads a file.
//!
//! A loader that draws every row at random touches a new block of the file for nearly every
//! row. Loaders for training (annbatch's, scvi-tools') draw random *runs* of consecutive rows
//! instead, mix a few dozen runs and cut the mix into batches: every block read serves many
//! rows, and the batches are still close to uniformly random. [`Batches`] does the same on top
//! of the block cache: the runs are shuffled up front, the rows of each group of runs are
//! shuffled when the batches reach it, and each batch is one read of its rows, whose blocks
//! the batches before it have mostly brought into the cache.

use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;

use annpage_engine::{Error, Result};

use crate::data::Matrix;

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

/// Reads rows (positions among a view's or a collection's rows) into memory.
type RowReader = Arc<dyn Fn(&[usize]) -> Result<Matrix> + Send + Sync>;

/// A batch being read on a thread of its own, or read already.
enum Ahead {
    Running(Vec<usize>, JoinHandle<Result<Matrix>>),
    Ready(Vec<usize>, Result<Matrix>),
}

/// The iterator [`BackedMatrixView::batches`](crate::BackedMatrixView::batches) (and
/// [`BackedCollection::batches`](crate::BackedCollection::batches)) returns: one [`Batch`] per
/// step. While the caller works on a batch, the next one is read on a thread of its own (a
/// training step and the next batch's read overlap). The iteration ends after the first
/// error.
///
/// Memory: the cache's budget, the batch handed out and the one read ahead, the current
/// group's order (one `usize` per row of a group of runs) and the runs' order (one `usize`
/// per run).
pub struct Batches {
    read: RowReader,
    opts: BatchOptions,
    n_rows: usize,
    rng: fastrand::Rng,
    /// The runs in the pass's order.
    runs: Vec<usize>,
    /// The next group's first run in `runs`.
    next_run: usize,
    /// Rows of the groups reached so far not yet handed out, in the order they go.
    pending: Vec<usize>,
    /// Where the next batch starts in `pending`.
    cursor: usize,
    /// Rows left to hand out (`drop_last` leaves out the short last batch), but those of
    /// `ahead`.
    left: usize,
    /// The next batch, read while the caller works on the one before.
    ahead: Option<Ahead>,
}

impl Batches {
    /// Batches over `n_rows` rows, each read by `read`.
    pub(crate) fn new(n_rows: usize, read: RowReader, opts: &BatchOptions) -> Result<Batches> {
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
        Ok(Batches {
            read,
            opts: opts.clone(),
            n_rows,
            rng,
            runs,
            next_run: 0,
            pending: Vec::new(),
            cursor: 0,
            left,
            ahead: None,
        })
    }

    /// Batches left to read.
    pub fn remaining(&self) -> usize {
        self.left.div_ceil(self.opts.batch_size) + usize::from(self.ahead.is_some())
    }

    /// Starts reading the next batch on a thread of its own (where one can be started).
    fn read_ahead(&mut self) {
        let n = self.opts.batch_size.min(self.left);
        let rows = self.take_rows(n);
        self.left -= n;
        let read = Arc::clone(&self.read);
        let wanted = rows.clone();
        self.ahead = Some(
            match std::thread::Builder::new()
                .name("annpage-batch".into())
                .spawn(move || read(&wanted))
            {
                Ok(handle) => Ahead::Running(rows, handle),
                Err(_) => {
                    let x = (self.read)(&rows);
                    Ahead::Ready(rows, x)
                }
            },
        );
    }

    /// The next `n` rows of the pass's order, reaching further groups as needed.
    fn take_rows(&mut self, n: usize) -> Vec<usize> {
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
        rows
    }
}

impl Iterator for Batches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.ahead.is_none() {
            if self.left == 0 {
                return None;
            }
            self.read_ahead();
        }
        let (rows, x) = match self.ahead.take()? {
            Ahead::Ready(rows, x) => (rows, x),
            Ahead::Running(rows, handle) => {
                let x = handle
                    .join()
                    .unwrap_or_else(|_| Err(Error::invalid("reading a batch panicked")));
                (rows, x)
            }
        };
        match x {
            Ok(x) => {
                if self.left > 0 {
                    self.read_ahead();
                }
                Some(Ok(Batch { rows, x }))
            }
            Err(e) => {
                self.left = 0;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining(), Some(self.remaining()))
    }
}

impl ExactSizeIterator for Batches {}

impl fmt::Debug for Batches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batches")
            .field("options", &self.opts)
            .field("rows", &self.n_rows)
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
