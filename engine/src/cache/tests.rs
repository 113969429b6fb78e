//! The byte-bounded cache: the bound, hits and eviction, oversize values, retention, reservations, errors, one load per key under concurrency.

use std::sync::atomic::AtomicUsize;
use std::sync::Barrier;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::Error;

/// A value of a chosen size that counts how many copies are alive.
struct Sized {
    bytes: usize,
    alive: Arc<AtomicUsize>,
}

impl Sized {
    fn new(bytes: usize, alive: &Arc<AtomicUsize>) -> Self {
        alive.fetch_add(1, Ordering::SeqCst);
        Sized {
            bytes,
            alive: Arc::clone(alive),
        }
    }
}

impl Drop for Sized {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ByteSize for Sized {
    fn byte_size(&self) -> usize {
        self.bytes
    }
}

fn key(m: MatrixId, b: usize) -> BlockKey {
    BlockKey::new(m, b)
}

#[test]
fn byte_bound_holds_after_every_insert() {
    let alive = Arc::new(AtomicUsize::new(0));
    let cache = Cache::new(1000);
    let m = MatrixId::unique();
    // Sizes chosen to force evictions of one, several and no entries.
    for (i, size) in [100, 300, 450, 200, 999, 1, 1, 500, 1000, 30]
        .into_iter()
        .enumerate()
    {
        cache
            .get_or_load(key(m, i), || Ok(Sized::new(size, &alive)))
            .unwrap();
        let s = cache.stats();
        assert!(s.bytes_held <= s.budget, "{s:?} after inserting {size}");
    }
    let s = cache.stats();
    assert_eq!(s.misses, 10);
    assert_eq!(
        s.bytes_read,
        100 + 300 + 450 + 200 + 999 + 1 + 1 + 500 + 1000 + 30
    );
    // The last two: 1000 evicted everything before it, then 30 evicted the 1000.
    assert_eq!((s.entries, s.bytes_held), (1, 30));
    // Only the held value is alive: evicted values were freed.
    assert_eq!(alive.load(Ordering::SeqCst), 1);
}

#[test]
fn hits_and_misses_are_counted_and_recency_decides_eviction() {
    let cache: Cache<Vec<u8>> = Cache::new(300);
    let m = MatrixId::unique();
    let load = |n: u8| move || Ok(vec![n; 100]);
    cache.get_or_load(key(m, 0), load(0)).unwrap();
    cache.get_or_load(key(m, 1), load(1)).unwrap();
    cache.get_or_load(key(m, 2), load(2)).unwrap();
    // Touch 0 so that 1 is the least recently used.
    let v = cache
        .get_or_load(key(m, 0), || Err(Error::malformed("must not load")))
        .unwrap();
    assert_eq!(v[0], 0);
    cache.get_or_load(key(m, 3), load(3)).unwrap();
    assert!(cache.contains(key(m, 0)));
    assert!(!cache.contains(key(m, 1)));
    assert!(cache.get(key(m, 1)).is_none());
    assert_eq!(cache.get(key(m, 3)).map(|v| v[0]), Some(3));
    let s = cache.stats();
    assert_eq!((s.hits, s.misses, s.evictions), (2, 5, 1));
    assert_eq!((s.entries, s.bytes_held), (3, 300));
    assert!((s.hit_rate() - 2.0 / 7.0).abs() < 1e-12);
}

#[test]
fn eviction_frees_memory() {
    let cache: Cache<Vec<u64>> = Cache::new(8 * 100);
    let m = MatrixId::unique();
    let first = cache.get_or_load(key(m, 0), || Ok(vec![1; 100])).unwrap();
    // The cache and this caller hold the value.
    assert_eq!(Arc::strong_count(&first), 2);
    cache.get_or_load(key(m, 1), || Ok(vec![2; 100])).unwrap();
    // Evicted: only this caller holds it now, and the cache's bytes went down.
    assert_eq!(Arc::strong_count(&first), 1);
    assert_eq!(cache.stats().bytes_held, 800);
    let weak = Arc::downgrade(&first);
    drop(first);
    assert!(weak.upgrade().is_none());
}

#[test]
fn oversize_values_are_returned_but_not_kept() {
    let cache: Cache<Vec<u8>> = Cache::new(100);
    let m = MatrixId::unique();
    cache.get_or_load(key(m, 0), || Ok(vec![0; 60])).unwrap();
    let big = cache.get_or_load(key(m, 1), || Ok(vec![9; 101])).unwrap();
    assert_eq!(big.len(), 101);
    assert_eq!(Arc::strong_count(&big), 1);
    let s = cache.stats();
    // The small value survives: a value that cannot fit evicts nothing.
    assert_eq!(
        (s.entries, s.bytes_held, s.rejected, s.evictions),
        (1, 60, 1, 0)
    );
    assert!(!cache.insert(key(m, 2), Arc::new(vec![0; 200])));
    assert!(cache.insert(key(m, 2), Arc::new(vec![0; 100])));
    assert_eq!(cache.stats().bytes_held, 100);
}

#[test]
fn discard_retention_returns_without_keeping() {
    let cache: Cache<Vec<u8>> = Cache::new(100);
    let m = MatrixId::unique();
    let kept = cache.get_or_load(key(m, 0), || Ok(vec![1; 50])).unwrap();
    let v = cache
        .get_or_load_with(key(m, 1), Retention::Discard, || Ok(vec![2; 50]))
        .unwrap();
    assert_eq!(v.len(), 50);
    assert!(!cache.contains(key(m, 1)));
    // A cached value is still used.
    let again = cache
        .get_or_load_with(key(m, 0), Retention::Discard, || Ok(vec![]))
        .unwrap();
    assert!(Arc::ptr_eq(&kept, &again));
    let s = cache.stats();
    assert_eq!((s.hits, s.misses, s.bytes_read), (1, 2, 100));
}

#[test]
fn reservations_shrink_the_space() {
    let cache: Arc<Cache<Vec<u8>>> = Arc::new(Cache::new(100));
    let m = MatrixId::unique();
    cache.get_or_load(key(m, 0), || Ok(vec![0; 40])).unwrap();
    cache.get_or_load(key(m, 1), || Ok(vec![0; 40])).unwrap();
    let r = cache.reserve(50);
    let s = cache.stats();
    assert_eq!((s.entries, s.bytes_held, s.bytes_reserved), (1, 40, 50));
    assert!(!cache.insert(key(m, 2), Arc::new(vec![0; 60])));
    let huge = cache.reserve(1000);
    assert_eq!((cache.capacity(), cache.stats().bytes_held), (0, 0));
    drop(huge);
    drop(r);
    assert_eq!(cache.capacity(), 100);
    assert!(cache.insert(key(m, 2), Arc::new(vec![0; 60])));
}

#[test]
fn errors_are_returned_and_nothing_is_cached() {
    let cache: Cache<Vec<u8>> = Cache::new(100);
    let m = MatrixId::unique();
    let e = cache
        .get_or_load(key(m, 0), || Err(Error::malformed("broken")))
        .unwrap_err();
    assert_eq!(e.to_string(), "malformed element: broken");
    assert!(!cache.contains(key(m, 0)));
    assert!(cache.state.lock().loading.is_empty());
    // The next attempt loads again.
    assert_eq!(cache.get_or_load(key(m, 0), || Ok(vec![1])).unwrap()[0], 1);
}

#[test]
fn removing_a_matrix_frees_its_blocks_only() {
    let cache: Cache<Vec<u8>> = Cache::new(1000);
    let (a, b) = (MatrixId::unique(), MatrixId::unique());
    for i in 0..3 {
        cache.get_or_load(key(a, i), || Ok(vec![0; 10])).unwrap();
        cache.get_or_load(key(b, i), || Ok(vec![0; 20])).unwrap();
    }
    cache.remove_matrix(a);
    let s = cache.stats();
    assert_eq!((s.entries, s.bytes_held), (3, 60));
    assert!(cache.contains(key(b, 2)) && !cache.contains(key(a, 2)));
    cache.clear();
    assert_eq!(cache.stats().bytes_held, 0);
}

#[test]
fn concurrent_misses_on_one_key_load_once() {
    let cache: Cache<Vec<u8>> = Cache::new(1000);
    let m = MatrixId::unique();
    let loads = AtomicUsize::new(0);
    let threads = 8;
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                let v = cache
                    .get_or_load(key(m, 0), || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        Ok(vec![5; 100])
                    })
                    .unwrap();
                assert_eq!(v[99], 5);
            });
        }
    });
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    let s = cache.stats();
    assert_eq!((s.hits, s.misses), (threads as u64 - 1, 1));
    assert!(cache.state.lock().loading.is_empty());
}

