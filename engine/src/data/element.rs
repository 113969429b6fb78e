//! The element tree: matrices, mappings, and opaque subtrees kept verbatim.

use indexmap::IndexMap;

use super::{ArrayData, Categorical, DataFrame, Nullable, Scalar, SparseMatrix};
use crate::select::AxisIndex;
use crate::{Error, Result};

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

impl Matrix {
    /// The rows `rows` and columns `cols` of the matrix (a dense one must be 2-d); sparse
    /// matrices keep their format (see [`SparseMatrix::subset`]).
    ///
    /// ```
    /// use annpage_engine::data::{ArrayData, Matrix};
    /// use annpage_engine::select::Selection;
    /// let m = Matrix::Dense(ArrayData::from(ndarray::arr2(&[[1u8, 2], [3, 4], [5, 6]])));
    /// let rows = Selection::positions([2, 2, 0]).resolve(3, None).unwrap();
    /// let cols = Selection::slice(Some(-1), None, 1).resolve(2, None).unwrap();
    /// let s = m.subset(&rows, &cols).unwrap();
    /// assert_eq!(s, Matrix::Dense(ArrayData::from(ndarray::arr2(&[[6u8], [6], [2]]))));
    /// ```
    pub fn subset(&self, rows: &AxisIndex, cols: &AxisIndex) -> Result<Matrix> {
        match self {
            Matrix::Sparse(m) => Ok(Matrix::Sparse(m.subset(rows, cols)?)),
            Matrix::Dense(a) => {
                if a.ndim() != 2 {
                    return Err(Error::invalid(format!(
                        "a dense matrix must be 2-d, got shape {:?}",
                        a.shape()
                    )));
                }
                if a.shape() != [rows.axis_len(), cols.axis_len()] {
                    return Err(Error::shape(format!(
                        "the selection is for shape ({}, {}), the matrix has {:?}",
                        rows.axis_len(),
                        cols.axis_len(),
                        a.shape()
                    )));
                }
                // Skip the copy an untouched axis would cost.
                let by_rows = (!rows.is_full()).then(|| a.subset(0, rows)).transpose()?;
                let picked = match (by_rows, cols.is_full()) {
                    (Some(r), true) => r,
                    (None, true) => a.clone(),
                    (r, false) => r.as_ref().unwrap_or(a).subset(1, cols)?,
                };
                Ok(Matrix::Dense(picked))
            }
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

    /// The rows at the positions of `index` (the first axis): arrays along axis 0, sparse
    /// matrices' rows, data frames' rows, categorical and nullable values.
    ///
    /// Scalars and dicts have no rows, and opaque elements can only be kept whole (when
    /// `index` selects every row in order); anything else is [`Error::Unsupported`].
    pub fn subset_rows(&self, index: &AxisIndex) -> Result<Element> {
        Ok(match self {
            Element::Array(a) if a.ndim() > 0 => Element::Array(a.subset(0, index)?),
            Element::Sparse(m) => Element::Sparse(m.subset(index, &AxisIndex::full(m.shape().1))?),
            Element::DataFrame(d) => Element::DataFrame(d.subset_rows(index)?),
            Element::Categorical(c) => Element::Categorical(c.subset(index)?),
            Element::Nullable(n) => Element::Nullable(n.subset(index)?),
            Element::Opaque(r)
                if index.is_full() && r.declared_len().is_none_or(|n| n == index.axis_len()) =>
            {
                self.clone()
            }
            other => {
                return Err(Error::unsupported(format!(
                    "selecting rows of this element ({})",
                    other.kind()
                )))
            }
        })
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

    /// Whether the node is anndata's `None` (encoding-type `null`).
    ///
    /// ```
    /// use annpage_engine::data::{ArrayData, Attrs, RawData, RawNode};
    /// let mut attrs = Attrs::new();
    /// attrs.insert("encoding-type".into(), ArrayData::from(vec!["null"]));
    /// let none = RawNode::Dataset { attrs, data: RawData::Array(ArrayData::from(Vec::<f32>::new())) };
    /// assert!(none.is_null());
    /// ```
    pub fn is_null(&self) -> bool {
        self.attrs()
            .get("encoding-type")
            .and_then(ArrayData::as_strings)
            .is_some_and(|s| s == ["null"])
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
            RawNode::Group { attrs, .. } => attrs
                .get("length")
                .and_then(Scalar::from_array)
                .and_then(|s| match s {
                    Scalar::I64(v) => usize::try_from(v).ok(),
                    Scalar::U64(v) => usize::try_from(v).ok(),
                    Scalar::I32(v) => usize::try_from(v).ok(),
                    Scalar::U32(v) => usize::try_from(v).ok(),
                    _ => None,
                }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Column, SparseFormat};
    use crate::select::Selection;

    fn rows(s: Selection, n: usize) -> AxisIndex {
        s.resolve(n, None).unwrap()
    }

    #[test]
    fn dense_matrices_select_both_axes() {
        // numpy: np.arange(6).reshape(2, 3)[np.ix_([1, 0], [2, 2])] == [[5, 5], [2, 2]]
        let m = Matrix::Dense(ArrayData::from(ndarray::Array2::from_shape_fn(
            (2, 3),
            |(i, j)| (i * 3 + j) as f64,
        )));
        let s = m
            .subset(
                &rows(Selection::positions([1, 0]), 2),
                &rows(Selection::positions([2, 2]), 3),
            )
            .unwrap();
        assert_eq!(
            s,
            Matrix::Dense(ArrayData::from(ndarray::arr2(&[[5.0, 5.0], [2.0, 2.0]])))
        );
        let same = m.subset(&AxisIndex::full(2), &AxisIndex::full(3)).unwrap();
        assert_eq!(same, m);
        let e = m
            .subset(&AxisIndex::full(3), &AxisIndex::full(3))
            .unwrap_err();
        assert!(matches!(e, Error::Shape(_)), "{e}");
        let flat = Matrix::Dense(ArrayData::from(vec![1.0f64, 2.0]));
        assert!(flat
            .subset(&AxisIndex::full(2), &AxisIndex::full(1))
            .is_err());
    }

    #[test]
    fn rows_of_every_row_bearing_element() {
        let idx = rows(Selection::positions([2, 0]), 3);
        // A 3-d array keeps its trailing axes.
        let cube = Element::Array(ArrayData::from(
            ndarray::Array3::from_shape_fn((3, 2, 2), |(i, j, k)| (i * 4 + j * 2 + k) as i32)
                .into_dyn(),
        ));
        let Element::Array(a) = cube.subset_rows(&idx).unwrap() else {
            panic!("array expected")
        };
        assert_eq!(a.shape(), &[2, 2, 2]);
        assert_eq!(
            a,
            ArrayData::I32(ndarray::arr3(&[[[8, 9], [10, 11]], [[0, 1], [2, 3]]]).into_dyn())
        );
        // A CSC matrix's rows are its minor axis.
        let csc = SparseMatrix::new(
            SparseFormat::Csc,
            (3, 2),
            vec![0, 2, 3],
            vec![0, 2, 1],
            ArrayData::from(vec![1u8, 3, 2]),
        )
        .unwrap();
        let Element::Sparse(s) = Element::Sparse(csc).subset_rows(&idx).unwrap() else {
            panic!("sparse expected")
        };
        assert_eq!(
            (s.shape(), s.indptr(), s.indices()),
            ((2, 2), &[0u64, 2, 2][..], &[1u32, 0][..])
        );
        assert_eq!(s.data(), &ArrayData::from(vec![1u8, 3]));

        let mut df = DataFrame::from_index(["a", "b", "c"].map(String::from).to_vec());
        df.insert("v", Column::Array(ArrayData::from(vec![1i8, 2, 3])))
            .unwrap();
        let Element::DataFrame(d) = Element::DataFrame(df).subset_rows(&idx).unwrap() else {
            panic!("frame expected")
        };
        assert_eq!(d.index_names().unwrap(), ["c", "a"]);
    }

    #[test]
    fn rowless_and_opaque_elements() {
        let idx = rows(Selection::positions([1]), 2);
        let e = Element::Scalar(Scalar::I64(3))
            .subset_rows(&idx)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported: selecting rows of this element (scalar)"
        );
        let opaque = Element::Opaque(RawNode::Dataset {
            attrs: Attrs::new(),
            data: RawData::Array(ArrayData::from(vec![1i64, 2])),
        });
        assert_eq!(opaque.subset_rows(&AxisIndex::full(2)).unwrap(), opaque);
        assert!(opaque.subset_rows(&idx).is_err());
        assert!(opaque.subset_rows(&AxisIndex::full(3)).is_err());
    }
}
