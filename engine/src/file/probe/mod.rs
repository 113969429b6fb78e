//! What a file holds and where, found from metadata in one scan of its element tree.
//!
//! A [`Layout`] has one *slot* per element: either a place in the file (read when asked for)
//! or a value held in memory (the small annotations of legacy files, which need fixes that
//! move data between elements, and the pending changes of a handle that edits the file).
//! This is the one walk of a file's element tree: backed handles read their elements from its
//! slots, and [`super::read_h5ad`] reads every slot. It applies anndata's reading rules and the
//! shape checks of `AnnData::from_elements`, in the same order: the legacy `raw.*` members,
//! `raw` without `X`, the neighbour graphs kept in `uns['neighbors']`, the fixes of the oldest
//! layouts.

use std::sync::Arc;

use indexmap::IndexMap;

use super::join;
use crate::data::{DType, DataFrame, Mapping};
use crate::error::ResultExt;
use crate::format::read::{
    check_root, dataframe_index_na, dataframe_members, describe_matrix, read_dataframe,
    read_dataframe_index, read_mapping, take_neighbor_graphs, LegacyAnnotations, OBS_MULTICOL_KEYS,
    VAR_MULTICOL_KEYS,
};
use crate::format::read_encoding;
use crate::storage::{Group, MemberKind, StoredType};
use crate::{Error, Result};

mod layout;
pub use layout::{
    ColumnSlot, ElemSlot, FrameId, FrameLayout, FrameSource, Layout, MatrixMeta, MatrixSlot,
    RawLayout,
};

impl Layout {
    /// Scans the root of a file. Reads attributes and dataset headers only, except for legacy
    /// layouts: compound `obs`/`var` frames, and files whose annotations need anndata's legacy
    /// fixes, have `obs`, `var` and `uns` read in memory here (matrices stay on disk).
    pub(crate) fn scan(root: &dyn Group) -> Result<Layout> {
        check_root(root)?;
        let x = if root.contains("X")? {
            Some(MatrixSlot::Disk(matrix_meta(root, "X")?))
        } else {
            None
        };
        let legacy_frames = is_dataset(root, "obs");
        let mut obs = optional_frame(root, "obs", FrameId::Obs)?;
        let mut var = optional_frame(root, "var", FrameId::Var)?;
        let mut obsm = optional_slots(root, "obsm")?;
        let mut varm = optional_slots(root, "varm")?;
        let mut obsp = optional_matrix_slots(root, "obsp")?;
        let varp = optional_matrix_slots(root, "varp")?;
        let layers = optional_matrix_slots(root, "layers")?;
        let mut uns = optional_slots(root, "uns")?;

        let (n_obs, n_vars) = match &x {
            Some(m) => m.shape(),
            None => (
                obs.as_ref().map_or(0, |f| f.n_rows),
                var.as_ref().map_or(0, |f| f.n_rows),
            ),
        };
        let multicol = OBS_MULTICOL_KEYS
            .iter()
            .chain(VAR_MULTICOL_KEYS.iter())
            .any(|k| uns.contains_key(*k));
        let legacy_annotations = legacy_frames || multicol;
        if legacy_annotations {
            // anndata's fixes move data between obs, var, obsm, varm and uns: hold them in
            // memory and let the engine apply the very same fixes.
            let mut uns_values = read_mapping_slots(root, &uns)?;
            for (key, graph) in take_neighbor_graphs(&mut uns_values) {
                obsp.insert(key, MatrixSlot::Memory(Arc::new(graph)));
            }
            let mut annotations = LegacyAnnotations {
                obs: frame_in_memory(root, "obs", obs.as_ref(), n_obs)?,
                var: frame_in_memory(root, "var", var.as_ref(), n_vars)?,
                obsm: Mapping::new(),
                varm: Mapping::new(),
                uns: uns_values,
            };
            annotations.fix(legacy_frames)?;
            obs = Some(memory_frame(FrameId::Obs, annotations.obs));
            var = Some(memory_frame(FrameId::Var, annotations.var));
            for (key, value) in annotations.obsm {
                obsm.insert(key, ElemSlot::Memory(Arc::new(value)));
            }
            for (key, value) in annotations.varm {
                varm.insert(key, ElemSlot::Memory(Arc::new(value)));
            }
            uns = annotations
                .uns
                .into_iter()
                .map(|(k, v)| (k, ElemSlot::Memory(Arc::new(v))))
                .collect();
        } else {
            for (key, meta) in neighbor_graphs(root, &mut uns)? {
                obsp.insert(key, MatrixSlot::Disk(meta));
            }
        }

        let obs = obs.unwrap_or_else(|| default_frame(FrameId::Obs, n_obs));
        let var = var.unwrap_or_else(|| default_frame(FrameId::Var, n_vars));
        let raw = raw_layout(root, x.as_ref(), &var, &varm)?;
        let current =
            !legacy_annotations && root.string_attr("encoding-type")?.as_deref() == Some("anndata");
        let layout = Layout {
            n_obs,
            n_vars,
            x,
            obs,
            var,
            obsm,
            varm,
            obsp,
            varp,
            layers,
            uns,
            raw,
            current,
        };
        layout.check_shapes()?;
        Ok(layout)
    }

