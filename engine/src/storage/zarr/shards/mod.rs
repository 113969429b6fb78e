//! Reading the Zarr layout anndata writes by default without `zarrs`' intermediate buffers:
//! 1-d arrays of numbers in shards of `bytes` + `zstd` inner chunks, indexed at the end of
//! each shard with a crc32c.
//!
//! `zarrs` decodes every inner chunk into a buffer of its own (with a fresh decompression
//! context and allocation each) and copies it into place: about a fifth of a full pass's time
//! on such a store. [`ShardedZstd`] reads each shard's index once (kept, checked against its
//! checksum) and decodes each frame of a read straight into its place in the caller's buffer,
//! the chunks on all cores, with one context per thread. In a directory store each thread also
//! reads its frames from the shard's file itself, into a buffer it keeps (a zip store's frames
//! are fetched through `zarrs`, one request per shard): no fresh memory for the compressed
//! bytes at every read, and the copies out of the page cache made on all cores. Frames are decoded into buffers of exactly their chunk's size, so a frame that
//! lies about its size is an error, never an allocation. Anything else (other codecs or key
//! encodings, absent chunks that hold the fill value) is left to `zarrs`.

use std::cell::RefCell;
use std::fs::File;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;
use rayon::prelude::*;
use serde_json::Value;
use zarrs::storage::byte_range::ByteRange;
use zarrs::storage::{Bytes, ReadableStorage, StoreKey};

use super::store::{storage_error, Store};
use crate::{Error, Result};

/// The shard files a read holds open at once, at most: a longer read decodes the frames of
/// these before it opens more.
const OPEN_SHARDS: usize = 64;

/// The bytes of shard indexes kept per array (at least one index is kept).
const KEPT_INDEX_BYTES: usize = 4 << 20;

/// The largest inner chunk read here (decoded): larger ones are left to `zarrs`, whose reads
/// check their buffers against the memory available. Anndata's are a few hundred KiB.
const MAX_CHUNK_BYTES: u64 = 16 << 20;

/// A thread's buffers (for chunks read in part, and for frames) are freed after use above this
/// size.
const KEPT_SCRATCH_BYTES: usize = 4 << 20;

/// A shard's index: per inner chunk, the offset and length of its frame; and the version of
/// the shard it was read from.
#[derive(Clone)]
struct Index {
    entries: Arc<[(u64, u64)]>,
    version: Version,
}

/// What tells versions of a shard apart: its length and, in a directory store, its file
/// (device, inode, and the times of its last write and last change, to the nanosecond; the
/// latter no program can set back): a shard replaced by another file, or rewritten, is
/// another version even at the same length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Version {
    len: u64,
    file: Option<[i64; 6]>,
}

impl Version {
    /// The version of the open shard `file` (of key `key`).
    fn of(file: &File, key: &StoreKey) -> Result<Version> {
        use std::os::unix::fs::MetadataExt;
        let m = file.metadata().map_err(|e| shard_io_error(key, e))?;
        Ok(Version {
            len: m.len(),
            file: Some([
                m.dev() as i64,
                m.ino() as i64,
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
            ]),
        })
    }
}

/// An index entry of an inner chunk that is not stored (it holds the fill value).
const ABSENT: (u64, u64) = (u64::MAX, u64::MAX);

/// The geometry of an array stored in anndata's default layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    len: u64,
    shard: u64,
    inner: u64,
    elem: usize,
    separator: char,
}

