//! Describing a file's element tree from metadata alone (what `annpage info` prints).
//!
//! Nothing here reads array data: only attributes, shapes, dtypes and storage layouts, so
//! describing a file of any size takes milliseconds.

use std::fmt::Write as _;
use std::path::Path;

use hdf5::types::{TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, Group, Location, LocationType};
use serde::Serialize;

use super::Encoding;
use crate::error::ResultExt;
use crate::Result;

/// How an element's bytes are laid out on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Storage {
    /// `contiguous`, `chunked` or `compact`.
    pub layout: &'static str,
    /// The chunk shape of a chunked dataset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk: Option<Vec<usize>>,
    /// The filter pipeline, e.g. `["gzip(4)"]`.
    pub filters: Vec<String>,
    /// How backed mode reads a numeric dataset's blocks, e.g. `direct (gzip, 2 threads)` or
    /// `libhdf5 (filter fletcher32 is decoded by libhdf5)` (see [`crate::paged::ReadPath`]);
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

/// Describes every element of an `.h5ad` file, reading metadata only.
///
/// Any error names the file and the element it concerns.
pub fn describe(path: impl AsRef<Path>) -> Result<ElementInfo> {
    let path = path.as_ref();
    let file = crate::storage::h5::open_read(path).in_file(path)?;
    describe_group(&file, "/").in_file(path)
}

fn string_attr(loc: &Location, name: &str) -> Option<String> {
    let attr = loc.attr(name).ok()?;
    if let Ok(s) = attr.read_scalar::<VarLenUnicode>() {
        return Some(s.as_str().to_owned());
    }
    if let Ok(s) = attr.read_scalar::<VarLenAscii>() {
        return Some(s.as_str().to_owned());
    }
    None
}

fn encoding_of(loc: &Location) -> Option<(String, String)> {
    let ty = string_attr(loc, "encoding-type")?;
    let ver = string_attr(loc, "encoding-version").unwrap_or_default();
    Some((ty, ver))
}

fn dtype_name(ds: &Dataset) -> Option<String> {
    let desc = ds.dtype().ok()?.to_descriptor().ok()?;
    Some(match desc {
        TypeDescriptor::Enum(e) if e.members.len() == 2 && e.size as usize == 1 => "bool".into(),
        TypeDescriptor::VarLenUnicode | TypeDescriptor::VarLenAscii => "str".into(),
        TypeDescriptor::FixedAscii(n) | TypeDescriptor::FixedUnicode(n) => format!("bytes{n}"),
        other => other.to_string(),
    })
}

fn storage_of(ds: &Dataset) -> Storage {
    let layout = match ds.layout() {
        hdf5::dataset::Layout::Chunked => "chunked",
        hdf5::dataset::Layout::Compact => "compact",
        _ => "contiguous",
    };
    let filters = ds
        .filters()
        .iter()
        .map(|f| match f {
            hdf5::filters::Filter::Deflate(level) => format!("gzip({level})"),
            hdf5::filters::Filter::Shuffle => "shuffle".into(),
            hdf5::filters::Filter::Fletcher32 => "fletcher32".into(),
            hdf5::filters::Filter::LZF => "lzf".into(),
            hdf5::filters::Filter::SZip(..) => "szip".into(),
            hdf5::filters::Filter::NBit => "nbit".into(),
            hdf5::filters::Filter::ScaleOffset(_) => "scaleoffset".into(),
            hdf5::filters::Filter::User(id, _) => format!("filter#{id}"),
        })
        .collect();
    Storage {
        layout,
        chunk: ds.chunk(),
        filters,
        read_path: read_path_of(ds),
    }
}

/// The read path backed mode takes for a numeric dataset (indexing its chunks, no data).
fn read_path_of(ds: &Dataset) -> Option<String> {
    let numeric = crate::storage::h5::read::stored_type(ds)
        .ok()?
        .dtype()
        .is_some_and(|d| d != crate::data::DType::String);
    if !numeric {
        return None;
    }
    let threads = crate::paged::ReadOptions::default().workers.threads();
    Some(match crate::paged::DirectReader::open(ds, threads) {
        Ok(crate::paged::DirectOpen::Reader(reader)) => {
            crate::paged::RangeReader::read_path(&reader).to_string()
        }
        Ok(crate::paged::DirectOpen::Fallback(reason)) => {
            crate::paged::ReadPath::Hdf5 { reason }.to_string()
        }
        Err(e) => format!("unreadable: {e}"),
    })
}