    /// The shape rules `AnnData::from_elements` checks, as far as metadata tells them.
    fn check_shapes(&self) -> Result<()> {
        let (n_obs, n_vars) = (self.n_obs, self.n_vars);
        let check = |what: &str, shape: (usize, usize), expected: (usize, usize), axes: &str| {
            if shape == expected {
                Ok(())
            } else {
                Err(Error::shape(format!(
                    "{what} has shape {shape:?}, {axes} is {expected:?}"
                )))
            }
        };
        if self.obs.n_rows != n_obs || self.var.n_rows != n_vars {
            let shape = self.x.as_ref().map_or((n_obs, n_vars), MatrixSlot::shape);
            return check("X", shape, (self.obs.n_rows, self.var.n_rows), "obs × var");
        }
        for (key, m) in &self.layers {
            check(
                &format!("layers['{key}']"),
                m.shape(),
                (n_obs, n_vars),
                "obs × var",
            )?;
        }
        for (key, m) in &self.obsp {
            check(
                &format!("obsp['{key}']"),
                m.shape(),
                (n_obs, n_obs),
                "obs × obs",
            )?;
        }
        for (key, m) in &self.varp {
            check(
                &format!("varp['{key}']"),
                m.shape(),
                (n_vars, n_vars),
                "var × var",
            )?;
        }
        if let Some(raw) = &self.raw {
            let (rows, cols) = raw.x.shape();
            if rows != n_obs {
                return Err(Error::shape(format!(
                    "raw.X has {rows} rows, obs has {n_obs}"
                )));
            }
            if cols != raw.var.n_rows {
                return Err(Error::shape(format!(
                    "raw.X has {cols} columns, raw.var has {} rows",
                    raw.var.n_rows
                )));
            }
        }
        Ok(())
    }
}

fn is_dataset(g: &dyn Group, name: &str) -> bool {
    matches!(g.member_kind(name), Ok(Some(MemberKind::Array)))
}

pub(crate) fn encoding_of(g: &dyn Group, name: &str) -> Result<Option<String>> {
    let read = || -> Result<Option<String>> {
        let found = match g.member_kind(name)? {
            Some(MemberKind::Array) => read_encoding(g.array(name)?.as_ref())?,
            _ => read_encoding(g.group(name)?.as_ref())?,
        };
        Ok(found.map(|(t, _)| t))
    };
    read().in_element(join(&g.path(), name))
}

/// Describes the matrix element `name` of `parent` from metadata only (see
/// [`describe_matrix`]).
pub(crate) fn matrix_meta(parent: &dyn Group, name: &str) -> Result<MatrixMeta> {
    let layout = describe_matrix(parent, name)?;
    Ok(MatrixMeta {
        parent: parent.path(),
        name: name.to_owned(),
        shape: layout.shape,
        dtype: layout.dtype,
        kind: layout.kind,
    })
}

pub(crate) fn looks_like_matrix(g: &dyn Group, name: &str) -> Result<bool> {
    let encoding = encoding_of(g, name)?;
    Ok(match g.member_kind(name)? {
        Some(MemberKind::Array) => {
            matches!(encoding.as_deref(), None | Some("array"))
                && !matches!(g.array(name)?.stored_type()?, StoredType::Compound { .. })
        }
        Some(MemberKind::Group) => match encoding.as_deref() {
            Some("csr_matrix" | "csc_matrix") => true,
            None => g.group(name)?.has_attr("h5sparse_format")?,
            Some(_) => false,
        },
        None => false,
    })
}

