//! Writing a backed selection as a loom file or a directory of CSV files, the matrices (and
//! the dense obsm/varm arrays CSV files hold) read a block at a time through the cache: the
//! files [`AnnData::write_loom`](crate::AnnData::write_loom) and
//! [`AnnData::write_csvs`](crate::AnnData::write_csvs) write for `to_memory()`'s result.

use std::ops::Range;
use std::path::{Path, PathBuf};

use annpage_engine::data::SparseFormat;
use annpage_engine::data::{ArrayData, Axis, DType, Element, Mapping, Matrix};
use annpage_engine::error::ResultExt;
use annpage_engine::file::probe::{ElemSlot, MatrixSlot};
use annpage_engine::format::loom::{write_loom_from, LoomInput};
use annpage_engine::format::text::csvs::{write_csvs_from, CsvsInput};
use annpage_engine::format::{block_ranges, named_blocks, Blocks, MatrixBlocks};
use annpage_engine::paged::{BackedMatrix, MatrixKind, MemoryPolicy};
use annpage_engine::select::AxisIndex;
use annpage_engine::{Error, Result};
use indexmap::IndexMap;

use super::slices::{self, read_once};
use super::write::Orient;
use super::BackedAnnData;

impl BackedAnnData {
    /// Writes the selection as a loom file, the file [`AnnData::write_loom`](crate::AnnData::write_loom)
    /// writes for [`BackedAnnData::to_memory`]'s result. X and the layers are read a block of
    /// cells (of genes, for a CSC matrix) at a time, blocks of about a sixteenth of the cache
    /// budget; obsm and varm (with `write_obsm_varm`) are read whole.
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// # let dir = tempfile::tempdir()?;
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// adata.write_loom(dir.path().join("cells.loom"), false)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_loom(&self, path: impl AsRef<Path>, write_obsm_varm: bool) -> Result<()> {
        self.write_loom_as(path.as_ref(), write_obsm_varm, Orient::AsIs)
    }

    /// [`BackedAnnData::write_loom`] of the selection as it is or transposed.
    pub(super) fn write_loom_as(
        &self,
        path: &Path,
        write_obsm_varm: bool,
        orient: Orient,
    ) -> Result<()> {
        let snap = self.shared.snapshot();
        let (obs, var, _) = self.frames_and_uns(&snap).in_file(&self.shared.path)?;
        let (obs, var) = orient.pair(obs, var);
        let x = snap
            .layout
            .x
            .as_ref()
            .map(|x| self.blocks_of(x, "/X").map(|m| m.oriented(orient)))
            .transpose()?;
        let layers = snap
            .layout
            .layers
            .iter()
            .map(|(k, slot)| {
                let m = self.blocks_of(slot, &format!("/layers/{k}"))?;
                Ok((k.clone(), m.oriented(orient)))
            })
            .collect::<Result<IndexMap<_, _>>>()?;
        let (obsm, varm) = if write_obsm_varm {
            orient.pair(self.whole(Axis::Obs)?, self.whole(Axis::Var)?)
        } else {
            (Mapping::new(), Mapping::new())
        };
        let input = LoomInput {
            obs: &obs,
            var: &var,
            obsm_varm: write_obsm_varm.then_some((&obsm, &varm)),
            x: x.as_ref().map(|x| x as &dyn MatrixBlocks),
            layers: named_blocks(&layers),
            block_bytes: self.block_bytes(),
        };
        write_loom_from(path, &input)
    }

    /// Writes the selection as CSV files into `dir`, the files
    /// [`AnnData::write_csvs`](crate::AnnData::write_csvs) writes for
    /// [`BackedAnnData::to_memory`]'s result. X (unless `skip_data`) and the dense obsm/varm
    /// arrays are read a block of rows at a time.
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// # let dir = tempfile::tempdir()?;
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// adata.write_csvs(dir.path().join("tables"), false, ',')?;
    /// assert!(dir.path().join("tables/X.csv").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_csvs(&self, dir: impl AsRef<Path>, skip_data: bool, sep: char) -> Result<()> {
        self.write_csvs_as(dir.as_ref(), skip_data, sep, Orient::AsIs)
    }

    /// [`BackedAnnData::write_csvs`] of the selection as it is or transposed.
    pub(super) fn write_csvs_as(
        &self,
        dir: &Path,
        skip_data: bool,
        sep: char,
        orient: Orient,
    ) -> Result<()> {
        let snap = self.shared.snapshot();
        let (obs, var, uns) = self.frames_and_uns(&snap).in_file(&self.shared.path)?;
        let (obs, var) = orient.pair(obs, var);
        let x = match (&snap.layout.x, skip_data) {
            (Some(x), false) => Some(self.blocks_of(x, "/X")?.oriented(orient)),
            _ => None,
        };
        let (obsm, varm) = orient.pair(self.arrays(Axis::Obs)?, self.arrays(Axis::Var)?);
        let input = CsvsInput {
            obs: &obs,
            var: &var,
            obsm: named_blocks(&obsm),
            varm: named_blocks(&varm),
            x: (!skip_data).then(|| x.as_ref().map(|x| x as &dyn MatrixBlocks)),
            uns: &uns,
            block_bytes: self.block_bytes(),
        };
        write_csvs_from(dir, &input, sep)
    }

    /// The bytes of a block of a matrix these writers hold at once.
    fn block_bytes(&self) -> usize {
        MemoryPolicy::new(self.cache_budget()).write_piece_bytes()
    }

    /// The selection of a matrix element, to be read a block at a time.
    fn blocks_of(&self, slot: &MatrixSlot, element: &str) -> Result<Source> {
        let view = self.view_of(slot, element.into(), self.obs_axis(), self.var_axis());
        Ok(match view.backed_matrix()? {
            Some(m) => Source::Disk(DiskBlocks {
                m,
                rows: view.row_index().clone(),
                cols: view.col_index().clone(),
                element: element.into(),
                path: self.shared.path.clone(),
            }),
            None => Source::Memory(view.to_memory()?),
        })
    }

    /// Every obsm (or varm) value at the selection, in memory.
    fn whole(&self, on: Axis) -> Result<Mapping> {
        self.aligned_keys(on)
            .into_iter()
            .map(|k| Ok((k.clone(), self.aligned_value(on, &k)?)))
            .collect()
    }

    /// The 2-d arrays of obsm (or varm) at the selection, as a CSV file holds them: those
    /// stored as 2-d arrays of the axis's length read a block of rows at a time, the others
    /// (1-d arrays, as one column) in memory; sparse matrices and data frames left out.
    fn arrays(&self, on: Axis) -> Result<IndexMap<String, Source>> {
        let snap = self.shared.snapshot();
        let (slots, index, name) = match on {
            Axis::Obs => (&snap.layout.obsm, &self.obs, "obsm"),
            Axis::Var => (&snap.layout.varm, &self.var, "varm"),
        };
        let mut out = IndexMap::new();
        for (key, slot) in slots {
            if let ElemSlot::Disk {
                parent, name: at, ..
            } = slot
            {
                let m = self
                    .shared
                    .open_matrix(&snap, parent, at)
                    .in_file(&self.shared.path)?;
                if let Some(m) = m.filter(|m| m.shape().0 == index.axis_len()) {
                    if m.kind() == MatrixKind::Dense {
                        let cols = AxisIndex::full(m.shape().1);
                        let disk = DiskBlocks {
                            m,
                            rows: index.clone(),
                            cols,
                            element: format!("/{name}/{key}"),
                            path: self.shared.path.clone(),
                        };
                        out.insert(key.clone(), Source::Disk(disk));
                    }
                    // A sparse matrix: not written.
                    continue;
                }
            }
            if let Element::Array(a) = self.aligned_value(on, key)? {
                if a.ndim() == 2 {
                    out.insert(key.clone(), Source::Array(a));
                }
            }
        }
        Ok(out)
    }

    fn aligned_keys(&self, on: Axis) -> Vec<String> {
        match on {
            Axis::Obs => self.obsm_keys(),
            Axis::Var => self.varm_keys(),
        }
    }

    fn aligned_value(&self, on: Axis, key: &str) -> Result<Element> {
        match on {
            Axis::Obs => self.obsm(key),
            Axis::Var => self.varm(key),
        }
    }
}

