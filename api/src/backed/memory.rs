//! What a backed handle materialises: the selected annotations (`obs`, `var`, `uns`, with the
//! unused categories of a view pruned as anndata prunes them), `raw`'s annotations, and the
//! whole selection in memory.

use annpage_engine::data::{DataFrame, Mapping, Matrix, SparseFormat, SparseMatrix};
use annpage_engine::error::ResultExt;
use annpage_engine::file::probe::{ElemSlot, FrameId, MatrixSlot};
use annpage_engine::format::{AnnDataElements, RawElements};
use annpage_engine::paged::{MatrixKind, MemoryPolicy};
use annpage_engine::select::AxisIndex;
use annpage_engine::Result;
use indexmap::IndexMap;

use super::shared::Snapshot;
use super::write::{can_be_sparse, stored_as};
use super::{BackedAnnData, BackedMatrixView, StoredAs};
use crate::concat::vstack_csr;
use crate::subset::prune_categories;
use crate::AnnData;

impl BackedAnnData {
    /// `raw.var` and `raw.varm` (every raw variable), if the file has a raw; read now.
    pub fn raw_annotations(&self) -> Result<Option<(DataFrame, Mapping)>> {
        let snap = self.shared.snapshot();
        let Some(raw) = snap.layout.raw.as_ref() else {
            return Ok(None);
        };
        let read = || -> Result<(DataFrame, Mapping)> {
            let all = AxisIndex::full(raw.x.shape().1);
            let var = self.shared.frame_rows(&snap, &raw.var, &all)?;
            let varm = raw
                .varm
                .iter()
                .map(|(k, slot)| Ok((k.clone(), self.shared.element(&snap, slot)?)))
                .collect::<Result<Mapping>>()?;
            Ok((var, varm))
        };
        read()
            .in_element("/raw")
            .in_file(&self.shared.path)
            .map(Some)
    }

    /// Unstructured annotations. In a view, the colours of categorical `obs`/`var` columns
    /// (`uns['<column>_colors']`) follow the categories the selection keeps, as in anndata.
    pub fn uns(&self) -> Result<Mapping> {
        let snap = self.shared.snapshot();
        let mut uns = self.in_file(self.read_uns(&snap))?;
        if self.view && uns.keys().any(|k| k.ends_with("_colors")) {
            self.in_file(self.prune(&snap, &mut uns))?;
        }
        Ok(uns)
    }

    fn read_uns(&self, snap: &Snapshot) -> Result<Mapping> {
        snap.layout
            .uns
            .iter()
            .map(|(k, slot)| Ok((k.clone(), self.shared.element(snap, slot)?)))
            .collect()
    }

    /// The selected `obs` and `var`, and `uns`: in a view, with unused categories removed and
    /// their colours fixed, as [`AnnData::subset`] makes them.
    pub(super) fn frames_and_uns(
        &self,
        snap: &Snapshot,
    ) -> Result<(DataFrame, DataFrame, Mapping)> {
        let mut uns = self.read_uns(snap)?;
        let (obs, var) = self.prune(snap, &mut uns)?;
        Ok((obs, var, uns))
    }

    fn prune(&self, snap: &Snapshot, uns: &mut Mapping) -> Result<(DataFrame, DataFrame)> {
        let mut obs = self.shared.frame_rows(snap, &snap.layout.obs, &self.obs)?;
        let mut var = self.shared.frame_rows(snap, &snap.layout.var, &self.var)?;
        if self.view {
            prune_categories(&mut obs, uns);
            prune_categories(&mut var, uns);
        }
        Ok((obs, var))
    }

    /// Every element at the selection, in memory: for a view, exactly what [`AnnData::subset`]
    /// gives for the same selections on the whole file read with [`crate::read_h5ad`] (unused
    /// categories removed, in `obsm`/`varm` data frames too, colours fixed, `raw` cut to the
    /// observations only); for the whole file, what [`crate::read_h5ad`] gives.
    pub fn to_memory(&self) -> Result<AnnData> {
        self.to_memory_stored_as(StoredAs::default())
    }

