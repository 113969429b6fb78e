//! Reading AnnData elements, current and legacy encodings (whole files are read by
//! [`crate::file::read_h5ad`] from the one walk of their tree).
//!
//! Every element is dispatched on its `encoding-type` attribute ([`Encoding::parse`]); elements
//! without one are read the way anndata's legacy reader reads them (the private `legacy`
//! module).
//! Errors name the element (`/obsm/X_pca: ...`).

use indexmap::IndexMap;

use super::legacy;
use super::Encoding;
use crate::data::{
    integers_as_u64, ArrayData, DType, DataFrame, Element, Mapping, Matrix, NullableKind, RawNode,
    Scalar, SparseFormat, SparseMatrix,
};
use crate::error::ResultExt;
use crate::storage::{Array, Group, MemberKind, StoredType};
use crate::{Error, Result};

mod frame;
mod matrix;

pub use frame::{
    dataframe_index_na, dataframe_members, read_dataframe_column, read_dataframe_index,
};
use frame::{dataframe_of, read_categorical, read_frame, read_nullable, string_na};
pub use matrix::MatrixKind;
pub(crate) use matrix::{describe_matrix, MatrixArrays};

/// Reads the element stored under `name` in `group`, whatever its encoding.
///
/// Elements annpage has no model for (awkward arrays, rec-arrays, unknown encodings, complex
/// scalars) come back as [`Element::Opaque`] so they can be written back unchanged.
pub fn read_element(group: &dyn Group, name: &str) -> Result<Element> {
    let node = Node::open(group, name).in_element(path_of(group, name))?;
    read_node(&node).in_element(node.path())
}

/// Reads a matrix element (`X`, a layer, an `obsp`/`varp` entry): a dense 2-d array or a CSR/CSC
/// matrix, including legacy unencoded datasets and `h5sparse` groups. Any other encoding is an
/// [`Error::UnexpectedEncoding`] naming the element.
pub fn read_matrix(group: &dyn Group, name: &str) -> Result<Matrix> {
    let node = Node::open(group, name).in_element(path_of(group, name))?;
    matrix_of(&node).in_element(node.path())
}

/// Reads a data frame element (`obs`, `var`, `raw/var`), including 0.7-era frames and legacy
/// compound datasets. Any other encoding is an [`Error::UnexpectedEncoding`] naming the element.
///
/// The index is returned as stored; [`crate::file::read_h5ad`] turns obs/var indexes into
/// strings.
pub fn read_dataframe(group: &dyn Group, name: &str) -> Result<DataFrame> {
    let node = Node::open(group, name).in_element(path_of(group, name))?;
    dataframe_of(&node).in_element(node.path())
}

/// Reads a mapping of elements (`obsm`, `varm`, `uns`, a `dict`), including legacy unencoded
/// groups and compound `obsm`/`varm` datasets (one entry per field).
pub fn read_mapping(group: &dyn Group, name: &str) -> Result<Mapping> {
    let node = Node::open(group, name).in_element(path_of(group, name))?;
    mapping_of(&node).in_element(node.path())
}

fn path_of(parent: &dyn Group, name: &str) -> String {
    crate::storage::join_path(&parent.path(), name)
}

/// An element's storage: a group or a dataset.
enum Node {
    Group(Box<dyn Group>),
    Dataset(Box<dyn Array>),
}

/// A borrowed [`Node`], to match on.
enum Ref<'a> {
    Group(&'a dyn Group),
    Dataset(&'a dyn Array),
}

impl Node {
    fn open(parent: &dyn Group, name: &str) -> Result<Node> {
        match parent.member_kind(name)? {
            None => Err(Error::malformed(format!("missing member '{name}'"))),
            Some(MemberKind::Group) => Ok(Node::Group(parent.group(name)?)),
            Some(MemberKind::Array) => Ok(Node::Dataset(parent.array(name)?)),
        }
    }

    fn view(&self) -> Ref<'_> {
        match self {
            Node::Group(g) => Ref::Group(g.as_ref()),
            Node::Dataset(d) => Ref::Dataset(d.as_ref()),
        }
    }

    fn location(&self) -> &dyn crate::storage::Node {
        match self {
            Node::Group(g) => g.as_ref(),
            Node::Dataset(d) => d.as_ref(),
        }
    }

    fn path(&self) -> String {
        self.location().path()
    }

    fn kind(&self) -> &'static str {
        match self {
            Node::Group(_) => "group",
            Node::Dataset(_) => "dataset",
        }
    }

    /// The `encoding-type` and `encoding-version` attributes (`None` when both are absent or
    /// empty), checked by [`check_encoding`].
    fn encoding(&self) -> Result<Option<(String, String)>> {
        super::read_encoding(self.location())
    }
}

