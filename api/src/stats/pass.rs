//! Whole statistics passes over a collection of files.

use annpage_engine::data::DType;
use annpage_engine::paged::{MatrixKind, ScanBuffers};
use annpage_engine::Result;

use super::{QcAccumulator, QcStats};
use crate::backed::BackedMatrixView;
use crate::BackedCollection;

/// The statistics of X (`layer: None`) or a layer over every cell of `c`, read in chunks of
/// `chunk_rows` rows (fewer where so many would not fit beside the cache: see
/// [`reduction_rows`]) and reduced on `threads` threads (default: one per core); `progress`
/// is told the rows of each chunk done.
///
/// Where the collection's matrix is each file's with its genes renumbered (see
/// `BackedCollection::renumbered_files`: an outer join filled with zeros, an inner join, or
/// files with the same genes), each file is reduced in its own genes (the per-cell results
/// counting the genes the join keeps: [`QcAccumulator::with_counted_genes`]) and the
/// per-gene results are mapped onto the collection's at the end
/// ([`QcAccumulator::append`]): no chunk is renumbered. Otherwise the collection's chunks
/// are reduced as they come.
///
/// ```
/// use annpage::{read_collection, BackedOptions, ConcatOptions, Join};
/// use annpage::stats::{collection_qc, QcAccumulator};
/// # let a = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
/// let options = ConcatOptions { join: Join::Outer, ..Default::default() };
/// let both = read_collection(&[a, a], &options, &BackedOptions::default())?;
/// let stats = collection_qc(&both, None, 500, None, &mut |_| {})?;
/// // The same as the concatenation's chunks reduced one after the other.
/// let mut acc = QcAccumulator::new(both.n_vars());
/// for chunk in both.chunk_x(700)? {
///     acc.add_chunk(&chunk?.1)?;
/// }
/// let whole = acc.finish();
/// assert_eq!(stats.n_genes, whole.n_genes);
/// assert_eq!(stats.n_cells, whole.n_cells);
/// assert!(stats.var.iter().zip(&whole.var).all(|(a, b)| (a - b).abs() <= 1e-9 * b.abs()));
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn collection_qc(
    c: &BackedCollection,
    layer: Option<&str>,
    chunk_rows: usize,
    threads: Option<usize>,
    progress: &mut (dyn FnMut(usize) + Send),
) -> Result<QcStats> {
    let threaded = |acc: QcAccumulator| match threads {
        Some(n) => acc.with_threads(n),
        None => acc,
    };
    let (n_obs, n_vars) = c.shape();
    let budget = c.files().first().map_or(0, |f| f.cache_budget());
    let (kind, dtype) = c.matrix_kind(layer)?;
    let values = c.stored_values(layer)?;
    let chunk_rows = rows_within(chunk_rows, n_obs, values, kind, dtype, budget);
    let mut acc = threaded(QcAccumulator::with_n_obs(n_obs, n_vars));
    match c.renumbered_files(layer)? {
        Some(files) => {
            // Each file is read once, into the buffers of the chunks before (of any file).
            // (Files reduced on two threads at once measured slower: each file's first
            // chunks are then read into fresh memory the kernel must zero.) The next file's
            // scan starts when this one's last chunk is in hand, so that its first chunk is
            // read while that one is reduced: a file of one or two chunks is otherwise read
            // and reduced in turn, without overlap.
            let buffers = ScanBuffers::default();
            let scan = |m: &BackedMatrixView| m.scan_reusing(chunk_rows, &buffers);
            let mut files = files.into_iter();
            let mut current = match files.next() {
                Some((m, genes)) => Some((scan(&m)?, m, genes)),
                None => None,
            };
            while let Some((mut chunks, m, genes)) = current.take() {
                let (rows, cols) = m.shape();
                let mut part = threaded(QcAccumulator::with_n_obs(rows, cols));
                if genes.contains(&None) {
                    part = part.with_counted_genes(genes.iter().map(Option::is_some).collect());
                }
                let mut done = 0;
                while let Some(chunk) = chunks.next() {
                    let (range, values) = chunk?;
                    done += range.len();
                    if done == rows && current.is_none() {
                        if let Some((next, genes)) = files.next() {
                            current = Some((scan(&next)?, next, genes));
                        }
                    }
                    part.add_chunk(&values)?;
                    progress(range.len());
                    chunks.recycle(values);
                }
                acc.append(part, &genes)?;
                // A file without rows starts the next scan here.
                if current.is_none() {
                    if let Some((next, genes)) = files.next() {
                        current = Some((scan(&next)?, next, genes));
                    }
                }
            }
        }
        None => {
            let mut chunks = match layer {
                Some(name) => c.chunk_layer(name, chunk_rows)?,
                None => c.chunk_x(chunk_rows)?,
            };
            while let Some(chunk) = chunks.next() {
                let (range, values) = chunk?;
                acc.add_chunk(&values)?;
                progress(range.len());
                chunks.recycle(values);
            }
        }
    }
    Ok(acc.finish())
}

