//! How many values each row or column of a selection stores, and pieces cut from those
//! counts: what streamed writes and concatenations size their pieces by. An average slice
//! hides the skew of real data (a file's most expressed genes may hold half its values), so
//! a piece sized from it could hold many times the budget.

use std::ops::Range;

use annpage_engine::data::{Matrix, SparseFormat};
use annpage_engine::paged::{BackedMatrix, MatrixKind};
use annpage_engine::select::{AxisIndex, IndexKind};
use annpage_engine::{Error, Result};

/// Pieces of a selection, each with the range of major positions (rows, or columns) it holds.
pub(crate) type Pieces<'a> = Box<dyn Iterator<Item = Result<(Range<usize>, Matrix)>> + 'a>;

/// The stored values of each selected row (`by_rows`) or column of `rows` × `cols` of `m`.
/// Along its compressed axis they come from `indptr` (the slice's values, times the other
/// selection's most repeated position, at most the other selection's length: a bound when
/// that selection cuts the slice); across it, from a pass over the selection in pieces of
/// about `bytes`; a dense matrix stores every entry.
pub(crate) fn values_per(
    m: &BackedMatrix,
    (rows, cols): (&AxisIndex, &AxisIndex),
    by_rows: bool,
    bytes: u64,
) -> Result<Vec<u64>> {
    let (major, minor) = if by_rows { (rows, cols) } else { (cols, rows) };
    let format = match m.kind() {
        MatrixKind::Dense => return Ok(vec![minor.len() as u64; major.len()]),
        MatrixKind::Sparse(f) => f,
    };
    let indptr = m
        .indptr()
        .ok_or_else(|| Error::malformed("a sparse matrix without indptr"))?;
    let stored = |index: &AxisIndex, other: &AxisIndex| -> Vec<u64> {
        let (repeats, most) = (max_repeats(other), other.len() as u64);
        let of = |p: usize| ((indptr[p + 1] - indptr[p]) * repeats).min(most);
        index.iter().map(of).collect()
    };
    if by_rows == (format == SparseFormat::Csr) {
        return Ok(stored(major, minor));
    }
    // Across the compressed axis: count where the values of pieces along it land.
    let along = stored(minor, major);
    let per_value = m.dtype().size() as u64 + 4;
    let costs: Vec<u64> = along.iter().map(|n| n * per_value + 8).collect();
    let mut counts = vec![0u64; major.len()];
    for piece in pieces(m, (rows, cols), !by_rows, &costs, bytes, 1)? {
        let piece = piece?.1.into_sparse(format)?;
        for &i in piece.indices() {
            let slot = counts
                .get_mut(i as usize)
                .ok_or_else(|| Error::malformed("a stored index outside the matrix"))?;
            *slot += 1;
        }
    }
    Ok(counts)
}

/// The selection `rows` × `cols` of `m` in pieces of consecutive rows (`by_rows`) or columns,
/// each costing at most `target` by `costs` (one per selected row or column; a slice costing
/// more is a piece alone), in order. Rows of a matrix stored by rows are read by
/// [`BackedMatrix::scan`] in chunks of one size (blocks read once for consecutive chunks):
/// the most slices no chunk of which costs more than `target`. With `align` above 1, pieces
/// end at multiples of `align` slices (an output's chunk rows: it then stores each piece as it
/// comes), one of `align` at least, the last excepted.
pub(crate) fn pieces<'a>(
    m: &'a BackedMatrix,
    (rows, cols): (&'a AxisIndex, &'a AxisIndex),
    by_rows: bool,
    costs: &[u64],
    target: u64,
    align: usize,
) -> Result<Pieces<'a>> {
    let (major, n) = if by_rows {
        (rows, rows.len())
    } else {
        (cols, cols.len())
    };
    debug_assert_eq!(costs.len(), n);
    if n == 0 {
        return Ok(Box::new(std::iter::empty()));
    }
    let stored_by_rows = m.kind() != MatrixKind::Sparse(SparseFormat::Csc);
    let align = align.max(1);
    if by_rows && stored_by_rows {
        let k = uniform_chunk(costs, target);
        return Ok(Box::new(m.scan(rows, cols, (k / align).max(1) * align)?));
    }
    Ok(Box::new(
        aligned(groups(costs, target), align)
            .into_iter()
            .map(move |range| {
                let picked = major.compose(&AxisIndex::range(range.clone(), n)?)?;
                let piece = if by_rows {
                    read_once(m, &picked, cols)?
                } else {
                    read_once(m, rows, &picked)?
                };
                Ok((range, piece))
            }),
    ))
}

