//! Selections along one axis of an AnnData object, and their normalised form.
//!
//! A [`Selection`] is what a user asks for: everything, a Python-style slice, positions, a
//! boolean mask or names. [`Selection::resolve`] checks it against the axis and turns it into an
//! [`AxisIndex`]: the list of selected positions in a normal form that keeps ranges as ranges
//! (no allocation for slices, whatever their length) and lets a subset of a subset be expressed
//! as a single index ([`AxisIndex::compose`]).
//!
//! ```
//! use annpage_engine::select::{IndexKind, Selection};
//! let every_other_backwards = Selection::slice(None, None, -2);
//! let idx = every_other_backwards.resolve(7, None).unwrap();
//! assert_eq!(idx.to_vec(), [6, 4, 2, 0]);
//! // The 2nd and 3rd of those, still a strided range.
//! let inner = Selection::from(1..3).resolve(idx.len(), None).unwrap();
//! let both = idx.compose(&inner).unwrap();
//! assert_eq!(both.to_vec(), [4, 2]);
//! assert!(matches!(both.kind(), IndexKind::Strided { start: 4, step: -2, len: 2 }));
//! ```

use std::fmt;
use std::ops::{Range, RangeFrom, RangeFull, RangeTo};
use std::sync::Arc;

use crate::data::CompactString;
use crate::{Error, Result};

mod minor;
mod names;
pub(crate) use minor::MinorMap;
pub use names::NameIndex;

/// How many items of a long list `Display` and error messages show.
const SHOWN: usize = 8;

/// What to select along one axis, as a user writes it.
///
/// The forms follow numpy and anndata indexing: negative slice bounds and positions count from
/// the end, slices clip to the axis, positions may repeat and come in any order.
///
/// ```
/// use annpage_engine::select::Selection;
/// use annpage_engine::data::CompactString;
/// let names: Vec<CompactString> = ["a", "b", "c", "d"].map(Into::into).to_vec();
/// let resolve = |s: Selection| s.resolve(4, Some(&names)).unwrap().to_vec();
/// assert_eq!(resolve(Selection::All), [0, 1, 2, 3]);
/// assert_eq!(resolve(Selection::slice(Some(-3), None, 1)), [1, 2, 3]);
/// assert_eq!(resolve(Selection::positions([3, 0, 0])), [3, 0, 0]);
/// assert_eq!(resolve(Selection::Positions(vec![-1, 0])), [3, 0]);
/// assert_eq!(resolve(Selection::Mask(vec![true, false, false, true])), [0, 3]);
/// assert_eq!(resolve(Selection::names(["d", "b"])), [3, 1]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Selection {
    /// The whole axis, in order (`:` in Python).
    All,
    /// A Python slice `start:stop:step`, clipped to the axis as Python clips it.
    ///
    /// Missing bounds default to the ends the step runs from and to; a step of 0 is rejected by
    /// [`Selection::resolve`], as Python rejects it.
    Slice {
        /// First position (inclusive); negative counts from the end.
        start: Option<isize>,
        /// Last position (exclusive); negative counts from the end.
        stop: Option<isize>,
        /// Distance between positions; negative runs backwards. Must not be 0.
        step: isize,
    },
    /// Positions in any order, repeats allowed; negative positions count from the end.
    Positions(Vec<isize>),
    /// A boolean mask as long as the axis; `true` selects.
    Mask(Vec<bool>),
    /// Names looked up in the axis's names (`obs_names` or `var_names`).
    Names(Vec<String>),
}

impl Selection {
    /// A Python slice `start:stop:step` (see [`Selection::Slice`]).
    pub fn slice(start: Option<isize>, stop: Option<isize>, step: isize) -> Self {
        Selection::Slice { start, stop, step }
    }

    /// Positions counted from the start (see [`Selection::Positions`] for negative ones).
    ///
    /// A position beyond `isize::MAX` cannot be on any axis; it becomes `isize::MAX`, which
    /// [`Selection::resolve`] reports as out of range.
    pub fn positions(positions: impl IntoIterator<Item = usize>) -> Self {
        Selection::Positions(
            positions
                .into_iter()
                .map(|p| isize::try_from(p).unwrap_or(isize::MAX))
                .collect(),
        )
    }

