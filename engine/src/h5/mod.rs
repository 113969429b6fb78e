//! Typed access to HDF5 files through `hdf5-metno`: the only module that talks to libhdf5.
//!
//! [`read`] turns datasets and attributes of any dtype anndata (or a legacy writer) uses into
//! [`crate::data::ArrayData`]; [`write`] creates datasets and attributes exactly as h5py does
//! (bools as an int8 enum, strings as variable-length UTF-8, chunked compressed datasets).
//! [`types`] classifies stored datatypes.

pub mod read;
pub mod types;
pub mod write;

use std::path::Path;

use crate::{Error, Result};

/// Opens an HDF5 file read-only, with a plain I/O error when the path cannot be read at all
/// (missing, a directory, no permission) and a format error when it is not a readable HDF5
/// file (truncated, or another format).
pub fn open_read(path: &Path) -> Result<hdf5::File> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(Error::invalid("is a directory, not an .h5ad file"));
    }
    hdf5::File::open(path).map_err(|e| {
        Error::malformed(format!(
            "not a readable HDF5 file (truncated or another format): {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directory_and_foreign_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let missing = open_read(&dir.path().join("nope.h5ad")).unwrap_err();
        assert!(missing.is_io(), "{missing}");
        let is_dir = open_read(dir.path()).unwrap_err();
        assert!(is_dir.to_string().contains("is a directory"), "{is_dir}");
        let text = dir.path().join("notes.h5ad");
        std::fs::write(&text, "not hdf5").unwrap();
        let foreign = open_read(&text).unwrap_err();
        assert!(
            foreign.to_string().contains("not a readable HDF5 file"),
            "{foreign}"
        );
    }
}
