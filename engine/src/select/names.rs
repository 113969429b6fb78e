//! Names looked up along an axis: [`NameIndex`] holds where each name is without a copy of the
//! names, so a handle builds it once and every later selection by name costs its own names.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use super::short_list;
use crate::{Error, Result};

/// Where each name of an axis is, keyed by the names themselves (which it does not hold: every
/// lookup is given them again), so that asking for `k` names costs `k` lookups whatever the
/// axis's length.
///
/// ```
/// use annpage_engine::select::NameIndex;
/// let names: Vec<String> = ["a", "b", "a", "c"].map(String::from).to_vec();
/// let index = NameIndex::new(&names);
/// let want = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
/// assert_eq!(index.find(&names, &want(&["c", "b"]))?, [3, 1]);
/// // A name found twice, and names not found, are errors.
/// assert!(index.find(&names, &want(&["a"])).is_err());
/// assert!(index.find(&names, &want(&["x", "y"])).unwrap_err().to_string().contains("2 of 2"));
/// # Ok::<(), annpage_engine::Error>(())
/// ```
pub struct NameIndex {
    table: HashTable<Slot>,
    hasher: RandomState,
    len: usize,
}

/// A name's first position, and whether it occurs again.
#[derive(Clone, Copy)]
struct Slot {
    position: usize,
    repeated: bool,
}

impl NameIndex {
    /// Indexes `names` (one hash and lookup each; the names are not copied).
    pub fn new<S: AsRef<str>>(names: &[S]) -> Self {
        let hasher = RandomState::default();
        let mut table = HashTable::with_capacity(names.len());
        for (position, name) in names.iter().enumerate() {
            let name = name.as_ref();
            let hash = hasher.hash_one(name);
            match table.find_mut(hash, |s: &Slot| names[s.position].as_ref() == name) {
                Some(slot) => slot.repeated = true,
                None => {
                    table.insert_unique(
                        hash,
                        Slot {
                            position,
                            repeated: false,
                        },
                        |s: &Slot| hasher.hash_one(names[s.position].as_ref()),
                    );
                }
            }
        }
        NameIndex {
            table,
            hasher,
            len: names.len(),
        }
    }

    /// About the bytes the index holds (counted against a cache budget).
    pub fn heap_bytes(&self) -> usize {
        self.table.capacity() * (std::mem::size_of::<Slot>() + 1)
    }

    /// The positions of `wanted`, in order, among `names` (those the index was built from).
    ///
    /// Fails with [`Error::InvalidArgument`] for a name found more than once along the axis,
    /// and [`Error::NotFound`] for names not found (every one of them is listed).
    pub fn find<S: AsRef<str>, W: AsRef<str>>(
        &self,
        names: &[S],
        wanted: &[W],
    ) -> Result<Vec<usize>> {
        if names.len() != self.len {
            return Err(Error::invalid(format!(
                "names looked up among {} names, indexed among {}",
                names.len(),
                self.len
            )));
        }
        let mut positions = Vec::with_capacity(wanted.len());
        let mut missing = Vec::new();
        for name in wanted {
            let name = name.as_ref();
            let hash = self.hasher.hash_one(name);
            match self
                .table
                .find(hash, |s| names[s.position].as_ref() == name)
            {
                Some(Slot { repeated: true, .. }) => {
                    return Err(Error::invalid(format!(
                        "name {name:?} occurs more than once along this axis"
                    )))
                }
                Some(s) => positions.push(s.position),
                None => missing.push(name),
            }
        }
        if missing.is_empty() {
            Ok(positions)
        } else {
            Err(Error::not_found(format!(
                "{} of {} names not found: {}",
                missing.len(),
                wanted.len(),
                short_list(&missing, |f, s| write!(f, "{s:?}"))
            )))
        }
    }
}

impl std::fmt::Debug for NameIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NameIndex({} names)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Each name found is where a scan finds it alone; a repeated one or a missing one is
        /// an error (every missing name is counted).
        #[test]
        fn finds_what_a_scan_finds(
            names in proptest::collection::vec("[a-d]{0,2}", 0..40),
            wanted in proptest::collection::vec("[a-e]{0,2}", 0..10),
        ) {
            let index = NameIndex::new(&names);
            let scan = |w: &String| -> Vec<usize> {
                names.iter().enumerate().filter(|(_, n)| *n == w).map(|(i, _)| i).collect()
            };
            let repeated = wanted.iter().any(|w| scan(w).len() > 1);
            let missing = wanted.iter().filter(|w| scan(w).is_empty()).count();
            match index.find(&names, &wanted) {
                Ok(found) => {
                    prop_assert!(!repeated && missing == 0);
                    let want: Vec<usize> = wanted.iter().map(|w| scan(w)[0]).collect();
                    prop_assert_eq!(found, want);
                }
                Err(e) => {
                    let e = e.to_string();
                    prop_assert!(repeated || missing > 0, "{}", e);
                    if !e.contains("more than once") {
                        let counted = format!("{missing} of {} names not found", wanted.len());
                        prop_assert!(e.contains(&counted), "{}", e);
                    }
                }
            }
        }
    }

    #[test]
    fn names_of_another_length_are_refused() {
        let names: Vec<String> = vec!["a".into(), "b".into()];
        let index = NameIndex::new(&names);
        assert!(index.find(&names[..1], &["a"]).is_err());
    }
}
