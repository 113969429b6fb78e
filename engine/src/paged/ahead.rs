//! Reading ahead: tasks on the matrix's [`WorkerPool`] load the blocks a read will need, in the
//! order it will need them, at most a window ahead of the reader, while the reader copies out
//! of earlier ones.
//!
//! A [`Loader`] is given the whole list of [`Want`]s up front (a plan's blocks, or every block
//! of a chunked iteration) and hands results back strictly in that order. The window bounds the
//! memory held by loaded blocks not yet taken; at most `threads` loads run at once. A load task
//! never waits for the window: it ends when the window is full, and taking a block starts the
//! next load.

use std::ops::Range;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::block::Block;
use super::pool::WorkerPool;
use crate::{Error, Result};

/// One block a read needs: the whole block `block` (read through the cache), or only the
/// runs of major positions `span` of it (increasing; read on their own, not cached).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Want {
    pub(crate) block: usize,
    pub(crate) span: Option<Vec<Range<usize>>>,
}

/// Something that loads wanted blocks (the matrix).
pub(crate) trait Load: Send + Sync + 'static {
    fn load(&self, want: &Want) -> Result<Arc<Block>>;
}

/// Loads a list of wants on a worker pool, in order, a window ahead of the consumer.
pub(crate) struct Loader {
    shared: Arc<Queue>,
    pool: Arc<WorkerPool>,
    next: usize,
}

struct Queue {
    state: Mutex<Progress>,
    changed: Condvar,
}

struct Progress {
    /// What loads the wants; taken away when the loader is dropped, so that a finishing
    /// task's last reference to the shared state holds nothing of the matrix.
    source: Option<Arc<dyn Load>>,
    wants: Vec<Want>,
    results: Vec<Option<Result<Arc<Block>>>>,
    /// Next want a load will claim.
    claimed: usize,
    /// Wants the consumer has taken.
    taken: usize,
    window: usize,
    /// Load tasks running, at most `threads`.
    running: usize,
    threads: usize,
    closed: bool,
}

impl Progress {
    /// Whether another want may be claimed now.
    fn may_claim(&self) -> bool {
        !self.closed && self.claimed < self.wants.len() && self.claimed < self.taken + self.window
    }
}

impl Loader {
    /// Starts loading `wants` through `source` on `pool`, at most `threads` at once and at
    /// most `window` wants ahead of the consumer.
    pub(crate) fn start<L: Load>(
        source: Arc<L>,
        wants: Vec<Want>,
        pool: &Arc<WorkerPool>,
        threads: usize,
        window: usize,
    ) -> Self {
        let n = wants.len();
        let shared = Arc::new(Queue {
            state: Mutex::new(Progress {
                source: Some(source),
                wants,
                results: (0..n).map(|_| None).collect(),
                claimed: 0,
                taken: 0,
                window: window.max(1),
                running: 0,
                threads: threads.max(1),
                closed: false,
            }),
            changed: Condvar::new(),
        });
        let loader = Loader {
            shared,
            pool: Arc::clone(pool),
            next: 0,
        };
        loader.pump();
        loader
    }

    /// Starts load tasks while the window and the thread limit allow.
    fn pump(&self) {
        loop {
            {
                let mut st = self.shared.state.lock();
                if st.running >= st.threads || !st.may_claim() {
                    return;
                }
                st.running += 1;
            }
            let shared = Arc::clone(&self.shared);
            if let Err(task) = self.pool.spawn(Box::new(move || work(&shared))) {
                // No worker threads: the consumer loads each want itself when it takes it.
                drop(task);
                let mut st = self.shared.state.lock();
                st.running -= 1;
                st.threads = 0;
                return;
            }
        }
    }

    /// The next want in the list (without taking it).
    pub(crate) fn peek(&self) -> Option<Want> {
        self.shared.state.lock().wants.get(self.next).cloned()
    }

