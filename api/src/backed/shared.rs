//! What every clone of a [`super::BackedAnnData`] shares: the open file, its layout, the block
//! cache, and the caches of opened matrices and of `obs`/`var` columns.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use annpage_engine::cache::Reservation;
use annpage_engine::data::{ArrayData, Column, CompactString, DataFrame, Element};
use annpage_engine::error::ResultExt;
use annpage_engine::file::copy::{rewrite, Finish, Part};
use annpage_engine::file::probe::{
    ColumnSlot, ElemSlot, FrameId, FrameLayout, FrameSource, Layout, MatrixMeta, MatrixSlot,
};
use annpage_engine::file::{join, File};
use annpage_engine::paged::{BackedMatrix, Block, BlockCache, ReadOptions};
use annpage_engine::select::{AxisIndex, NameIndex};
use annpage_engine::{Error, Result};
use compact_str::ToCompactString;
use indexmap::IndexMap;

use crate::subset::aligned_rows;

use super::Mode;

/// The file as it is now: readers take a snapshot (cheap clones) and release the lock.
#[derive(Clone)]
pub(super) struct Snapshot {
    pub(super) file: File,
    pub(super) layout: Arc<Layout>,
    /// Incremented each time the file is replaced (on flush), so that cached values of an
    /// older file are never mixed with a newer one.
    pub(super) generation: u64,
}

pub(super) struct State {
    pub(super) snapshot: Snapshot,
    pub(super) dirty: BTreeSet<Part>,
}

/// Key of a cached column: `None` is the frame's index.
pub(super) type ColumnKey = (u64, FrameId, Option<String>);

/// A value held by one of the per-handle caches (columns, name indexes), with the part of the
/// budget it takes.
struct Held<T> {
    value: Arc<T>,
    _reservation: Reservation<Block>,
}

/// Shared by every clone and view of a handle.
pub(super) struct Shared {
    pub(super) path: PathBuf,
    pub(super) mode: Mode,
    pub(super) cache: Arc<BlockCache>,
    pub(super) read: ReadOptions,
    state: RwLock<State>,
    generation: AtomicU64,
    /// Opened matrices by generation and path; `None` for elements that are not matrices.
    matrices: Mutex<HashMap<(u64, String), Option<BackedMatrix>>>,
    columns: Mutex<HashMap<ColumnKey, Held<Column>>>,
    /// Where each name of obs's and var's index is, once a selection by name asked.
    name_indexes: Mutex<HashMap<(u64, FrameId), Held<NameIndex>>>,
    /// Held while a column or name index not held yet is loaded, one lock per stripe of
    /// keys: readers that miss the same value wait for its one load instead of each reading
    /// (and holding) a copy at once; values of other stripes load meanwhile.
    loading: [Mutex<()>; LOAD_STRIPES],
    /// The part of the budget taken by what opening the file read into memory (legacy
    /// annotations, layers of strings).
    _read_at_open: Reservation<Block>,
}

