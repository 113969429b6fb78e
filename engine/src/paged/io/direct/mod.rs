//! The fast read path: [`DirectReader`] reads a dataset's stored bytes with positioned reads
//! and decodes them in annpage, on several threads, without libhdf5 (and so without its global
//! lock) once the dataset is indexed.
//!
//! It stands on the HDF5 backend's knowledge of the file: `storage::h5::chunks` says where the
//! bytes are (one offset, or the table of chunks from libhdf5's chunk iteration, checked
//! against the file's length and the dataset's shape), `storage::h5::filters` undoes the
//! filters (deflate, shuffle, LZF, Fletcher-32) honouring each chunk's mask.
//!
//! Datasets this path does not handle (other filters, big-endian values, compact
//! or external storage, unwritten chunks, files with a user block) are read through libhdf5
//! instead; [`DirectReader::open`] says why.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use hdf5::Dataset;
use parking_lot::Mutex;

use super::{
    buffer, check_rows, read_then_check_indices, split_threads, ChunkBytes, ChunkCache,
    DecodedChunk, KeptChunks, RangeReader, ReadPath,
};
use crate::data::{check_indices_below, check_minor, ArrayData, DType};
use crate::error::ResultExt;
use crate::paged::pool::{Lease, SpareThreads};
use crate::paged::WorkerPool;
use crate::storage::h5::chunks::{self, ChunkEntry, Placement};
use crate::storage::h5::filters::{Pipeline, Scratch};
use crate::storage::h5::read::stored_type;
use crate::storage::h5::types::StoredType;
use crate::{Error, Result};

/// Reads below this many bytes stay on the calling thread.
const PARALLEL_MIN_BYTES: usize = 512 << 10;

/// A [`RangeReader`] that reads a dataset's stored bytes itself: positioned reads of the file,
/// chunks decoded on as many threads as [`crate::paged::ReadOptions::with_threads`] sets.
///
/// Chunks a read needs only part of (at the ends of a range, or for a few rows) are kept
/// decoded in the cache given by [`RangeReader::use_cache`], so the next read of the
/// neighbouring rows does not decode them again; chunks a read needs whole are decoded
/// straight into the result.
#[derive(Debug)]
pub struct DirectReader {
    element: String,
    shape: Vec<usize>,
    dtype: DType,
    element_size: usize,
    file: File,
    placement: Placement,
    pipeline: Pipeline,
    /// How many threads a read may decode on, and the pool's threads it borrows them from.
    threads: usize,
    spare: Arc<SpareThreads>,
    /// The decoded chunks kept in the cache.
    kept: KeptChunks,
}

/// What [`DirectReader::open`] finds for a dataset.
#[derive(Debug)]
pub enum DirectOpen {
    /// The fast path reads it.
    Reader(DirectReader),
    /// libhdf5 must read it, for this reason (e.g. `filter nbit is decoded by libhdf5`).
    Fallback(String),
}

#[cfg(test)]
impl DirectOpen {
    /// The reader, if the fast path reads the dataset.
    pub fn reader(self) -> Option<DirectReader> {
        match self {
            DirectOpen::Reader(r) => Some(r),
            DirectOpen::Fallback(_) => None,
        }
    }

    /// Why libhdf5 must read the dataset, if it must.
    pub fn fallback(self) -> Option<String> {
        match self {
            DirectOpen::Reader(_) => None,
            DirectOpen::Fallback(reason) => Some(reason),
        }
    }
}

impl DirectReader {
    /// A reader for `ds` if the fast path can read it, else [`DirectOpen::Fallback`] with the
    /// reason (the dataset must be read through libhdf5). Indexes the dataset's chunks (one
    /// pass over libhdf5's chunk table; no data is read). A large read decodes its chunks on
    /// up to `workers.threads()` threads, borrowing all but its own from the pool's spare
    /// threads, which every reader of the pool shares. Errors when the file's records are
    /// corrupt: a chunk beyond the end of the file, off the chunk grid or stored twice.
    pub fn open(ds: &Dataset, workers: &WorkerPool) -> Result<DirectOpen> {
        let element = ds.name();
        Self::open_unnamed(ds, element.clone(), workers).in_element(&element)
    }

