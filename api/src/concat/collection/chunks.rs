//! [`CollectionChunks`]: a collection's matrix at its selection, a chunk of rows at a time.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use annpage_engine::data::Matrix;
use annpage_engine::paged::ScanBuffers;
use annpage_engine::{Error, Result};

use super::{BackedCollection, Run, Which};
use crate::concat::conform::Conform;
use crate::concat::matrix::{self, Mat};
use crate::concat::plan::Reindexer;
use crate::{AxisIndex, BackedMatrixView, MatrixChunks, Selection};

/// A collection's matrix in chunks of rows: `(range of the selection's rows, matrix)`; see
/// [`BackedCollection::chunk_x`].
pub struct CollectionChunks {
    coll: BackedCollection,
    which: Which,
    conform: Conform,
    chunk_rows: usize,
    mode: Pass,
    /// The buffers of chunks handed back, for the next file's pass to read into.
    buffers: ScanBuffers,
    failed: bool,
}

enum Pass {
    /// Run by run, each through its file's chunked read (with its read-ahead).
    Runs {
        runs: VecDeque<Run>,
        current: Option<Box<Current>>,
    },
    /// Chunk by chunk, each gathered from its runs.
    Gather { next: usize },
}

/// The run being read.
struct Current {
    run: Run,
    /// `None`: the file lacks the matrix (its rows are filled).
    chunks: Option<MatrixChunks>,
    /// Rows of the run done, when the file lacks the matrix.
    done: usize,
}

impl CollectionChunks {
    pub(super) fn new(coll: BackedCollection, which: Which, chunk_rows: usize) -> Result<Self> {
        if chunk_rows == 0 {
            return Err(Error::invalid("chunks must hold at least one row"));
        }
        let conform = coll.conform(&which)?;
        let runs = coll.runs(0..coll.n_obs())?;
        // Each file's cells in one stretch (any sorted selection): file by file.
        let mut files: Vec<usize> = runs.iter().map(|r| r.file).collect();
        files.dedup();
        let grouped = files.len() == runs.len() && {
            files.sort_unstable();
            files.windows(2).all(|w| w[0] != w[1])
        };
        let mode = if grouped {
            Pass::Runs {
                runs: runs.into(),
                current: None,
            }
        } else {
            Pass::Gather { next: 0 }
        };
        Ok(CollectionChunks {
            coll,
            which,
            conform,
            chunk_rows,
            mode,
            buffers: ScanBuffers::default(),
            failed: false,
        })
    }

    /// The kind and dtype of every chunk.
    pub(super) fn conform(&self) -> &Conform {
        &self.conform
    }

    /// Hands back a chunk the caller is done with, for a later chunk (of this file or the
    /// next) to be read into its memory (see [`MatrixChunks::recycle`]).
    pub fn recycle(&mut self, chunk: Matrix) {
        match &mut self.mode {
            Pass::Runs {
                current: Some(cur), ..
            } => match &mut cur.chunks {
                Some(c) => c.recycle(chunk),
                None => self.buffers.recycle(chunk),
            },
            Pass::Runs { current: None, .. } => self.buffers.recycle(chunk),
            Pass::Gather { .. } => {}
        }
    }

    /// Where to hand chunks back once done with them after the iteration has moved on: the
    /// buffers every file's pass reads into (chunks of any file go back there, unlike with
    /// [`CollectionChunks::recycle`], which drops those of a file read through the cache).
    /// `None` where the chunks are gathered from scattered runs.
    pub fn buffers(&self) -> Option<ScanBuffers> {
        match self.mode {
            Pass::Runs { .. } => Some(self.buffers.clone()),
            Pass::Gather { .. } => None,
        }
    }

    /// File `run.file`'s matrix at the run's cells and the selection's genes.
    fn view(&self, run: &Run) -> Result<Option<BackedMatrixView>> {
        let file = &self.coll.inner.files[run.file];
        let (cols, _) = &self.coll.file_columns()[run.file];
        let all = cols.len() == file.n_vars() && cols.iter().enumerate().all(|(i, &c)| i == c);
        let var = if all {
            Selection::All
        } else {
            Selection::positions(cols.iter().copied())
        };
        let sliced = file.slice(&super::selection_of(&run.local), &var)?;
        Ok(match &self.which {
            Which::X => sliced.x(),
            Which::Layer(key) => sliced.layer(key).ok(),
        })
    }

    fn next_run_chunk(&mut self) -> Option<Result<(Range<usize>, Matrix)>> {
        loop {
            let Pass::Runs { runs, current } = &mut self.mode else {
                return None;
            };
            if current.is_none() {
                let run = runs.pop_front()?;
                let view = match self.view(&run) {
                    Ok(v) => v,
                    Err(e) => return Some(Err(e)),
                };
                let scan = |v: BackedMatrixView| v.scan_reusing(self.chunk_rows, &self.buffers);
                let chunks = match view.map(scan).transpose() {
                    Ok(c) => c,
                    Err(e) => return Some(Err(e)),
                };
                let Pass::Runs { current, .. } = &mut self.mode else {
                    return None;
                };
                *current = Some(Box::new(Current {
                    run,
                    chunks,
                    done: 0,
                }));
            }
            let Pass::Runs {
                current: Some(cur), ..
            } = &mut self.mode
            else {
                return None;
            };
            let reindexer = &self.coll.file_columns()[cur.run.file].1;
            let start = cur.run.rows.start;
            let item = match &mut cur.chunks {
                Some(chunks) => chunks.next().map(|c| {
                    c.and_then(|(range, m)| {
                        let m = self.conform.chunk(Some(m), range.len(), reindexer)?;
                        Ok((start + range.start..start + range.end, m))
                    })
                }),
                None => {
                    let len = cur.run.rows.len();
                    (cur.done < len).then(|| {
                        let k = self.chunk_rows.min(len - cur.done);
                        let range = start + cur.done..start + cur.done + k;
                        cur.done += k;
                        Ok((range, self.conform.chunk(None, k, reindexer)?))
                    })
                }
            };
            match item {
                Some(item) => return Some(item),
                None => {
                    if let Pass::Runs { current, .. } = &mut self.mode {
                        *current = None;
                    }
                }
            }
        }
    }

