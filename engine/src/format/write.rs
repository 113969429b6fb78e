//! Writing AnnData elements and whole `.h5ad` files exactly as anndata does.

use std::path::Path;

use super::AnnDataElements;
use crate::data::Element;
use crate::{Error, Result};

/// How datasets are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    /// No compression (anndata's default).
    #[default]
    None,
    /// Deflate at the given level (0–9; h5py's default is 4).
    Gzip(u8),
    /// h5py's LZF filter.
    Lzf,
}

/// Options for writing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Compression of array datasets (scalars are never compressed).
    pub compression: Compression,
}

/// Writes a whole `.h5ad` file: to a temporary file beside `path`, renamed into place at the end.
pub fn write_h5ad(
    path: impl AsRef<Path>,
    adata: &AnnDataElements,
    options: &WriteOptions,
) -> Result<()> {
    let _ = (adata, options);
    Err(Error::unsupported("writing is being written").in_file(path))
}

/// Writes `elem` under `name` in `group`.
pub fn write_element(
    group: &hdf5::Group,
    name: &str,
    elem: &Element,
    options: &WriteOptions,
) -> Result<()> {
    let _ = (group, elem, options);
    Err(Error::unsupported("writing is being written").in_element(name))
}
