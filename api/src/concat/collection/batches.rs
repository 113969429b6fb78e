//! Batches of a collection's rows: [`BackedCollection::batches`] and
//! [`BackedCollection::batches_of`], the latter read as windows where a file's chunks are
//! compressed.

use std::sync::Arc;

use annpage_engine::error::ResultExt;
use annpage_engine::paged::BackedMatrix;
use annpage_engine::Result;

use super::{file_of, BackedCollection, Which};
use crate::backed::batches::{RowReader, Windows};
use crate::backed::{BatchOptions, Batches, MatrixKind};
use crate::Selection;

impl BackedCollection {
    /// Shuffled batches of X (`layer: None`) or a layer at the selection, as
    /// [`BackedMatrixView::batches`](crate::BackedMatrixView::batches) draws them: random runs
    /// of consecutive cells (of one file, but where a run crosses into the next), a group of
    /// runs mixed at a time; each batch read as [`BackedCollection::slice`] of its cells.
    ///
    /// ```
    /// use annpage::{read_collection, BackedOptions, ConcatOptions};
    /// use annpage::BatchOptions;
    /// # let a = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// let both = read_collection(&[a, a], &ConcatOptions::default(), &BackedOptions::default())?;
    /// let opts = BatchOptions { batch_size: 100, run_rows: 64, preload_runs: 4, ..Default::default() };
    /// let rows: usize = both.batches(None, &opts)?.map(|b| b.map(|b| b.rows.len())).sum::<annpage::Result<usize>>()?;
    /// assert_eq!(rows, both.n_obs());
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn batches(&self, layer: Option<&str>, opts: &BatchOptions) -> Result<Batches> {
        let which = self.which(layer)?;
        Batches::new(self.n_obs(), self.row_reader(which), opts).in_element(layer.unwrap_or("X"))
    }

    /// The batches `batches` (positions among the selection's cells) of X (`layer: None`) or
    /// a layer, in the order given, as
    /// [`BackedMatrixView::batches_of`](crate::BackedMatrixView::batches_of) reads them: each
    /// batch equal to [`BackedCollection::slice`] of its cells; windows of batches read
    /// together where a file's chunks are compressed.
    ///
    /// ```
    /// use annpage::{read_collection, BackedOptions, ConcatOptions, Selection};
    /// # let a = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// let both = read_collection(&[a, a], &ConcatOptions::default(), &BackedOptions::default())?;
    /// let last = both.n_obs() - 1;
    /// let batch = both.batches_of(None, vec![vec![last, 0, 3]])?.next().unwrap()?;
    /// let cells = both.slice(&Selection::positions([last, 0, 3]), &Selection::All)?;
    /// assert_eq!(batch.x, cells.x_to_memory()?);
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn batches_of(&self, layer: Option<&str>, batches: Vec<Vec<usize>>) -> Result<Batches> {
        let which = self.which(layer)?;
        let windows = self.windows(&which, &batches)?;
        Batches::given(self.n_obs(), self.row_reader(which), batches, windows)
            .in_element(layer.unwrap_or("X"))
    }

    /// Reads positions among the selection's cells of matrix `which`.
    fn row_reader(&self, which: Which) -> RowReader {
        let c = self.clone();
        Arc::new(move |rows: &[usize]| {
            c.slice(&Selection::positions(rows.iter().copied()), &Selection::All)?
                .read(&which)
        })
    }

    /// Windows of `batches` where any file's chunks of `which` are decoded whole, each batch
    /// on its own otherwise. A window's bytes are each file's stored values in the batch's
    /// cells (as [`BackedMatrix::rows_bytes`] counts them; every column of the collection, as
    /// 8-byte values, for a dense file or an outer join filling with a value other than 0),
    /// twice over: the read holds its parts and their stacked result at once.
    fn windows(&self, which: &Which, batches: &[Vec<usize>]) -> Result<Option<Windows>> {
        let mut matrices: Vec<Option<BackedMatrix>> = Vec::with_capacity(self.inner.files.len());
        for f in 0..self.inner.files.len() {
            matrices.push(match self.file_matrix(f, which) {
                Some(v) => v.backed_matrix()?,
                None => None,
            });
        }
        if !matrices.iter().flatten().any(|m| m.decodes_whole_chunks()) {
            return Ok(None);
        }
        let dense_row = 8 * self.n_vars() as u64;
        let filled = self.inner.options.fill_value.is_some_and(|v| !v.is_zero());
        let (obs, starts) = (self.obs.clone(), self.inner.starts.clone());
        let bytes_of = move |batch: &[usize]| {
            let mut per_file: Vec<Vec<usize>> = vec![Vec::new(); matrices.len()];
            for p in batch.iter().filter_map(|&i| obs.get(i)) {
                let f = file_of(&starts, p);
                per_file[f].push(p - starts[f]);
            }
            let bytes = |(m, rows): (&Option<BackedMatrix>, &Vec<usize>)| match m {
                Some(m) if !filled && m.kind() != MatrixKind::Dense => {
                    m.rows_bytes(rows, m.shape().1)
                }
                _ => dense_row.saturating_mul(rows.len() as u64),
            };
            let read: u64 = matrices.iter().zip(&per_file).map(bytes).sum();
            read.saturating_mul(2)
        };
        Ok(Some(Windows::new(batches, &self.inner.cache, bytes_of)))
    }
}
