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

/// A shard's index: per inner chunk, the offset and length of its frame; and the shard's
/// length in bytes.
#[derive(Clone)]
struct Index {
    entries: Arc<[(u64, u64)]>,
    shard_len: u64,
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
    /// Per shard, its index (kept with the shard's length when it was read).
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
            let Some(index) = self.index(shard)? else {
                return Ok(false);
            };
            let mut ranges = Vec::with_capacity((end - chunk + 1) as usize);
            for c in chunk..=end {
                let entry = index.entries[(c % per_shard) as usize];
                if entry == ABSENT {
                    return Ok(false);
                }
                ranges.push(self.frame_range(entry, index.shard_len)?);
            }
            let frames = match &self.dir {
                Some(dir) => {
                    let key = self.key(shard)?;
                    let file =
                        File::open(dir.join(key.as_str())).map_err(|e| shard_io_error(&key, e))?;
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

    /// Shard `shard`'s index, read and checked on first use; `None` when the shard is absent.
    ///
    /// The shard's length is looked at on every call (one `stat`): a shard rewritten to
    /// another length since its index was kept has its index read again, rather than its new
    /// bytes read at the old offsets.
    fn index(&self, shard: u64) -> Result<Option<Index>> {
        let key = self.key(shard)?;
        let Some(shard_len) = self.storage.size_key(&key).map_err(storage_error)? else {
            return Ok(None);
        };
        if let Some(index) = self.indexes.lock().get(&shard) {
            if index.shard_len == shard_len {
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
        let got = self
            .storage
            .get_partial(
                &key,
                ByteRange::FromStart(shard_len - bytes as u64, Some(bytes as u64)),
            )
            .map_err(storage_error)?;
        // Removed since its length was looked at: absent.
        let Some(raw) = got else {
            return Ok(None);
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
        let index = Index { entries, shard_len };
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
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::data::ArrayData;
    use crate::storage::zarr::store::Store;
    use crate::storage::zarr::write::create;
    use crate::storage::{ArrayOptions, ZarrCompression, ZarrFormat, ZarrOptions};

    /// A v3 store holding `v`: 1,050 i32 (10 × i) in zstd inner chunks of 100, shards of 400
    /// (the last shard short, its last inner chunk padded), laid out as anndata writes X.
    fn store(dir: &Path) -> PathBuf {
        store_of(dir, |i| 10 * i)
    }

    fn store_of(dir: &Path, value: impl Fn(i32) -> i32) -> PathBuf {
        let options = ZarrOptions {
            chunk_rows: Some(100),
            shard_rows: Some(400),
            compression: Some(ZarrCompression::Zstd(3)),
            ..ZarrOptions::unsharded(ZarrFormat::V3)
        };
        let path = dir.join("s.zarr");
        let root = create(&path, &options).unwrap();
        let v: Vec<i32> = (0..1050).map(value).collect();
        root.write_array("v", &ArrayData::from(v), &ArrayOptions::default())
            .unwrap();
        drop(root);
        path
    }

    fn reader(path: &Path) -> ShardedZstd {
        let doc: Value =
            serde_json::from_slice(&std::fs::read(path.join("v/zarr.json")).unwrap()).unwrap();
        let layout = layout(&doc, 4).expect("the default layout");
        let store = Store::open(path).unwrap();
        ShardedZstd::new(&store, "v/".into(), layout)
    }

    fn read(r: &ShardedZstd, rows: Range<u64>) -> Result<Option<Vec<i32>>> {
        let mut out = vec![0u8; (rows.end - rows.start) as usize * 4];
        Ok(r.read_into(rows, &mut out)?.then(|| {
            out.chunks_exact(4)
                .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
                .collect()
        }))
    }

    #[test]
    fn a_read_over_more_shards_than_it_holds_open_reads_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let options = ZarrOptions {
            chunk_rows: Some(5),
            shard_rows: Some(10),
            compression: Some(ZarrCompression::Zstd(3)),
            ..ZarrOptions::unsharded(ZarrFormat::V3)
        };
        let path = dir.path().join("many.zarr");
        let root = create(&path, &options).unwrap();
        let n = 10 * (2 * OPEN_SHARDS as i32 + 3);
        let v: Vec<i32> = (0..n).map(|i| 3 * i).collect();
        root.write_array("v", &ArrayData::from(v.clone()), &ArrayOptions::default())
            .unwrap();
        drop(root);
        let r = reader(&path);
        assert_eq!(read(&r, 0..n as u64).unwrap().unwrap(), v);
        assert_eq!(
            read(&r, 7..n as u64 - 3).unwrap().unwrap(),
            v[7..v.len() - 3]
        );
    }

    #[test]
    fn reads_every_kind_of_range_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let r = reader(&store(dir.path()));
        for rows in [
            0..1050,
            0..1,
            99..101,
            100..200,
            350..450,
            399..801,
            1000..1050,
            1049..1050,
            7..7,
        ] {
            let want: Vec<i32> = rows.clone().map(|i| 10 * i as i32).collect();
            assert_eq!(read(&r, rows.clone()).unwrap(), Some(want), "{rows:?}");
        }
        let mut small = vec![0u8; 3];
        assert!(r.read_into(0..1, &mut small).is_err());
        assert!(r.read_into(1000..1051, &mut vec![0u8; 51 * 4]).is_err());
        // The array reader takes this path for the layout, with the same values.
        let root = crate::storage::zarr::open(&dir.path().join("s.zarr")).unwrap();
        let v = root.array("v").unwrap();
        let mut out = vec![0u8; 20 * 4];
        v.read_rows_into(390..410, &mut out).unwrap();
        assert_eq!(i32::from_le_bytes(out[..4].try_into().unwrap()), 3900);
        let reader = crate::paged::StoreReader::new(v).unwrap();
        assert_eq!(
            crate::paged::RangeReader::read_path(&reader),
            crate::paged::ReadPath::Shards
        );
    }

    #[test]
    fn a_shard_rewritten_since_its_index_was_kept_is_read_anew() {
        let dir = tempfile::tempdir().unwrap();
        let path = store(dir.path());
        let r = reader(&path);
        assert_eq!(read(&r, 0..2).unwrap(), Some(vec![0, 10]));
        // Shard 0 replaced by one of other values (another length).
        let other = tempfile::tempdir().unwrap();
        let new = store_of(other.path(), |i| i * i * 7 + 3).join("v/c/0");
        let old = path.join("v/c/0");
        assert_ne!(
            std::fs::metadata(&new).unwrap().len(),
            std::fs::metadata(&old).unwrap().len()
        );
        std::fs::copy(&new, &old).unwrap();
        assert_eq!(read(&r, 0..3).unwrap(), Some(vec![3, 10, 31]));
    }

    /// Shard 0's file, its index and where its first frame is.
    fn shard0(path: &Path) -> (PathBuf, Vec<u8>, usize) {
        let file = path.join("v/c/0");
        let bytes = std::fs::read(&file).unwrap();
        let at = bytes.len() - (4 * 16 + 4);
        (file, bytes, at)
    }

    #[test]
    fn refuses_corrupt_shards_and_leaves_absent_ones_to_zarrs() {
        let dir = tempfile::tempdir().unwrap();
        let path = store(dir.path());
        let (file, good, at) = shard0(&path);
        let err = |bytes: &[u8]| {
            std::fs::write(&file, bytes).unwrap();
            read(&reader(&path), 0..400).unwrap_err().to_string()
        };
        // An index that does not match its checksum.
        let mut bad = good.clone();
        bad[at + 3] ^= 0xff;
        assert!(err(&bad).contains("checksum"), "{}", err(&bad));
        // The shard with word `w` of its index set to `value`, the checksum recomputed.
        let with_word = |w: usize, value: u64| {
            let mut bytes = good.clone();
            bytes[at + 8 * w..at + 8 * w + 8].copy_from_slice(&value.to_le_bytes());
            let crc = crc32c::crc32c(&bytes[at..at + 64]);
            let end = bytes.len();
            bytes[end - 4..].copy_from_slice(&crc.to_le_bytes());
            bytes
        };
        // An entry claiming more bytes than any frame of a chunk.
        let lying = with_word(1, 1 << 40);
        assert!(
            err(&lying).contains("exceeds any zstd frame"),
            "{}",
            err(&lying)
        );
        // An entry pointing beyond the end of its shard.
        let beyond = with_word(0, 1 << 40);
        assert!(
            err(&beyond).contains("beyond its shard"),
            "{}",
            err(&beyond)
        );
        // A frame whose bytes are garbage.
        let mut garbage = good.clone();
        garbage[..8].copy_from_slice(&[0xde; 8]);
        assert!(
            err(&garbage).contains("cannot be decoded"),
            "{}",
            err(&garbage)
        );
        // A shard cut short: its index is read from what is left, which does not check.
        assert!(!err(&good[..good.len() / 2]).is_empty());
        // An absent shard (its values are the fill value): left to zarrs.
        std::fs::remove_file(&file).unwrap();
        assert_eq!(read(&reader(&path), 0..10).unwrap(), None);
        assert_eq!(read(&reader(&path), 400..410).unwrap().unwrap()[0], 4000);
    }

    #[test]
    fn only_the_default_layout_is_read_here() {
        let dir = tempfile::tempdir().unwrap();
        let path = store(dir.path());
        let doc: Value =
            serde_json::from_slice(&std::fs::read(path.join("v/zarr.json")).unwrap()).unwrap();
        assert!(layout(&doc, 4).is_some());
        assert!(layout(&doc, 3).is_none());
        let edit = |f: &dyn Fn(&mut Value)| {
            let mut d = doc.clone();
            f(&mut d);
            layout(&d, 4)
        };
        fn sharding(d: &mut Value) -> &mut Value {
            &mut d["codecs"][0]["configuration"]
        }
        assert!(edit(&|d| sharding(d)["index_location"] = "start".into()).is_none());
        assert!(
            edit(&|d| sharding(d)["codecs"][0]["configuration"]["endian"] = "big".into()).is_none()
        );
        assert!(edit(&|d| sharding(d)["codecs"][1]["name"] = "gzip".into()).is_none());
        assert!(edit(&|d| d["shape"] = serde_json::json!([1050, 2])).is_none());
        assert!(edit(&|d| d["chunk_key_encoding"]["name"] = "v2".into()).is_none());
        assert!(edit(&|d| d["zarr_format"] = 2.into()).is_none());
        // Inner chunks too large to decode here (zarrs checks them against memory).
        let huge = |d: &mut Value| {
            d["shape"] = serde_json::json!([1u64 << 40]);
            d["chunk_grid"]["configuration"]["chunk_shape"] = serde_json::json!([1u64 << 40]);
            sharding(d)["chunk_shape"] = serde_json::json!([1u64 << 30]);
        };
        assert!(edit(&huge).is_none());
    }
}