    fn open_unnamed(ds: &Dataset, element: String, workers: &WorkerPool) -> Result<DirectOpen> {
        let ty = stored_type(ds)?;
        let (dtype, element_size) = match (&ty, ty.dtype()) {
            (StoredType::Bool, _) => (DType::Bool, 1),
            (StoredType::Int { size, .. }, Some(d)) => (d, *size),
            (StoredType::Float { size: 2 | 4 | 8 }, Some(d)) => (d, d.size()),
            _ => {
                return Ok(DirectOpen::Fallback(format!(
                    "{} values are converted by libhdf5",
                    ty.describe()
                )))
            }
        };
        if element_size > 1 {
            let order = ds.dtype()?.byte_order();
            if cfg!(target_endian = "big") || order != hdf5::datatype::ByteOrder::LittleEndian {
                return Ok(DirectOpen::Fallback(
                    "its values are not little-endian".into(),
                ));
            }
        }
        let space = ds.space()?;
        let shape = if space.is_null() {
            vec![0]
        } else {
            space.shape()
        };
        if !(1..=2).contains(&shape.len()) {
            return Ok(DirectOpen::Fallback(format!("it is {}-d", shape.len())));
        }
        let pipeline = match Pipeline::new(&ds.filters(), element_size) {
            Ok(p) => p,
            Err(filter) => {
                return Ok(DirectOpen::Fallback(format!(
                    "filter {filter} is decoded by libhdf5"
                )))
            }
        };
        let h5file = ds.file()?;
        if !h5file.is_read_only() {
            // Its latest writes may still be in libhdf5's buffers, not in the file.
            return Ok(DirectOpen::Fallback("the file is open for writing".into()));
        }
        if h5file.userblock() > 0 {
            return Ok(DirectOpen::Fallback("the file has a user block".into()));
        }
        let Some(file) = crate::storage::h5::same_file(&h5file) else {
            return Ok(DirectOpen::Fallback(
                "libhdf5's descriptor of the file cannot be shared".into(),
            ));
        };
        let file_len = file.metadata()?.len();
        let placement = match chunks::index(ds, &shape, element_size, file_len)? {
            Ok(p) => p,
            Err(reason) => return Ok(DirectOpen::Fallback(reason)),
        };
        if let Placement::Contiguous { .. } = placement {
            if !pipeline.is_empty() {
                return Err(Error::malformed("a contiguous dataset cannot have filters"));
            }
        }
        let chunk_bytes = match &placement {
            Placement::Chunked { chunk, .. } => chunk.iter().product::<usize>() * element_size,
            Placement::Contiguous { .. } => 0,
        };
        Ok(DirectOpen::Reader(DirectReader {
            kept: KeptChunks::new(chunk_bytes),
            element,
            shape,
            dtype,
            element_size,
            file,
            placement,
            pipeline,
            threads: workers.threads(),
            spare: Arc::clone(workers.spare()),
        }))
    }

    /// Bytes of one row (all of the other axes).
    fn row_bytes(&self) -> usize {
        self.shape[1..].iter().product::<usize>() * self.element_size
    }

