//! The bottom of the chunk manager: fetching a dataset's bytes and decoding its storage chunks.
//!
//! Everything in [`crate::paged`] above this module reads through [`RangeReader`] and knows
//! nothing of HDF5. [`H5RangeReader`] reads hyperslabs through libhdf5; [`DirectReader`]
//! reads stored chunks itself (`direct/`); [`StoreReader`] reads through a storage backend's
//! own arrays (Zarr); [`InMemoryReader`] reads an array in memory (for
//! tests, and for data that is already loaded). Decoded chunks a reader keeps for later go to
//! a [`ChunkCache`] the layer above hands it (sharing that layer's budget); this module
//! imports no block, plan, worker pool or handle.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

mod buffer;
mod chunk;
mod direct;
mod h5;
mod store;

pub use chunk::ChunkBytes;
pub(crate) use chunk::KeptChunks;
pub use direct::{DirectOpen, DirectReader};
pub use h5::H5RangeReader;
pub use store::StoreReader;

use crate::cache::{BlockKey, MatrixId};
use crate::data::{ArrayData, DType};
use crate::error::ResultExt;
use crate::storage::StoredType;
use crate::{map_array, Error, Result};

/// Reads contiguous ranges of a dataset along its first axis.
///
/// For a 1-d dataset (sparse `data`, `indices`, `indptr`) a range of rows is a range of
/// elements; for an n-d dataset (a dense matrix) it is a range of rows with all their columns.
/// Implementations must be cheap to call from several threads at once.
///
/// ```
/// use annpage_engine::paged::{InMemoryReader, RangeReader};
/// use annpage_engine::data::ArrayData;
/// let r = InMemoryReader::new("/X/data", ArrayData::from(vec![1.0f32, 2.0, 3.0])).unwrap();
/// assert_eq!(r.shape(), &[3]);
/// assert_eq!(r.read_rows(1..3).unwrap(), ArrayData::from(vec![2.0f32, 3.0]));
/// ```
pub trait RangeReader: Send + Sync + fmt::Debug {
    /// The element read, for messages: an HDF5 path such as `/X/data`.
    fn element(&self) -> &str;

    /// The dataset's shape (at least one dimension).
    fn shape(&self) -> &[usize];

    /// The dtype [`RangeReader::read_rows`] returns.
    fn dtype(&self) -> DType;

    /// How many rows one storage chunk holds, if the dataset is stored in chunks: reads aligned
    /// to chunk boundaries decode each chunk once.
    fn chunk_rows(&self) -> Option<usize>;

    /// Whether reading part of a storage chunk costs decoding all of it (compressed chunks):
    /// reading scattered rows then costs every chunk they touch.
    fn decodes_whole_chunks(&self) -> bool {
        false
    }

    /// Rows `rows` (which must lie within the first axis), as an array of [`RangeReader::dtype`]
    /// whose shape is the dataset's with the first axis `rows.len()` long.
    fn read_rows(&self, rows: Range<usize>) -> Result<ArrayData>;

    /// [`RangeReader::read_rows`], written into the memory of `spare` (an array the caller is
    /// done with) where the reader can reuse it: same dtype, standard layout, large enough.
    /// A caller that reads many ranges of about the same size then allocates, and the kernel
    /// zeroes fresh pages, only once. The result equals `read_rows`'s; by default `spare` is
    /// dropped.
    fn read_rows_reusing(&self, rows: Range<usize>, spare: ArrayData) -> Result<ArrayData> {
        drop(spare);
        self.read_rows(rows)
    }

    /// Rows `rows` of a 1-d dataset of minor indices (the `indices` of a sparse matrix) as
    /// `u32`, in the memory of `spare` where the reader can, each checked to lie below
    /// `minor`: an index out of bounds (or not an integer) is an error naming it. Readers that
    /// decode chunk by chunk check each chunk as they decode it, while it is in cache; by
    /// default the rows are read, then checked ([`read_then_check_indices`]).
    fn read_minor_indices(
        &self,
        rows: Range<usize>,
        spare: Option<Vec<u32>>,
        minor: usize,
    ) -> Result<Vec<u32>> {
        read_then_check_indices(self, rows, spare, minor)
    }

    /// How the reader gets its values (shown by `annpage info`).
    fn read_path(&self) -> ReadPath;

    /// Lets the reader keep what it decodes for later reads (storage chunks it needed only
    /// part of) in `cache`, within the cache's budget. Readers that keep nothing ignore it.
    fn use_cache(&self, _cache: Arc<dyn ChunkCache>) {}
}

