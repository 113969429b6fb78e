//! annpage's in-memory elements as plain Python values, which `annpage/_convert.py` turns into
//! the numpy, scipy, pandas and anndata objects anndata itself returns.
//!
//! Dense arrays become numpy arrays that own the Rust buffer (no copy); strings become numpy
//! object arrays of `str`; dicts become Python dicts. Every other element is a tuple whose first
//! item names its kind:
//!
//! - `("sparse", "csr" | "csc", (rows, cols), indptr, indices, data)`
//! - `("dataframe", index, index_name, [(name, column), ...], index_na)`: `index_na` is `None`
//!   for a `string-array` index, else how its `nullable-string-array` reads (`"string"`, `"str"`)
//! - `("categorical", codes, categories, ordered)`
//! - `("nullable", "integer" | "boolean" | "string", values, mask)`
//! - `("scalar", 0-d array)`
//! - `("opaque",)`: an element annpage keeps verbatim (awkward arrays, rec-arrays); the Python
//!   side reads it with anndata from the element's path.

use annpage::data::{
    ArrayData, Categorical, Column, CompactString, DataFrame, Element, Mapping, Matrix, Nullable,
    NullableKind, SparseFormat, SparseMatrix, StringNa,
};
use annpage::{AnnData, RawElements};
use indexmap::IndexMap;
use ndarray::ArrayD;
use numpy::{IntoPyArray, PyArray};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

/// A dense array as a numpy array (strings as an object array of `str`).
pub fn array(py: Python<'_>, a: ArrayData) -> PyResult<Bound<'_, PyAny>> {
    Ok(match a {
        ArrayData::Bool(a) => a.into_pyarray(py).into_any(),
        ArrayData::I8(a) => a.into_pyarray(py).into_any(),
        ArrayData::I16(a) => a.into_pyarray(py).into_any(),
        ArrayData::I32(a) => a.into_pyarray(py).into_any(),
        ArrayData::I64(a) => a.into_pyarray(py).into_any(),
        ArrayData::U8(a) => a.into_pyarray(py).into_any(),
        ArrayData::U16(a) => a.into_pyarray(py).into_any(),
        ArrayData::U32(a) => a.into_pyarray(py).into_any(),
        ArrayData::U64(a) => a.into_pyarray(py).into_any(),
        ArrayData::F16(a) => a.into_pyarray(py).into_any(),
        ArrayData::F32(a) => a.into_pyarray(py).into_any(),
        ArrayData::F64(a) => a.into_pyarray(py).into_any(),
        ArrayData::String(a) => strings(py, a),
    })
}

/// A 1-d numpy object array of Python strings made from `names` (borrowed: the caller's
/// strings are not copied first).
pub fn str_array<'py>(py: Python<'py>, names: &[CompactString]) -> Bound<'py, PyAny> {
    let objects: ndarray::Array1<Py<PyString>> = names
        .iter()
        .map(|s| PyString::new(py, s).unbind())
        .collect();
    PyArray::from_owned_object_array(py, objects).into_any()
}

