//! A backed object seen transposed, as anndata's `adata.T`: obs and var, obsm and varm, obsp
//! and varp change places and X and the layers are read by columns. Nothing is read until a
//! value is asked for.

use std::ops::Range;
use std::path::Path;

use annpage_engine::data::{CompactString, DataFrame, Element, Mapping, Matrix};
use annpage_engine::format::WriteOptions;
use annpage_engine::storage::StoreKind;
use annpage_engine::{Error, Result};

use super::write::{in_store, Orient, StoredAs};
use super::{BackedAnnData, BackedMatrixView};
use crate::transform::transpose_matrix;
use crate::{AnnData, Selection};

/// A lazy transposed view of a [`BackedAnnData`] (from [`BackedAnnData::transpose`]): its
/// observations are the file's variables. Selections compose with the file's plan, and
/// [`TransposedBacked::to_memory`] equals `to_memory()` of the untransposed view, transposed
/// ([`AnnData::transpose`]).
///
/// ```
/// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
/// use annpage::Selection;
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
/// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
/// let t = adata.transpose();
/// assert_eq!(t.shape(), (adata.n_vars(), adata.n_obs()));
/// let genes = t.slice(&Selection::positions([3, 1]), &Selection::slice(None, Some(100), 1))?;
/// let m = genes.x().unwrap().to_memory()?; // 2 genes × 100 cells
/// assert_eq!(m.shape(), (2, 100));
/// # Ok::<(), annpage::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TransposedBacked {
    inner: BackedAnnData,
}

impl BackedAnnData {
    /// This selection seen transposed (anndata's `adata.T`), lazily.
    pub fn transpose(&self) -> TransposedBacked {
        TransposedBacked {
            inner: self.clone(),
        }
    }
}

impl TransposedBacked {
    /// Observations: the file's selected variables.
    pub fn n_obs(&self) -> usize {
        self.inner.n_vars()
    }

    /// Variables: the file's selected observations.
    pub fn n_vars(&self) -> usize {
        self.inner.n_obs()
    }

    /// `(n_obs, n_vars)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.n_obs(), self.n_vars())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        self.inner.path()
    }

    /// The untransposed view.
    pub fn transpose(&self) -> BackedAnnData {
        self.inner.clone()
    }

    /// Observation names (the file's variable names).
    pub fn obs_names(&self) -> Result<Vec<CompactString>> {
        self.inner.var_names()
    }

    /// Variable names (the file's observation names).
    pub fn var_names(&self) -> Result<Vec<CompactString>> {
        self.inner.obs_names()
    }

    /// The observation annotations (the file's `var`).
    pub fn obs(&self) -> Result<DataFrame> {
        self.inner.var()
    }

    /// The variable annotations (the file's `obs`).
    pub fn var(&self) -> Result<DataFrame> {
        self.inner.obs()
    }

    /// A selection of this transposed view, itself transposed and lazy.
    pub fn slice(&self, obs: &Selection, var: &Selection) -> Result<TransposedBacked> {
        Ok(TransposedBacked {
            inner: self.inner.slice(var, obs)?,
        })
    }

    /// X, read by the file's columns; `None` without X.
    pub fn x(&self) -> Option<TransposedMatrix> {
        self.inner.x().map(|inner| TransposedMatrix { inner })
    }

    /// A layer, transposed.
    pub fn layer(&self, name: &str) -> Result<TransposedMatrix> {
        self.inner
            .layer(name)
            .map(|inner| TransposedMatrix { inner })
    }

    /// `obsm[key]`: the file's `varm[key]`.
    pub fn obsm(&self, key: &str) -> Result<Element> {
        self.inner.varm(key)
    }

    /// `varm[key]`: the file's `obsm[key]`.
    pub fn varm(&self, key: &str) -> Result<Element> {
        self.inner.obsm(key)
    }

    /// `obsp[key]`: the file's `varp[key]`.
    pub fn obsp(&self, key: &str) -> Result<BackedMatrixView> {
        self.inner.varp(key)
    }

    /// `varp[key]`: the file's `obsp[key]`.
    pub fn varp(&self, key: &str) -> Result<BackedMatrixView> {
        self.inner.obsp(key)
    }

    /// Unstructured annotations.
    pub fn uns(&self) -> Result<Mapping> {
        self.inner.uns()
    }

    /// Every element in memory, transposed as [`AnnData::transpose`] does (raw is dropped).
    pub fn to_memory(&self) -> Result<AnnData> {
        Ok(self.inner.to_memory()?.transpose())
    }

    /// Writes the transposed selection to `path` as an `.h5ad` file, the file
    /// [`TransposedBacked::to_memory`]'s result would give: matrices streamed (a CSR
    /// matrix's row pieces are its transpose's CSC column pieces; a dense one is read in
    /// pieces of its columns, the transpose's rows), the rest as [`BackedAnnData::write_h5ad`]
    /// writes it.
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let out = dir.path().join("t.h5ad");
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// adata.transpose().write_h5ad(&out, &annpage::WriteOptions::default())?;
    /// assert_eq!(annpage::read_h5ad(&out)?, adata.to_memory()?.transpose());
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn write_h5ad(&self, path: impl AsRef<Path>, options: &WriteOptions) -> Result<()> {
        let options = in_store(options, StoreKind::H5ad);
        self.write_stored_as(path, &options, StoredAs::default())
    }

    /// Like [`TransposedBacked::write_h5ad`], a Zarr store (see
    /// [`BackedAnnData::write_zarr`]).
    pub fn write_zarr(&self, path: impl AsRef<Path>, options: &WriteOptions) -> Result<()> {
        let options = in_store(options, StoreKind::Zarr);
        self.write_stored_as(path, &options, StoredAs::default())
    }

    /// Writes the transposed selection as a loom file (as
    /// [`AnnData::write_loom`](crate::AnnData::write_loom) of the transposed object in
    /// memory), the matrices read a block at a time (see [`BackedAnnData::write_loom`]).
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/x_csr_f32.h5ad");
    /// # let dir = tempfile::tempdir()?;
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// adata.transpose().write_loom(dir.path().join("genes.loom"), false)?;
    /// let back = annpage::read_loom(dir.path().join("genes.loom"), &Default::default())?;
    /// assert_eq!(back.shape(), (adata.n_vars(), adata.n_obs()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_loom(&self, path: impl AsRef<Path>, write_obsm_varm: bool) -> Result<()> {
        self.inner
            .write_loom_as(path.as_ref(), write_obsm_varm, Orient::Transposed)
    }

    /// Writes the transposed selection as CSV files into `dir` (as
    /// [`AnnData::write_csvs`](crate::AnnData::write_csvs) of the transposed object in memory;
    /// see [`BackedAnnData::write_csvs`]).
    pub fn write_csvs(&self, dir: impl AsRef<Path>, skip_data: bool, sep: char) -> Result<()> {
        self.inner
            .write_csvs_as(dir.as_ref(), skip_data, sep, Orient::Transposed)
    }

    /// Like [`TransposedBacked::write_h5ad`] (or `write_zarr`, as `options.store` says), with
    /// the transposed X, layers and `raw.X` stored as `stored` gives (see [`StoredAs`]).
    pub fn write_stored_as(
        &self,
        path: impl AsRef<Path>,
        options: &WriteOptions,
        stored: StoredAs,
    ) -> Result<()> {
        super::write::write_store(
            &self.inner,
            path.as_ref(),
            options,
            Orient::Transposed,
            stored,
        )
    }

    /// X in chunks of `chunk_rows` rows, each read as a block of the file's columns (see
    /// [`TransposedMatrix::chunks`]).
    pub fn chunk_x(&self, chunk_rows: usize) -> Result<TransposedChunks> {
        self.x()
            .ok_or_else(|| Error::invalid("the file has no X").in_file(self.path()))?
            .chunks(chunk_rows)
    }
}

