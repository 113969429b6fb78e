//! One-pass per-cell and per-gene statistics over row chunks of a matrix.
//!
//! [`QcAccumulator`] takes the row blocks of a matrix in order (for example from
//! `BackedAnnData::chunk_x`) and keeps only per-gene running moments and per-cell results,
//! so a file of any size is reduced in memory proportional to its number of cells and genes.
//!
//! Variances are merged chunk by chunk with Chan et al.'s parallel formula over chunk-centred
//! sums of squares, so they agree with numpy's two-pass `var(ddof=1)` to rounding error even
//! when the mean is large next to the spread.

use annpage_engine::data::{ArrayData, Matrix, SparseFormat, SparseMatrix};
use annpage_engine::{Error, Result};

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
    rows: u64,
    n_genes: Vec<u64>,
    total_counts: Vec<f64>,
    n_cells: Vec<u64>,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl QcAccumulator {
    /// An accumulator for a matrix with `n_vars` columns.
    pub fn new(n_vars: usize) -> Self {
        QcAccumulator {
            n_vars,
            rows: 0,
            n_genes: Vec::new(),
            total_counts: Vec::new(),
            n_cells: vec![0; n_vars],
            mean: vec![0.0; n_vars],
            m2: vec![0.0; n_vars],
        }
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
        let mut chunk_sum = vec![0.0f64; cols];
        let mut chunk_nnz = vec![0u64; cols];
        let mut cell_n = vec![0u64; rows];
        let mut cell_sum = vec![0.0f64; rows];
        // Pass 1: sums (per gene and per cell) and non-zero counts.
        for_each_value(chunk, |r, c, v| {
            chunk_sum[c] += v;
            cell_sum[r] += v;
            if v != 0.0 {
                chunk_nnz[c] += 1;
                cell_n[r] += 1;
            }
        })?;
        let n_b = rows as f64;
        let chunk_mean: Vec<f64> = chunk_sum.iter().map(|s| s / n_b.max(1.0)).collect();
        // Pass 2: squared deviations from the chunk mean over the stored values; each cell
        // that stores nothing in a column contributes m^2 as an implicit zero.
        let mut stored = vec![0u64; cols];
        let mut m2_b = vec![0.0f64; cols];
        for_each_value(chunk, |_, c, v| {
            let d = v - chunk_mean[c];
            m2_b[c] += d * d;
            stored[c] += 1;
        })?;
        for c in 0..cols {
            let implicit = rows as u64 - stored[c].min(rows as u64);
            m2_b[c] += implicit as f64 * chunk_mean[c] * chunk_mean[c];
        }
        // Merge (Chan et al.).
        let n_a = self.rows as f64;
        let n = n_a + n_b;
        if rows > 0 {
            for c in 0..cols {
                let delta = chunk_mean[c] - self.mean[c];
                self.mean[c] += delta * n_b / n;
                self.m2[c] += m2_b[c] + delta * delta * n_a * n_b / n;
                self.n_cells[c] += chunk_nnz[c];
            }
        }
        self.rows += rows as u64;
        self.n_genes.extend(cell_n);
        self.total_counts.extend(cell_sum);
        Ok(())
    }

    /// Number of rows added so far.
    pub fn rows(&self) -> u64 {
        self.rows
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
}

/// Calls `f(row, col, value)` for every stored value of a chunk (every value of a dense one).
fn for_each_value(chunk: &Matrix, mut f: impl FnMut(usize, usize, f64)) -> Result<()> {
    match chunk {
        Matrix::Dense(a) => {
            let v = values_f64(a)?;
            let cols = chunk.shape().1;
            for (i, x) in v.iter().enumerate() {
                f(i / cols.max(1), i % cols.max(1), *x);
            }
        }
        Matrix::Sparse(s) => sparse_for_each(s, f)?,
    }
    Ok(())
}

fn sparse_for_each(s: &SparseMatrix, mut f: impl FnMut(usize, usize, f64)) -> Result<()> {
    let data = values_f64(s.data())?;
    let indptr = s.indptr();
    let indices = s.indices();
    for major in 0..indptr.len().saturating_sub(1) {
        for k in indptr[major] as usize..indptr[major + 1] as usize {
            let minor = indices[k] as usize;
            match s.format() {
                SparseFormat::Csr => f(major, minor, data[k]),
                SparseFormat::Csc => f(minor, major, data[k]),
            }
        }
    }
    Ok(())
}

fn values_f64(a: &ArrayData) -> Result<Vec<f64>> {
    let v = a
        .to_f64()
        .ok_or_else(|| Error::invalid("statistics need a numeric matrix, found strings"))?;
    Ok(v.iter().copied().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use annpage_engine::data::SparseMatrix;
    use ndarray::array;

    /// numpy's two-pass `var(ddof=1)`.
    fn two_pass_var(col: &[f64]) -> f64 {
        let n = col.len() as f64;
        let m = col.iter().sum::<f64>() / n;
        col.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)
    }

    #[test]
    fn chunked_equals_whole_and_two_pass() {
        // Large mean, small spread: the naive sum-of-squares formula loses digits here.
        let rows: Vec<[f64; 3]> = (0..101)
            .map(|i| {
                [
                    1e8 + (i % 7) as f64,
                    if i % 3 == 0 { 0.0 } else { i as f64 },
                    0.0,
                ]
            })
            .collect();
        let dense = |r: &[[f64; 3]]| {
            let flat: Vec<f64> = r.iter().flatten().copied().collect();
            Matrix::Dense(ArrayData::F64(
                ndarray::ArrayD::from_shape_vec(vec![r.len(), 3], flat).unwrap(),
            ))
        };
        let mut acc = QcAccumulator::new(3);
        for chunk in rows.chunks(17) {
            acc.add_chunk(&dense(chunk)).unwrap();
        }
        let s = acc.finish();
        for c in 0..3 {
            let col: Vec<f64> = rows.iter().map(|r| r[c]).collect();
            let want = two_pass_var(&col);
            let got = s.var[c];
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1e-12),
                "gene {c}: {got} vs {want}"
            );
        }
        assert_eq!(s.n_cells, vec![101, 67, 0]);
        assert_eq!(s.n_genes.len(), 101);
        assert_eq!(s.var[2], 0.0);
    }

    #[test]
    fn csr_and_csc_chunks_agree_with_dense() {
        // [[1, 0, 2], [0, 0, 3]]
        let csr = SparseMatrix::new(
            SparseFormat::Csr,
            (2, 3),
            vec![0, 2, 3],
            vec![0, 2, 2],
            ArrayData::from(vec![1i32, 2, 3]),
        )
        .unwrap();
        let csc = SparseMatrix::new(
            SparseFormat::Csc,
            (2, 3),
            vec![0, 1, 1, 3],
            vec![0, 0, 1],
            ArrayData::from(vec![1i32, 2, 3]),
        )
        .unwrap();
        let dense = Matrix::Dense(ArrayData::from(array![[1i32, 0, 2], [0, 0, 3]]));
        let run = |m: Matrix| {
            let mut a = QcAccumulator::new(3);
            a.add_chunk(&m).unwrap();
            a.finish()
        };
        let d = run(dense);
        assert_eq!(run(Matrix::Sparse(csr)), d);
        assert_eq!(run(Matrix::Sparse(csc)), d);
        assert_eq!(d.n_genes, vec![2, 1]);
        assert_eq!(d.total_counts, vec![3.0, 3.0]);
        assert_eq!(d.mean, vec![0.5, 0.0, 2.5]);
        assert_eq!(d.var, vec![0.5, 0.0, 0.5]);
    }

    #[test]
    fn wrong_width_is_an_error() {
        let mut a = QcAccumulator::new(4);
        let err = a
            .add_chunk(&Matrix::Dense(ArrayData::from(array![[1.0f64, 2.0]])))
            .unwrap_err();
        assert!(err.to_string().contains("2 columns"), "{err}");
    }
}
