//! The inverse of `convert`: plain Python values, as `annpage/_convert.py`'s `flatten` makes
//! them from anndata objects, into annpage's in-memory elements.
//!
//! The vocabulary is `convert`'s, plus two forms that numpy arrays cannot carry across:
//!
//! - `("strings", shape, [str, ...])`: a string array;
//! - `("null",)`: `None` in uns, stored as anndata stores it.
//!
//! Numeric and bool arrays come as C-contiguous numpy arrays in native byte order; they are
//! copied once into Rust-owned arrays.

use annpage::data::{
    ArrayData, Attrs, Categorical, Column, CompactString, DataFrame, Element, Mapping, Matrix,
    Nullable, NullableKind, RawData, RawNode, Scalar, SparseFormat, SparseMatrix, StringNa,
};
use annpage::{AnnDataElements, RawElements};
use indexmap::IndexMap;
use ndarray::{ArrayD, IxDyn};
use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

fn bad(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// A numpy array (numbers or bools) or a `("strings", shape, values)` tuple.
pub fn array(v: &Bound<'_, PyAny>) -> PyResult<ArrayData> {
    if let Ok(t) = v.cast::<PyTuple>() {
        let tag: String = t.get_item(0)?.extract()?;
        if tag != "strings" {
            return Err(bad(format!("expected an array, got a '{tag}' element")));
        }
        let shape: Vec<usize> = t.get_item(1)?.extract()?;
        // Each `str` borrowed as it is copied in: no `String` of its own first.
        let values = t
            .get_item(2)?
            .try_iter()?
            .map(|v| Ok(CompactString::from(v?.cast::<PyString>()?.to_str()?)))
            .collect::<PyResult<Vec<_>>>()?;
        return ArrayD::from_shape_vec(IxDyn(&shape), values)
            .map(ArrayData::String)
            .map_err(|e| bad(format!("strings of the wrong shape: {e}")));
    }
    let untyped = v.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!("expected a numpy array, got {}", v.get_type()))
    })?;
    macro_rules! try_dtypes {
        ($($t:ty => $variant:ident),*) => {
            $(if let Ok(a) = untyped.cast::<PyArrayDyn<$t>>() {
                return Ok(ArrayData::$variant(a.readonly().as_array().to_owned()));
            })*
        };
    }
    try_dtypes!(bool => Bool, i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8,
        u16 => U16, u32 => U32, u64 => U64, half::f16 => F16, f32 => F32, f64 => F64);
    Err(PyTypeError::new_err(format!(
        "annpage cannot store numpy arrays of dtype {}",
        untyped.dtype()
    )))
}