    /// Fills `out` with the stored bytes of rows `rows` (checked to lie in the dataset),
    /// running `check` over each part as soon as it is written (while it is in cache).
    fn fill(&self, rows: Range<usize>, out: &mut [u8], check: Check<'_>) -> Result<()> {
        let row_bytes = self.row_bytes();
        match &self.placement {
            Placement::Contiguous { addr } => {
                let at = addr + (rows.start * row_bytes) as u64;
                self.file.read_exact_at(out, at)?;
                check(out)
            }
            Placement::Chunked { chunk, .. } => {
                let per = chunk[0];
                let first = rows.start / per;
                let last = (rows.end - 1) / per;
                // One task per row of chunks, each writing its own part of `out`.
                let mut tasks = Vec::with_capacity(last - first + 1);
                let mut rest = out;
                for c in first..=last {
                    let lo = rows.start.max(c * per);
                    let hi = rows.end.min((c + 1) * per);
                    let (mine, others) = rest.split_at_mut((hi - lo) * row_bytes);
                    rest = others;
                    tasks.push((c, lo - c * per..hi - c * per, mine));
                }
                // A load on a pool worker is usually one of several in parallel already: it
                // splits into its share of the threads only, and only while the pool has
                // threads to lend (reads running together share them).
                let share = split_threads(self.threads).min(tasks.len());
                let lease = match share > 1 && rows.len() * row_bytes >= PARALLEL_MIN_BYTES {
                    true => Some(self.spare.lease(share - 1)),
                    false => None,
                };
                let threads = 1 + lease.as_ref().map_or(0, Lease::threads);
                let parallel = threads > 1;
                let fill_part = |(c, local, out): (usize, Range<usize>, &mut [u8]),
                                 scratch: &mut Scratch| {
                    self.fill_chunk_row(c, local, &mut *out, scratch)?;
                    check(out)
                };
                if !parallel {
                    let mut scratch = Scratch::new();
                    for task in tasks {
                        fill_part(task, &mut scratch)?;
                    }
                    return Ok(());
                }
                let queue = Mutex::new(tasks.into_iter());
                let failure: Mutex<Option<Error>> = Mutex::new(None);
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            let mut scratch = Scratch::new();
                            loop {
                                if failure.lock().is_some() {
                                    return;
                                }
                                let Some(task) = queue.lock().next() else {
                                    return;
                                };
                                if let Err(e) = fill_part(task, &mut scratch) {
                                    failure.lock().get_or_insert(e);
                                    return;
                                }
                            }
                        });
                    }
                });
                match failure.into_inner() {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            }
        }
    }

    /// Fills `out` with rows `local` (relative to the chunk row's first row) of chunk row `c`.
    fn fill_chunk_row(
        &self,
        c: usize,
        local: Range<usize>,
        out: &mut [u8],
        scratch: &mut Scratch,
    ) -> Result<()> {
        let Placement::Chunked {
            chunk,
            grid,
            entries,
        } = &self.placement
        else {
            unreachable!("only chunked datasets have chunk rows")
        };
        let es = self.element_size;
        let chunk_bytes = chunk.iter().product::<usize>() * es;
        if chunk.len() == 1 {
            let whole = local.start == 0 && local.len() == chunk[0];
            if whole {
                return self.decode_into(c, &entries[c], out, chunk_bytes, scratch);
            }
            let e = &entries[c];
            if self.pipeline.is_raw(e.mask) {
                // Stored raw: read just the bytes asked for.
                if e.size != chunk_bytes as u64 {
                    return Err(corrupt(
                        c,
                        e,
                        format!("a raw chunk must hold {chunk_bytes} bytes"),
                    ));
                }
                self.file
                    .read_exact_at(out, e.addr + (local.start * es) as u64)?;
                return Ok(());
            }
            let bytes = self.decoded(c, e, chunk_bytes, scratch)?;
            out.copy_from_slice(&bytes.as_slice()[local.start * es..local.end * es]);
            return Ok(());
        }
        // 2-d: the chunks of this chunk row, left to right, each giving a band of columns.
        let (ncols, chunk_cols) = (self.shape[1], chunk[1]);
        let row_bytes = ncols * es;
        for k in 0..grid[1] {
            let i = c * grid[1] + k;
            let bytes = self.decoded(i, &entries[i], chunk_bytes, scratch)?;
            let cols = k * chunk_cols..ncols.min((k + 1) * chunk_cols);
            let width = cols.len() * es;
            for (j, r) in local.clone().enumerate() {
                let src = r * chunk_cols * es;
                let dst = j * row_bytes + cols.start * es;
                out[dst..dst + width].copy_from_slice(&bytes.as_slice()[src..src + width]);
            }
        }
        Ok(())
    }

    /// Decodes chunk `i` into `out` (its full decoded size), from the cache if it is there.
    fn decode_into(
        &self,
        i: usize,
        e: &ChunkEntry,
        out: &mut [u8],
        chunk_bytes: usize,
        scratch: &mut Scratch,
    ) -> Result<()> {
        let cached = self
            .kept
            .cache()
            .and_then(|c| c.cached_chunk(self.kept.key(i)));
        if let Some(chunk) = cached {
            if chunk.bytes().len() == out.len() {
                out.copy_from_slice(chunk.bytes());
                return Ok(());
            }
        }
        debug_assert_eq!(out.len(), chunk_bytes);
        if self.pipeline.is_raw(e.mask) {
            if e.size != chunk_bytes as u64 {
                return Err(corrupt(
                    i,
                    e,
                    format!("a raw chunk must hold {chunk_bytes} bytes"),
                ));
            }
            self.file.read_exact_at(out, e.addr)?;
            return Ok(());
        }
        let stored = self.read_stored(e)?;
        self.pipeline
            .decode(&stored, e.mask, out, scratch)
            .map_err(|msg| corrupt(i, e, msg))
    }

    /// Chunk `i` decoded: kept in the cache when there is one.
    fn decoded(
        &self,
        i: usize,
        e: &ChunkEntry,
        chunk_bytes: usize,
        scratch: &mut Scratch,
    ) -> Result<Decoded> {
        let load = |scratch: &mut Scratch| -> Result<ChunkBytes> {
            let mut out = self.kept.pool().take();
            debug_assert_eq!(out.as_slice().len(), chunk_bytes);
            self.decode_into(i, e, out.as_mut_slice(), chunk_bytes, scratch)?;
            Ok(out)
        };
        match self.kept.cache() {
            Some(cache) => {
                let chunk = cache.chunk_or_load(self.kept.key(i), &mut || load(scratch))?;
                Ok(Decoded::Cached(chunk))
            }
            None => load(scratch).map(Decoded::Owned),
        }
    }

    fn read_stored(&self, e: &ChunkEntry) -> Result<Vec<u8>> {
        // The size was checked against the file's length when indexing.
        let mut stored = vec![0u8; e.size as usize];
        self.file.read_exact_at(&mut stored, e.addr)?;
        Ok(stored)
    }

    /// Rows `rows` as an array, in the memory of `spare` where it fits (see
    /// [`RangeReader::read_rows_reusing`]).
    fn read_typed(&self, rows: Range<usize>, spare: Option<ArrayData>) -> Result<ArrayData> {
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        buffer::filled(self.dtype, &shape, spare, |out| {
            self.fill(rows, out, &|_| Ok(()))
        })
    }
}

