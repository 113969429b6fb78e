//! Reading AnnData elements and whole `.h5ad` files, current and legacy layouts.

use std::path::Path;

use super::AnnDataElements;
use crate::data::Element;
use crate::{Error, Result};

/// Reads a whole `.h5ad` file into memory.
pub fn read_h5ad(path: impl AsRef<Path>) -> Result<AnnDataElements> {
    Err(Error::unsupported("reading is being written").in_file(path))
}

/// Reads the element stored under `name` in `group`.
pub fn read_element(group: &hdf5::Group, name: &str) -> Result<Element> {
    let _ = group;
    Err(Error::unsupported("reading is being written").in_element(name))
}
