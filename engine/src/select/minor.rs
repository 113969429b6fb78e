//! The minor-axis map: for each stored minor index (a column of a CSR matrix, a row of a CSC
//! one), the result positions it is selected at.
//!
//! Selections may be unsorted and repeat positions. Each stored value is emitted once per
//! result position it is selected at, in increasing result position, and values keep their
//! stored order: the order scipy's fancy indexing produces and
//! [`crate::data::SparseMatrix::subset`] follows.

use super::{AxisIndex, IndexKind};

/// Above this many entries per selected position, a dense lookup table over the whole minor
/// axis is replaced by a binary search over the selected positions.
const DENSE_TABLE_RATIO: usize = 8;
/// Minor axes up to this length always get a dense table.
const DENSE_TABLE_MIN: usize = 4096;

/// For each old minor position, the new positions selecting it.
#[derive(Clone, Debug)]
pub(crate) enum MinorMap {
    /// A (strided) range: each old position is selected at most once, found by arithmetic.
    Strided {
        start: usize,
        step: isize,
        len: usize,
    },
    /// The new positions of old position `j` are `targets[offsets[j]..offsets[j + 1]]`,
    /// increasing. `offsets` covers the whole minor axis.
    Table {
        offsets: Vec<usize>,
        targets: Vec<usize>,
    },
    /// Like `Table` but only for the selected old positions `keys` (sorted, distinct): the new
    /// positions of `keys[i]` are `targets[offsets[i]..offsets[i + 1]]`. For a few positions of
    /// a long axis; `selected` (one bit per old position) rejects the others without a search.
    Sorted {
        keys: Vec<usize>,
        offsets: Vec<usize>,
        targets: Vec<usize>,
        selected: Vec<u64>,
    },
}

impl MinorMap {
    /// The map of a selection.
    pub(crate) fn new(index: &AxisIndex) -> Self {
        match index.kind() {
            IndexKind::Range(r) => MinorMap::Strided {
                start: r.start,
                step: 1,
                len: r.len(),
            },
            IndexKind::Strided { start, step, len } => MinorMap::Strided { start, step, len },
            IndexKind::Positions(ps) => {
                let n = index.axis_len();
                if n <= DENSE_TABLE_MIN || n / DENSE_TABLE_RATIO <= ps.len() {
                    dense_table(ps, n)
                } else {
                    sorted_table(ps, n)
                }
            }
        }
    }

    /// Calls `f(k, t)` for each stored minor index `stored[k]` and each new position `t` it
    /// is selected at, by increasing `k`, then `t` (the kind of map is decided once per slice,
    /// not per index).
    #[inline]
    pub(crate) fn for_each_hit(&self, stored: &[u32], mut f: impl FnMut(usize, usize)) {
        let indices = stored.iter().map(|&j| j as usize).enumerate();
        match self {
            &MinorMap::Strided { start, step, len } => {
                for (k, j) in indices {
                    if let Some(t) = strided_target(start, step, len, j) {
                        f(k, t);
                    }
                }
            }
            MinorMap::Table { offsets, targets } => {
                for (k, j) in indices {
                    table_targets(offsets, targets, j)
                        .iter()
                        .for_each(|&t| f(k, t));
                }
            }
            MinorMap::Sorted {
                keys,
                offsets,
                targets,
                selected,
            } => {
                for (k, j) in indices {
                    sorted_targets(keys, offsets, targets, selected, j)
                        .iter()
                        .for_each(|&t| f(k, t));
                }
            }
        }
    }
}

/// The new position of old position `j` in a strided range, if it is selected.
#[inline]
fn strided_target(start: usize, step: isize, len: usize, j: usize) -> Option<usize> {
    let distance = if step > 0 {
        j.checked_sub(start)
    } else {
        start.checked_sub(j)
    }?;
    let stride = step.unsigned_abs();
    (distance % stride == 0 && distance / stride < len).then_some(distance / stride)
}

/// The new positions of old position `j` in a [`MinorMap::Table`].
#[inline]
fn table_targets<'a>(offsets: &[usize], targets: &'a [usize], j: usize) -> &'a [usize] {
    match (offsets.get(j), offsets.get(j + 1)) {
        (Some(&lo), Some(&hi)) => &targets[lo..hi],
        _ => &[],
    }
}

/// The new positions of old position `j` in a [`MinorMap::Sorted`]: most positions are not
/// selected, and one bit test rejects them before any search.
#[inline]
fn sorted_targets<'a>(
    keys: &[usize],
    offsets: &[usize],
    targets: &'a [usize],
    selected: &[u64],
    j: usize,
) -> &'a [usize] {
    if selected
        .get(j / 64)
        .is_none_or(|w| (w >> (j % 64)) & 1 == 0)
    {
        return &[];
    }
    match keys.binary_search(&j) {
        Ok(i) => &targets[offsets[i]..offsets[i + 1]],
        Err(_) => &[],
    }
}

