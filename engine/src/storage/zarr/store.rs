//! Where a Zarr hierarchy's bytes live: a directory or a zip file, read-only.
//!
//! A [`Store`] answers the questions the hierarchy asks of its keys (`obs/zarr.json`,
//! `X/data/c/0`): read a metadata document, list the child nodes under a prefix, count the
//! chunks stored under an array's prefix, identify a directory. The chunks themselves are
//! read by `zarrs` through [`Store::readable`].
//!
//! Directory stores are read with `std::fs` for metadata and listings (so that names that are
//! not UTF-8, symlinked directories and symlink cycles are handled here rather than in the
//! store adapter), and with `zarrs_filesystem` for chunks; zip stores (`*.zarr.zip`, written
//! by zarr-python's `ZipStore`) through `zarrs_zip` for everything.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zarrs::filesystem::FilesystemStore;
use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator};
use zarrs::storage::{
    ListableStorageTraits, MaybeBytes, MaybeBytesIterator, ReadableStorage, ReadableStorageTraits,
    StorageError, StoreKey, StorePrefix,
};
use zarrs_zip::ZipStorageAdapter;

use crate::storage::h5::claim::MAX_FILL_BYTES;
use crate::storage::ObjectId;
use crate::{Error, Result};

/// The largest metadata document (`zarr.json`, `.zarray`, `.zattrs`) read: anndata's are a
/// few KB; a larger one is not metadata.
const MAX_METADATA_BYTES: u64 = MAX_FILL_BYTES;

pub(crate) use super::write::ZarrFormat;

/// Where the keys are.
enum Backing {
    /// A directory: keys are relative file paths below it.
    Dir(PathBuf),
    /// A zip file: keys are entry names.
    Zip(Arc<ZipStorageAdapter<FilesystemStore>>),
}

/// An open Zarr store (directory or zip), read-only.
pub(crate) struct Store {
    backing: Backing,
    /// The same keys, as `zarrs` reads chunks.
    readable: ReadableStorage,
    /// The format of the root node, and so of every node below it (as zarr-python opens a
    /// hierarchy: children in their parent's format).
    format: ZarrFormat,
}

impl Store {
    /// Opens the store at `path` (a directory, else a zip file) and finds the format of its
    /// root node.
    pub(crate) fn open(path: &Path) -> Result<Store> {
        let meta = std::fs::metadata(path)?;
        let utf8 = |p: &Path| {
            p.to_str()
                .map(str::to_owned)
                .ok_or_else(|| Error::unsupported(format!("the path {} is not UTF-8", p.display())))
        };
        let (backing, readable): (Backing, ReadableStorage) = if meta.is_dir() {
            utf8(path)?;
            let fs = FilesystemStore::new(path)
                .map_err(|e| Error::invalid(format!("cannot open as a Zarr store: {e}")))?;
            let chunks = CheckedKeys {
                rule: KeyRule::RegularFile(path.to_path_buf()),
                inner: Arc::new(fs),
            };
            (Backing::Dir(path.to_path_buf()), Arc::new(chunks))
        } else if meta.is_file() {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let name = path
                .file_name()
                .ok_or_else(|| Error::invalid("a zip store path must name a file"))?;
            utf8(parent)?;
            let fs = FilesystemStore::new(parent)
                .map_err(|e| Error::invalid(format!("cannot open as a Zarr store: {e}")))?;
            let key = StoreKey::new(utf8(Path::new(name))?)
                .map_err(|e| Error::invalid(format!("cannot open as a Zarr zip store: {e}")))?;
            let zip = ZipStorageAdapter::new(Arc::new(fs), key).map_err(|e| {
                Error::malformed(format!(
                    "not a readable Zarr zip store (a directory or a zip file is expected): {e}"
                ))
            })?;
            let zip = Arc::new(zip);
            let chunks = CheckedKeys {
                rule: KeyRule::Within(meta.len()),
                inner: zip.clone(),
            };
            (Backing::Zip(zip), Arc::new(chunks))
        } else {
            return Err(Error::invalid(
                "is not a directory or a regular file (a FIFO, socket or device), not a Zarr store",
            ));
        };
        let mut store = Store {
            backing,
            readable,
            format: ZarrFormat::V3,
        };
        store.format = if store.exists("zarr.json")? {
            ZarrFormat::V3
        } else if store.exists(".zgroup")? || store.exists(".zarray")? {
            ZarrFormat::V2
        } else {
            return Err(Error::malformed(
                "not a Zarr store: its root has no zarr.json (Zarr v3) nor .zgroup (Zarr v2)",
            ));
        };
        Ok(store)
    }

    /// The format every node of the store is read in.
    pub(crate) fn format(&self) -> ZarrFormat {
        self.format
    }