fn unexpected(encoding: Option<(String, String)>, expected: &'static str) -> Error {
    let (encoding_type, version) = encoding.unwrap_or_default();
    Error::UnexpectedEncoding {
        encoding_type,
        version,
        expected,
    }
}

fn wrong_storage(node: &Node, encoding: &str) -> Error {
    Error::malformed(format!(
        "encoding-type '{encoding}' cannot be stored as a {}",
        node.kind()
    ))
}

// ---------------------------------------------------------------------------------------------
// Any element
// ---------------------------------------------------------------------------------------------

fn read_node(node: &Node) -> Result<Element> {
    match node {
        Node::Group(g) => super::walk::within(g.as_ref(), || read_node_unguarded(node)),
        Node::Dataset(a) => super::walk::read_once(a.as_ref(), || read_node_unguarded(node)),
    }
}

fn read_node_unguarded(node: &Node) -> Result<Element> {
    let Some((ty, _version)) = node.encoding()? else {
        return read_unencoded(node);
    };
    let Some(encoding) = Encoding::parse(&ty) else {
        return opaque(node);
    };
    match (encoding, node.view()) {
        (Encoding::Array, Ref::Dataset(d)) => {
            if is_compound(d)? {
                opaque(node)
            } else {
                Ok(Element::Array(d.read()?))
            }
        }
        (Encoding::StringArray, Ref::Dataset(d)) => Ok(Element::Array(read_strings(d)?)),
        (Encoding::CsrMatrix, Ref::Group(g)) => {
            Ok(Element::Sparse(read_sparse(g, SparseFormat::Csr)?))
        }
        (Encoding::CscMatrix, Ref::Group(g)) => {
            Ok(Element::Sparse(read_sparse(g, SparseFormat::Csc)?))
        }
        (Encoding::DataFrame, Ref::Group(g)) => Ok(Element::DataFrame(read_frame(g)?)),
        (Encoding::Categorical, Ref::Group(g)) => Ok(Element::Categorical(read_categorical(g)?)),
        (Encoding::NullableInteger, Ref::Group(g)) => {
            Ok(Element::Nullable(read_nullable(g, NullableKind::Integer)?))
        }
        (Encoding::NullableBoolean, Ref::Group(g)) => {
            Ok(Element::Nullable(read_nullable(g, NullableKind::Boolean)?))
        }
        (Encoding::NullableStringArray, Ref::Group(g)) => Ok(Element::Nullable(read_nullable(
            g,
            NullableKind::String(string_na(g)?),
        )?)),
        (Encoding::String, Ref::Dataset(d)) => match read_strings(d)? {
            ArrayData::String(a) if a.len() == 1 => Ok(Element::Scalar(Scalar::String(
                a.iter().next().map(|s| s.to_string()).unwrap_or_default(),
            ))),
            other => Err(Error::malformed(format!(
                "a 'string' element must hold one string, found {} of shape {:?}",
                other.dtype(),
                other.shape()
            ))),
        },
        (Encoding::NumericScalar, Ref::Dataset(d)) => {
            if is_compound(d)? {
                // Complex numbers are stored as compounds; keep them verbatim.
                return opaque(node);
            }
            let a = d.read()?;
            match Scalar::from_array(&a) {
                Some(s) if a.len() == 1 && a.dtype() != DType::String => Ok(Element::Scalar(s)),
                _ => Err(Error::malformed(format!(
                    "a 'numeric-scalar' element must hold one number, found {} of shape {:?}",
                    a.dtype(),
                    a.shape()
                ))),
            }
        }
        (Encoding::Dict, Ref::Group(g)) => Ok(Element::Dict(read_children(g)?)),
        (Encoding::AnnData | Encoding::Raw | Encoding::RecArray | Encoding::AwkwardArray, _) => {
            opaque(node)
        }
        (_, _) => Err(wrong_storage(node, &ty)),
    }
}

