//! Typed access to HDF5 files through `hdf5-metno`: the only module that talks to libhdf5.
//!
//! [`read`] turns datasets and attributes of any dtype anndata (or a legacy writer) uses into
//! [`crate::data::ArrayData`]; [`write`](mod@write) creates datasets and attributes exactly as h5py does
//! (bools as an int8 enum, strings as variable-length UTF-8, chunked compressed datasets).
//! [`types`] classifies stored datatypes; [`claim`] checks the size a dataset claims before
//! anything is allocated for it.

pub mod claim;
pub mod read;
pub mod types;
pub mod write;

use std::path::Path;

use crate::{Error, Result};

/// `parent/name` as an HDF5 path (`/name` under the root).
pub fn join_path(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Fails unless `path` is a regular file (or a link to one), without opening it: a plain I/O
/// error when it cannot be looked at (missing, no permission), an invalid-argument error for a
/// directory, FIFO, socket or device (opening a FIFO blocks until the other end comes).
pub fn check_regular_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(Error::invalid("is a directory, not an .h5ad file"));
    }
    if !meta.is_file() {
        return Err(Error::invalid(
            "is not a regular file (a FIFO, socket or device), not an .h5ad file",
        ));
    }
    Ok(())
}

/// Opens an HDF5 file read-only, with a plain I/O error when the path cannot be read at all
/// (missing, no permission), an invalid-argument error when it is not a regular file (see
/// [`check_regular_file`], done first) and a format error when it is not a readable HDF5 file
/// (truncated, or another format).
pub fn open_read(path: &Path) -> Result<hdf5::File> {
    check_regular_file(path)?;
    hdf5::File::open(path).map_err(|e| {
        Error::malformed(format!(
            "not a readable HDF5 file (truncated or another format): {e}"
        ))
    })
}

/// Identifies one object (group, dataset, named type) of an open file: the same object reached
/// by two paths (HDF5 hard links) has the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectId {
    fileno: u64,
    token: [u8; 16],
}

/// The id of the object `loc` is open on.
pub fn object_id(loc: &hdf5::Location) -> Result<ObjectId> {
    // SAFETY: a plain C struct of integers and byte arrays, for which all zeros is valid.
    let mut info: hdf5_sys::h5o::H5O_info2_t = unsafe { std::mem::zeroed() };
    // SAFETY: `loc` is an open handle and `info` is a valid struct the call fills (with
    // H5O_INFO_BASIC, the fields read below).
    let status = hdf5::sync::sync(|| unsafe {
        hdf5_sys::h5o::H5Oget_info3(loc.id(), &mut info, hdf5_sys::h5o::H5O_INFO_BASIC)
    });
    hdf5::h5check(status)?;
    // SAFETY: `H5O_token_t` is a plain 16-byte array (`H5O_MAX_TOKEN_SIZE`), any bits valid.
    let token = unsafe { std::mem::transmute::<hdf5_sys::h5o::H5O_token_t, [u8; 16]>(info.token) };
    Ok(ObjectId {
        fileno: info.fileno,
        token,
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
        let fifo = dir.path().join("pipe.h5ad");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Opening the FIFO itself would block until a writer comes: refused before that.
        let err = open_read(&fifo).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let text = dir.path().join("notes.h5ad");
        std::fs::write(&text, "not hdf5").unwrap();
        let foreign = open_read(&text).unwrap_err();
        assert!(
            foreign.to_string().contains("not a readable HDF5 file"),
            "{foreign}"
        );
    }

    #[test]
    fn join_path_joins_like_hdf5() {
        assert_eq!(join_path("/", "obs"), "/obs");
        assert_eq!(join_path("/obs", "cell_type"), "/obs/cell_type");
    }
}