    /// Names looked up in the axis's names.
    pub fn names<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Selection::Names(names.into_iter().map(Into::into).collect())
    }

    /// Checks the selection against an axis of `len` positions (whose names are `names`, when
    /// it has them) and returns the positions it selects.
    ///
    /// Fails with [`Error::InvalidArgument`] for a zero slice step, a position out of range, a
    /// mask whose length is not `len`, names found more than once and names asked of an axis
    /// without names, and with [`Error::NotFound`] for names not found (all of them listed).
    pub fn resolve(&self, len: usize, names: Option<&[CompactString]>) -> Result<AxisIndex> {
        match self {
            Selection::All => Ok(AxisIndex::full(len)),
            Selection::Slice { start, stop, step } => resolve_slice(*start, *stop, *step, len),
            Selection::Positions(ps) => {
                let positions = ps
                    .iter()
                    .map(|&p| wrap_position(p, len))
                    .collect::<Result<Vec<_>>>()?;
                Ok(AxisIndex::from_valid_positions(positions, len))
            }
            Selection::Mask(mask) => {
                if mask.len() != len {
                    return Err(Error::invalid(format!(
                        "boolean mask has {} entries, the axis has {len}",
                        mask.len()
                    )));
                }
                let positions = mask
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &keep)| keep.then_some(i))
                    .collect();
                Ok(AxisIndex::from_valid_positions(positions, len))
            }
            Selection::Names(wanted) => {
                let names = names.ok_or_else(|| {
                    Error::invalid("cannot select by name: this axis has no names")
                })?;
                if names.len() != len {
                    return Err(Error::invalid(format!(
                        "the axis has {len} positions but {} names",
                        names.len()
                    )));
                }
                let positions = NameIndex::new(names).find(names, wanted)?;
                Ok(AxisIndex::from_valid_positions(positions, len))
            }
        }
    }
}

/// A position counted from the end when negative, checked against the axis.
fn wrap_position(p: isize, len: usize) -> Result<usize> {
    let wrapped = if p < 0 {
        len.checked_sub(p.unsigned_abs())
    } else {
        Some(p.unsigned_abs()).filter(|&q| q < len)
    };
    wrapped.ok_or_else(|| {
        Error::invalid(format!(
            "position {p} is out of range for an axis of length {len}"
        ))
    })
}

/// Python's `slice.indices(len)` followed by `range(...)`.
fn resolve_slice(
    start: Option<isize>,
    stop: Option<isize>,
    step: isize,
    len: usize,
) -> Result<AxisIndex> {
    if step == 0 {
        return Err(Error::invalid("slice step cannot be zero"));
    }
    // Axis lengths fit in isize (they are lengths of allocations), so this is exact.
    let n = isize::try_from(len).unwrap_or(isize::MAX);
    // Clamp a bound into [lo, hi] after counting negatives from the end.
    let clamp = |b: isize, lo: isize, hi: isize| {
        let b = if b < 0 { b.saturating_add(n) } else { b };
        b.clamp(lo, hi)
    };
    let (first, end) = if step > 0 {
        (
            start.map_or(0, |b| clamp(b, 0, n)),
            stop.map_or(n, |b| clamp(b, 0, n)),
        )
    } else {
        (
            start.map_or(n - 1, |b| clamp(b, -1, n - 1)),
            stop.map_or(-1, |b| clamp(b, -1, n - 1)),
        )
    };
    let span = if step > 0 { end - first } else { first - end };
    let count = if span <= 0 {
        0
    } else {
        span.unsigned_abs().div_ceil(step.unsigned_abs())
    };
    if count == 0 {
        return Ok(AxisIndex::strided(0, 1, 0, len));
    }
    // `first` is a valid position when at least one position is selected.
    Ok(AxisIndex::strided(first.unsigned_abs(), step, count, len))
}

impl From<RangeFull> for Selection {
    fn from(_: RangeFull) -> Self {
        Selection::All
    }
}

impl From<Range<usize>> for Selection {
    fn from(r: Range<usize>) -> Self {
        Selection::slice(Some(to_isize(r.start)), Some(to_isize(r.end)), 1)
    }
}

