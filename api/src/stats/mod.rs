//! One-pass per-cell and per-gene statistics over row chunks of a matrix.
//!
//! [`QcAccumulator`] takes the row blocks of a matrix in order (for example from
//! `BackedAnnData::chunk_x`) and keeps only per-gene running moments and per-cell results,
//! so a file of any size is reduced in memory proportional to its number of cells and genes.
//!
//! Each chunk is read once, in its stored dtype: per gene, the sum, the sum of squares and
//! the count of the non-zero values. A gene whose chunk sums lose digits to cancellation (its
//! mean large next to its spread: Σx² more than `ILL_CONDITIONED` times the sum of squared
//! deviations) has its values in that chunk summed again around its mean, so variances agree
//! with numpy's two-pass `var(ddof=1)` to rounding error whatever the data; on count data
//! that second look never happens. Chunks are merged with Chan et al.'s parallel formula.
//! Large chunks are split by rows between threads, each with its own per-gene sums.

mod kernel;
mod pass;
mod tsv;

use std::ops::Range;

use annpage_engine::data::Matrix;
use annpage_engine::{Error, Result};

use kernel::{CellOut, GenePart, GeneSums, Typed, Value, Visit};

pub use pass::{collection_qc, reduction_rows};
pub use tsv::tsv_paths;

/// Stored values below which a thread is not worth starting for a share of a chunk.
const MIN_VALUES_PER_THREAD: usize = 1 << 20;

/// The ratio of a gene's Σx² to its sum of squared deviations above which `Σx² − (Σx)²/n`
/// has lost too many digits (rounding errors grow with the ratio), and the gene's values in
/// the chunk are summed again around their mean.
const ILL_CONDITIONED: f64 = 1e3;

/// Per-cell and per-gene results of [`QcAccumulator`].
#[derive(Clone, Debug, PartialEq)]
pub struct QcStats {
    /// Per cell: number of non-zero values.
    pub n_genes: Vec<u64>,
    /// Per cell: sum of values.
    pub total_counts: Vec<f64>,
    /// Per gene: number of cells with a non-zero value.
    pub n_cells: Vec<u64>,
    /// Per gene: mean over all cells.
    pub mean: Vec<f64>,
    /// Per gene: sample variance over all cells (`ddof = 1`; NaN with fewer than two cells).
    pub var: Vec<f64>,
}

/// Accumulates [`QcStats`] over consecutive row chunks.
///
/// ```
/// use annpage::stats::QcAccumulator;
/// use annpage::data::{ArrayData, Matrix};
/// use ndarray::array;
///
/// let mut acc = QcAccumulator::new(2);
/// acc.add_chunk(&Matrix::Dense(ArrayData::from(array![[1.0f32, 0.0], [3.0, 4.0]]))).unwrap();
/// acc.add_chunk(&Matrix::Dense(ArrayData::from(array![[5.0f32, 0.0]]))).unwrap();
/// let s = acc.finish();
/// assert_eq!(s.n_genes, vec![1, 2, 1]);
/// assert_eq!(s.total_counts, vec![1.0, 7.0, 5.0]);
/// assert_eq!(s.n_cells, vec![3, 1]);
/// assert!((s.mean[0] - 3.0).abs() < 1e-12 && (s.mean[1] - 4.0 / 3.0).abs() < 1e-12);
/// assert!((s.var[0] - 4.0).abs() < 1e-12);
/// ```
#[derive(Clone, Debug)]
pub struct QcAccumulator {
    n_vars: usize,
    /// The number of rows announced by [`Self::with_n_obs`].
    n_obs: Option<usize>,
    rows: usize,
    n_genes: Vec<u64>,
    total_counts: Vec<f64>,
    n_cells: Vec<u64>,
    mean: Vec<f64>,
    m2: Vec<f64>,
    threads: usize,
    /// Stored values below which a thread is not started for a share of a chunk.
    split_above: usize,
    /// Per thread, per gene: the sums of the chunk being added (kept from chunk to chunk).
    scratch: Vec<GenePart>,
    /// The genes the per-cell results count (`None`: all).
    counted: Option<Vec<bool>>,
}

impl QcAccumulator {
    /// An accumulator for a matrix with `n_vars` columns; the per-cell results grow with
    /// each chunk.
    pub fn new(n_vars: usize) -> Self {
        QcAccumulator {
            n_vars,
            n_obs: None,
            rows: 0,
            n_genes: Vec::new(),
            total_counts: Vec::new(),
            n_cells: vec![0; n_vars],
            mean: vec![0.0; n_vars],
            m2: vec![0.0; n_vars],
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            split_above: MIN_VALUES_PER_THREAD,
            scratch: Vec::new(),
            counted: None,
        }
    }

