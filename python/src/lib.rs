//! The native part of the Python package `annpage` (imported as `annpage._annpage`).
//!
//! It reads with the public `annpage` crate and hands plain values to the pure-Python part
//! (`annpage/`), which builds the anndata, scipy and pandas objects users expect. Every read
//! runs with the GIL released.
#![deny(missing_docs)]

mod backed;
mod convert;
mod errors;

use std::path::PathBuf;

use annpage::data::DType;
use annpage::VarNames;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Reads a whole `.h5ad` file into memory and returns its elements as a dict of plain values
/// (see `convert`); `annpage.read_h5ad` builds the `AnnData` from them.
#[pyfunction]
fn read_elements(py: Python<'_>, path: PathBuf) -> PyResult<Bound<'_, PyAny>> {
    let adata = py
        .detach(|| annpage::read_h5ad(&path))
        .map_err(errors::to_py)?;
    convert::anndata(py, adata)
}

/// Reads a Matrix Market file as `annpage::read_mtx` does (`dtype` a numpy dtype name).
#[pyfunction]
fn read_mtx_elements<'py>(
    py: Python<'py>,
    path: PathBuf,
    dtype: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let dtype = match dtype {
        "float32" => DType::F32,
        "float64" => DType::F64,
        "int32" => DType::I32,
        "int64" => DType::I64,
        other => {
            return Err(PyValueError::new_err(format!(
                "dtype must be float32, float64, int32 or int64, not {other}"
            )))
        }
    };
    let adata = py
        .detach(|| annpage::read_mtx(&path, dtype))
        .map_err(errors::to_py)?;
    convert::anndata(py, adata)
}

/// Reads a 10x directory as `annpage::read_10x_mtx` does.
#[pyfunction]
fn read_10x_mtx_elements<'py>(
    py: Python<'py>,
    path: PathBuf,
    gene_ids: bool,
    make_unique: bool,
    gex_only: bool,
    prefix: String,
) -> PyResult<Bound<'py, PyAny>> {
    let options = annpage::TenxMtxOptions {
        var_names: if gene_ids {
            VarNames::GeneIds
        } else {
            VarNames::GeneSymbols
        },
        make_unique,
        gex_only,
        prefix,
    };
    let adata = py
        .detach(|| annpage::read_10x_mtx(&path, &options))
        .map_err(errors::to_py)?;
    convert::anndata(py, adata)
}

/// Reads a 10x HDF5 file as `annpage::read_10x_h5` does.
#[pyfunction]
#[pyo3(signature = (path, genome, gex_only))]
fn read_10x_h5_elements(
    py: Python<'_>,
    path: PathBuf,
    genome: Option<String>,
    gex_only: bool,
) -> PyResult<Bound<'_, PyAny>> {
    let options = annpage::TenxH5Options { genome, gex_only };
    let adata = py
        .detach(|| annpage::read_10x_h5(&path, &options))
        .map_err(errors::to_py)?;
    convert::anndata(py, adata)
}

/// Reads a delimited table as `annpage::read_csv` does (`delimiter` None: whitespace).
#[pyfunction]
#[pyo3(signature = (path, delimiter, first_column_names))]
fn read_csv_elements(
    py: Python<'_>,
    path: PathBuf,
    delimiter: Option<char>,
    first_column_names: Option<bool>,
) -> PyResult<Bound<'_, PyAny>> {
    let options = annpage::CsvOptions {
        delimiter,
        first_column_names,
    };
    let adata = py
        .detach(|| annpage::read_csv(&path, &options))
        .map_err(errors::to_py)?;
    convert::anndata(py, adata)
}

/// Reads a loom file as `annpage::read_loom` does.
#[pyfunction]
fn read_loom_elements<'py>(
    py: Python<'py>,
    path: PathBuf,
    sparse: bool,
    x_name: String,
    obs_names: String,
    var_names: String,
) -> PyResult<Bound<'py, PyAny>> {
    let options = annpage::LoomOptions {
        x_name,
        obs_names,
        var_names,
        sparse,
    };
    let adata = py
        .detach(|| annpage::read_loom(&path, &options))
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
    paths: Vec<PathBuf>,
    out: PathBuf,
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
    m.add_function(wrap_pyfunction!(read_mtx_elements, m)?)?;
    m.add_function(wrap_pyfunction!(read_10x_mtx_elements, m)?)?;
    m.add_function(wrap_pyfunction!(read_10x_h5_elements, m)?)?;
    m.add_function(wrap_pyfunction!(read_csv_elements, m)?)?;
    m.add_function(wrap_pyfunction!(read_loom_elements, m)?)?;
    m.add_class::<backed::Backed>()?;
    m.add_class::<backed::Chunks>()?;
    Ok(())
}
