//! `Collection`: several `.h5ad` files as one lazy concatenation along obs, wrapped by
//! `annpage.BackedCollection`. Its methods are those of `Backed`, so that the Python handle
//! class serves both.

use std::path::PathBuf;

use annpage::backed::{BatchOptions, MatrixKind, ReadOptions};
use annpage::data::SparseFormat;
use annpage::{read_collection, BackedCollection, BackedOptions};
use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;

use crate::backed::{axis_of, positions_of, BatchArgs, Batches, Chunks};
use crate::convert;
use crate::errors::to_py;
use crate::handle::shared_handle_methods;
use numpy::PyReadonlyArray1;

/// Several files read as one lazy AnnData, and the cells and genes it selects.
#[pyclass(module = "annpage._annpage", frozen)]
pub struct Collection {
    inner: BackedCollection,
}

impl Collection {
    /// The layer `key` of a `layers` request, or `None` for `X`.
    fn layer<'k>(&self, which: &str, key: Option<&'k str>) -> PyResult<Option<&'k str>> {
        match which {
            "X" if self.inner.has_x() => Ok(None),
            "layers" => {
                let key = key.ok_or_else(|| PyValueError::new_err("layers needs a key"))?;
                if !self.inner.layer_names().iter().any(|k| k == key) {
                    return Err(PyKeyError::new_err(key.to_owned()));
                }
                Ok(Some(key))
            }
            other => Err(PyKeyError::new_err(other.to_owned())),
        }
    }
}

#[pymethods]
impl Collection {
    /// Opens `paths` as one collection (see `annpage.read_collection` for the arguments).
    #[staticmethod]
    #[pyo3(signature = (paths, args, cache_bytes, threads=None))]
    fn open(
        py: Python<'_>,
        paths: Vec<PathBuf>,
        args: crate::concat::ConcatArgs,
        cache_bytes: usize,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let options = args.options()?;
        let inner = py
            .detach(|| {
                let mut backed = BackedOptions {
                    cache_bytes,
                    ..BackedOptions::default()
                };
                if let Some(n) = threads {
                    backed.read = ReadOptions::with_threads(n.max(1));
                }
                read_collection(&paths, &options, &backed)
            })
            .map_err(to_py)?;
        Ok(Collection { inner })
    }

    /// The files, in order.
    #[getter]
    fn filenames(&self) -> Vec<PathBuf> {
        self.inner
            .files()
            .iter()
            .map(|f| f.path().to_path_buf())
            .collect()
    }

    /// pandas' name of the obs (`"obs"`) or var index (the concatenation's).
    fn index_name(&self, axis: &str) -> PyResult<Option<String>> {
        Ok(self.inner.index_name(axis_of(axis)?))
    }

    /// How the obs or var index is stored: `None` as text, `"string"` or `"str"` as a
    /// nullable string array of that kind (anndata 0.13's pandas string indexes).
    fn index_na(&self, axis: &str) -> PyResult<Option<&'static str>> {
        let na = self.inner.index_string_na(axis_of(axis)?);
        Ok(na.map(crate::convert::string_kind))
    }

    fn keys(&self, py: Python<'_>, which: &str) -> PyResult<Vec<String>> {
        // The first call concatenates the files' annotations: without the GIL.
        let c = &self.inner;
        Ok(match which {
            "layers" => c.layer_names().to_vec(),
            "obsm" => py.detach(|| c.obsm_keys()).map_err(to_py)?,
            "varm" => py.detach(|| c.varm_keys()).map_err(to_py)?,
            "obsp" => py.detach(|| c.obsp_keys()).map_err(to_py)?,
            "varp" => py.detach(|| c.varp_keys()).map_err(to_py)?,
            "uns" => py.detach(|| c.uns_keys()).map_err(to_py)?,
            other => return Err(PyValueError::new_err(format!("no mapping slot {other:?}"))),
        })
    }

    fn has_matrix(&self, which: &str) -> bool {
        which == "X" && self.inner.has_x()
    }

    #[pyo3(signature = (which, key=None))]
    fn matrix_meta(
        &self,
        which: &str,
        key: Option<&str>,
    ) -> PyResult<((usize, usize), &'static str, &'static str)> {
        let layer = self.layer(which, key)?;
        let (kind, dtype) = self.inner.matrix_kind(layer).map_err(to_py)?;
        let format = match kind {
            MatrixKind::Dense => "dense",
            MatrixKind::Sparse(SparseFormat::Csr) => "csr",
            MatrixKind::Sparse(SparseFormat::Csc) => "csc",
        };
        Ok((self.inner.shape(), dtype.name(), format))
    }

    /// Reads `X`, a layer, or an `obsp`/`varp` matrix of the selection into memory.
    #[pyo3(signature = (which, key=None))]
    fn read_matrix<'py>(
        &self,
        py: Python<'py>,
        which: &str,
        key: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let m = if let ("obsp" | "varp", Some(key)) = (which, key) {
            let a = py.detach(|| self.inner.annotations()).map_err(to_py)?;
            let slot = if which == "obsp" { a.obsp() } else { a.varp() };
            slot.get(key)
                .cloned()
                .ok_or_else(|| PyKeyError::new_err(key.to_owned()))?
        } else {
            let layer = self.layer(which, key)?;
            py.detach(|| match layer {
                None => self.inner.x_to_memory(),
                Some(name) => self.inner.layer_to_memory(name),
            })
            .map_err(to_py)?
        };
        convert::matrix(py, m)
    }

    /// Reads an `obsm` or `varm` element of the selection.
    fn read_element<'py>(
        &self,
        py: Python<'py>,
        which: &str,
        key: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = py.detach(|| self.inner.annotations()).map_err(to_py)?;
        let slot = if which == "obsm" { a.obsm() } else { a.varm() };
        let e = slot
            .get(key)
            .cloned()
            .ok_or_else(|| PyKeyError::new_err(key.to_owned()))?;
        convert::element(py, e)
    }

    #[pyo3(signature = (which, key, chunk_rows))]
    fn chunks(
        &self,
        py: Python<'_>,
        which: &str,
        key: Option<&str>,
        chunk_rows: usize,
    ) -> PyResult<Chunks> {
        let layer = self.layer(which, key)?;
        let chunks = py
            .detach(|| match layer {
                None => self.inner.chunk_x(chunk_rows.max(1)),
                Some(name) => self.inner.chunk_layer(name, chunk_rows.max(1)),
            })
            .map_err(to_py)?;
        let buffers = chunks.buffers();
        Ok(Chunks::new(chunks, buffers))
    }

    /// Shuffled batches of X or a layer (`Backed.batches`).
    fn batches(
        &self,
        py: Python<'_>,
        which: &str,
        key: Option<&str>,
        args: BatchArgs,
    ) -> PyResult<Batches> {
        let layer = self.layer(which, key)?;
        let opts = BatchOptions::from(args);
        let batches = py
            .detach(|| self.inner.batches(layer, &opts))
            .map_err(to_py)?;
        Ok(Batches::new(batches))
    }

    /// The batches `order` of X or a layer, in that order (`Backed.batches_of`).
    fn batches_of(
        &self,
        py: Python<'_>,
        which: &str,
        key: Option<&str>,
        order: Vec<PyReadonlyArray1<'_, i64>>,
    ) -> PyResult<Batches> {
        let layer = self.layer(which, key)?;
        let order = positions_of(&order)?;
        let batches = py
            .detach(|| self.inner.batches_of(layer, order))
            .map_err(to_py)?;
        Ok(Batches::new(batches))
    }
}

shared_handle_methods!(Collection);
