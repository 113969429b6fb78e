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
pub mod inspect;
pub mod probe;
mod read;
pub mod stream;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::data::{ArrayData, Column, DataFrame, Element, Mapping, Matrix};
use crate::error::ResultExt;
use crate::format::read::{
    read_dataframe, read_dataframe_column, read_dataframe_index, read_matrix,
};
use crate::format::read_element;
use crate::paged::{open_matrix_with, MatrixSource, ReadOptions};
use crate::storage::Group;
pub use crate::storage::StoreKind;
use crate::{Error, Result};

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

/// An AnnData file open read-only. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct File {
    path: PathBuf,
    /// `path` made absolute when opened: where the file is, whatever the working directory
    /// becomes.
    location: PathBuf,
    store: Store,
    /// What the path named when it was opened (see [`File::check_unchanged`]).
    opened: Option<Identity>,
}

/// A file's identity and last change: device, inode, modification time and length.
type Identity = (u64, u64, Option<std::time::SystemTime>, u64);

/// The identity of what `path` names now, if it can be told.
#[cfg(unix)]
fn identity(path: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.modified().ok(), m.len()))
}

/// Without inodes: the modification time and length only.
#[cfg(not(unix))]
fn identity(path: &Path) -> Option<Identity> {
    let m = std::fs::metadata(path).ok()?;
    Some((0, 0, m.modified().ok(), m.len()))
}

/// What holds a file's element tree.
#[derive(Clone)]
enum Store {
    /// An HDF5 file (`.h5ad`).
    H5(hdf5::File),
    /// The root group of a Zarr store.
    Zarr(Arc<dyn Group>),
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File").field("path", &self.path).finish()
    }
}

impl File {
    /// Opens `path` read-only: a directory or a `.zip` file as a Zarr store (v2 or v3), any
    /// other path as an HDF5 file (`.h5ad`). An I/O error when it cannot be read, an
    /// invalid-argument error for a FIFO or device (never opened), a format error when it
    /// holds no readable store. Errors name the file.
    pub fn open(path: impl AsRef<Path>) -> Result<File> {
        let path = path.as_ref();
        let location = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let opened = identity(&location);
        let store = match StoreKind::of_path(path) {
            StoreKind::Zarr => {
                Store::Zarr(Arc::from(crate::storage::zarr::open(path).in_file(path)?))
            }
            StoreKind::H5ad => Store::H5(crate::storage::h5::open_read(path).in_file(path)?),
        };
        Ok(File {
            path: path.to_path_buf(),
            location,
            store,
            opened,
        })
    }

    /// Fails if the path no longer names the file as it was opened: replaced (another
    /// writer's rename) or changed in place since. A rewrite of the file checks this first,
    /// so that two writers cannot lose each other's changes without a word.
    pub fn check_unchanged(&self) -> Result<()> {
        let why = match (self.opened, identity(&self.location)) {
            (Some(then), Some(now)) if then != now => {
                "the file changed since this handle opened it (another writer?)"
            }
            (Some(_), None) => "the file is gone (moved or deleted) since this handle opened it",
            _ => return Ok(()),
        };
        Err(Error::invalid(format!(
            "{why}: nothing written; open it again to apply the changes to what it holds now"
        ))
        .in_file(&self.path))
    }

    /// Where the file is: its path made absolute when it was opened.
    pub fn location(&self) -> &Path {
        &self.location
    }

    /// What stores the file.
    pub fn kind(&self) -> StoreKind {
        match self.store {
            Store::H5(_) => StoreKind::H5ad,
            Store::Zarr(_) => StoreKind::Zarr,
        }
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Scans the element tree from metadata (see [`Layout`]); errors name the file.
    pub fn probe(&self) -> Result<Layout> {
        Layout::scan(self.root()).in_file(&self.path)
    }

    /// Whether the file looks like an AnnData object (`obs` and `var` at its root), whatever
    /// its name: a `.h5` file is a 10x matrix or an `.h5ad` under another name.
    pub fn holds_anndata(&self) -> bool {
        ["obs", "var"]
            .iter()
            .all(|m| matches!(self.root().member_kind(m), Ok(Some(_))))
    }

    /// The root group.
    pub(crate) fn root(&self) -> &dyn Group {
        match &self.store {
            Store::H5(h5) => &**h5,
            Store::Zarr(root) => root.as_ref(),
        }
    }

    /// The HDF5 file, for the engine's writers that copy HDF5 objects; an error for other
    /// stores.
    pub(crate) fn h5(&self) -> Result<&hdf5::File> {
        match &self.store {
            Store::H5(h5) => Ok(h5),
            Store::Zarr(_) => Err(Error::unsupported(
                "editing a Zarr store in place (only .h5ad files are edited in place)",
            )),
        }
    }

    /// Runs `f` on the group at `path` (`/` for the root); an error naming it when there is
    /// none.
    fn in_group<T>(&self, path: &str, f: impl FnOnce(&dyn Group) -> Result<T>) -> Result<T> {
        let mut names = path.split('/').filter(|n| !n.is_empty());
        let Some(first) = names.next() else {
            return f(self.root());
        };
        let group = self
            .root()
            .group(first)
            .and_then(|g| names.try_fold(g, |g, name| g.group(name)))
            .in_element(path)?;
        f(group.as_ref())
    }

    /// The element stored as member `name` of the group at `parent`, whatever its encoding.
    pub fn read_element(&self, parent: &str, name: &str) -> Result<Element> {
        self.in_group(parent, |g| read_element(g, name))
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
        self.in_group(&path, |inner| {
            let mut mapping = Mapping::new();
            for key in inner.member_names().in_element(&path)? {
                if !skip.contains(&key) {
                    let value = read_element(inner, &key)?;
                    mapping.insert(key, value);
                }
            }
            Ok(Element::Dict(mapping))
        })
    }

    /// The `encoding-type` of member `name` of the group at `parent` (`None` when it has
    /// none), from metadata only.
    pub fn encoding(&self, parent: &str, name: &str) -> Result<Option<String>> {
        self.in_group(parent, |g| probe::encoding_of(g, name))
    }

    /// The index (member `key`) of the data frame at `frame`, as stored.
    pub fn read_frame_index(&self, frame: &str, key: &str) -> Result<ArrayData> {
        self.in_group(frame, |g| read_dataframe_index(g, key))
    }

    /// Column `name` of the data frame at `frame`.
    pub fn read_frame_column(&self, frame: &str, name: &str) -> Result<Column> {
        self.in_group(frame, |g| read_dataframe_column(g, name))
    }

    /// The data frame `name` of the group at `parent`, as stored (index not turned into
    /// strings).
    pub(crate) fn read_frame(&self, parent: &str, name: &str) -> Result<DataFrame> {
        self.in_group(parent, |g| read_dataframe(g, name))
    }

    /// The matrix `name` of the group at `parent`, read whole.
    pub(crate) fn read_matrix(&self, parent: &str, name: &str) -> Result<Matrix> {
        self.in_group(parent, |g| read_matrix(g, name))
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
        self.in_group(parent, |g| open_matrix_with(g, name, options))
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
        self.in_group(parent, |g| {
            if !probe::looks_like_matrix(g, name)? {
                return Ok(None);
            }
            Ok(open_matrix_with(g, name, options).ok())
        })
    }
}
