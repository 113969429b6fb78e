//! Aligning the other axis: pandas' index union and intersection, and the reindexers that map
//! each input's positions onto the result's.

use std::sync::{Arc, OnceLock};

use annpage_engine::data::CompactString;
use annpage_engine::{Error, Result};

use super::Join;

/// The tables of this module are keyed by names: foldhash, not SipHash (a third of a
/// collection's opening was hashing its files' genes).
type HashMap<K, V> = foldhash::HashMap<K, V>;
type HashSet<T> = foldhash::HashSet<T>;

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

/// The names of the other axis in the result (anndata's `merge_indices`: the union or the
/// intersection folded over the inputs in order), and how each input's positions map onto
/// them. Each name is hashed once: the inputs are seen as lists of distinct-name ids.
///
/// pandas' `Index.union` (sort=None) folded over indexes of unique names gives the first
/// non-empty list when every non-empty list equals it, and otherwise the sorted union of all
/// (once a step sorts, the later ones keep the result sorted); the folded
/// `Index.intersection` (sort=False) gives the first list's names that every list has.
///
/// Names on this axis must be unique in every input: pandas cannot align on duplicated labels
/// (anndata fails with `InvalidIndexError`), so neither does annpage.
pub(super) fn align(
    lists: &[&[CompactString]],
    join: Join,
    axis: &str,
) -> Result<(Vec<CompactString>, Vec<Reindexer>)> {
    if let Some(same) = same_names(lists, axis)? {
        return Ok(same);
    }
    let longest = lists.iter().map(|l| l.len()).max().unwrap_or(0);
    let mut ids: HashMap<&str, usize> =
        HashMap::with_capacity_and_hasher(longest, Default::default());
    // Per distinct name: the name, the last input that had it, and how many inputs have it.
    let mut distinct: Vec<(&str, usize, usize)> = Vec::new();
    let mut as_ids: Vec<Vec<usize>> = Vec::with_capacity(lists.len());
    for (i, names) in lists.iter().enumerate() {
        let mut row = Vec::with_capacity(names.len());
        for name in names.iter() {
            let id = *ids.entry(name.as_str()).or_insert_with(|| {
                distinct.push((name.as_str(), usize::MAX, 0));
                distinct.len() - 1
            });
            let (_, last, count) = &mut distinct[id];
            if *last == i {
                return Err(Error::invalid(format!(
                    "input {i} has the {axis} name '{name}' twice: the {axis} names of every \
                     input must be unique to be aligned"
                )));
            }
            *last = i;
            *count += 1;
            row.push(id);
        }
        as_ids.push(row);
    }
    let result: Vec<usize> = match join {
        Join::Inner => as_ids.first().map_or_else(Vec::new, |first| {
            let every = lists.len();
            first
                .iter()
                .copied()
                .filter(|&id| distinct[id].2 == every)
                .collect()
        }),
        Join::Outer => {
            let mut nonempty = as_ids.iter().filter(|l| !l.is_empty());
            match nonempty.next() {
                None => Vec::new(),
                Some(first) if nonempty.all(|l| l == first) => first.clone(),
                Some(_) => {
                    let mut all: Vec<usize> = (0..distinct.len()).collect();
                    all.sort_unstable_by_key(|&id| distinct[id].0);
                    all
                }
            }
        }
    };
    let mut position = vec![None; distinct.len()];
    for (k, &id) in result.iter().enumerate() {
        position[id] = Some(k);
    }
    let reindexers = as_ids
        .iter()
        .map(|row| {
            let mut new_to_old = vec![None; result.len()];
            for (j, &id) in row.iter().enumerate() {
                if let Some(k) = position[id] {
                    new_to_old[k] = Some(j);
                }
            }
            Reindexer::positions(row.len(), new_to_old)
        })
        .collect();
    let names = result.iter().map(|&id| distinct[id].0.into()).collect();
    Ok((names, reindexers))
}

/// [`align`] of lists that are all the same (cells along var, genes along obs: the common
/// case), without a table of every name: the first list, and one identity map shared by every
/// input. `None` when the lists differ.
fn same_names(
    lists: &[&[CompactString]],
    axis: &str,
) -> Result<Option<(Vec<CompactString>, Vec<Reindexer>)>> {
    let Some((first, rest)) = lists.split_first() else {
        return Ok(None);
    };
    if rest.iter().any(|l| l != first) {
        return Ok(None);
    }
    if let Some(name) = first_repeat(first) {
        return Err(Error::invalid(format!(
            "input 0 has the {axis} name '{name}' twice: the {axis} names of every input must \
             be unique to be aligned"
        )));
    }
    let identity = Reindexer::identity(first.len());
    Ok(Some((first.to_vec(), vec![identity; lists.len()])))
}