fn describe_dataset(ds: &Dataset, path: String) -> ElementInfo {
    let encoding = encoding_of(ds)
        .map(|(t, v)| format!("{t} {v}"))
        .unwrap_or_else(|| "legacy dataset".into());
    ElementInfo {
        path,
        encoding,
        dtype: dtype_name(ds),
        shape: Some(ds.shape()),
        nnz: None,
        storage: Some(storage_of(ds)),
        children: Vec::new(),
    }
}

fn member_kind(group: &Group, name: &str) -> Result<LocationType> {
    Ok(group.loc_type_by_name(name)?)
}

fn describe_member(group: &Group, parent: &str, name: &str) -> Result<ElementInfo> {
    let path = crate::storage::join_path(parent, name);
    match member_kind(group, name).in_element(&path)? {
        LocationType::Dataset => Ok(describe_dataset(
            &group.dataset(name).in_element(&path)?,
            path,
        )),
        LocationType::Group => describe_group(&group.group(name).in_element(&path)?, &path),
        _ => Ok(ElementInfo {
            path,
            encoding: "named datatype".into(),
            dtype: None,
            shape: None,
            nnz: None,
            storage: None,
            children: Vec::new(),
        }),
    }
}

fn sorted_members(group: &Group) -> Result<Vec<String>> {
    let mut names = group.member_names()?;
    names.sort();
    Ok(names)
}

fn describe_group(group: &Group, path: &str) -> Result<ElementInfo> {
    super::walk::within(group, || describe_group_unguarded(group, path))
}

fn describe_group_unguarded(group: &Group, path: &str) -> Result<ElementInfo> {
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
        Some(Encoding::CsrMatrix | Encoding::CscMatrix) => describe_sparse(group, &mut info),
        _ if sparse_legacy => describe_sparse(group, &mut info),
        Some(Encoding::Categorical) => {
            if let Ok(codes) = group.dataset("codes") {
                info.shape = Some(codes.shape());
            }
            if let Ok(cats) = group.dataset("categories") {
                info.dtype = dtype_name(&cats).map(|d| format!("category[{d}]"));
            }
        }
        Some(
            Encoding::NullableInteger | Encoding::NullableBoolean | Encoding::NullableStringArray,
        ) => {
            if let Ok(values) = group.dataset("values") {
                info.shape = Some(values.shape());
                info.dtype = dtype_name(&values).map(|d| format!("nullable {d}"));
            }
        }
        Some(Encoding::AwkwardArray) | Some(Encoding::RecArray) => {}
        Some(Encoding::DataFrame) => {
            // Index first, then the columns in their declared order (members otherwise).
            for name in sorted_members(group).in_element(path)? {
                info.children.push(describe_member(group, path, &name)?);
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
                info.children.push(describe_member(group, path, &name)?);
            }
        }
    }
    Ok(info)
}

fn describe_sparse(group: &Group, info: &mut ElementInfo) {
    let shape_attr = group
        .attr("shape")
        .or_else(|_| group.attr("h5sparse_shape"))
        .ok()
        .and_then(|a| a.read_raw::<i64>().ok());
    info.shape = shape_attr.map(|s| s.iter().map(|&d| d.max(0) as usize).collect());
    if let Ok(data) = group.dataset("data") {
        info.dtype = dtype_name(&data);
        info.nnz = data.shape().first().copied();
        info.storage = Some(storage_of(&data));
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
            self.path.rsplit('/').next().unwrap_or_default().to_string()
        };
        let _ = write!(
            out,
            "{}{:<w$} {}",
            "  ".repeat(depth),
            name,
            self.encoding,
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
                let _ = write!(out, " {}", st.filters.join("+"));
            }
            if let Some(p) = &st.read_path {
                let _ = write!(out, "  read: {p}");
            }
        }
        out.push('\n');
        for c in &self.children {
            c.write_text(out, depth + 1);
        }
    }
}
