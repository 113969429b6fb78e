//! The native part of the Python package `annpage` (imported as `annpage._annpage`).
//!
//! It reads with the public `annpage` crate and hands plain values to the pure-Python part
//! (`annpage/`), which builds the anndata, scipy and pandas objects users expect. Every read
//! runs with the GIL released.
#![deny(missing_docs)]

mod backed;
mod collection;
mod concat;
mod convert;
mod errors;
mod handle;
mod lend;
mod parse;
mod serve;

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

/// Writes an object flattened by `annpage/_convert.py` (`elements`) to `path` as `.h5ad`, or
/// as a Zarr store when `zarr` gives its format, chunk rows and shard rows.
#[pyfunction]
#[pyo3(signature = (elements, path, compression, strings_to_categoricals, zarr=None, compression_opts=None))]
fn write_elements(
    py: Python<'_>,
    elements: &Bound<'_, pyo3::types::PyDict>,
    path: PathBuf,
    compression: Option<&str>,
    strings_to_categoricals: bool,
    zarr: Option<backed::ZarrArgs>,
    compression_opts: Option<u8>,
) -> PyResult<()> {
    let elems = parse::anndata(elements)?;
    let options = backed::write_options(compression, compression_opts, zarr)?;
    py.detach(|| {
        let mut adata = annpage::AnnData::from_elements(elems)?;
        if strings_to_categoricals {
            adata.strings_to_categoricals()?;
            adata.raw_strings_to_categoricals()?;
        }
        match options.store {
            annpage::StoreKind::Zarr => adata.write_zarr(&path, &options),
            annpage::StoreKind::H5ad => adata.write_h5ad(&path, &options),
        }
    })
    .map_err(errors::to_py)
}

/// Writes an object flattened by `annpage/_convert.py` as a loom file, as
/// `annpage::AnnData::write_loom` does.
#[pyfunction]
fn write_loom_elements(
    py: Python<'_>,
    elements: &Bound<'_, pyo3::types::PyDict>,
    path: PathBuf,
    write_obsm_varm: bool,
) -> PyResult<()> {
    let elems = parse::anndata(elements)?;
    py.detach(|| annpage::AnnData::from_elements(elems)?.write_loom(&path, write_obsm_varm))
        .map_err(errors::to_py)
}

/// Writes an object flattened by `annpage/_convert.py` as CSV files into `dir`, as
/// `annpage::AnnData::write_csvs` does.
#[pyfunction]
fn write_csvs_elements(
    py: Python<'_>,
    elements: &Bound<'_, pyo3::types::PyDict>,
    dir: PathBuf,
    skip_data: bool,
    sep: char,
) -> PyResult<()> {
    let elems = parse::anndata(elements)?;
    py.detach(|| annpage::AnnData::from_elements(elems)?.write_csvs(&dir, skip_data, sep))
        .map_err(errors::to_py)
}

/// The module `annpage._annpage`.
#[pymodule]
fn _annpage(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // A decoder's panic on a corrupt file becomes the exception naming the file, without
    // Rust's report on stderr first; the hook is this module's own (its standard library's).
    annpage::panics::install_hook(annpage::panics::Report::Quiet);
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(read_elements, m)?)?;
    m.add_function(wrap_pyfunction!(concat::concat_on_disk, m)?)?;
    m.add_function(wrap_pyfunction!(concat::concat_elements, m)?)?;
    m.add_function(wrap_pyfunction!(write_elements, m)?)?;
    m.add_function(wrap_pyfunction!(write_loom_elements, m)?)?;
    m.add_function(wrap_pyfunction!(write_csvs_elements, m)?)?;
    m.add_function(wrap_pyfunction!(read_mtx_elements, m)?)?;
    m.add_function(wrap_pyfunction!(read_10x_mtx_elements, m)?)?;
    m.add_function(wrap_pyfunction!(read_10x_h5_elements, m)?)?;
    m.add_function(wrap_pyfunction!(read_csv_elements, m)?)?;
    m.add_function(wrap_pyfunction!(read_loom_elements, m)?)?;
    m.add_class::<backed::Backed>()?;
    m.add_class::<backed::Chunks>()?;
    m.add_class::<backed::Batches>()?;
    m.add_class::<collection::Collection>()?;
    m.add_class::<serve::Server>()?;
    Ok(())
}