/// The first name of `names` that an earlier one repeats, in 8 bytes a name: the names' hashes
/// sorted, and only names whose hashes collide compared as text (a table of a million names
/// took 36 MB).
fn first_repeat(names: &[CompactString]) -> Option<&CompactString> {
    use std::hash::BuildHasher;
    let state = foldhash::fast::FixedState::default();
    let mut hashes: Vec<u64> = names.iter().map(|n| state.hash_one(n.as_str())).collect();
    hashes.sort_unstable();
    let colliding: HashSet<u64> = hashes
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    drop(hashes);
    if colliding.is_empty() {
        return None;
    }
    let mut seen: HashSet<&str> = HashSet::default();
    names
        .iter()
        .filter(|n| colliding.contains(&state.hash_one(n.as_str())))
        .find(|n| !seen.insert(n.as_str()))
}

/// How one input's positions along an axis map onto the result's (anndata's `Reindexer`).
#[derive(Clone, Debug)]
pub(super) struct Reindexer {
    old_len: usize,
    maps: Maps,
}

/// The maps of a [`Reindexer`], shared by its clones.
#[derive(Clone, Debug)]
enum Maps {
    /// The input's positions are the result's: the table (both ways) is built only when a
    /// caller asks for it (a million cells: 16 MB).
    Identity(Arc<OnceLock<Arc<[Option<usize>]>>>),
    Table {
        /// For each result position, the input position it comes from (`None`: filled).
        new_to_old: Arc<[Option<usize>]>,
        /// For each input position, the result position it goes to (`None`: dropped).
        old_to_new: Arc<[Option<usize>]>,
    },
}