    /// An accumulator for a matrix of `n_obs` rows and `n_vars` columns: the per-cell results
    /// are allocated once and each chunk's are written in place. Adding more than `n_obs`
    /// rows is an error; [`Self::finish`] returns the rows added.
    pub fn with_n_obs(n_obs: usize, n_vars: usize) -> Self {
        let mut acc = QcAccumulator {
            n_obs: Some(n_obs),
            ..QcAccumulator::new(n_vars)
        };
        // Allocated up front where it can be; otherwise the rows grow them as they come (a
        // count beyond any memory is no reason to abort).
        let _ = acc.n_genes.try_reserve_exact(n_obs);
        let _ = acc.total_counts.try_reserve_exact(n_obs);
        acc
    }

    /// Per-cell results (`n_genes`, `total_counts`) that count only the genes `counted`
    /// marks; the per-gene results cover every gene. For a collection's file reduced in its
    /// own genes when an inner join drops some (see [`QcAccumulator::append`]).
    ///
    /// ```
    /// use annpage::stats::QcAccumulator;
    /// use annpage::data::{ArrayData, Matrix};
    /// let chunk = Matrix::Dense(ArrayData::from(ndarray::array![[1.0f32, 2.0, 4.0]]));
    /// let mut acc = QcAccumulator::new(3).with_counted_genes(vec![true, false, true]);
    /// acc.add_chunk(&chunk)?;
    /// let stats = acc.finish();
    /// assert_eq!((stats.n_genes, stats.total_counts), (vec![2], vec![5.0]));
    /// assert_eq!(stats.n_cells, [1, 1, 1]);
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn with_counted_genes(mut self, counted: Vec<bool>) -> Self {
        self.counted = Some(counted);
        self
    }

