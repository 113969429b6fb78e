//! [`Batches`]: shuffled mini-batches of a matrix's rows, the way a training loop reads a file.
//!
//! A loader that draws every row at random touches a new block of the file for nearly every
//! row. Loaders for training (annbatch's, scvi-tools') draw random *runs* of consecutive rows
//! instead, mix a few dozen runs and cut the mix into batches: every block read serves many
//! rows, and the batches are still close to uniformly random. [`Batches`] does the same on top
//! of the block cache: the order of the whole pass is drawn up front (runs shuffled, rows
//! shuffled within each group of runs), then each batch is one read of its rows, whose blocks
//! the batches before it have mostly brought into the cache.

use annpage_engine::{Error, Result};

use crate::data::Matrix;

/// How [`BackedMatrixView::batches`](crate::BackedMatrixView::batches) cuts a matrix's rows
/// into batches.
///
/// The defaults are annbatch's (runs of 512 rows, 32 runs mixed) with batches of 256 rows.
///
/// ```
/// use annpage::backed::BatchOptions;
/// let opts = BatchOptions { batch_size: 128, seed: 7, ..BatchOptions::default() };
/// assert!(opts.shuffle);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// Rows per batch. Every batch but the last holds exactly this many.
    pub batch_size: usize,
    /// Rows in a run: consecutive rows drawn together.
    pub chunk_rows: usize,
    /// Runs mixed together: a batch's rows come from the shuffled rows of this many runs.
    pub preload_chunks: usize,
    /// Shuffle the runs and the rows within each group of runs. Without it, the batches are
    /// the rows in order.
    pub shuffle: bool,
    /// The generator's seed: the same seed and options give the same batches.
    pub seed: u64,
    /// Leave out the last batch when it holds fewer than `batch_size` rows.
    pub drop_last: bool,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            batch_size: 256,
            chunk_rows: 512,
            preload_chunks: 32,
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
    /// dense).
    pub x: Matrix,
}

/// Reads rows (positions among a view's or a collection's rows) into memory.
type RowReader = Box<dyn Fn(&[usize]) -> Result<Matrix> + Send + Sync>;

/// The iterator [`BackedMatrixView::batches`](crate::BackedMatrixView::batches) (and
/// [`BackedCollection::batches`](crate::BackedCollection::batches)) returns: one [`Batch`] per
/// step, read when the step is taken. Memory: the cache's budget, the batch handed out, and
/// the pass's order (one `usize` per row).
pub struct Batches {
    read: RowReader,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
}

impl Batches {
    /// Batches over `n_rows` rows, each read by `read`.
    pub(crate) fn new(n_rows: usize, read: RowReader, opts: &BatchOptions) -> Result<Batches> {
        if opts.batch_size == 0 || opts.chunk_rows == 0 || opts.preload_chunks == 0 {
            return Err(Error::invalid(
                "batch_size, chunk_rows and preload_chunks must each be at least 1",
            ));
        }
        let mut order = pass_order(n_rows, opts);
        if opts.drop_last {
            order.truncate(order.len() - order.len() % opts.batch_size);
        }
        Ok(Batches {
            read,
            order,
            batch_size: opts.batch_size,
            next: 0,
        })
    }

    /// Batches left to read.
    pub fn remaining(&self) -> usize {
        (self.order.len() - self.next).div_ceil(self.batch_size)
    }
}

impl Iterator for Batches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.order.len() {
            return None;
        }
        let end = self
            .next
            .saturating_add(self.batch_size)
            .min(self.order.len());
        let rows = self.order[self.next..end].to_vec();
        self.next = end;
        let x = (self.read)(&rows);
        if x.is_err() {
            self.next = self.order.len();
        }
        Some(x.map(|x| Batch { rows, x }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining(), Some(self.remaining()))
    }
}

impl ExactSizeIterator for Batches {}

/// Every row of `0..n` once, in the order the batches take them: runs of `chunk_rows`
/// consecutive rows in a random order, and within each group of `preload_chunks` runs the
/// rows in a random order (Fisher–Yates, seeded).
fn pass_order(n: usize, opts: &BatchOptions) -> Vec<usize> {
    if !opts.shuffle {
        return (0..n).collect();
    }
    let mut rng = fastrand::Rng::with_seed(opts.seed);
    let mut runs: Vec<usize> = (0..n.div_ceil(opts.chunk_rows)).collect();
    rng.shuffle(&mut runs);
    let mut order = Vec::with_capacity(n);
    for group in runs.chunks(opts.preload_chunks) {
        let start = order.len();
        for &run in group {
            let lo = run * opts.chunk_rows;
            order.extend(lo..lo.saturating_add(opts.chunk_rows).min(n));
        }
        rng.shuffle(&mut order[start..]);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(chunk_rows: usize, preload_chunks: usize, seed: u64) -> BatchOptions {
        BatchOptions {
            chunk_rows,
            preload_chunks,
            seed,
            ..BatchOptions::default()
        }
    }

    #[test]
    fn the_order_takes_every_row_once_and_a_group_of_runs_at_a_time() {
        let n = 1_003;
        let o = opts(10, 4, 3);
        let order = pass_order(n, &o);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..n).collect::<Vec<_>>());
        // Each stretch of 40 rows in the order comes from at most 4 runs of 10 (every run
        // full: the short last run shifts the groups after it).
        for group in pass_order(1_000, &o).chunks(40) {
            let mut runs: Vec<usize> = group.iter().map(|r| r / 10).collect();
            runs.sort_unstable();
            runs.dedup();
            assert!(runs.len() <= 4, "{runs:?}");
        }
        assert_ne!(order, (0..n).collect::<Vec<_>>(), "shuffled");
        assert_eq!(order, pass_order(n, &o), "same seed, same order");
        assert_ne!(
            order,
            pass_order(n, &opts(10, 4, 4)),
            "another seed, another order"
        );
    }

    #[test]
    fn without_shuffle_the_rows_come_in_order_and_an_empty_axis_gives_nothing() {
        let o = BatchOptions {
            shuffle: false,
            ..BatchOptions::default()
        };
        assert_eq!(pass_order(5, &o), vec![0, 1, 2, 3, 4]);
        assert!(pass_order(0, &BatchOptions::default()).is_empty());
        // Sizes far beyond the axis (as Python may pass) take everything in one run.
        let mut all = pass_order(10, &opts(usize::MAX, usize::MAX, 1));
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
}