/// Stripes of [`Shared`]'s load locks: cold loads of different values rarely wait for each
/// other.
const LOAD_STRIPES: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(super) fn new(
        path: PathBuf,
        mode: Mode,
        cache: Arc<BlockCache>,
        read: ReadOptions,
        file: File,
        layout: Layout,
    ) -> Self {
        let read_at_open = cache.reserve(memory_bytes(&layout));
        Shared {
            path,
            mode,
            cache,
            read,
            state: RwLock::new(State {
                snapshot: Snapshot {
                    file,
                    layout: Arc::new(layout),
                    generation: 0,
                },
                dirty: BTreeSet::new(),
            }),
            generation: AtomicU64::new(0),
            matrices: Mutex::new(HashMap::new()),
            columns: Mutex::new(HashMap::new()),
            name_indexes: Mutex::new(HashMap::new()),
            loading: std::array::from_fn(|_| Mutex::new(())),
            _read_at_open: read_at_open,
        }
    }

    /// The file and layout now.
    pub(super) fn snapshot(&self) -> Snapshot {
        self.read_state().snapshot.clone()
    }

    pub(super) fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the file (after a flush) and drops every cached value of the old one.
    pub(super) fn replace(&self, state: &mut State, file: File, layout: Layout) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        state.snapshot = Snapshot {
            file,
            layout: Arc::new(layout),
            generation,
        };
        state.dirty.clear();
        lock(&self.matrices).clear();
        lock(&self.columns).clear();
        lock(&self.name_indexes).clear();
    }

    /// Writes the pending changes back (see [`super::BackedAnnData::flush`]): the file is
    /// rewritten with the changed parts, and every cached value of the old one dropped.
    /// Writes the pending changes (the file is rewritten even without any when `finish` is
    /// given: its step always runs).
    pub(super) fn flush(&self, finish: Option<&mut Finish<'_>>) -> Result<()> {
        let mut state = self.write_state();
        if state.dirty.is_empty() && finish.is_none() {
            return Ok(());
        }
        let mut nothing = |_: &Path| Ok(());
        let finish = finish.unwrap_or(&mut nothing);
        let snap = &state.snapshot;
        let (file, layout) = rewrite(&snap.file, &snap.layout, &state.dirty, finish)?;
        self.replace(&mut state, file, layout);
        Ok(())
    }

    /// Forgets the pending changes: the layout is the file's again (probed anew) and every
    /// cached value of the changed one is dropped.
    pub(super) fn discard(&self) -> Result<()> {
        let mut state = self.write_state();
        if state.dirty.is_empty() {
            return Ok(());
        }
        let file = state.snapshot.file.clone();
        let layout = file.probe().in_file(&self.path)?;
        self.replace(&mut state, file, layout);
        Ok(())
    }

    /// Drops every cached value of a frame: its index, columns and name index (when a
    /// pending change replaces the frame).
    pub(super) fn forget_frame(&self, generation: u64, frame: FrameId) {
        lock(&self.columns).retain(|&(g, f, _), _| g != generation || f != frame);
        lock(&self.name_indexes).remove(&(generation, frame));
    }

    /// Drops a cached column (when a pending change replaces or removes it).
    pub(super) fn forget_column(&self, generation: u64, frame: FrameId, name: &str) {
        lock(&self.columns).remove(&(generation, frame, Some(name.to_owned())));
    }

    /// The backed matrix of a matrix element, opened once per file and shared by every view.
    pub(super) fn matrix(&self, snap: &Snapshot, meta: &MatrixMeta) -> Result<BackedMatrix> {
        self.open_matrix_at(snap, &meta.parent, &meta.name, true)?
            .ok_or_else(|| Error::malformed("not a matrix").in_element(meta.path()))
    }

    /// Member `name` of `parent` as a backed matrix, or `None` if it is not a matrix (then, if
    /// `required`, the error that says why).
    /// The element `parent/name` as a matrix read block by block, if it is one (a 2-d array
    /// or a sparse matrix).
    pub(super) fn open_matrix(
        &self,
        snap: &Snapshot,
        parent: &str,
        name: &str,
    ) -> Result<Option<BackedMatrix>> {
        self.open_matrix_at(snap, parent, name, false)
    }

    fn open_matrix_at(
        &self,
        snap: &Snapshot,
        parent: &str,
        name: &str,
        required: bool,
    ) -> Result<Option<BackedMatrix>> {
        let key = (snap.generation, join(parent, name));
        if let Some(found) = lock(&self.matrices).get(&key) {
            return Ok(found.clone());
        }
        let open = || -> Result<Option<BackedMatrix>> {
            let source = if required {
                snap.file.open_matrix(parent, name, &self.read).map(Some)
            } else {
                snap.file.try_open_matrix(parent, name, &self.read)
            };
            match source {
                Ok(Some(source)) if source.shape().is_some() => {
                    match BackedMatrix::new(source, Arc::clone(&self.cache)) {
                        Ok(m) => Ok(Some(m)),
                        Err(e) if required => Err(e),
                        Err(_) => Ok(None),
                    }
                }
                Ok(Some(_)) if required => {
                    Err(Error::shape("a matrix must be 2-d, this array is not").in_element(&key.1))
                }
                Err(e) if required => Err(e),
                _ => Ok(None),
            }
        };
        let opened = open()?;
        let mut map = lock(&self.matrices);
        if snap.generation == self.generation.load(Ordering::SeqCst) {
            return Ok(map.entry(key).or_insert(opened).clone());
        }
        Ok(opened)
    }

    /// An `obsm`/`varm` element at the rows `rows` (positions in the file): matrices through
    /// their backed handle (only the blocks holding those rows are read), anything else read
    /// whole and cut — in a `view`, as anndata's views show it (see [`aligned_rows`]).
    pub(super) fn rows_of(
        &self,
        snap: &Snapshot,
        slot: &ElemSlot,
        rows: &AxisIndex,
        view: bool,
    ) -> Result<Element> {
        let cut = |e: &Element| {
            if view {
                aligned_rows(e, rows)
            } else {
                e.subset_rows(rows)
            }
        };
        match slot {
            ElemSlot::Memory(e) => cut(e),
            ElemSlot::Disk { parent, name, .. } => {
                let path = join(parent, name);
                if let Some(m) = self.open_matrix_at(snap, parent, name, false)? {
                    let cols = AxisIndex::full(m.shape().1);
                    return Ok(Element::from(m.read(rows, &cols).in_element(&path)?));
                }
                cut(&snap.file.read_element(parent, name)?).in_element(path)
            }
        }
    }

    /// A whole element (`uns` entries, `raw.varm`).
    pub(super) fn element(&self, snap: &Snapshot, slot: &ElemSlot) -> Result<Element> {
        match slot {
            ElemSlot::Memory(e) => Ok((**e).clone()),
            ElemSlot::Disk { parent, name, skip } => {
                snap.file.read_mapping_without(parent, name, skip)
            }
        }
    }

    /// A column through the per-handle cache (loaded with `load` on a miss).
    pub(super) fn cached(
        &self,
        key: ColumnKey,
        load: impl FnOnce() -> Result<Column>,
    ) -> Result<Arc<Column>> {
        let generation = key.0;
        self.held(&self.columns, key, generation, Column::heap_bytes, load)
    }

    /// `key`'s value in `map`, or else `load`'s, kept there with `bytes` of it reserved from
    /// the budget unless the file was replaced since `generation` (the key's).
    fn held<K: std::hash::Hash + Eq, T>(
        &self,
        map: &Mutex<HashMap<K, Held<T>>>,
        key: K,
        generation: u64,
        bytes: impl FnOnce(&T) -> usize,
        load: impl FnOnce() -> Result<T>,
    ) -> Result<Arc<T>> {
        let held = |map: &Mutex<HashMap<K, Held<T>>>, key: &K| {
            lock(map).get(key).map(|held| Arc::clone(&held.value))
        };
        if let Some(value) = held(map, &key) {
            return Ok(value);
        }
        let stripe = {
            use std::hash::{BuildHasher, BuildHasherDefault};
            let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .hash_one(&key);
            (hash % LOAD_STRIPES as u64) as usize
        };
        let _loading = lock(&self.loading[stripe]);
        if let Some(value) = held(map, &key) {
            return Ok(value); // Loaded while this reader waited.
        }
        let value = Arc::new(load()?);
        let reservation = self.cache.reserve(bytes(&value));
        let mut map = lock(map);
        if generation != self.generation.load(Ordering::SeqCst) {
            return Ok(value);
        }
        let entry = map.entry(key).or_insert(Held {
            value,
            _reservation: reservation,
        });
        Ok(Arc::clone(&entry.value))
    }

    /// The index of a frame stored as a group, as strings (cached).
    fn group_index(
        &self,
        snap: &Snapshot,
        frame: &FrameLayout,
        path: &str,
        index_key: &str,
    ) -> Result<Arc<Column>> {
        self.cached((snap.generation, frame.id, None), || {
            read_index(snap, path, index_key)
        })
    }

    /// The rows `rows` of a frame's column (key `None`: its index) for a caller that keeps
    /// them: a copy from the cached column, or, when it is not cached and every row is asked
    /// for, read straight into the caller's hands and not kept (no copy of 300,000 names made
    /// to be dropped). `element` names the column in an error.
    fn owned_column(
        &self,
        key: ColumnKey,
        rows: &AxisIndex,
        element: &str,
        load: impl FnOnce() -> Result<Column>,
    ) -> Result<Column> {
        let cached = lock(&self.columns).get(&key).map(|c| Arc::clone(&c.value));
        let column = match cached {
            None if rows.is_full() => return load(),
            Some(column) => column,
            None => self.cached(key, load)?,
        };
        column.subset(rows).in_element(element)
    }

    /// Column `name` of a frame stored as a group (cached).
    fn group_column(
        &self,
        snap: &Snapshot,
        frame: &FrameLayout,
        path: &str,
        name: &str,
    ) -> Result<Arc<Column>> {
        self.cached((snap.generation, frame.id, Some(name.to_owned())), || {
            snap.file.read_frame_column(path, name)
        })
    }

    /// The names of the rows `rows` of a frame.
    pub(super) fn frame_names(
        &self,
        snap: &Snapshot,
        frame: &FrameLayout,
        rows: &AxisIndex,
    ) -> Result<Vec<CompactString>> {
        self.held_names(snap, frame, rows).map(Names::into_vec)
    }

    /// The names of the rows `rows` of a frame for a caller that keeps them and will not ask
    /// the handle again: the index of a frame stored as a group is taken through
    /// [`Shared::owned_column`] (every name of an uncached index read straight into the
    /// caller's hands: not cached, not copied).
    pub(super) fn taken_names(
        &self,
        snap: &Snapshot,
        frame: &FrameLayout,
        rows: &AxisIndex,
    ) -> Result<Vec<CompactString>> {
        let FrameSource::Group {
            path, index_key, ..
        } = &frame.source
        else {
            return self.frame_names(snap, frame, rows);
        };
        let key = (snap.generation, frame.id, None);
        match self.owned_column(key, rows, path, || read_index(snap, path, index_key))? {
            Column::Array(ArrayData::String(names)) if names.as_slice().is_some() => {
                // In order from its first element (a slice): the vector is the names.
                Ok(names.into_raw_vec_and_offset().0)
            }
            _ => Err(Error::malformed("the index does not hold strings").in_element(path)),
        }
    }

    /// The names of the rows `rows` of a frame, without a copy when they are all of a frame
    /// stored as a group: its cached index itself.
    pub(super) fn held_names(
        &self,
        snap: &Snapshot,
        frame: &FrameLayout,
        rows: &AxisIndex,
    ) -> Result<Names> {
        let pick = |names: &[CompactString]| {
            Names(NamesOf::Picked(
                rows.iter().map(|i| names[i].clone()).collect(),
            ))
        };
        match &frame.source {
            FrameSource::Default => Ok(Names(NamesOf::Picked(
                rows.iter().map(|i| i.to_compact_string()).collect(),
            ))),
            FrameSource::Memory(df) => Ok(pick(string_index(df.index())?)),
            FrameSource::Group {
                path, index_key, ..
            } => {
                let index = self.group_index(snap, frame, path, index_key)?;
                let names = match &*index {
                    Column::Array(a) => string_index(a)?,
                    _ => return Err(Error::malformed("the index is not an array").in_element(path)),
                };
                if rows.is_full() {
                    Ok(Names(NamesOf::Index(Arc::clone(&index))))
                } else {
                    Ok(pick(names))
                }
            }
        }
    }

    /// The positions of `wanted` among all the names of a frame stored as a group, through
    /// an index of them built on the first call and kept (`None` for other frames: the
    /// caller looks the names up itself).
    pub(super) fn find_names(
        &self,
        snap: &Snapshot,
        frame: &FrameLayout,
        wanted: &[String],
    ) -> Result<Option<Vec<usize>>> {
        let FrameSource::Group {
            path, index_key, ..
        } = &frame.source
        else {
            return Ok(None);
        };
        let column = self.group_index(snap, frame, path, index_key)?;
        let Column::Array(names) = &*column else {
            return Err(Error::malformed("the index is not an array").in_element(path));
        };
        let names = string_index(names)?;
        let index = self.held(
            &self.name_indexes,
            (snap.generation, frame.id),
            snap.generation,
            NameIndex::heap_bytes,
            || Ok(NameIndex::new(names)),
        )?;
        index.find(names, wanted).map(Some)
    }

    /// The rows `rows` of the frame's column `name` alone (`None`: no such column).
    pub(super) fn frame_column(
        &self,
        snap: &Snapshot,
        frame: &FrameLayout,
        rows: &AxisIndex,
        name: &str,
    ) -> Result<Option<Column>> {
        let (path, column) = match &frame.source {
            FrameSource::Default => return Ok(None),
            FrameSource::Memory(df) => match df.column(name) {
                Some(c) => return c.subset(rows).map(Some),
                None => return Ok(None),
            },
            FrameSource::Group { path, columns, .. } => match columns.get(name) {
                None => return Ok(None),
                Some(ColumnSlot::Disk) => (path, self.group_column(snap, frame, path, name)?),
                Some(ColumnSlot::Memory(c)) => (path, Arc::clone(c)),
            },
        };
        column.subset(rows).in_element(join(path, name)).map(Some)
    }

    /// The rows `rows` of a frame: the index and every column (categoricals keep all their
    /// categories, as pandas' `iloc`).
    pub(super) fn frame_rows(
        &self,
        snap: &Snapshot,
        frame: &FrameLayout,
        rows: &AxisIndex,
    ) -> Result<DataFrame> {
        match &frame.source {
            FrameSource::Default => Ok(DataFrame::from_index(self.frame_names(snap, frame, rows)?)),
            FrameSource::Memory(df) => df.subset_rows(rows),
            FrameSource::Group {
                path,
                index_key,
                index_name,
                index_na,
                columns,
            } => {
                let key = (snap.generation, frame.id, None);
                let index =
                    self.owned_column(key, rows, path, || read_index(snap, path, index_key))?;
                let Column::Array(index) = index else {
                    return Err(Error::malformed("the index is not an array").in_element(path));
                };
                let mut df = DataFrame::with_index(index)?;
                df.set_index_name(index_name.clone());
                df.set_index_string_na(*index_na).in_element(path)?;
                for (name, slot) in columns {
                    let element = join(path, name);
                    let cut = match slot {
                        ColumnSlot::Disk => {
                            let key = (snap.generation, frame.id, Some(name.clone()));
                            self.owned_column(key, rows, &element, || {
                                snap.file.read_frame_column(path, name)
                            })?
                        }
                        ColumnSlot::Memory(c) => c.subset(rows).in_element(&element)?,
                    };
                    df.insert(name.clone(), cut).in_element(&element)?;
                }
                Ok(df)
            }
        }
    }
}