impl From<RangeFrom<usize>> for Selection {
    fn from(r: RangeFrom<usize>) -> Self {
        Selection::slice(Some(to_isize(r.start)), None, 1)
    }
}

impl From<RangeTo<usize>> for Selection {
    fn from(r: RangeTo<usize>) -> Self {
        Selection::slice(None, Some(to_isize(r.end)), 1)
    }
}

impl From<Vec<usize>> for Selection {
    fn from(v: Vec<usize>) -> Self {
        Selection::positions(v)
    }
}

impl From<Vec<bool>> for Selection {
    fn from(v: Vec<bool>) -> Self {
        Selection::Mask(v)
    }
}

impl From<Vec<String>> for Selection {
    fn from(v: Vec<String>) -> Self {
        Selection::Names(v)
    }
}

impl From<&[&str]> for Selection {
    fn from(v: &[&str]) -> Self {
        Selection::names(v.iter().copied())
    }
}

/// A slice bound from a `usize` (bounds past `isize::MAX` clip like any bound past the end).
fn to_isize(v: usize) -> isize {
    isize::try_from(v).unwrap_or(isize::MAX)
}

impl fmt::Display for Selection {
    /// Python's notation: `:`, `1:-1:2`, `[3, 0, 0]`, `['a', 'b']`; masks as `mask(2 of 4)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selection::All => f.write_str(":"),
            Selection::Slice { start, stop, step } => {
                let bound = |b: &Option<isize>| b.map(|v| v.to_string()).unwrap_or_default();
                write!(f, "{}:{}", bound(start), bound(stop))?;
                if *step != 1 {
                    write!(f, ":{step}")?;
                }
                Ok(())
            }
            Selection::Positions(ps) => short_list(ps, |f, p| write!(f, "{p}")).fmt(f),
            Selection::Mask(m) => write!(
                f,
                "mask({} of {})",
                m.iter().filter(|&&b| b).count(),
                m.len()
            ),
            Selection::Names(ns) => short_list(ns, |f, s| write!(f, "{s:?}")).fmt(f),
        }
    }
}

/// A list written as `[a, b, c, … (+n more)]`, showing at most [`SHOWN`] items.
struct ShortList<'a, T, F>(&'a [T], F);

/// A [`ShortList`] writing each item with `item`.
fn short_list<T, F>(items: &[T], item: F) -> ShortList<'_, T, F>
where
    F: Fn(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
{
    ShortList(items, item)
}

impl<T, F> fmt::Display for ShortList<'_, T, F>
where
    F: Fn(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, item) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            (self.1)(f, item)?;
        }
        if self.0.len() > SHOWN {
            write!(f, ", … (+{} more)", self.0.len() - SHOWN)?;
        }
        f.write_str("]")
    }
}

/// The positions selected along an axis, in normal form.
///
/// An index is one of: a contiguous range (the whole axis being a special case), a strided
/// range (any non-zero step, negative ones running backwards), or explicit positions (any order,
/// repeats allowed). Ranges hold three numbers whatever their length. Explicit positions that
/// form a range are stored as one, so equal selections compare equal and ranges are recognised
/// however they were written. Every position is known to be below [`AxisIndex::axis_len`].
///
/// Cloning is cheap: explicit positions are shared.
///
/// ```
/// use annpage_engine::select::{AxisIndex, Selection};
/// let idx = Selection::positions([2, 3, 4]).resolve(10, None).unwrap();
/// assert_eq!(idx.as_range(), Some(2..5));
/// assert_eq!(idx, AxisIndex::range(2..5, 10).unwrap());
/// assert!(!idx.is_full());
/// assert_eq!(idx.get(1), Some(3));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AxisIndex {
    axis_len: usize,
    repr: Repr,
}

/// The stored form; see [`AxisIndex`] for the normal-form rules.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Repr {
    /// `start, start + step, …` (`len` of them). Empty ranges are `0, 1, 0` and single
    /// positions have step 1.
    Strided {
        start: usize,
        step: isize,
        len: usize,
    },
    /// At least two positions that are not evenly spaced.
    Positions(Arc<[usize]>),
}

