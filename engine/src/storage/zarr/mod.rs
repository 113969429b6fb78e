//! Zarr (v2 and v3) as a storage backend: directory stores and zip stores read, groups and
//! arrays implementing the storage traits ([`Group`], [`Array`]); directory stores written
//! ([`write`]: [`GroupWriter`](super::GroupWriter) and [`ArrayWriter`](super::ArrayWriter)).
//!
//! [`open`] opens a store and returns its root group. The store's format is the root's
//! (`zarr.json` for v3, `.zgroup` for v2), and every node below is read in it, as zarr-python
//! reads a hierarchy. Metadata documents and attributes are parsed here ([`meta`], [`attrs`]);
//! chunks are decoded by the `zarrs` crate ([`read`]: blosc, gzip, zlib, zstd, crc32c,
//! sharding, v2 `vlen-utf8` object arrays), after [`claim`] has checked what the array's
//! metadata claims against the chunks stored ([`store`] counts them). Range reads of the
//! layout anndata writes by default are decoded by [`shards`] instead, without `zarrs`'
//! intermediate buffers.
//!
//! Element types read: bool, all integers, float16, float32/64, variable-length
//! strings (v3 `string`, v2 `|O` with the `vlen-utf8` filter) and fixed-length UTF-32 strings
//! (`<U`); record arrays of those ([`records`]). Others (complex, dates, byte strings) are
//! [`crate::Error::Unsupported`], naming the data type.

pub(crate) mod attrs;
pub(crate) mod claim;
pub(crate) mod guard;
pub(crate) mod meta;
pub(crate) mod read;
pub(crate) mod records;
pub(crate) mod shards;
pub(crate) mod store;
pub(crate) mod write;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_anndata;

use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use self::attrs::{attr_value, OrderedObject};
use self::guard::{decoded_limit, Layout, SizeGuard};
use self::meta::{node_exists, read_node, ArrayMeta, NodeMeta};
use self::read::{open_zarrs, read_bytes, read_region, read_region_into, ZarrsArray};
use self::shards::ShardedZstd;
use self::store::Store;
use super::{join_path, Array, ArrayStorage, Group, MemberKind, Node, ObjectId, StoredType};
use crate::data::{ArrayData, AttrValue, DType, RawData};
use crate::error::ResultExt;
use crate::paged::ReadPath;
use crate::{Error, Result};

/// Opens the Zarr store at `path` (a directory, or a zip file such as `*.zarr.zip`) read-only
/// and returns its root group.
///
/// A missing or unreadable path is a plain I/O error; a path that is neither a directory nor a
/// regular file, an invalid argument; a directory or file that holds no Zarr hierarchy (or
/// whose root is an array), a format error.
pub(crate) fn open(path: &Path) -> Result<Box<dyn Group>> {
    let store = Arc::new(Store::open(path)?);
    match read_node(&store, "").in_element("/")? {
        Some(NodeMeta::Group(attrs)) => Ok(Box::new(ZarrGroup {
            store,
            path: "/".to_owned(),
            attrs,
        })),
        Some(NodeMeta::Array(_)) => Err(Error::malformed(
            "the store's root is an array, not a group (an AnnData store's root is a group)",
        )),
        None => Err(Error::malformed("the store's root has no metadata")),
    }
}

/// How the chunk manager's store reader reads `array`: [`ReadPath::Shards`] for a Zarr array
/// in the layout [`shards`] decodes, else [`ReadPath::Store`].
pub(crate) fn read_path(array: &dyn Array) -> ReadPath {
    match array.as_any().downcast_ref::<ZarrArray>() {
        Some(a) if a.shards().is_some() => ReadPath::Shards,
        _ => ReadPath::Store,
    }
}

/// The store prefix of the node at `path` (`/` → `""`, `/obs/x` → `obs/x/`).
fn prefix_of(path: &str) -> String {
    match path.trim_start_matches('/') {
        "" => String::new(),
        p => format!("{p}/"),
    }
}

/// Refuses member names that are not one path segment of a Zarr hierarchy.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(Error::invalid(format!(
            "'{name}' is not the name of a member of a group"
        )));
    }
    Ok(())
}

fn attr_names(attrs: &OrderedObject) -> Vec<String> {
    attrs.names()
}

fn attr(attrs: &OrderedObject, name: &str) -> Result<Option<AttrValue>> {
    attrs.get(name).map(|v| attr_value(name, v)).transpose()
}

/// A Zarr group.
pub(crate) struct ZarrGroup {
    store: Arc<Store>,
    path: String,
    attrs: OrderedObject,
}

impl ZarrGroup {
    fn child(&self, name: &str) -> Result<(String, Option<NodeMeta>)> {
        check_name(name)?;
        let path = join_path(&self.path, name);
        let meta = read_node(&self.store, &prefix_of(&path)).in_element(&path)?;
        Ok((path, meta))
    }

