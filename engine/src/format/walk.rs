//! The guard every recursive walk of a file's groups goes through: a bound on nesting depth and a
//! check that no group is reached twice by different paths.
//!
//! An AnnData store is a tree, but HDF5 hard links (or directory links in a Zarr store) can
//! make any group reachable from several places: a link from `/uns/pca/loop` back to
//! `/uns/pca`, or from `/uns/root` to `/`, turns the tree into a cycle, and a few groups each
//! linked twice from the level above make a walk exponential. Nesting alone (thousands of
//! dicts in `uns`) can overflow the stack. Each walk (reading, describing) enters every group
//! through [`within`], which refuses the group when it is [`MAX_DEPTH`] groups deep or when
//! the same group ([`crate::storage::Group::object_id`]) was already entered under another
//! path during the current walk.
//!
//! The state lives in a thread-local because the readers are free functions that call each
//! other (and are public on their own); a walk begins when the outermost [`within`] is entered
//! and ends when it returns.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::error::ResultExt;
use crate::storage::{Array, Group, ObjectId};
use crate::{Error, Result};

/// How many groups deep a walk may go: far beyond any file anndata writes (a handful of levels),
/// far below what overflows the stack.
pub const MAX_DEPTH: usize = 64;

/// A group entered by a walk.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Visit {
    /// Identified by the store (HDF5 objects, reachable by several paths).
    Object(ObjectId),
    /// Identified by its path (stores whose groups are reached by one path only).
    Path(String),
}

#[derive(Default)]
struct Walk {
    /// The groups entered and not yet left, outermost first.
    stack: Vec<Visit>,
    /// Every group entered during the walk, with the path it was first entered under.
    seen: HashMap<Visit, String>,
}

thread_local! {
    static WALK: RefCell<Walk> = RefCell::default();
}

/// Runs `f` with `group` entered in the current walk; errors name the group's path.
///
/// Entering the innermost group again, by the same path (a reader handing its group on to
/// another), does not count as a level.
pub(crate) fn within<T>(group: &dyn Group, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let path = group.path();
    // A store that cannot alias groups identifies each by its path.
    let id = match group.object_id().in_element(&path)? {
        Some(id) => Visit::Object(id),
        None => Visit::Path(path.clone()),
    };
    let pushed = WALK
        .with(|w| w.borrow_mut().enter(id, &path))
        .in_element(&path)?;
    let _leave = Leave { pushed };
    f()
}

/// Runs `f`, which reads the array `array`, in the current walk: an array read under another
/// path during the walk (an HDF5 dataset hard-linked twice: a few KB of links would each read,
/// and write, it again) is refused. Outside a walk `f` just runs.
pub(crate) fn read_once<T>(array: &dyn Array, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let path = array.path();
    if let Some(id) = array.object_id().in_element(&path)? {
        WALK.with(|w| w.borrow_mut().read(Visit::Object(id), &path))
            .in_element(&path)?;
    }
    f()
}

/// Where the current walk already entered `group` under another path (a link to it), if it
/// did: a describing walk shows such a group as a link instead of entering it again.
pub(crate) fn entered_at(group: &dyn Group) -> Result<Option<String>> {
    let path = group.path();
    let Some(id) = group.object_id().in_element(&path)? else {
        return Ok(None);
    };
    Ok(WALK.with(|w| {
        w.borrow()
            .seen
            .get(&Visit::Object(id))
            .filter(|first| **first != path)
            .cloned()
    }))
}

impl Walk {
    /// Records the array `id` read at `path` (during a walk); fails when it was read at another.
    fn read(&mut self, id: Visit, path: &str) -> Result<()> {
        if self.stack.is_empty() {
            return Ok(());
        }
        match self.seen.get(&id) {
            Some(first) if first != path => Err(Error::malformed(format!(
                "is a link to the dataset already read at {first} (a dataset linked twice; an \
                 AnnData store is a tree)"
            ))),
            Some(_) => Ok(()),
            None => {
                self.seen.insert(id, path.to_owned());
                Ok(())
            }
        }
    }