    /// Splits the reduction of large chunks by rows between up to `threads` threads (by
    /// default one per core, at most [`annpage_engine::paged::max_threads`]; 1 reduces on the
    /// calling thread only).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.clamp(1, annpage_engine::paged::max_threads());
        self
    }

    /// Adds the next block of rows (dense, CSR or CSC; numeric or bool).
    pub fn add_chunk(&mut self, chunk: &Matrix) -> Result<()> {
        let (rows, cols) = chunk.shape();
        if cols != self.n_vars {
            return Err(Error::shape(format!(
                "chunk has {cols} columns, the matrix has {}",
                self.n_vars
            )));
        }
        let end = self.rows.checked_add(rows);
        if let (Some(n_obs), Some(end)) = (self.n_obs, end) {
            if end > n_obs {
                return Err(Error::shape(format!(
                    "a chunk of {rows} rows after {} rows: more than the {n_obs} rows announced",
                    self.rows
                )));
            }
        }
        let end = end.ok_or_else(|| Error::shape("too many rows"))?;
        if self.counted.as_ref().is_some_and(|c| c.len() != cols) {
            return Err(Error::shape(format!(
                "genes counted given for other than the matrix's {cols} columns"
            )));
        }
        if rows == 0 {
            return Ok(());
        }
        self.n_genes.resize(end, 0);
        self.total_counts.resize(end, 0.0);
        kernel::visit_typed(chunk, self)
    }

    /// Adds the rows of `part` after the rows added so far: an accumulator over the next
    /// cells, whose genes are these in another order, some missing, some more (`genes[k]` is
    /// the position here of `part`'s gene `k`, all different; `None` for a gene left out, whose
    /// values `part`'s per-cell results must not count: see
    /// [`QcAccumulator::with_counted_genes`]). In those rows, genes that `part` lacks are
    /// zeros. For a collection whose files are reduced one by one in their own genes.
    ///
    /// ```
    /// use annpage::stats::QcAccumulator;
    /// use annpage::data::{ArrayData, Matrix};
    /// use ndarray::array;
    /// let chunk = |a: ndarray::Array2<f32>| Matrix::Dense(ArrayData::from(a));
    /// // Genes (a, b, c); the second part has only (c, a).
    /// let mut whole = QcAccumulator::new(3);
    /// whole.add_chunk(&chunk(array![[1.0, 2.0, 0.0]]))?;
    /// whole.add_chunk(&chunk(array![[5.0, 0.0, 3.0], [0.0, 0.0, 4.0]]))?;
    /// let mut joined = QcAccumulator::new(3);
    /// joined.add_chunk(&chunk(array![[1.0, 2.0, 0.0]]))?;
    /// let mut part = QcAccumulator::new(2);
    /// part.add_chunk(&chunk(array![[3.0, 5.0], [4.0, 0.0]]))?;
    /// joined.append(part, &[Some(2), Some(0)])?;
    /// let (a, b) = (whole.finish(), joined.finish());
    /// assert_eq!((a.n_genes, a.total_counts, a.n_cells), (b.n_genes, b.total_counts, b.n_cells));
    /// assert!(a.var.iter().zip(&b.var).all(|(x, y)| (x - y).abs() < 1e-12));
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn append(&mut self, part: QcAccumulator, genes: &[Option<usize>]) -> Result<()> {
        if genes.len() != part.n_vars {
            return Err(Error::shape(format!(
                "{} gene positions for a part of {} genes",
                genes.len(),
                part.n_vars
            )));
        }
        let end = self.rows.checked_add(part.rows);
        match (self.n_obs, end) {
            (_, None) => return Err(Error::shape("too many rows")),
            (Some(n_obs), Some(end)) if end > n_obs => {
                return Err(Error::shape(format!(
                    "a part of {} rows after {} rows: more than the {n_obs} rows announced",
                    part.rows, self.rows
                )))
            }
            _ => {}
        }
        // Per gene here: the part's mean, sum of squared deviations and non-zero values.
        let mut moments = vec![None; self.n_vars];
        let kept = genes
            .iter()
            .enumerate()
            .filter_map(|(k, j)| Some((k, (*j)?)));
        for (k, j) in kept {
            match moments.get_mut(j) {
                Some(m @ None) => *m = Some((part.mean[k], part.m2[k], part.n_cells[k])),
                Some(Some(_)) => {
                    return Err(Error::invalid(format!(
                        "two genes of the part go to gene {j}"
                    )))
                }
                None => {
                    return Err(Error::shape(format!(
                        "gene position {j} is outside the {} genes",
                        self.n_vars
                    )))
                }
            }
        }
        self.n_genes.extend_from_slice(&part.n_genes);
        self.total_counts.extend_from_slice(&part.total_counts);
        if part.rows == 0 {
            return Ok(());
        }
        let (n_a, n_b) = (self.rows as f64, part.rows as f64);
        for (j, m) in moments.into_iter().enumerate() {
            let (mean_b, m2_b, nonzero) = m.unwrap_or((0.0, 0.0, 0));
            (self.mean[j], self.m2[j]) =
                merged_moments((self.mean[j], self.m2[j], n_a), (mean_b, m2_b, n_b));
            self.n_cells[j] += nonzero;
        }
        self.rows += part.rows;
        Ok(())
    }

    /// Number of rows added so far.
    pub fn rows(&self) -> u64 {
        self.rows as u64
    }

    /// The statistics of all rows added.
    pub fn finish(self) -> QcStats {
        let n = self.rows as f64;
        let var = self
            .m2
            .iter()
            .map(|m2| {
                if self.rows > 1 {
                    m2 / (n - 1.0)
                } else {
                    f64::NAN
                }
            })
            .collect();
        let mean = if self.rows == 0 {
            vec![f64::NAN; self.n_vars]
        } else {
            self.mean
        };
        QcStats {
            n_genes: self.n_genes,
            total_counts: self.total_counts,
            n_cells: self.n_cells,
            mean,
            var,
        }
    }

    /// One pass over `chunk` into `self.scratch[0]` and the chunk's per-cell results, split
    /// by rows between threads when the chunk is large.
    fn reduce<T: Value>(&mut self, chunk: &Typed<'_, T>) {
        let rows = chunk.rows();
        let values = chunk.values_in(0..rows);
        let parts = if chunk.splits_by_rows() {
            (values / self.split_above.max(1)).clamp(1, self.threads)
        } else {
            1
        };
        let ranges = kernel::balanced_split(rows, parts, |r| chunk.values_in(0..r));
        if self.scratch.len() < ranges.len() {
            self.scratch.resize_with(ranges.len(), GenePart::default);
        }
        for part in &mut self.scratch[..ranges.len()] {
            part.reset(self.n_vars);
        }
        let start = self.rows;
        let mut n_genes = &mut self.n_genes[start..start + rows];
        let mut totals = &mut self.total_counts[start..start + rows];
        let mut work: Vec<(Range<usize>, &mut GenePart, CellOut<'_>)> = Vec::new();
        for (range, genes) in ranges.iter().zip(&mut self.scratch) {
            let (n_here, n_rest) = std::mem::take(&mut n_genes).split_at_mut(range.len());
            let (t_here, t_rest) = std::mem::take(&mut totals).split_at_mut(range.len());
            (n_genes, totals) = (n_rest, t_rest);
            let cells = CellOut {
                n_genes: n_here,
                totals: t_here,
            };
            work.push((range.clone(), genes, cells));
        }
        let counted = self.counted.as_deref();
        if work.len() == 1 {
            let (range, genes, cells) = work.pop().expect("one share");
            chunk.reduce(range, genes, cells, counted);
        } else {
            std::thread::scope(|s| {
                for (range, genes, cells) in work {
                    s.spawn(move || chunk.reduce(range, genes, cells, counted));
                }
            });
            let (first, rest) = self.scratch.split_at_mut(1);
            for other in &rest[..ranges.len() - 1] {
                first[0].merge(other);
            }
        }
    }

    /// Merges the sums of `chunk` in `self.scratch[0]` into the running moments (Chan et
    /// al.), summing the values of ill-conditioned genes again around their mean.
    fn merge_chunk<T: Value>(&mut self, chunk: &Typed<'_, T>) {
        let rows = chunk.rows();
        let n_b = rows as f64;
        let part = &self.scratch[0];
        // Per gene: the sum of squared deviations from the chunk's mean, or `None` where
        // the plain sums cannot give it to full precision.
        let plain: Vec<Option<f64>> = part
            .sums
            .iter()
            .map(|g| {
                let m2 = g.sum2 - g.sum * g.sum / n_b;
                // NaN and infinities take the plain path: they stay NaN.
                let lost = g.sum2 > 0.0 && g.sum2.is_finite() && g.sum2 > ILL_CONDITIONED * m2;
                (!lost).then_some(m2)
            })
            .collect();
        let shifts: Vec<Option<f64>> = plain
            .iter()
            .zip(&part.sums)
            .map(|(m2, g)| m2.is_none().then_some(g.sum / n_b))
            .collect();
        let mut shifted = Vec::new();
        if shifts.iter().any(Option::is_some) {
            shifted = vec![GeneSums::default(); self.n_vars];
            chunk.shifted(&shifts, &mut shifted);
        }
        let n_a = self.rows as f64;
        for (j, g) in part.sums.iter().enumerate() {
            let nonzero = g.nonzero;
            let m2_b = match (plain[j], shifts[j]) {
                (Some(m2), _) => m2,
                (None, k) => {
                    let k = k.unwrap_or(0.0);
                    let implicit = (rows as u64).saturating_sub(nonzero) as f64;
                    let dev = shifted[j].sum - implicit * k;
                    let dev2 = shifted[j].sum2 + implicit * k * k;
                    dev2 - dev * dev / n_b
                }
            };
            // Rounding can leave a tiny negative sum of squares; NaN stays NaN.
            let m2_b = if m2_b < 0.0 { 0.0 } else { m2_b };
            let chunk_mean = g.sum / n_b;
            (self.mean[j], self.m2[j]) =
                merged_moments((self.mean[j], self.m2[j], n_a), (chunk_mean, m2_b, n_b));
            self.n_cells[j] += nonzero;
        }
        self.rows += rows;
    }
}

impl Visit for QcAccumulator {
    fn visit<T: Value>(&mut self, chunk: Typed<'_, T>) -> Result<()> {
        self.reduce(&chunk);
        self.merge_chunk(&chunk);
        Ok(())
    }
}

/// The mean and sum of squared deviations of two groups of values together, from each one's
/// `(mean, sum of squared deviations, count)` (Chan et al.). An infinite or NaN mean on
/// either side makes the mean that of the sums and the spread NaN, as numpy's `mean` and
/// `var` of values holding `inf` are (the update would give NaN for `inf − inf`).
fn merged_moments(a: (f64, f64, f64), b: (f64, f64, f64)) -> (f64, f64) {
    let ((mean_a, m2_a, n_a), (mean_b, m2_b, n_b)) = (a, b);
    let n = n_a + n_b;
    let delta = mean_b - mean_a;
    if !delta.is_finite() {
        let sum = |mean: f64, count: f64| if count == 0.0 { 0.0 } else { mean * count };
        return ((sum(mean_a, n_a) + sum(mean_b, n_b)) / n, f64::NAN);
    }
    (
        mean_a + delta * n_b / n,
        m2_a + m2_b + delta * delta * n_a * n_b / n,
    )
}

#[cfg(test)]
mod tests;
