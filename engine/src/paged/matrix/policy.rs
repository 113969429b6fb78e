//! The I/O policy, decided before any byte is fetched: what a read costs, whether a block is
//! read whole (through the cache) or only as the runs a plan needs, whether loaded blocks are
//! kept, how many are loaded ahead, and the plan of a chunked pass. Every share of the cache's
//! budget is a [`MemoryPolicy`] method, so the numbers live in one place.

use std::collections::HashMap;
use std::ops::Range;

use crate::cache::{BlockKey, Retention};
use crate::data::SparseFormat;
use crate::paged::ahead::Want;
use crate::paged::io::RangeReader;
use crate::paged::plan::{Piece, ReadPlan};
use crate::select::AxisIndex;
use crate::Result;

use super::{BackedMatrix, Datasets, Inner};

/// The shares of a cache's bytes that backed reads and streamed writes use, in one place.
///
/// Built from the bytes that apply: the cache's budget for block sizes and written pieces, its
/// capacity (the budget less reservations) for what may be loaded ahead or kept.
///
/// ```
/// use annpage_engine::paged::MemoryPolicy;
/// let p = MemoryPolicy::new(1 << 30);
/// assert_eq!(p.block_bytes(), 32 << 20); // a thirty-second
/// assert_eq!(p.read_ahead_bytes(), 64 << 20); // a sixteenth
/// assert_eq!(p.write_piece_bytes(), 64 << 20); // a sixteenth, at most 64 MiB
/// assert_eq!(p.scattered_piece_bytes(), 512 << 20); // a half
/// assert!(p.keeps(1 << 30) && !p.keeps((1 << 30) + 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPolicy {
    bytes: usize,
}

impl MemoryPolicy {
    /// The policy of `bytes` (a budget or a capacity).
    pub fn new(bytes: usize) -> Self {
        MemoryPolicy { bytes }
    }

    /// The size of a block: a thirty-second, within [64 KiB, 64 MiB], so that a cache holds
    /// many blocks, a block is large enough to read efficiently, and a scan larger than the
    /// cache (a few blocks at a time: the one being copied and those read ahead) stays well
    /// within the budget.
    pub fn block_bytes(&self) -> usize {
        (self.bytes / 32).clamp(64 << 10, 64 << 20)
    }

    /// The blocks a read loads ahead of the copying and has not used yet: a sixteenth.
    pub fn read_ahead_bytes(&self) -> usize {
        self.bytes / 16
    }

    /// The chunks a scan read chunk by chunk (no blocks) loads ahead: a quarter.
    pub fn scan_ahead_bytes(&self) -> usize {
        self.bytes / 4
    }

    /// Whether a read (or a pass) whose blocks take `bytes` keeps them in the cache: when they
    /// all fit. A larger one reads without keeping, so it does not evict what others use.
    pub fn keeps(&self, bytes: usize) -> bool {
        bytes <= self.bytes
    }

    /// The values a streamed write appends at once: a sixteenth, within [64 KiB, 64 MiB].
    pub fn write_piece_bytes(&self) -> usize {
        (self.bytes / 16).clamp(64 << 10, 64 << 20)
    }

    /// The values read at once for a selection out of order (random cells) from compressed
    /// chunks, by a streamed write or a window of batches: a half, at least 64 KiB. Each piece
    /// costs a read of every block the selection touches, and compressed chunks are decoded
    /// whole ([`super::BackedMatrix::decodes_whole_chunks`]), so such reads take pieces as
    /// large as the budget allows.
    pub fn scattered_piece_bytes(&self) -> usize {
        (self.bytes / 2).max(64 << 10)
    }

    /// The values a concatenation reads, aligns and writes at once: an eighth, within
    /// [256 KiB, 8 MiB] (a chunk is held a few times over while it is aligned, cast and written).
    pub fn concat_chunk_bytes(&self) -> usize {
        (self.bytes / 8).clamp(256 << 10, 8 << 20)
    }

    /// The values a concatenation takes at once from the rows of a CSC matrix: a sixteenth,
    /// at least 256 KiB, without the upper bound of [`MemoryPolicy::concat_chunk_bytes`]. Each
    /// such chunk reads every column block holding its rows, so the fewer chunks the better;
    /// it is held a few times over while aligned, cast and written, beside a full cache.
    pub fn concat_csc_chunk_bytes(&self) -> usize {
        (self.bytes / 16).max(256 << 10)
    }

    /// The retention of a read whose blocks take `bytes` (see [`MemoryPolicy::keeps`]).
    pub(crate) fn retention(&self, bytes: usize) -> Retention {
        if self.keeps(bytes) {
            Retention::Keep
        } else {
            Retention::Discard
        }
    }
}

/// A block is read whole when the pieces a read needs of it cost at least this share of it
/// (one over this); below, only their runs are read.
const RUNS_BELOW_SHARE: u64 = 4;