fn strings(py: Python<'_>, a: ArrayD<CompactString>) -> Bound<'_, PyAny> {
    let objects: ArrayD<Py<PyString>> = a.map(|s| PyString::new(py, s).unbind());
    PyArray::from_owned_object_array(py, objects).into_any()
}

/// A sparse matrix as a tagged tuple. Index arrays are `int32` when every offset fits, else
/// `int64`, as scipy chooses.
pub fn sparse(py: Python<'_>, m: SparseMatrix) -> PyResult<Bound<'_, PyAny>> {
    let small = int32_indices(&m);
    let (format, shape, indptr, indices, data) = m.into_parts();
    // A conversion between types of one size is collected in place (the standard library
    // reuses the source's memory): the indices stay in the buffer they were read into
    // instead of a fresh one, which the kernel would zero first.
    let (indptr, indices) = if small {
        let p: Vec<i32> = indptr.iter().map(|&v| v as i32).collect();
        // Below `minor`, itself at most i32::MAX: every index fits.
        let i: Vec<i32> = indices.into_iter().map(|v| v as i32).collect();
        (p.into_pyarray(py).into_any(), i.into_pyarray(py).into_any())
    } else {
        // Offsets are at most the number of stored values, far below i64::MAX.
        let p: Vec<i64> = indptr.into_iter().map(|v| v as i64).collect();
        let i: Vec<i64> = indices.iter().map(|&v| i64::from(v)).collect();
        (p.into_pyarray(py).into_any(), i.into_pyarray(py).into_any())
    };
    let data = array(py, data)?;
    sparse_tuple(py, format, shape, [indptr, indices, data])
}

/// Whether `m`'s offsets and indices fit `int32`, the index type scipy gives them then.
pub fn int32_indices(m: &SparseMatrix) -> bool {
    let minor = match m.format() {
        SparseFormat::Csr => m.shape().1,
        SparseFormat::Csc => m.shape().0,
    };
    m.nnz() <= i32::MAX as usize && minor <= i32::MAX as usize
}

/// The tagged tuple of a sparse matrix from its arrays `[indptr, indices, data]`.
pub fn sparse_tuple<'py>(
    py: Python<'py>,
    format: SparseFormat,
    shape: (usize, usize),
    [indptr, indices, data]: [Bound<'py, PyAny>; 3],
) -> PyResult<Bound<'py, PyAny>> {
    let fmt = match format {
        SparseFormat::Csr => "csr",
        SparseFormat::Csc => "csc",
    };
    let items: Vec<Bound<'py, PyAny>> = vec![
        "sparse".into_pyobject(py)?.into_any(),
        fmt.into_pyobject(py)?.into_any(),
        shape.into_pyobject(py)?.into_any(),
        indptr,
        indices,
        data,
    ];
    Ok(PyTuple::new(py, items)?.into_any())
}

/// A matrix element (dense or sparse).
pub fn matrix(py: Python<'_>, m: Matrix) -> PyResult<Bound<'_, PyAny>> {
    match m {
        Matrix::Dense(a) => array(py, a),
        Matrix::Sparse(s) => sparse(py, s),
    }
}

fn categorical(py: Python<'_>, c: Categorical) -> PyResult<Bound<'_, PyAny>> {
    let items: Vec<Bound<'_, PyAny>> = vec![
        "categorical".into_pyobject(py)?.into_any(),
        c.codes.into_pyarray(py).into_any(),
        array(py, c.categories)?,
        pyo3::types::PyBool::new(py, c.ordered)
            .to_owned()
            .into_any(),
    ];
    Ok(PyTuple::new(py, items)?.into_any())
}

/// The Python side's name of a nullable string kind: pandas' `string` (missing is `pd.NA`)
/// or `str` (missing is NaN).
pub fn string_kind(na: StringNa) -> &'static str {
    match na {
        StringNa::Na => "string",
        StringNa::NaN => "str",
    }
}

fn nullable(py: Python<'_>, n: Nullable) -> PyResult<Bound<'_, PyAny>> {
    let (kind, values, mask) = n.into_parts();
    let kind = match kind {
        NullableKind::Integer => "integer",
        NullableKind::Boolean => "boolean",
        NullableKind::String(na) => string_kind(na),
    };
    let items: Vec<Bound<'_, PyAny>> = vec![
        "nullable".into_pyobject(py)?.into_any(),
        kind.into_pyobject(py)?.into_any(),
        array(py, values)?,
        mask.into_pyarray(py).into_any(),
    ];
    Ok(PyTuple::new(py, items)?.into_any())
}

