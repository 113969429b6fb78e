//! Writing an open file anew with some of its root members changed: the members that did not
//! change are copied object by object (datasets keep their storage, filters and attributes),
//! the changed ones written from their [`Layout`] slots.

use std::collections::BTreeSet;

use hdf5::{Group, LocationType};
use indexmap::IndexMap;

use super::probe::{ColumnSlot, ElemSlot, FrameLayout, FrameSource, MatrixSlot};
use super::{join, File, Layout};
use crate::data::{ArrayData, Column, DType, DataFrame, Element};
use crate::error::ResultExt;
use crate::format::write::staging::Staged;
use crate::format::write::{
    write_dataframe, write_element, write_mapping, write_matrix, write_matrix_mapping,
};
use crate::format::WriteOptions;
use crate::storage::h5::read::read_attrs;
use crate::storage::h5::write::write_attrs;
use crate::{Error, Result};

/// A root member that a change to a [`Layout`] rewrites whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// `obs`.
    Obs,
    /// `var`.
    Var,
    /// `obsm`.
    Obsm,
    /// `varm`.
    Varm,
    /// `layers`.
    Layers,
    /// `obsp`.
    Obsp,
    /// `varp`.
    Varp,
    /// `uns`.
    Uns,
}

impl Part {
    /// Every part, in the order they are written.
    pub const ALL: [Part; 8] = [
        Part::Obs,
        Part::Var,
        Part::Obsm,
        Part::Varm,
        Part::Layers,
        Part::Obsp,
        Part::Varp,
        Part::Uns,
    ];

    /// The root member the part is stored in.
    pub fn member(self) -> &'static str {
        match self {
            Part::Obs => "obs",
            Part::Var => "var",
            Part::Obsm => "obsm",
            Part::Varm => "varm",
            Part::Layers => "layers",
            Part::Obsp => "obsp",
            Part::Varp => "varp",
            Part::Uns => "uns",
        }
    }
}

/// A step run on a rewritten file before it replaces the old one (see [`rewrite`]).
pub type Finish<'a> = dyn FnMut(&std::path::Path) -> Result<()> + 'a;

/// Writes `file` with `layout`'s `changed` parts in place of its own: to a file beside it,
/// then renamed over it (fsynced), and opens and probes the result. `finish` runs on the
/// written file, closed, before it is synced and renamed (to add what annpage does not write
/// itself); its error leaves the file as it was. `file` must be in the current layout (see
/// [`Layout::current`]). Errors name the file.
pub fn rewrite(
    file: &File,
    layout: &Layout,
    changed: &BTreeSet<Part>,
    finish: &mut Finish<'_>,
) -> Result<(File, Layout)> {
    // Written where the file is, whatever the working directory has become since.
    let (path, at) = (file.path(), file.location());
    file.check_unchanged()?;
    let mut write = || -> Result<()> {
        let staged = Staged::beside(at)?;
        write_copy(file.h5()?, layout, changed, staged.path())?;
        finish(staged.path())?;
        staged.commit(at)
    };
    write().in_file(path)?;
    let file = File::open(at)?;
    let layout = file.probe()?;
    Ok((file, layout))
}

fn write_copy(
    src: &hdf5::File,
    layout: &Layout,
    changed: &BTreeSet<Part>,
    target: &std::path::Path,
) -> Result<()> {
    let out = crate::storage::h5::create(target)?;
    write_attrs(&out, &read_attrs(src)?).in_element("/")?;
    let members = src.member_names()?;
    for name in &members {
        match Part::ALL
            .iter()
            .find(|p| p.member() == name && changed.contains(p))
        {
            Some(&part) => write_part(src, &out, part, layout)?,
            None => copy_member(src, name, &out).in_element(format!("/{name}"))?,
        }
    }
    for &part in changed {
        if !members.iter().any(|m| m == part.member()) {
            write_part(src, &out, part, layout)?;
        }
    }
    out.close()?;
    Ok(())
}

