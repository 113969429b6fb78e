//! Describing a file's element tree from metadata alone (what `annpage info` prints).
//!
//! Nothing here reads array data: only attributes, shapes, dtypes and storage layouts, so
//! describing a file of any size takes milliseconds.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::File;
use crate::error::ResultExt;
use crate::format::Encoding;
use crate::paged::ReadOptions;
use crate::storage::{Array, Group, MemberKind, Node, StoredType};
use crate::Result;

/// How an element's bytes are laid out on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Storage {
    /// `contiguous`, `chunked`, `compact` or `sharded`.
    pub layout: &'static str,
    /// The chunk shape of a chunked dataset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk: Option<Vec<usize>>,
    /// The filter pipeline, e.g. `["gzip(4)"]`.
    pub filters: Vec<String>,
    /// How backed mode reads a numeric dataset's blocks, e.g. `direct (gzip, 2 threads)` or
    /// `libhdf5 (filter nbit is decoded by libhdf5)` (see [`crate::paged::ReadPath`]);
    /// `None` for other datasets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_path: Option<String>,
}

/// One element of the tree: its path, encoding, dtype, shape and members. Serialises to the
/// JSON `annpage info --json` prints (absent fields left out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ElementInfo {
    /// Path inside the file, e.g. `/obsm/X_pca`.
    pub path: String,
    /// `encoding-type encoding-version` as found, or the inferred kind for legacy elements
    /// (`legacy group`, `legacy dataset`).
    pub encoding: String,
    /// Element dtype (the `data` member's for sparse matrices, the codes' categories for
    /// categoricals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// Shape (the `shape` attribute for sparse matrices).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<usize>>,
    /// Stored values of a sparse matrix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nnz: Option<usize>,
    /// Storage of the element's main dataset (`data` for sparse matrices).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    /// Members of groups that hold other elements (root, dict, dataframe, raw).
    pub children: Vec<ElementInfo>,
}

/// Describes every element of a file (or store), reading metadata only.
///
/// Any error names the file and the element it concerns.
pub fn describe(path: impl AsRef<Path>) -> Result<ElementInfo> {
    let path = path.as_ref();
    let file = File::open(path)?;
    let options = ReadOptions::default();
    describe_group(file.root(), "/", &options).in_file(path)
}

/// A string attribute, if the node has one that is a string.
fn string_attr(node: &dyn Node, name: &str) -> Option<String> {
    node.string_attr(name).ok().flatten()
}

fn encoding_of(node: &dyn Node) -> Option<(String, String)> {
    let ty = string_attr(node, "encoding-type")?;
    let ver = string_attr(node, "encoding-version").unwrap_or_default();
    Some((ty, ver))
}

fn dtype_name(array: &dyn Array) -> Option<String> {
    Some(match array.stored_type().ok()? {
        StoredType::VarString { .. } => "str".into(),
        StoredType::FixedString { size } => format!("bytes{size}"),
        other => other.describe(),
    })
}

fn storage_of(array: &dyn Array, options: &ReadOptions) -> Option<Storage> {
    let stored = array.storage().ok()?;
    Some(Storage {
        layout: stored.layout,
        chunk: stored.chunk,
        filters: stored.filters,
        read_path: read_path_of(array, options),
    })
}

/// The read path backed mode takes for a numeric array (indexing its chunks, no data).
fn read_path_of(array: &dyn Array, options: &ReadOptions) -> Option<String> {
    let numeric = array
        .stored_type()
        .ok()?
        .dtype()
        .is_some_and(|d| d != crate::data::DType::String);
    if !numeric {
        return None;
    }
    Some(match crate::paged::describe_read_path(array, options) {
        Ok(path) => path.to_string(),
        Err(e) => format!("unreadable: {e}"),
    })
}

fn describe_array(array: &dyn Array, path: String, options: &ReadOptions) -> ElementInfo {
    let encoding = encoding_of(array)
        .map(|(t, v)| format!("{t} {v}"))
        .unwrap_or_else(|| "legacy dataset".into());
    ElementInfo {
        path,
        encoding,
        dtype: dtype_name(array),
        shape: array.shape().ok(),
        nnz: None,
        storage: storage_of(array, options),
        children: Vec::new(),
    }
}

fn describe_member(
    group: &dyn Group,
    parent: &str,
    name: &str,
    options: &ReadOptions,
) -> Result<ElementInfo> {
    let path = crate::storage::join_path(parent, name);
    match group.member_kind(name).in_element(&path)? {
        Some(MemberKind::Array) => Ok(describe_array(
            group.array(name).in_element(&path)?.as_ref(),
            path,
            options,
        )),
        Some(MemberKind::Group) => describe_group(
            group.group(name).in_element(&path)?.as_ref(),
            &path,
            options,
        ),
        None => Ok(ElementInfo {
            path,
            encoding: "missing".into(),
            dtype: None,
            shape: None,
            nnz: None,
            storage: None,
            children: Vec::new(),
        }),
    }
}

fn sorted_members(group: &dyn Group) -> Result<Vec<String>> {
    let mut names = group.member_names()?;
    names.sort();
    Ok(names)
}