fn column(py: Python<'_>, c: Column) -> PyResult<Bound<'_, PyAny>> {
    match c {
        Column::Array(a) => array(py, a),
        Column::Categorical(c) => categorical(py, c),
        Column::Nullable(n) => nullable(py, n),
    }
}

/// A data frame as a tagged tuple.
pub fn dataframe(py: Python<'_>, df: DataFrame) -> PyResult<Bound<'_, PyAny>> {
    let index_na = df.index_string_na().map(string_kind);
    let (index, index_name, frame_columns) = df.into_parts();
    let columns = PyList::empty(py);
    for (name, col) in frame_columns {
        columns.append((name, column(py, col)?))?;
    }
    let items: Vec<Bound<'_, PyAny>> = vec![
        "dataframe".into_pyobject(py)?.into_any(),
        array(py, index)?,
        index_name.into_pyobject(py)?.into_any(),
        columns.into_any(),
        index_na.into_pyobject(py)?.into_any(),
    ];
    Ok(PyTuple::new(py, items)?.into_any())
}

/// Any element.
pub fn element(py: Python<'_>, e: Element) -> PyResult<Bound<'_, PyAny>> {
    match e {
        Element::Array(a) => array(py, a),
        Element::Sparse(s) => sparse(py, s),
        Element::DataFrame(d) => dataframe(py, d),
        Element::Categorical(c) => categorical(py, c),
        Element::Nullable(n) => nullable(py, n),
        Element::Scalar(s) => {
            let items: Vec<Bound<'_, PyAny>> = vec![
                "scalar".into_pyobject(py)?.into_any(),
                array(py, s.to_array())?,
            ];
            Ok(PyTuple::new(py, items)?.into_any())
        }
        Element::Dict(m) => mapping(py, m),
        // anndata's None, which needs no file to read it from (a concatenation's result).
        Element::Opaque(node) if node.is_null() => Ok(PyTuple::new(py, ["null"])?.into_any()),
        Element::Opaque(_) => Ok(PyTuple::new(py, ["opaque"])?.into_any()),
    }
}

/// A mapping of elements as a dict, in file order.
pub fn mapping(py: Python<'_>, m: Mapping) -> PyResult<Bound<'_, PyAny>> {
    let d = PyDict::new(py);
    for (k, v) in m {
        d.set_item(k, element(py, v)?)?;
    }
    Ok(d.into_any())
}

/// A mapping of matrices as a dict, in file order.
pub fn matrices(py: Python<'_>, m: IndexMap<String, Matrix>) -> PyResult<Bound<'_, PyAny>> {
    let d = PyDict::new(py);
    for (k, v) in m {
        d.set_item(k, matrix(py, v)?)?;
    }
    Ok(d.into_any())
}

fn raw(py: Python<'_>, r: RawElements) -> PyResult<Bound<'_, PyAny>> {
    let d = PyDict::new(py);
    d.set_item("X", matrix(py, r.x)?)?;
    d.set_item("var", dataframe(py, r.var)?)?;
    d.set_item("varm", mapping(py, r.varm)?)?;
    Ok(d.into_any())
}

/// A whole object as a dict of its elements (`X`, `obs`, `var`, `obsm`, `varm`, `obsp`,
/// `varp`, `layers`, `uns`, `raw`), `None` where absent.
pub fn anndata(py: Python<'_>, adata: AnnData) -> PyResult<Bound<'_, PyAny>> {
    let e = adata.into_elements();
    let d = PyDict::new(py);
    match e.x {
        Some(x) => d.set_item("X", matrix(py, x)?)?,
        None => d.set_item("X", py.None())?,
    }
    d.set_item("obs", dataframe(py, e.obs)?)?;
    d.set_item("var", dataframe(py, e.var)?)?;
    d.set_item("obsm", mapping(py, e.obsm)?)?;
    d.set_item("varm", mapping(py, e.varm)?)?;
    d.set_item("obsp", matrices(py, e.obsp)?)?;
    d.set_item("varp", matrices(py, e.varp)?)?;
    d.set_item("layers", matrices(py, e.layers)?)?;
    d.set_item("uns", mapping(py, e.uns)?)?;
    match e.raw {
        Some(r) => d.set_item("raw", raw(py, r)?)?,
        None => d.set_item("raw", py.None())?,
    }
    Ok(d.into_any())
}