/// How a [`RangeReader`] gets its values.
///
/// ```
/// use annpage_engine::paged::ReadPath;
/// let p = ReadPath::Direct { filters: "gzip".into(), threads: 2 };
/// assert_eq!(p.to_string(), "direct (gzip, 2 threads)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadPath {
    /// From an array already in memory.
    Memory,
    /// Stored bytes read with positioned reads and decoded by annpage, outside libhdf5.
    Direct {
        /// The filters annpage undoes (`none`, `gzip`, `shuffle+gzip`, `lzf`, ...).
        filters: String,
        /// Threads that read and decode one request's chunks.
        threads: usize,
    },
    /// Through libhdf5 (one call at a time, decoded on the calling thread).
    Hdf5 {
        /// Why the direct path is not used.
        reason: String,
    },
    /// Through the storage backend's own array reader (Zarr).
    Store,
    /// Zarr shards of zstd inner chunks (anndata's default layout), whose frames annpage
    /// decodes itself into the reader's buffers (`storage/zarr/shards/`).
    Shards,
}

impl fmt::Display for ReadPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadPath::Memory => write!(f, "memory"),
            ReadPath::Direct { filters, threads } => {
                let s = if *threads == 1 { "" } else { "s" };
                write!(f, "direct ({filters}, {threads} thread{s})")
            }
            ReadPath::Hdf5 { reason } => write!(f, "libhdf5 ({reason})"),
            ReadPath::Store => write!(f, "storage backend"),
            ReadPath::Shards => write!(f, "zstd shards, decoded by annpage"),
        }
    }
}

/// A [`RangeReader`] over an array held in memory.
#[derive(Clone, Debug)]
pub struct InMemoryReader {
    element: String,
    array: ArrayData,
    chunk_rows: Option<usize>,
}

impl InMemoryReader {
    /// Reads from `array`, which must have at least one dimension.
    pub fn new(element: impl Into<String>, array: ArrayData) -> Result<Self> {
        if array.ndim() == 0 {
            return Err(Error::invalid(
                "a range reader needs an array of at least 1 dimension",
            ));
        }
        let array = map_array!(array, a => if a.is_standard_layout() {
            a
        } else {
            a.as_standard_layout().into_owned()
        });
        Ok(InMemoryReader {
            element: element.into(),
            array,
            chunk_rows: None,
        })
    }

    /// Declares a storage chunk length (a hint for block alignment; tests use it).
    pub fn with_chunk_rows(mut self, rows: usize) -> Self {
        self.chunk_rows = Some(rows.max(1));
        self
    }
}

impl RangeReader for InMemoryReader {
    fn element(&self) -> &str {
        &self.element
    }

    fn shape(&self) -> &[usize] {
        self.array.shape()
    }

    fn dtype(&self) -> DType {
        self.array.dtype()
    }

    fn chunk_rows(&self) -> Option<usize> {
        self.chunk_rows
    }

    fn read_path(&self) -> ReadPath {
        ReadPath::Memory
    }

    fn read_rows(&self, rows: Range<usize>) -> Result<ArrayData> {
        check_rows(&rows, self.array.nrows())?;
        Ok(map_array!(&self.array, a => a
            .slice_axis(ndarray::Axis(0), ndarray::Slice::from(rows.clone()))
            .to_owned()))
    }
}

/// [`RangeReader::read_minor_indices`] as any reader can: [`RangeReader::read_rows_reusing`]
/// (into `spare` if the stored indices are 4-byte integers), then one pass converting and
/// checking them.
pub fn read_then_check_indices<R: RangeReader + ?Sized>(
    reader: &R,
    rows: Range<usize>,
    spare: Option<Vec<u32>>,
    minor: usize,
) -> Result<Vec<u32>> {
    let spare = spare.and_then(|v| indices_as(v, reader.dtype()));
    let raw = read_reusing(reader, rows, spare)?;
    crate::data::minor_indices(raw, minor).in_element(reader.element())
}

/// `reader.read_rows(rows)`, into `spare`'s memory if there is one.
pub(crate) fn read_reusing<R: RangeReader + ?Sized>(
    reader: &R,
    rows: Range<usize>,
    spare: Option<ArrayData>,
) -> Result<ArrayData> {
    match spare {
        Some(s) => reader.read_rows_reusing(rows, s),
        None => reader.read_rows(rows),
    }
}

/// Spare `u32` indices as a 1-d array of the stored index dtype, where that is a 4-byte
/// integer (the same memory, reinterpreted).
fn indices_as(v: Vec<u32>, dtype: DType) -> Option<ArrayData> {
    Some(match dtype {
        DType::U32 => ArrayData::U32(ndarray::Array1::from_vec(v).into_dyn()),
        DType::I32 => {
            let v: Vec<i32> = bytemuck::cast_vec(v);
            ArrayData::I32(ndarray::Array1::from_vec(v).into_dyn())
        }
        _ => return None,
    })
}

/// A decoded storage chunk held by a [`ChunkCache`].
pub trait DecodedChunk: Send + Sync {
    /// The chunk's decoded bytes.
    fn bytes(&self) -> &[u8];
}

/// Where a [`RangeReader`] keeps decoded storage chunks for later reads: a cache bounded in
/// bytes that the layer above shares with what it keeps itself (see
/// [`RangeReader::use_cache`]). Keys are a reader's own id and a chunk's number.
pub trait ChunkCache: Send + Sync + fmt::Debug {
    /// The chunk under `key` if it is held (a lookup that finds nothing is not counted as a
    /// miss).
    fn cached_chunk(&self, key: BlockKey) -> Option<Arc<dyn DecodedChunk>>;

