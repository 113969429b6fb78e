//! Deflate on several threads: appending rows to a gzip dataset with its chunks compressed by
//! libdeflate on worker threads and stored with HDF5's direct chunk write (`H5Dwrite_chunk`).
//!
//! libhdf5 runs a dataset's filters on the thread that writes, under its global lock, so a
//! gzip write through it compresses on one core. Here a [`RowWriter`] cuts the rows it is
//! given into the dataset's chunks, [`Deflaters`] threads compress them (the zlib format —
//! 2-byte header, deflate stream, Adler-32 — which is what HDF5's deflate filter writes and
//! reads), and the writer stores them in order, as libhdf5 would have: same chunk shape, the
//! dataset's own deflate filter in its pipeline, filter mask 0. Any HDF5 reader decodes them
//! as it decodes libhdf5's own chunks.
//!
//! Memory stays bounded: a writer holds one row of chunks being filled (a *band*) and at most
//! a few chunks per thread in flight; when that many are out, it waits for the oldest. Reading
//! the input (by the caller), compressing and writing overlap.
//!
//! Chunked datasets without filters take the same path without the threads: each chunk is
//! stored as it is cut (whole chunks straight from the caller's rows), with none of libhdf5's
//! copying through its chunk cache.
//!
//! Datasets the direct path cannot write (another filter, strings, more than two axes, very
//! large chunks) are written through libhdf5 by the same [`RowWriter`], so callers need not
//! tell the cases apart.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crossbeam::channel::{self, Receiver, Sender};
use hdf5::filters::Filter;
use hdf5::Dataset;
use hdf5_sys::h5d::H5Dwrite_chunk;
use hdf5_sys::h5p::H5P_DEFAULT;
use libdeflater::{CompressionLvl, Compressor};
use ndarray::ArrayD;

use super::{check_rows, write_rows};
use crate::data::{ArrayData, DType};
use crate::{Error, Result};

/// Chunks in flight per compressing thread, per writer.
const IN_FLIGHT_PER_THREAD: usize = 4;
/// The largest chunk, and the largest band of chunks, written directly (in bytes); larger
/// ones go through libhdf5.
const MAX_CHUNK_BYTES: usize = 64 << 20;
const MAX_BAND_BYTES: usize = 256 << 20;

/// Threads that compress chunks for the [`RowWriter`]s of one write; see [`with_deflaters`].
#[derive(Debug)]
pub struct Deflaters {
    jobs: Sender<Job>,
    threads: usize,
}

/// One chunk to compress: `raw` (the chunk's bytes, padded to its full shape) into `packed`.
struct Job {
    seq: u64,
    level: u8,
    raw: Vec<u8>,
    packed: Vec<u8>,
    reply: Sender<Done>,
}

/// A compressed chunk, with the buffers given back for the next chunks.
struct Done {
    seq: u64,
    raw: Vec<u8>,
    packed: std::result::Result<Vec<u8>, String>,
}

/// Runs `f` with `threads` compressing threads (at least 1, at most four per core or 16),
/// stopped when it returns.
///
/// If the system starts no thread at all, `f` gets `None` and [`RowWriter`]s write through
/// libhdf5.
pub fn with_deflaters<R>(threads: usize, f: impl FnOnce(Option<&Deflaters>) -> R) -> R {
    let threads = threads.clamp(1, crate::paged::max_threads());
    let (jobs, queue) = channel::bounded::<Job>(threads);
    std::thread::scope(|s| {
        let mut started = 0;
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("annpage-deflate-{i}"))
                .spawn_scoped(s, move || compress_jobs(&queue));
            started += usize::from(spawned.is_ok());
        }
        drop(queue);
        if started == 0 {
            return f(None);
        }
        let deflaters = Deflaters {
            jobs,
            threads: started,
        };
        // The threads end once `deflaters` (the only sender) is dropped and the queue drained.
        f(Some(&deflaters))
    })
}