/// The selection `rows` × `cols` of `m` read as one chunk of a scan: the blocks it loads are
/// not kept in the cache (a piece of a pass is read once).
pub(crate) fn read_once(m: &BackedMatrix, rows: &AxisIndex, cols: &AxisIndex) -> Result<Matrix> {
    let mut chunks = m.scan(rows, cols, rows.len().max(1))?;
    let Some(chunk) = chunks.next() else {
        // No rows: what a read of none gives.
        return m.read(rows, cols);
    };
    Ok(chunk?.1)
}

/// Consecutive runs of slices costing at most `target` together (or one slice).
pub(crate) fn groups(costs: &[u64], target: u64) -> Vec<Range<usize>> {
    let mut out = vec![];
    let (mut start, mut held) = (0, 0u64);
    for (i, &c) in costs.iter().enumerate() {
        if i > start && held + c > target {
            out.push(start..i);
            (start, held) = (i, 0);
        }
        held += c;
    }
    if start < costs.len() {
        out.push(start..costs.len());
    }
    out
}

/// `ranges` (consecutive, from 0) with each end but the last moved down to a multiple of
/// `align`; ranges left empty are dropped.
fn aligned(ranges: Vec<Range<usize>>, align: usize) -> Vec<Range<usize>> {
    let Some(n) = ranges.last().map(|r| r.end) else {
        return ranges;
    };
    if align <= 1 {
        return ranges;
    }
    let mut out = Vec::with_capacity(ranges.len());
    let mut start = 0;
    for r in &ranges[..ranges.len() - 1] {
        let end = r.end / align * align;
        if end > start {
            out.push(start..end);
            start = end;
        }
    }
    out.push(start..n);
    out
}

/// The most slices a chunk may take so that no chunk of that many (chunks start at its
/// multiples) costs more than `target`; at least 1.
pub(crate) fn uniform_chunk(costs: &[u64], target: u64) -> usize {
    let n = costs.len();
    let total: u64 = costs.iter().sum();
    let mut k = (u128::from(target) * n as u128 / u128::from(total.max(1)))
        .clamp(1, n.max(1) as u128) as usize;
    loop {
        let worst = costs
            .chunks(k)
            .map(|c| c.iter().sum::<u64>())
            .max()
            .unwrap_or(0);
        if worst <= target || k == 1 {
            return k;
        }
        let scaled = u128::from(target) * k as u128 / u128::from(worst);
        k = (scaled as usize).clamp(1, k - 1);
    }
}

/// How many times the most repeated position of `index` is selected.
pub(crate) fn max_repeats(index: &AxisIndex) -> u64 {
    match index.kind() {
        IndexKind::Positions(ps) => {
            let mut sorted = ps.to_vec();
            sorted.sort_unstable();
            sorted
                .chunk_by(|a, b| a == b)
                .map(|run| run.len() as u64)
                .max()
                .unwrap_or(0)
        }
        _ => u64::from(!index.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::{aligned, groups, uniform_chunk};
    use std::ops::Range;

    #[test]
    fn slices_are_grouped_within_the_target_and_a_large_one_alone() {
        assert_eq!(groups(&[3, 3, 3, 9, 1, 1], 6), vec![0..2, 2..3, 3..4, 4..6]);
        assert_eq!(groups(&[], 6), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(groups(&[0, 0, 0], 1), vec![0..3]);
        // Ends moved down to multiples of 4; a range left empty dropped; the last kept.
        let ranges = vec![0..3, 3..9, 9..10, 10..13];
        assert_eq!(aligned(ranges.clone(), 4), vec![0..8, 8..13]);
        assert_eq!(aligned(ranges.clone(), 1), ranges);
        assert_eq!(aligned(vec![0..2, 2..3], 4), vec![0..3]);
        assert_eq!(aligned(vec![], 4), Vec::<Range<usize>>::new());
    }

    #[test]
    fn a_uniform_chunk_fits_the_costliest_run() {
        // The average (11 a slice) would take 9 slices a chunk: the first nine cost 90.
        let costs = [
            10, 10, 10, 10, 10, 10, 10, 10, 10, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        ];
        let k = uniform_chunk(&costs, 20);
        assert_eq!(k, 2);
        assert!(costs.chunks(k).all(|c| c.iter().sum::<u64>() <= 20));
        assert_eq!(uniform_chunk(&[5; 10], 1), 1);
        assert_eq!(uniform_chunk(&[1; 10], 100), 10);
        assert_eq!(uniform_chunk(&[], 100), 1);
    }
}