#[test]
fn a_slow_load_does_not_block_other_keys() {
    let cache: Cache<Vec<u8>> = Cache::new(1000);
    let m = MatrixId::unique();
    let started = Barrier::new(2);
    let release = Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            cache
                .get_or_load(key(m, 0), || {
                    started.wait();
                    release.wait();
                    Ok(vec![0; 10])
                })
                .unwrap();
        });
        started.wait();
        // Key 0 is being loaded; key 1 loads and is found meanwhile.
        cache.get_or_load(key(m, 1), || Ok(vec![1; 10])).unwrap();
        assert!(cache.get(key(m, 1)).is_some());
        release.wait();
    });
    assert_eq!(cache.stats().entries, 2);
}

#[test]
fn many_threads_keep_the_bound() {
    let cache: Cache<Vec<u8>> = Cache::new(5000);
    let m = MatrixId::unique();
    std::thread::scope(|s| {
        for t in 0..4usize {
            let cache = &cache;
            s.spawn(move || {
                for i in 0..200usize {
                    let b = (i * 7 + t) % 40;
                    let v = cache.get_or_load(key(m, b), || Ok(vec![b as u8; 300 + b * 10]));
                    assert_eq!(v.unwrap()[0], b as u8);
                    let s = cache.stats();
                    assert!(s.bytes_held <= s.budget);
                }
            });
        }
    });
    let s = cache.stats();
    assert_eq!(s.hits + s.misses, 800);
    assert!(s.bytes_held <= 5000);
}