/// A compressing thread: takes jobs until the queue closes, answering every one.
fn compress_jobs(queue: &Receiver<Job>) {
    let mut compressor: Option<(u8, Compressor)> = None;
    for mut job in queue {
        let packed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let c = match &mut compressor {
                Some((level, c)) if *level == job.level => c,
                _ => {
                    let level = CompressionLvl::new(i32::from(job.level))
                        .map_err(|_| format!("gzip level {} is out of range", job.level))?;
                    &mut compressor.insert((job.level, Compressor::new(level))).1
                }
            };
            let mut out = std::mem::take(&mut job.packed);
            out.resize(c.zlib_compress_bound(job.raw.len()), 0);
            let n = c
                .zlib_compress(&job.raw, &mut out)
                .map_err(|e| format!("deflate failed: {e}"))?;
            out.truncate(n);
            Ok(out)
        }))
        .unwrap_or_else(|_| Err("the compressing thread panicked".into()));
        // The writer may be gone (it failed): then nobody waits for this chunk.
        let _ = job.reply.send(Done {
            seq: job.seq,
            raw: job.raw,
            packed,
        });
    }
}

/// Appends rows, along the first axis, to a dataset made by [`super::create_array`]: written
/// chunk by chunk, compressed on the [`Deflaters`]' threads when the dataset's only filter is
/// deflate, stored as they are when it has no filter and is chunked, through libhdf5
/// otherwise.
///
/// Rows go after those already pushed, from row 0; a dataset created resizable grows to take
/// them, others must have room. [`RowWriter::finish`] writes the last, partial, chunks: until
/// then rows pushed may not be stored yet.
pub struct RowWriter<'a> {
    ds: Dataset,
    /// Rows pushed so far.
    rows: usize,
    /// The dataset's length along its first axis, as last set.
    extent: usize,
    resizable: bool,
    direct: Option<Direct<'a>>,
}

/// The state of a writer that stores its chunks itself.
struct Direct<'a> {
    /// The compressing threads and the deflate level; `None` for a dataset without filters,
    /// whose chunks are stored as they are, on the caller's thread.
    deflate: Option<(&'a Deflaters, u8)>,
    element: usize,
    /// The dataset's number of axes (1 or 2).
    rank: usize,
    /// The chunk shape, as (rows, columns); 1-d datasets have one column.
    chunk: (usize, usize),
    /// Columns of the dataset (1 for 1-d).
    width: usize,
    /// Rows of the current band: `band_start..band_start + band.len() / row_bytes`.
    band: Vec<u8>,
    band_start: usize,
    /// Chunk offsets by sequence number, for chunks sent and not yet written.
    offsets: BTreeMap<u64, [u64; 2]>,
    /// Compressed chunks that came back before an earlier one.
    ready: BTreeMap<u64, Done>,
    next_seq: u64,
    next_write: u64,
    replies: Receiver<Done>,
    reply: Sender<Done>,
    /// Buffers given back, for the next chunks.
    spare: Vec<Vec<u8>>,
}

impl<'a> RowWriter<'a> {
    /// A writer of `ds` from row 0, compressing on `deflaters` when it can.
    pub fn new(ds: &Dataset, deflaters: Option<&'a Deflaters>) -> Result<Self> {
        let shape = ds.shape();
        let direct = direct_state(ds, &shape, deflaters)?;
        Ok(RowWriter {
            ds: ds.clone(),
            rows: 0,
            extent: shape.first().copied().unwrap_or(0),
            resizable: ds.is_resizable(),
            direct,
        })
    }

    /// Whether chunks are compressed here (on several threads) rather than by libhdf5.
    #[cfg(test)]
    pub fn is_parallel(&self) -> bool {
        self.direct.as_ref().is_some_and(|d| d.deflate.is_some())
    }

