//! The storage seam: a file as a tree of groups and arrays with attributes, whatever stores it.
//!
//! [`Group`] and [`Array`] are what the format layer reads elements through: list and open
//! members, read attributes (as [`AttrValue`]s), read an array whole into
//! [`ArrayData`]. They are shaped by what both HDF5 and Zarr have — groups with attributes,
//! chunked n-d arrays, no links needed — and know nothing of caches or AnnData encodings.
//! Backend-specific extras have defaults (an HDF5 object reference in an attribute,
//! [`Array::referenced`]; the identity that lets a walk refuse a group reached twice,
//! [`Group::object_id`]).
//!
//! HDF5 is the first backend (the private `h5` module: every libhdf5 call of the format layer
//! lives there); its groups and datasets implement the traits directly. Zarr (v2 and v3,
//! directory and zip stores) is the second (the private `zarr` module, on the `zarrs` crate).

pub(crate) mod h5;
pub mod types;
pub mod write;
pub(crate) mod zarr;

use std::ops::Range;
use std::path::Path;

use crate::data::{ArrayData, AttrValue, Attrs, CompactString, RawData};
use crate::error::ResultExt;
use crate::{Error, Result};
pub use types::{CompoundField, StoredType};
pub use write::{ArrayOptions, ArrayWriter, AttrWriter, Compression, GroupWriter};
pub use zarr::write::{ZarrCompression, ZarrFormat, ZarrOptions};

/// What a member of a group is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberKind {
    /// A group (HDF5 group, Zarr group).
    Group,
    /// An array (HDF5 dataset, Zarr array).
    Array,
}

/// Attributes and a path: what groups and arrays share.
pub trait Node: Send + Sync {
    /// The node's path from the root (`/` for the root, `/obs/cell_type` below it).
    fn path(&self) -> String;

    /// The names of the node's attributes, in the order the store lists them.
    fn attr_names(&self) -> Result<Vec<String>>;

    /// Reads attribute `name` (a scalar gives a 0-d array), or `None` when there is none.
    fn attr(&self, name: &str) -> Result<Option<AttrValue>>;

    /// Whether the node has attribute `name`.
    fn has_attr(&self, name: &str) -> Result<bool> {
        Ok(self.attr_names()?.iter().any(|n| n == name))
    }

    /// Reads a string attribute (a scalar or a one-element array), if present; any other value
    /// is an [`Error::Malformed`].
    fn string_attr(&self, name: &str) -> Result<Option<String>> {
        self.attr(name)?.map(|v| one_string(name, v)).transpose()
    }

    /// Reads the attributes `names` that are present (`None` for the others), in order, as
    /// [`Node::attr`] of each would; a store may read them together (HDF5: one walk of the
    /// object's header for all their strings).
    fn attrs_of(&self, names: &[&str]) -> Result<Vec<Option<AttrValue>>> {
        names.iter().map(|n| self.attr(n)).collect()
    }

    /// [`Node::string_attr`] of each of `names`, read together ([`Node::attrs_of`]).
    fn string_attrs(&self, names: &[&str]) -> Result<Vec<Option<String>>> {
        names
            .iter()
            .zip(self.attrs_of(names)?)
            .map(|(name, v)| v.map(|v| one_string(name, v)).transpose())
            .collect()
    }

    /// Reads every attribute, in the order of [`Node::attr_names`].
    fn attrs(&self) -> Result<Attrs> {
        self.attr_names()?
            .into_iter()
            .map(|name| {
                let value = self
                    .attr(&name)?
                    .ok_or_else(|| Error::malformed(format!("attribute '{name}' vanished")))?;
                Ok((name, value))
            })
            .collect()
    }
}

/// The string attribute `name` holds: a scalar or a one-element array of strings.
fn one_string(name: &str, value: AttrValue) -> Result<String> {
    match value {
        ArrayData::String(a) if a.len() == 1 => Ok(a.into_iter().next().unwrap_or_default().into()),
        other => Err(Error::malformed(format!(
            "attribute '{name}' should be a string, found {} of shape {:?}",
            other.dtype(),
            other.shape()
        ))),
    }
}

/// A group: named members (groups or arrays) and attributes.
pub trait Group: Node {
    /// The members' names, in the order the store lists them.
    fn member_names(&self) -> Result<Vec<String>>;

    /// What member `name` is, or `None` when there is no such member.
    fn member_kind(&self, name: &str) -> Result<Option<MemberKind>>;

    /// Opens member `name` as a group.
    fn group(&self, name: &str) -> Result<Box<dyn Group>>;

    /// Opens member `name` as an array.
    fn array(&self, name: &str) -> Result<Box<dyn Array>>;

    /// Whether member `name` exists.
    fn contains(&self, name: &str) -> Result<bool> {
        Ok(self.member_kind(name)?.is_some())
    }

    /// An id equal for every path that reaches this same group (HDF5 hard links, directory
    /// links), so that walks refuse cycles; `None` when the store cannot alias groups.
    fn object_id(&self) -> Result<Option<ObjectId>> {
        Ok(None)
    }
}

/// An n-d array: a shape, an element type, values and attributes.
pub trait Array: Node {
    /// The array's shape (empty for a scalar).
    fn shape(&self) -> Result<Vec<usize>>;

    /// The stored element type.
    fn stored_type(&self) -> Result<StoredType>;

