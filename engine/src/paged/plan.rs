//! Read plans: which blocks a selection of major positions needs, and where each piece of each
//! block goes in the result.
//!
//! A selection may be in any order and repeat positions. Planning turns it into *pieces*: runs
//! of consecutive source positions that land on consecutive result positions (a range selection
//! is one run, split where blocks end), grouped by block in increasing block order. Executing a
//! plan ([`super::gather`]) fetches each block once and copies its pieces to their places, so a
//! request reads every block it needs exactly once whatever the order asked for.

use std::ops::Range;

use super::block::Blocking;
use crate::select::{AxisIndex, IndexKind};

/// Consecutive source positions `src..src + len` that go to result positions
/// `dst..dst + len`, all within one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) src: usize,
    pub(crate) dst: usize,
    pub(crate) len: usize,
}

/// How a selection of major positions (rows of a CSR or dense matrix, columns of a CSC one) is
/// read: the blocks it needs, each once, and the pieces copied out of them.
///
/// Obtained from [`super::BackedMatrix::plan`]; useful to see what a request will cost before
/// making it.
///
/// ```
/// use std::sync::Arc;
/// use annpage_engine::paged::{BackedMatrix, BlockCache, InMemoryReader, MatrixSource};
/// use annpage_engine::data::ArrayData;
/// use annpage_engine::select::{AxisIndex, Selection};
/// // 100 rows of 10 bytes, in blocks of 10 rows.
/// let values = ArrayData::from(ndarray::Array2::<u8>::zeros((100, 10)));
/// let source = MatrixSource::dense("/X", Box::new(InMemoryReader::new("/X", values).unwrap()));
/// let cache = Arc::new(BlockCache::new(1 << 20));
/// let m = BackedMatrix::with_block_bytes(source, cache, 100).unwrap();
/// let rows = Selection::positions([95, 3, 4, 5, 2, 96]).resolve(100, None).unwrap();
/// let plan = m.plan(&rows, &AxisIndex::full(10)).unwrap();
/// assert_eq!(plan.blocks().collect::<Vec<_>>(), [0, 9]);
/// // 3, 4, 5 is one copy; 95 and 96 are not consecutive in the result.
/// assert_eq!(plan.pieces(), 4);
/// assert!(!plan.is_in_order());
/// assert_eq!(plan.estimated_bytes(), 2 * m.block_bytes(0));
/// ```
#[derive(Clone, Debug)]
pub struct ReadPlan {
    len: usize,
    /// Sorted by source position, so grouped by block.
    pieces: Vec<Piece>,
    /// Each needed block, increasing, with the range of its pieces in `pieces`.
    blocks: Vec<(usize, Range<usize>)>,
    in_order: bool,
    estimated_bytes: usize,
}

impl ReadPlan {
    /// Plans reading `index` from an axis cut into `blocking`, whose block `b` is estimated
    /// to take `block_bytes(b)` bytes.
    ///
    /// `index` must select from an axis of `blocking.axis_len()` positions.
    pub(crate) fn new(
        index: &AxisIndex,
        blocking: &Blocking,
        block_bytes: impl Fn(usize) -> usize,
    ) -> Self {
        let mut pieces = Vec::new();
        let mut in_order = true;
        let mut previous_end = 0;
        for_each_run(index, |src, dst, len| {
            in_order &= src >= previous_end;
            previous_end = src + len;
            split_at_blocks(blocking, src, dst, len, &mut pieces);
        });
        if !in_order {
            // (src, dst) pairs are distinct: every result position is in one piece.
            pieces.sort_unstable_by_key(|p| (p.src, p.dst));
        }
        let mut blocks: Vec<(usize, Range<usize>)> = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            let b = blocking.block_of(p.src);
            match blocks.last_mut() {
                Some((last, range)) if *last == b => range.end = i + 1,
                _ => blocks.push((b, i..i + 1)),
            }
        }
        let estimated_bytes = blocks.iter().map(|(b, _)| block_bytes(*b)).sum();
        ReadPlan {
            len: index.len(),
            pieces,
            blocks,
            in_order,
            estimated_bytes,
        }
    }

    /// Number of positions in the result.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the result is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The blocks read, in increasing order, each once.
    pub fn blocks(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.blocks.iter().map(|(b, _)| *b)
    }

    /// Number of contiguous copies out of the blocks: runs of consecutive positions selected
    /// in a row count once.
    pub fn pieces(&self) -> usize {
        self.pieces.len()
    }

    /// Whether the selected positions strictly increase, so that the result is produced in the
    /// order blocks are read.
    pub fn is_in_order(&self) -> bool {
        self.in_order
    }

    /// The estimated bytes of the blocks read.
    pub fn estimated_bytes(&self) -> usize {
        self.estimated_bytes
    }

    /// Each block with its pieces, in increasing block order.
    pub(crate) fn block_pieces(&self) -> impl Iterator<Item = (usize, &[Piece])> + '_ {
        self.blocks
            .iter()
            .map(|(b, range)| (*b, &self.pieces[range.clone()]))
    }
}