fn expect_mapping(parent: &dyn Group, name: &str) -> Result<Box<dyn Group>> {
    let path = join(&parent.path(), name);
    let check = || -> Result<Box<dyn Group>> {
        match encoding_of(parent, name)?.as_deref() {
            None | Some("dict") => {}
            Some(other) => {
                return Err(Error::UnexpectedEncoding {
                    encoding_type: other.to_owned(),
                    version: String::new(),
                    expected: "a dict",
                })
            }
        }
        parent.group(name)
    };
    check().in_element(path)
}

/// The entries of mapping `name` (`obsm`, `varm`, `uns`, `raw/varm`): one disk slot per member
/// of a group; a legacy compound dataset is read in memory.
fn optional_slots(parent: &dyn Group, name: &str) -> Result<IndexMap<String, ElemSlot>> {
    if !parent.contains(name)? {
        return Ok(IndexMap::new());
    }
    if is_dataset(parent, name) {
        return Ok(read_mapping(parent, name)?
            .into_iter()
            .map(|(k, v)| (k, ElemSlot::Memory(Arc::new(v))))
            .collect());
    }
    let g = expect_mapping(parent, name)?;
    let members = g.member_names().in_element(g.path())?;
    refuse_linked_datasets(g.as_ref(), &members)?;
    Ok(members
        .into_iter()
        .map(|k| {
            let slot = ElemSlot::Disk {
                parent: g.path(),
                name: k.clone(),
                skip: Vec::new(),
            };
            (k, slot)
        })
        .collect())
}

/// Refuses a dataset linked under two names of `g` (HDF5 hard links): each entry of a mapping
/// is read on its own, so a few KB of links to one large dataset would each read it again (a
/// walk refuses the same deeper down, see `format::walk`).
fn refuse_linked_datasets(g: &dyn Group, members: &[String]) -> Result<()> {
    let mut seen = std::collections::HashMap::new();
    for k in members.iter().filter(|k| is_dataset(g, k)) {
        let path = join(&g.path(), k);
        let Some(id) = g.array(k).and_then(|a| a.object_id()).in_element(&path)? else {
            continue;
        };
        if let Some(first) = seen.insert(id, k) {
            return Err(Error::malformed(format!(
                "is a link to the dataset {} (a dataset linked twice; an AnnData store is a \
                 tree)",
                join(&g.path(), first)
            ))
            .in_element(path));
        }
    }
    Ok(())
}

/// The matrices of mapping `name` (`layers`, `obsp`, `varp`), described from metadata.
fn optional_matrix_slots(parent: &dyn Group, name: &str) -> Result<IndexMap<String, MatrixSlot>> {
    if !parent.contains(name)? {
        return Ok(IndexMap::new());
    }
    let g = expect_mapping(parent, name)?;
    let members = g.member_names().in_element(g.path())?;
    members
        .into_iter()
        .map(|k| {
            if holds_strings(g.as_ref(), &k)? {
                // A layer of strings (anndata writes one for an object array): the chunk
                // manager pages numbers only, so it is read whole, its size checked first.
                let m = crate::format::read::read_matrix(g.as_ref(), &k)?;
                return Ok((k, MatrixSlot::Memory(Arc::new(m))));
            }
            let meta = matrix_meta(g.as_ref(), &k)?;
            Ok((k, MatrixSlot::Disk(meta)))
        })
        .collect()
}

/// Whether member `name` of `g` is an array of strings (`string-array`, or an `array` or
/// unencoded dataset of strings, as other writers leave them).
fn holds_strings(g: &dyn Group, name: &str) -> Result<bool> {
    if g.member_kind(name)? != Some(MemberKind::Array) {
        return Ok(false);
    }
    let encoding = encoding_of(g, name)?;
    Ok(match encoding.as_deref() {
        Some("string-array") => true,
        None | Some("array") => g.array(name)?.stored_type()?.dtype() == Some(DType::String),
        Some(_) => false,
    })
}

