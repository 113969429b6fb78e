//! A thread-safe least-recently-used cache bounded in bytes.
//!
//! [`Cache`] holds decoded blocks of backed matrices (see [`crate::paged`]) under a byte
//! budget. One cache may serve one matrix or be shared (in an [`Arc`]) by every matrix of a
//! process, so that all of them together stay within one budget. Entries are keyed by
//! [`BlockKey`]: the [`MatrixId`] of the matrix and the index of the block within it.
//!
//! Values report their size through the small [`ByteSize`] trait. The cache guarantees
//! `bytes_held <= budget - bytes_reserved` at all times (when the reservations exceed the budget,
//! nothing is held): inserting evicts least-recently-used entries until the new value fits, and
//! a value larger than the whole space is returned to its caller but not kept. Evicted values are
//! dropped by the cache, so their memory is freed as soon as no caller holds them any more.
//!
//! # Loading
//!
//! [`Cache::get_or_load`] runs the loader outside the cache's lock, so a slow read never blocks
//! lookups of other keys. Loads are *single-flight*: when several threads miss on the same key at
//! once, one of them loads while the others wait for it and then find the value in the cache.
//! This matters for servers where many threads ask for the same hot block at once: without it each
//! would read and decode the block, multiplying I/O and transient memory. The cost is one hash map
//! operation per miss. (When the loaded value is not kept — too large, or loaded with
//! [`Retention::Discard`] — waiting threads load it themselves.)
//!
//! ```
//! use std::sync::Arc;
//! use annpage_engine::cache::{BlockKey, Cache, MatrixId};
//!
//! let cache: Arc<Cache<Vec<u8>>> = Arc::new(Cache::new(1000));
//! let key = BlockKey::new(MatrixId::unique(), 0);
//! let block = cache.get_or_load(key, || Ok(vec![7u8; 600])).unwrap();
//! assert_eq!(block[0], 7);
//! // A second block does not fit beside the first: the first is evicted.
//! cache.get_or_load(BlockKey::new(key.matrix(), 1), || Ok(vec![0u8; 600])).unwrap();
//! let stats = cache.stats();
//! assert_eq!((stats.misses, stats.evictions, stats.entries), (2, 1, 1));
//! assert!(stats.bytes_held <= stats.budget);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use crate::Result;

/// The number of bytes a value occupies in memory, as counted against a cache's budget.
///
/// Implementations count the heap memory the value owns (the payload that matters for a
/// budget), plus its inline size if they wish; the count must not change while the value is
/// cached.
///
/// ```
/// use annpage_engine::cache::ByteSize;
/// assert_eq!(Vec::<u32>::with_capacity(10).byte_size(), 40);
/// ```
pub trait ByteSize {
    /// Bytes held by the value.
    fn byte_size(&self) -> usize;
}

impl<T: Copy> ByteSize for Vec<T> {
    fn byte_size(&self) -> usize {
        self.capacity() * std::mem::size_of::<T>()
    }
}

/// Identifies one matrix among all those sharing a cache.
///
/// Ids come from a process-wide counter, so two matrices never share one.
///
/// ```
/// use annpage_engine::cache::MatrixId;
/// assert_ne!(MatrixId::unique(), MatrixId::unique());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatrixId(u64);

impl MatrixId {
    /// A fresh id, different from every id handed out before in this process.
    pub fn unique() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        MatrixId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id as a number (for messages).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// The key of a cached block: which matrix, which block of it.
///
/// ```
/// use annpage_engine::cache::{BlockKey, MatrixId};
/// let m = MatrixId::unique();
/// let k = BlockKey::new(m, 3);
/// assert_eq!((k.matrix(), k.block()), (m, 3));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockKey {
    matrix: MatrixId,
    block: usize,
}

impl BlockKey {
    /// The key of block `block` of matrix `matrix`.
    pub fn new(matrix: MatrixId, block: usize) -> Self {
        BlockKey { matrix, block }
    }

    /// The matrix.
    pub fn matrix(self) -> MatrixId {
        self.matrix
    }

    /// The block's index within its matrix.
    pub fn block(self) -> usize {
        self.block
    }
}

/// Whether [`Cache::get_or_load_with`] keeps a value it had to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Retention {
    /// Keep it (evicting older entries as needed), as [`Cache::get_or_load`] does.
    Keep,
    /// Return it without keeping it, and without waiting for other loads of the same key.
    ///
    /// For scans larger than the cache: keeping each block would evict everything the cache
    /// holds for other users, for no later benefit (an LRU cache never hits on a scan larger
    /// than itself).
    Discard,
}

/// A snapshot of a cache's counters.
///
/// `hits + misses` counts lookups through [`Cache::get`], [`Cache::get_or_load`] and
/// [`Cache::get_or_load_with`]; a thread that waited for another thread's load and then found
/// the value counts a hit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// The budget in bytes.
    pub budget: usize,
    /// Bytes of the values currently held.
    pub bytes_held: usize,
    /// Bytes reserved by [`Reservation`]s (memory used outside the cache, e.g. `indptr`).
    pub bytes_reserved: usize,
    /// Number of values currently held.
    pub entries: usize,
    /// Lookups that found their value.
    pub hits: u64,
    /// Lookups that did not (and, through the `get_or_load` methods, loaded it).
    pub misses: u64,
    /// Bytes of all values loaded (what was read from storage and decoded), kept or not.
    pub bytes_read: u64,
    /// Values evicted to make room for others.
    pub evictions: u64,
    /// Values not kept because they were larger than the space the budget leaves.
    pub rejected: u64,
}

