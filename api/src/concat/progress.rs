//! How far a streamed concatenation has got: the inputs' matrix values counted as they are
//! read, and told to an observer.

use std::sync::atomic::{AtomicU64, Ordering};

use annpage_engine::data::Matrix;
use annpage_engine::Result;

use crate::{BackedAnnData, BackedMatrixView};

/// How far [`concat_on_disk_observed`](super::concat_on_disk_observed) has got: the values of
/// the inputs' `X`, layers and `raw.X` read so far (the stored values of sparse matrices,
/// every entry of dense ones), of all it reads (along var, the cells the join keeps). The
/// last report has `done == total`.
///
/// ```
/// use annpage::ConcatProgress;
/// let p = ConcatProgress { done: 25, total: 100 };
/// assert_eq!(p.done * 4, p.total);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConcatProgress {
    /// Values read so far.
    pub done: u64,
    /// Values of the streamed matrices of every input.
    pub total: u64,
}

/// Counts the values read and tells the observer.
pub(super) struct Tracker<'a> {
    total: u64,
    done: AtomicU64,
    observe: &'a (dyn Fn(ConcatProgress) + Sync),
}

impl<'a> Tracker<'a> {
    /// A tracker of the matrices of `handles` a concatenation streams: `X` when `with_x`,
    /// `layers`, `raw.X` when `raw`, of which it reads `read(i, m)` values of input `i`'s
    /// matrix `m`. Tells `observe` nothing is read yet.
    pub(super) fn new(
        handles: &[BackedAnnData],
        (with_x, layers, raw): (bool, &[String], bool),
        read: &dyn Fn(usize, &BackedMatrixView) -> Result<u64>,
        observe: &'a (dyn Fn(ConcatProgress) + Sync),
    ) -> Result<Self> {
        let mut total = 0u64;
        for (i, h) in handles.iter().enumerate() {
            let values = |m: Option<BackedMatrixView>| m.map_or(Ok(0), |m| read(i, &m));
            if with_x {
                total += values(h.x())?;
            }
            if raw {
                total += values(h.raw_x())?;
            }
            for key in layers {
                total += values(h.layer(key).ok())?;
            }
        }
        observe(ConcatProgress { done: 0, total });
        Ok(Tracker {
            total,
            done: AtomicU64::new(0),
            observe,
        })
    }

    /// Counts the values of `m`, just read.
    pub(super) fn read(&self, m: &Matrix) {
        let n = match m {
            Matrix::Sparse(s) => s.nnz() as u64,
            Matrix::Dense(a) => a.len() as u64,
        };
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        (self.observe)(ConcatProgress {
            done: done.min(self.total),
            total: self.total,
        });
    }

    /// Tells the observer everything is read.
    pub(super) fn finish(&self) {
        (self.observe)(ConcatProgress {
            done: self.total,
            total: self.total,
        });
    }
}