/// A matrix a writer reads a block at a time: on disk, or already in memory (a pending
/// change, an array read whole), or another source transposed.
enum Source {
    Disk(DiskBlocks),
    Memory(Matrix),
    Array(ArrayData),
    Transposed(Box<Source>),
}

impl Source {
    fn inner(&self) -> &dyn MatrixBlocks {
        match self {
            Source::Disk(d) => d,
            Source::Memory(m) => m,
            Source::Array(a) => a,
            Source::Transposed(s) => s.as_ref(),
        }
    }

    /// The source as a selection written `orient`ed holds it.
    fn oriented(self, orient: Orient) -> Source {
        match orient {
            Orient::AsIs => self,
            Orient::Transposed => Source::Transposed(Box::new(self)),
        }
    }
}

/// A transposed source's blocks along one axis are its source's along the other, transposed.
impl MatrixBlocks for Source {
    fn shape(&self) -> (usize, usize) {
        let (rows, cols) = self.inner().shape();
        match self {
            Source::Transposed(_) => (cols, rows),
            _ => (rows, cols),
        }
    }

    fn dtype(&self) -> DType {
        self.inner().dtype()
    }

    fn stored_along(&self) -> Axis {
        match self {
            Source::Transposed(s) => s.stored_along().other(),
            other => other.inner().stored_along(),
        }
    }

