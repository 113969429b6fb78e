//! Backed mode: [`BackedAnnData`], a lazy handle over an `.h5ad` file whose elements stay on
//! disk until asked for.
//!
//! [`read_h5ad_backed`] opens a file reading metadata only. Slicing ([`BackedAnnData::slice`])
//! composes selections without reading anything (but names, for [`Selection::Names`]); every
//! materialisation then reads only what the selection needs:
//!
//! - matrices (`X`, layers, `obsp`, `varp`, `raw.X`, and dense or sparse `obsm`/`varm`
//!   entries) are read block by block through the engine's [`BlockCache`]
//!   (see [`annpage_engine::paged`]): [`BackedMatrixView::to_memory`],
//!   [`BackedMatrixView::chunks`], [`BackedAnnData::chunk_x`];
//! - `obs`/`var` are read one column at a time, when first used;
//! - [`BackedAnnData::to_memory`] gives exactly what [`crate::AnnData::subset`] gives on the
//!   whole file read in memory; [`BackedAnnData::write_h5ad`] writes that subset streaming,
//!   matrices chunk by chunk.
//!
//! ```no_run
//! use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
//! use annpage::Selection;
//!
//! let adata = read_h5ad_backed("atlas.h5ad", Mode::Read, BackedOptions {
//!     cache_bytes: 512 << 20,
//!     ..BackedOptions::default()
//! })?;
//! let t_cells = adata.slice(&Selection::from(0..10_000), &Selection::All)?;
//! for chunk in t_cells.chunk_x(2_000)? {
//!     let (rows, matrix) = chunk?;
//!     println!("{rows:?}: {:?}", matrix.shape());
//! }
//! t_cells.write_h5ad("first_10k.h5ad", &annpage::WriteOptions::default())?;
//! # Ok::<(), annpage::Error>(())
//! ```
//!
//! # Memory budget
//!
//! One budget ([`BackedOptions::cache_bytes`], or the budget of a cache shared with
//! [`BackedOptions::cache`]) bounds what a handle keeps in memory between calls:
//!
//! - decoded blocks of matrices (evicted least-recently-used first);
//! - the `indptr` of every sparse matrix opened (reserved from the budget while it is open);
//! - the `obs`/`var`/`raw.var` columns and indexes the handle has read for a view, a single
//!   column or the names: they are kept in a per-handle cache (shared by its clones and
//!   slices) and their bytes are reserved from the budget, so reading annotations makes room
//!   by evicting matrix blocks. When the annotations alone exceed the budget, no blocks are
//!   kept at all (reads still work, block by block). A whole frame asked of the whole handle
//!   ([`BackedAnnData::obs`]) is read into the caller's hands instead, column by column that
//!   is not cached yet, and nothing of it is kept.
//!
//! Results handed to the caller (a chunk, a matrix, a frame) are the caller's and are not
//! counted.
//!
//! # Modifying a file
//!
//! A handle takes `obs`/`var` columns, `obsm`/`varm`/`uns` entries and layers
//! ([`BackedAnnData::insert_obs_column`], …). Changes are visible to every clone of the handle
//! at once (and to its views, `to_memory` and writes). A handle opened with [`Mode::ReadWrite`]
//! writes them to the file on [`BackedAnnData::flush`], or when the last clone is dropped
//! (errors on drop are printed to stderr); a [`Mode::Read`] handle keeps them in memory only,
//! as anndata's backed "r" mode.
//!
//! The file is never modified in place: a flush writes a new file beside it — the elements
//! that did not change are copied object by object with HDF5's `H5Ocopy` (raw chunks, no
//! decoding), the changed groups are written afresh — syncs it to disk and renames it over the
//! original. HDF5 gives no atomicity for in-place changes: a process that dies while the HDF5 library
//! writes metadata (even the link swaps of a write-under-a-temporary-name scheme) can leave a
//! file that no longer opens. With copy-and-rename, a crash at any moment leaves either the old
//! file or the new one, both complete (and at worst a stray hidden temporary file). The cost
//! is one copy of the file per flush, which is why changes are batched until then. Only files
//! in the current layout (anndata ≥ 0.8) can be opened for writing; convert older files first.

