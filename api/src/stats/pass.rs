//! Whole statistics passes over a collection of files.

use annpage_engine::paged::ScanBuffers;
use annpage_engine::Result;

use super::{QcAccumulator, QcStats};
use crate::backed::BackedMatrixView;
use crate::BackedCollection;

/// The statistics of X (`layer: None`) or a layer over every cell of `c`, read in chunks of
/// `chunk_rows` rows and reduced on `threads` threads (default: one per core); `progress` is
/// told the rows of each chunk done.
///
/// Where the collection's matrix is each file's with its genes renumbered (see
/// `BackedCollection::renumbered_files`: an outer join filled with zeros, or files with the
/// same genes), each file is reduced in its own genes and the per-gene results are mapped
/// onto the collection's at the end ([`QcAccumulator::append`]): no chunk is renumbered.
/// Otherwise the collection's chunks are reduced as they come.
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
    let chunk_rows = chunk_rows.max(1);
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