/// The smallest average chunk (decoded bytes) that a chunked pass reads as one piece per chunk
/// rather than through blocks.
const WHOLE_CHUNK_MIN_BYTES: usize = 1 << 20;

/// How a chunked pass fetches, decided before it starts.
pub(super) struct ScanPlan {
    /// Whether loaded blocks are kept in the cache.
    pub retention: Retention,
    /// Every fetch of the pass, in order: for a pass read chunk by chunk, one per chunk.
    pub wants: Vec<Want>,
    /// How many wants are loaded ahead (`None`: loaded as asked for, on the caller's thread).
    pub window: Option<usize>,
    /// Whether each chunk is read as one piece whose buffers become the chunk.
    pub whole_chunks: bool,
}

impl BackedMatrix {
    /// Plans a pass over `rows` × `cols` in chunks of `chunk_rows` rows: kept in the cache when
    /// the blocks it touches fit (unless `retention` says); a pass larger than the cache over
    /// whole consecutive rows reads each chunk on its own, a window ahead, handed over without
    /// copying; otherwise every block the pass fetches is listed in order, read whole unless
    /// the pass as a whole needs little of it.
    pub(super) fn plan_scan(
        &self,
        rows: &AxisIndex,
        cols: &AxisIndex,
        chunk_rows: usize,
        retention: Option<Retention>,
    ) -> Result<ScanPlan> {
        let inner = &self.inner;
        let (major, _) = inner.axes(rows, cols);
        let capacity = MemoryPolicy::new(inner.cache.capacity());
        let retention = retention.unwrap_or_else(|| capacity.retention(inner.touched_bytes(major)));
        let whole = match retention {
            Retention::Discard => inner.whole_ranges(rows, cols, chunk_rows),
            Retention::Keep => None,
        };
        if let Some(ranges) = whole {
            let largest = ranges
                .iter()
                .map(|r| inner.range_bytes(r.clone()))
                .max()
                .unwrap_or(1)
                .max(1);
            let window = (capacity.scan_ahead_bytes() / largest).clamp(1, 8);
            let wants = ranges
                .into_iter()
                .enumerate()
                .map(|(k, r)| Want {
                    block: k,
                    span: Some(vec![r]),
                })
                .collect();
            return Ok(ScanPlan {
                retention,
                wants,
                window: Some(window),
                whole_chunks: true,
            });
        }
        let mut plans = Vec::new();
        let mut needed: HashMap<usize, u64> = HashMap::new();
        let mut start = 0;
        while start < rows.len() {
            let end = rows.len().min(start.saturating_add(chunk_rows));
            let chunk = rows.compose(&AxisIndex::range(start..end, rows.len())?)?;
            let (major, minor) = inner.axes(&chunk, cols);
            if let Some(plan) = inner.plan_for(major, minor)? {
                for (b, pieces) in plan.block_pieces() {
                    let cost: u64 = pieces
                        .iter()
                        .map(|p| inner.cost(p.src..p.src + p.len))
                        .sum();
                    *needed.entry(b).or_default() += cost;
                }
                plans.push(plan);
            }
            start = end;
        }
        let mut wants: Vec<Want> = Vec::new();
        for plan in &plans {
            for (b, pieces) in plan.block_pieces() {
                let mostly = needed[&b].saturating_mul(RUNS_BELOW_SHARE)
                    >= inner.cost(inner.blocking.range(b));
                let w = if mostly {
                    Want {
                        block: b,
                        span: None,
                    }
                } else {
                    inner.want(b, pieces)
                };
                let repeat =
                    matches!(wants.last(), Some(p) if p.block == w.block && p.span.is_none());
                if !repeat {
                    wants.push(w);
                }
            }
        }
        let window = (inner.threads > 1 && wants.len() > 1).then(|| inner.window(&wants));
        Ok(ScanPlan {
            retention,
            wants,
            window,
            whole_chunks: false,
        })
    }
}

impl Inner {
    /// What reading major positions `range` costs, in stored values (plus one per position).
    pub(super) fn cost(&self, range: Range<usize>) -> u64 {
        let n = range.len() as u64;
        match &self.datasets {
            Datasets::Dense { .. } => n * self.shape.1.max(1) as u64,
            Datasets::Sparse { indptr, .. } => indptr[range.end] - indptr[range.start] + n,
        }
    }

    /// The major ranges of a chunked iteration that can read each chunk as one piece whose
    /// buffers become the chunk (no copy): whole rows (CSR or dense) of consecutive rows, with
    /// chunks of at least [`WHOLE_CHUNK_MIN_BYTES`] on average. `None` when it cannot.
    pub(super) fn whole_ranges(
        &self,
        rows: &AxisIndex,
        cols: &AxisIndex,
        chunk_rows: usize,
    ) -> Option<Vec<Range<usize>>> {
        let by_rows = match &self.datasets {
            Datasets::Dense { .. } => true,
            Datasets::Sparse { format, .. } => *format == SparseFormat::Csr,
        };
        let rows = rows.as_range()?;
        if !by_rows || !cols.is_full() || rows.is_empty() || chunk_rows == 0 {
            return None;
        }
        let n = rows.len().div_ceil(chunk_rows);
        if self.range_bytes(rows.clone()) / n < WHOLE_CHUNK_MIN_BYTES {
            return None;
        }
        Some(
            (rows.start..rows.end)
                .step_by(chunk_rows)
                .map(|s| s..rows.end.min(s + chunk_rows))
                .collect(),
        )
    }

