//! Changes through a handle (kept in memory; a [`Mode::ReadWrite`] one writes them back: see
//! the [module docs](super#modifying-a-file) for why the whole file is copied and renamed).

use std::path::Path;
use std::sync::Arc;

use annpage_engine::data::{Column, DataFrame, Element, Matrix};
use annpage_engine::error::ResultExt;
use annpage_engine::file::copy::Part;
use annpage_engine::file::probe::{
    ColumnSlot, ElemSlot, FrameId, FrameLayout, FrameSource, Layout, MatrixSlot,
};
use annpage_engine::format::write::check_key;
use annpage_engine::{Error, Result};
use indexmap::IndexMap;

use super::{BackedAnnData, Mode};
use crate::Axis;

impl BackedAnnData {
    /// Fails unless this handle may take changes: not a view. (A [`Mode::Read`] handle keeps
    /// them in memory, as anndata's backed "r" mode; only [`BackedAnnData::flush`] needs
    /// [`Mode::ReadWrite`].)
    fn editable(&self, what: &str) -> Result<()> {
        if self.view {
            return Err(Error::invalid(format!(
                "cannot {what}: this is a view: change the handle of the whole file"
            ))
            .in_file(&self.shared.path));
        }
        Ok(())
    }

    /// Applies a change to the layout and marks `part` for writing back.
    fn edit(&self, part: Part, change: impl FnOnce(&mut Layout) -> Result<()>) -> Result<()> {
        let mut state = self.shared.write_state();
        let mut layout = (*state.snapshot.layout).clone();
        change(&mut layout).in_file(&self.shared.path)?;
        state.snapshot.layout = Arc::new(layout);
        state.dirty.insert(part);
        Ok(())
    }

    /// Adds or replaces a column of `obs` (as many values as the file has observations).
    /// A replaced column keeps its place; a new one goes last. Written back on
    /// [`BackedAnnData::flush`].
    ///
    /// ```no_run
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// use annpage::data::{ArrayData, Column};
    /// let adata = read_h5ad_backed("data.h5ad", Mode::ReadWrite, BackedOptions::default())?;
    /// let n = adata.n_obs();
    /// adata.insert_obs_column("batch", Column::Array(ArrayData::from(vec![1i64; n])))?;
    /// adata.flush()?;
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn insert_obs_column(&self, name: impl Into<String>, column: Column) -> Result<()> {
        self.insert_column(Axis::Obs, name.into(), column)
    }

    /// Adds or replaces a column of `var` (see [`BackedAnnData::insert_obs_column`]).
    pub fn insert_var_column(&self, name: impl Into<String>, column: Column) -> Result<()> {
        self.insert_column(Axis::Var, name.into(), column)
    }

    /// Removes a column of `obs`; fails if there is none of that name.
    pub fn remove_obs_column(&self, name: &str) -> Result<()> {
        self.remove_column(Axis::Obs, name)
    }

    /// Removes a column of `var`; fails if there is none of that name.
    pub fn remove_var_column(&self, name: &str) -> Result<()> {
        self.remove_column(Axis::Var, name)
    }

    /// Replaces `obs` as a whole: its index (the observation names), its columns and their
    /// order, as anndata's `adata.obs = df`. `df` must have one row per observation. Written
    /// back on [`BackedAnnData::flush`].
    ///
    /// ```no_run
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// let adata = read_h5ad_backed("data.h5ad", Mode::ReadWrite, BackedOptions::default())?;
    /// let mut obs = adata.obs()?;
    /// obs.remove("n_counts");
    /// adata.set_obs(obs)?;
    /// adata.flush()?;
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn set_obs(&self, df: DataFrame) -> Result<()> {
        self.set_frame(Axis::Obs, df)
    }

    /// Replaces `var` as a whole (see [`BackedAnnData::set_obs`]).
    pub fn set_var(&self, df: DataFrame) -> Result<()> {
        self.set_frame(Axis::Var, df)
    }