/// A counting sort of the new positions by old position over the whole axis.
fn dense_table(ps: &[usize], axis_len: usize) -> MinorMap {
    let mut offsets = vec![0usize; axis_len + 1];
    for &p in ps {
        offsets[p + 1] += 1;
    }
    for i in 1..offsets.len() {
        offsets[i] += offsets[i - 1];
    }
    let mut fill = offsets.clone();
    let mut targets = vec![0usize; ps.len()];
    for (new, &old) in ps.iter().enumerate() {
        targets[fill[old]] = new;
        fill[old] += 1;
    }
    MinorMap::Table { offsets, targets }
}

/// The new positions sorted by (old, new) position, with the distinct old positions as keys.
fn sorted_table(ps: &[usize], axis_len: usize) -> MinorMap {
    let mut targets: Vec<usize> = (0..ps.len()).collect();
    targets.sort_unstable_by_key(|&new| (ps[new], new));
    let mut keys = Vec::new();
    let mut offsets = Vec::new();
    for (i, &new) in targets.iter().enumerate() {
        if keys.last() != Some(&ps[new]) {
            keys.push(ps[new]);
            offsets.push(i);
        }
    }
    offsets.push(targets.len());
    let mut selected = vec![0u64; axis_len.div_ceil(64)];
    for &k in &keys {
        selected[k / 64] |= 1 << (k % 64);
    }
    MinorMap::Sorted {
        keys,
        offsets,
        targets,
        selected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::Selection;

    fn targets(map: &MinorMap, axis_len: usize) -> Vec<Vec<usize>> {
        (0..axis_len)
            .map(|j| {
                let mut out = Vec::new();
                map.for_each_hit(&[j as u32], |_, t| out.push(t));
                out
            })
            .collect()
    }

    #[test]
    fn ranges_and_strides_map_by_arithmetic() {
        let idx = Selection::slice(Some(5), Some(0), -2)
            .resolve(7, None)
            .unwrap(); // 5, 3, 1
        let map = MinorMap::new(&idx);
        assert!(matches!(map, MinorMap::Strided { .. }));
        assert_eq!(
            targets(&map, 7),
            [vec![], vec![2], vec![], vec![1], vec![], vec![0], vec![]]
        );
        let idx = Selection::from(2..4).resolve(7, None).unwrap();
        assert_eq!(targets(&MinorMap::new(&idx), 5)[2..4], [vec![0], vec![1]]);
    }

    #[test]
    fn repeated_positions_map_to_every_target_in_order() {
        let idx = Selection::positions([3, 0, 3, 3, 1])
            .resolve(4, None)
            .unwrap();
        let expected = [vec![1], vec![4], vec![], vec![0, 2, 3]];
        let map = MinorMap::new(&idx);
        assert!(matches!(map, MinorMap::Table { .. }));
        assert_eq!(targets(&map, 4), expected);
        let IndexKind::Positions(ps) = idx.kind() else {
            panic!("positions expected")
        };
        let sorted = sorted_table(ps, 4);
        assert_eq!(targets(&sorted, 4), expected);
    }

    #[test]
    fn few_positions_of_a_long_axis_use_a_sorted_table() {
        let n = 1_000_000;
        let idx = Selection::positions([999_999, 7, 7, 500])
            .resolve(n, None)
            .unwrap();
        let map = MinorMap::new(&idx);
        let MinorMap::Sorted { keys, .. } = &map else {
            panic!("sorted table expected")
        };
        assert_eq!(keys, &[7, 500, 999_999]);
        let mut hits = Vec::new();
        for j in [0, 7, 500, 501, 999_999] {
            map.for_each_hit(&[j as u32], |_, t| hits.push((j, t)));
        }
        assert_eq!(hits, [(7, 1), (7, 2), (500, 3), (999_999, 0)]);
    }

    #[test]
    fn hits_over_a_slice_are_every_selection_of_each_index() {
        let stored = [3u32, 0, 7, 3, 9, 1, 8];
        let selections = [
            Selection::positions([3, 0, 3, 9]),
            Selection::slice(Some(8), None, -3),
            Selection::from(1..4),
        ];
        for sel in selections {
            let idx = sel.resolve(10, None).unwrap();
            let picked = idx.to_vec();
            // Stored index j at k hits every new position t with picked[t] == j, t increasing.
            let mut expected = Vec::new();
            for (k, &j) in stored.iter().enumerate() {
                for (t, &p) in picked.iter().enumerate() {
                    if p == j as usize {
                        expected.push((k, t));
                    }
                }
            }
            assert!(!expected.is_empty());
            let mut maps = vec![MinorMap::new(&idx)];
            if let IndexKind::Positions(ps) = idx.kind() {
                maps.push(sorted_table(ps, 10));
            }
            for map in maps {
                let mut got = Vec::new();
                map.for_each_hit(&stored, |k, t| got.push((k, t)));
                assert_eq!(got, expected, "{map:?}");
            }
        }
    }
}
