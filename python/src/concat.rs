//! `annpage.concat` (objects in memory) and `annpage.concat_on_disk` (files), with anndata's
//! argument names.

use std::path::PathBuf;

use annpage::{AnnData, Axis, ConcatOptions, Join, MergeStrategy};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::{backed, convert, errors, parse};

/// `anndata.concat`'s arguments as [`ConcatOptions`].
#[allow(clippy::too_many_arguments)]
pub fn options(
    axis: &str,
    join: &str,
    merge: Option<&str>,
    uns_merge: Option<&str>,
    label: Option<String>,
    keys: Option<Vec<String>>,
    index_unique: Option<String>,
    fill_value: Option<f64>,
    pairwise: bool,
) -> PyResult<ConcatOptions> {
    let parse = |e: annpage::Error| PyValueError::new_err(e.to_string());
    let strategy = |s: Option<&str>| -> PyResult<Option<MergeStrategy>> {
        s.map(str::parse).transpose().map_err(parse)
    };
    Ok(ConcatOptions {
        axis: axis.parse::<Axis>().map_err(parse)?,
        join: join.parse::<Join>().map_err(parse)?,
        merge: strategy(merge)?,
        uns_merge: strategy(uns_merge)?,
        label,
        keys,
        index_unique,
        fill_value,
        pairwise,
    })
}

/// Concatenates objects flattened by `annpage/_convert.py` as `annpage::concat` does and
/// returns the result's elements (see `annpage.concat` for the arguments).
#[pyfunction]
#[pyo3(signature = (objects, axis, join, merge, uns_merge, label, keys, index_unique, fill_value, pairwise))]
#[allow(clippy::too_many_arguments)]
pub fn concat_elements<'py>(
    py: Python<'py>,
    objects: Vec<Bound<'py, PyDict>>,
    axis: &str,
    join: &str,
    merge: Option<&str>,
    uns_merge: Option<&str>,
    label: Option<String>,
    keys: Option<Vec<String>>,
    index_unique: Option<String>,
    fill_value: Option<f64>,
    pairwise: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let options = options(
        axis,
        join,
        merge,
        uns_merge,
        label,
        keys,
        index_unique,
        fill_value,
        pairwise,
    )?;
    let elems = objects
        .iter()
        .map(parse::anndata)
        .collect::<PyResult<Vec<_>>>()?;
    let joined = py
        .detach(|| {
            let objects = elems
                .into_iter()
                .map(AnnData::from_elements)
                .collect::<annpage::Result<Vec<_>>>()?;
            annpage::concat(&objects, &options)
        })
        .map_err(errors::to_py)?;
    convert::anndata(py, joined)
}

/// Concatenates files into `out` as `annpage::concat_on_disk` does (see
/// `annpage.concat_on_disk` for the arguments).
#[pyfunction]
#[pyo3(signature = (paths, out, axis, join, merge, uns_merge, label, keys, index_unique, fill_value, pairwise, compression, cache_bytes))]
#[allow(clippy::too_many_arguments)]
pub fn concat_on_disk(
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
    let options = options(
        axis,
        join,
        merge,
        uns_merge,
        label,
        keys,
        index_unique,
        fill_value,
        pairwise,
    )?;
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