    fn set_frame(&self, on: Axis, mut df: DataFrame) -> Result<()> {
        let axis = on.name();
        self.editable(&format!("replace {axis}"))?;
        // As anndata: a non-string index becomes strings.
        crate::validate::string_index(&mut df).in_file(&self.shared.path)?;
        let (part, id) = frame_part(on);
        // A handle that may change the file is not a view: its names are the file's.
        let names = self.names(on)?;
        if df.nrows() != names.len() {
            return Err(Error::shape(format!(
                "a new {axis} has {} rows, the file has {}",
                df.nrows(),
                names.len()
            ))
            .in_file(&self.shared.path));
        }
        if Some(&*names) != df.index_names() {
            self.rename_aligned_frames(on, &df)?;
        }
        self.edit(part, |layout| {
            frame_mut(layout, on).source = FrameSource::Memory(Arc::new(df));
            Ok(())
        })?;
        let generation = self.shared.snapshot().generation;
        self.shared.forget_frame(generation, id);
        Ok(())
    }

    /// As anndata, data frames in `obsm` (`varm`) take the names of a new `obs` (`var`): each
    /// is read (only those whose encoding says they are frames) and held re-indexed.
    fn rename_aligned_frames(&self, on: Axis, df: &DataFrame) -> Result<()> {
        let snap = self.shared.snapshot();
        let (slots, part) = match on {
            Axis::Obs => (&snap.layout.obsm, Part::Obsm),
            Axis::Var => (&snap.layout.varm, Part::Varm),
        };
        let mut renamed = Vec::new();
        for (key, slot) in slots {
            let value = match slot {
                ElemSlot::Memory(value) => (**value).clone(),
                ElemSlot::Disk { parent, name, .. } => {
                    if snap.file.encoding(parent, name)?.as_deref() != Some("dataframe") {
                        continue;
                    }
                    snap.file.read_element(parent, name)?
                }
            };
            if let Element::DataFrame(mut frame) = value {
                if frame.nrows() != df.nrows() {
                    return Err(Error::shape(format!(
                        "{}['{key}'] has {} rows, not {}",
                        part.member(),
                        frame.nrows(),
                        df.nrows()
                    ))
                    .in_file(&self.shared.path));
                }
                frame.set_index(df.index().clone())?;
                frame.set_index_name(df.index_name().map(str::to_owned));
                renamed.push((key.clone(), Element::DataFrame(frame)));
            }
        }
        if renamed.is_empty() {
            return Ok(());
        }
        self.edit(part, |layout| {
            let slots = match on {
                Axis::Obs => &mut layout.obsm,
                Axis::Var => &mut layout.varm,
            };
            for (key, value) in renamed {
                slots.insert(key, ElemSlot::Memory(Arc::new(value)));
            }
            Ok(())
        })
    }

    fn insert_column(&self, on: Axis, name: String, column: Column) -> Result<()> {
        let axis = on.name();
        self.editable(&format!("insert column '{name}' into {axis}"))?;
        check_key(&name).in_file(&self.shared.path)?;
        column
            .check()
            .map_err(|why| Error::invalid(format!("column '{name}': {why}")))?;
        let (part, id) = frame_part(on);
        self.edit(part, |layout| {
            let frame = frame_mut(layout, on);
            if column.len() != frame.n_rows {
                return Err(Error::shape(format!(
                    "column '{name}' has {} values, {axis} has {} rows",
                    column.len(),
                    frame.n_rows
                )));
            }
            match &mut frame.source {
                FrameSource::Group {
                    index_key, columns, ..
                } => {
                    if name == *index_key || name == "_index" {
                        return Err(Error::invalid(format!(
                            "'{name}' names the index of {axis}, not a column"
                        )));
                    }
                    columns.insert(name.clone(), ColumnSlot::Memory(Arc::new(column)));
                }
                FrameSource::Memory(df) => Arc::make_mut(df).insert(name.clone(), column)?,
                FrameSource::Default => {
                    let mut df = DataFrame::with_default_index(frame.n_rows);
                    df.insert(name.clone(), column)?;
                    frame.source = FrameSource::Memory(Arc::new(df));
                }
            }
            Ok(())
        })?;
        self.forget(id, &name);
        Ok(())
    }

    fn remove_column(&self, on: Axis, name: &str) -> Result<()> {
        let axis = on.name();
        self.editable(&format!("remove column '{name}' from {axis}"))?;
        let (part, id) = frame_part(on);
        self.edit(part, |layout| {
            let frame = frame_mut(layout, on);
            let removed = match &mut frame.source {
                FrameSource::Group { columns, .. } => columns.shift_remove(name).is_some(),
                FrameSource::Memory(df) => Arc::make_mut(df).remove(name).is_some(),
                FrameSource::Default => false,
            };
            if removed {
                Ok(())
            } else {
                Err(Error::invalid(format!("{axis} has no column '{name}'")))
            }
        })?;
        self.forget(id, name);
        Ok(())
    }

