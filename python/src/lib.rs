//! The native part of the Python package `annpage` (imported as `annpage._annpage`).
//!
//! It reads with the public `annpage` crate and hands plain values to the pure-Python part
//! (`annpage/`), which builds the anndata, scipy and pandas objects users expect. Every read
//! runs with the GIL released.
#![deny(missing_docs)]

mod backed;
mod convert;
mod errors;

use pyo3::prelude::*;

/// Reads a whole `.h5ad` file into memory and returns its elements as a dict of plain values
/// (see `convert`); `annpage.read_h5ad` builds the `AnnData` from them.
#[pyfunction]
fn read_elements(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Bound<'_, PyAny>> {
    let adata = py
        .detach(|| annpage::read_h5ad(&path))
        .map_err(errors::to_py)?;
    convert::anndata(py, adata)
}

/// Concatenates files into `out` as `annpage::concat_on_disk` does (see
/// `annpage.concat_on_disk` for the arguments).
#[pyfunction]
#[pyo3(signature = (paths, out, axis, join, merge, uns_merge, label, keys, index_unique, fill_value, pairwise, compression, cache_bytes))]
#[allow(clippy::too_many_arguments)]
fn concat_on_disk(
    py: Python<'_>,
    paths: Vec<std::path::PathBuf>,
    out: std::path::PathBuf,
    axis: &str,
    join: &str,
    merge: Option<&str>,
    uns_merge: Option<&str>,
    label: Option<String>,
    keys: Option<Vec<String>>,
    index_unique: Option<String>,
    fill_value: Option<f64>,
    pairwise: bool,
    compression: Option<&str>,
    cache_bytes: usize,
) -> PyResult<()> {
    use pyo3::exceptions::PyValueError;
    let strategy = |s: Option<&str>| -> PyResult<Option<annpage::MergeStrategy>> {
        Ok(match s {
            None => None,
            Some("same") => Some(annpage::MergeStrategy::Same),
            Some("unique") => Some(annpage::MergeStrategy::Unique),
            Some("first") => Some(annpage::MergeStrategy::First),
            Some("only") => Some(annpage::MergeStrategy::Only),
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "unknown merge strategy {other:?}"
                )))
            }
        })
    };
    let options = annpage::ConcatOptions {
        axis: match axis {
            "obs" => annpage::Axis::Obs,
            "var" => annpage::Axis::Var,
            other => {
                return Err(PyValueError::new_err(format!(
                    "axis must be 'obs' or 'var', not {other:?}"
                )))
            }
        },
        join: match join {
            "inner" => annpage::Join::Inner,
            "outer" => annpage::Join::Outer,
            other => {
                return Err(PyValueError::new_err(format!(
                    "join must be 'inner' or 'outer', not {other:?}"
                )))
            }
        },
        merge: strategy(merge)?,
        uns_merge: strategy(uns_merge)?,
        label,
        keys,
        index_unique,
        fill_value,
        pairwise,
    };
    let write = annpage::WriteOptions {
        compression: backed::compression_of(compression)?,
    };
    let backed = annpage::BackedOptions {
        cache_bytes,
        ..annpage::BackedOptions::default()
    };
    py.detach(|| annpage::concat_on_disk(&paths, &out, &options, &write, &backed))
        .map_err(errors::to_py)
}

/// The module `annpage._annpage`.
#[pymodule]
fn _annpage(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(read_elements, m)?)?;
    m.add_function(wrap_pyfunction!(concat_on_disk, m)?)?;
    m.add_class::<backed::Backed>()?;
    m.add_class::<backed::Chunks>()?;
    Ok(())
}