    /// Whether chunks are stored here as they are (no filters) rather than by libhdf5.
    #[cfg(test)]
    pub fn is_raw(&self) -> bool {
        self.direct.as_ref().is_some_and(|d| d.deflate.is_none())
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The rows of one chunk of the dataset, if chunked.
    pub fn chunk_rows(&self) -> Option<usize> {
        self.ds.chunk().and_then(|c| c.first().copied())
    }

    /// Appends `rows` (of the dataset's dtype and trailing axes).
    pub fn push(&mut self, rows: &ArrayData) -> Result<()> {
        check_rows(&self.ds, rows)?;
        let start = self.rows;
        let end = start
            .checked_add(rows.nrows())
            .ok_or_else(|| Error::invalid("dataset length overflows"))?;
        if end > self.extent && !self.resizable {
            return Err(Error::invalid(format!(
                "rows {start}..{end} are outside a dataset of {} rows",
                self.extent
            )));
        }
        let Some(direct) = &mut self.direct else {
            if end > self.extent {
                grow(&self.ds, &mut self.extent, end)?;
            }
            write_rows(&self.ds, start, rows)?;
            self.rows = end;
            return Ok(());
        };
        let bytes = raw_bytes(rows)
            .ok_or_else(|| Error::invalid("strings cannot be written chunk by chunk"))?;
        self.rows = end;
        let row_bytes = direct.width * direct.element;
        let band_bytes = direct.chunk.0 * row_bytes;
        let mut rest: &[u8] = &bytes;
        while !rest.is_empty() {
            if direct.deflate.is_none()
                && direct.band.is_empty()
                && direct.chunk.1 == direct.width
                && rest.len() >= band_bytes
            {
                // A whole chunk of contiguous rows, stored from the caller's bytes.
                let (chunk, tail) = rest.split_at(band_bytes);
                let offset = [direct.band_start as u64, 0];
                direct.store_raw(&self.ds, &mut self.extent, self.rows, offset, chunk)?;
                direct.band_start += direct.chunk.0;
                rest = tail;
                continue;
            }
            let take = rest.len().min(band_bytes - direct.band.len());
            direct.band.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if direct.band.len() == band_bytes {
                direct.send_band(&self.ds, &mut self.extent, self.rows)?;
            }
        }
        Ok(())
    }

    /// Writes the chunks still held and waits for every chunk to be stored; a resizable
    /// dataset is left as long as the rows pushed (or longer, if it was created so).
    pub fn finish(mut self) -> Result<()> {
        if let Some(direct) = &mut self.direct {
            if !direct.band.is_empty() {
                direct.send_band(&self.ds, &mut self.extent, self.rows)?;
            }
            while !direct.offsets.is_empty() {
                direct.wait_one(&self.ds, &mut self.extent, self.rows)?;
            }
        }
        if self.rows > self.extent {
            grow(&self.ds, &mut self.extent, self.rows)?;
        }
        Ok(())
    }
}

/// The direct-write state for `ds` (of `shape`), or `None` if libhdf5 must write it.
fn direct_state<'a>(
    ds: &Dataset,
    shape: &[usize],
    deflaters: Option<&'a Deflaters>,
) -> Result<Option<Direct<'a>>> {
    let deflate = match (ds.filters().as_slice(), deflaters) {
        ([], _) => None,
        ([Filter::Deflate(level)], Some(d)) if *level <= 9 => Some((d, *level)),
        _ => return Ok(None),
    };
    let Some(chunk) = ds.chunk() else {
        return Ok(None);
    };
    let stored = super::StoredType::of(&ds.dtype()?)?;
    let element = match stored.dtype() {
        Some(DType::String) | None => return Ok(None),
        Some(d) => d.size(),
    };
    let (chunk, width) = match (chunk.as_slice(), shape) {
        (&[rows], &[_]) => ((rows, 1), 1),
        (&[rows, cols], &[_, width]) => ((rows, cols), width),
        _ => return Ok(None),
    };
    if chunk.0 == 0 || chunk.1 == 0 {
        return Ok(None);
    }
    let chunk_bytes = chunk
        .0
        .checked_mul(chunk.1)
        .and_then(|n| n.checked_mul(element));
    let band_bytes = chunk
        .0
        .checked_mul(width)
        .and_then(|n| n.checked_mul(element));
    match (chunk_bytes, band_bytes) {
        (Some(c), Some(b)) if c <= MAX_CHUNK_BYTES && b <= MAX_BAND_BYTES => {}
        _ => return Ok(None),
    }
    let (reply, replies) = channel::unbounded();
    Ok(Some(Direct {
        deflate,
        element,
        rank: shape.len(),
        chunk,
        width,
        band: Vec::new(),
        band_start: 0,
        offsets: BTreeMap::new(),
        ready: BTreeMap::new(),
        next_seq: 0,
        next_write: 0,
        replies,
        reply,
        spare: Vec::new(),
    }))
}

