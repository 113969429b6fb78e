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

/// The module `annpage._annpage`.
#[pymodule]
fn _annpage(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(read_elements, m)?)?;
    m.add_class::<backed::Backed>()?;
    m.add_class::<backed::Chunks>()?;
    Ok(())
}