    /// The bytes of all blocks holding a position of `major`.
    pub(super) fn touched_bytes(&self, major: &AxisIndex) -> usize {
        let mut touched = vec![false; self.blocking.len()];
        if let Some(r) = major.as_range() {
            if !r.is_empty() {
                let (first, last) = (
                    self.blocking.block_of(r.start),
                    self.blocking.block_of(r.end - 1),
                );
                touched[first..=last].fill(true);
            }
        } else {
            for p in major {
                touched[self.blocking.block_of(p)] = true;
            }
        }
        touched
            .iter()
            .enumerate()
            .filter(|(_, &t)| t)
            .map(|(b, _)| self.block_bytes(b))
            .sum()
    }

    /// What to fetch for block `b` of a plan, whose pieces are `pieces` (sorted by source):
    /// the whole block (through the cache) unless it is not cached and the pieces hold less
    /// than a quarter of it, in which case only their runs (scattered rows: random access).
    pub(super) fn want(&self, b: usize, pieces: &[Piece]) -> Want {
        let whole = Want {
            block: b,
            span: None,
        };
        if pieces.is_empty() || self.cache.contains(BlockKey::new(self.id, b)) {
            return whole;
        }
        let mut runs: Vec<Range<usize>> = Vec::new();
        for p in pieces {
            let r = p.src..p.src + p.len;
            match runs.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => runs.push(r),
            }
        }
        let needed: u64 = runs.iter().map(|r| self.cost(r.clone())).sum();
        if needed.saturating_mul(RUNS_BELOW_SHARE) < self.cost(self.blocking.range(b))
            && !self.touches_most_chunks(b, &runs)
        {
            Want {
                block: b,
                span: Some(runs),
            }
        } else {
            whole
        }
    }

    /// Whether runs of block `b` touch at least half of the block's compressed storage chunks
    /// (of the values): reading them costs about as much decoding as the whole block, which is
    /// then read at once rather than chunk by chunk.
    pub(super) fn touches_most_chunks(&self, b: usize, runs: &[Range<usize>]) -> bool {
        let (values, entries): (&dyn RangeReader, Box<dyn Fn(usize) -> u64>) = match &self.datasets
        {
            Datasets::Dense { values } => (values.as_ref(), Box::new(|i| i as u64)),
            Datasets::Sparse { indptr, data, .. } => (data.as_ref(), Box::new(|i| indptr[i])),
        };
        let Some(per) = values.chunk_rows().filter(|&c| c > 0) else {
            return false;
        };
        if !values.decodes_whole_chunks() {
            return false;
        }
        let per = per as u64;
        let chunks = |r: &Range<usize>| {
            let (lo, hi) = (entries(r.start), entries(r.end));
            (hi > lo).then(|| lo / per..=(hi - 1) / per)
        };
        let Some(all) = chunks(&self.blocking.range(b)) else {
            return false;
        };
        let mut touched = 0u64;
        let mut last = None;
        for r in runs.iter().filter_map(chunks) {
            let (lo, hi) = (*r.start(), *r.end());
            let from = match last {
                Some(l) if l >= lo => l + 1,
                _ => lo,
            };
            if hi >= from {
                touched += hi - from + 1;
            }
            last = Some(last.map_or(hi, |l: u64| l.max(hi)));
        }
        touched.saturating_mul(2) > all.end() - all.start()
    }

    /// One want per block of `plan`, in the plan's order.
    pub(super) fn wants(&self, plan: &ReadPlan) -> Vec<Want> {
        plan.block_pieces()
            .map(|(b, pieces)| self.want(b, pieces))
            .collect()
    }

    /// How many wants may be loaded ahead of the reader: loaded blocks not yet used stay
    /// under a sixteenth of the cache's capacity (at least 2, at most 64).
    pub(super) fn window(&self, wants: &[Want]) -> usize {
        let largest = wants
            .iter()
            .map(|w| match &w.span {
                None => self.block_bytes(w.block),
                Some(runs) => {
                    let per = self.block_bytes(w.block) as u64;
                    let cost = self.cost(self.blocking.range(w.block)).max(1);
                    let needed: u64 = runs.iter().map(|r| self.cost(r.clone())).sum();
                    (per * needed / cost) as usize
                }
            })
            .max()
            .unwrap_or(1)
            .max(1);
        (MemoryPolicy::new(self.cache.capacity()).read_ahead_bytes() / largest).clamp(2, 64)
    }
}