    /// [`BackedAnnData::to_memory`] with X, the layers and `raw.X` stored as `stored` gives
    /// (anndata's `read_h5ad(path, as_sparse=("X", "raw/X"))` is `x` and `raw_x` CSR). A dense
    /// matrix made sparse is read in chunks of rows, each made sparse before the next is
    /// read: the dense matrix is never held whole. With `stored.strings_to_categoricals`, string
    /// columns of obs, var and raw.var that repeat a value come back as categoricals.
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, MatrixKind, Mode, StoredAs};
    /// use annpage::data::{Matrix, SparseFormat};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/x_dense_f32.h5ad");
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// let csr = StoredAs { x: Some(MatrixKind::Sparse(SparseFormat::Csr)), ..StoredAs::default() };
    /// let sparse = adata.to_memory_stored_as(csr)?;
    /// assert!(matches!(sparse.x(), Some(Matrix::Sparse(_))));
    /// assert_eq!(sparse.x().unwrap().to_dense()?, adata.to_memory()?.x().unwrap().to_dense()?);
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn to_memory_stored_as(&self, stored: StoredAs) -> Result<AnnData> {
        let snap = self.shared.snapshot();
        self.in_file(self.elements(&snap, stored))
            .and_then(|elems| AnnData::from_elements(elems).in_file(&self.shared.path))
    }

    /// A matrix of the selection in memory, stored as `kind` (as on disk when `None`).
    fn read_as(&self, view: &BackedMatrixView, kind: Option<MatrixKind>) -> Result<Matrix> {
        let format = match (kind, view.kind()) {
            (None, _) => return view.to_memory(),
            (Some(MatrixKind::Sparse(format)), MatrixKind::Dense) => format,
            (Some(kind), _) => return stored_as(view.to_memory()?, kind),
        };
        can_be_sparse(view.dtype(), MatrixKind::Sparse(format)).map_err(|e| view.blame(e))?;
        let (rows, cols) = view.shape();
        let row_bytes = cols.saturating_mul(view.dtype().size()).max(1);
        let piece = MemoryPolicy::new(self.cache_budget()).write_piece_bytes();
        let mut parts = Vec::new();
        for chunk in view.scan((piece / row_bytes).max(1))? {
            parts.push(chunk?.1.into_sparse(SparseFormat::Csr)?);
        }
        let csr = if parts.is_empty() {
            SparseMatrix::empty(SparseFormat::Csr, (rows, cols), view.dtype())
        } else {
            vstack_csr(parts)?
        };
        Matrix::Sparse(csr).into_sparse(format).map(Matrix::Sparse)
    }

    fn elements(&self, snap: &Snapshot, stored: StoredAs) -> Result<AnnDataElements> {
        let layout = &snap.layout;
        let (mut obs, mut var, uns) = self.frames_and_uns(snap)?;
        stored.convert_strings(&mut [&mut obs, &mut var])?;
        let matrices = |slots: &IndexMap<String, MatrixSlot>, name: &str, rows, cols, kind| {
            slots
                .iter()
                .map(|(k, slot)| {
                    let view = self.view_of(slot, format!("/{name}/{k}"), rows, cols);
                    Ok((k.clone(), self.read_as(&view, kind)?))
                })
                .collect::<Result<IndexMap<_, _>>>()
        };
        let aligned = |slots: &IndexMap<String, ElemSlot>, name: &str, index: &AxisIndex| {
            slots
                .iter()
                .map(|(k, slot)| {
                    let value = self
                        .shared
                        .rows_of(snap, slot, index, self.view)
                        .in_element(format!("/{name}/{k}"))?;
                    Ok((k.clone(), value))
                })
                .collect::<Result<Mapping>>()
        };
        let raw = match &layout.raw {
            Some(raw) => {
                let all = AxisIndex::full(raw.x.shape().1);
                let view = self.view_of(
                    &raw.x,
                    "/raw/X".into(),
                    self.obs_axis(),
                    (&all, FrameId::RawVar),
                );
                let x = self.read_as(&view, stored.raw_x)?;
                let mut var = self.shared.frame_rows(snap, &raw.var, &all)?;
                stored.convert_strings(&mut [&mut var])?;
                let varm = raw
                    .varm
                    .iter()
                    .map(|(k, slot)| Ok((k.clone(), self.shared.element(snap, slot)?)))
                    .collect::<Result<Mapping>>()?;
                Some(RawElements { x, var, varm })
            }
            None => None,
        };
        Ok(AnnDataElements {
            x: layout
                .x
                .as_ref()
                .map(|x| {
                    let view = self.view_of(x, "/X".into(), self.obs_axis(), self.var_axis());
                    self.read_as(&view, stored.x)
                })
                .transpose()?,
            obs,
            var,
            obsm: aligned(&layout.obsm, "obsm", &self.obs)?,
            varm: aligned(&layout.varm, "varm", &self.var)?,
            obsp: matrices(&layout.obsp, "obsp", self.obs_axis(), self.obs_axis(), None)?,
            varp: matrices(&layout.varp, "varp", self.var_axis(), self.var_axis(), None)?,
            layers: matrices(
                &layout.layers,
                "layers",
                self.obs_axis(),
                self.var_axis(),
                stored.layers,
            )?,
            uns,
            raw,
        })
    }
}
