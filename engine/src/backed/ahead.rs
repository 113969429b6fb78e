//! Reading ahead: worker threads load the blocks a read will need, in the order it will need
//! them, at most a window ahead of the reader, while the reader copies out of earlier ones.
//!
//! A [`Loader`] is given the whole list of [`Want`]s up front (a plan's blocks, or every block
//! of a chunked iteration) and hands results back strictly in that order. The window bounds the
//! memory held by loaded blocks not yet taken.

use std::ops::Range;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use super::block::Block;
use crate::Result;

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

/// Loads a list of wants on worker threads, in order, a window ahead of the consumer.
pub(crate) struct Loader {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    next: usize,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    wants: Vec<Want>,
    results: Vec<Option<Result<Arc<Block>>>>,
    /// Next want a worker will claim.
    claimed: usize,
    /// Wants the consumer has taken.
    taken: usize,
    window: usize,
    closed: bool,
}

impl Loader {
    /// Starts `threads` workers loading `wants` through `source`, at most `window` wants ahead
    /// of the consumer.
    pub(crate) fn start<L: Load>(
        source: Arc<L>,
        wants: Vec<Want>,
        threads: usize,
        window: usize,
    ) -> Self {
        let n = wants.len();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                wants,
                results: (0..n).map(|_| None).collect(),
                claimed: 0,
                taken: 0,
                window: window.max(1),
                closed: false,
            }),
            changed: Condvar::new(),
        });
        let workers = (0..threads.clamp(1, n.max(1)))
            .map(|_| {
                let shared = Arc::clone(&shared);
                let source = Arc::clone(&source);
                std::thread::spawn(move || work(&shared, source.as_ref()))
            })
            .collect();
        Loader {
            shared,
            workers,
            next: 0,
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
        while st.results[i].is_none() {
            self.shared.changed.wait(&mut st);
        }
        let result = st.results[i].take();
        st.taken = i + 1;
        self.next = i + 1;
        drop(st);
        self.shared.changed.notify_all();
        result
    }
}

fn work(shared: &Shared, source: &dyn LoadDyn) {
    loop {
        let (i, want) = {
            let mut st = shared.state.lock();
            loop {
                if st.closed || st.claimed >= st.wants.len() {
                    return;
                }
                if st.claimed < st.taken + st.window {
                    break;
                }
                shared.changed.wait(&mut st);
            }
            let i = st.claimed;
            st.claimed += 1;
            (i, st.wants[i].clone())
        };
        let result = source.load_dyn(&want);
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

/// Object-safe view of [`Load`] for the worker loop.
trait LoadDyn {
    fn load_dyn(&self, want: &Want) -> Result<Arc<Block>>;
}

impl<L: Load> LoadDyn for L {
    fn load_dyn(&self, want: &Want) -> Result<Arc<Block>> {
        self.load(want)
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.shared.state.lock().closed = true;
        self.shared.changed.notify_all();
        for w in self.workers.drain(..) {
            // A worker that panicked has nothing left to clean up.
            let _ = w.join();
        }
    }
}