    fn missing(&self, name: &str) -> Error {
        Error::malformed(format!("missing member '{name}'")).in_element(&self.path)
    }
}

impl Node for ZarrGroup {
    fn path(&self) -> String {
        self.path.clone()
    }

    fn attr_names(&self) -> Result<Vec<String>> {
        Ok(attr_names(&self.attrs))
    }

    fn attr(&self, name: &str) -> Result<Option<AttrValue>> {
        attr(&self.attrs, name)
    }
}

impl Group for ZarrGroup {
    fn member_names(&self) -> Result<Vec<String>> {
        let prefix = prefix_of(&self.path);
        let mut names = Vec::new();
        for name in self.store.child_names(&prefix).in_element(&self.path)? {
            if node_exists(&self.store, &format!("{prefix}{name}/")).in_element(&self.path)? {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn member_kind(&self, name: &str) -> Result<Option<MemberKind>> {
        if check_name(name).is_err() {
            return Ok(None);
        }
        Ok(match self.child(name)?.1 {
            None => None,
            Some(NodeMeta::Group(_)) => Some(MemberKind::Group),
            Some(NodeMeta::Array(_)) => Some(MemberKind::Array),
        })
    }

    fn group(&self, name: &str) -> Result<Box<dyn Group>> {
        match self.child(name)? {
            (path, Some(NodeMeta::Group(attrs))) => Ok(Box::new(ZarrGroup {
                store: self.store.clone(),
                path,
                attrs,
            })),
            (path, Some(NodeMeta::Array(_))) => {
                Err(Error::invalid("is an array, not a group").in_element(path))
            }
            (_, None) => Err(self.missing(name)),
        }
    }

    fn array(&self, name: &str) -> Result<Box<dyn Array>> {
        match self.child(name)? {
            (path, Some(NodeMeta::Array(meta))) => Ok(Box::new(ZarrArray {
                store: self.store.clone(),
                path,
                meta,
                zarrs: OnceLock::new(),
                claim: OnceLock::new(),
                shards: OnceLock::new(),
            })),
            (path, Some(NodeMeta::Group(_))) => {
                Err(Error::invalid("is a group, not an array").in_element(path))
            }
            (_, None) => Err(self.missing(name)),
        }
    }

    fn object_id(&self) -> Result<Option<ObjectId>> {
        self.store
            .dir_id(&prefix_of(&self.path))
            .in_element(&self.path)
    }
}

/// A Zarr array. The `zarrs` array (its codec chain) is built on the first read, so that
/// attributes and shape of an array whose codecs annpage cannot decode can still be read.
pub(crate) struct ZarrArray {
    store: Arc<Store>,
    path: String,
    meta: Box<ArrayMeta>,
    zarrs: OnceLock<ZarrsArray>,
    /// The element count, once the claim was checked.
    claim: OnceLock<u64>,
    /// The reader of anndata's default layout, when the array is in it (decided on first use).
    shards: OnceLock<Option<ShardedZstd>>,
}

impl ZarrArray {
    fn zarrs(&self) -> Result<&ZarrsArray> {
        if let Some(a) = self.zarrs.get() {
            return Ok(a);
        }
        if let StoredType::Unsupported(what) = &self.meta.ty {
            return Err(Error::unsupported(what.clone()));
        }
        let meta = &self.meta;
        if let Layout::Unchecked(why) = &meta.compressed {
            return Err(Error::unsupported(why.clone()));
        }
        // Compressed values are checked against the decoded size of one (inner) chunk.
        let values = meta
            .read_chunk()
            .iter()
            .fold(1u64, |acc, &d| acc.saturating_mul(d));
        let limit = decoded_limit(values, claim::stored_bytes(&meta.ty));
        let storage = SizeGuard::wrap(self.store.readable(), meta.compressed.clone(), limit);
        let a = open_zarrs(storage, &self.path, meta.zarrs_metadata()?)?;
        Ok(self.zarrs.get_or_init(|| a))
    }

    /// The reader of anndata's default layout (1-d numbers in shards of zstd inner chunks),
    /// when the array is laid out so; reads of other arrays go through `zarrs`.
    fn shards(&self) -> Option<&ShardedZstd> {
        self.shards
            .get_or_init(|| {
                let elem = match &self.meta.ty {
                    StoredType::Int { size, .. }
                    | StoredType::Float {
                        size: size @ (4 | 8),
                    } => *size,
                    _ => return None,
                };
                let layout = shards::layout(&self.meta.v3_document()?, elem)?;
                let prefix = prefix_of(&self.path);
                Some(ShardedZstd::new(&self.store, prefix, layout))
            })
            .as_ref()
    }

    fn claimed(&self) -> Result<u64> {
        if let Some(&count) = self.claim.get() {
            return Ok(count);
        }
        let count = claim::check_claim(&self.store, &prefix_of(&self.path), &self.meta)?;
        Ok(*self.claim.get_or_init(|| count))
    }

    /// The region of rows `rows` and all of the other axes, for a range read (of a 1-d or 2-d
    /// array of numbers or bools, within its first axis).
    fn row_region(&self, rows: &Range<usize>) -> Result<Vec<Range<u64>>> {
        let shape = &self.meta.shape;
        if rows.start > rows.end
            || shape.len() > 2
            || shape.first().is_none_or(|&n| rows.end as u64 > n)
        {
            return Err(Error::invalid(format!(
                "rows {rows:?} are outside the first axis of shape {shape:?} (range reads \
                 take a 1-d or 2-d array)"
            )));
        }
        let ty = &self.meta.ty;
        if ty.dtype().is_none_or(|d| d == DType::String) {
            return Err(unsupported_rows(ty));
        }
        let first = rows.start as u64..rows.end as u64;
        Ok(std::iter::once(first)
            .chain(shape[1..].iter().map(|&n| 0..n))
            .collect())
    }

    /// Reads `ranges` (one per axis, within the shape) after checking the buffer's size.
    fn read_ranges(&self, ranges: Vec<Range<u64>>, what: &str) -> Result<ArrayData> {
        let values = ranges
            .iter()
            .try_fold(1u64, |acc, r| acc.checked_mul(r.end - r.start))
            .ok_or_else(|| Error::malformed("the region's value count overflows"))?;
        claim::check_buffer(values, &self.meta.ty, what)?;
        read_region(self.zarrs()?, &self.meta.ty, &ranges)
    }
}

fn unsupported_rows(ty: &StoredType) -> Error {
    Error::unsupported(format!("range reads of {}", ty.describe()))
}

impl Node for ZarrArray {
    fn path(&self) -> String {
        self.path.clone()
    }

    fn attr_names(&self) -> Result<Vec<String>> {
        Ok(attr_names(&self.meta.attrs))
    }

    fn attr(&self, name: &str) -> Result<Option<AttrValue>> {
        attr(&self.meta.attrs, name)
    }
}

impl Array for ZarrArray {
    fn shape(&self) -> Result<Vec<usize>> {
        claim::usize_shape(&self.meta.shape).in_element(&self.path)
    }

    fn stored_type(&self) -> Result<StoredType> {
        Ok(self.meta.ty.clone())
    }

    fn check_claim(&self) -> Result<()> {
        self.claimed().map(drop).in_element(&self.path)
    }

    fn read(&self) -> Result<ArrayData> {
        let read = || {
            self.zarrs()?;
            self.claimed()?;
            let ranges = self.meta.shape.iter().map(|&n| 0..n).collect();
            self.read_ranges(ranges, "reading it whole")
        };
        read().in_element(&self.path)
    }

    fn read_raw(&self) -> Result<RawData> {
        if !matches!(self.meta.ty, StoredType::Compound { .. }) {
            return self.read().map(RawData::Array);
        }
        let read = || {
            // The claim's check gives the record count.
            let values = self.claimed()?;
            let shape = claim::usize_shape(&self.meta.shape)?;
            claim::check_buffer(values, &self.meta.ty, "reading its records")?;
            let bytes = read_bytes(self.zarrs()?, &self.meta.shape)?;
            records::decode(&bytes, &self.meta.ty, &shape)
        };
        read().in_element(&self.path)
    }

    fn read_rows(&self, rows: Range<usize>) -> Result<ArrayData> {
        let ranges = self.row_region(&rows)?;
        let read = || {
            self.claimed()?;
            self.read_ranges(ranges, "reading its rows")
        };
        read().in_element(&self.path)
    }

    /// Decodes straight into `out`.
    fn read_rows_into(&self, rows: Range<usize>, out: &mut [u8]) -> Result<()> {
        let ranges = self.row_region(&rows)?;
        let ty = &self.meta.ty;
        let mut read = || {
            self.claimed()?;
            let size = ty.size().ok_or_else(|| unsupported_rows(ty))?;
            if let Some(shards) = self.shards() {
                if shards.read_into(ranges[0].clone(), out)? {
                    return Ok(());
                }
            }
            read_region_into(self.zarrs()?, &ranges, size, out)
        };
        read().in_element(&self.path)
    }

    fn chunk_rows(&self) -> Result<Option<usize>> {
        Ok(self
            .meta
            .read_chunk()
            .first()
            .and_then(|&c| usize::try_from(c).ok()))
    }

    fn storage(&self) -> Result<ArrayStorage> {
        let chunk = self
            .meta
            .read_chunk()
            .iter()
            .map(|&c| usize::try_from(c).map_err(|_| Error::malformed("chunk too large")))
            .collect::<Result<Vec<usize>>>()
            .in_element(&self.path)?;
        Ok(ArrayStorage {
            layout: if self.meta.inner.is_some() {
                "sharded"
            } else {
                "chunked"
            },
            chunk: Some(chunk),
            filters: self.meta.codec_names(),
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
