//! [`StoreReader`]: range reads through a storage backend's own array reader, for arrays that
//! no reader of the chunk manager reads faster (every Zarr array; HDF5 datasets have the direct
//! and libhdf5 readers).

use std::ops::Range;
use std::sync::Arc;

use super::{
    buffer, check_rows, range_dtype, ChunkBytes, ChunkCache, DecodedChunk, KeptChunks, RangeReader,
    ReadPath,
};
use crate::data::{ArrayData, DType};
use crate::error::ResultExt;
use crate::paged::WorkerPool;
use crate::storage::Array;
use crate::{Error, Result};

/// A [`RangeReader`] over a 1-d or 2-d [`Array`] of numbers or bools, reading through
/// [`Array::read_rows`] (the backend decodes whole chunks, on as many threads as it uses).
///
/// Given a cache ([`RangeReader::use_cache`]), the storage chunks a read needs only part of
/// (the ends of a range, or a few rows) are decoded whole once and kept there, so reads of
/// neighbouring rows (the next block of a scan, the next of a batch of sorted cells) do not
/// decode them again; chunks a read covers whole are decoded straight for it.
pub struct StoreReader {
    array: Box<dyn Array>,
    element: String,
    shape: Vec<usize>,
    dtype: DType,
    chunk_rows: Option<usize>,
    /// The storage chunks kept in the cache.
    kept: KeptChunks,
    /// The threads the backend decodes on (see [`WorkerPool::decoding`]); rayon's global
    /// pool without.
    workers: Option<Arc<WorkerPool>>,
}

impl std::fmt::Debug for StoreReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReader")
            .field("element", &self.element)
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .finish()
    }
}

impl StoreReader {
    /// Reads from `array`, which must be 1-d or 2-d and hold numbers or bools (its claim is
    /// checked first).
    pub fn new(array: Box<dyn Array>) -> Result<Self> {
        let element = array.path();
        let build = || -> Result<(Vec<usize>, DType, Option<usize>)> {
            array.check_claim()?;
            let shape = array.shape()?;
            let dtype = range_dtype(&array.stored_type()?, &shape)?;
            let chunk_rows = array.chunk_rows()?;
            Ok((shape, dtype, chunk_rows))
        };
        let (shape, dtype, chunk_rows) = build().in_element(&element)?;
        let row_bytes = shape[1..].iter().product::<usize>() * dtype.size();
        let chunk_bytes = chunk_rows.map_or(0, |c| c.saturating_mul(row_bytes));
        Ok(StoreReader {
            array,
            element,
            shape,
            dtype,
            chunk_rows,
            kept: KeptChunks::new(chunk_bytes),
            workers: None,
        })
    }

    /// The same reader, decoding on `workers`' decoding threads.
    pub(crate) fn with_workers(mut self, workers: Arc<WorkerPool>) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Rows `rows` decoded by the backend into `out`, on the decoding threads.
    fn decode(&self, rows: Range<usize>, out: &mut [u8]) -> Result<()> {
        match &self.workers {
            Some(w) => w.decoding(|| self.array.read_rows_into(rows, out)),
            None => self.array.read_rows_into(rows, out),
        }
    }

    /// Bytes of one row (all of the other axes).
    fn row_bytes(&self) -> usize {
        self.shape[1..].iter().product::<usize>() * self.dtype.size()
    }

    /// Rows `rows` (within the array) decoded by the backend into `out` (their bytes), the
    /// chunks at the ends through `cache` when there is one.
    fn fill(&self, rows: Range<usize>, out: &mut [u8]) -> Result<()> {
        match (self.kept.cache(), self.chunk_rows) {
            (Some(cache), Some(per)) if !rows.is_empty() && per > 0 => {
                self.fill_through(cache, per, rows, out)
            }
            _ => self.decode(rows, out),
        }
    }

    /// [`StoreReader::fill`] with the storage chunks at the ends of `rows` that it covers only
    /// in part taken from `cache` (decoded whole and kept there when not held yet); the
    /// chunks between are decoded straight into `out`.
    fn fill_through(
        &self,
        cache: &dyn ChunkCache,
        per: usize,
        rows: Range<usize>,
        out: &mut [u8],
    ) -> Result<()> {
        let n = self.shape[0];
        let chunk = |c: usize| c * per..n.min((c + 1) * per);
        let partial = |c: usize| {
            let r = chunk(c);
            rows.start > r.start || rows.end < r.end
        };
        let (first, last) = (rows.start / per, (rows.end - 1) / per);
        let head = partial(first).then_some(first);
        let tail = (last != first && partial(last)).then_some(last);
        let middle = head.map_or(rows.start, |h| chunk(h).end.min(rows.end))
            ..tail.map_or(rows.end, |t| chunk(t).start);
        let row_bytes = self.row_bytes();
        let (head_out, rest) = out.split_at_mut((middle.start - rows.start) * row_bytes);
        let (middle_out, tail_out) = rest.split_at_mut(middle.len() * row_bytes);
        let copy_kept = move |c: usize, at: usize, out: &mut [u8]| -> Result<()> {
            let kept = self.kept_chunk(cache, c, chunk(c))?;
            out.copy_from_slice(&kept.bytes()[at..at + out.len()]);
            Ok(())
        };
        let mut parts: Vec<Part<'_>> = Vec::with_capacity(3);
        if let Some(h) = head {
            let at = (rows.start - h * per) * row_bytes;
            parts.push(Box::new(move || copy_kept(h, at, head_out)));
        }
        if let Some(t) = tail {
            parts.push(Box::new(move || copy_kept(t, 0, tail_out)));
        }
        if !middle.is_empty() {
            parts.push(Box::new(move || self.decode(middle, middle_out)));
        }
        at_once(parts)
    }