impl Direct<'_> {
    /// How many chunks may be in flight at once.
    fn in_flight(&self) -> usize {
        self.deflate
            .map_or(1, |(d, _)| IN_FLIGHT_PER_THREAD * d.threads)
    }

    /// Stores `chunk`, the raw bytes of the chunk at `offset` (a dataset without filters).
    fn store_raw(
        &self,
        ds: &Dataset,
        extent: &mut usize,
        rows: usize,
        offset: [u64; 2],
        chunk: &[u8],
    ) -> Result<()> {
        let (chunk_rows, chunk_cols) = self.chunk;
        if chunk.len() != chunk_rows * chunk_cols * self.element {
            return Err(Error::invalid(format!(
                "a raw chunk of {} bytes for chunks of {chunk_rows} x {chunk_cols} values",
                chunk.len()
            )));
        }
        // The chunk's first row must lie within the dataset: every row pushed so far is.
        if offset[0] >= *extent as u64 {
            grow(ds, extent, rows)?;
        }
        write_chunk(ds, &offset[..self.rank], chunk)
    }

    /// Cuts the band (one row of chunks, full or the last one) into chunks and sends them.
    fn send_band(&mut self, ds: &Dataset, extent: &mut usize, rows: usize) -> Result<()> {
        let (chunk_rows, chunk_cols) = self.chunk;
        let element = self.element;
        let row_bytes = self.width * element;
        let band_rows = self.band.len() / row_bytes;
        let chunk_bytes = chunk_rows * chunk_cols * element;
        if chunk_cols == self.width {
            // The band is one chunk: sent as it is, with zeros past the dataset's end (readers
            // ignore what lies outside the dataset).
            let mut next = self.spare.pop().unwrap_or_default();
            next.clear();
            let mut raw = std::mem::replace(&mut self.band, next);
            raw.resize(chunk_bytes, 0);
            self.send(ds, extent, rows, raw, [self.band_start as u64, 0])?;
            self.band_start += chunk_rows;
            return Ok(());
        }
        for col in (0..self.width).step_by(chunk_cols) {
            let cols = chunk_cols.min(self.width - col);
            // Each row's part of this chunk, on zeros where the chunk passes the edge.
            let mut raw = self.spare.pop().unwrap_or_default();
            raw.clear();
            raw.resize(chunk_bytes, 0);
            for r in 0..band_rows {
                let from = r * row_bytes + col * element;
                let to = r * chunk_cols * element;
                raw[to..to + cols * element]
                    .copy_from_slice(&self.band[from..from + cols * element]);
            }
            let offset = [self.band_start as u64, col as u64];
            self.send(ds, extent, rows, raw, offset)?;
        }
        self.band.clear();
        self.band_start += chunk_rows;
        Ok(())
    }

    /// Sends one chunk, first waiting for the oldest if too many are in flight.
    fn send(
        &mut self,
        ds: &Dataset,
        extent: &mut usize,
        rows: usize,
        raw: Vec<u8>,
        offset: [u64; 2],
    ) -> Result<()> {
        let Some((deflaters, level)) = self.deflate else {
            self.store_raw(ds, extent, rows, offset, &raw)?;
            if self.spare.len() < 2 {
                self.spare.push(raw);
            }
            return Ok(());
        };
        while self.offsets.len() >= self.in_flight() {
            self.wait_one(ds, extent, rows)?;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.offsets.insert(seq, offset);
        let job = Job {
            seq,
            level,
            raw,
            packed: self.spare.pop().unwrap_or_default(),
            reply: self.reply.clone(),
        };
        deflaters
            .jobs
            .send(job)
            .map_err(|_| Error::invalid("the compressing threads have stopped"))?;
        // Store whatever is already compressed, without waiting.
        while let Ok(done) = self.replies.try_recv() {
            self.store(ds, extent, rows, done)?;
        }
        Ok(())
    }

    /// Waits for one compressed chunk and stores those that are next in order.
    fn wait_one(&mut self, ds: &Dataset, extent: &mut usize, rows: usize) -> Result<()> {
        // `self.reply` keeps the channel open, and every job sent is answered (the threads
        // run until the `Deflaters` are dropped, which outlive this writer).
        let done = self
            .replies
            .recv()
            .map_err(|_| Error::invalid("the compressing threads have stopped"))?;
        self.store(ds, extent, rows, done)
    }

    /// Takes `done` and writes every chunk now ready in order.
    fn store(&mut self, ds: &Dataset, extent: &mut usize, rows: usize, done: Done) -> Result<()> {
        self.ready.insert(done.seq, done);
        while let Some(done) = self.ready.remove(&self.next_write) {
            let offset = self
                .offsets
                .remove(&done.seq)
                .ok_or_else(|| Error::invalid("a chunk came back twice"))?;
            let packed = done.packed.map_err(Error::invalid)?;
            // The chunk's first row must lie within the dataset: every row pushed so far is.
            if offset[0] >= *extent as u64 {
                grow(ds, extent, rows)?;
            }
            write_chunk(ds, &offset[..self.rank], &packed)?;
            self.next_write += 1;
            // Buffers for the next chunks: as many as can be in flight, raw and compressed.
            if self.spare.len() < 2 * self.in_flight() {
                self.spare.extend([done.raw, packed]);
            }
        }
        Ok(())
    }
}