    /// Rows `next..` (a chunk) of a selection that goes back and forth between files: each
    /// file's cells of the chunk read at once, then put in the chunk's order.
    fn next_gathered(&mut self, next: usize) -> Result<(Range<usize>, Matrix)> {
        let end = self.coll.n_obs().min(next.saturating_add(self.chunk_rows));
        let n_files = self.coll.inner.files.len();
        // Per file: the chunk's rows it holds (positions in the chunk) and their cells.
        let mut rows: Vec<Vec<usize>> = vec![Vec::new(); n_files];
        let mut cells: Vec<Vec<usize>> = vec![Vec::new(); n_files];
        for run in self.coll.runs(next..end)? {
            rows[run.file].extend(run.rows.clone().map(|r| r - next));
            cells[run.file].extend(run.local.iter());
        }
        let mut order = vec![0usize; end - next];
        let mut stacked = 0;
        let mut runs = Vec::new();
        for (file, (rows, cells)) in rows.into_iter().zip(cells).enumerate() {
            if rows.is_empty() {
                continue;
            }
            let n = self.coll.inner.files[file].n_obs();
            runs.push(Run {
                file,
                rows: 0..cells.len(),
                local: AxisIndex::from_positions(cells, n)?,
            });
            for r in rows {
                order[r] = stacked;
                stacked += 1;
            }
        }
        // Each file's cells are one read; up to GATHER_THREADS files are read at once (a read
        // waits on its file's loads: several files keep the worker pool busy).
        let this = &*self;
        let read = |run: &Run| -> Result<Matrix> {
            let reindexer = &this.coll.file_columns()[run.file].1;
            let m = this.view(run)?.map(|v| v.to_memory()).transpose()?;
            this.conform.chunk(m, run.rows.len(), reindexer)
        };
        let parts = match &runs[..] {
            [one] => vec![read(one)?],
            _ => {
                let next = AtomicUsize::new(0);
                let done: Vec<Mutex<Option<Result<Matrix>>>> =
                    runs.iter().map(|_| Mutex::new(None)).collect();
                std::thread::scope(|s| {
                    for _ in 0..runs.len().min(GATHER_THREADS) {
                        s.spawn(|| loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(run) = runs.get(i) else { break };
                            let part = read(run);
                            let failed = part.is_err();
                            *done[i].lock() = Some(part);
                            if failed {
                                // The runs after it are not started.
                                next.store(runs.len(), Ordering::Relaxed);
                            }
                        });
                    }
                });
                let mut parts = Vec::with_capacity(runs.len());
                for part in done {
                    match part.into_inner() {
                        Some(part) => parts.push(part?),
                        // Left unread after a read failed; that error comes first.
                        None => return Err(Error::invalid("a file's cells were not read")),
                    }
                }
                parts
            }
        };
        let n_vars = self.coll.n_vars();
        let m = stack(parts, &self.conform, (end - next, n_vars))?;
        let sorted = order.iter().enumerate().all(|(i, &o)| i == o);
        let m = if sorted {
            m
        } else {
            m.subset(
                &AxisIndex::from_positions(order, end - next)?,
                &AxisIndex::full(n_vars),
            )?
        };
        Ok((next..end, m))
    }
}

/// Files of a scattered chunk read at once, at most.
const GATHER_THREADS: usize = 8;

impl Iterator for CollectionChunks {
    type Item = Result<(Range<usize>, Matrix)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = match self.mode {
            Pass::Runs { .. } => self.next_run_chunk()?,
            Pass::Gather { next } => {
                if next >= self.coll.n_obs() {
                    return None;
                }
                let item = self.next_gathered(next);
                if let (Ok((range, _)), Pass::Gather { next }) = (&item, &mut self.mode) {
                    *next = range.end;
                }
                item
            }
        };
        self.failed = item.is_err();
        Some(item)
    }
}

impl std::fmt::Debug for CollectionChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectionChunks")
            .field("chunk_rows", &self.chunk_rows)
            .finish()
    }
}

/// Stacks chunks of the result's kind and dtype (`shape` in all) into one matrix.
pub(super) fn stack(
    mut parts: Vec<Matrix>,
    conform: &Conform,
    shape: (usize, usize),
) -> Result<Matrix> {
    match parts.len() {
        0 => conform.chunk(None, 0, &Reindexer::positions(0, vec![None; shape.1])),
        1 => Ok(parts.pop().expect("one part")),
        _ => {
            let keep = Reindexer::range(shape.1, shape.1);
            let pieces = parts
                .into_iter()
                .map(|m| {
                    let rows = m.shape().0;
                    (Some(Mat::from_matrix(m)), rows, &keep)
                })
                .collect();
            conform.chunk(
                Some(matrix::stack_rows(pieces, None)?.into_matrix()?),
                shape.0,
                &keep,
            )
        }
    }
}
