//! The worker threads that load blocks ahead of readers ([`super::ahead::Loader`]'s loads).
//!
//! A [`WorkerPool`] belongs to whoever opens matrices (a backed handle shares one among all its
//! matrices, and handles may share one, as they may share a cache). Its threads start on the
//! first task and take tasks from one queue ([`crossbeam::channel`]); they end once the last
//! clone of the pool is dropped and the queue is empty. Tasks never wait for other tasks of
//! the pool, so a pool shared by many readers cannot deadlock: a task waits at most for a load
//! of the same block by another thread, which is itself running.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam::channel::{self, Sender};

type Task = Box<dyn FnOnce() + Send>;

/// Worker threads shared by the matrices of one or more handles, started on first use.
///
/// ```
/// use std::sync::Arc;
/// use annpage_engine::paged::WorkerPool;
/// let pool = Arc::new(WorkerPool::new(2));
/// assert_eq!((pool.threads(), pool.started()), (2, false)); // no thread until a task comes
/// // Counts past the limit are cut to it (thousands of threads would abort the process).
/// let huge = WorkerPool::new(65_535);
/// assert_eq!(huge.threads(), annpage_engine::paged::max_threads());
/// ```
pub struct WorkerPool {
    threads: usize,
    /// The queue's sending end, once the threads are started (`None` if they could not be).
    queue: OnceLock<Option<Sender<Task>>>,
    spare: Arc<SpareThreads>,
    /// As many threads again, for backends that decode a read's chunks on a rayon pool
    /// (Zarr, through `zarrs` or the shard reader), built on first use (`None` if they could
    /// not be): without it they would decode on rayon's global pool, one thread per core
    /// whatever the threads asked for.
    decoders: OnceLock<Option<rayon::ThreadPool>>,
}

/// The threads a pool lends to reads that split their decoding over more threads than the one
/// they run on: as many as the pool has, in all, whatever reads run at once (on its workers or
/// on their callers' threads), so that concurrent reads never decode on the square of the
/// threads asked for.
#[derive(Debug)]
pub(crate) struct SpareThreads(AtomicUsize);

impl SpareThreads {
    /// Lends up to `want` threads (none when all are lent); they come back when the lease
    /// drops.
    pub(crate) fn lease(self: &Arc<Self>, want: usize) -> Lease {
        let mut free = self.0.load(Ordering::Acquire);
        loop {
            let n = want.min(free);
            match self
                .0
                .compare_exchange_weak(free, free - n, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return Lease {
                        spare: Arc::clone(self),
                        n,
                    }
                }
                Err(now) => free = now,
            }
        }
    }
}

/// Threads lent by [`SpareThreads::lease`], given back on drop.
#[derive(Debug)]
pub(crate) struct Lease {
    spare: Arc<SpareThreads>,
    n: usize,
}

