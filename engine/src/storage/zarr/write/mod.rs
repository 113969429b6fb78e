//! Writing Zarr (v2 and v3) directory stores as anndata 0.12 with zarr-python 3.1 writes them,
//! behind the storage seam's [`GroupWriter`] and [`ArrayWriter`]: the format layer writes
//! whole AnnData objects into them unchanged.
//!
//! - [`create`] makes a new directory store and returns its root group.
//! - Groups are `.zgroup` + `.zattrs` (v2) or `zarr.json` (v3) documents; attributes are JSON
//!   (scalars, lists, bools; non-finite floats are refused, JSON has no form for them).
//! - Arrays: see [`meta`] for their metadata (dtypes, fill values, codecs, chunk and shard
//!   shapes) and [`array`] for how values are stored.
//! - Compression: [`ArrayOptions::compression`] gives gzip or nothing (LZF is HDF5's and
//!   refused); [`ZarrOptions::compression`] overrides it store-wide, zstd included. Scalars
//!   are not compressed unless the override says so.
//! - anndata's `None` ([`GroupWriter::write_null`]) is what anndata writes for it in Zarr: a
//!   0-d `bool` array with no chunk stored, whatever the dtype asked.
//! - No consolidated metadata is written: zarr-python and anndata read stores without it.
//!
//! Errors carry no element path: callers in [`crate::format`] add it.

mod array;
pub(super) mod meta;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_anndata;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    Bytes, MaybeBytesIterator, OffsetBytesIterator, ReadableStorageTraits, StorageError, StoreKey,
    StorePrefix, WritableStorageTraits,
};

use super::store::stored_key;

use self::array::{zarr_error, ZarrArrayWriter};
use self::meta::{attr_json, group_metadata_v3, ArraySpec};
use super::records;
use crate::data::{ArrayData, AttrValue, DType, RawData};
use crate::storage::{join_path, ArrayOptions, ArrayWriter, AttrWriter, GroupWriter};
use crate::{Error, Result};

/// Which version of the Zarr format a store is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ZarrFormat {
    /// Zarr v2 (`.zgroup`, `.zarray`, `.zattrs`): anndata 0.12's default.
    V2,
    /// Zarr v3 (`zarr.json`), with sharding available.
    #[default]
    V3,
}

/// A compressor for every array of a store, overriding [`ArrayOptions::compression`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZarrCompression {
    /// gzip at a level 0–9 (numcodecs' `gzip` in v2, the `gzip` codec in v3).
    Gzip(u8),
    /// Zstandard at a level (zarr-python 3 compresses v3 arrays with zstd level 0 when not
    /// told otherwise).
    Zstd(i32),
}

/// How a Zarr store is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZarrOptions {
    /// The format version.
    pub format: ZarrFormat,
    /// Rows per chunk along the first axis (whole trailing axes) for arrays whose chunks the
    /// writer does not give; `None` guesses chunks as zarr-python does.
    pub chunk_rows: Option<usize>,
    /// Rows per shard (v3 only): shards of that many rows (rounded up to whole chunks) and
    /// every trailing axis. Takes precedence over [`ZarrOptions::auto_shard`].
    pub shard_rows: Option<usize>,
    /// Whether v3 arrays with no `shard_rows` are sharded as zarr-python's `shards="auto"` does
    /// with anndata's 1 GB target (anndata 0.13's default); ignored for v2.
    pub auto_shard: bool,
    /// A compressor for every array, scalars included, in place of what the writer asks.
    pub compression: Option<ZarrCompression>,
    /// The chunk shape (inner chunks when sharded) of a dense `X` at the root: anndata's
    /// `write_zarr(chunks=...)`; `None` guesses it as the other arrays' chunks.
    pub x_chunks: Option<[usize; 2]>,
}

impl Default for ZarrOptions {
    /// v3 with automatic shards, like anndata 0.13.
    fn default() -> Self {
        ZarrOptions {
            format: ZarrFormat::V3,
            chunk_rows: None,
            shard_rows: None,
            auto_shard: true,
            compression: None,
            x_chunks: None,
        }
    }
}

impl ZarrOptions {
    /// Options for `format` with no sharding: what anndata 0.12 writes.
    pub fn unsharded(format: ZarrFormat) -> Self {
        ZarrOptions {
            format,
            auto_shard: false,
            ..ZarrOptions::default()
        }
    }