/// Grows a resizable dataset's first axis to `len`.
fn grow(ds: &Dataset, extent: &mut usize, len: usize) -> Result<()> {
    let mut shape = ds.shape();
    shape[0] = len;
    ds.resize(shape)?;
    *extent = len;
    Ok(())
}

/// Stores `packed`, a chunk as the dataset's whole pipeline leaves it (deflated, or raw when
/// there are no filters), at chunk `offset`.
fn write_chunk(ds: &Dataset, offset: &[u64], packed: &[u8]) -> Result<()> {
    if offset.len() != ds.ndim() {
        return Err(Error::invalid(format!(
            "a chunk offset of {} axes for a dataset of {}",
            offset.len(),
            ds.ndim()
        )));
    }
    let status = hdf5::sync::sync(|| {
        // SAFETY: `offset` points to `ds.ndim()` values (checked above), which is what
        // `H5Dwrite_chunk` reads; `packed` is a live slice of `packed.len()` bytes that the
        // library only reads during the call. `ds.id()` is an open dataset held by `ds`.
        // Filter mask 0 says every filter of the pipeline (deflate only, or none: checked when
        // the writer was made) was applied: `packed` is a zlib stream, or a whole chunk's raw
        // bytes (`store_raw` checks the length). Offsets lie on the chunk grid and within the
        // extent (the writer's invariants; libhdf5 checks both as well).
        unsafe {
            H5Dwrite_chunk(
                ds.id(),
                H5P_DEFAULT,
                0,
                offset.as_ptr(),
                packed.len(),
                packed.as_ptr().cast(),
            )
        }
    });
    hdf5::h5check(status)?;
    Ok(())
}

/// The values of `a` as bytes in row-major order (`None` for strings).
fn raw_bytes(a: &ArrayData) -> Option<Cow<'_, [u8]>> {
    fn bytes<T: bytemuck::NoUninit>(a: &ArrayD<T>) -> Cow<'_, [u8]> {
        match a.as_slice() {
            Some(values) => Cow::Borrowed(bytemuck::cast_slice(values)),
            None => {
                let standard = a.as_standard_layout();
                let values = standard.as_slice().unwrap_or_default();
                Cow::Owned(bytemuck::cast_slice(values).to_vec())
            }
        }
    }
    Some(match a {
        ArrayData::Bool(a) => bytes(a),
        ArrayData::I8(a) => bytes(a),
        ArrayData::I16(a) => bytes(a),
        ArrayData::I32(a) => bytes(a),
        ArrayData::I64(a) => bytes(a),
        ArrayData::U8(a) => bytes(a),
        ArrayData::U16(a) => bytes(a),
        ArrayData::U32(a) => bytes(a),
        ArrayData::U64(a) => bytes(a),
        ArrayData::F16(a) => bytes(a),
        ArrayData::F32(a) => bytes(a),
        ArrayData::F64(a) => bytes(a),
        ArrayData::String(_) => return None,
    })
}

#[cfg(test)]
mod tests;
