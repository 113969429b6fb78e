//! Writing AnnData elements and whole `.h5ad` files exactly as anndata 0.12 (h5py 3.16) does.
//!
//! - Every element gets its `encoding-type` / `encoding-version` attributes (sparse `data`,
//!   `indices` and `indptr` get none, as in anndata).
//! - Compression ([`WriteOptions::compression`]) applies, as anndata's `dataset_kwargs` do, to
//!   every array dataset: matrices, sparse parts, data frame columns and indexes, categorical
//!   codes and categories, nullable values and masks, arrays in `uns`. Scalars are never
//!   compressed.
//! - Sparse parts are resizable and therefore always chunked, even without compression (anndata
//!   creates them with `maxshape=(None,)`); other arrays are contiguous unless compressed.
//! - [`write_h5ad`] writes to a temporary file beside the target and renames it into place
//!   only once everything is written: a failed write leaves neither a half-written target nor
//!   the temporary file.
//!
//! Unlike `anndata.write_h5ad`, string columns are written as they are: turning repeated
//! strings into categoricals (`strings_to_categoricals`) is a change of the data the caller
//! decides on.

mod csr;
mod frame;
pub mod staging;
#[cfg(test)]
mod tests;

use std::path::Path;

use indexmap::IndexMap;

pub(crate) use self::csr::CsrAppender;
pub(crate) use self::frame::{write_categorical, write_dataframe, write_nullable};
use super::{AnnDataElements, Encoding, RawElements};
use crate::data::{
    ArrayData, Attrs, DType, Element, Mapping, Matrix, RawData, RawNode, SparseFormat, SparseMatrix,
};
use crate::error::ResultExt;
pub use crate::storage::Compression;
use crate::storage::{ArrayOptions, AttrWriter, GroupWriter, StoreKind, ZarrOptions};
use crate::{Error, Result};

/// Options for writing.
///
/// ```
/// use annpage_engine::format::WriteOptions;
/// use annpage_engine::storage::{StoreKind, ZarrFormat, ZarrOptions};
/// assert_eq!(WriteOptions::default().store, StoreKind::H5ad);
/// let v2 = WriteOptions::zarr(ZarrOptions::unsharded(ZarrFormat::V2));
/// assert_eq!((v2.store, v2.zarr.format), (StoreKind::Zarr, ZarrFormat::V2));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Compression of array datasets (scalars are never compressed).
    pub compression: Compression,
    /// What is written: an HDF5 file (`.h5ad`, the default) or a Zarr store (a directory).
    pub store: StoreKind,
    /// How a Zarr store is written (format, chunks, shards, codec); used when `store` is
    /// [`StoreKind::Zarr`].
    pub zarr: ZarrOptions,
}

impl WriteOptions {
    /// Options writing a Zarr store with `zarr` (no compression but what `zarr` says).
    pub fn zarr(zarr: ZarrOptions) -> Self {
        WriteOptions {
            store: StoreKind::Zarr,
            zarr,
            ..WriteOptions::default()
        }
    }

    /// These options with the store a path names ([`StoreKind::of_path`]: `.zarr` names a
    /// Zarr store).
    pub fn for_path(self, path: &Path) -> Self {
        WriteOptions {
            store: StoreKind::of_path(path),
            ..self
        }
    }

    /// Fails on options no array can be written with (a gzip level above 9 for `.h5ad`), so
    /// that writers refuse them before writing anything.
    ///
    /// ```
    /// use annpage_engine::format::{Compression, WriteOptions};
    /// let bad = WriteOptions { compression: Compression::Gzip(12), ..Default::default() };
    /// assert!(bad.check().unwrap_err().to_string().contains("gzip level 12 is out of range"));
    /// assert!(WriteOptions::default().check().is_ok());
    /// ```
    pub fn check(&self) -> Result<()> {
        match (self.store, self.compression) {
            (StoreKind::H5ad, Compression::Gzip(level @ 10..)) => Err(Error::invalid(format!(
                "gzip level {level} is out of range 0–9"
            ))),
            _ => Ok(()),
        }
    }

    /// How anndata stores an array dataset with these options.
    pub fn array_options(&self) -> ArrayOptions {
        ArrayOptions::compressed(self.compression)
    }

    /// How a dense `X` at the root is stored: [`WriteOptions::array_options`], in the chunks
    /// [`ZarrOptions::x_chunks`] gives in a Zarr store.
    pub fn x_options(&self) -> ArrayOptions {
        ArrayOptions {
            chunks: match (self.store, self.zarr.x_chunks) {
                (StoreKind::Zarr, Some(chunks)) => Some(chunks.to_vec()),
                _ => None,
            },
            ..self.array_options()
        }
    }