/// What [`DirectReader::fill`] checks of each part of its output.
type Check<'a> = &'a (dyn Fn(&[u8]) -> Result<()> + Sync);

/// Checks the bytes of 4-byte little-endian minor indices (see [`check_indices_below`]).
fn check_index_bytes(part: &[u8], signed: bool, minor: usize) -> Result<()> {
    match bytemuck::try_cast_slice::<u8, u32>(part) {
        Ok(values) => check_indices_below(values, signed, minor),
        // Parts of a `u32` buffer are aligned; bytes that are not are checked one by one.
        Err(_) => {
            let values: Vec<u32> = part
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            check_indices_below(&values, signed, minor)
        }
    }
}

fn corrupt(i: usize, e: &ChunkEntry, msg: String) -> Error {
    Error::malformed(format!(
        "chunk {i} ({} bytes at offset {}) is corrupt: {msg}",
        e.size, e.addr
    ))
}

/// A decoded chunk, cached or not.
enum Decoded {
    Cached(Arc<dyn DecodedChunk>),
    Owned(ChunkBytes),
}

impl Decoded {
    fn as_slice(&self) -> &[u8] {
        match self {
            Decoded::Cached(c) => c.bytes(),
            Decoded::Owned(v) => v.as_slice(),
        }
    }
}

impl RangeReader for DirectReader {
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
        match &self.placement {
            Placement::Chunked { chunk, .. } => Some(chunk[0]),
            Placement::Contiguous { .. } => None,
        }
    }

    fn decodes_whole_chunks(&self) -> bool {
        matches!(self.placement, Placement::Chunked { .. }) && !self.pipeline.is_empty()
    }

    fn read_rows(&self, rows: Range<usize>) -> Result<ArrayData> {
        check_rows(&rows, self.shape[0])?;
        self.read_typed(rows, None).in_element(&self.element)
    }

    fn read_rows_reusing(&self, rows: Range<usize>, spare: ArrayData) -> Result<ArrayData> {
        check_rows(&rows, self.shape[0])?;
        self.read_typed(rows, Some(spare)).in_element(&self.element)
    }

    /// `int32` and `uint32` indices are checked storage chunk by storage chunk, as each is
    /// decoded; other dtypes are read, then converted and checked.
    fn read_minor_indices(
        &self,
        rows: Range<usize>,
        spare: Option<Vec<u32>>,
        minor: usize,
    ) -> Result<Vec<u32>> {
        let signed = match (self.dtype, self.shape.len()) {
            (DType::I32, 1) => true,
            (DType::U32, 1) => false,
            _ => return read_then_check_indices(self, rows, spare, minor),
        };
        check_rows(&rows, self.shape[0])?;
        let read = || -> Result<Vec<u32>> {
            check_minor(minor)?;
            let mut values = match spare {
                Some(v) => buffer::reused_vec(v, rows.len()),
                None => vec![0; rows.len()],
            };
            if !rows.is_empty() {
                let check = |part: &[u8]| check_index_bytes(part, signed, minor);
                self.fill(rows, bytemuck::cast_slice_mut(&mut values), &check)?;
            }
            Ok(values)
        };
        read().in_element(&self.element)
    }

    fn read_path(&self) -> ReadPath {
        ReadPath::Direct {
            filters: self.pipeline.describe(),
            threads: self.threads,
        }
    }

    fn use_cache(&self, cache: Arc<dyn ChunkCache>) {
        self.kept.use_cache(cache);
    }
}

#[cfg(test)]
mod tests;