    /// Checks the size the array's shape claims against what the store holds (a small store
    /// can claim a huge array whose unwritten chunks read as fill value); errors name the
    /// array. Done before anything is sized by the shape.
    fn check_claim(&self) -> Result<()>;

    /// Reads the whole array (the size it claims is checked before anything is allocated).
    fn read(&self) -> Result<ArrayData>;

    /// Rows `rows` of the first axis (all of every other axis) of a 1-d or 2-d array of numbers
    /// or bools; `rows` must lie within the first axis. The chunk manager pages matrices in
    /// through this where the backend has no faster reader of its own.
    fn read_rows(&self, rows: Range<usize>) -> Result<ArrayData>;

    /// [`Array::read_rows`] written into `out` as native bytes (bools as 0 or 1), which must
    /// hold exactly the rows' values (of [`StoredType::dtype`]): readers that decode into
    /// memory the caller owns skip an allocation and a copy. By default the rows are read,
    /// then copied.
    fn read_rows_into(&self, rows: Range<usize>, out: &mut [u8]) -> Result<()> {
        self.read_rows(rows)?
            .copy_bytes_into(out)
            .in_element(self.path())
    }

    /// An id equal for every path that reaches this same array (HDF5 hard links), so that a
    /// read refuses an array linked twice; `None` when the store cannot alias arrays.
    fn object_id(&self) -> Result<Option<ObjectId>> {
        Ok(None)
    }

    /// How many rows of the first axis one storage chunk holds, when the array is chunked:
    /// reads aligned to it decode each chunk once.
    fn chunk_rows(&self) -> Result<Option<usize>> {
        Ok(None)
    }

    /// Reads the whole array, compound (structured) values field by field.
    fn read_raw(&self) -> Result<RawData> {
        self.read().map(RawData::Array)
    }

    /// The array an attribute refers to by an object reference (HDF5's 0.7-era categoricals),
    /// or `None` when the attribute is not a reference.
    fn referenced(&self, attr: &str) -> Result<Option<Box<dyn Array>>> {
        let _ = attr;
        Ok(None)
    }

    /// How the values are laid out and encoded in the store (for descriptions such as
    /// `annpage info`).
    fn storage(&self) -> Result<ArrayStorage>;

    /// The array as [`Any`](std::any::Any), for layers above that read some backends'
    /// arrays with readers of their own (the chunk manager's direct HDF5 reader).
    fn as_any(&self) -> &dyn std::any::Any;

    /// The number of values (the product of the shape).
    fn len(&self) -> Result<usize> {
        Ok(self.shape()?.iter().product())
    }

    /// Whether the array holds no values.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// How an array's values are laid out and encoded in its store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayStorage {
    /// `contiguous`, `chunked`, `compact` or `sharded`.
    pub layout: &'static str,
    /// The shape of one chunk (the inner chunk of a sharded array), when chunked.
    pub chunk: Option<Vec<usize>>,
    /// The filters or codecs that encode the values, e.g. `["gzip(4)"]`, `["zstd(0)"]`.
    pub filters: Vec<String>,
}

/// The kinds of store annpage reads and writes.
///
/// ```
/// use annpage_engine::storage::StoreKind;
/// assert_eq!(StoreKind::of_path("a/b.h5ad".as_ref()), StoreKind::H5ad);
/// assert_eq!(StoreKind::of_path("b.zarr.zip".as_ref()), StoreKind::Zarr);
/// assert_eq!(StoreKind::of_path("new.zarr".as_ref()), StoreKind::Zarr);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// An HDF5 file, as anndata's `write_h5ad` writes.
    #[default]
    H5ad,
    /// A Zarr store (v2 or v3; a directory, or a zip file read-only), as `write_zarr` writes.
    Zarr,
}

impl StoreKind {
    /// The kind a path names: a directory, or a name ending in `.zarr` or `.zip`, is a Zarr
    /// store; anything else an HDF5 file.
    pub fn of_path(path: &Path) -> StoreKind {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if path.is_dir() || name.ends_with(".zarr") || name.ends_with(".zip") {
            StoreKind::Zarr
        } else {
            StoreKind::H5ad
        }
    }
}

/// Identifies one group of an open store: the same group reached by two paths has the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectId {
    /// Which file or device the group is on.
    pub(crate) volume: u64,
    /// The group within it.
    pub(crate) token: [u8; 16],
}

/// A stored string's bytes as text; invalid UTF-8 is an error quoting them (lossily).
pub(crate) fn utf8(bytes: &[u8]) -> Result<CompactString> {
    std::str::from_utf8(bytes)
        .map(CompactString::from)
        .map_err(|_| {
            Error::malformed(format!(
                "string is not valid UTF-8: {:?}",
                String::from_utf8_lossy(bytes)
            ))
        })
}

/// `parent/name` as a store path (`/name` under the root).
pub(crate) fn join_path(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Fails unless `path` is a regular file (or a link to one), without opening it: a plain I/O
/// error when it cannot be looked at (missing, no permission), an invalid-argument error for a
/// directory, FIFO, socket or device (opening a FIFO blocks until the other end comes).
pub(crate) fn check_regular_file(path: &Path) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_path_joins_like_hdf5() {
        assert_eq!(join_path("/", "obs"), "/obs");
        assert_eq!(join_path("/obs", "cell_type"), "/obs/cell_type");
    }
}
