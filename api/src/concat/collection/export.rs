//! Writing a collection's selection as a loom file or a directory of CSV files: the
//! annotations in memory, X and the layers read a chunk of cells at a time.

use std::ops::Range;
use std::path::Path;

use annpage_engine::data::{Axis, DType, Matrix};
use annpage_engine::format::loom::{write_loom_from, LoomInput};
use annpage_engine::format::text::csvs::{two_d_arrays, write_csvs_from, CsvsInput};
use annpage_engine::format::{named_blocks, Blocks, MatrixBlocks};
use annpage_engine::paged::MemoryPolicy;
use annpage_engine::Result;
use indexmap::IndexMap;

use super::BackedCollection;
use crate::Selection;

impl BackedCollection {
    /// Writes the selection as a loom file, the file
    /// [`AnnData::write_loom`](crate::AnnData::write_loom) writes for
    /// [`BackedCollection::to_memory`]'s result; X and the layers are read a chunk of cells
    /// at a time (chunks of about a sixteenth of the budget).
    ///
    /// ```
    /// use annpage::{read_collection, BackedOptions, ConcatOptions};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// # let dir = tempfile::tempdir()?;
    /// let options = ConcatOptions { index_unique: Some("-".into()), ..Default::default() };
    /// let c = read_collection(&[path, path], &options, &BackedOptions::default())?;
    /// c.write_loom(dir.path().join("both.loom"), false)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_loom(&self, path: impl AsRef<Path>, write_obsm_varm: bool) -> Result<()> {
        let a = self.annotations()?;
        let e = a.elements();
        let x = self.has_x().then(|| self.blocks(None)).transpose()?;
        let layers = self
            .layer_names()
            .iter()
            .map(|k| Ok((k.clone(), self.blocks(Some(k))?)))
            .collect::<Result<IndexMap<_, _>>>()?;
        let input = LoomInput {
            obs: &e.obs,
            var: &e.var,
            obsm_varm: write_obsm_varm.then_some((&e.obsm, &e.varm)),
            x: x.as_ref().map(|x| x as &dyn MatrixBlocks),
            layers: named_blocks(&layers),
            block_bytes: self.block_bytes(),
        };
        write_loom_from(path.as_ref(), &input)
    }

    /// Writes the selection as CSV files into `dir`, the files
    /// [`AnnData::write_csvs`](crate::AnnData::write_csvs) writes for
    /// [`BackedCollection::to_memory`]'s result; X (unless `skip_data`) is read a chunk of
    /// cells at a time.
    ///
    /// ```
    /// use annpage::{read_collection, BackedOptions, ConcatOptions};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// # let dir = tempfile::tempdir()?;
    /// let options = ConcatOptions { index_unique: Some("-".into()), ..Default::default() };
    /// let c = read_collection(&[path, path], &options, &BackedOptions::default())?;
    /// c.write_csvs(dir.path().join("tables"), false, ',')?;
    /// assert!(dir.path().join("tables/X.csv").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_csvs(&self, dir: impl AsRef<Path>, skip_data: bool, sep: char) -> Result<()> {
        let a = self.annotations()?;
        let e = a.elements();
        let x = match (self.has_x(), skip_data) {
            (true, false) => Some(self.blocks(None)?),
            _ => None,
        };
        let input = CsvsInput {
            obs: &e.obs,
            var: &e.var,
            obsm: two_d_arrays(&e.obsm),
            varm: two_d_arrays(&e.varm),
            x: (!skip_data).then(|| x.as_ref().map(|x| x as &dyn MatrixBlocks)),
            uns: &e.uns,
            block_bytes: self.block_bytes(),
        };
        write_csvs_from(dir.as_ref(), &input, sep)
    }

    /// The bytes of a chunk of a matrix these writers hold at once.
    fn block_bytes(&self) -> usize {
        MemoryPolicy::new(self.cache_stats().budget).write_piece_bytes()
    }

    /// X (`None`) or a layer of the selection, read a chunk of cells at a time.
    fn blocks(&self, layer: Option<&str>) -> Result<CollectionBlocks<'_>> {
        Ok(CollectionBlocks {
            coll: self,
            layer: layer.map(str::to_owned),
            dtype: self.matrix_kind(layer)?.1,
        })
    }
}

/// A collection's matrix as [`MatrixBlocks`]: chunks of cells across its files.
struct CollectionBlocks<'a> {
    coll: &'a BackedCollection,
    layer: Option<String>,
    dtype: DType,
}

impl MatrixBlocks for CollectionBlocks<'_> {
    fn shape(&self) -> (usize, usize) {
        self.coll.shape()
    }

    fn dtype(&self) -> DType {
        self.dtype
    }

    fn stored_along(&self) -> Axis {
        Axis::Obs
    }

    fn block(&self, along: Axis, range: Range<usize>) -> Result<Matrix> {
        let picked = Selection::from(range);
        let part = match along {
            Axis::Obs => self.coll.slice(&picked, &Selection::All)?,
            Axis::Var => self.coll.slice(&Selection::All, &picked)?,
        };
        match &self.layer {
            Some(name) => part.layer_to_memory(name),
            None => part.x_to_memory(),
        }
    }

    fn blocks(&self, along: Axis, per: usize) -> Result<Blocks<'_>> {
        if along == Axis::Var {
            return self.block_by_block(along, per);
        }
        let chunks = match &self.layer {
            Some(name) => self.coll.chunk_layer(name, per)?,
            None => self.coll.chunk_x(per)?,
        };
        Ok(Box::new(chunks.map(|c| c.map(|(_, m)| m))))
    }
}

impl CollectionBlocks<'_> {
    /// [`MatrixBlocks::blocks`] by [`MatrixBlocks::block`].
    fn block_by_block(&self, along: Axis, per: usize) -> Result<Blocks<'_>> {
        let n = match along {
            Axis::Obs => self.coll.n_obs(),
            Axis::Var => self.coll.n_vars(),
        };
        Ok(Box::new(
            annpage_engine::format::block_ranges(n, per)?.map(move |r| self.block(along, r)),
        ))
    }
}