    /// Waits for the next want's block and takes it.
    pub(crate) fn take(&mut self) -> Option<Result<Arc<Block>>> {
        let i = self.next;
        let mut st = self.shared.state.lock();
        if i >= st.wants.len() {
            return None;
        }
        if st.threads == 0 && st.results[i].is_none() && st.claimed == i {
            // No pool: load it here.
            if let Some(source) = st.source.clone() {
                st.claimed += 1;
                let want = st.wants[i].clone();
                drop(st);
                let result = source.load(&want);
                st = self.shared.state.lock();
                st.results[i] = Some(result);
            }
        }
        while st.results[i].is_none() {
            self.shared.changed.wait(&mut st);
        }
        let result = st.results[i].take();
        st.taken = i + 1;
        self.next = i + 1;
        drop(st);
        self.pump();
        result
    }
}

/// A load task: claims and loads wants until the window is full or the list is done.
fn work(shared: &Queue) {
    loop {
        let (i, want, source, share) = {
            let mut st = shared.state.lock();
            let source = st.source.clone().filter(|_| st.may_claim());
            let Some(source) = source else {
                st.running -= 1;
                drop(st);
                shared.changed.notify_all();
                return;
            };
            let i = st.claimed;
            st.claimed += 1;
            // Loads running at once are at most the window: with fewer than the threads
            // (large chunks in a small cache), each load may split its decoding.
            let share = st.threads / st.window.min(st.threads).max(1);
            (i, st.wants[i].clone(), source, share)
        };
        // A load that panics (a bug) fails the read instead of leaving the consumer waiting.
        let load = std::panic::AssertUnwindSafe(|| {
            crate::paged::io::with_worker_share(share, || source.load(&want))
        });
        let result = std::panic::catch_unwind(load).unwrap_or_else(|_| {
            Err(Error::Io(std::io::Error::other(format!(
                "loading block {} panicked",
                want.block
            ))))
        });
        drop(source);
        let failed = result.is_err();
        {
            let mut st = shared.state.lock();
            st.results[i] = Some(result);
            if failed {
                // The consumer stops at the first error; nothing after it is needed.
                st.closed = true;
            }
        }
        shared.changed.notify_all();
    }
}

impl Drop for Loader {
    /// Stops claiming, waits for the loads in flight and lets go of the source, so that
    /// nothing is read for this loader once it is gone and the matrix can close at once
    /// (loaders live on the reading thread, never on a pool thread).
    fn drop(&mut self) {
        let mut st = self.shared.state.lock();
        st.closed = true;
        while st.running > 0 {
            self.shared.changed.wait(&mut st);
        }
        let source = st.source.take();
        drop(st);
        drop(source);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::paged::io::ChunkBytes;

    /// Loads block `b` as an empty chunk, failing at `fail`; records the most loads at once.
    struct Counted {
        fail: Option<usize>,
        now: AtomicUsize,
        most: AtomicUsize,
        loads: AtomicUsize,
    }

    impl Counted {
        fn new(fail: Option<usize>) -> Arc<Self> {
            Arc::new(Counted {
                fail,
                now: AtomicUsize::new(0),
                most: AtomicUsize::new(0),
                loads: AtomicUsize::new(0),
            })
        }
    }

    impl Load for Counted {
        fn load(&self, want: &Want) -> Result<Arc<Block>> {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            self.loads.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(2));
            self.now.fetch_sub(1, Ordering::SeqCst);
            if Some(want.block) == self.fail {
                return Err(Error::malformed("bad block"));
            }
            if want.block == usize::MAX {
                panic!("a bug");
            }
            Ok(Arc::new(Block::chunk(want.block, ChunkBytes::on_heap(0))))
        }
    }

    fn wants(n: usize) -> Vec<Want> {
        (0..n).map(|block| Want { block, span: None }).collect()
    }

    /// Waits until no load task runs: every load the window allows now has been made (a task
    /// ends only when it may claim nothing more, and only taking a block lets it claim again).
    fn settle(loader: &Loader) {
        let mut st = loader.shared.state.lock();
        while st.running > 0 {
            loader.shared.changed.wait(&mut st);
        }
    }

    #[test]
    fn loads_in_order_within_the_thread_limit() {
        let pool = Arc::new(WorkerPool::new(4));
        let source = Counted::new(None);
        let mut loader = Loader::start(Arc::clone(&source), wants(30), &pool, 2, 8);
        for b in 0..30 {
            assert_eq!(loader.peek().map(|w| w.block), Some(b));
            let block = loader.take().unwrap().unwrap();
            assert_eq!(block.major_range(), b..b + 1);
        }
        assert!(loader.take().is_none());
        assert_eq!(source.loads.load(Ordering::SeqCst), 30);
        assert!(source.most.load(Ordering::SeqCst) <= 2);
    }