    /// Chunk `c` (rows `rows`) decoded whole, from `cache` or kept there.
    fn kept_chunk(
        &self,
        cache: &dyn ChunkCache,
        c: usize,
        rows: Range<usize>,
    ) -> Result<Arc<dyn DecodedChunk>> {
        let bytes = rows.len() * self.row_bytes();
        cache.chunk_or_load(self.kept.key(c), &mut || {
            let mut out = if bytes == self.kept.pool().chunk_len() {
                self.kept.pool().take()
            } else {
                // The last chunk, cut short by the array's end.
                ChunkBytes::on_heap(bytes)
            };
            self.decode(rows.clone(), out.as_mut_slice())?;
            Ok(out)
        })
    }

    /// Rows `rows` as an array, in the memory of `spare` where it fits.
    fn read_typed(&self, rows: Range<usize>, spare: Option<ArrayData>) -> Result<ArrayData> {
        check_rows(&rows, self.shape[0])?;
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        buffer::filled(self.dtype, &shape, spare, |out| self.fill(rows, out))
            .in_element(&self.element)
    }
}

/// A part of a read: one end chunk copied out of the cache, or the chunks between.
type Part<'a> = Box<dyn FnOnce() -> Result<()> + Send + 'a>;

/// Runs `parts` at once, each but the last on a thread of its own: a read of a few chunks is
/// otherwise mostly its two ends, each one chunk decoded on one thread. Not on the pool the
/// backend decodes on (rayon): loading an end holds the cache's lock of its chunk while it
/// waits for that pool, and a pool thread waiting there may take up other work, such as
/// another read's end waiting for the same lock. The first error is returned.
fn at_once(mut parts: Vec<Part<'_>>) -> Result<()> {
    let Some(here) = parts.pop() else {
        return Ok(());
    };
    if parts.is_empty() {
        return here();
    }
    std::thread::scope(|s| {
        let mut aside = Vec::with_capacity(parts.len());
        for part in parts {
            aside.push(
                std::thread::Builder::new()
                    .name("annpage-chunk-end".into())
                    .spawn_scoped(s, part)?,
            );
        }
        let mine = here();
        let mut result = Ok(());
        for handle in aside {
            let r = handle
                .join()
                .unwrap_or_else(|_| Err(Error::invalid("reading a chunk panicked")));
            result = result.and(r);
        }
        result.and(mine)
    })
}