    /// The directory of a directory store (`None` for a zip store): its keys are file paths
    /// below it.
    pub(crate) fn dir(&self) -> Option<&Path> {
        match &self.backing {
            Backing::Dir(root) => Some(root),
            Backing::Zip(_) => None,
        }
    }

    /// The store as `zarrs` reads chunks from it.
    pub(crate) fn readable(&self) -> ReadableStorage {
        self.readable.clone()
    }

    /// Reads the (metadata) value at `key`, `None` when there is none.
    pub(crate) fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match &self.backing {
            Backing::Dir(root) => {
                let path = root.join(key);
                let file = match open_regular(&path) {
                    Ok(f) => f,
                    Err(e) if is_absent(&e) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                let meta = file.metadata()?;
                if meta.is_dir() {
                    return Ok(None);
                }
                check_metadata_size(key, meta.len())?;
                let mut bytes = Vec::with_capacity(meta.len() as usize);
                file.take(MAX_METADATA_BYTES + 1).read_to_end(&mut bytes)?;
                check_metadata_size(key, bytes.len() as u64)?;
                check_metadata_values(key, &bytes)?;
                Ok(Some(bytes))
            }
            Backing::Zip(zip) => {
                let key = store_key(key)?;
                match zip.size_key(&key).map_err(storage_error)? {
                    None => return Ok(None),
                    Some(size) => check_metadata_size(key.as_str(), size)?,
                }
                let Some(bytes) = zip.get(&key).map_err(storage_error)? else {
                    return Ok(None);
                };
                check_metadata_values(key.as_str(), &bytes)?;
                Ok(Some(bytes.to_vec()))
            }
        }
    }

    /// Whether there is a value at `key`.
    pub(crate) fn exists(&self, key: &str) -> Result<bool> {
        match &self.backing {
            Backing::Dir(root) => match std::fs::metadata(root.join(key)) {
                Ok(m) => Ok(!m.is_dir()),
                Err(e) if is_absent(&e) => Ok(false),
                Err(e) => Err(e.into()),
            },
            Backing::Zip(zip) => Ok(zip
                .size_key(&store_key(key)?)
                .map_err(storage_error)?
                .is_some()),
        }
    }

    /// The names of the prefixes directly below `prefix` (`""` for the root, else ending in
    /// `/`): the candidates for child nodes, unsorted.
    pub(crate) fn child_names(&self, prefix: &str) -> Result<Vec<String>> {
        match &self.backing {
            Backing::Dir(root) => {
                let mut names = Vec::new();
                for entry in std::fs::read_dir(root.join(prefix))? {
                    let entry = entry?;
                    // Keys are UTF-8: any other name is no node of the hierarchy.
                    let Ok(name) = entry.file_name().into_string() else {
                        continue;
                    };
                    // Follows symlinks: a linked directory is a member, as zarr-python sees it.
                    if entry.path().is_dir() {
                        names.push(name);
                    }
                }
                Ok(names)
            }
            Backing::Zip(zip) => {
                let listing = zip
                    .list_dir(&store_prefix(prefix)?)
                    .map_err(storage_error)?;
                Ok(listing
                    .prefixes()
                    .iter()
                    .filter_map(|p| {
                        p.as_str()
                            .strip_prefix(prefix)
                            .and_then(|rest| rest.strip_suffix('/'))
                            .filter(|name| !name.is_empty() && !name.contains('/'))
                            .map(str::to_owned)
                    })
                    .collect())
            }
        }
    }