/// Reads every entry of a mapping's slots in memory.
fn read_mapping_slots(root: &dyn Group, slots: &IndexMap<String, ElemSlot>) -> Result<Mapping> {
    slots
        .iter()
        .map(|(k, slot)| {
            let value = match slot {
                ElemSlot::Memory(v) => (**v).clone(),
                ElemSlot::Disk { parent, name, .. } => {
                    let g = open_group(root, parent)?;
                    crate::format::read_element(g.as_ref(), name)?
                }
            };
            Ok((k.clone(), value))
        })
        .collect()
}

/// anndata moves 2-d `distances` / `connectivities` of `uns['neighbors']` to `obsp`: finds
/// them from metadata, marks them skipped in the `neighbors` slot and returns them.
fn neighbor_graphs(
    root: &dyn Group,
    uns: &mut IndexMap<String, ElemSlot>,
) -> Result<Vec<(String, MatrixMeta)>> {
    let Some(ElemSlot::Disk { parent, name, skip }) = uns.get_mut("neighbors") else {
        return Ok(Vec::new());
    };
    let uns_group = open_group(root, parent)?;
    if is_dataset(uns_group.as_ref(), name) {
        return Ok(Vec::new());
    }
    let g = uns_group.group(name).in_element(join(parent, name))?;
    let g = g.as_ref();
    // Only a dict (or unencoded group) is read as one.
    if !matches!(
        encoding_of(uns_group.as_ref(), name)?.as_deref(),
        None | Some("dict")
    ) {
        return Ok(Vec::new());
    }
    let mut graphs = Vec::new();
    for key in ["distances", "connectivities"] {
        if !g.contains(key)? || !looks_like_matrix(g, key)? {
            continue;
        }
        let movable = match g.member_kind(key)? {
            Some(MemberKind::Array) => {
                let ds = g.array(key)?;
                ds.shape()?.len() == 2
                    && !matches!(
                        ds.stored_type()?,
                        StoredType::VarString { .. } | StoredType::FixedString { .. }
                    )
            }
            _ => true,
        };
        if movable {
            graphs.push((key.to_owned(), matrix_meta(g, key)?));
            skip.push(key.to_owned());
        }
    }
    Ok(graphs)
}

fn default_frame(id: FrameId, n_rows: usize) -> FrameLayout {
    FrameLayout {
        id,
        n_rows,
        source: FrameSource::Default,
    }
}

fn memory_frame(id: FrameId, df: DataFrame) -> FrameLayout {
    FrameLayout {
        id,
        n_rows: df.nrows(),
        source: FrameSource::Memory(Arc::new(df)),
    }
}

/// The frame `name` of `parent`: read column by column from a `dataframe` group; a legacy
/// compound dataset (or anything else `read_dataframe` reads) is read in memory.
fn optional_frame(parent: &dyn Group, name: &str, id: FrameId) -> Result<Option<FrameLayout>> {
    if !parent.contains(name)? {
        return Ok(None);
    }
    let path = join(&parent.path(), name);
    let is_group = !is_dataset(parent, name);
    if is_group && encoding_of(parent, name)?.as_deref() == Some("dataframe") {
        let g = parent.group(name).in_element(&path)?;
        let (index_key, columns) = dataframe_members(g.as_ref()).in_element(&path)?;
        let n_rows = index_len(g.as_ref(), &index_key).in_element(join(&path, &index_key))?;
        let index_name = (index_key != "_index").then(|| index_key.clone());
        let index_na =
            dataframe_index_na(g.as_ref(), &index_key).in_element(join(&path, &index_key))?;
        return Ok(Some(FrameLayout {
            id,
            n_rows,
            source: FrameSource::Group {
                path,
                index_key,
                index_name,
                index_na,
                columns: columns.into_iter().map(|c| (c, ColumnSlot::Disk)).collect(),
            },
        }));
    }
    let df = with_string_index(read_dataframe(parent, name)?).in_element(&path)?;
    Ok(Some(memory_frame(id, df)))
}

/// The length of a frame's index, from its dataset's shape when it is a 1-d dataset (else by
/// reading it).
fn index_len(g: &dyn Group, key: &str) -> Result<usize> {
    if is_dataset(g, key) {
        if let [n] = g.array(key)?.shape()?[..] {
            return Ok(n);
        }
    }
    Ok(read_dataframe_index(g, key)?.len())
}