/// Writes one changed root member.
fn write_part(src: &Group, out: &Group, part: Part, layout: &Layout) -> Result<()> {
    let options = WriteOptions::default();
    let name = part.member();
    match part {
        Part::Obs => write_frame(src, out, name, &layout.obs, &options),
        Part::Var => write_frame(src, out, name, &layout.var, &options),
        Part::Obsm | Part::Varm | Part::Uns => {
            let slots = match part {
                Part::Obsm => &layout.obsm,
                Part::Varm => &layout.varm,
                _ => &layout.uns,
            };
            write_mapping(out, name, &Default::default(), &options)?;
            let g = out.group(name).in_element(format!("/{name}"))?;
            for (key, slot) in slots {
                match slot {
                    ElemSlot::Disk { parent, name, .. } => {
                        let from = src.group(parent).in_element(parent.as_str())?;
                        copy_member(&from, name, &g).in_element(join(parent, name))?;
                    }
                    ElemSlot::Memory(value) => write_element(&g, key, value, &options)?,
                }
            }
            Ok(())
        }
        Part::Layers | Part::Obsp | Part::Varp => {
            let slots = match part {
                Part::Layers => &layout.layers,
                Part::Obsp => &layout.obsp,
                _ => &layout.varp,
            };
            write_matrix_mapping(out, name, &IndexMap::new(), &options)?;
            let g = out.group(name).in_element(format!("/{name}"))?;
            for (key, slot) in slots {
                match slot {
                    MatrixSlot::Disk(meta) => {
                        let from = src.group(&meta.parent).in_element(meta.parent.as_str())?;
                        copy_member(&from, &meta.name, &g).in_element(meta.path())?;
                    }
                    MatrixSlot::Memory(m) => write_matrix(&g, key, m, &options)?,
                }
            }
            Ok(())
        }
    }
}

/// Writes a changed frame: a frame read column by column keeps its attributes (with a new
/// `column-order`) and its unchanged members, copied; new columns are written.
fn write_frame(
    src: &Group,
    out: &Group,
    name: &str,
    frame: &FrameLayout,
    options: &WriteOptions,
) -> Result<()> {
    match &frame.source {
        FrameSource::Default => write_dataframe(
            out,
            name,
            &DataFrame::with_default_index(frame.n_rows),
            options,
        ),
        FrameSource::Memory(df) => write_dataframe(out, name, df, options),
        FrameSource::Group {
            path,
            index_key,
            columns,
            ..
        } => {
            let write = || -> Result<()> {
                let old = src.group(path)?;
                let g = out.create_group(name)?;
                let mut attrs = read_attrs(&old)?;
                let order = if columns.is_empty() {
                    ArrayData::zeros(DType::F64, &[0])
                } else {
                    ArrayData::from(columns.keys().cloned().collect::<Vec<String>>())
                };
                attrs.insert("column-order".to_owned(), order);
                write_attrs(&g, &attrs)?;
                copy_member(&old, index_key, &g)?;
                for (column, slot) in columns {
                    match slot {
                        ColumnSlot::Disk if column == index_key => {}
                        ColumnSlot::Disk => copy_member(&old, column, &g)?,
                        ColumnSlot::Memory(c) => {
                            write_element(&g, column, &column_element(c), options)?
                        }
                    }
                }
                Ok(())
            };
            write().in_element(format!("/{name}"))
        }
    }
}

fn column_element(c: &Column) -> Element {
    match c {
        Column::Array(a) => Element::Array(a.clone()),
        Column::Categorical(cat) => Element::Categorical(cat.clone()),
        Column::Nullable(n) => Element::Nullable(n.clone()),
    }
}

/// Copies member `name` of `src` into `dst` with HDF5's object copy (datasets keep their
/// storage, filters and attributes; groups their whole tree).
fn copy_member(src: &Group, name: &str, dst: &Group) -> Result<()> {
    match src.loc_type_by_name(name)? {
        LocationType::Group => src.group(name)?.copy_to(dst, name)?,
        LocationType::Dataset => src.dataset(name)?.copy_to(dst, name)?,
        #[allow(unreachable_patterns)]
        _ => {
            return Err(Error::unsupported(format!(
                "copying '{name}', which is neither a group nor a dataset"
            )))
        }
    }
    Ok(())
}