/// How an [`AxisIndex`] is stored, for code that plans reads around it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexKind<'a> {
    /// Consecutive increasing positions (possibly empty, possibly the whole axis).
    Range(Range<usize>),
    /// `start, start + step, …` with `step` neither 0 nor 1 and at least two positions.
    Strided {
        /// The first position.
        start: usize,
        /// The distance between positions; negative runs backwards.
        step: isize,
        /// How many positions.
        len: usize,
    },
    /// Explicit positions (at least two, not evenly spaced).
    Positions(&'a [usize]),
}

impl AxisIndex {
    /// Every position of an axis of length `len`, in order.
    pub fn full(len: usize) -> Self {
        AxisIndex::strided(0, 1, len, len)
    }

    /// The positions in `range`, which must lie within an axis of length `axis_len`.
    pub fn range(range: Range<usize>, axis_len: usize) -> Result<Self> {
        if range.start > range.end || range.end > axis_len {
            return Err(Error::invalid(format!(
                "range {range:?} does not lie within an axis of length {axis_len}"
            )));
        }
        Ok(AxisIndex::strided(
            range.start,
            1,
            range.end - range.start,
            axis_len,
        ))
    }

    /// Explicit positions (any order, repeats allowed), each below `axis_len`.
    pub fn from_positions(positions: Vec<usize>, axis_len: usize) -> Result<Self> {
        if let Some(bad) = positions.iter().find(|&&p| p >= axis_len) {
            return Err(Error::invalid(format!(
                "position {bad} is out of range for an axis of length {axis_len}"
            )));
        }
        Ok(AxisIndex::from_valid_positions(positions, axis_len))
    }

    /// A strided range known to be valid, in normal form.
    fn strided(start: usize, step: isize, len: usize, axis_len: usize) -> Self {
        let repr = match len {
            0 => Repr::Strided {
                start: 0,
                step: 1,
                len: 0,
            },
            1 => Repr::Strided {
                start,
                step: 1,
                len: 1,
            },
            _ => Repr::Strided { start, step, len },
        };
        AxisIndex { axis_len, repr }
    }

    /// Positions known to be in range, stored as a range when evenly spaced.
    fn from_valid_positions(positions: Vec<usize>, axis_len: usize) -> Self {
        match positions.as_slice() {
            [] => AxisIndex::strided(0, 1, 0, axis_len),
            [p] => AxisIndex::strided(*p, 1, 1, axis_len),
            [a, b, ..] => {
                // Positions are below axis_len, which fits in isize: the differences are exact.
                let step = (*b as isize).wrapping_sub(*a as isize);
                let even = step != 0
                    && positions
                        .windows(2)
                        .all(|w| (w[1] as isize).wrapping_sub(w[0] as isize) == step);
                if even {
                    AxisIndex::strided(*a, step, positions.len(), axis_len)
                } else {
                    AxisIndex {
                        axis_len,
                        repr: Repr::Positions(positions.into()),
                    }
                }
            }
        }
    }

    /// The length of the axis the positions are taken from.
    pub fn axis_len(&self) -> usize {
        self.axis_len
    }