/// The index of a frame stored as a group, as strings.
fn read_index(snap: &Snapshot, path: &str, index_key: &str) -> Result<Column> {
    let names = match snap.file.read_frame_index(path, index_key)? {
        a @ ArrayData::String(_) => a,
        other => ArrayData::from(other.to_python_strings()),
    };
    Ok(Column::Array(names))
}

/// An axis's names as a handle holds them ([`BackedAnnData::names`],
/// [`BackedCollection::names`]): the handle's own cached names when every name is selected
/// (no copy), else a copy of the selected ones. Derefs to `[CompactString]`.
///
/// [`BackedAnnData::names`]: super::BackedAnnData::names
/// [`BackedCollection::names`]: crate::BackedCollection::names
pub struct Names(NamesOf);

enum NamesOf {
    /// A frame's cached index, whole and in order.
    Index(Arc<Column>),
    /// Names cached as strings (a collection's), whole and in order.
    Held(Arc<Vec<CompactString>>),
    /// The selected names, copied.
    Picked(Vec<CompactString>),
}

impl Names {
    /// The names as a vector of their own.
    pub fn into_vec(self) -> Vec<CompactString> {
        match self.0 {
            NamesOf::Picked(names) => names,
            _ => self.to_vec(),
        }
    }

    /// Every name of `held`, without a copy.
    pub(crate) fn held(held: &Arc<Vec<CompactString>>) -> Names {
        Names(NamesOf::Held(Arc::clone(held)))
    }