    /// The chunk under `key`, decoded with `load` and kept if it is not held.
    fn chunk_or_load(
        &self,
        key: BlockKey,
        load: &mut dyn FnMut() -> Result<ChunkBytes>,
    ) -> Result<Arc<dyn DecodedChunk>>;

    /// Drops every chunk of reader `id`.
    fn forget(&self, id: MatrixId);
}

thread_local! {
    /// On a pool's worker, how many threads the load it runs may split its work into (0:
    /// not a worker).
    static WORKER_SHARE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether the calling thread is a pool's worker.
#[cfg(test)]
pub(crate) fn on_worker_thread() -> bool {
    WORKER_SHARE.with(std::cell::Cell::get) > 0
}

/// How many threads work on the calling thread may be split into, at most `threads`: all of
/// them off the pool; on a worker, the share its load was given (see [`with_worker_share`]),
/// 1 unless said: a load on a worker is usually one of several in parallel already.
pub(crate) fn split_threads(threads: usize) -> usize {
    match WORKER_SHARE.with(std::cell::Cell::get) {
        0 => threads,
        share => share.min(threads),
    }
}

/// Marks the calling thread as a pool's worker (see [`on_worker_thread`]).
pub(crate) fn mark_worker_thread() {
    WORKER_SHARE.with(|w| w.set(1));
}

/// Runs `f` on a worker with a share of `share` threads (at least 1) for the work it splits,
/// then gives the worker its share of 1 back: for a load that runs with fewer others than the
/// pool has threads (a scan whose window holds one chunk).
pub(crate) fn with_worker_share<T>(share: usize, f: impl FnOnce() -> T) -> T {
    /// Gives the worker its share back however `f` ends (a load that panics included).
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            WORKER_SHARE.with(|w| w.set(self.0));
        }
    }
    let _restore = Restore(WORKER_SHARE.with(|w| w.replace(share.max(1))));
    f()
}

/// One thread per core.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most threads a pool, a writer or a reduction starts, whatever it is asked for: four per
/// core, and at least 16. More only cost memory (a stack each, a compressor each for writers,
/// per-gene sums each for reductions); a count in the thousands would exhaust the process's
/// mappings, where starting a thread aborts instead of failing.
///
/// ```
/// assert!(annpage_engine::paged::max_threads() >= 16);
/// ```
pub fn max_threads() -> usize {
    (4 * default_threads()).max(16)
}

/// Fails unless `rows` lies within an axis of length `n`.
/// The dtype range reads return for arrays of `ty` (numbers and bools), and that the array's
/// `shape` is 1-d or 2-d: what every [`RangeReader`] over a stored array checks at creation.
pub(crate) fn range_dtype(ty: &StoredType, shape: &[usize]) -> Result<DType> {
    let dtype = match (ty, ty.dtype()) {
        (StoredType::Bool | StoredType::Int { .. } | StoredType::Float { .. }, Some(d)) => d,
        _ => {
            return Err(Error::unsupported(format!(
                "backed reads of {} arrays",
                ty.describe()
            )))
        }
    };
    if !(1..=2).contains(&shape.len()) {
        return Err(Error::unsupported(format!(
            "backed reads of {}-d arrays (only 1-d and 2-d ones are read in ranges)",
            shape.len()
        )));
    }
    Ok(dtype)
}

pub(crate) fn check_rows(rows: &Range<usize>, n: usize) -> Result<()> {
    if rows.start > rows.end || rows.end > n {
        return Err(Error::invalid(format!(
            "rows {rows:?} do not lie within a dataset of {n} rows"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_reader_reads_row_ranges() {
        let a = ArrayData::from(ndarray::arr2(&[[1u8, 2], [3, 4], [5, 6]]));
        let r = InMemoryReader::new("/X", a).unwrap().with_chunk_rows(2);
        assert_eq!(
            (r.shape(), r.dtype(), r.chunk_rows()),
            (&[3, 2][..], DType::U8, Some(2))
        );
        assert_eq!(
            r.read_rows(1..3).unwrap(),
            ArrayData::from(ndarray::arr2(&[[3u8, 4], [5, 6]]))
        );
        assert_eq!(r.read_rows(3..3).unwrap().shape(), &[0, 2]);
        let e = r.read_rows(2..4).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument: rows 2..4 do not lie within a dataset of 3 rows"
        );
        assert!(InMemoryReader::new("/s", ArrayData::zeros(DType::F32, &[])).is_err());
    }

    #[test]
    fn in_memory_reader_normalises_layout() {
        let t = ndarray::arr2(&[[1i32, 2], [3, 4]])
            .reversed_axes()
            .into_dyn();
        let r = InMemoryReader::new("/X", ArrayData::I32(t)).unwrap();
        let ArrayData::I32(rows) = r.read_rows(0..2).unwrap() else {
            panic!("i32 expected")
        };
        assert_eq!(rows.iter().copied().collect::<Vec<_>>(), [1, 3, 2, 4]);
    }
}