    /// How many chunk keys lie below the array prefix `prefix` (every key but the array's own
    /// metadata documents), counting no further than `enough`.
    ///
    /// Symbolic links in a directory store are counted as keys but never followed, so a link
    /// cycle cannot make the count endless.
    pub(crate) fn count_chunks(&self, prefix: &str, enough: u64) -> Result<u64> {
        let is_metadata = |name: &str| name == "zarr.json" || name.starts_with('.');
        match &self.backing {
            Backing::Dir(root) => {
                let mut count = 0u64;
                let mut pending = vec![(root.join(prefix), true)];
                while let Some((dir, top)) = pending.pop() {
                    let entries = match std::fs::read_dir(&dir) {
                        Ok(e) => e,
                        Err(e) if is_absent(&e) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    for entry in entries {
                        let entry = entry?;
                        if top && is_metadata(&entry.file_name().to_string_lossy()) {
                            continue;
                        }
                        if entry.file_type()?.is_dir() {
                            pending.push((entry.path(), false));
                        } else {
                            count += 1;
                            if count >= enough {
                                return Ok(count);
                            }
                        }
                    }
                }
                Ok(count)
            }
            Backing::Zip(zip) => {
                let keys = zip
                    .list_prefix(&store_prefix(prefix)?)
                    .map_err(storage_error)?;
                let count = keys
                    .iter()
                    .filter(|k| {
                        let rest = &k.as_str()[prefix.len()..];
                        rest.contains('/') || !is_metadata(rest)
                    })
                    .count() as u64;
                Ok(count.min(enough))
            }
        }
    }

    /// The identity of the directory of prefix `prefix` (its device and inode), for directory
    /// stores; `None` for zip stores, which cannot alias a node.
    pub(crate) fn dir_id(&self, prefix: &str) -> Result<Option<ObjectId>> {
        match &self.backing {
            Backing::Dir(root) => {
                let meta = std::fs::metadata(root.join(prefix))?;
                let mut token = [0u8; 16];
                token[..8].copy_from_slice(&meta.ino().to_le_bytes());
                Ok(Some(ObjectId {
                    volume: meta.dev(),
                    token,
                }))
            }
            Backing::Zip(_) => Ok(None),
        }
    }
}

/// Opens `path`, in a directory store, for reading; refuses what is neither a regular file nor
/// a directory: a FIFO would block the read forever, a device never end it. Opened without
/// waiting (`O_NONBLOCK`, which regular files and directories ignore), checked on the open
/// file.
pub(crate) fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() || kind.is_dir() {
        return Ok(file);
    }
    Err(not_regular(path))
}

fn not_regular(path: &Path) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!(
            "'{}' is not a regular file (a FIFO, socket or device)",
            path.display()
        ),
    )
}

/// A store as `zarrs` reads chunks from it, each key checked by `rule` before `zarrs` reads
/// it (`zarrs` opens files and allocates for zip members itself).
struct CheckedKeys {
    rule: KeyRule,
    inner: ReadableStorage,
}

/// What a key must be for `zarrs` to read it.
enum KeyRule {
    /// In the directory store at this path, a regular file (see [`open_regular`]) or nothing.
    RegularFile(PathBuf),
    /// A zip member no larger than its archive of this many bytes (members are stored: a
    /// larger size is a claim `zarrs` would allocate for before reading).
    Within(u64),
}

/// What stands before a node name that starts with `__` in the paths `zarrs` is given: the
/// Zarr v3 spec reserves such names and `zarrs` refuses them, but zarr-python (and so anndata)
/// writes them (an obs column `__x`, in v2 and v3). [`CheckedKeys`] takes it out of the keys
/// `zarrs` asks for.
const RESERVED_NAME_MARK: char = '\u{1}';

/// `path` as `zarrs` accepts it: each name starting with `__` marked (see
/// [`RESERVED_NAME_MARK`]).
pub(crate) fn zarrs_path(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains("/__") {
        return path.into();
    }
    let names: Vec<String> = path
        .split('/')
        .map(|name| match name.starts_with("__") {
            true => format!("{RESERVED_NAME_MARK}{name}"),
            false => name.to_owned(),
        })
        .collect();
    names.join("/").into()
}

/// The store key a key `zarrs` asks for stands for (marks taken out).
pub(crate) fn stored_key(
    key: &StoreKey,
) -> std::result::Result<std::borrow::Cow<'_, StoreKey>, StorageError> {
    if !key.as_str().contains(RESERVED_NAME_MARK) {
        return Ok(std::borrow::Cow::Borrowed(key));
    }
    let unmarked: String = key
        .as_str()
        .split('/')
        .map(|name| name.strip_prefix(RESERVED_NAME_MARK).unwrap_or(name))
        .collect::<Vec<_>>()
        .join("/");
    StoreKey::new(unmarked)
        .map(std::borrow::Cow::Owned)
        .map_err(|e| StorageError::Other(e.to_string()))
}

impl CheckedKeys {
    /// Refuses a key the rule refuses; absent keys are the inner store's.
    fn check(&self, key: &StoreKey) -> std::result::Result<(), StorageError> {
        match &self.rule {
            KeyRule::RegularFile(root) => {
                let path = root.join(key.as_str());
                match std::fs::metadata(&path) {
                    Ok(meta) if !meta.is_file() => Err(Arc::new(not_regular(&path)).into()),
                    _ => Ok(()),
                }
            }
            KeyRule::Within(archive) => match self.inner.size_key(key)? {
                Some(size) if size > *archive => Err(StorageError::Other(format!(
                    "the zip member '{key}' claims {size} bytes, more than its archive's {archive}"
                ))),
                _ => Ok(()),
            },
        }
    }
}