    /// How anndata stores the `data`, `indices` and `indptr` of a sparse matrix with these
    /// options: resizable along their only axis, hence always chunked.
    pub fn sparse_options(&self) -> ArrayOptions {
        self.array_options().resizable()
    }
}

/// Writes a whole `.h5ad` file: to a temporary file beside `path`, renamed into place at the end.
///
/// The layout is anndata's: root attributes `anndata` / `0.1.0`; `X` when present; `raw`
/// (`X`, `var`, `varm`) when present; `obs` and `var`; `obsm`, `varm`, `obsp`, `varp`,
/// `layers` and `uns` always, as (possibly empty) `dict` groups. Shapes are not checked here
/// (the `annpage` crate's `AnnData` keeps them consistent).
///
/// On error, `path` is left as it was and the temporary file is removed; the error names
/// `path` and the element being written.
pub fn write_h5ad(
    path: impl AsRef<Path>,
    adata: &AnnDataElements,
    options: &WriteOptions,
) -> Result<()> {
    let path = path.as_ref();
    options.check().in_file(path)?;
    let staged = staging::Staged::beside(path).in_file(path)?;
    let write = || -> Result<()> {
        let file = crate::storage::h5::create(staged.path())?;
        write_root(&*file, adata, options)?;
        file.close()?;
        Ok(())
    };
    write().in_file(path)?;
    staged.commit(path).in_file(path)
}

/// Writes the members of the root group.
pub(crate) fn write_root(
    root: &dyn GroupWriter,
    adata: &AnnDataElements,
    options: &WriteOptions,
) -> Result<()> {
    write_encoding(root, Encoding::AnnData).in_element("/")?;
    match &adata.x {
        Some(Matrix::Dense(x)) => {
            prepare(root, "X")?;
            write_array_element(root, "X", x, &options.x_options())?;
        }
        Some(x) => write_matrix(root, "X", x, options)?,
        None => {}
    }
    if let Some(raw) = &adata.raw {
        write_raw(root, raw, options)?;
    }
    write_dataframe(root, "obs", &adata.obs, options)?;
    write_dataframe(root, "var", &adata.var, options)?;
    write_mapping(root, "obsm", &adata.obsm, options)?;
    write_mapping(root, "varm", &adata.varm, options)?;
    write_matrix_mapping(root, "obsp", &adata.obsp, options)?;
    write_matrix_mapping(root, "varp", &adata.varp, options)?;
    write_matrix_mapping(root, "layers", &adata.layers, options)?;
    write_mapping(root, "uns", &adata.uns, options)
}

/// Writes the `raw` group (encoding `raw`) with its `X`, `var` and `varm`.
fn write_raw(root: &dyn GroupWriter, raw: &RawElements, options: &WriteOptions) -> Result<()> {
    let g = new_group(root, "raw", Encoding::Raw)?;
    write_matrix(g.as_ref(), "X", &raw.x, options)?;
    write_dataframe(g.as_ref(), "var", &raw.var, options)?;
    write_mapping(g.as_ref(), "varm", &raw.varm, options)
}

/// Writes `elem` under `name` in `group`, replacing any member of that name.
///
/// Arrays become `array` (numbers, bools) or `string-array` datasets, 0-d arrays and scalars
/// `numeric-scalar` or `string`; sparse matrices, data frames, categoricals, nullable arrays
/// and dicts their group encodings; opaque elements are written back verbatim.
pub(crate) fn write_element(
    group: &dyn GroupWriter,
    name: &str,
    elem: &Element,
    options: &WriteOptions,
) -> Result<()> {
    prepare(group, name)?;
    match elem {
        Element::Array(a) => write_array_element(group, name, a, &options.array_options()),
        Element::Sparse(m) => write_sparse(group, name, m, options),
        Element::DataFrame(df) => write_dataframe(group, name, df, options),
        Element::Categorical(c) => write_categorical(group, name, c, options),
        Element::Nullable(n) => write_nullable(group, name, n, options),
        Element::Scalar(s) => {
            write_array_element(group, name, &s.to_array(), &options.array_options())
        }
        Element::Dict(m) => write_mapping(group, name, m, options),
        Element::Opaque(node) => write_raw_node(group, name, node, options),
    }
}

/// Writes a matrix (`X`, a layer, an `obsp`/`varp` entry) under `name`, replacing any member
/// of that name: a dense `array` or a `csr_matrix` / `csc_matrix` group.
pub(crate) fn write_matrix(
    group: &dyn GroupWriter,
    name: &str,
    matrix: &Matrix,
    options: &WriteOptions,
) -> Result<()> {
    prepare(group, name)?;
    match matrix {
        Matrix::Dense(a) => write_array_element(group, name, a, &options.array_options()),
        Matrix::Sparse(m) => write_sparse(group, name, m, options),
    }
}

