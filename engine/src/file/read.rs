//! Reading a whole file into memory from its [`Layout`]: the one walk of the element tree
//! ([`Layout::scan`]) decides what each element is and where, and every slot is then read.

use std::path::Path;

use indexmap::IndexMap;

use super::probe::{ElemSlot, FrameLayout, FrameSource, MatrixSlot};
use super::{File, Layout};
use crate::data::{DataFrame, Mapping, Matrix};
use crate::error::ResultExt;
use crate::format::{legacy, AnnDataElements, RawElements};
use crate::Result;

/// Reads a whole `.h5ad` file into memory (opened read-only).
///
/// Current and legacy layouts are accepted, and the fixes anndata applies on reading are
/// applied too: string obs/var indexes, legacy `raw.X`/`raw.var`/`raw.varm`, categories kept in
/// `uns`, adjacency matrices in `uns['neighbors']` moved to `obsp`, 1-d `obsm`/`varm` arrays
/// as columns. Every error names the file and, when it concerns one, the element.
///
/// ```
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/all_elements.h5ad");
/// let elems = annpage_engine::file::read_h5ad(path)?;
/// assert_eq!(elems.obs.nrows(), 40);
/// # Ok::<(), annpage_engine::Error>(())
/// ```
pub fn read_h5ad(path: impl AsRef<Path>) -> Result<AnnDataElements> {
    let file = File::open(path)?;
    let root = file.root();
    crate::format::walk::within(root, || {
        let layout = Layout::scan(root)?;
        materialise(&file, &layout)
    })
    .in_file(file.path())
}

/// Every slot of `layout` read from `file`.
fn materialise(file: &File, layout: &Layout) -> Result<AnnDataElements> {
    let matrices = |slots: &IndexMap<String, MatrixSlot>| -> Result<IndexMap<String, Matrix>> {
        slots
            .iter()
            .map(|(k, slot)| Ok((k.clone(), matrix(file, slot)?)))
            .collect()
    };
    let mut obsm = mapping(file, &layout.obsm)?;
    let mut varm = mapping(file, &layout.varm)?;
    legacy::vectors_as_columns(&mut obsm);
    legacy::vectors_as_columns(&mut varm);
    let raw = match &layout.raw {
        None => None,
        Some(raw) => {
            let mut varm = mapping(file, &raw.varm)?;
            legacy::vectors_as_columns(&mut varm);
            Some(RawElements {
                x: matrix(file, &raw.x)?,
                var: frame(file, &raw.var)?,
                varm,
            })
        }
    };
    Ok(AnnDataElements {
        x: layout.x.as_ref().map(|x| matrix(file, x)).transpose()?,
        obs: frame(file, &layout.obs)?,
        var: frame(file, &layout.var)?,
        obsm,
        varm,
        obsp: matrices(&layout.obsp)?,
        varp: matrices(&layout.varp)?,
        layers: matrices(&layout.layers)?,
        uns: mapping(file, &layout.uns)?,
        raw,
    })
}

fn matrix(file: &File, slot: &MatrixSlot) -> Result<Matrix> {
    match slot {
        MatrixSlot::Disk(meta) => file.read_matrix(&meta.parent, &meta.name),
        MatrixSlot::Memory(m) => Ok((**m).clone()),
    }
}

fn mapping(file: &File, slots: &IndexMap<String, ElemSlot>) -> Result<Mapping> {
    slots
        .iter()
        .map(|(k, slot)| {
            let value = match slot {
                ElemSlot::Disk { parent, name, skip } => {
                    file.read_mapping_without(parent, name, skip)?
                }
                ElemSlot::Memory(e) => (**e).clone(),
            };
            Ok((k.clone(), value))
        })
        .collect()
}

/// A frame with a string index, as anndata gives `obs`, `var` and `raw.var`.
/// (The probe gives the frames it holds in memory a string index already.)
fn frame(file: &File, frame: &FrameLayout) -> Result<DataFrame> {
    match &frame.source {
        FrameSource::Default => Ok(DataFrame::with_default_index(frame.n_rows)),
        FrameSource::Memory(df) => Ok((**df).clone()),
        FrameSource::Group { path, .. } => {
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            let parent = if parent.is_empty() { "/" } else { parent };
            let mut df = file.read_frame(parent, name)?;
            legacy::index_as_strings(&mut df).in_element(path)?;
            Ok(df)
        }
    }
}