/// An element written without encoding attributes (anndata < 0.7 or another writer).
fn read_unencoded(node: &Node) -> Result<Element> {
    match node.view() {
        Ref::Group(g) => match legacy_sparse_format(g)? {
            Some(format) => Ok(Element::Sparse(read_sparse(g, format)?)),
            None => Ok(Element::Dict(read_children(g)?)),
        },
        Ref::Dataset(d) => legacy::read_unencoded_dataset(d),
    }
}

fn read_children(g: &dyn Group) -> Result<Mapping> {
    g.member_names()?
        .into_iter()
        .map(|k| {
            let v = read_element(g, &k)?;
            Ok((k, v))
        })
        .collect()
}

fn is_compound(d: &dyn Array) -> Result<bool> {
    Ok(matches!(d.stored_type()?, StoredType::Compound { .. }))
}

fn read_strings(d: &dyn Array) -> Result<ArrayData> {
    match d.read()? {
        a @ ArrayData::String(_) => Ok(a),
        other => Err(Error::malformed(format!(
            "a string element holds {} values",
            other.dtype()
        ))),
    }
}

/// Reads any node verbatim.
fn opaque(node: &Node) -> Result<Element> {
    Ok(Element::Opaque(raw_node(node)?))
}

fn raw_node(node: &Node) -> Result<RawNode> {
    match node {
        Node::Group(g) => super::walk::within(g.as_ref(), || {
            let mut children = IndexMap::new();
            for name in g.member_names()? {
                let child = Node::open(g.as_ref(), &name).in_element(path_of(g.as_ref(), &name))?;
                let value = raw_node(&child).in_element(child.path())?;
                children.insert(name, value);
            }
            Ok(RawNode::Group {
                attrs: g.attrs()?,
                children,
            })
        }),
        Node::Dataset(d) => Ok(RawNode::Dataset {
            attrs: d.attrs()?,
            data: d.read_raw()?,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Matrices
// ---------------------------------------------------------------------------------------------

fn matrix_of(node: &Node) -> Result<Matrix> {
    let encoding = node.encoding()?;
    let ty = encoding.as_ref().map(|(t, _)| Encoding::parse(t));
    match (ty, node.view()) {
        (None | Some(Some(Encoding::Array)), Ref::Dataset(d)) if !is_compound(d)? => {
            dense_matrix(d.read()?)
        }
        // anndata writes a layer of strings (an object array) as a string array.
        (Some(Some(Encoding::StringArray)), Ref::Dataset(d)) => dense_matrix(d.read()?),
        (Some(Some(Encoding::CsrMatrix)), Ref::Group(g)) => {
            Ok(Matrix::Sparse(read_sparse(g, SparseFormat::Csr)?))
        }
        (Some(Some(Encoding::CscMatrix)), Ref::Group(g)) => {
            Ok(Matrix::Sparse(read_sparse(g, SparseFormat::Csc)?))
        }
        (None, Ref::Group(g)) => Ok(Matrix::Sparse(read_sparse(g, legacy_format(g)?)?)),
        _ => Err(unexpected(encoding, "a dense or sparse matrix")),
    }
}

fn dense_matrix(a: ArrayData) -> Result<Matrix> {
    if a.ndim() != 2 {
        return Err(Error::shape(format!(
            "a matrix must be 2-d, this array has shape {:?}",
            a.shape()
        )));
    }
    Ok(Matrix::Dense(a))
}

/// The format of a sparse group without encoding attributes: from its `h5sparse_format`
/// attribute, else from the length of `indptr` (rows + 1 for CSR, columns + 1 for CSC).
pub(crate) fn legacy_format(g: &dyn Group) -> Result<SparseFormat> {
    match legacy_sparse_format(g)? {
        Some(f) => Ok(f),
        None => infer_sparse_format(g)?.ok_or_else(|| {
            Error::malformed(
                "a group without encoding attributes is not a sparse matrix (it has no \
                 data/indices/indptr members, or indptr fits neither its rows nor its columns)",
            )
        }),
    }
}

/// The format named by a legacy `h5sparse_format` attribute, if the group has one.
fn legacy_sparse_format(g: &dyn Group) -> Result<Option<SparseFormat>> {
    match g.string_attr("h5sparse_format")?.as_deref() {
        None => Ok(None),
        Some("csr") => Ok(Some(SparseFormat::Csr)),
        Some("csc") => Ok(Some(SparseFormat::Csc)),
        Some(other) => Err(Error::malformed(format!(
            "h5sparse_format '{other}' is neither 'csr' nor 'csc'"
        ))),
    }
}

/// For an unencoded group with `data`/`indices`/`indptr` and a shape: CSR when `indptr` has
/// rows + 1 entries, else CSC when it has columns + 1.
fn infer_sparse_format(g: &dyn Group) -> Result<Option<SparseFormat>> {
    for member in ["data", "indices", "indptr"] {
        if !g.contains(member)? {
            return Ok(None);
        }
    }
    let (rows, cols) = sparse_shape(g)?;
    let n = g.array("indptr")?.len()?;
    Ok(if n == rows + 1 {
        Some(SparseFormat::Csr)
    } else if n == cols + 1 {
        Some(SparseFormat::Csc)
    } else {
        None
    })
}

/// The `shape` (or legacy `h5sparse_shape`) attribute of a sparse group.
pub(crate) fn sparse_shape(g: &dyn Group) -> Result<(usize, usize)> {
    let shape = match g.attr("shape")? {
        Some(s) => s,
        None => g
            .attr("h5sparse_shape")?
            .ok_or_else(|| Error::malformed("sparse matrix has no 'shape' attribute"))?,
    };
    let dims = integers_as_u64(&shape)
        .map_err(|e| Error::malformed(format!("sparse matrix 'shape' attribute: {e}")))?;
    let [rows, cols] = dims[..] else {
        return Err(Error::malformed(format!(
            "sparse matrix 'shape' attribute has {} entries, expected 2",
            dims.len()
        )));
    };
    let conv = |v: u64| {
        usize::try_from(v).map_err(|_| Error::malformed(format!("sparse dimension {v} too large")))
    };
    Ok((conv(rows)?, conv(cols)?))
}

fn member_dataset(g: &dyn Group, name: &str) -> Result<Box<dyn Array>> {
    match Node::open(g, name)? {
        Node::Dataset(d) => Ok(d),
        Node::Group(_) => Err(Error::malformed(format!(
            "member '{name}' is a group, expected a dataset"
        ))),
    }
}

fn read_sparse(g: &dyn Group, format: SparseFormat) -> Result<SparseMatrix> {
    let shape = sparse_shape(g)?;
    let data_ds = member_dataset(g, "data")?;
    let indices_ds = member_dataset(g, "indices")?;
    let indptr_ds = member_dataset(g, "indptr")?;
    let member = |name: &str, e: Error| match e {
        Error::Malformed(m) => Error::malformed(format!("'{name}': {m}")),
        e => e.in_element(path_of(g, name)),
    };
    let data = data_ds.read().map_err(|e| member("data", e))?;
    let minor = match format {
        SparseFormat::Csr => shape.1,
        SparseFormat::Csc => shape.0,
    };
    let indices = indices_ds
        .read()
        .and_then(|a| crate::data::minor_indices(a, minor))
        .map_err(|e| member("indices", e))?;
    let indptr = indptr_ds
        .read()
        .and_then(|a| integers_as_u64(&a))
        .map_err(|e| member("indptr", e))?;
    SparseMatrix::new(format, shape, indptr, indices, data)
}

// ---------------------------------------------------------------------------------------------
// Mappings
// ---------------------------------------------------------------------------------------------

fn expect_mapping_group(node: &Node) -> Result<&dyn Group> {
    let encoding = node.encoding()?;
    let ty = encoding.as_ref().map(|(t, _)| Encoding::parse(t));
    match (ty, node) {
        (None | Some(Some(Encoding::Dict)), Node::Group(g)) => Ok(g.as_ref()),
        _ => Err(unexpected(encoding, "a dict")),
    }
}

fn mapping_of(node: &Node) -> Result<Mapping> {
    if let Node::Dataset(d) = node {
        if node.encoding()?.is_none() && is_compound(d.as_ref())? {
            return Ok(legacy::compound_fields(d.as_ref())?
                .into_iter()
                .map(|(k, v)| (k, Element::Array(v)))
                .collect());
        }
    }
    read_children(expect_mapping_group(node)?)
}

// ---------------------------------------------------------------------------------------------
// The whole object
// ---------------------------------------------------------------------------------------------

/// Checks the root as anndata's reader does before reading anything: no encoding (legacy
/// files) or `anndata` (or `raw`) at a version it reads, and an `obs` member.
pub fn check_root(root: &dyn Group) -> Result<()> {
    let check = || -> Result<()> {
        let encoding = super::read_encoding(root)?;
        if let Some((encoding_type, version)) = encoding {
            if !matches!(
                Encoding::parse(&encoding_type),
                Some(Encoding::AnnData | Encoding::Raw)
            ) {
                return Err(Error::UnexpectedEncoding {
                    encoding_type,
                    version,
                    expected: "anndata",
                });
            }
        }
        if !root.contains("obs")? {
            return Err(Error::malformed(
                "missing member 'obs' (anndata requires it)",
            ));
        }
        Ok(())
    };
    check().in_element("/")
}

/// The `uns` keys of anndata's oldest files that list obs columns to gather into `obsm`.
pub const OBS_MULTICOL_KEYS: [&str; 4] = [
    "obs_keys_multicol",
    "smp_keys_multicol",
    "_obs_keys_multicol",
    "_smp_keys_multicol",
];

/// The `uns` keys of anndata's oldest files that list var columns to gather into `varm`.
pub const VAR_MULTICOL_KEYS: [&str; 2] = ["var_keys_multicol", "_var_keys_multicol"];

/// The annotations of an object that the legacy fixes of [`crate::file::read_h5ad`] move between each
/// other, for readers that read these elements themselves (the `annpage` crate's backed mode
/// reads them in memory for legacy files and keeps the matrices on disk).
#[derive(Clone, Debug, PartialEq)]
pub struct LegacyAnnotations {
    /// `obs`, with a string index.
    pub obs: DataFrame,
    /// `var`, with a string index.
    pub var: DataFrame,
    /// `obsm` (only what the fixes add or replace matters to backed readers).
    pub obsm: Mapping,
    /// `varm` (likewise).
    pub varm: Mapping,
    /// `uns`.
    pub uns: Mapping,
}

impl LegacyAnnotations {
    /// Applies the fixes [`crate::file::read_h5ad`] applies after reading: columns listed under
    /// [`OBS_MULTICOL_KEYS`] / [`VAR_MULTICOL_KEYS`] move to `obsm` / `varm`, and when
    /// `legacy_frames` (obs stored as a compound dataset) `uns['<column>_categories']` turn
    /// integer columns into categoricals.
    pub fn fix(&mut self, legacy_frames: bool) -> Result<()> {
        legacy::move_multicol_keys(
            &mut self.uns,
            &OBS_MULTICOL_KEYS,
            &mut self.obs,
            &mut self.obsm,
        )
        .in_element("/uns")?;
        legacy::move_multicol_keys(
            &mut self.uns,
            &VAR_MULTICOL_KEYS,
            &mut self.var,
            &mut self.varm,
        )
        .in_element("/uns")?;
        if legacy_frames {
            legacy::categories_from_uns(&mut self.uns, &mut self.obs, &mut self.var)
                .in_element("/uns")?;
        }
        Ok(())
    }
}

/// anndata's `_move_adj_mtx` as [`crate::file::read_h5ad`] applies it: 2-d `distances` / `connectivities`
/// in `uns['neighbors']` are removed from `uns` and returned (by name, in that order), for
/// `obsp`.
pub fn take_neighbor_graphs(uns: &mut Mapping) -> IndexMap<String, Matrix> {
    let mut graphs = IndexMap::new();
    legacy::move_neighbor_graphs(uns, &mut graphs);
    graphs
}

#[cfg(test)]
mod tests;