pub(crate) mod batches;
mod edit;
mod export;
mod gene_major;
mod matrix;
mod memory;
mod open;
mod shared;
pub(crate) mod slices;
#[cfg(test)]
mod tests;
mod transpose;
mod write;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use annpage_engine::cache::CacheStats;
use annpage_engine::data::{
    ArrayData, Column, CompactString, DType, DataFrame, Element, Mapping, StringNa,
};
use annpage_engine::error::ResultExt;
pub use annpage_engine::paged::{
    BlockCache, MatrixKind, ReadOptions, ReadPath, ScanBuffers, WeakScanBuffers, WorkerPool,
};
use annpage_engine::select::AxisIndex;
use annpage_engine::{Error, Result};
use indexmap::IndexMap;

pub use self::batches::{Batch, BatchOptions, Batches};
pub use self::matrix::{BackedMatrixView, MatrixChunks};
pub use self::open::{read_h5ad_backed, read_zarr_backed, BackedOptions, Mode};
pub use self::shared::Names;
use self::shared::{Shared, Snapshot};
pub use self::transpose::{TransposedBacked, TransposedChunks, TransposedMatrix};
pub use self::write::StoredAs;
use crate::subset::prune_categories;
use crate::{Axis, Selection};
use annpage_engine::file::probe::{ElemSlot, FrameId, FrameLayout, FrameSource, MatrixSlot};

/// A lazy handle over an `.h5ad` file: its elements, and the observations and variables it
/// selects (its *plan*).
///
/// A handle from [`read_h5ad_backed`] selects everything; [`BackedAnnData::slice`] gives a
/// view selecting a subset (a view of a view selects a subset of a subset, composed into one
/// index per axis). Every accessor returns the plan's part of an element, as anndata's
/// `adata[obs, var]` would show it.
///
/// Cloning is cheap (the file, caches and layout are shared); handles are `Send + Sync`, and
/// several threads may read through one handle at once.
///
/// ```
/// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
/// use annpage::Selection;
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/all_elements.h5ad");
/// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
/// assert_eq!(adata.shape(), (40, 12));
/// // Every other cell, backwards; two genes by name. Nothing is read but the gene names.
/// let view = adata.slice(&Selection::slice(None, None, -2), &Selection::names(["gene_3", "gene_0"]))?;
/// assert_eq!(view.obs_names()?[..2], ["cell_39", "cell_37"]);
/// let copy = view.to_memory()?;
/// assert_eq!(copy, annpage::read_h5ad(path)?.subset(&Selection::slice(None, None, -2), &Selection::names(["gene_3", "gene_0"]))?);
/// # Ok::<(), annpage::Error>(())
/// ```
#[derive(Clone)]
pub struct BackedAnnData {
    shared: Arc<Shared>,
    obs: AxisIndex,
    var: AxisIndex,
    view: bool,
}

impl fmt::Debug for BackedAnnData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackedAnnData")
            .field("path", &self.shared.path)
            .field("mode", &self.shared.mode)
            .field("shape", &self.shape())
            .field("is_view", &self.view)
            .finish()
    }
}

impl BackedAnnData {
    /// Number of observations selected.
    pub fn n_obs(&self) -> usize {
        self.obs.len()
    }

    /// Number of variables selected.
    pub fn n_vars(&self) -> usize {
        self.var.len()
    }

    /// `(n_obs, n_vars)` selected.
    pub fn shape(&self) -> (usize, usize) {
        (self.n_obs(), self.n_vars())
    }

    /// Whether this handle is a view made by [`BackedAnnData::slice`] (even of everything, as
    /// `adata[:, :]` is a view in anndata).
    pub fn is_view(&self) -> bool {
        self.view
    }

    /// The selected observations, as positions in the file.
    pub fn obs_index(&self) -> &AxisIndex {
        &self.obs
    }