/// A frame read in memory (for the legacy fixes).
fn frame_in_memory(
    root: &dyn Group,
    name: &str,
    frame: Option<&FrameLayout>,
    n_rows: usize,
) -> Result<DataFrame> {
    match frame.map(|f| &f.source) {
        None | Some(FrameSource::Default) => Ok(DataFrame::with_default_index(n_rows)),
        Some(FrameSource::Memory(df)) => Ok((**df).clone()),
        Some(_) => with_string_index(read_dataframe(root, name)?).in_element(join("/", name)),
    }
}

/// The `raw` slot, as anndata finds it: a `/raw` group, or the legacy root members
/// `raw.X`, `raw.var`, `raw.varm`; a raw without `X` is a copy of the main `X`, `var` and
/// `varm`.
fn raw_layout(
    root: &dyn Group,
    x: Option<&MatrixSlot>,
    var: &FrameLayout,
    varm: &IndexMap<String, ElemSlot>,
) -> Result<Option<RawLayout>> {
    let legacy_names = root
        .member_names()?
        .into_iter()
        .any(|n| n.starts_with("raw."));
    type Parts = (
        Option<MatrixSlot>,
        Option<FrameLayout>,
        Option<IndexMap<String, ElemSlot>>,
    );
    let in_group = |g: &dyn Group, x: &str, var: &str, varm: &str| -> Result<Parts> {
        Ok((
            if g.contains(x)? {
                Some(MatrixSlot::Disk(matrix_meta(g, x)?))
            } else {
                None
            },
            optional_frame(g, var, FrameId::RawVar)?,
            if g.contains(varm)? {
                Some(optional_slots(g, varm)?)
            } else {
                None
            },
        ))
    };
    let mut parts: Parts = (None, None, None);
    // anndata writes a missing raw to Zarr as a `null` element.
    let null_raw = is_dataset(root, "raw") && encoding_of(root, "raw")?.as_deref() == Some("null");
    if root.contains("raw")? && !null_raw {
        if is_dataset(root, "raw") {
            return Err(Error::malformed("'raw' is a dataset, expected a group").in_element("/raw"));
        }
        let g = root.group("raw").in_element("/raw")?;
        parts = in_group(g.as_ref(), "X", "var", "varm")?;
        let any = parts.0.is_some() || parts.1.is_some() || parts.2.is_some();
        if legacy_names && any {
            return Err(Error::malformed(
                "the file has both a 'raw' group and legacy 'raw.*' members",
            )
            .in_element("/raw"));
        }
    }
    if parts.0.is_none() && parts.1.is_none() && parts.2.is_none() {
        if !root.contains("raw.X")? {
            return Ok(None);
        }
        parts = in_group(root, "raw.X", "raw.var", "raw.varm")?;
    }
    let (rx, rvar, rvarm) = parts;
    let Some(rx) = rx else {
        let x = x.cloned().ok_or_else(|| {
            Error::malformed("'raw' has no X and the file has no X to copy").in_element("/raw")
        })?;
        return Ok(Some(RawLayout {
            x,
            var: var.clone(),
            varm: varm.clone(),
        }));
    };
    let rvar = rvar.unwrap_or_else(|| default_frame(FrameId::RawVar, rx.shape().1));
    Ok(Some(RawLayout {
        x: rx,
        var: rvar,
        varm: rvarm.unwrap_or_default(),
    }))
}

/// A frame with a string index, as anndata gives `obs`, `var` and `raw.var`.
fn with_string_index(mut df: DataFrame) -> Result<DataFrame> {
    crate::format::legacy::index_as_strings(&mut df)?;
    Ok(df)
}

/// Opens the group at absolute `path` below `root`, one member at a time.
fn open_group(root: &dyn Group, path: &str) -> Result<Box<dyn Group>> {
    let open = || -> Result<Box<dyn Group>> {
        let mut names = path.split('/').filter(|n| !n.is_empty());
        let Some(first) = names.next() else {
            return Err(Error::invalid("the root is not a member"));
        };
        names.try_fold(root.group(first)?, |g, name| g.group(name))
    };
    open().in_element(path)
}