impl CacheStats {
    /// `hits / (hits + misses)`, or 0 before any lookup.
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// A thread-safe LRU cache of `Arc<V>` bounded in bytes; see the [module docs](self).
pub struct Cache<V> {
    budget: usize,
    state: Mutex<State<V>>,
    hits: AtomicU64,
    misses: AtomicU64,
    bytes_read: AtomicU64,
    evictions: AtomicU64,
    rejected: AtomicU64,
}

/// What the lock protects. Invariant: `held` is the sum of the entries' `bytes` and
/// `held <= budget.saturating_sub(reserved)`.
struct State<V> {
    entries: LruCache<BlockKey, Entry<V>>,
    held: usize,
    reserved: usize,
    /// Keys being loaded, each with the lock its loader holds while loading.
    loading: HashMap<BlockKey, Arc<Mutex<()>>>,
}

struct Entry<V> {
    value: Arc<V>,
    /// The value's size when it was inserted (what `held` counts).
    bytes: usize,
}

impl<V: ByteSize> Cache<V> {
    /// An empty cache that holds at most `budget` bytes.
    pub fn new(budget: usize) -> Self {
        Cache {
            budget,
            state: Mutex::new(State {
                entries: LruCache::unbounded(),
                held: 0,
                reserved: 0,
                loading: HashMap::new(),
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// The budget in bytes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// The bytes values may occupy: the budget less what is reserved.
    pub fn capacity(&self) -> usize {
        self.budget.saturating_sub(self.state.lock().reserved)
    }

    /// The value cached under `key`, marking it most recently used.
    pub fn get(&self, key: BlockKey) -> Option<Arc<V>> {
        let found = self.state.lock().entries.get(&key).map(|e| e.value.clone());
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Whether a value is cached under `key` (without counting a lookup or touching recency).
    pub fn contains(&self, key: BlockKey) -> bool {
        self.state.lock().entries.contains(&key)
    }

    /// Caches `value` under `key` (replacing any value there) and reports whether it was kept:
    /// a value larger than [`Cache::capacity`] is not.
    pub fn insert(&self, key: BlockKey, value: Arc<V>) -> bool {
        let mut dropped = Vec::new();
        let kept = {
            let mut st = self.state.lock();
            self.admit(&mut st, key, value, &mut dropped)
        };
        drop(dropped);
        kept
    }

    /// The value under `key`, loading (and keeping) it with `load` if it is not cached.
    ///
    /// `load` runs without the cache's lock held. If another thread is loading the same key,
    /// this waits for it and returns its value instead of loading again (see the
    /// [module docs](self)). Errors from `load` are returned and nothing is cached.
    pub fn get_or_load<F>(&self, key: BlockKey, load: F) -> Result<Arc<V>>
    where
        F: FnOnce() -> Result<V>,
    {
        self.get_or_load_with(key, Retention::Keep, load)
    }

    /// Like [`Cache::get_or_load`], but a loaded value is kept only with [`Retention::Keep`].
    pub fn get_or_load_with<F>(
        &self,
        key: BlockKey,
        retention: Retention,
        load: F,
    ) -> Result<Arc<V>>
    where
        F: FnOnce() -> Result<V>,
    {
        let flight = {
            let mut st = self.state.lock();
            if let Some(e) = st.entries.get(&key) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(e.value.clone());
            }
            match retention {
                Retention::Keep => Some(st.loading.entry(key).or_default().clone()),
                Retention::Discard => None,
            }
        };
        let Some(flight) = flight else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return self.load_counted(load);
        };
        // Wait for a thread loading the same key, then look again: it may have kept the value.
        let _loading = flight.lock();
        let landing = Landing {
            cache: self,
            key,
            flight: &flight,
            done: false,
        };
        let cached = self.state.lock().entries.get(&key).map(|e| e.value.clone());
        if let Some(value) = cached {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(value);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let value = self.load_counted(load)?;
        let mut dropped = Vec::new();
        {
            let mut st = self.state.lock();
            self.admit(&mut st, key, value.clone(), &mut dropped);
            // Done in the same critical section as the insertion: a thread arriving later
            // either finds the value or starts a new load, never waits on a finished one.
            landing.finish(&mut st);
        }
        drop(dropped);
        Ok(value)
    }

    /// Reserves `bytes` of the budget for memory held outside the cache (evicting values to
    /// make room) until the returned guard is dropped.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use annpage_engine::cache::Cache;
    /// let cache: Arc<Cache<Vec<u8>>> = Arc::new(Cache::new(100));
    /// let r = cache.reserve(30);
    /// assert_eq!((cache.capacity(), r.bytes()), (70, 30));
    /// drop(r);
    /// assert_eq!(cache.capacity(), 100);
    /// ```
    pub fn reserve(self: &Arc<Self>, bytes: usize) -> Reservation<V> {
        let mut dropped = Vec::new();
        {
            let mut st = self.state.lock();
            st.reserved = st.reserved.saturating_add(bytes);
            self.shrink_to(&mut st, 0, &mut dropped);
        }
        drop(dropped);
        Reservation {
            cache: Arc::clone(self),
            bytes,
        }
    }

    /// Drops every value of matrix `matrix` (when the matrix is closed).
    pub fn remove_matrix(&self, matrix: MatrixId) {
        let mut dropped = Vec::new();
        {
            let mut st = self.state.lock();
            let keys: Vec<BlockKey> = st
                .entries
                .iter()
                .map(|(k, _)| *k)
                .filter(|k| k.matrix == matrix)
                .collect();
            for k in keys {
                if let Some(e) = st.entries.pop(&k) {
                    st.held -= e.bytes;
                    dropped.push(e.value);
                }
            }
        }
        drop(dropped);
    }

    /// Drops every value.
    pub fn clear(&self) {
        let dropped = {
            let mut st = self.state.lock();
            st.held = 0;
            std::mem::replace(&mut st.entries, LruCache::unbounded())
        };
        drop(dropped);
    }

    /// The counters now.
    pub fn stats(&self) -> CacheStats {
        let (bytes_held, bytes_reserved, entries) = {
            let st = self.state.lock();
            (st.held, st.reserved, st.entries.len())
        };
        CacheStats {
            budget: self.budget,
            bytes_held,
            bytes_reserved,
            entries,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    /// Runs a loader and counts the bytes it produced.
    fn load_counted<F>(&self, load: F) -> Result<Arc<V>>
    where
        F: FnOnce() -> Result<V>,
    {
        let value = load()?;
        self.bytes_read
            .fetch_add(value.byte_size() as u64, Ordering::Relaxed);
        Ok(Arc::new(value))
    }

    /// Inserts under the lock, evicting as needed; evicted values go to `dropped` so they are
    /// freed after the lock is released.
    fn admit(
        &self,
        st: &mut State<V>,
        key: BlockKey,
        value: Arc<V>,
        dropped: &mut Vec<Arc<V>>,
    ) -> bool {
        let bytes = value.byte_size();
        if let Some(old) = st.entries.pop(&key) {
            st.held -= old.bytes;
            dropped.push(old.value);
        }
        if bytes > self.budget.saturating_sub(st.reserved) {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.shrink_to(st, bytes, dropped);
        st.entries.put(key, Entry { value, bytes });
        st.held += bytes;
        true
    }

    /// Evicts least-recently-used values until `incoming` more bytes fit.
    fn shrink_to(&self, st: &mut State<V>, incoming: usize, dropped: &mut Vec<Arc<V>>) {
        let space = self.budget.saturating_sub(st.reserved);
        while st.held.saturating_add(incoming) > space {
            let Some((_, e)) = st.entries.pop_lru() else {
                break;
            };
            st.held -= e.bytes;
            self.evictions.fetch_add(1, Ordering::Relaxed);
            dropped.push(e.value);
        }
    }
}

/// Removes a key's in-flight marker when its load ends, however it ends (error or panic
/// included), unless [`Landing::finish`] already did.
struct Landing<'a, V: ByteSize> {
    cache: &'a Cache<V>,
    key: BlockKey,
    flight: &'a Arc<Mutex<()>>,
    /// Set once the marker was removed under a lock the caller holds.
    done: bool,
}

impl<V: ByteSize> Landing<'_, V> {
    /// Removes the marker under the caller's lock (the drop then has nothing to do).
    fn finish(mut self, st: &mut State<V>) {
        Self::remove(st, self.key, self.flight);
        self.done = true;
    }

    /// Removes the marker if it is still ours (a later flight may have replaced it).
    fn remove(st: &mut State<V>, key: BlockKey, flight: &Arc<Mutex<()>>) {
        if st
            .loading
            .get(&key)
            .is_some_and(|current| Arc::ptr_eq(current, flight))
        {
            st.loading.remove(&key);
        }
    }
}

impl<V: ByteSize> Drop for Landing<'_, V> {
    fn drop(&mut self) {
        if !self.done {
            let mut st = self.cache.state.lock();
            Self::remove(&mut st, self.key, self.flight);
        }
    }
}

impl<V: ByteSize> fmt::Debug for Cache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Part of a cache's budget set aside for memory held elsewhere; released on drop.
///
/// Created by [`Cache::reserve`].
pub struct Reservation<V: ByteSize> {
    cache: Arc<Cache<V>>,
    bytes: usize,
}

impl<V: ByteSize> Reservation<V> {
    /// The bytes reserved.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl<V: ByteSize> Drop for Reservation<V> {
    fn drop(&mut self) {
        let mut st = self.cache.state.lock();
        st.reserved = st.reserved.saturating_sub(self.bytes);
    }
}

impl<V: ByteSize> fmt::Debug for Reservation<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("bytes", &self.bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests;