/// Calls `f(src, dst, len)` for each maximal run of consecutive source positions selected at
/// consecutive result positions, in result order.
fn for_each_run(index: &AxisIndex, mut f: impl FnMut(usize, usize, usize)) {
    if let IndexKind::Range(r) = index.kind() {
        if !r.is_empty() {
            f(r.start, 0, r.len());
        }
        return;
    }
    let mut run: Option<(usize, usize, usize)> = None;
    for (dst, src) in index.iter().enumerate() {
        run = match run {
            Some((s, d, len)) if src == s + len => Some((s, d, len + 1)),
            Some((s, d, len)) => {
                f(s, d, len);
                Some((src, dst, 1))
            }
            None => Some((src, dst, 1)),
        };
    }
    if let Some((s, d, len)) = run {
        f(s, d, len);
    }
}

/// Splits a run where blocks end and appends the pieces.
fn split_at_blocks(
    blocking: &Blocking,
    mut src: usize,
    mut dst: usize,
    mut len: usize,
    pieces: &mut Vec<Piece>,
) {
    while len > 0 {
        let block_end = blocking.range(blocking.block_of(src)).end;
        let n = len.min(block_end - src);
        pieces.push(Piece { src, dst, len: n });
        src += n;
        dst += n;
        len -= n;
    }
}

/// Whether `index` selects strictly increasing positions.
pub(crate) fn is_increasing(index: &AxisIndex) -> bool {
    match index.kind() {
        IndexKind::Range(_) => true,
        IndexKind::Strided { step, .. } => step > 0,
        IndexKind::Positions(ps) => ps.windows(2).all(|w| w[0] < w[1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::Selection;

    fn plan(s: Selection, blocking: &Blocking) -> ReadPlan {
        let index = s.resolve(blocking.axis_len(), None).unwrap();
        ReadPlan::new(&index, blocking, |b| 100 + b)
    }

    fn piece(src: usize, dst: usize, len: usize) -> Piece {
        Piece { src, dst, len }
    }

    /// 20 positions in blocks of 5.
    fn blocks() -> Blocking {
        Blocking::Uniform {
            len: 20,
            per_block: 5,
        }
    }

    #[test]
    fn ranges_split_at_block_boundaries() {
        let p = plan(Selection::from(3..12), &blocks());
        assert_eq!(p.pieces, [piece(3, 0, 2), piece(5, 2, 5), piece(10, 7, 2)]);
        assert_eq!(p.blocks().collect::<Vec<_>>(), [0, 1, 2]);
        assert!(p.is_in_order());
        assert_eq!((p.len(), p.estimated_bytes()), (9, 303));
    }

    #[test]
    fn unsorted_repeated_positions_read_each_block_once() {
        let p = plan(Selection::positions([12, 13, 1, 12, 2, 3, 19]), &blocks());
        assert!(!p.is_in_order());
        assert_eq!(p.blocks().collect::<Vec<_>>(), [0, 2, 3]);
        assert_eq!(
            p.pieces,
            [
                piece(1, 2, 1),
                piece(2, 4, 2),
                piece(12, 0, 2),
                piece(12, 3, 1),
                piece(19, 6, 1)
            ]
        );
        let grouped: Vec<_> = p.block_pieces().map(|(b, ps)| (b, ps.len())).collect();
        assert_eq!(grouped, [(0, 2), (2, 2), (3, 1)]);
    }

    #[test]
    fn strided_and_reversed_selections() {
        let p = plan(Selection::slice(None, None, -7), &blocks());
        // 19, 12, 5
        assert_eq!(p.pieces, [piece(5, 2, 1), piece(12, 1, 1), piece(19, 0, 1)]);
        assert!(!p.is_in_order());
        let p = plan(Selection::slice(Some(2), None, 6), &blocks());
        // 2, 8, 14
        assert!(p.is_in_order());
        assert_eq!(p.blocks().collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn empty_selections_need_nothing() {
        let p = plan(Selection::positions([]), &blocks());
        assert!(p.is_empty() && p.is_in_order());
        assert_eq!(
            (p.blocks().len(), p.pieces(), p.estimated_bytes()),
            (0, 0, 0)
        );
    }

    #[test]
    fn uneven_blocks() {
        let b = Blocking::Bounds(vec![0, 1, 7, 8, 20]);
        let p = plan(Selection::from(0..20), &b);
        assert_eq!(p.pieces(), 4);
        let p = plan(Selection::positions([7, 6, 5]), &b);
        assert_eq!(p.pieces, [piece(5, 2, 1), piece(6, 1, 1), piece(7, 0, 1)]);
        assert_eq!(p.blocks().collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn increasing_selections_are_recognised() {
        let check = |s: Selection| is_increasing(&s.resolve(20, None).unwrap());
        assert!(check(Selection::All));
        assert!(check(Selection::positions([1, 5, 6])));
        assert!(!check(Selection::positions([1, 1, 6])));
        assert!(!check(Selection::slice(None, None, -1)));
        assert!(check(Selection::slice(None, None, 3)));
    }
}