/// The layout of a v3 array's metadata document `doc` whose elements are numbers of `elem`
/// bytes, when it is the one [`ShardedZstd`] reads.
pub(crate) fn layout(doc: &Value, elem: usize) -> Option<Layout> {
    let one = |v: &Value| -> Option<u64> {
        match v.as_array()?.as_slice() {
            [n] => n.as_u64(),
            _ => None,
        }
    };
    let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_owned);
    let config = |v: &Value| v.get("configuration").cloned().unwrap_or(Value::Null);
    let little = |v: &Value| {
        name(v).as_deref() == Some("bytes")
            && match config(v).get("endian").and_then(Value::as_str) {
                Some(e) => e == "little",
                None => elem == 1,
            }
    };
    if doc.get("zarr_format")?.as_u64()? != 3 {
        return None;
    }
    let len = one(doc.get("shape")?)?;
    let grid = doc.get("chunk_grid")?;
    if name(grid)?.as_str() != "regular" {
        return None;
    }
    let shard = one(config(grid).get("chunk_shape")?)?;
    let keys = doc.get("chunk_key_encoding")?;
    if name(keys)?.as_str() != "default" {
        return None;
    }
    let separator = match config(keys).get("separator").map(Value::as_str) {
        None => '/',
        Some(Some("/")) => '/',
        Some(Some(".")) => '.',
        Some(_) => return None,
    };
    let [sharding] = doc.get("codecs")?.as_array()?.as_slice() else {
        return None;
    };
    if name(sharding)?.as_str() != "sharding_indexed" {
        return None;
    }
    let c = config(sharding);
    let inner = one(c.get("chunk_shape")?)?;
    let [bytes, zstd] = c.get("codecs")?.as_array()?.as_slice() else {
        return None;
    };
    let [index_bytes, crc] = c.get("index_codecs")?.as_array()?.as_slice() else {
        return None;
    };
    let at_end = c
        .get("index_location")
        .and_then(Value::as_str)
        .unwrap_or("end")
        == "end";
    let ok = little(bytes)
        && name(zstd)?.as_str() == "zstd"
        && name(index_bytes)?.as_str() == "bytes"
        && config(index_bytes).get("endian").and_then(Value::as_str) != Some("big")
        && name(crc)?.as_str() == "crc32c"
        && at_end
        && inner > 0
        && shard >= inner
        && shard % inner == 0
        && matches!(elem, 1 | 2 | 4 | 8)
        && inner
            .checked_mul(elem as u64)
            .is_some_and(|b| b <= MAX_CHUNK_BYTES);
    ok.then_some(Layout {
        len,
        shard,
        inner,
        elem,
        separator,
    })
}

/// Reads ranges of an array in anndata's default Zarr layout (see the module's notes).
pub(crate) struct ShardedZstd {
    storage: ReadableStorage,
    /// The store's directory, where shards are files read directly (`None`: a zip store).
    dir: Option<PathBuf>,
    /// The array's key prefix (`X/data/`).
    prefix: String,
    layout: Layout,
    /// Per shard, its index (kept with the version of the shard it was read from).
    indexes: Mutex<LruCache<u64, Index>>,
}

/// Where the frame of an inner chunk of a read is.
enum Frame {
    /// Fetched already (through `zarrs`).
    Fetched(Bytes),
    /// `len` bytes at `offset` in the read's `file`-th shard file, read by the thread that
    /// decodes it.
    At {
        file: usize,
        offset: u64,
        len: usize,
    },
}

/// One inner chunk of a read: its frame, and where its part of the read goes.
struct Job<'a> {
    frame: Frame,
    /// The chunk's elements read, from its start.
    part: Range<usize>,
    out: &'a mut [u8],
}

thread_local! {
    /// Each thread's decompression context, a buffer for chunks read in part and one for the
    /// frames it reads.
    static DECODER: RefCell<Option<Decoder>> = const { RefCell::new(None) };
}