/// The rows a reduction over `m` reads at a time: `chunk_rows`, or fewer where that many of
/// its rows (at their average size) would take more than a quarter of `budget` bytes, or
/// 32 MiB if more. About two chunks are in flight during a pass (one reduced, one read), and
/// they are outside the cache: this keeps a pass within the budget plus 64 MiB whatever the
/// width of the rows (a reduction's chunk size changes nothing of its result).
///
/// ```
/// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
/// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
/// let x = adata.x().unwrap();
/// assert_eq!(annpage::stats::reduction_rows(&x, 10_000, 1 << 30)?, 10_000);
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn reduction_rows(m: &BackedMatrixView, chunk_rows: usize, budget: usize) -> Result<usize> {
    let values = m.stored_values()?;
    Ok(rows_within(
        chunk_rows,
        m.shape().0,
        values,
        m.kind(),
        m.dtype(),
        budget,
    ))
}

/// [`reduction_rows`] of a matrix of `rows` rows holding `values` values.
fn rows_within(
    chunk_rows: usize,
    rows: usize,
    values: u64,
    kind: MatrixKind,
    dtype: DType,
    budget: usize,
) -> usize {
    // A sparse value comes with its u32 index.
    let per_value = dtype.size() as u64 + if kind == MatrixKind::Dense { 0 } else { 4 };
    let row_bytes = (values.saturating_mul(per_value) / rows.max(1) as u64).max(1);
    let allowed = (budget / 4).max(32 << 20) as u64;
    let cap = usize::try_from(allowed / row_bytes).unwrap_or(usize::MAX);
    chunk_rows.min(cap).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use annpage_engine::data::SparseFormat;

    #[test]
    fn reductions_of_wide_rows_read_fewer_rows_at_a_time() {
        let csr = MatrixKind::Sparse(SparseFormat::Csr);
        // 1,000 values of 8 bytes a row: 32 MiB hold 4,194 rows, whatever a smaller budget.
        assert_eq!(
            rows_within(10_000, 300_000, 300_000_000, csr, DType::F32, 16 << 20),
            4_194
        );
        // A quarter of a larger budget.
        assert_eq!(
            rows_within(10_000, 300_000, 300_000_000, csr, DType::F32, 256 << 20),
            8_388
        );
        assert_eq!(
            rows_within(10_000, 300_000, 300_000_000, csr, DType::F32, 1 << 30),
            10_000
        );
        // Dense rows of 5,000 f32: 1,677 rows.
        let dense = MatrixKind::Dense;
        assert_eq!(
            rows_within(10_000, 100, 500_000, dense, DType::F32, 0),
            1_677
        );
        // Empty matrices and rows wider than the allowance still read a row at a time.
        assert_eq!(rows_within(10_000, 0, 0, csr, DType::F64, 0), 10_000);
        assert_eq!(rows_within(10_000, 1, u64::MAX, dense, DType::F64, 0), 1);
    }
}