    /// Fails on options that cannot be used.
    fn check(&self) -> Result<()> {
        if self.chunk_rows == Some(0)
            || self.shard_rows == Some(0)
            || self.x_chunks.is_some_and(|c| c.contains(&0))
        {
            return Err(Error::invalid("chunks and shards need at least one row"));
        }
        if self.format == ZarrFormat::V2 && self.shard_rows.is_some() {
            return Err(Error::invalid(
                "Zarr v2 has no sharding: shard_rows needs v3",
            ));
        }
        if let Some(ZarrCompression::Gzip(level)) = self.compression {
            if level > 9 {
                return Err(Error::invalid(format!(
                    "gzip level {level} is out of range 0–9"
                )));
            }
        }
        Ok(())
    }
}

/// Creates a new Zarr directory store at `path` (which must not exist; its parent must) and
/// returns its root group, for the format layer to write into.
pub(crate) fn create(path: &Path, options: &ZarrOptions) -> Result<Box<dyn GroupWriter>> {
    options.check()?;
    std::fs::create_dir(path)?;
    let fs = FilesystemStore::new(path).map_err(zarr_error)?;
    let store = Arc::new(Store {
        fs: Arc::new(Unmarked(fs)),
        root: path.to_path_buf(),
        options: options.clone(),
    });
    let root = ZarrGroupWriter {
        store,
        path: "/".to_owned(),
    };
    root.store_metadata(&Map::new())?;
    Ok(Box::new(root))
}

/// The directory as `zarrs` writes chunks into it: the keys of nodes named `__…`, which
/// `zarrs` is given marked (see `store::zarrs_path`), written under their names.
pub(super) struct Unmarked(FilesystemStore);

impl ReadableStorageTraits for Unmarked {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> std::result::Result<MaybeBytesIterator<'a>, StorageError> {
        self.0.get_partial_many(&*stored_key(key)?, byte_ranges)
    }

    fn size_key(&self, key: &StoreKey) -> std::result::Result<Option<u64>, StorageError> {
        self.0.size_key(&*stored_key(key)?)
    }

    fn supports_get_partial(&self) -> bool {
        self.0.supports_get_partial()
    }
}

impl WritableStorageTraits for Unmarked {
    fn set(&self, key: &StoreKey, value: Bytes) -> std::result::Result<(), StorageError> {
        self.0.set(&*stored_key(key)?, value)
    }

    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> std::result::Result<(), StorageError> {
        self.0.set_partial_many(&*stored_key(key)?, offset_values)
    }

    fn erase(&self, key: &StoreKey) -> std::result::Result<(), StorageError> {
        self.0.erase(&*stored_key(key)?)
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> std::result::Result<(), StorageError> {
        self.0.erase_prefix(prefix)
    }

    fn supports_set_partial(&self) -> bool {
        self.0.supports_set_partial()
    }
}

/// A store being written: where it is and how.
pub(super) struct Store {
    /// The `zarrs` view of the directory.
    fs: Arc<Unmarked>,
    /// The directory.
    root: PathBuf,
    /// How arrays are laid out.
    options: ZarrOptions,
}

impl Store {
    /// The key of file `file` of node `path`.
    fn key(path: &str, file: &str) -> Result<StoreKey> {
        let key = format!("{}/{file}", path.trim_matches('/'));
        StoreKey::new(key.trim_start_matches('/')).map_err(zarr_error)
    }

    /// Writes `value` as pretty JSON (as zarr-python indents it) to file `file` of node `path`.
    fn set_json(&self, path: &str, file: &str, value: &Value) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(value).map_err(zarr_error)?;
        self.fs
            .set(&Self::key(path, file)?, bytes.into())
            .map_err(zarr_error)
    }