/// A matrix of a [`TransposedBacked`]: the file's matrix read transposed (sparse matrices
/// change format over the same arrays: the file's CSR reads as CSC).
#[derive(Clone, Debug)]
pub struct TransposedMatrix {
    inner: BackedMatrixView,
}

impl TransposedMatrix {
    /// `(rows, columns)` of the transposed selection.
    pub fn shape(&self) -> (usize, usize) {
        let (r, c) = self.inner.shape();
        (c, r)
    }

    /// The selection in memory, transposed.
    pub fn to_memory(&self) -> Result<Matrix> {
        Ok(transpose_matrix(self.inner.to_memory()?))
    }

    /// The rows `rows` with every column (the file's columns, read by columns).
    pub fn rows(&self, rows: &Selection) -> Result<Matrix> {
        Ok(transpose_matrix(self.inner.columns(rows)?))
    }

    /// Every row of the columns `cols` (the file's rows).
    pub fn columns(&self, cols: &Selection) -> Result<Matrix> {
        Ok(transpose_matrix(self.inner.rows(cols)?))
    }

    /// The rows in chunks of `chunk_rows`: each chunk is a block of the file's columns, read
    /// as [`BackedMatrixView::columns`] reads them (for CSR files, a pass over the row blocks
    /// through the cache per chunk). Fails if `chunk_rows` is 0.
    pub fn chunks(&self, chunk_rows: usize) -> Result<TransposedChunks> {
        if chunk_rows == 0 {
            return Err(Error::invalid("chunks must hold at least one row"));
        }
        Ok(TransposedChunks {
            matrix: self.clone(),
            chunk_rows,
            next: 0,
            failed: false,
        })
    }
}

/// The chunks of [`TransposedMatrix::chunks`]: each item is the range of rows and their matrix.
#[derive(Debug)]
pub struct TransposedChunks {
    matrix: TransposedMatrix,
    chunk_rows: usize,
    next: usize,
    failed: bool,
}

impl Iterator for TransposedChunks {
    type Item = Result<(Range<usize>, Matrix)>;

    fn next(&mut self) -> Option<Self::Item> {
        let n = self.matrix.shape().0;
        if self.failed || self.next >= n {
            return None;
        }
        let rows = self.next..(self.next + self.chunk_rows).min(n);
        self.next = rows.end;
        let block = Selection::slice(Some(rows.start as isize), Some(rows.end as isize), 1);
        match self.matrix.rows(&block) {
            Ok(m) => Some(Ok((rows, m))),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