/// A thread's decompression context and buffers (see [`DECODER`]).
type Decoder = (zstd::bulk::Decompressor<'static>, Vec<u8>, Vec<u8>);

impl ShardedZstd {
    /// A reader of the array at `prefix` (`X/data/`) of `store`, laid out as `layout`.
    pub(crate) fn new(store: &Store, prefix: String, layout: Layout) -> Self {
        let index_bytes = (layout.shard / layout.inner).saturating_mul(16).max(1);
        let count = (KEPT_INDEX_BYTES as u64 / index_bytes).max(1) as usize;
        let kept = NonZeroUsize::new(count).unwrap_or(NonZeroUsize::MIN);
        ShardedZstd {
            storage: store.readable(),
            dir: store.dir().map(PathBuf::from),
            prefix,
            layout,
            indexes: Mutex::new(LruCache::new(kept)),
        }
    }

    /// Inner chunks per shard.
    fn per_shard(&self) -> u64 {
        self.layout.shard / self.layout.inner
    }

    /// Bytes of one inner chunk decoded.
    fn chunk_bytes(&self) -> usize {
        self.layout.inner as usize * self.layout.elem
    }

    fn key(&self, shard: u64) -> Result<StoreKey> {
        let key = format!("{}c{}{shard}", self.prefix, self.layout.separator);
        StoreKey::new(key.clone()).map_err(|e| Error::malformed(format!("shard key '{key}': {e}")))
    }

    /// Elements `rows` decoded into `out` (their bytes, little-endian). `false` when an inner
    /// chunk or shard they need is absent (nothing can be said of `out` then: read it another
    /// way).
    pub(crate) fn read_into(&self, rows: Range<u64>, out: &mut [u8]) -> Result<bool> {
        let l = &self.layout;
        let expected = (rows.end.saturating_sub(rows.start) as usize).checked_mul(l.elem);
        if rows.start > rows.end || rows.end > l.len || expected != Some(out.len()) {
            return Err(Error::invalid(format!(
                "elements {rows:?} of {} do not fit a buffer of {} bytes",
                l.len,
                out.len()
            )));
        }
        if rows.is_empty() {
            return Ok(true);
        }
        let (first, last) = (rows.start / l.inner, (rows.end - 1) / l.inner);
        let mut jobs = Vec::with_capacity((last - first + 1) as usize);
        let mut files = Vec::new();
        let mut rest = out;
        let per_shard = self.per_shard();
        let mut chunk = first;
        let chunk_bytes = self.chunk_bytes();
        while chunk <= last {
            if files.len() == OPEN_SHARDS {
                // Decode what the open shards hold, then close them.
                std::mem::take(&mut jobs)
                    .into_par_iter()
                    .try_for_each(|job| decode(job, &files, chunk_bytes, l.elem))?;
                files.clear();
            }
            let shard = chunk / per_shard;
            let end = last.min((shard + 1) * per_shard - 1);
            let key = self.key(shard)?;
            // In a directory store, the index and the frames are read from one open file: a
            // shard replaced (renamed over) meanwhile is read whole from one version or the
            // other. One rewritten in place while it is read can still give a decode error.
            let file = match &self.dir {
                Some(dir) => match super::store::open_regular(&dir.join(key.as_str())) {
                    Ok(file) => Some(file),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                    Err(e) => return Err(shard_io_error(&key, e)),
                },
                None => None,
            };
            let Some(index) = self.index(shard, &key, file.as_ref())? else {
                return Ok(false);
            };
            let mut ranges = Vec::with_capacity((end - chunk + 1) as usize);
            for c in chunk..=end {
                let entry = index.entries[(c % per_shard) as usize];
                if entry == ABSENT {
                    return Ok(false);
                }
                ranges.push(self.frame_range(entry, index.version.len)?);
            }
            let frames = match file {
                Some(file) => {
                    files.push((key, file));
                    let file = files.len() - 1;
                    ranges
                        .into_iter()
                        .map(|(offset, len)| Frame::At { file, offset, len })
                        .collect()
                }
                None => self.fetch(shard, ranges)?,
            };
            for (c, frame) in (chunk..=end).zip(frames) {
                let lo = rows.start.max(c * l.inner) - c * l.inner;
                let hi = rows.end.min((c + 1) * l.inner) - c * l.inner;
                let part = lo as usize..hi as usize;
                let (here, after) = std::mem::take(&mut rest).split_at_mut(part.len() * l.elem);
                rest = after;
                jobs.push(Job {
                    frame,
                    part,
                    out: here,
                });
            }
            chunk = end + 1;
        }
        jobs.into_par_iter()
            .try_for_each(|job| decode(job, &files, chunk_bytes, l.elem))?;
        Ok(true)
    }

    /// The byte range of an index entry's frame, refused when it lies beyond the shard's
    /// `shard_len` bytes or could not hold a zstd frame of one chunk (so that no read is sized
    /// by a lying index).
    fn frame_range(&self, (offset, len): (u64, u64), shard_len: u64) -> Result<(u64, usize)> {
        let bound =
            (zstd::zstd_safe::compress_bound(self.chunk_bytes()) as u64).saturating_add(1024);
        if len > bound {
            return Err(Error::malformed(format!(
                "a shard index entry (offset {offset}, {len} bytes) exceeds any zstd frame of \
                 one inner chunk ({bound} bytes at most)"
            )));
        }
        if offset.checked_add(len).is_none_or(|end| end > shard_len) {
            return Err(Error::malformed(format!(
                "a shard index entry (offset {offset}, {len} bytes) points beyond its shard \
                 ({shard_len} bytes)"
            )));
        }
        // Below the bound of one frame's size, which fits memory.
        Ok((offset, len as usize))
    }

    /// The frames at `ranges` (offset, length) of shard `shard`, in one request.
    fn fetch(&self, shard: u64, ranges: Vec<(u64, usize)>) -> Result<Vec<Frame>> {
        let key = self.key(shard)?;
        let wanted: Vec<u64> = ranges.iter().map(|&(_, n)| n as u64).collect();
        let ranges = ranges
            .into_iter()
            .map(|(offset, n)| ByteRange::FromStart(offset, Some(n as u64)));
        let got = self
            .storage
            .get_partial_many(&key, Box::new(ranges))
            .map_err(storage_error)?
            .ok_or_else(|| Error::malformed(format!("shard '{key}' disappeared while read")))?;
        let frames = got
            .collect::<Result<Vec<Bytes>, _>>()
            .map_err(storage_error)?;
        if frames.len() != wanted.len()
            || frames
                .iter()
                .zip(&wanted)
                .any(|(f, &n)| f.len() as u64 != n)
        {
            return Err(Error::malformed(format!(
                "shard '{key}' is shorter than its index says"
            )));
        }
        Ok(frames.into_iter().map(Frame::Fetched).collect())
    }

    /// Shard `shard`'s index (of key `key`, open as `file` in a directory store), read and
    /// checked on first use; `None` when the shard is absent.
    ///
    /// The shard's version is looked at on every call (one `stat`): a shard rewritten or
    /// replaced since its index was kept has its index read again, rather than its new bytes
    /// read at the old offsets. (In a zip store, where only the length is known, a shard
    /// rewritten to the same length is not noticed; archives are not rewritten in place. Bytes
    /// rewritten in place during a read are not noticed either: see `read_into`.)
    fn index(&self, shard: u64, key: &StoreKey, file: Option<&File>) -> Result<Option<Index>> {
        let version = match file {
            Some(file) => Version::of(file, key)?,
            None => match self.storage.size_key(key).map_err(storage_error)? {
                Some(len) => Version { len, file: None },
                None => return Ok(None),
            },
        };
        let shard_len = version.len;
        if let Some(index) = self.indexes.lock().get(&shard) {
            if index.version == version {
                return Ok(Some(index.clone()));
            }
        }
        let n = self.per_shard() as usize;
        let bytes = n.saturating_mul(16).saturating_add(4);
        if shard_len < bytes as u64 {
            return Err(Error::malformed(format!(
                "shard '{key}' ({shard_len} bytes) is shorter than its index ({bytes} bytes)"
            )));
        }
        let at = shard_len - bytes as u64;
        let raw = match file {
            Some(file) => {
                // At most the shard's length (checked above).
                let mut raw = vec![0u8; bytes];
                file.read_exact_at(&mut raw, at)
                    .map_err(|e| match e.kind() {
                        // Cut short since its length was looked at.
                        std::io::ErrorKind::UnexpectedEof => Error::malformed(format!(
                            "shard '{key}' is shorter than its index ({bytes} bytes)"
                        )),
                        _ => shard_io_error(key, e),
                    })?;
                raw.into()
            }
            None => {
                let range = ByteRange::FromStart(at, Some(bytes as u64));
                let got = self.storage.get_partial(key, range);
                // Removed since its length was looked at: absent.
                match got.map_err(storage_error)? {
                    Some(raw) => raw,
                    None => return Ok(None),
                }
            }
        };
        if raw.len() != bytes {
            return Err(Error::malformed(format!(
                "shard '{key}' is shorter than its index ({bytes} bytes)"
            )));
        }
        let (entries, crc) = raw.split_at(n * 16);
        let stored = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
        if crc32c::crc32c(entries) != stored {
            return Err(Error::malformed(format!(
                "the index of shard '{key}' does not match its checksum (corrupt)"
            )));
        }
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let entries: Arc<[(u64, u64)]> = entries
            .chunks_exact(16)
            .map(|e| (word(&e[..8]), word(&e[8..])))
            .collect();
        let index = Index { entries, version };
        self.indexes.lock().put(shard, index.clone());
        Ok(Some(index))
    }
}

/// Decodes a job's frame (read from `files` first, into the thread's buffer, when it is in
/// one): straight into its place when the read takes the whole chunk, else into the thread's
/// buffer for chunks, then its part copied.
fn decode(job: Job<'_>, files: &[(StoreKey, File)], chunk_bytes: usize, elem: usize) -> Result<()> {
    DECODER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let d = zstd::bulk::Decompressor::new()
                .map_err(|e| Error::malformed(format!("a zstd decompressor: {e}")))?;
            *slot = Some((d, Vec::new(), Vec::new()));
        }
        let (d, scratch, read) = slot.as_mut().expect("set above");
        let result = decode_with(job, files, chunk_bytes, elem, d, scratch, read);
        // Large buffers are not kept, whatever the outcome.
        for buffer in [scratch, read] {
            if buffer.len() > KEPT_SCRATCH_BYTES {
                *buffer = Vec::new();
            }
        }
        result
    })
}