fn u64s(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u64>> {
    let a = array(v)?;
    let f = match &a {
        ArrayData::I32(x) => x
            .iter()
            .map(|&i| u64::try_from(i).ok())
            .collect::<Option<Vec<_>>>(),
        ArrayData::I64(x) => x.iter().map(|&i| u64::try_from(i).ok()).collect(),
        ArrayData::U32(x) => Some(x.iter().map(|&i| u64::from(i)).collect()),
        ArrayData::U64(x) => Some(x.iter().copied().collect()),
        _ => None,
    };
    f.ok_or_else(|| bad(format!("sparse {what} must be non-negative integers")))
}

fn sparse(t: &Bound<'_, PyTuple>) -> PyResult<SparseMatrix> {
    let fmt: String = t.get_item(1)?.extract()?;
    let format = match fmt.as_str() {
        "csr" => SparseFormat::Csr,
        "csc" => SparseFormat::Csc,
        other => return Err(bad(format!("unknown sparse format '{other}'"))),
    };
    let shape: (usize, usize) = t.get_item(2)?.extract()?;
    let indptr = u64s(&t.get_item(3)?, "indptr")?;
    let indices = u64s(&t.get_item(4)?, "indices")?
        .into_iter()
        .map(|i| u32::try_from(i).map_err(|_| bad("a sparse index past 2^32")))
        .collect::<PyResult<Vec<u32>>>()?;
    let data = array(&t.get_item(5)?)?;
    SparseMatrix::new(format, shape, indptr, indices, data).map_err(crate::errors::to_py)
}

/// A matrix: a numpy array or a sparse tuple.
pub fn matrix(v: &Bound<'_, PyAny>) -> PyResult<Matrix> {
    match element(v)? {
        Element::Array(a) => Ok(Matrix::Dense(a)),
        Element::Sparse(s) => Ok(Matrix::Sparse(s)),
        other => Err(bad(format!("expected a matrix, got a {}", other.kind()))),
    }
}

fn column(v: &Bound<'_, PyAny>) -> PyResult<Column> {
    match element(v)? {
        Element::Array(a) => Ok(Column::Array(a)),
        Element::Categorical(c) => Ok(Column::Categorical(c)),
        Element::Nullable(n) => Ok(Column::Nullable(n)),
        other => Err(bad(format!(
            "a data frame column cannot be a {}",
            other.kind()
        ))),
    }
}

/// A `("dataframe", index, index_name, [(name, column), ...], index_na)` tuple.
pub fn dataframe(v: &Bound<'_, PyAny>) -> PyResult<DataFrame> {
    let t = v.cast::<PyTuple>()?;
    let index = array(&t.get_item(1)?)?;
    let name: Option<String> = t.get_item(2)?.extract()?;
    let na = match t.get_item(4)?.extract::<Option<String>>()? {
        Some(kind) => Some(string_na(&kind)?),
        None => None,
    };
    let mut df = DataFrame::with_index(index).map_err(crate::errors::to_py)?;
    df.set_index_name(name);
    df.set_index_string_na(na).map_err(crate::errors::to_py)?;
    let columns: Vec<(String, Bound<'_, PyAny>)> = t.get_item(3)?.extract()?;
    for (name, col) in columns {
        df.insert(name, column(&col)?)
            .map_err(crate::errors::to_py)?;
    }
    Ok(df)
}

/// A nullable string kind from its Python name (see `convert::string_kind`).
fn string_na(kind: &str) -> PyResult<StringNa> {
    match kind {
        "string" => Ok(StringNa::Na),
        "str" => Ok(StringNa::NaN),
        other => Err(bad(format!("unknown nullable kind '{other}'"))),
    }
}

/// Any element: an array, a dict (a mapping) or a tagged tuple.
pub fn element(v: &Bound<'_, PyAny>) -> PyResult<Element> {
    if let Ok(d) = v.cast::<PyDict>() {
        return mapping(d).map(Element::Dict);
    }
    let Ok(t) = v.cast::<PyTuple>() else {
        return array(v).map(Element::Array);
    };
    let tag: String = t.get_item(0)?.extract()?;
    match tag.as_str() {
        "strings" => array(v).map(Element::Array),
        "sparse" => sparse(t).map(Element::Sparse),
        "dataframe" => dataframe(v).map(Element::DataFrame),
        "categorical" => {
            let codes = match array(&t.get_item(1)?)? {
                ArrayData::I8(c) => c.iter().map(|&c| i32::from(c)).collect(),
                ArrayData::I16(c) => c.iter().map(|&c| i32::from(c)).collect(),
                ArrayData::I32(c) => c.iter().copied().collect(),
                ArrayData::I64(c) => c
                    .iter()
                    .map(|&c| i32::try_from(c).map_err(|_| bad("a categorical code past 2^31")))
                    .collect::<PyResult<Vec<i32>>>()?,
                _ => return Err(bad("categorical codes must be integers")),
            };
            let categories = array(&t.get_item(2)?)?;
            let ordered: bool = t.get_item(3)?.extract()?;
            Categorical::new(codes, categories, ordered)
                .map(Element::Categorical)
                .map_err(crate::errors::to_py)
        }
        "nullable" => {
            let kind = match t.get_item(1)?.extract::<String>()?.as_str() {
                "integer" => NullableKind::Integer,
                "boolean" => NullableKind::Boolean,
                other => NullableKind::String(string_na(other)?),
            };
            let values = array(&t.get_item(2)?)?;
            let ArrayData::Bool(mask) = array(&t.get_item(3)?)? else {
                return Err(bad("a nullable mask must be bools"));
            };
            Nullable::new(kind, values, mask.iter().copied().collect())
                .map(Element::Nullable)
                .map_err(crate::errors::to_py)
        }
        "scalar" => {
            let a = array(&t.get_item(1)?)?;
            Scalar::from_array(&a)
                .map(Element::Scalar)
                .ok_or_else(|| bad("a scalar must be a 0-d array"))
        }
        "null" => Ok(Element::Opaque(null())),
        other => Err(bad(format!("unknown element kind '{other}'"))),
    }
}

/// `None` as anndata stores it: a dataset without a shape, encoding `null`.
fn null() -> RawNode {
    let text = |s: &str| ArrayData::String(ArrayD::from_elem(IxDyn(&[]), s.into()));
    let mut attrs = Attrs::new();
    attrs.insert("encoding-type".into(), text("null"));
    attrs.insert("encoding-version".into(), text("0.1.0"));
    RawNode::Dataset {
        attrs,
        data: RawData::Array(ArrayData::F32(ArrayD::zeros(IxDyn(&[0])))),
    }
}

/// A dict of elements, in its order.
pub fn mapping(d: &Bound<'_, PyDict>) -> PyResult<Mapping> {
    let mut m = Mapping::new();
    for (k, v) in d.iter() {
        let key: String = k.extract()?;
        let value = element(&v).map_err(|e| in_key(e, &key))?;
        m.insert(key, value);
    }
    Ok(m)
}

fn matrices(d: &Bound<'_, PyDict>) -> PyResult<IndexMap<String, Matrix>> {
    let mut m = IndexMap::new();
    for (k, v) in d.iter() {
        let key: String = k.extract()?;
        m.insert(key.clone(), matrix(&v).map_err(|e| in_key(e, &key))?);
    }
    Ok(m)
}

fn in_key(e: PyErr, key: &str) -> PyErr {
    Python::attach(|py| {
        let text = format!("{key}: {}", e.value(py));
        // Unicode errors take five arguments, not a message: a ValueError (their base) says it.
        let err = if e.is_instance_of::<pyo3::exceptions::PyUnicodeError>(py) {
            PyValueError::new_err(text)
        } else {
            PyErr::from_type(e.get_type(py), text)
        };
        err.set_cause(py, Some(e));
        err
    })
}

/// A whole object from `flatten`'s dict (`X`, `obs`, `var`, `obsm`, `varm`, `obsp`, `varp`,
/// `layers`, `uns`, `raw`).
pub fn anndata(d: &Bound<'_, PyDict>) -> PyResult<AnnDataElements> {
    let get = |k: &str| -> PyResult<Bound<'_, PyAny>> {
        d.get_item(k)?
            .ok_or_else(|| bad(format!("missing element '{k}'")))
    };
    let dict = |k: &str| -> PyResult<Bound<'_, PyDict>> { Ok(get(k)?.cast_into::<PyDict>()?) };
    let x = get("X")?;
    let raw = get("raw")?;
    let raw = if raw.is_none() {
        None
    } else {
        let r = raw.cast::<PyDict>()?;
        let part = |k: &str| {
            r.get_item(k)?
                .ok_or_else(|| bad(format!("missing raw element '{k}'")))
        };
        Some(RawElements {
            x: matrix(&part("X")?).map_err(|e| in_key(e, "raw/X"))?,
            var: dataframe(&part("var")?).map_err(|e| in_key(e, "raw/var"))?,
            varm: mapping(part("varm")?.cast::<PyDict>()?).map_err(|e| in_key(e, "raw/varm"))?,
        })
    };
    Ok(AnnDataElements {
        x: if x.is_none() {
            None
        } else {
            Some(matrix(&x).map_err(|e| in_key(e, "X"))?)
        },
        obs: dataframe(&get("obs")?).map_err(|e| in_key(e, "obs"))?,
        var: dataframe(&get("var")?).map_err(|e| in_key(e, "var"))?,
        obsm: mapping(&dict("obsm")?).map_err(|e| in_key(e, "obsm"))?,
        varm: mapping(&dict("varm")?).map_err(|e| in_key(e, "varm"))?,
        obsp: matrices(&dict("obsp")?).map_err(|e| in_key(e, "obsp"))?,
        varp: matrices(&dict("varp")?).map_err(|e| in_key(e, "varp"))?,
        layers: matrices(&dict("layers")?).map_err(|e| in_key(e, "layers"))?,
        uns: mapping(&dict("uns")?).map_err(|e| in_key(e, "uns"))?,
        raw,
    })
}