impl Reindexer {
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
        let new_to_old: Arc<[Option<usize>]> = new_to_old.into();
        if no_change {
            return Reindexer {
                old_len,
                maps: Maps::Identity(Arc::new(OnceLock::from(new_to_old))),
            };
        }
        let mut old_to_new = vec![None; old_len];
        for (new, old) in new_to_old.iter().enumerate() {
            if let Some(o) = old {
                old_to_new[*o] = Some(new);
            }
        }
        Reindexer {
            old_len,
            maps: Maps::Table {
                new_to_old,
                old_to_new: old_to_new.into(),
            },
        }
    }

    /// Positions `0..len` kept as they are.
    pub(super) fn identity(len: usize) -> Self {
        Reindexer {
            old_len: len,
            maps: Maps::Identity(Arc::default()),
        }
    }

    /// The result's length along the axis.
    pub(super) fn new_len(&self) -> usize {
        match &self.maps {
            Maps::Identity(_) => self.old_len,
            Maps::Table { new_to_old, .. } => new_to_old.len(),
        }
    }

    /// Whether an element of `len` along the axis is kept as it is.
    pub(super) fn keeps(&self, len: usize) -> bool {
        matches!(self.maps, Maps::Identity(_)) && len == self.old_len
    }

    /// For each result position, the input position it comes from.
    pub(super) fn new_to_old(&self) -> &[Option<usize>] {
        match &self.maps {
            Maps::Identity(table) => table.get_or_init(|| (0..self.old_len).map(Some).collect()),
            Maps::Table { new_to_old, .. } => new_to_old,
        }
    }

    /// For each input position, the result position it goes to (`None`: dropped).
    pub(super) fn old_to_new(&self) -> &[Option<usize>] {
        match &self.maps {
            Maps::Identity(_) => self.new_to_old(),
            Maps::Table { old_to_new, .. } => old_to_new,
        }
    }

    /// The input position result position `new` comes from (`None`: filled; no table built).
    pub(super) fn source(&self, new: usize) -> Option<usize> {
        match &self.maps {
            Maps::Identity(_) => (new < self.old_len).then_some(new),
            Maps::Table { new_to_old, .. } => new_to_old.get(new).copied().flatten(),
        }
    }

    /// The input positions the result takes, in the result's order (no table built).
    pub(super) fn sources(&self) -> impl Iterator<Item = usize> + '_ {
        let (all, table) = match &self.maps {
            Maps::Identity(_) => (self.old_len, None),
            Maps::Table { new_to_old, .. } => (0, Some(new_to_old)),
        };
        (0..all).chain(table.into_iter().flat_map(|t| t.iter().flatten().copied()))
    }

    /// Whether some result positions have no input position (they are filled).
    pub(super) fn fills(&self) -> bool {
        match &self.maps {
            Maps::Identity(_) => false,
            Maps::Table { new_to_old, .. } => new_to_old.iter().any(Option::is_none),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<CompactString> {
        v.iter().map(|&x| x.into()).collect()
    }

    /// Identical lists align without a table of names: the first list, one identity map
    /// shared by every input; a name twice is refused as the general path refuses it.
    #[test]
    fn identical_lists_share_one_identity() {
        let names = s(&["c", "a", "b"]);
        for join in [Join::Inner, Join::Outer] {
            let (result, r) = align(&[&names, &names, &names], join, "obs").unwrap();
            assert_eq!(result, names);
            assert!(r
                .iter()
                .all(|r| r.keeps(3) && r.new_to_old() == [Some(0), Some(1), Some(2)]));
            assert!(std::ptr::eq(r[0].new_to_old(), r[2].old_to_new()));
        }
        let twice = s(&["a", "b", "a"]);
        let general = align(&[&twice, &names], Join::Outer, "obs").unwrap_err();
        let same = align(&[&twice, &twice], Join::Outer, "obs").unwrap_err();
        assert_eq!(same.to_string(), general.to_string());
    }

    /// The first name an earlier one repeats, in the names' order, whatever their hashes.
    #[test]
    fn first_repeat_is_the_first_second_occurrence() {
        assert_eq!(first_repeat(&s(&["a", "b", "c", "b", "a"])).unwrap(), "b");
        assert_eq!(first_repeat(&s(&["x", "y", "x"])).unwrap(), "x");
        assert!(first_repeat(&s(&["a", "b", "c"])).is_none());
        assert!(first_repeat(&s(&[])).is_none());
        let many: Vec<CompactString> = (0..100_000).map(|i| format!("n{i}").into()).collect();
        assert!(first_repeat(&many).is_none());
    }

    /// An identity built without a table gives the same maps as one built from positions;
    /// its clones share the table once a caller asks for it.
    #[test]
    fn identities_build_their_table_on_demand() {
        let lazy = Reindexer::identity(3);
        let eager = Reindexer::positions(3, vec![Some(0), Some(1), Some(2)]);
        let twin = lazy.clone();
        assert!(lazy.keeps(3) && eager.keeps(3) && !lazy.fills());
        assert_eq!(
            (lazy.new_len(), lazy.source(2), lazy.source(3)),
            (3, Some(2), None)
        );
        assert_eq!(lazy.sources().collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(lazy.new_to_old(), eager.new_to_old());
        assert_eq!(lazy.old_to_new(), eager.old_to_new());
        assert!(std::ptr::eq(lazy.new_to_old(), twin.old_to_new()));
        let table = Reindexer::positions(2, vec![Some(1), None, Some(0)]);
        assert_eq!(table.sources().collect::<Vec<_>>(), [1, 0]);
        assert_eq!(
            (table.source(1), table.source(2), table.fills()),
            (None, Some(0), true)
        );
    }

    /// pandas: `pd.Index(['b', 'a']).union(pd.Index(['c', 'a']))` is `['a', 'b', 'c']`, an
    /// equal index keeps its order, and intersection keeps the left order.
    #[test]
    fn set_operations_follow_pandas() {
        let joined = |lists: &[&[&str]], join| {
            let owned: Vec<Vec<CompactString>> = lists.iter().map(|l| s(l)).collect();
            let borrowed: Vec<&[CompactString]> = owned.iter().map(Vec::as_slice).collect();
            align(&borrowed, join, "var").unwrap().0
        };
        let union = |lists: &[&[&str]]| joined(lists, Join::Outer);
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
        assert_eq!(union(&[&["b", "a"], &["a", "b"]]), s(&["a", "b"]));
        let inner = |lists: &[&[&str]]| joined(lists, Join::Inner);
        assert_eq!(inner(&[&["c", "b", "a"], &["a", "c"]]), s(&["c", "a"]));
        assert_eq!(
            inner(&[&["c", "b", "a"], &["a", "c", "b"], &["b", "c"]]),
            s(&["c", "b"])
        );
        assert_eq!(inner(&[&["a"], &[]]), s(&[]));
        assert_eq!(inner(&[]), s(&[]));
        assert_eq!(
            intersection(
                &["c", "b", "a"].map(String::from),
                &["a", "c"].map(String::from)
            ),
            ["c", "a"]
        );
        let dup = s(&["a", "b", "a"]);
        let err = align(&[&s(&["a"]), &dup], Join::Inner, "var").unwrap_err();
        assert!(
            err.to_string()
                .contains("input 1 has the var name 'a' twice"),
            "{err}"
        );
    }

    #[test]
    fn reindexers_map_both_ways() {
        let (x, z) = (s(&["x", "y", "z"]), s(&["z", "w", "x"]));
        let (names, r) = align(&[&x, &z], Join::Outer, "var").unwrap();
        assert_eq!(names, s(&["w", "x", "y", "z"]));
        assert_eq!(r[1].new_to_old(), [Some(1), Some(2), None, Some(0)]);
        assert_eq!(r[1].old_to_new(), [Some(3), Some(0), Some(1)]);
        assert!(r[1].fills() && !r[1].keeps(3));
        let (names, r) = align(&[&x, &z], Join::Inner, "var").unwrap();
        assert_eq!(names, s(&["x", "z"]));
        assert_eq!(r[0].old_to_new(), [Some(0), None, Some(1)]);
        assert_eq!(r[1].new_to_old(), [Some(2), Some(0)]);
        let (_, same) = align(&[&s(&["x"])], Join::Inner, "var").unwrap();
        assert!(same[0].keeps(1) && !same[0].keeps(0));
        let cut = Reindexer::range(3, 2);
        assert_eq!(cut.new_to_old(), [Some(0), Some(1)]);
        assert!(!cut.fills());
    }
}