    /// The selected variables, as positions in the file.
    pub fn var_index(&self) -> &AxisIndex {
        &self.var
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// How the file was opened.
    pub fn mode(&self) -> Mode {
        self.shared.mode
    }

    /// The counters of the block cache (shared with other handles if it was given in
    /// [`BackedOptions::cache`]). `bytes_read` counts matrix bytes read from the file.
    pub fn cache_stats(&self) -> CacheStats {
        self.shared.cache.stats()
    }

    /// The memory budget in bytes (see the [module docs](self#memory-budget)).
    pub fn cache_budget(&self) -> usize {
        self.shared.cache.budget()
    }

    fn in_file<T>(&self, r: Result<T>) -> Result<T> {
        r.in_file(&self.shared.path)
    }

    /// The names of the selected observations, in order (read when first needed, then
    /// cached).
    pub fn obs_names(&self) -> Result<Vec<CompactString>> {
        let snap = self.shared.snapshot();
        self.in_file(self.shared.frame_names(&snap, &snap.layout.obs, &self.obs))
    }

    /// The names of the selected variables, in order.
    pub fn var_names(&self) -> Result<Vec<CompactString>> {
        let snap = self.shared.snapshot();
        self.in_file(self.shared.frame_names(&snap, &snap.layout.var, &self.var))
    }

    /// The selected names along `axis` for a caller that keeps them and will not ask again
    /// (a collection's concatenation): read straight into its hands when the handle has not
    /// cached them, rather than cached and copied.
    pub(crate) fn taken_names(&self, axis: crate::Axis) -> Result<Vec<CompactString>> {
        let snap = self.shared.snapshot();
        let frame = match axis {
            crate::Axis::Obs => (&snap.layout.obs, &self.obs),
            crate::Axis::Var => (&snap.layout.var, &self.var),
        };
        self.in_file(self.shared.taken_names(&snap, frame.0, frame.1))
    }

    /// The selected names along `axis`, without a copy when the handle holds every name of the
    /// file's frame (its cached index); [`BackedAnnData::obs_names`] gives a vector of their
    /// own.
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/all_elements.h5ad");
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// let names = adata.names(annpage::Axis::Obs)?;
    /// assert_eq!(&names[..], &adata.obs_names()?[..]);
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn names(&self, axis: crate::Axis) -> Result<Names> {
        let snap = self.shared.snapshot();
        let names = match axis {
            crate::Axis::Obs => self.shared.held_names(&snap, &snap.layout.obs, &self.obs),
            crate::Axis::Var => self.shared.held_names(&snap, &snap.layout.var, &self.var),
        };
        self.in_file(names)
    }

    /// The name of the obs (`Axis::Obs`) or var index (pandas' `df.index.name`), from
    /// metadata only.
    pub fn index_name(&self, axis: crate::Axis) -> Option<String> {
        let snap = self.shared.snapshot();
        match axis {
            crate::Axis::Obs => snap.layout.obs.index_name(),
            crate::Axis::Var => snap.layout.var.index_name(),
        }
    }

    /// How the obs or var index is stored ([`DataFrame::index_string_na`]: pandas' `str` and
    /// `string` indexes written by anndata 0.13), from metadata only.
    pub fn index_string_na(&self, axis: crate::Axis) -> Option<StringNa> {
        let snap = self.shared.snapshot();
        match axis {
            crate::Axis::Obs => snap.layout.obs.index_string_na(),
            crate::Axis::Var => snap.layout.var.index_string_na(),
        }
    }

    /// The selected rows of `obs`. In a view, categorical columns lose the categories no
    /// selected row uses, as in anndata's views.
    pub fn obs(&self) -> Result<DataFrame> {
        let snap = self.shared.snapshot();
        let mut df = self.in_file(self.shared.frame_rows(&snap, &snap.layout.obs, &self.obs))?;
        if self.view {
            prune_categories(&mut df, &mut Mapping::new());
        }
        Ok(df)
    }

    /// The selected rows of `var` (see [`BackedAnnData::obs`]).
    pub fn var(&self) -> Result<DataFrame> {
        let snap = self.shared.snapshot();
        let mut df = self.in_file(self.shared.frame_rows(&snap, &snap.layout.var, &self.var))?;
        if self.view {
            prune_categories(&mut df, &mut Mapping::new());
        }
        Ok(df)
    }

    /// [`BackedAnnData::obs`] or [`BackedAnnData::var`], by axis.
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/all_elements.h5ad");
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// assert_eq!(adata.frame(annpage::Axis::Var)?, adata.var()?);
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn frame(&self, axis: Axis) -> Result<DataFrame> {
        match axis {
            Axis::Obs => self.obs(),
            Axis::Var => self.var(),
        }
    }

    /// The selected rows of one `obs` (`Axis::Obs`) or `var` column, read alone: what
    /// [`BackedAnnData::frame`] holds under `name` (categories pruned in a view alike), without
    /// the index and the other columns. `None` when there is no such column.
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// use annpage::{Axis, Selection};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/all_elements.h5ad");
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// let view = adata.slice(&Selection::from(0..5), &Selection::All)?;
    /// let name = view.obs()?.columns().keys().next().unwrap().clone();
    /// assert_eq!(view.frame_column(Axis::Obs, &name)?.as_ref(), view.obs()?.column(&name));
    /// assert!(view.frame_column(Axis::Obs, "no such column")?.is_none());
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn frame_column(&self, axis: Axis, name: &str) -> Result<Option<Column>> {
        let snap = self.shared.snapshot();
        let (frame, rows) = match axis {
            Axis::Obs => (&snap.layout.obs, &self.obs),
            Axis::Var => (&snap.layout.var, &self.var),
        };
        let column = self.in_file(self.shared.frame_column(&snap, frame, rows, name))?;
        Ok(column.map(|mut c| {
            if let (true, Column::Categorical(cat)) = (self.view, &mut c) {
                cat.remove_unused_categories();
            }
            c
        }))
    }

    /// A view of the observations `obs` and variables `var` of this handle's selection
    /// (names are this selection's names). Nothing is read, except the names when a
    /// selection is [`Selection::Names`].
    pub fn slice(&self, obs: &Selection, var: &Selection) -> Result<BackedAnnData> {
        let snap = self.shared.snapshot();
        let obs = self
            .refine(&snap, &snap.layout.obs, &self.obs, obs)
            .in_element("obs");
        let var = self
            .refine(&snap, &snap.layout.var, &self.var, var)
            .in_element("var");
        Ok(BackedAnnData {
            shared: Arc::clone(&self.shared),
            obs: self.in_file(obs)?,
            var: self.in_file(var)?,
            view: true,
        })
    }

    /// `selection` among the positions `current` selects, as positions of the file's axis.
    fn refine(
        &self,
        snap: &Snapshot,
        frame: &FrameLayout,
        current: &AxisIndex,
        selection: &Selection,
    ) -> Result<AxisIndex> {
        let inner = match selection {
            Selection::Names(wanted) => {
                // Among every name: the handle's index of them, built once.
                if current.is_full() {
                    if let Some(found) = self.shared.find_names(snap, frame, wanted)? {
                        return AxisIndex::from_positions(found, current.len());
                    }
                }
                let names = self.shared.frame_names(snap, frame, current)?;
                selection.resolve(current.len(), Some(&names))?
            }
            _ => selection.resolve(current.len(), None)?,
        };
        current.compose(&inner)
    }

    fn view_of(
        &self,
        slot: &MatrixSlot,
        element: String,
        rows: (&AxisIndex, FrameId),
        cols: (&AxisIndex, FrameId),
    ) -> BackedMatrixView {
        BackedMatrixView::new(
            Arc::clone(&self.shared),
            slot.clone(),
            element,
            (rows.0.clone(), rows.1),
            (cols.0.clone(), cols.1),
        )
    }

    fn obs_axis(&self) -> (&AxisIndex, FrameId) {
        (&self.obs, FrameId::Obs)
    }

    fn var_axis(&self) -> (&AxisIndex, FrameId) {
        (&self.var, FrameId::Var)
    }

    /// `X` at the selection, if the file has one.
    pub fn x(&self) -> Option<BackedMatrixView> {
        let snap = self.shared.snapshot();
        let slot = snap.layout.x.as_ref()?;
        Some(self.view_of(slot, "/X".into(), self.obs_axis(), self.var_axis()))
    }

    /// A layer at the selection.
    pub fn layer(&self, name: &str) -> Result<BackedMatrixView> {
        let snap = self.shared.snapshot();
        let slot = self.in_file(lookup(&snap.layout.layers, "layers", name))?;
        Ok(self.view_of(
            slot,
            format!("/layers/{name}"),
            self.obs_axis(),
            self.var_axis(),
        ))
    }

    /// The names of the layers, in file order.
    pub fn layer_names(&self) -> Vec<String> {
        self.shared
            .snapshot()
            .layout
            .layers
            .keys()
            .cloned()
            .collect()
    }

    /// The names of `obs`'s columns, in order, from metadata only (anndata's `obs_keys()`).
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/all_elements.h5ad");
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// let names: Vec<String> = adata.obs()?.columns().keys().cloned().collect();
    /// assert_eq!(adata.obs_keys(), names);
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn obs_keys(&self) -> Vec<String> {
        frame_keys(&self.shared.snapshot().layout.obs)
    }

    /// The names of `var`'s columns, in order (anndata's `var_keys()`).
    pub fn var_keys(&self) -> Vec<String> {
        frame_keys(&self.shared.snapshot().layout.var)
    }

    /// The keys of `obsm`.
    pub fn obsm_keys(&self) -> Vec<String> {
        self.shared.snapshot().layout.obsm.keys().cloned().collect()
    }

    /// The keys of `varm`.
    pub fn varm_keys(&self) -> Vec<String> {
        self.shared.snapshot().layout.varm.keys().cloned().collect()
    }

    /// The keys of `obsp`.
    pub fn obsp_keys(&self) -> Vec<String> {
        self.shared.snapshot().layout.obsp.keys().cloned().collect()
    }

    /// The keys of `varp`.
    pub fn varp_keys(&self) -> Vec<String> {
        self.shared.snapshot().layout.varp.keys().cloned().collect()
    }

    /// The keys of `uns`.
    pub fn uns_keys(&self) -> Vec<String> {
        self.shared.snapshot().layout.uns.keys().cloned().collect()
    }

    /// The selected rows of an `obsm` entry. Dense and sparse matrices are read through the
    /// block cache, only the blocks holding those rows; other entries (data frames, arrays of
    /// more than 2 dimensions, …) are read whole and cut. As in [`AnnData`](crate::AnnData), a 1-d array comes
    /// back as one column and a data frame is indexed by the observation names.
    pub fn obsm(&self, key: &str) -> Result<Element> {
        let snap = self.shared.snapshot();
        let slot = self.in_file(lookup(&snap.layout.obsm, "obsm", key))?;
        let value = self.in_file(
            self.shared
                .rows_of(&snap, slot, &self.obs, self.view)
                .in_element(format!("/obsm/{key}")),
        )?;
        self.in_file(self.aligned(&snap, &format!("obsm['{key}']"), Axis::Obs, value))
    }

    /// The kind of the `obsm` entry `key` when it is a matrix in the file (a 2-d array or a
    /// sparse matrix of the file's rows): [`BackedAnnData::obsm`] then reads only the
    /// selected rows.
    pub(crate) fn obsm_matrix_kind(&self, key: &str) -> Result<Option<MatrixKind>> {
        let snap = self.shared.snapshot();
        let Some(ElemSlot::Disk { parent, name, .. }) = snap.layout.obsm.get(key) else {
            return Ok(None);
        };
        let m = self.in_file(self.shared.open_matrix(&snap, parent, name))?;
        Ok(m.filter(|m| m.shape().0 == snap.layout.n_obs)
            .map(|m| m.kind()))
    }

    /// The selected rows of a `varm` entry (see [`BackedAnnData::obsm`]).
    pub fn varm(&self, key: &str) -> Result<Element> {
        let snap = self.shared.snapshot();
        let slot = self.in_file(lookup(&snap.layout.varm, "varm", key))?;
        let value = self.in_file(
            self.shared
                .rows_of(&snap, slot, &self.var, self.view)
                .in_element(format!("/varm/{key}")),
        )?;
        self.in_file(self.aligned(&snap, &format!("varm['{key}']"), Axis::Var, value))
    }

    /// Normalises an aligned value as `AnnData` does (see `validate::align`).
    fn aligned(
        &self,
        snap: &Snapshot,
        what: &str,
        on: Axis,
        mut value: Element,
    ) -> Result<Element> {
        let (frame, index, axis) = match on {
            Axis::Obs => (&snap.layout.obs, &self.obs, "obs"),
            Axis::Var => (&snap.layout.var, &self.var, "var"),
        };
        let reference = match &value {
            Element::DataFrame(_) => {
                let mut df = DataFrame::from_index(self.shared.frame_names(snap, frame, index)?);
                df.set_index_name(frame.index_name());
                df
            }
            // Only the number of rows matters.
            _ => DataFrame::with_index(ArrayData::zeros(DType::U8, &[index.len()]))?,
        };
        crate::validate::align(what, &mut value, &reference, axis)?;
        Ok(value)
    }

    /// An `obsp` matrix at the selected observations (both axes).
    pub fn obsp(&self, key: &str) -> Result<BackedMatrixView> {
        let snap = self.shared.snapshot();
        let slot = self.in_file(lookup(&snap.layout.obsp, "obsp", key))?;
        Ok(self.view_of(
            slot,
            format!("/obsp/{key}"),
            self.obs_axis(),
            self.obs_axis(),
        ))
    }

    /// A `varp` matrix at the selected variables (both axes).
    pub fn varp(&self, key: &str) -> Result<BackedMatrixView> {
        let snap = self.shared.snapshot();
        let slot = self.in_file(lookup(&snap.layout.varp, "varp", key))?;
        Ok(self.view_of(
            slot,
            format!("/varp/{key}"),
            self.var_axis(),
            self.var_axis(),
        ))
    }

    /// `raw.X` at the selected observations and every raw variable (anndata never subsets
    /// raw's variables), if the file has a raw.
    pub fn raw_x(&self) -> Option<BackedMatrixView> {
        let snap = self.shared.snapshot();
        let raw = snap.layout.raw.as_ref()?;
        let all = AxisIndex::full(raw.x.shape().1);
        Some(self.view_of(
            &raw.x,
            "/raw/X".into(),
            self.obs_axis(),
            (&all, FrameId::RawVar),
        ))
    }

    /// `X` at the selection in chunks of `chunk_rows` rows: `(range of the selection's rows,
    /// matrix)`, within the cache budget plus one chunk (see [`BackedMatrixView::chunks`]).
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions { cache_bytes: 1 << 20, ..Default::default() })?;
    /// let mut cells = 0;
    /// for chunk in adata.chunk_x(500)? {
    ///     let (rows, matrix) = chunk?;
    ///     assert_eq!(matrix.shape(), (rows.len(), 1000));
    ///     cells += rows.len();
    /// }
    /// assert_eq!(cells, 2000);
    /// let stats = adata.cache_stats();
    /// assert!(stats.bytes_held <= stats.budget);
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn chunk_x(&self, chunk_rows: usize) -> Result<MatrixChunks> {
        let x = self
            .x()
            .ok_or_else(|| Error::invalid("the file has no X").in_file(&self.shared.path))?;
        x.chunks(chunk_rows)
    }

    /// A layer at the selection in chunks of `chunk_rows` rows (see
    /// [`BackedAnnData::chunk_x`]).
    pub fn chunk_layer(&self, name: &str, chunk_rows: usize) -> Result<MatrixChunks> {
        self.layer(name)?.chunks(chunk_rows)
    }
}

/// The slot `key` of a mapping, or an error listing the keys there are.
fn lookup<'a, T>(map: &'a IndexMap<String, T>, name: &str, key: &str) -> Result<&'a T> {
    map.get(key).ok_or_else(|| {
        let keys: Vec<&String> = map.keys().collect();
        Error::invalid(format!("{name} has no key '{key}' (keys: {keys:?})"))
    })
}

/// The column names of a frame, from its layout.
fn frame_keys(frame: &FrameLayout) -> Vec<String> {
    match &frame.source {
        FrameSource::Default => Vec::new(),
        FrameSource::Memory(df) => df.columns().keys().cloned().collect(),
        FrameSource::Group { columns, .. } => columns.keys().cloned().collect(),
    }
}