impl SpareThreads {
    /// How many threads are not lent now.
    #[cfg(test)]
    pub(crate) fn free(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl Lease {
    /// How many threads were lent.
    pub(crate) fn threads(&self) -> usize {
        self.n
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.spare.0.fetch_add(self.n, Ordering::AcqRel);
    }
}

impl WorkerPool {
    /// A pool of `threads` threads (at least 1, at most four per core or 16), none started
    /// yet.
    pub fn new(threads: usize) -> Self {
        let threads = threads.clamp(1, super::io::max_threads());
        WorkerPool {
            threads,
            queue: OnceLock::new(),
            spare: Arc::new(SpareThreads(AtomicUsize::new(threads))),
            decoders: OnceLock::new(),
        }
    }

    /// Runs `decode` on the pool's decoding threads: the rayon work it starts (a backend
    /// decoding chunks in parallel) runs on as many threads as the pool has. The caller waits;
    /// it must not be one of those threads holding a lock such work may need.
    pub(crate) fn decoding<R: Send>(&self, decode: impl FnOnce() -> R + Send) -> R {
        let pool = self.decoders.get_or_init(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(self.threads)
                .thread_name(|i| format!("annpage-decode-{i}"))
                .build()
                .ok()
        });
        match pool {
            Some(pool) => pool.install(decode),
            None => decode(),
        }
    }

    /// A pool with one thread per core.
    pub fn per_core() -> Self {
        WorkerPool::new(super::io::default_threads())
    }

    /// How many threads the pool runs.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The threads the pool lends to reads that split their decoding.
    pub(crate) fn spare(&self) -> &Arc<SpareThreads> {
        &self.spare
    }

    /// Whether the threads have been started.
    pub fn started(&self) -> bool {
        self.queue.get().is_some_and(Option::is_some)
    }

    /// Runs `task` on a pool thread; gives it back if the pool has no threads (the system
    /// refused to start them), for the caller to run itself.
    pub(crate) fn spawn(&self, task: Task) -> std::result::Result<(), Task> {
        match self.queue.get_or_init(|| self.start()) {
            Some(queue) => queue.send(task).map_err(|e| e.into_inner()),
            None => Err(task),
        }
    }

    fn start(&self) -> Option<Sender<Task>> {
        let (send, receive) = channel::unbounded::<Task>();
        let mut started = 0;
        for i in 0..self.threads {
            let receive = receive.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("annpage-worker-{i}"))
                .spawn(move || {
                    super::io::mark_worker_thread();
                    // Ends when every sender is gone and the queue is drained. A task that
                    // panics (a bug: loads report errors) does not take the thread with it.
                    for task in receive {
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task));
                    }
                });
            started += usize::from(spawned.is_ok());
        }
        (started > 0).then_some(send)
    }
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("threads", &self.threads)
            .field("started", &self.started())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    use super::*;

    /// Runs `rounds` rounds of one task per thread, each task waiting at a barrier for the
    /// others of its round; the names of the threads that ran them.
    fn run_rounds(pool: &WorkerPool, rounds: usize) -> std::collections::HashSet<String> {
        let names = Arc::new(parking_lot::Mutex::new(std::collections::HashSet::new()));
        for _ in 0..rounds {
            let barrier = Arc::new(Barrier::new(pool.threads() + 1));
            for _ in 0..pool.threads() {
                let (barrier, names) = (Arc::clone(&barrier), Arc::clone(&names));
                let task: Task = Box::new(move || {
                    let me = std::thread::current().name().unwrap_or_default().to_owned();
                    names.lock().insert(me);
                    barrier.wait();
                });
                assert!(pool.spawn(task).is_ok());
            }
            barrier.wait();
        }
        let names = names.lock().clone();
        names
    }

    #[test]
    fn spare_threads_are_lent_once_at_a_time() {
        let pool = WorkerPool::new(3);
        let spare = pool.spare();
        let most = spare.lease(5);
        assert_eq!((most.threads(), spare.free()), (3, 0));
        assert_eq!(spare.lease(2).threads(), 0, "none left to lend");
        drop(most);
        let (a, b) = (spare.lease(2), spare.lease(2));
        assert_eq!((a.threads(), b.threads(), spare.free()), (2, 1, 0));
        drop((a, b));
        assert_eq!(spare.free(), 3);
    }

    #[test]
    fn tasks_run_on_the_same_threads_in_parallel() {
        let pool = WorkerPool::new(3);
        assert!(!pool.started());
        // Each round needs all three threads at once (the barrier); many rounds, three threads.
        let names = run_rounds(&pool, 50);
        assert!(pool.started());
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        assert_eq!(
            names,
            ["annpage-worker-0", "annpage-worker-1", "annpage-worker-2"]
        );
        assert!(!super::super::io::on_worker_thread());
        let (send, receive) = channel::bounded(1);
        let task: Task = Box::new(move || send.send(super::super::io::on_worker_thread()).unwrap());
        assert!(pool.spawn(task).is_ok());
        assert!(receive.recv().unwrap());
    }

    #[test]
    fn queued_tasks_finish_after_the_pool_is_dropped() {
        let done = Arc::new(AtomicUsize::new(0));
        let pool = WorkerPool::new(1);
        for _ in 0..20 {
            let done = Arc::clone(&done);
            let task: Task = Box::new(move || {
                std::thread::sleep(std::time::Duration::from_millis(1));
                done.fetch_add(1, Ordering::SeqCst);
            });
            assert!(pool.spawn(task).is_ok());
        }
        drop(pool);
        let t0 = std::time::Instant::now();
        while done.load(Ordering::SeqCst) < 20 && t0.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(done.load(Ordering::SeqCst), 20);
    }

    #[test]
    fn decoding_runs_on_as_many_threads_as_the_pool() {
        use rayon::prelude::*;
        for threads in [1, 3] {
            let pool = WorkerPool::new(threads);
            let (n, names) = pool.decoding(|| {
                let names: std::collections::BTreeSet<String> = (0..64)
                    .into_par_iter()
                    .map(|_| {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        std::thread::current().name().unwrap_or("").to_owned()
                    })
                    .collect();
                (rayon::current_num_threads(), names)
            });
            assert_eq!(n, threads);
            assert!(
                names.len() <= threads && names.iter().all(|n| n.starts_with("annpage-decode-")),
                "{names:?}"
            );
        }
    }
}