fn describe_group(group: &dyn Group, path: &str, options: &ReadOptions) -> Result<ElementInfo> {
    // A group linked from two places (readers take it; anndata too) is described once, and
    // shown as a link where it is reached again: a cycle of links is then no error either.
    if let Some(first) = crate::format::walk::entered_at(group).in_element(path)? {
        return Ok(ElementInfo {
            path: path.to_owned(),
            encoding: format!("link to {first}"),
            dtype: None,
            shape: None,
            nnz: None,
            storage: None,
            children: Vec::new(),
        });
    }
    crate::format::walk::within(group, || describe_group_unguarded(group, path, options))
}

fn describe_group_unguarded(
    group: &dyn Group,
    path: &str,
    options: &ReadOptions,
) -> Result<ElementInfo> {
    let enc = encoding_of(group);
    let mut info = ElementInfo {
        path: path.to_owned(),
        encoding: enc
            .as_ref()
            .map(|(t, v)| format!("{t} {v}"))
            .unwrap_or_else(|| "legacy group".into()),
        dtype: None,
        shape: None,
        nnz: None,
        storage: None,
        children: Vec::new(),
    };
    let kind = enc.as_ref().and_then(|(t, _)| Encoding::parse(t));
    let sparse_legacy = string_attr(group, "h5sparse_format").is_some();
    match kind {
        Some(Encoding::CsrMatrix | Encoding::CscMatrix) => {
            describe_sparse(group, &mut info, options)
        }
        _ if sparse_legacy => describe_sparse(group, &mut info, options),
        Some(Encoding::Categorical) => {
            if let Ok(codes) = group.array("codes") {
                info.shape = codes.shape().ok();
            }
            if let Ok(cats) = group.array("categories") {
                info.dtype = dtype_name(cats.as_ref()).map(|d| format!("category[{d}]"));
            }
        }
        Some(
            Encoding::NullableInteger | Encoding::NullableBoolean | Encoding::NullableStringArray,
        ) => {
            if let Ok(values) = group.array("values") {
                info.shape = values.shape().ok();
                info.dtype = dtype_name(values.as_ref()).map(|d| format!("nullable {d}"));
            }
        }
        Some(Encoding::AwkwardArray) | Some(Encoding::RecArray) => {}
        Some(Encoding::DataFrame) => {
            // Index first, then the columns in their declared order (members otherwise).
            for name in sorted_members(group).in_element(path)? {
                info.children
                    .push(describe_member(group, path, &name, options)?);
            }
            let rows = info
                .children
                .iter()
                .find(|c| c.path.ends_with("/_index"))
                .or(info.children.first())
                .and_then(|c| c.shape.as_ref())
                .and_then(|s| s.first().copied());
            info.shape = rows.map(|r| vec![r, info.children.len().saturating_sub(1)]);
        }
        _ => {
            for name in sorted_members(group).in_element(path)? {
                info.children
                    .push(describe_member(group, path, &name, options)?);
            }
        }
    }
    Ok(info)
}

fn describe_sparse(group: &dyn Group, info: &mut ElementInfo, options: &ReadOptions) {
    let shape = crate::format::read::sparse_shape(group).ok();
    info.shape = shape.map(|(rows, cols)| vec![rows, cols]);
    if let Ok(data) = group.array("data") {
        info.dtype = dtype_name(data.as_ref());
        info.nnz = data.shape().ok().and_then(|s| s.first().copied());
        info.storage = storage_of(data.as_ref(), options);
    }
    if info.encoding == "legacy group" {
        if let Some(fmt) = string_attr(group, "h5sparse_format") {
            info.encoding = format!("legacy {fmt}_matrix");
        }
    }
}

impl ElementInfo {
    /// A human-readable tree, one element a line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out, 0);
        out
    }

    fn write_text(&self, out: &mut String, depth: usize) {
        let name = if depth == 0 {
            "/".to_string()
        } else {
            shown(self.path.rsplit('/').next().unwrap_or_default())
        };
        let _ = write!(
            out,
            "{}{:<w$} {}",
            "  ".repeat(depth),
            name,
            shown(&self.encoding),
            w = 24usize.saturating_sub(2 * depth)
        );
        if let Some(d) = &self.dtype {
            let _ = write!(out, "  {d}");
        }
        if let Some(s) = &self.shape {
            let dims: Vec<String> = s.iter().map(|d| d.to_string()).collect();
            let _ = write!(out, "  ({})", dims.join(" × "));
        }
        if let Some(n) = self.nnz {
            let _ = write!(out, "  nnz={n}");
        }
        if let Some(st) = &self.storage {
            let _ = write!(out, "  {}", st.layout);
            if let Some(c) = &st.chunk {
                let dims: Vec<String> = c.iter().map(|d| d.to_string()).collect();
                let _ = write!(out, "[{}]", dims.join("×"));
            }
            if !st.filters.is_empty() {
                let _ = write!(out, " {}", shown(&st.filters.join("+")));
            }
            if let Some(p) = &st.read_path {
                let _ = write!(out, "  read: {}", shown(p));
            }
        }
        out.push('\n');
        for c in &self.children {
            c.write_text(out, depth + 1);
        }
    }
}

/// Text from the file as the tree shows it: as it is, or quoted with its control characters
/// escaped (a name may hold a terminal's escape sequences or line breaks).
fn shown(text: &str) -> String {
    if text.chars().any(char::is_control) {
        format!("{text:?}")
    } else {
        text.to_owned()
    }
}
