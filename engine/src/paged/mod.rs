//! The chunk manager: matrix elements paged in on demand, block by block, within a memory budget
//! (what backed mode reads through).
//!
//! Layers, bottom up; each module imports only those below it:
//! - [`RangeReader`] (module `io`): the storage seam, "read rows `start..end` of this
//!   dataset". A direct reader decodes stored chunks itself, an HDF5 reader reads
//!   hyperslabs through libhdf5; [`InMemoryReader`] reads an array in memory. Nothing above this seam knows
//!   about HDF5; decoded chunks a reader keeps go to a [`ChunkCache`] handed down to it.
//! - [`Block`] (module `block`): a contiguous range of major positions — rows of CSR and dense
//!   matrices, columns of CSC ones — decoded, sized to a target number of bytes and aligned to
//!   storage chunks where possible. Blocks are what the [`BlockCache`] holds.
//! - [`ReadPlan`] (module `plan`): the blocks a selection needs, each once, and the runs of
//!   positions copied out of them, in any requested order.
//! - The worker pool ([`WorkerPool`]), read-ahead (module `ahead`) and gathering (module
//!   `gather`): executing plans.
//! - Module `source` finds the datasets of a matrix element in a file as a [`MatrixSource`],
//!   with the readers [`ReadOptions`] choose ([`crate::file::File::open_matrix`]).
//! - [`BackedMatrix`]: the handle. [`BackedMatrix::read`] executes a plan for a row and a column
//!   selection; [`BackedMatrix::chunks`] iterates over a selection in chunks of rows.
//!
//! ```no_run
//! use std::sync::Arc;
//! use annpage_engine::paged::{BackedMatrix, BlockCache, ReadOptions};
//! use annpage_engine::file::File;
//! use annpage_engine::select::{AxisIndex, Selection};
//!
//! let file = File::open("data.h5ad").unwrap();
//! let cache = Arc::new(BlockCache::new(256 << 20)); // 256 MiB for every matrix opened
//! let source = file.open_matrix("/", "X", &ReadOptions::default()).unwrap();
//! let x = BackedMatrix::new(source, cache.clone()).unwrap();
//! let (n_obs, n_vars) = x.shape();
//! // Two genes of every cell, streaming over the row blocks.
//! let genes = Selection::positions([10, 3]).resolve(n_vars, None).unwrap();
//! let columns = x.read_columns(&genes).unwrap();
//! // A pass over all cells in chunks of 10 000 rows.
//! for chunk in x.chunks(&AxisIndex::full(n_obs), &AxisIndex::full(n_vars), 10_000).unwrap() {
//!     let (rows, m) = chunk.unwrap();
//! }
//! println!("{:?}", cache.stats());
//! ```

mod ahead;
mod block;
mod gather;
mod io;
mod matrix;
mod plan;
mod pool;
mod source;

#[cfg(test)]
mod tests;

pub use block::{Block, BlockCache};
pub use io::max_threads;
pub use io::{
    read_then_check_indices, ChunkBytes, ChunkCache, DecodedChunk, InMemoryReader, RangeReader,
    ReadPath, StoreReader,
};
pub use matrix::{BackedMatrix, Chunks, MemoryPolicy, ScanBuffers, WeakScanBuffers};
pub use plan::ReadPlan;
pub use pool::WorkerPool;
#[cfg(test)]
pub(crate) use source::open_matrix;
pub(crate) use source::{describe_read_path, open_matrix_with};
pub use source::{MatrixKind, MatrixSource, ReadOptions};

// Handles, caches, blocks and plans are shared by reader threads; chunk iterators move to
// worker threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<BackedMatrix>();
    assert_send_sync::<BlockCache>();
    assert_send_sync::<Block>();
    assert_send_sync::<ReadPlan>();
    const fn assert_send<T: Send>() {}
    assert_send::<Chunks>();
};