/// Writes a `dict` group of elements (`obsm`, `uns`, …), replacing any member of that name.
pub(crate) fn write_mapping(
    group: &dyn GroupWriter,
    name: &str,
    mapping: &Mapping,
    options: &WriteOptions,
) -> Result<()> {
    // What the readers read no deeper than (a walk's bound) is not written either.
    let path = path_of(group, name);
    if path.matches('/').count() > super::walk::MAX_DEPTH {
        return Err(Error::invalid(format!(
            "dicts nested more than {} levels deep: annpage reads none deeper",
            super::walk::MAX_DEPTH
        ))
        .in_element(path));
    }
    prepare(group, name)?;
    let g = new_group(group, name, Encoding::Dict)?;
    mapping
        .iter()
        .try_for_each(|(key, elem)| write_element(g.as_ref(), key, elem, options))
}

/// Writes a `dict` group of matrices (`layers`, `obsp`, `varp`), replacing any member of that
/// name.
pub(crate) fn write_matrix_mapping(
    group: &dyn GroupWriter,
    name: &str,
    matrices: &IndexMap<String, Matrix>,
    options: &WriteOptions,
) -> Result<()> {
    prepare(group, name)?;
    let g = new_group(group, name, Encoding::Dict)?;
    matrices
        .iter()
        .try_for_each(|(key, m)| write_matrix(g.as_ref(), key, m, options))
}

/// Writes a CSR or CSC matrix as anndata does: a group with `shape` (int64) and the datasets
/// `data`, `indices` and `indptr` (index dtype from [`sparse_index_dtype`]), all resizable.
pub(crate) fn write_sparse(
    group: &dyn GroupWriter,
    name: &str,
    matrix: &SparseMatrix,
    options: &WriteOptions,
) -> Result<()> {
    prepare(group, name)?;
    let g = create_sparse_group(group, name, matrix.format(), matrix.shape())?;
    let write = || -> Result<()> {
        let dataset = options.sparse_options();
        let dtype = sparse_index_dtype(matrix.shape(), matrix.nnz());
        g.write_array("data", matrix.data(), &dataset)?;
        g.write_array("indices", &index_array(matrix.indices(), dtype)?, &dataset)?;
        g.write_array("indptr", &index_array(matrix.indptr(), dtype)?, &dataset)?;
        Ok(())
    };
    write().in_element(g.path())
}

/// Creates the group of a sparse matrix with its encoding and `shape` attributes, for writers
/// that then fill `data`, `indices` and `indptr` themselves (with
/// [`WriteOptions::sparse_options`] and [`sparse_index_dtype`], as [`write_sparse`] does).
pub(crate) fn create_sparse_group(
    parent: &dyn GroupWriter,
    name: &str,
    format: SparseFormat,
    shape: (usize, usize),
) -> Result<Box<dyn GroupWriter>> {
    let encoding = match format {
        SparseFormat::Csr => Encoding::CsrMatrix,
        SparseFormat::Csc => Encoding::CscMatrix,
    };
    let g = new_group(parent, name, encoding)?;
    let dims = [shape.0, shape.1]
        .iter()
        .map(|&d| i64::try_from(d).map_err(|_| Error::invalid(format!("dimension {d} too large"))))
        .collect::<Result<Vec<i64>>>()
        .in_element(g.path())?;
    g.set_attr("shape", &ArrayData::from(dims))
        .in_element(g.path())?;
    Ok(g)
}

/// The dtype scipy gives the `indices` and `indptr` of a sparse matrix: `int32` when both
/// dimensions and the number of stored values fit in it, else `int64`.
///
/// ```
/// use annpage_engine::data::DType;
/// use annpage_engine::format::write::sparse_index_dtype;
/// assert_eq!(sparse_index_dtype((100, 20), 7), DType::I32);
/// assert_eq!(sparse_index_dtype((3, 3), 1 << 31), DType::I64);
/// ```
pub fn sparse_index_dtype(shape: (usize, usize), nnz: usize) -> DType {
    let limit = i32::MAX as usize;
    if shape.0 <= limit && shape.1 <= limit && nnz <= limit {
        DType::I32
    } else {
        DType::I64
    }
}