impl ReadableStorageTraits for CheckedKeys {
    fn get(&self, key: &StoreKey) -> std::result::Result<MaybeBytes, StorageError> {
        let key = stored_key(key)?;
        self.check(&key)?;
        self.inner.get(&key)
    }

    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> std::result::Result<MaybeBytesIterator<'a>, StorageError> {
        let key = stored_key(key)?;
        self.check(&key)?;
        self.inner.get_partial_many(&key, byte_ranges)
    }

    fn get_partial(
        &self,
        key: &StoreKey,
        byte_range: ByteRange,
    ) -> std::result::Result<MaybeBytes, StorageError> {
        let key = stored_key(key)?;
        self.check(&key)?;
        self.inner.get_partial(&key, byte_range)
    }

    fn size_key(&self, key: &StoreKey) -> std::result::Result<Option<u64>, StorageError> {
        self.inner.size_key(&*stored_key(key)?)
    }

    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

/// Whether an I/O error means "no such key" (a missing file, or a path through a file).
fn is_absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

fn check_metadata_size(key: &str, size: u64) -> Result<()> {
    if size > MAX_METADATA_BYTES {
        return Err(Error::malformed(format!(
            "the metadata document '{key}' has {size} bytes, more than the \
             {MAX_METADATA_BYTES} a metadata document may have"
        )));
    }
    Ok(())
}

/// The most JSON values a metadata document may hold (about 100 MB parsed). Parsed, a value
/// takes some 48 bytes whatever its text (`0,` is two), so a document of a few hundred MB of
/// small values takes gigabytes (100 MB of zeros took 3.6 GB); anndata's hold a few dozen, a
/// consolidated root of thousands of nodes some hundred thousand.
const MAX_METADATA_VALUES: u64 = 2_000_000;

/// Refuses a metadata document holding more than [`MAX_METADATA_VALUES`] JSON values, counted
/// from its text (separators and openings outside strings) before it is parsed.
fn check_metadata_values(key: &str, doc: &[u8]) -> Result<()> {
    let (mut values, mut in_string, mut escaped) = (1u64, false, false);
    for &b in doc {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b',' | b'[' | b'{' | b':' => values += 1,
            _ => {}
        }
    }
    if values > MAX_METADATA_VALUES {
        return Err(Error::malformed(format!(
            "the metadata document '{key}' holds about {values} JSON values, more than the \
             {MAX_METADATA_VALUES} a metadata document may have"
        )));
    }
    Ok(())
}

fn store_key(key: &str) -> Result<StoreKey> {
    StoreKey::new(key).map_err(|e| Error::invalid(format!("not a Zarr store key: {e}")))
}

fn store_prefix(prefix: &str) -> Result<StorePrefix> {
    StorePrefix::new(prefix).map_err(|e| Error::invalid(format!("not a Zarr store prefix: {e}")))
}

/// A `zarrs` storage error as an engine error: I/O errors stay I/O errors.
pub(crate) fn storage_error(e: StorageError) -> Error {
    match e {
        StorageError::IOError(io) => Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        // The zip reader's words for a member compressed in the archive (`zip -r` deflates
        // them): its deflate support is left out, as it corrupts members larger than one
        // decompression step (zarrs_zip 0.5).
        other if other.to_string().contains("not enabled in this build") => {
            Error::unsupported(format!(
                "zip archives whose members are compressed ({other}): annpage reads zip stores \
                 whose members are stored, as zarr-python's ZipStore writes them (`zip -0 -r` \
                 makes one)"
            ))
        }
        other => Error::malformed(format!("cannot read from the store: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_outside_strings() {
        check_metadata_values("a", br#"{"a": [1, 2, {"b": "x,y:[{"}], "c": "\"[,"}"#).unwrap();
        let many = format!("[{}0]", "0,".repeat(MAX_METADATA_VALUES as usize));
        let err = check_metadata_values("uns/.zattrs", many.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("'uns/.zattrs' holds about"),
            "{err}"
        );
        // Commas inside a string are not values.
        let quoted = format!("[\"{}\"]", ",".repeat(MAX_METADATA_VALUES as usize + 1));
        check_metadata_values("a", quoted.as_bytes()).unwrap();
    }

    #[test]
    fn a_document_of_too_many_values_is_refused_before_it_is_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.zarr");
        let options = crate::storage::ZarrOptions::unsharded(crate::storage::ZarrFormat::V2);
        drop(crate::storage::zarr::write::create(&path, &options).unwrap());
        let zeros = format!(
            "{{\"x\": [{}0]}}",
            "0,".repeat(MAX_METADATA_VALUES as usize)
        );
        std::fs::write(path.join(".zattrs"), zeros).unwrap();
        let store = Store::open(&path).unwrap();
        let err = store.get(".zattrs").unwrap_err();
        assert!(err.to_string().contains("more than the 2000000"), "{err}");
    }
}
