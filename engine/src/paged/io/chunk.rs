//! The memory decoded storage chunks are kept in: anonymous mappings, reused once a chunk is
//! dropped; and [`KeptChunks`], what a reader needs to keep them in the cache.

use std::sync::{Arc, OnceLock};

use super::ChunkCache;
use crate::cache::{BlockKey, MatrixId};

/// The bytes of one decoded storage chunk held in the cache, in an anonymous mapping of their
/// own rather than on the heap: chunks are a few hundred KiB, sizes the allocator keeps within
/// its heaps once freed, so a cache churning through them grew the process well beyond its
/// budget (by 70-130 MiB over 1 GiB, reading random cells of a gzip file). A dropped chunk's
/// mapping goes back to its pool for the next decode, or to the system.
pub struct ChunkBytes {
    /// `None` only on the heap fallback, or once dropped.
    map: Option<memmap2::MmapMut>,
    /// The bytes when the system refused a mapping.
    heap: Vec<u8>,
    pool: Option<Arc<ChunkPool>>,
}

impl ChunkBytes {
    /// `len` bytes on the heap (for tests and empty chunks).
    pub(crate) fn on_heap(len: usize) -> Self {
        ChunkBytes {
            map: None,
            heap: vec![0; len],
            pool: None,
        }
    }

    /// The chunk's bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&self.heap)
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        match &mut self.map {
            Some(m) => m,
            None => &mut self.heap,
        }
    }
}

impl Drop for ChunkBytes {
    fn drop(&mut self) {
        if let (Some(map), Some(pool)) = (self.map.take(), &self.pool) {
            pool.put(map);
        }
    }
}

impl Clone for ChunkBytes {
    fn clone(&self) -> Self {
        ChunkBytes {
            map: None,
            heap: self.as_slice().to_vec(),
            pool: None,
        }
    }
}

impl std::fmt::Debug for ChunkBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkBytes({} bytes)", self.as_slice().len())
    }
}

/// Mappings of one dataset's chunk size, for decoding chunks into: those of evicted chunks
/// are reused (no system call, no page fault), as many as [`ChunkPool::MAX_BYTES`] hold
/// (between [`ChunkPool::MIN`] and [`ChunkPool::MAX`] of them): outside the cache budget,
/// a few MiB at most whatever the chunks' size.
#[derive(Debug)]
pub(crate) struct ChunkPool {
    len: usize,
    free: parking_lot::Mutex<Vec<memmap2::MmapMut>>,
}

impl ChunkPool {
    /// The bytes of spare mappings a pool keeps, unless that is fewer than [`Self::MIN`].
    const MAX_BYTES: usize = 4 << 20;
    /// Spare mappings kept whatever their size.
    const MIN: usize = 2;
    /// Spare mappings kept however small.
    const MAX: usize = 16;

    /// A pool of mappings of `len` bytes.
    pub(crate) fn new(len: usize) -> Arc<Self> {
        Arc::new(ChunkPool {
            len,
            free: parking_lot::Mutex::new(Vec::new()),
        })
    }

    /// How many spare mappings the pool keeps.
    fn kept(&self) -> usize {
        (Self::MAX_BYTES / self.len.max(1)).clamp(Self::MIN, Self::MAX)
    }

    /// The length of the chunks it holds, in bytes.
    pub(crate) fn chunk_len(&self) -> usize {
        self.len
    }

    /// Bytes to decode a chunk into: a reused mapping (holding an earlier chunk's bytes,
    /// all of which the decode overwrites), a new one (zero), or the heap.
    pub(crate) fn take(self: &Arc<Self>) -> ChunkBytes {
        let reused = self.free.lock().pop();
        match reused.map_or_else(|| memmap2::MmapMut::map_anon(self.len), Ok) {
            Ok(map) if self.len > 0 => ChunkBytes {
                map: Some(map),
                heap: Vec::new(),
                pool: Some(Arc::clone(self)),
            },
            _ => ChunkBytes::on_heap(self.len),
        }
    }

    fn put(&self, map: memmap2::MmapMut) {
        let mut free = self.free.lock();
        if free.len() < self.kept() && map.len() == self.len {
            free.push(map);
        }
    }
}

/// Where a reader keeps the storage chunks it decoded whole for later reads: the cache the
/// layer above hands it ([`super::RangeReader::use_cache`]), under an id of the reader's own,
/// in mappings of one chunk's size from a pool. The reader's chunks leave the cache when it
/// is dropped.
pub(crate) struct KeptChunks {
    id: MatrixId,
    cache: OnceLock<Arc<dyn ChunkCache>>,
    pool: Arc<ChunkPool>,
}

impl KeptChunks {
    /// Nowhere to keep chunks of `chunk_bytes` bytes yet.
    pub(crate) fn new(chunk_bytes: usize) -> Self {
        KeptChunks {
            id: MatrixId::unique(),
            cache: OnceLock::new(),
            pool: ChunkPool::new(chunk_bytes),
        }
    }

    /// Keeps chunks in `cache` from now on (the first cache given stays).
    pub(crate) fn use_cache(&self, cache: Arc<dyn ChunkCache>) {
        let _ = self.cache.set(cache);
    }

    /// The cache chunks are kept in, once given.
    pub(crate) fn cache(&self) -> Option<&dyn ChunkCache> {
        self.cache.get().map(|c| c.as_ref())
    }

    /// The cache's key of chunk `i`.
    pub(crate) fn key(&self, i: usize) -> BlockKey {
        BlockKey::new(self.id, i)
    }

    /// Mappings of one chunk's size to decode into.
    pub(crate) fn pool(&self) -> &Arc<ChunkPool> {
        &self.pool
    }
}

impl std::fmt::Debug for KeptChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptChunks")
            .field("chunk_bytes", &self.pool.chunk_len())
            .field("cached", &self.cache.get().is_some())
            .finish()
    }
}

impl Drop for KeptChunks {
    fn drop(&mut self) {
        if let Some(cache) = self.cache.get() {
            cache.forget(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_mappings_are_reused_up_to_a_bound_in_count_and_bytes() {
        let pool = ChunkPool::new(3 << 12);
        let mut first = pool.take();
        assert_eq!(first.as_slice(), &[0u8; 3 << 12][..]);
        first.as_mut_slice()[5] = 42;
        drop(first);
        // The same mapping, still holding the earlier bytes (a decode overwrites them all).
        let again = pool.take();
        assert_eq!(again.as_slice()[5], 42);
        assert_eq!(again.clone().as_slice(), again.as_slice());
        let held: Vec<ChunkBytes> = (0..ChunkPool::MAX + 4).map(|_| pool.take()).collect();
        drop((again, held));
        assert_eq!(pool.free.lock().len(), ChunkPool::MAX);
        // Large chunks: as many as fit in MAX_BYTES, and never fewer than MIN.
        for (len, kept) in [
            (1 << 20, 4),
            (3 << 20, ChunkPool::MIN),
            (64 << 20, ChunkPool::MIN),
        ] {
            let pool = ChunkPool::new(len);
            let held: Vec<ChunkBytes> = (0..ChunkPool::MAX).map(|_| pool.take()).collect();
            drop(held);
            assert_eq!(pool.free.lock().len(), kept, "chunks of {len} bytes");
        }
        // Empty chunks live on the heap.
        assert!(ChunkPool::new(0).take().as_slice().is_empty());
    }
}
