//! Aligning the other axis: pandas' index union and intersection, and the reindexers that map
//! each input's positions onto the result's.

use std::collections::{HashMap, HashSet};

use annpage_engine::{Error, Result};

use super::Join;

/// pandas' `Index.intersection(other)` (sort=False) of two indexes of unique strings: the names
/// of `a` that `b` has, in `a`'s order.
pub(super) fn intersection(a: &[String], b: &[String]) -> Vec<String> {
    if a == b {
        return a.to_vec();
    }
    let inb: HashSet<&str> = b.iter().map(String::as_str).collect();
    a.iter()
        .filter(|n| inb.contains(n.as_str()))
        .cloned()
        .collect()
}

/// The names of the other axis in the result: anndata's `merge_indices`, the union or the
/// intersection folded over the inputs in order.
///
/// Names on this axis must be unique in every input: pandas cannot align on duplicated labels
/// (anndata fails with `InvalidIndexError`), so neither does annpage.
pub(super) fn join_names(lists: &[&[String]], join: Join, axis: &str) -> Result<Vec<String>> {
    for (i, names) in lists.iter().enumerate() {
        let mut seen = HashSet::with_capacity(names.len());
        if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(Error::invalid(format!(
                "input {i} has the {axis} name '{dup}' twice: the {axis} names of every input \
                 must be unique to be aligned"
            )));
        }
    }
    let Some((first, rest)) = lists.split_first() else {
        return Ok(Vec::new());
    };
    Ok(match join {
        Join::Inner => rest
            .iter()
            .fold(first.to_vec(), |acc, names| intersection(&acc, names)),
        Join::Outer => union_all(lists),
    })
}

/// pandas' `Index.union(other)` (sort=None) folded over indexes of unique strings, in order:
/// each step gives its left side when the two are equal or the right one is empty, the right
/// side when the left one is empty, and otherwise the sorted union. So the fold is the first
/// non-empty list when every non-empty list equals it, and otherwise the sorted union of all
/// (once a step sorts, the later ones keep the result sorted).
fn union_all(lists: &[&[String]]) -> Vec<String> {
    let mut nonempty = lists.iter().filter(|l| !l.is_empty());
    let Some(first) = nonempty.next() else {
        return Vec::new();
    };
    if nonempty.all(|l| l == first) {
        return first.to_vec();
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut all: Vec<&str> = Vec::new();
    for name in lists.iter().flat_map(|l| l.iter()) {
        if seen.insert(name.as_str()) {
            all.push(name.as_str());
        }
    }
    all.sort_unstable();
    all.into_iter().map(str::to_owned).collect()
}

/// How one input's positions along an axis map onto the result's (anndata's `Reindexer`).
#[derive(Clone, Debug)]
pub(super) struct Reindexer {
    old_len: usize,
    /// For each result position, the input position it comes from (`None`: filled).
    new_to_old: Vec<Option<usize>>,
    /// For each input position, the result position it goes to (`None`: dropped).
    old_to_new: Vec<Option<usize>>,
    /// The input's names equal the result's, in the same order: elements are kept as they are.
    no_change: bool,
}

impl Reindexer {
    /// Aligns the names `old` (unique) onto `new` (unique).
    pub(super) fn names(old: &[String], new: &[String]) -> Self {
        let pos: HashMap<&str, usize> = old
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let new_to_old = new.iter().map(|n| pos.get(n.as_str()).copied()).collect();
        Reindexer::positions(old.len(), new_to_old)
    }

    /// Aligns positions `0..old_len` onto `0..new_len` (pandas `RangeIndex`es): the first
    /// columns are kept, the rest cut off or filled.
    pub(super) fn range(old_len: usize, new_len: usize) -> Self {
        Reindexer::positions(
            old_len,
            (0..new_len).map(|i| (i < old_len).then_some(i)).collect(),
        )
    }

    /// Maps positions `0..old_len` onto the result's: `new_to_old[k]` is the input position
    /// of result position `k` (`None`: filled).
    pub(super) fn positions(old_len: usize, new_to_old: Vec<Option<usize>>) -> Self {
        let no_change = new_to_old.len() == old_len
            && new_to_old.iter().enumerate().all(|(k, o)| *o == Some(k));
        let mut old_to_new = vec![None; old_len];
        for (new, old) in new_to_old.iter().enumerate() {
            if let Some(o) = old {
                old_to_new[*o] = Some(new);
            }
        }
        Reindexer {
            old_len,
            new_to_old,
            old_to_new,
            no_change,
        }
    }

    /// The result's length along the axis.
    pub(super) fn new_len(&self) -> usize {
        self.new_to_old.len()
    }

    /// Whether an element of `len` along the axis is kept as it is.
    pub(super) fn keeps(&self, len: usize) -> bool {
        self.no_change && len == self.old_len
    }

    /// For each result position, the input position it comes from.
    pub(super) fn new_to_old(&self) -> &[Option<usize>] {
        &self.new_to_old
    }

    /// For each input position, the result position it goes to (`None`: dropped).
    pub(super) fn old_to_new(&self) -> &[Option<usize>] {
        &self.old_to_new
    }

    /// Whether some result positions have no input position (they are filled).
    pub(super) fn fills(&self) -> bool {
        self.new_to_old.iter().any(Option::is_none)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// pandas: `pd.Index(['b', 'a']).union(pd.Index(['c', 'a']))` is `['a', 'b', 'c']`, an
    /// equal index keeps its order, and intersection keeps the left order.
    #[test]
    fn set_operations_follow_pandas() {
        let union = |lists: &[&[&str]]| {
            let owned: Vec<Vec<String>> = lists.iter().map(|l| s(l)).collect();
            union_all(&owned.iter().map(Vec::as_slice).collect::<Vec<_>>())
        };
        assert_eq!(union(&[&["b", "a"], &["c", "a"]]), s(&["a", "b", "c"]));
        assert_eq!(union(&[&["b", "a"], &["b", "a"]]), s(&["b", "a"]));
        assert_eq!(union(&[&[], &["z", "a"]]), s(&["z", "a"]));
        assert_eq!(union(&[&["z", "a"], &[], &["z", "a"]]), s(&["z", "a"]));
        // A later list equal to the first does not undo a sort.
        assert_eq!(
            union(&[&["b", "a"], &["c"], &["b", "a"]]),
            s(&["a", "b", "c"])
        );
        assert_eq!(union(&[&[], &[]]), s(&[]));
        assert_eq!(
            intersection(&s(&["c", "b", "a"]), &s(&["a", "c"])),
            s(&["c", "a"])
        );
        let lists = [&s(&["b", "a"])[..], &s(&["a", "b"])[..]];
        assert_eq!(
            join_names(&lists, Join::Outer, "var").unwrap(),
            s(&["a", "b"])
        );
        let dup = [&s(&["a", "a"])[..]];
        assert!(join_names(&dup, Join::Inner, "var").is_err());
    }

    #[test]
    fn reindexers_map_both_ways() {
        let r = Reindexer::names(&s(&["x", "y", "z"]), &s(&["z", "w", "x"]));
        assert_eq!(r.new_to_old(), [Some(2), None, Some(0)]);
        assert_eq!(r.old_to_new(), [Some(2), None, Some(0)]);
        assert!(r.fills() && !r.keeps(3));
        let same = Reindexer::names(&s(&["x"]), &s(&["x"]));
        assert!(same.keeps(1) && !same.keeps(0));
        let cut = Reindexer::range(3, 2);
        assert_eq!(cut.new_to_old(), [Some(0), Some(1)]);
        assert!(!cut.fills());
    }
}