    /// Records the threads each load may split its work into.
    struct Shares(parking_lot::Mutex<Vec<usize>>);

    impl Load for Shares {
        fn load(&self, want: &Want) -> Result<Arc<Block>> {
            self.0.lock().push(crate::paged::io::split_threads(64));
            Ok(Arc::new(Block::chunk(want.block, ChunkBytes::on_heap(0))))
        }
    }

    #[test]
    fn a_load_alone_in_its_window_may_split_over_the_threads() {
        let pool = Arc::new(WorkerPool::new(4));
        for (window, share) in [(1, 4), (2, 2), (4, 1), (8, 1)] {
            let source = Arc::new(Shares(parking_lot::Mutex::new(Vec::new())));
            let mut loader = Loader::start(Arc::clone(&source), wants(6), &pool, 4, window);
            while let Some(block) = loader.take() {
                block.unwrap();
            }
            assert_eq!(*source.0.lock(), vec![share; 6], "window {window}");
        }
        // Off the pool, work splits over every thread asked for.
        assert_eq!(crate::paged::io::split_threads(64), 64);
    }

    #[test]
    fn the_window_bounds_what_is_loaded_ahead() {
        let pool = Arc::new(WorkerPool::new(3));
        let source = Counted::new(None);
        let mut loader = Loader::start(Arc::clone(&source), wants(20), &pool, 3, 2);
        settle(&loader);
        assert_eq!(source.loads.load(Ordering::SeqCst), 2, "two ahead, no more");
        loader.take().unwrap().unwrap();
        settle(&loader);
        assert_eq!(source.loads.load(Ordering::SeqCst), 3);
        // Dropped early, the load of block 3 maybe in flight: it finishes, nothing more is
        // claimed, and no task holds the source any more, so nothing can load later.
        loader.take().unwrap().unwrap();
        drop(loader);
        assert!(source.loads.load(Ordering::SeqCst) <= 4);
        assert_eq!(source.now.load(Ordering::SeqCst), 0);
        assert_eq!(Arc::strong_count(&source), 1);
    }

    #[test]
    fn an_error_ends_the_loading() {
        let pool = Arc::new(WorkerPool::new(2));
        let source = Counted::new(Some(3));
        let mut loader = Loader::start(Arc::clone(&source), wants(50), &pool, 2, 4);
        for _ in 0..3 {
            loader.take().unwrap().unwrap();
        }
        assert!(loader.take().unwrap().is_err());
        drop(loader);
        assert!(source.loads.load(Ordering::SeqCst) < 50);
    }

    #[test]
    fn a_panicking_load_fails_the_read() {
        let pool = Arc::new(WorkerPool::new(1));
        let source = Counted::new(None);
        let mut list = wants(2);
        list[1].block = usize::MAX;
        let mut loader = Loader::start(Arc::clone(&source), list, &pool, 1, 2);
        assert!(loader.take().unwrap().is_ok());
        let e = loader.take().unwrap().unwrap_err().to_string();
        assert!(e.contains("panicked"), "{e}");
        // The pool's thread survived it.
        let mut again = Loader::start(source, wants(3), &pool, 1, 2);
        assert!((0..3).all(|_| again.take().unwrap().is_ok()));
    }

    #[test]
    fn loaders_share_one_pool() {
        let pool = Arc::new(WorkerPool::new(2));
        let sources: Vec<_> = (0..4).map(|_| Counted::new(None)).collect();
        std::thread::scope(|s| {
            for source in &sources {
                let pool = &pool;
                s.spawn(move || {
                    let mut loader = Loader::start(Arc::clone(source), wants(25), pool, 2, 4);
                    for b in 0..25 {
                        assert_eq!(loader.take().unwrap().unwrap().major_range(), b..b + 1);
                    }
                });
            }
        });
        for source in &sources {
            assert_eq!(source.loads.load(Ordering::SeqCst), 25);
        }
    }
}