    fn forget(&self, id: FrameId, name: &str) {
        let generation = self.shared.snapshot().generation;
        self.shared.forget_column(generation, id, name);
    }

    /// Adds or replaces an entry of `uns`.
    pub fn insert_uns(&self, key: impl Into<String>, value: Element) -> Result<()> {
        let key = key.into();
        self.editable(&format!("insert uns['{key}']"))?;
        check_key(&key).in_file(&self.shared.path)?;
        self.edit(Part::Uns, |layout| {
            layout.uns.insert(key, ElemSlot::Memory(Arc::new(value)));
            Ok(())
        })
    }

    /// Removes an entry of `uns`; fails if there is none of that name.
    pub fn remove_uns(&self, key: &str) -> Result<()> {
        self.editable(&format!("remove uns['{key}']"))?;
        self.edit(Part::Uns, |layout| remove_key(&mut layout.uns, "uns", key))
    }

    /// Adds or replaces an `obsm` entry, which must have one row per observation. As in
    /// [`crate::AnnData::insert_obsm`], a 1-d array is stored as one column and a data frame
    /// must be indexed by the observation names.
    pub fn insert_obsm(&self, key: impl Into<String>, value: Element) -> Result<()> {
        self.insert_aligned(Axis::Obs, key.into(), value)
    }

    /// Adds or replaces a `varm` entry (see [`BackedAnnData::insert_obsm`]).
    pub fn insert_varm(&self, key: impl Into<String>, value: Element) -> Result<()> {
        self.insert_aligned(Axis::Var, key.into(), value)
    }

    /// Removes an `obsm` entry; fails if there is none of that name.
    pub fn remove_obsm(&self, key: &str) -> Result<()> {
        self.editable(&format!("remove obsm['{key}']"))?;
        self.edit(Part::Obsm, |layout| {
            remove_key(&mut layout.obsm, "obsm", key)
        })
    }

    /// Removes a `varm` entry; fails if there is none of that name.
    pub fn remove_varm(&self, key: &str) -> Result<()> {
        self.editable(&format!("remove varm['{key}']"))?;
        self.edit(Part::Varm, |layout| {
            remove_key(&mut layout.varm, "varm", key)
        })
    }

    fn insert_aligned(&self, on: Axis, key: String, value: Element) -> Result<()> {
        let name = match on {
            Axis::Obs => "obsm",
            Axis::Var => "varm",
        };
        self.editable(&format!("insert {name}['{key}']"))?;
        check_key(&key).in_file(&self.shared.path)?;
        let snap = self.shared.snapshot();
        let value = self
            .aligned(&snap, &format!("{name}['{key}']"), on, value)
            .in_file(&self.shared.path)?;
        let part = match on {
            Axis::Obs => Part::Obsm,
            Axis::Var => Part::Varm,
        };
        self.edit(part, |layout| {
            let slots = match on {
                Axis::Obs => &mut layout.obsm,
                Axis::Var => &mut layout.varm,
            };
            slots.insert(key, ElemSlot::Memory(Arc::new(value)));
            Ok(())
        })
    }

    /// Adds or replaces a layer, which must be `n_obs × n_vars`.
    pub fn insert_layer(&self, key: impl Into<String>, value: Matrix) -> Result<()> {
        let key = key.into();
        self.editable(&format!("insert layer '{key}'"))?;
        check_key(&key).in_file(&self.shared.path)?;
        crate::validate::check_matrix(
            &format!("layers['{key}']"),
            &value,
            self.shape(),
            "obs × var",
        )
        .in_file(&self.shared.path)?;
        self.edit(Part::Layers, |layout| {
            layout
                .layers
                .insert(key, MatrixSlot::Memory(Arc::new(value)));
            Ok(())
        })
    }

    /// Adds or replaces an `obsp` entry, which must be `n_obs × n_obs`.
    pub fn insert_obsp(&self, key: impl Into<String>, value: Matrix) -> Result<()> {
        self.insert_pairwise(Axis::Obs, key.into(), value)
    }

    /// Adds or replaces a `varp` entry, which must be `n_vars × n_vars`.
    pub fn insert_varp(&self, key: impl Into<String>, value: Matrix) -> Result<()> {
        self.insert_pairwise(Axis::Var, key.into(), value)
    }