    /// How many positions are selected.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Strided { len, .. } => *len,
            Repr::Positions(ps) => ps.len(),
        }
    }

    /// Whether nothing is selected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the index selects the whole axis, in order.
    pub fn is_full(&self) -> bool {
        self.as_range() == Some(0..self.axis_len)
    }

    /// The selected positions as `start..end` when they are consecutive and increasing
    /// (an empty index is `0..0`).
    pub fn as_range(&self) -> Option<Range<usize>> {
        match self.repr {
            Repr::Strided {
                start,
                step: 1,
                len,
            } => Some(start..start + len),
            _ => None,
        }
    }

    /// How the index is stored: a range, a strided range or explicit positions.
    pub fn kind(&self) -> IndexKind<'_> {
        match &self.repr {
            Repr::Strided {
                start,
                step: 1,
                len,
            } => IndexKind::Range(*start..*start + *len),
            &Repr::Strided { start, step, len } => IndexKind::Strided { start, step, len },
            Repr::Positions(ps) => IndexKind::Positions(ps),
        }
    }

    /// The `i`-th selected position.
    pub fn get(&self, i: usize) -> Option<usize> {
        match &self.repr {
            &Repr::Strided { start, step, len } => {
                (i < len).then(|| start.wrapping_add_signed(step.wrapping_mul(i as isize)))
            }
            Repr::Positions(ps) => ps.get(i).copied(),
        }
    }

    /// The selected positions in order.
    pub fn iter(&self) -> AxisIter<'_> {
        match &self.repr {
            &Repr::Strided { start, step, len } => AxisIter(IterRepr::Strided {
                next: start,
                step,
                remaining: len,
            }),
            Repr::Positions(ps) => AxisIter(IterRepr::Positions(ps.iter())),
        }
    }

    /// The selected positions, collected.
    pub fn to_vec(&self) -> Vec<usize> {
        self.iter().collect()
    }

    /// The index that selects `inner` out of the positions `self` selects: a subset of a
    /// subset as one index of the original axis.
    ///
    /// `inner` must index an axis of `self.len()` positions. A range of a range stays a range.
    ///
    /// ```
    /// use annpage_engine::select::{AxisIndex, Selection};
    /// let outer = Selection::positions([9, 2, 7, 4]).resolve(10, None).unwrap();
    /// let inner = Selection::positions([3, 3, 0]).resolve(outer.len(), None).unwrap();
    /// assert_eq!(outer.compose(&inner).unwrap().to_vec(), [4, 4, 9]);
    /// ```
    pub fn compose(&self, inner: &AxisIndex) -> Result<AxisIndex> {
        if inner.axis_len != self.len() {
            return Err(Error::shape(format!(
                "cannot compose indexes: the inner one selects from {} positions, the outer one \
                 selects {}",
                inner.axis_len,
                self.len()
            )));
        }
        Ok(match (&self.repr, &inner.repr) {
            (
                &Repr::Strided {
                    start: a, step: s, ..
                },
                &Repr::Strided {
                    start: b,
                    step: t,
                    len,
                },
            ) => {
                // In bounds: the result's positions are positions of `self`.
                let start = a.wrapping_add_signed(s.wrapping_mul(b as isize));
                AxisIndex::strided(start, s.wrapping_mul(t), len, self.axis_len)
            }
            _ => AxisIndex::from_valid_positions(
                inner.iter().filter_map(|i| self.get(i)).collect(),
                self.axis_len,
            ),
        })
    }
}

impl fmt::Display for AxisIndex {
    /// `all 10`, `2..5 of 10`, `9..=1 step -2 of 10` or `[4, 0, 0] of 10`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_full() {
            return write!(f, "all {}", self.axis_len);
        }
        match self.kind() {
            IndexKind::Range(r) => write!(f, "{}..{}", r.start, r.end)?,
            IndexKind::Strided { start, step, len } => {
                let last = self.get(len - 1).unwrap_or(start);
                write!(f, "{start}..={last} step {step}")?;
            }
            IndexKind::Positions(ps) => short_list(ps, |f, p| write!(f, "{p}")).fmt(f)?,
        }
        write!(f, " of {}", self.axis_len)
    }
}

impl<'a> IntoIterator for &'a AxisIndex {
    type Item = usize;
    type IntoIter = AxisIter<'a>;
    fn into_iter(self) -> AxisIter<'a> {
        self.iter()
    }
}

/// Iterator over the positions of an [`AxisIndex`] (see [`AxisIndex::iter`]).
#[derive(Clone, Debug)]
pub struct AxisIter<'a>(IterRepr<'a>);

#[derive(Clone, Debug)]
enum IterRepr<'a> {
    Strided {
        next: usize,
        step: isize,
        remaining: usize,
    },
    Positions(std::slice::Iter<'a, usize>),
}

impl Iterator for AxisIter<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match &mut self.0 {
            IterRepr::Strided {
                next,
                step,
                remaining,
            } => {
                if *remaining == 0 {
                    return None;
                }
                let current = *next;
                *remaining -= 1;
                // Past the last position this may leave the axis; it is never returned.
                *next = next.wrapping_add_signed(*step);
                Some(current)
            }
            IterRepr::Positions(it) => it.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.0 {
            IterRepr::Strided { remaining, .. } => *remaining,
            IterRepr::Positions(it) => it.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for AxisIter<'_> {}

// Selections and indices are shared with reader and worker threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Selection>();
    assert_send_sync::<AxisIndex>();
};

#[cfg(test)]
mod tests;