    /// Reads file `file` of node `path` as JSON, if it exists.
    fn get_json(&self, path: &str, file: &str) -> Result<Option<Value>> {
        let Some(bytes) = self.fs.get(&Self::key(path, file)?).map_err(zarr_error)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::malformed(format!("{file} is not JSON: {e}")))
    }

    /// The directory of node `path`.
    fn dir(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// What node `path` is: a group, an array, or nothing.
    fn node_kind(&self, path: &str) -> Option<NodeKind> {
        let dir = self.dir(path);
        let is = |file: &str| dir.join(file).is_file();
        match self.options.format {
            ZarrFormat::V2 if is(".zgroup") => Some(NodeKind::Group),
            ZarrFormat::V2 if is(".zarray") => Some(NodeKind::Array),
            ZarrFormat::V2 => None,
            ZarrFormat::V3 => {
                let meta = std::fs::read(dir.join("zarr.json")).ok()?;
                let meta: Value = serde_json::from_slice(&meta).ok()?;
                match meta.get("node_type")?.as_str()? {
                    "group" => Some(NodeKind::Group),
                    "array" => Some(NodeKind::Array),
                    _ => None,
                }
            }
        }
    }
}

/// What a node of a store is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeKind {
    /// A group.
    Group,
    /// An array.
    Array,
}

/// What a new array is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NewArray {
    /// Values written whole at once.
    Whole,
    /// An anndata scalar (0-d): a `null` fill value in v2.
    Scalar,
    /// Filled (or grown) later, row block by row block.
    ToFill,
}

/// Refuses names that cannot name a member of a Zarr directory store: empty, `.`, `..`,
/// holding `/`, or the name of a metadata document.
fn check_name(name: &str) -> Result<()> {
    const RESERVED: [&str; 5] = ["zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata"];
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || RESERVED.contains(&name)
    {
        return Err(Error::invalid(format!(
            "{name:?} cannot name a member of a Zarr store"
        )));
    }
    Ok(())
}

/// A group of a Zarr store being written. Its attributes are read from the store each time one
/// is set, so that several writers of one group do not undo each other's.
pub(crate) struct ZarrGroupWriter {
    /// The store.
    store: Arc<Store>,
    /// The group's path from the root (`/` for the root).
    path: String,
}

impl ZarrGroupWriter {
    /// The group's attributes as stored.
    fn attrs(&self) -> Result<Map<String, Value>> {
        let (file, field) = match self.store.options.format {
            ZarrFormat::V2 => (".zattrs", None),
            ZarrFormat::V3 => ("zarr.json", Some("attributes")),
        };
        let Some(doc) = self.store.get_json(&self.path, file)? else {
            return Ok(Map::new());
        };
        let attrs = match field {
            Some(field) => doc.get(field).cloned().unwrap_or(Value::Object(Map::new())),
            None => doc,
        };
        match attrs {
            Value::Object(map) => Ok(map),
            _ => Err(Error::malformed(format!(
                "the attributes of {} are not an object",
                self.path
            ))),
        }
    }

    /// Writes the group's metadata documents with `attrs`.
    fn store_metadata(&self, attrs: &Map<String, Value>) -> Result<()> {
        match self.store.options.format {
            ZarrFormat::V2 => {
                self.store.set_json(
                    &self.path,
                    ".zgroup",
                    &serde_json::json!({ "zarr_format": 2 }),
                )?;
                self.store
                    .set_json(&self.path, ".zattrs", &Value::Object(attrs.clone()))
            }
            ZarrFormat::V3 => {
                self.store
                    .set_json(&self.path, "zarr.json", &group_metadata_v3(attrs))
            }
        }
    }

    /// The path of member `name`, after checking the name.
    fn member(&self, name: &str) -> Result<String> {
        check_name(name)?;
        Ok(join_path(&self.path, name))
    }

    /// The path of new member `name`, failing if a member of that name exists.
    fn new_member(&self, name: &str) -> Result<String> {
        let path = self.member(name)?;
        if self.store.dir(&path).exists() {
            return Err(Error::invalid(format!("member '{name}' already exists")));
        }
        Ok(path)
    }

    /// Creates array `name` of `dtype` and `shape`, laid out as `options` and the store's
    /// options say, for what `kind` says will be done with it.
    fn new_array(
        &self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        options: &ArrayOptions,
        kind: NewArray,
    ) -> Result<ZarrArrayWriter> {
        let path = self.new_member(name)?;
        let zopts = &self.store.options;
        let (chunks, shards) =
            meta::layout(zopts, dtype, shape, options, kind == NewArray::ToFill)?;
        let spec = ArraySpec {
            format: zopts.format,
            dtype,
            shape: shape.to_vec(),
            chunks,
            shards,
            compressor: meta::compressor(zopts, options, shape.len())?,
            null_fill: kind == NewArray::Scalar,
            records: None,
        };
        let created =
            ZarrArrayWriter::create(self.store.clone(), path.clone(), spec, options.resizable);
        if created.is_err() {
            let _ = self.remove_path(&path);
        }
        created
    }