    /// The names `picked` (a copy of those selected).
    pub(crate) fn picked(picked: Vec<CompactString>) -> Names {
        Names(NamesOf::Picked(picked))
    }
}

impl std::ops::Deref for Names {
    type Target = [CompactString];

    fn deref(&self) -> &[CompactString] {
        match &self.0 {
            // Built only from an index checked to be an array of strings (`held_names`): the
            // empty fallbacks are never taken.
            NamesOf::Index(c) => match &**c {
                Column::Array(a) => a.as_strings().unwrap_or_default(),
                _ => &[],
            },
            NamesOf::Held(names) => names,
            NamesOf::Picked(names) => names,
        }
    }
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Names({} names)", self.len())
    }
}

/// A string index as a slice.
fn string_index(a: &ArrayData) -> Result<&[CompactString]> {
    a.as_strings()
        .ok_or_else(|| Error::malformed("the index does not hold strings"))
}

impl Drop for Shared {
    fn drop(&mut self) {
        if self.mode == Mode::ReadWrite {
            if let Err(e) = self.flush(None) {
                eprintln!(
                    "annpage: could not write the pending changes back to {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}

/// About the bytes a layout holds in memory: the elements, frames and columns in its memory
/// slots.
fn memory_bytes(layout: &Layout) -> usize {
    let matrix = |slot: &MatrixSlot| match slot {
        MatrixSlot::Memory(m) => m.heap_bytes(),
        MatrixSlot::Disk(_) => 0,
    };
    let elements = |slots: &IndexMap<String, ElemSlot>| -> usize {
        slots
            .values()
            .map(|slot| match slot {
                ElemSlot::Memory(e) => e.heap_bytes(),
                ElemSlot::Disk { .. } => 0,
            })
            .sum()
    };
    let matrices =
        |slots: &IndexMap<String, MatrixSlot>| -> usize { slots.values().map(matrix).sum() };
    let frame = |f: &FrameLayout| match &f.source {
        FrameSource::Memory(df) => df.heap_bytes(),
        FrameSource::Group { columns, .. } => columns
            .values()
            .map(|c| match c {
                ColumnSlot::Memory(c) => c.heap_bytes(),
                ColumnSlot::Disk => 0,
            })
            .sum(),
        FrameSource::Default => 0,
    };
    let raw = layout
        .raw
        .as_ref()
        .map_or(0, |r| matrix(&r.x) + frame(&r.var) + elements(&r.varm));
    layout.x.as_ref().map_or(0, matrix)
        + frame(&layout.obs)
        + frame(&layout.var)
        + elements(&layout.obsm)
        + elements(&layout.varm)
        + elements(&layout.uns)
        + matrices(&layout.obsp)
        + matrices(&layout.varp)
        + matrices(&layout.layers)
        + raw
}