    fn block(&self, along: Axis, range: Range<usize>) -> Result<Matrix> {
        match self {
            Source::Transposed(s) => Ok(Orient::Transposed.apply(s.block(along.other(), range)?)),
            other => other.inner().block(along, range),
        }
    }

    fn blocks(&self, along: Axis, per: usize) -> Result<Blocks<'_>> {
        match self {
            Source::Transposed(s) => Ok(Box::new(
                s.blocks(along.other(), per)?
                    .map(|b| b.map(|m| Orient::Transposed.apply(m))),
            )),
            other => other.inner().blocks(along, per),
        }
    }
}

/// Rows `rows` × columns `cols` of a matrix on disk, read through the cache: blocks along
/// the stored axis by a scan, blocks across it each read once.
struct DiskBlocks {
    m: BackedMatrix,
    rows: AxisIndex,
    cols: AxisIndex,
    element: String,
    path: PathBuf,
}

impl DiskBlocks {
    fn blame(&self, e: Error) -> Error {
        e.in_element(&self.element).in_file(&self.path)
    }
}

impl MatrixBlocks for DiskBlocks {
    fn shape(&self) -> (usize, usize) {
        (self.rows.len(), self.cols.len())
    }

    fn dtype(&self) -> DType {
        self.m.dtype()
    }

    fn stored_along(&self) -> Axis {
        match self.m.kind() {
            MatrixKind::Sparse(SparseFormat::Csc) => Axis::Var,
            _ => Axis::Obs,
        }
    }

    fn block(&self, along: Axis, range: Range<usize>) -> Result<Matrix> {
        let read = || {
            let (major, n) = match along {
                Axis::Obs => (&self.rows, self.rows.len()),
                Axis::Var => (&self.cols, self.cols.len()),
            };
            let picked = major.compose(&AxisIndex::range(range, n)?)?;
            match along {
                Axis::Obs => read_once(&self.m, &picked, &self.cols),
                Axis::Var => read_once(&self.m, &self.rows, &picked),
            }
        };
        read().map_err(|e| self.blame(e))
    }

    /// Along the stored axis, a scan (reading ahead); across it, pieces as large as half the
    /// budget allows by the values they store, each cut into blocks of `per` (each piece
    /// reads every stored block holding its slices: the fewer the better).
    fn blocks(&self, along: Axis, per: usize) -> Result<Blocks<'_>> {
        let _ = block_ranges(0, per)?; // refuses blocks of 0
        let by_rows = along == Axis::Obs;
        if along == self.stored_along() && by_rows {
            let scan = self
                .m
                .scan(&self.rows, &self.cols, per)
                .map_err(|e| self.blame(e))?;
            return Ok(Box::new(
                scan.map(move |c| c.map(|(_, m)| m).map_err(|e| self.blame(e))),
            ));
        }
        let policy = MemoryPolicy::new(self.m.cache().budget());
        let target = policy.scattered_piece_bytes() / 2;
        let selection = (&self.rows, &self.cols);
        let counts = slices::values_per(&self.m, selection, by_rows, target as u64)
            .map_err(|e| self.blame(e))?;
        // A piece is held as read and converted.
        let value = 2 * (self.m.dtype().size() as u64 + 4);
        let costs: Vec<u64> = counts.iter().map(|&n| n * value + 8).collect();
        drop(counts);
        let room = self.m.cache().reserve(target);
        let pieces = slices::pieces(&self.m, selection, by_rows, &costs, target as u64, 1)
            .map_err(|e| self.blame(e))?;
        // Each piece stored along the blocks' axis (rows of CSR, columns of CSC), then cut.
        let format = match along {
            Axis::Obs => SparseFormat::Csr,
            Axis::Var => SparseFormat::Csc,
        };
        let cut = move |piece: Result<(Range<usize>, Matrix)>| -> Result<Blocks<'static>> {
            let (range, piece) = piece?;
            let piece = match piece {
                Matrix::Sparse(s) if s.format() != format => {
                    Matrix::Sparse(Matrix::Sparse(s).into_sparse(format)?)
                }
                other => other,
            };
            let blocks = block_ranges(range.len(), per)?;
            Ok(Box::new(blocks.map(move |r| piece.block(along, r))))
        };
        Ok(Box::new(
            pieces
                .flat_map(move |piece| {
                    cut(piece).unwrap_or_else(|e| Box::new(std::iter::once(Err(e))))
                })
                .map(move |block| {
                    let _room = &room;
                    block.map_err(|e| self.blame(e))
                }),
        ))
    }
}