    /// Deletes node `path` and everything below it.
    fn remove_path(&self, path: &str) -> Result<()> {
        let prefix = format!("{}/", path.trim_matches('/'));
        let prefix = StorePrefix::new(prefix).map_err(zarr_error)?;
        self.store.fs.erase_prefix(&prefix).map_err(zarr_error)
    }
}

impl AttrWriter for ZarrGroupWriter {
    fn path(&self) -> String {
        self.path.clone()
    }

    fn set_attr(&self, name: &str, value: &AttrValue) -> Result<()> {
        let json = attr_json(name, value)?;
        let mut attrs = self.attrs()?;
        attrs.insert(name.to_owned(), json);
        self.store_metadata(&attrs)
    }
}

impl GroupWriter for ZarrGroupWriter {
    fn contains(&self, name: &str) -> Result<bool> {
        Ok(self.store.node_kind(&self.member(name)?).is_some())
    }

    fn remove(&self, name: &str) -> Result<()> {
        let path = self.member(name)?;
        if self.store.dir(&path).exists() {
            self.remove_path(&path)?;
        }
        Ok(())
    }

    fn create_group(&self, name: &str) -> Result<Box<dyn GroupWriter>> {
        let path = self.new_member(name)?;
        let group = ZarrGroupWriter {
            store: self.store.clone(),
            path,
        };
        group.store_metadata(&Map::new())?;
        Ok(Box::new(group))
    }

    fn open_group(&self, name: &str) -> Result<Box<dyn GroupWriter>> {
        let path = self.member(name)?;
        if self.store.node_kind(&path) != Some(NodeKind::Group) {
            return Err(Error::invalid(format!("no group '{name}'")));
        }
        Ok(Box::new(ZarrGroupWriter {
            store: self.store.clone(),
            path,
        }))
    }

    fn create_array(
        &self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        options: &ArrayOptions,
    ) -> Result<Box<dyn ArrayWriter>> {
        Ok(Box::new(self.new_array(
            name,
            dtype,
            shape,
            options,
            NewArray::ToFill,
        )?))
    }

    fn write_array(
        &self,
        name: &str,
        data: &ArrayData,
        options: &ArrayOptions,
    ) -> Result<Box<dyn ArrayWriter>> {
        let kind = if data.ndim() == 0 {
            NewArray::Scalar
        } else {
            NewArray::Whole
        };
        let array = self.new_array(name, data.dtype(), data.shape(), options, kind)?;
        if let Err(e) = array.write_all(data) {
            let _ = self.remove_path(&array.path());
            return Err(e);
        }
        Ok(Box::new(array))
    }

    fn write_null(&self, name: &str, _dtype: DType) -> Result<Box<dyn ArrayWriter>> {
        // anndata (`write_null_zarr`): `create_array(k, shape=(), dtype="bool")`, no value.
        let options = ArrayOptions::default();
        Ok(Box::new(self.new_array(
            name,
            DType::Bool,
            &[],
            &options,
            NewArray::Whole,
        )?))
    }

    fn write_raw(
        &self,
        name: &str,
        data: &RawData,
        options: &ArrayOptions,
    ) -> Result<Box<dyn ArrayWriter>> {
        match data {
            RawData::Array(a) => self.write_array(name, a, options),
            RawData::Compound { shape, fields } => {
                let (ty, bytes) = records::encode(shape, fields)?;
                let path = self.new_member(name)?;
                let spec = ArraySpec {
                    format: self.store.options.format,
                    dtype: DType::U8,
                    shape: shape.clone(),
                    // One chunk: zarr-python's guess for the small arrays records are.
                    chunks: shape.iter().map(|&n| n.max(1)).collect(),
                    shards: None,
                    compressor: meta::compressor(&self.store.options, options, shape.len())?,
                    null_fill: false,
                    records: Some(ty),
                };
                let written =
                    ZarrArrayWriter::create(self.store.clone(), path.clone(), spec, false)
                        .and_then(|array| array.write_records(&bytes).map(|()| array));
                match written {
                    Ok(array) => Ok(Box::new(array)),
                    Err(e) => {
                        let _ = self.remove_path(&path);
                        Err(e)
                    }
                }
            }
        }
    }
}
