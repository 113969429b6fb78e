//! The element tree: matrices, mappings, and opaque subtrees kept verbatim.

use indexmap::IndexMap;

use super::{ArrayData, Categorical, DataFrame, Nullable, Scalar, SparseMatrix};

/// A named collection of elements (`uns`, `obsm`, a `dict` group), in file order.
pub type Mapping = IndexMap<String, Element>;

/// A matrix element: what `X`, `layers`, `obsp` and `varp` hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Matrix {
    /// A dense 2-d array (`array` encoding), numeric or bool.
    Dense(ArrayData),
    /// A CSR or CSC sparse matrix.
    Sparse(SparseMatrix),
}

impl Matrix {
    /// `(rows, columns)`; a dense array's first two axes.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Matrix::Dense(a) => {
                let s = a.shape();
                (
                    s.first().copied().unwrap_or(0),
                    s.get(1).copied().unwrap_or(1),
                )
            }
            Matrix::Sparse(s) => s.shape(),
        }
    }
}

impl From<Matrix> for Element {
    fn from(m: Matrix) -> Self {
        match m {
            Matrix::Dense(a) => Element::Array(a),
            Matrix::Sparse(s) => Element::Sparse(s),
        }
    }
}

/// Any AnnData element.
#[derive(Clone, Debug, PartialEq)]
pub enum Element {
    /// A dense n-d array (`array`, or `string-array` for strings).
    Array(ArrayData),
    /// A sparse matrix (`csr_matrix` / `csc_matrix`).
    Sparse(SparseMatrix),
    /// A data frame (`dataframe`).
    DataFrame(DataFrame),
    /// A categorical array (`categorical`).
    Categorical(Categorical),
    /// A nullable array (`nullable-integer`, `nullable-boolean`, `nullable-string-array`).
    Nullable(Nullable),
    /// A single value (`numeric-scalar` or `string`).
    Scalar(Scalar),
    /// A nested mapping (`dict`).
    Dict(Mapping),
    /// An element annpage has no typed model for (awkward arrays, rec-arrays, unknown
    /// encodings), kept as read and written back unchanged.
    Opaque(RawNode),
}

impl Element {
    /// The number of rows (first axis) for elements that have one; `None` for scalars, dicts
    /// and opaque elements whose length is unknown.
    pub fn nrows(&self) -> Option<usize> {
        match self {
            Element::Array(a) if a.ndim() > 0 => Some(a.nrows()),
            Element::Sparse(s) => Some(s.shape().0),
            Element::DataFrame(d) => Some(d.nrows()),
            Element::Categorical(c) => Some(c.codes.len()),
            Element::Nullable(n) => Some(n.values().len()),
            Element::Opaque(r) => r.declared_len(),
            _ => None,
        }
    }

    /// A short description of the kind of element, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Element::Array(_) => "array",
            Element::Sparse(_) => "sparse matrix",
            Element::DataFrame(_) => "dataframe",
            Element::Categorical(_) => "categorical",
            Element::Nullable(_) => "nullable array",
            Element::Scalar(_) => "scalar",
            Element::Dict(_) => "dict",
            Element::Opaque(_) => "opaque element",
        }
    }
}

/// Attributes of a raw HDF5 object, by name.
pub type Attrs = IndexMap<String, AttrValue>;

/// The value of an attribute: a scalar or array of numbers, bools or strings.
pub type AttrValue = ArrayData;

/// The contents of a raw dataset.
#[derive(Clone, Debug, PartialEq)]
pub enum RawData {
    /// A plain array.
    Array(ArrayData),
    /// A compound (structured) dataset, stored column by column: each field holds an array whose
    /// leading axes are the dataset's shape (sub-array fields add trailing axes).
    Compound {
        /// The dataset's shape.
        shape: Vec<usize>,
        /// The fields in declaration order.
        fields: Vec<(String, ArrayData)>,
    },
}

/// An HDF5 object kept verbatim: a group of children or a dataset, with its attributes.
#[derive(Clone, Debug, PartialEq)]
pub enum RawNode {
    /// A group.
    Group {
        /// Its attributes.
        attrs: Attrs,
        /// Its members, in file order.
        children: IndexMap<String, RawNode>,
    },
    /// A dataset.
    Dataset {
        /// Its attributes.
        attrs: Attrs,
        /// Its contents.
        data: RawData,
    },
}

impl RawNode {
    /// The node's attributes.
    pub fn attrs(&self) -> &Attrs {
        match self {
            RawNode::Group { attrs, .. } | RawNode::Dataset { attrs, .. } => attrs,
        }
    }

    /// The length this node declares along its first axis, if it can be known: a dataset's
    /// first dimension, or the `length` attribute of an awkward array.
    pub fn declared_len(&self) -> Option<usize> {
        match self {
            RawNode::Dataset {
                data: RawData::Array(a),
                ..
            } if a.ndim() > 0 => Some(a.nrows()),
            RawNode::Dataset {
                data: RawData::Compound { shape, .. },
                ..
            } => shape.first().copied(),
            RawNode::Group { attrs, .. } => {
                attrs
                    .get("length")
                    .and_then(Scalar::from_array)
                    .and_then(|s| match s {
                        Scalar::I64(v) => usize::try_from(v).ok(),
                        Scalar::U64(v) => usize::try_from(v).ok(),
                        Scalar::I32(v) => usize::try_from(v).ok(),
                        Scalar::U32(v) => usize::try_from(v).ok(),
                        _ => None,
                    })
            }
            _ => None,
        }
    }
}