/// Sparse offsets or indices as an array of `dtype` (`int32` or `int64`, see
/// [`sparse_index_dtype`]), for writers that fill a sparse group piece by piece; fails if a
/// value does not fit.
pub(crate) fn index_array<I: Copy + Into<u64>>(values: &[I], dtype: DType) -> Result<ArrayData> {
    // The largest value is checked once; the conversion is then a plain cast, which the
    // compiler vectorises (a checked conversion per value took a tenth of a concatenation).
    let max = values.iter().map(|&v| v.into()).max().unwrap_or(0);
    let limit = match dtype {
        DType::I32 => i32::MAX as u64,
        _ => i64::MAX as u64,
    };
    if max > limit {
        return Err(Error::invalid(format!("sparse index {max} too large")));
    }
    Ok(match dtype {
        DType::I32 => ArrayData::from(values.iter().map(|&v| v.into() as i32).collect::<Vec<_>>()),
        _ => ArrayData::from(values.iter().map(|&v| v.into() as i64).collect::<Vec<_>>()),
    })
}

/// Writes an array as its encoding: `string-array` / `array`, or for a 0-d array `string` /
/// `numeric-scalar` (never compressed).
fn write_array_element(
    group: &dyn GroupWriter,
    name: &str,
    a: &ArrayData,
    options: &ArrayOptions,
) -> Result<()> {
    let encoding = match (a.dtype(), a.ndim()) {
        (DType::String, 0) => Encoding::String,
        (_, 0) => Encoding::NumericScalar,
        (DType::String, _) => Encoding::StringArray,
        _ => Encoding::Array,
    };
    let write = || -> Result<()> {
        let ds = group.write_array(name, a, options)?;
        write_encoding(ds.as_ref(), encoding)
    };
    write().in_element(path_of(group, name))
}

/// Writes an opaque node back as it was read: its attributes, its children or its data.
fn write_raw_node(
    group: &dyn GroupWriter,
    name: &str,
    node: &RawNode,
    options: &WriteOptions,
) -> Result<()> {
    let path = path_of(group, name);
    match node {
        RawNode::Group { attrs, children } => {
            let g = group.create_group(name).in_element(&path)?;
            write_attrs(g.as_ref(), attrs).in_element(&path)?;
            for (key, child) in children {
                check_key(key).in_element(&path)?;
                write_raw_node(g.as_ref(), key, child, options)?;
            }
            Ok(())
        }
        RawNode::Dataset { attrs, data } => {
            let write = || -> Result<()> {
                let ds = match data {
                    // anndata's `None`: a dataset with a null dataspace, read as an empty array.
                    RawData::Array(a) if a.is_empty() && node.is_null() => {
                        group.write_null(name, a.dtype())?
                    }
                    _ => group.write_raw(name, data, &options.array_options())?,
                };
                write_attrs(ds.as_ref(), attrs)
            };
            write().in_element(path)
        }
    }
}

/// Whether `attrs` hold `encoding-type` `null`.
/// Sets an element's `encoding-type` and `encoding-version` attributes.
pub(crate) fn write_encoding(node: &(impl AttrWriter + ?Sized), encoding: Encoding) -> Result<()> {
    node.set_str_attr("encoding-type", encoding.type_name())?;
    node.set_str_attr("encoding-version", encoding.version())
}

/// Writes every attribute of `attrs`.
fn write_attrs(node: &(impl AttrWriter + ?Sized), attrs: &Attrs) -> Result<()> {
    attrs
        .iter()
        .try_for_each(|(name, value)| node.set_attr(name, value))
}

/// Creates group `name` with the attributes of `encoding`.
fn new_group(
    parent: &dyn GroupWriter,
    name: &str,
    encoding: Encoding,
) -> Result<Box<dyn GroupWriter>> {
    let create = || -> Result<Box<dyn GroupWriter>> {
        let g = parent.create_group(name)?;
        write_encoding(g.as_ref(), encoding)?;
        Ok(g)
    };
    create().in_element(path_of(parent, name))
}

/// Checks `name` and removes any member of that name, as anndata does before writing.
fn prepare(group: &dyn GroupWriter, name: &str) -> Result<()> {
    let path = path_of(group, name);
    check_key(name).in_element(&path)?;
    group.remove(name).in_element(&path)
}

/// Refuses names a store would take for paths: empty, `.`, or containing `/`.
///
/// ```
/// use annpage_engine::format::write::check_key;
/// assert!(check_key("X_pca").is_ok());
/// assert!(check_key(".").unwrap_err().to_string().contains("not '.'"));
/// ```
pub fn check_key(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name.contains('/') {
        return Err(Error::invalid(format!(
            "{name:?} cannot name an element: keys must be non-empty, not '.', and contain no '/'"
        )));
    }
    Ok(())
}

/// The path of member `name` of `parent`, for messages.
fn path_of(parent: &dyn GroupWriter, name: &str) -> String {
    crate::storage::join_path(&parent.path(), name)
}
