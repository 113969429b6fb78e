//! `annpage.concat` (objects in memory) and `annpage.concat_on_disk` (files), with anndata's
//! argument names.

use std::path::PathBuf;

use annpage::{AnnData, Axis, ConcatOptions, FillValue, Join, MergeStrategy};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::{backed, convert, errors, parse};

/// `anndata.concat`'s arguments, from a dict keyed by their names (`axis` is `"obs"` when
/// absent), made once by the Python wrappers and handed over whole.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct ConcatArgs {
    #[pyo3(default)]
    axis: Option<String>,
    join: String,
    merge: Option<String>,
    uns_merge: Option<String>,
    label: Option<String>,
    keys: Option<Vec<String>>,
    index_unique: Option<String>,
    fill_value: Option<Fill>,
    pairwise: bool,
}

/// A fill value as Python gives it: a `bool`, an `int` (the wrappers pass numpy bools and
/// integers as `bool` and `int`) or a `float`.
#[derive(FromPyObject)]
enum Fill {
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl From<Fill> for FillValue {
    fn from(f: Fill) -> Self {
        match f {
            Fill::Bool(b) => FillValue::Bool(b),
            Fill::Int(i) => FillValue::Int(i),
            Fill::Float(v) => FillValue::Float(v),
        }
    }
}

impl ConcatArgs {
    /// The arguments as [`ConcatOptions`]; a `ValueError` for a name annpage does not know.
    pub fn options(self) -> PyResult<ConcatOptions> {
        let parse = |e: annpage::Error| PyValueError::new_err(e.to_string());
        let strategy = |s: Option<String>| -> PyResult<Option<MergeStrategy>> {
            s.as_deref().map(str::parse).transpose().map_err(parse)
        };
        Ok(ConcatOptions {
            axis: self
                .axis
                .as_deref()
                .unwrap_or("obs")
                .parse::<Axis>()
                .map_err(parse)?,
            join: self.join.parse::<Join>().map_err(parse)?,
            merge: strategy(self.merge)?,
            uns_merge: strategy(self.uns_merge)?,
            label: self.label,
            keys: self.keys,
            index_unique: self.index_unique,
            fill_value: self.fill_value.map(FillValue::from),
            pairwise: self.pairwise,
        })
    }
}

/// Concatenates objects flattened by `annpage/_convert.py` as `annpage::concat` does and
/// returns the result's elements (see `annpage.concat` for the arguments).
#[pyfunction]
pub fn concat_elements<'py>(
    py: Python<'py>,
    objects: Vec<Bound<'py, PyDict>>,
    args: ConcatArgs,
) -> PyResult<Bound<'py, PyAny>> {
    let options = args.options()?;
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
#[pyo3(signature = (paths, out, args, compression, cache_bytes))]
pub fn concat_on_disk(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    out: PathBuf,
    args: ConcatArgs,
    compression: Option<&str>,
    cache_bytes: usize,
) -> PyResult<()> {
    let options = args.options()?;
    // The output's format follows its name, as the CLI's `concat -o`.
    let write = annpage::WriteOptions {
        compression: backed::compression_of(compression, None)?,
        store: annpage::StoreKind::of_path(&out),
        ..Default::default()
    };
    let backed = annpage::BackedOptions {
        cache_bytes,
        ..annpage::BackedOptions::default()
    };
    py.detach(|| annpage::concat_on_disk(&paths, &out, &options, &write, &backed))
        .map_err(errors::to_py)
}
