//! An `.h5ad` file as the layers above storage see it: a tree of elements named by path.
//!
//! [`File`] is an open file read element by element; [`File::probe`] scans its element tree once,
//! from metadata, into a [`Layout`] (what each element is and where).
//! [`stream`] writes a file element by element, matrices chunk by chunk; [`copy`] writes a
//! file anew from an open one and a changed layout. Nothing above this module sees an HDF5 type:
//! elements are named by their paths (`/obsm/X_pca`), and a second storage format plugs in
//! here.
//!
//! ```
//! use annpage_engine::file::File;
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/all_elements.h5ad");
//! let file = File::open(path)?;
//! let layout = file.probe()?;
//! assert_eq!((layout.n_obs, layout.n_vars), (40, 12));
//! let pca = file.read_element("/obsm", "X_pca")?;
//! # Ok::<(), annpage_engine::Error>(())
//! ```

pub mod copy;
pub mod probe;
mod read;
pub mod stream;

use std::path::{Path, PathBuf};

use crate::data::{ArrayData, Column, Element, Mapping};
use crate::error::ResultExt;
use crate::format::read::{read_dataframe_column, read_dataframe_index};
use crate::format::read_element;
use crate::paged::{open_matrix_with, MatrixSource, ReadOptions};
use crate::Result;

pub use probe::Layout;
pub use read::read_h5ad;

/// Joins an element's path and a member's name: `join("/", "obs") == "/obs"`.
///
/// ```
/// use annpage_engine::file::join;
/// assert_eq!(join("/", "obs"), "/obs");
/// assert_eq!(join("/obs", "cell_type"), "/obs/cell_type");
/// ```
pub fn join(parent: &str, name: &str) -> String {
    crate::storage::join_path(parent, name)
}

/// Fails unless `path` is a regular file this process may open for writing (never opening a
/// FIFO or device, which could block); errors name the file.
pub fn check_writable(path: &Path) -> Result<()> {
    let check = || -> Result<()> {
        crate::storage::check_regular_file(path)?;
        std::fs::OpenOptions::new().write(true).open(path)?;
        Ok(())
    };
    check().in_file(path)
}

/// An `.h5ad` file open read-only. Cheap to clone; `Send + Sync`.
#[derive(Clone, Debug)]
pub struct File {
    path: PathBuf,
    h5: hdf5::File,
}

impl File {
    /// Opens `path` read-only: an I/O error when it cannot be read, an invalid-argument error
    /// when it is not a regular file (a directory, FIFO or device is never opened), a format
    /// error when it is not a readable HDF5 file. Errors name the file.
    pub fn open(path: impl AsRef<Path>) -> Result<File> {
        let path = path.as_ref();
        let h5 = crate::storage::h5::open_read(path).in_file(path)?;
        Ok(File {
            path: path.to_path_buf(),
            h5,
        })
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Scans the element tree from metadata (see [`Layout`]); errors name the file.
    pub fn probe(&self) -> Result<Layout> {
        Layout::scan(&*self.h5).in_file(&self.path)
    }

    /// The HDF5 file, for the engine's writers.
    pub(crate) fn h5(&self) -> &hdf5::File {
        &self.h5
    }

    /// The group at `path`; an error naming it when there is none.
    pub(crate) fn group(&self, path: &str) -> Result<hdf5::Group> {
        self.h5.group(path).in_element(path)
    }

    /// The element stored as member `name` of the group at `parent`, whatever its encoding.
    pub fn read_element(&self, parent: &str, name: &str) -> Result<Element> {
        read_element(&self.group(parent)?, name)
    }

    /// Like [`File::read_element`] for a mapping (`dict`) element, without its members `skip`.
    pub fn read_mapping_without(
        &self,
        parent: &str,
        name: &str,
        skip: &[String],
    ) -> Result<Element> {
        if skip.is_empty() {
            return self.read_element(parent, name);
        }
        let path = join(parent, name);
        let inner = self.group(&path)?;
        let mut mapping = Mapping::new();
        for key in inner.member_names().in_element(&path)? {
            if !skip.contains(&key) {
                let value = read_element(&inner, &key)?;
                mapping.insert(key, value);
            }
        }
        Ok(Element::Dict(mapping))
    }

    /// The index (member `key`) of the data frame at `frame`, as stored.
    pub fn read_frame_index(&self, frame: &str, key: &str) -> Result<ArrayData> {
        read_dataframe_index(&self.group(frame)?, key)
    }

    /// Column `name` of the data frame at `frame`.
    pub fn read_frame_column(&self, frame: &str, name: &str) -> Result<Column> {
        read_dataframe_column(&self.group(frame)?, name)
    }

    /// The datasets of matrix element `name` of the group at `parent`, opened for block reads
    /// with the readers `options` choose (see [`crate::paged::MatrixSource`]); an error when
    /// it is not a matrix.
    pub fn open_matrix(
        &self,
        parent: &str,
        name: &str,
        options: &ReadOptions,
    ) -> Result<MatrixSource> {
        open_matrix_with(&self.group(parent)?, name, options)
    }

    /// [`File::open_matrix`] for an element that may not be a matrix (an `obsm` entry, a
    /// neighbour graph in `uns`): `Ok(None)` when its metadata says it is not one (a dense
    /// array of another rank or dtype, a data frame, a dict), or when it cannot be opened as
    /// one.
    pub fn try_open_matrix(
        &self,
        parent: &str,
        name: &str,
        options: &ReadOptions,
    ) -> Result<Option<MatrixSource>> {
        let g = self.group(parent)?;
        if !probe::looks_like_matrix(&g, name)? {
            return Ok(None);
        }
        Ok(open_matrix_with(&g, name, options).ok())
    }
}