    /// Removes an `obsp` entry; fails if there is none of that name.
    pub fn remove_obsp(&self, key: &str) -> Result<()> {
        self.editable(&format!("remove obsp['{key}']"))?;
        self.edit(Part::Obsp, |layout| {
            remove_key(&mut layout.obsp, "obsp", key)
        })
    }

    /// Removes a `varp` entry; fails if there is none of that name.
    pub fn remove_varp(&self, key: &str) -> Result<()> {
        self.editable(&format!("remove varp['{key}']"))?;
        self.edit(Part::Varp, |layout| {
            remove_key(&mut layout.varp, "varp", key)
        })
    }

    fn insert_pairwise(&self, on: Axis, key: String, value: Matrix) -> Result<()> {
        let (name, part, n) = match on {
            Axis::Obs => ("obsp", Part::Obsp, self.n_obs()),
            Axis::Var => ("varp", Part::Varp, self.n_vars()),
        };
        self.editable(&format!("insert {name}['{key}']"))?;
        check_key(&key).in_file(&self.shared.path)?;
        let shape = format!("{0} × {0}", on.name());
        crate::validate::check_matrix(&format!("{name}['{key}']"), &value, (n, n), &shape)
            .in_file(&self.shared.path)?;
        self.edit(part, |layout| {
            let slots = match on {
                Axis::Obs => &mut layout.obsp,
                Axis::Var => &mut layout.varp,
            };
            slots.insert(key, MatrixSlot::Memory(Arc::new(value)));
            Ok(())
        })
    }

    /// Removes a layer; fails if there is none of that name.
    pub fn remove_layer(&self, key: &str) -> Result<()> {
        self.editable(&format!("remove layer '{key}'"))?;
        self.edit(Part::Layers, |layout| {
            remove_key(&mut layout.layers, "layers", key)
        })
    }

    /// Writes the pending changes to the file (nothing to do if there are none). Every clone
    /// of the handle then reads the new file.
    ///
    /// The file is rewritten beside itself and renamed into place (see the
    /// [module docs](super#modifying-a-file)); new elements are written without compression.
    /// On error the file is left as it was and the changes stay pending.
    pub fn flush(&self) -> Result<()> {
        self.check_writable()?;
        self.shared.flush(None)
    }

    /// [`BackedAnnData::flush`], running `finish` on the new file (written and closed) before
    /// it is synced and renamed over the old one: to add elements annpage does not write
    /// itself. The file is rewritten even without pending changes, so `finish` always runs.
    /// An error from `finish` leaves the file as it was and the changes pending.
    ///
    /// ```no_run
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// let adata = read_h5ad_backed("data.h5ad", Mode::ReadWrite, BackedOptions::default())?;
    /// adata.remove_obs_column("n_counts")?;
    /// adata.flush_with(|new_file| {
    ///     // e.g. open `new_file` with another HDF5 writer and add an element
    ///     assert!(new_file.exists());
    ///     Ok(())
    /// })?;
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn flush_with(&self, mut finish: impl FnMut(&Path) -> Result<()>) -> Result<()> {
        self.check_writable()?;
        self.shared.flush(Some(&mut finish))
    }

    fn check_writable(&self) -> Result<()> {
        if self.shared.mode == Mode::Read {
            return Err(
                Error::invalid("cannot flush: the file is open read-only (Mode::Read)")
                    .in_file(&self.shared.path),
            );
        }
        Ok(())
    }

    /// Forgets the pending changes: every clone of the handle reads the file as it is again,
    /// and nothing is written on drop.
    pub fn discard_changes(&self) -> Result<()> {
        self.shared.discard()
    }

    /// Whether changes are waiting for [`BackedAnnData::flush`].
    pub fn has_pending_changes(&self) -> bool {
        !self.shared.read_state().dirty.is_empty()
    }
}

fn frame_part(on: Axis) -> (Part, FrameId) {
    match on {
        Axis::Obs => (Part::Obs, FrameId::Obs),
        Axis::Var => (Part::Var, FrameId::Var),
    }
}

fn frame_mut(layout: &mut Layout, on: Axis) -> &mut FrameLayout {
    match on {
        Axis::Obs => &mut layout.obs,
        Axis::Var => &mut layout.var,
    }
}

fn remove_key<T>(map: &mut IndexMap<String, T>, name: &str, key: &str) -> Result<()> {
    match map.shift_remove(key) {
        Some(_) => Ok(()),
        None => Err(Error::invalid(format!("{name} has no key '{key}'"))),
    }
}