/// What a cache call does, for the model test.
#[derive(Clone, Debug)]
enum Op {
    Insert(usize, usize),
    Get(usize),
    Remove,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The cache agrees with a plain model of an LRU bounded in bytes: the same keys are
    /// held, the bytes charged never exceed the budget, the least recently used go first, and a
    /// value larger than the budget is not kept.
    #[test]
    fn cache_follows_a_simple_lru_model(
        budget in 0usize..400,
        ops in prop::collection::vec(
            prop_oneof![
                (0usize..8, 0usize..300).prop_map(|(k, b)| Op::Insert(k, b)),
                (0usize..8).prop_map(Op::Get),
                Just(Op::Remove),
            ],
            0..60,
        ),
    ) {
        let cache = Cache::new(budget);
        let m = MatrixId::unique();
        let alive = Arc::new(AtomicUsize::new(0));
        // (key, bytes), least recently used first.
        let mut model: Vec<(usize, usize)> = Vec::new();
        for op in ops {
            match op {
                Op::Insert(k, bytes) => {
                    let kept = cache.insert(key(m, k), Arc::new(Sized::new(bytes, &alive)));
                    model.retain(|&(mk, _)| mk != k);
                    prop_assert_eq!(kept, bytes <= budget);
                    if kept {
                        while model.iter().map(|e| e.1).sum::<usize>() + bytes > budget {
                            model.remove(0);
                        }
                        model.push((k, bytes));
                    }
                }
                Op::Get(k) => {
                    let found = cache.get(key(m, k)).is_some();
                    let at = model.iter().position(|&(mk, _)| mk == k);
                    prop_assert_eq!(found, at.is_some());
                    if let Some(i) = at {
                        let e = model.remove(i);
                        model.push(e);
                    }
                }
                Op::Remove => {
                    cache.remove_matrix(m);
                    model.clear();
                }
            }
            let stats = cache.stats();
            prop_assert!(stats.bytes_held <= budget);
            prop_assert_eq!(stats.bytes_held, model.iter().map(|e| e.1).sum::<usize>());
            prop_assert_eq!(stats.entries, model.len());
            for k in 0..8 {
                prop_assert_eq!(cache.contains(key(m, k)), model.iter().any(|e| e.0 == k));
            }
        }
    }
}