/// [`decode`] with the thread's context `d`, its buffer for chunks read in part `scratch` and
/// for frames `read`.
fn decode_with(
    job: Job<'_>,
    files: &[(StoreKey, File)],
    chunk_bytes: usize,
    elem: usize,
    d: &mut zstd::bulk::Decompressor<'static>,
    scratch: &mut Vec<u8>,
    read: &mut Vec<u8>,
) -> Result<()> {
    let frame: &[u8] = match &job.frame {
        Frame::Fetched(bytes) => bytes,
        &Frame::At { file, offset, len } => {
            let (key, file) = &files[file];
            if read.len() < len {
                read.resize(len, 0);
            }
            file.read_exact_at(&mut read[..len], offset)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => {
                        Error::malformed(format!("shard '{key}' is shorter than its index says"))
                    }
                    _ => shard_io_error(key, e),
                })?;
            &read[..len]
        }
    };
    let decoded = |n: std::io::Result<usize>| match n {
        Ok(n) if n == chunk_bytes => Ok(()),
        Ok(n) => Err(Error::malformed(format!(
            "an inner chunk decoded to {n} bytes, not the {chunk_bytes} of its shape"
        ))),
        Err(e) => Err(Error::malformed(format!(
            "an inner chunk cannot be decoded (corrupt): {e}"
        ))),
    };
    if job.out.len() == chunk_bytes {
        decoded(d.decompress_to_buffer(frame, job.out))?;
    } else {
        scratch.resize(chunk_bytes, 0);
        decoded(d.decompress_to_buffer(frame, scratch.as_mut_slice()))?;
        let part = job.part.start * elem..job.part.end * elem;
        job.out.copy_from_slice(&scratch[part]);
    }
    Ok(())
}

/// An I/O error reading shard `key`, kept as one (its kind too), naming the shard.
fn shard_io_error(key: &StoreKey, e: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(e.kind(), format!("shard '{key}': {e}")))
}

#[cfg(test)]
mod tests;
