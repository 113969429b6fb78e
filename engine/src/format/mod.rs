//! The AnnData on-disk format: element encodings and whole-file reading and writing.
//!
//! `docs/../shared/format/ANNDATA_ON_DISK.md` (in the repository's shared folder) is the
//! reference this module implements.

mod blocks;
mod encoding;
pub(crate) mod legacy;
pub mod loom;
pub(crate) mod read;
pub mod text;
pub(crate) mod walk;
pub mod write;

pub use blocks::{block_ranges, named_blocks, Blocks, MatrixBlocks};
pub(crate) use encoding::read_encoding;
pub use encoding::{check_encoding, Encoding};
pub(crate) use read::read_element;
pub use walk::MAX_DEPTH;
pub use write::{write_h5ad, Compression, WriteOptions};

use indexmap::IndexMap;

use crate::data::{DataFrame, Mapping, Matrix};

/// Every element of an AnnData object as stored in a file, without shape validation.
///
/// The `annpage` crate's `AnnData` wraps this and keeps its invariants.
#[derive(Clone, Debug, PartialEq)]
pub struct AnnDataElements {
    /// The main matrix, n_obs × n_vars.
    pub x: Option<Matrix>,
    /// Per-observation (cell) annotations.
    pub obs: DataFrame,
    /// Per-variable (gene) annotations.
    pub var: DataFrame,
    /// Multi-dimensional observation annotations (n_obs rows each).
    pub obsm: Mapping,
    /// Multi-dimensional variable annotations (n_vars rows each).
    pub varm: Mapping,
    /// Pairwise observation matrices (n_obs × n_obs).
    pub obsp: IndexMap<String, Matrix>,
    /// Pairwise variable matrices (n_vars × n_vars).
    pub varp: IndexMap<String, Matrix>,
    /// Matrices with the shape of `X`.
    pub layers: IndexMap<String, Matrix>,
    /// Unstructured annotations.
    pub uns: Mapping,
    /// The raw (unfiltered) variables, if kept.
    pub raw: Option<RawElements>,
}

/// The `raw` slot: a matrix over the same observations and its own variables.
#[derive(Clone, Debug, PartialEq)]
pub struct RawElements {
    /// raw.X, n_obs × raw n_vars.
    pub x: Matrix,
    /// raw.var.
    pub var: DataFrame,
    /// raw.varm.
    pub varm: Mapping,
}

impl AnnDataElements {
    /// An object with `n_obs` × `n_vars` default names and nothing else.
    pub fn empty(n_obs: usize, n_vars: usize) -> Self {
        AnnDataElements {
            x: None,
            obs: DataFrame::with_default_index(n_obs),
            var: DataFrame::with_default_index(n_vars),
            obsm: Mapping::new(),
            varm: Mapping::new(),
            obsp: IndexMap::new(),
            varp: IndexMap::new(),
            layers: IndexMap::new(),
            uns: Mapping::new(),
            raw: None,
        }
    }
}