impl RangeReader for StoreReader {
    fn element(&self) -> &str {
        &self.element
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn dtype(&self) -> DType {
        self.dtype
    }

    fn chunk_rows(&self) -> Option<usize> {
        self.chunk_rows
    }

    fn decodes_whole_chunks(&self) -> bool {
        self.chunk_rows.is_some()
    }

    fn read_path(&self) -> ReadPath {
        crate::storage::zarr::read_path(self.array.as_ref())
    }

    fn read_rows(&self, rows: Range<usize>) -> Result<ArrayData> {
        self.read_typed(rows, None)
    }

    fn read_rows_reusing(&self, rows: Range<usize>, spare: ArrayData) -> Result<ArrayData> {
        self.read_typed(rows, Some(spare))
    }

    fn use_cache(&self, cache: Arc<dyn ChunkCache>) {
        self.kept.use_cache(cache);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paged::BlockCache;
    use crate::storage::zarr::write::create;
    use crate::storage::{ArrayOptions, Compression, ZarrFormat, ZarrOptions};

    /// A store with `v` (1,000 f64 in gzip chunks of 100, shards of 400 in v3), `m` (7 × 3
    /// u16 in chunks of 2 rows) and `b` (5 bools), reopened for reading.
    fn store(dir: &std::path::Path, format: ZarrFormat) -> Box<dyn crate::storage::Group> {
        let options = ZarrOptions {
            chunk_rows: Some(100),
            shard_rows: (format == ZarrFormat::V3).then_some(400),
            ..ZarrOptions::unsharded(format)
        };
        let path = dir.join(format!("{format:?}.zarr"));
        let root = create(&path, &options).unwrap();
        let gzip = ArrayOptions::compressed(Compression::Gzip(4));
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        root.write_array("v", &ArrayData::from(v), &gzip).unwrap();
        let m = ndarray::Array2::from_shape_fn((7, 3), |(i, j)| (10 * i + j) as u16);
        let m_options = ArrayOptions {
            chunks: Some(vec![2, 3]),
            ..ArrayOptions::default()
        };
        root.write_array("m", &ArrayData::from(m), &m_options)
            .unwrap();
        let b = vec![true, false, false, true, true];
        root.write_array("b", &ArrayData::from(b), &gzip).unwrap();
        drop(root);
        crate::storage::zarr::open(&path).unwrap()
    }

    #[test]
    fn chunks_needed_in_part_are_decoded_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        for format in [ZarrFormat::V2, ZarrFormat::V3] {
            let root = store(dir.path(), format);
            let r = StoreReader::new(root.array("v").unwrap()).unwrap();
            assert_eq!(
                (r.chunk_rows(), r.read_path()),
                (Some(100), ReadPath::Store)
            );
            let cache = Arc::new(BlockCache::new(1 << 20));
            r.use_cache(cache.clone());
            for rows in [0..1000, 150..151, 99..201, 950..1000, 0..0, 120..180] {
                let expected: Vec<f64> = rows.clone().map(|i| i as f64).collect();
                assert_eq!(r.read_rows(rows).unwrap(), ArrayData::from(expected));
            }
            // Chunks needed in part were kept decoded: 1, 0 and 2 (for 99..201), 9; the read
            // of 120..180 found chunk 1 kept.
            assert_eq!(cache.stats().entries, 4, "{format:?}");
            assert_eq!(cache.stats().hits, 1, "{format:?}");
            drop(r);
            assert_eq!(
                cache.stats().entries,
                0,
                "closing the reader frees its chunks"
            );
        }
    }

    #[test]
    fn parts_run_at_once_and_the_first_error_is_returned() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let counter = AtomicUsize::new(0);
        let ran = &counter;
        let ok = move || -> Part<'_> {
            Box::new(move || {
                ran.fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
        };
        let fails = move |what: &'static str| -> Part<'_> {
            Box::new(move || {
                ran.fetch_add(1, Ordering::Relaxed);
                Err(Error::invalid(what))
            })
        };
        assert!(at_once(vec![]).is_ok());
        assert!(at_once(vec![ok(), ok(), ok()]).is_ok());
        let e = at_once(vec![ok(), fails("head"), fails("middle")]).unwrap_err();
        assert!(e.to_string().contains("head"), "{e}");
        let e = at_once(vec![ok(), fails("middle")]).unwrap_err();
        assert!(e.to_string().contains("middle"), "{e}");
        // Every part ran, whatever failed.
        assert_eq!(counter.load(Ordering::Relaxed), 8);
    }

    #[test]
    fn two_d_and_bool_arrays_read_the_same_with_and_without_a_cache() {
        let dir = tempfile::tempdir().unwrap();
        let root = store(dir.path(), ZarrFormat::V3);
        for name in ["m", "b", "v"] {
            let plain = StoreReader::new(root.array(name).unwrap()).unwrap();
            let cached = StoreReader::new(root.array(name).unwrap()).unwrap();
            cached.use_cache(Arc::new(BlockCache::new(1 << 20)));
            let whole = root.array(name).unwrap().read().unwrap();
            let n = whole.nrows();
            for rows in [0..n, 1..n - 1, 3..4, 2..2] {
                let expected = whole.select(0, &rows.clone().collect::<Vec<_>>());
                assert_eq!(plain.read_rows(rows.clone()).unwrap(), expected, "{name}");
                assert_eq!(cached.read_rows(rows.clone()).unwrap(), expected, "{name}");
                // Into a spare of the same dtype too large, as a scan hands over.
                let spare = whole.clone();
                assert_eq!(cached.read_rows_reusing(rows, spare).unwrap(), expected);
            }
            assert!(cached.read_rows(0..n + 1).is_err());
        }
    }

    /// The backend's decode into caller memory (`unsafe` inside the Zarr reader) writes the
    /// same bytes as a decode into its own, and refuses a buffer of the wrong size.
    #[test]
    fn decoding_into_a_buffer_equals_reading_and_checks_its_length() {
        let dir = tempfile::tempdir().unwrap();
        for format in [ZarrFormat::V2, ZarrFormat::V3] {
            let root = store(dir.path(), format);
            for (name, rows) in [("v", 95..705), ("m", 1..6), ("b", 1..4)] {
                let a = root.array(name).unwrap();
                let values = a.read_rows(rows.clone()).unwrap();
                let mut expected = vec![0u8; values.len() * values.dtype().size()];
                values.copy_bytes_into(&mut expected).unwrap();
                let mut out = vec![0xAAu8; expected.len()];
                a.read_rows_into(rows.clone(), &mut out).unwrap();
                assert_eq!(out, expected, "{format:?} {name}");
                let mut short = vec![0u8; expected.len() - 1];
                let e = a.read_rows_into(rows, &mut short).unwrap_err();
                assert!(e.to_string().contains("does not fit"), "{e}");
            }
        }
    }
}