    /// Enters `id` at `path`; whether a level was pushed.
    fn enter(&mut self, id: Visit, path: &str) -> Result<bool> {
        if let Some(first) = self.seen.get(&id) {
            if first == path && self.stack.last() == Some(&id) {
                return Ok(false);
            }
            if first != path {
                let how = if self.stack.contains(&id) {
                    "a link cycle"
                } else {
                    "a group linked twice"
                };
                return Err(Error::malformed(format!(
                    "is a link to the group already read at {first} ({how}; an AnnData \
                     store is a tree)"
                )));
            }
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(Error::malformed(format!(
                "groups are nested more than {MAX_DEPTH} levels deep"
            )));
        }
        self.seen
            .entry(id.clone())
            .or_insert_with(|| path.to_owned());
        self.stack.push(id);
        Ok(true)
    }
}

/// Leaves the level a [`within`] pushed (also on unwinding); ends the walk at the outermost.
struct Leave {
    pushed: bool,
}

impl Drop for Leave {
    fn drop(&mut self) {
        if !self.pushed {
            return;
        }
        WALK.with(|w| {
            let mut w = w.borrow_mut();
            w.stack.pop();
            if w.stack.is_empty() {
                w.seen.clear();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::py_file;

    /// Walks every group below `g`, counting them.
    fn count(g: &dyn Group) -> Result<usize> {
        within(g, || {
            let mut n = 1;
            for name in g.member_names()? {
                if let Ok(child) = g.group(&name) {
                    n += count(child.as_ref())?;
                }
            }
            Ok(n)
        })
    }

    #[test]
    fn depth_is_bounded_and_names_the_group() {
        let (_d, path) = py_file(
            "t.h5",
            "with h5py.File(path, 'w') as f:\n\
             \x20   g = f\n\
             \x20   for _ in range(200):\n\
             \x20       g = g.create_group('d')\n",
        );
        let f = hdf5::File::open(&path).unwrap();
        let err = count(&*f).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("more than 64 levels deep"), "{msg}");
        // The group refused is the 65th: the root plus 64 nested ones.
        assert_eq!(err.element().unwrap().matches("/d").count(), MAX_DEPTH);
        // The walk ended: a new one starts from scratch.
        let shallow = f.group(&vec!["d"; 150].join("/")).unwrap();
        assert_eq!(count(&shallow).unwrap(), 51);
    }

    #[test]
    fn cycles_and_shared_groups_are_refused_trees_pass() {
        let (_d, path) = py_file(
            "t.h5",
            "with h5py.File(path, 'w') as f:\n\
             \x20   f.create_group('uns/pca/x')\n\
             \x20   f.create_group('uns/other')\n\
             \x20   f['loop/a/b'] = np.zeros(2)\n\
             \x20   f['loop/a/back'] = f['loop']\n\
             \x20   f['share/a'] = np.zeros(1)\n\
             \x20   f['twice/one'] = f['share']\n\
             \x20   f['twice/two'] = f['share']\n\
             \x20   f['root/up'] = f['/']\n",
        );
        let f = hdf5::File::open(&path).unwrap();
        assert_eq!(count(&f.group("uns").unwrap()).unwrap(), 4);
        let err = count(&f.group("loop").unwrap()).unwrap_err();
        assert_eq!(err.element(), Some("/loop/a/back"));
        assert!(
            err.to_string()
                .contains("already read at /loop (a link cycle"),
            "{err}"
        );
        let err = count(&f.group("twice").unwrap()).unwrap_err();
        assert_eq!(err.element(), Some("/twice/two"));
        assert!(err.to_string().contains("linked twice"), "{err}");
        let err = count(&*f).unwrap_err();
        assert!(err.to_string().contains("a link cycle"), "{err}");
        // Entering the same group twice in a row (one reader handing it to another) is one level.
        let uns = f.group("uns").unwrap();
        assert_eq!(within(&uns, || within(&uns, || count(&uns))).unwrap(), 4);
    }
}
