//! The worker threads that load blocks ahead of readers ([`super::ahead::Loader`]'s loads).
//!
//! A [`WorkerPool`] belongs to whoever opens matrices (a backed handle shares one among all its
//! matrices, and handles may share one, as they may share a cache). Its threads start on the
//! first task and take tasks from one queue ([`crossbeam::channel`]); they end once the last
//! clone of the pool is dropped and the queue is empty. Tasks never wait for other tasks of
//! the pool, so a pool shared by many readers cannot deadlock: a task waits at most for a load
//! of the same block by another thread, which is itself running.

use std::fmt;
use std::sync::OnceLock;

use crossbeam::channel::{self, Sender};

type Task = Box<dyn FnOnce() + Send>;

/// Worker threads shared by the matrices of one or more handles, started on first use.
///
/// ```
/// use std::sync::Arc;
/// use annpage_engine::paged::WorkerPool;
/// let pool = Arc::new(WorkerPool::new(2));
/// assert_eq!((pool.threads(), pool.started()), (2, false)); // no thread until a task comes
/// ```
pub struct WorkerPool {
    threads: usize,
    /// The queue's sending end, once the threads are started (`None` if they could not be).
    queue: OnceLock<Option<Sender<Task>>>,
}

impl WorkerPool {
    /// A pool of `threads` threads (at least 1), none started yet.
    pub fn new(threads: usize) -> Self {
        WorkerPool {
            threads: threads.max(1),
            queue: OnceLock::new(),
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
}
