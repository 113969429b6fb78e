//! `Backed`: a lazy handle over an `.h5ad` file, wrapped by `annpage.BackedAnnData`.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Mutex;

use annpage::backed::{BatchOptions, MatrixKind, ReadOptions, ScanBuffers, StoredAs};
use annpage::data::{Matrix, SparseFormat};
use annpage::{
    read_h5ad_backed, Axis, BackedAnnData, BackedMatrixView, BackedOptions, Compression, Mode,
    Selection, WriteOptions, ZarrCompression, ZarrFormat, ZarrOptions,
};
use numpy::PyReadonlyArray1;
use pyo3::exceptions::{PyIndexError, PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PySlice};

use crate::convert;
use crate::errors::to_py;
use crate::handle::shared_handle_methods;
use crate::lend;
use crate::parse;

/// One axis' selection from Python: `None` (everything), a `slice` of ints, or a 1-d `int64`
/// array of positions (the Python side resolves masks and names to positions).
pub fn selection(sel: Option<&Bound<'_, PyAny>>) -> PyResult<Selection> {
    let Some(sel) = sel.filter(|s| !s.is_none()) else {
        return Ok(Selection::All);
    };
    if let Ok(slice) = sel.cast::<PySlice>() {
        let get = |name: &str| -> PyResult<Option<isize>> { slice.getattr(name)?.extract() };
        return Ok(Selection::slice(
            get("start")?,
            get("stop")?,
            get("step")?.unwrap_or(1),
        ));
    }
    let positions: PyReadonlyArray1<'_, i64> = sel.extract()?;
    let positions = positions.as_slice()?;
    Ok(Selection::Positions(
        positions.iter().map(|&p| p as isize).collect(),
    ))
}

/// The axis `"obs"` or `"var"` names.
pub(crate) fn axis_of(axis: &str) -> PyResult<Axis> {
    match axis {
        "obs" => Ok(Axis::Obs),
        "var" => Ok(Axis::Var),
        other => Err(PyValueError::new_err(format!(
            "axis must be 'obs' or 'var', not {other:?}"
        ))),
    }
}

/// Batches of positions (int64 arrays, each position at least 0) as the Rust API takes them.
pub fn positions_of(order: &[PyReadonlyArray1<'_, i64>]) -> PyResult<Vec<Vec<usize>>> {
    order
        .iter()
        .map(|batch| {
            let rows = batch.as_slice()?;
            rows.iter()
                .map(|&r| {
                    usize::try_from(r)
                        .map_err(|_| PyIndexError::new_err(format!("row position {r} below 0")))
                })
                .collect()
        })
        .collect()
}

/// A lazy handle over an `.h5ad` file and the cells and genes it selects.
#[pyclass(module = "annpage._annpage", frozen)]
pub struct Backed {
    inner: BackedAnnData,
}

impl Backed {
    fn matrix(&self, which: &str, key: Option<&str>) -> PyResult<BackedMatrixView> {
        let key_of = || key.ok_or_else(|| PyValueError::new_err(format!("{which} needs a key")));
        let missing = || PyKeyError::new_err(key.unwrap_or(which).to_owned());
        match which {
            "X" => self.inner.x().ok_or_else(missing),
            "raw" => self.inner.raw_x().ok_or_else(missing),
            "layers" | "obsp" | "varp" => {
                let key = key_of()?;
                if !self.keys(which)?.iter().any(|k| k == key) {
                    return Err(missing());
                }
                match which {
                    "layers" => self.inner.layer(key),
                    "obsp" => self.inner.obsp(key),
                    _ => self.inner.varp(key),
                }
                .map_err(to_py)
            }
            other => Err(PyValueError::new_err(format!("no matrix slot {other:?}"))),
        }
    }
}

#[pymethods]
impl Backed {
    /// Opens `path` with a cache of `cache_bytes` and `threads` reader threads (default: one
    /// per core), read-only unless `writable` (then changes are written back by `flush`).
    /// Reads metadata only.
    #[staticmethod]
    #[pyo3(signature = (path, cache_bytes, threads=None, writable=false))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        cache_bytes: usize,
        threads: Option<usize>,
        writable: bool,
    ) -> PyResult<Self> {
        let mode = if writable {
            Mode::ReadWrite
        } else {
            Mode::Read
        };
        let inner = py
            .detach(|| {
                let mut options = BackedOptions {
                    cache_bytes,
                    ..BackedOptions::default()
                };
                if let Some(n) = threads {
                    options.read = ReadOptions::with_threads(n.max(1));
                }
                read_h5ad_backed(&path, mode, options)
            })
            .map_err(to_py)?;
        Ok(Backed { inner })
    }

    /// Replaces `obs` or `var` (`axis`) with a tagged data frame (a pending change).
    fn set_frame(&self, axis: &str, frame: &Bound<'_, PyAny>) -> PyResult<()> {
        let df = parse::dataframe(frame)?;
        match axis_of(axis)? {
            Axis::Obs => self.inner.set_obs(df),
            Axis::Var => self.inner.set_var(df),
        }
        .map_err(to_py)
    }

    /// Adds or replaces entry `key` of `which` (`obsm`, `varm`, `uns`, `layers`, `obsp`,
    /// `varp`) with a tagged value (a pending change).
    fn insert_element(&self, which: &str, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let b = &self.inner;
        match which {
            "obsm" => b.insert_obsm(key, parse::element(value)?),
            "varm" => b.insert_varm(key, parse::element(value)?),
            "uns" => b.insert_uns(key, parse::element(value)?),
            "layers" => b.insert_layer(key, parse::matrix(value)?),
            "obsp" => b.insert_obsp(key, parse::matrix(value)?),
            "varp" => b.insert_varp(key, parse::matrix(value)?),
            other => return Err(PyValueError::new_err(format!("cannot change {other}"))),
        }
        .map_err(to_py)
    }

    /// Removes entry `key` of `which` (a pending change); `KeyError` if there is none.
    fn remove_element(&self, which: &str, key: &str) -> PyResult<()> {
        if !self.keys(which)?.iter().any(|k| k == key) {
            return Err(PyKeyError::new_err(key.to_owned()));
        }
        let b = &self.inner;
        match which {
            "obsm" => b.remove_obsm(key),
            "varm" => b.remove_varm(key),
            "uns" => b.remove_uns(key),
            "layers" => b.remove_layer(key),
            "obsp" => b.remove_obsp(key),
            "varp" => b.remove_varp(key),
            other => return Err(PyValueError::new_err(format!("cannot change {other}"))),
        }
        .map_err(to_py)
    }

    /// Writes the selection (transposed when `transposed`, as
    /// `annpage::backed::TransposedBacked` writes it) as an `.h5ad` file, or a Zarr store when
    /// `zarr` gives the format, chunk rows and shard rows, with the matrices `dense` names
    /// (`"X"`, `"raw/X"`: anndata's `as_dense`) stored dense and, with
    /// `strings_to_categoricals`, string columns that repeat a value as categoricals; streamed
    /// (`annpage::backed::BackedAnnData::write_stored_as`).
    #[pyo3(signature = (path, compression=None, compression_opts=None, zarr=None, transposed=false, dense=Vec::new(), strings_to_categoricals=false))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of the Python call
    fn write_as(
        &self,
        py: Python<'_>,
        path: PathBuf,
        compression: Option<&str>,
        compression_opts: Option<u8>,
        zarr: Option<ZarrArgs>,
        transposed: bool,
        dense: Vec<String>,
        strings_to_categoricals: bool,
    ) -> PyResult<()> {
        let options = write_options(compression, compression_opts, zarr)?;
        let mut stored = StoredAs {
            strings_to_categoricals,
            ..StoredAs::default()
        };
        for name in &dense {
            match name.as_str() {
                "X" => stored.x = Some(MatrixKind::Dense),
                "raw/X" => stored.raw_x = Some(MatrixKind::Dense),
                other => {
                    return Err(PyValueError::new_err(format!(
                        "only X and raw/X can be written dense, not {other:?}"
                    )))
                }
            }
        }
        py.detach(|| {
            if transposed {
                self.inner
                    .transpose()
                    .write_stored_as(&path, &options, stored)
            } else {
                self.inner.write_stored_as(&path, &options, stored)
            }
        })
        .map_err(to_py)
    }

    /// Writes the transposed selection as a loom file, its matrices a block at a time
    /// (`annpage::backed::TransposedBacked::write_loom`).
    fn write_loom_transposed(
        &self,
        py: Python<'_>,
        path: PathBuf,
        write_obsm_varm: bool,
    ) -> PyResult<()> {
        py.detach(|| self.inner.transpose().write_loom(&path, write_obsm_varm))
            .map_err(to_py)
    }

    /// Writes the transposed selection as CSV files into `dir`
    /// (`annpage::backed::TransposedBacked::write_csvs`).
    fn write_csvs_transposed(
        &self,
        py: Python<'_>,
        dir: PathBuf,
        skip_data: bool,
        sep: char,
    ) -> PyResult<()> {
        py.detach(|| self.inner.transpose().write_csvs(&dir, skip_data, sep))
            .map_err(to_py)
    }

    /// The selection in memory (as `to_memory`), with X and raw.X stored as `x` and `raw_x`
    /// say (`"dense"`, `"csr"`, `"csc"`; as stored when `None`): anndata's `as_sparse`
    /// (`annpage::backed::BackedAnnData::to_memory_stored_as`).
    #[pyo3(signature = (x=None, raw_x=None))]
    fn to_memory_as<'py>(
        &self,
        py: Python<'py>,
        x: Option<&str>,
        raw_x: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let stored = StoredAs {
            x: x.map(matrix_kind).transpose()?,
            layers: None,
            raw_x: raw_x.map(matrix_kind).transpose()?,
            strings_to_categoricals: false,
        };
        let adata = py
            .detach(|| self.inner.to_memory_stored_as(stored))
            .map_err(to_py)?;
        convert::anndata(py, adata)
    }

    /// Writes the pending changes back to the file (rewritten beside it and renamed);
    /// `finish(path)`, if given, is called with the new file before the rename (see
    /// `annpage::backed::BackedAnnData::flush_with`); its exception is raised as it is.
    #[pyo3(signature = (finish=None))]
    fn flush(&self, py: Python<'_>, finish: Option<Py<PyAny>>) -> PyResult<()> {
        let Some(finish) = finish else {
            return py.detach(|| self.inner.flush()).map_err(to_py);
        };
        let mut raised: Option<PyErr> = None;
        let result = py.detach(|| {
            self.inner.flush_with(|path| {
                Python::attach(|py| finish.call1(py, (path.to_path_buf(),)).map(drop)).map_err(
                    |e| {
                        raised = Some(e);
                        annpage::Error::invalid("the finishing step failed")
                    },
                )
            })
        });
        match (result, raised) {
            (Err(_), Some(e)) => Err(e),
            (r, _) => r.map_err(to_py),
        }
    }

    /// `(raw.var, raw.varm)` as a tagged data frame and a dict, or `None` without a raw.
    fn raw_annotations<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some((var, varm)) = py.detach(|| self.inner.raw_annotations()).map_err(to_py)? else {
            return Ok(None);
        };
        let pair = (convert::dataframe(py, var)?, convert::mapping(py, varm)?);
        Ok(Some(
            pyo3::IntoPyObject::into_pyobject(pair, py)?.into_any(),
        ))
    }

    /// Forgets the pending changes (nothing is written on drop).
    fn discard(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.discard_changes()).map_err(to_py)
    }

    /// Whether changes wait for `flush`.
    #[getter]
    fn pending(&self) -> bool {
        self.inner.has_pending_changes()
    }

    /// The file's path.
    #[getter]
    fn filename(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }

    /// pandas' name of the obs (`"obs"`) or var index, from metadata only.
    fn index_name(&self, axis: &str) -> PyResult<Option<String>> {
        Ok(self.inner.index_name(axis_of(axis)?))
    }

    /// How the obs or var index is stored: `None` as text, `"string"` or `"str"` as a
    /// nullable string array of that kind (anndata 0.13's pandas string indexes).
    fn index_na(&self, axis: &str) -> PyResult<Option<&'static str>> {
        let na = self.inner.index_string_na(axis_of(axis)?);
        Ok(na.map(crate::convert::string_kind))
    }

    /// The keys of a mapping slot (`layers`, `obsm`, `varm`, `obsp`, `varp`, `uns`).
    fn keys(&self, which: &str) -> PyResult<Vec<String>> {
        Ok(match which {
            "layers" => self.inner.layer_names(),
            "obsm" => self.inner.obsm_keys(),
            "varm" => self.inner.varm_keys(),
            "obsp" => self.inner.obsp_keys(),
            "varp" => self.inner.varp_keys(),
            "uns" => self.inner.uns_keys(),
            "obs" => self.inner.obs_keys(),
            "var" => self.inner.var_keys(),
            other => return Err(PyValueError::new_err(format!("no mapping slot {other:?}"))),
        })
    }

    /// Whether the file has `X` (`raw`: whether it has `raw.X`).
    fn has_matrix(&self, which: &str) -> bool {
        match which {
            "X" => self.inner.x().is_some(),
            "raw" => self.inner.raw_x().is_some(),
            _ => false,
        }
    }

    /// `(shape, dtype name, "dense" | "csr" | "csc")` of a matrix of the selection.
    #[pyo3(signature = (which, key=None))]
    fn matrix_meta(
        &self,
        which: &str,
        key: Option<&str>,
    ) -> PyResult<((usize, usize), &'static str, &'static str)> {
        let m = self.matrix(which, key)?;
        let format = match m.kind() {
            MatrixKind::Dense => "dense",
            MatrixKind::Sparse(SparseFormat::Csr) => "csr",
            MatrixKind::Sparse(SparseFormat::Csc) => "csc",
        };
        Ok((m.shape(), m.dtype().name(), format))
    }

    /// Reads a matrix of the selection (`X`, `layers`, `obsp`, `varp`, `raw`) into memory.
    #[pyo3(signature = (which, key=None))]
    fn read_matrix<'py>(
        &self,
        py: Python<'py>,
        which: &str,
        key: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let m = self.matrix(which, key)?;
        let m = py.detach(|| m.to_memory()).map_err(to_py)?;
        convert::matrix(py, m)
    }

    /// Reads an `obsm` or `varm` element of the selection.
    fn read_element<'py>(
        &self,
        py: Python<'py>,
        which: &str,
        key: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        if !self.keys(which)?.iter().any(|k| k == key) {
            return Err(PyKeyError::new_err(key.to_owned()));
        }
        let e = py
            .detach(|| match which {
                "obsm" => self.inner.obsm(key),
                _ => self.inner.varm(key),
            })
            .map_err(to_py)?;
        convert::element(py, e)
    }

    /// Iterates over a matrix of the selection in blocks of `chunk_rows` rows.
    #[pyo3(signature = (which, key, chunk_rows))]
    fn chunks(
        &self,
        py: Python<'_>,
        which: &str,
        key: Option<&str>,
        chunk_rows: usize,
    ) -> PyResult<Chunks> {
        let m = self.matrix(which, key)?;
        let chunks = py.detach(|| m.chunks(chunk_rows.max(1))).map_err(to_py)?;
        let buffers = chunks.buffers();
        Ok(Chunks::new(chunks, buffers))
    }

    /// Shuffled batches of a matrix of the selection (`BatchOptions` of the Rust API).
    fn batches(
        &self,
        py: Python<'_>,
        which: &str,
        key: Option<&str>,
        args: BatchArgs,
    ) -> PyResult<Batches> {
        let m = self.matrix(which, key)?;
        let opts = BatchOptions::from(args);
        let batches = py.detach(|| m.batches(&opts)).map_err(to_py)?;
        Ok(Batches::new(batches))
    }

    /// The batches `order` (int64 arrays of positions among the selection's rows), in that
    /// order (`BackedMatrixView::batches_of` of the Rust API).
    fn batches_of(
        &self,
        py: Python<'_>,
        which: &str,
        key: Option<&str>,
        order: Vec<PyReadonlyArray1<'_, i64>>,
    ) -> PyResult<Batches> {
        let m = self.matrix(which, key)?;
        let order = positions_of(&order)?;
        let batches = py.detach(|| m.batches_of(order)).map_err(to_py)?;
        Ok(Batches::new(batches))
    }

    /// Writes X at the selection to `path` as a CSC matrix (a gene's values together), out of
    /// core, gathering at most `memory_bytes` of values a pass.
    fn write_gene_major(&self, py: Python<'_>, path: PathBuf, memory_bytes: usize) -> PyResult<()> {
        py.detach(|| {
            self.inner
                .write_gene_major(&path, memory_bytes, &WriteOptions::default())
        })
        .map_err(to_py)
    }
}

shared_handle_methods!(Backed);

/// How Python asks for a Zarr store: `zarr_format`, `chunk_rows`, `shard_rows` and the chunks
/// of a dense X (anndata's `chunks`), as [`zarr_write_options`] takes them.
pub type ZarrArgs = (u8, Option<usize>, Option<usize>, Option<(usize, usize)>);

/// The options of a write: an `.h5ad` file with `compression` (and gzip's level
/// `compression_opts`), or a Zarr store when `zarr` gives its format, chunks and shards (see
/// [`zarr_write_options`]).
pub fn write_options(
    compression: Option<&str>,
    compression_opts: Option<u8>,
    zarr: Option<ZarrArgs>,
) -> PyResult<WriteOptions> {
    match zarr {
        Some(args) => zarr_write_options(compression, args),
        None => Ok(WriteOptions {
            compression: compression_of(compression, compression_opts)?,
            ..Default::default()
        }),
    }
}

/// The options writing a Zarr store: `zarr_format` 2 or 3, `chunk_rows` rows a chunk (default
/// zarr-python's guess), `shard_rows` rows a shard (v3; default shards as anndata 0.13 makes
/// them), `x_chunks` the chunks of a dense X (default guessed as the others'), `compression`
/// `None`, `"gzip"` (level 4) or `"zstd"` (level 0, zarr-python's v3 default).
pub fn zarr_write_options(
    compression: Option<&str>,
    (zarr_format, chunk_rows, shard_rows, x_chunks): ZarrArgs,
) -> PyResult<WriteOptions> {
    let format = match zarr_format {
        2 => ZarrFormat::V2,
        3 => ZarrFormat::V3,
        other => {
            return Err(PyValueError::new_err(format!(
                "zarr_format must be 2 or 3, not {other}"
            )))
        }
    };
    let (compression, codec) = match compression {
        Some("zstd") => (Compression::None, Some(ZarrCompression::Zstd(0))),
        Some("lzf") => {
            return Err(PyValueError::new_err(
                "lzf is an HDF5 filter: Zarr stores take None, 'gzip' or 'zstd'",
            ))
        }
        other => (compression_of(other, None)?, None),
    };
    Ok(WriteOptions {
        compression,
        ..WriteOptions::zarr(ZarrOptions {
            format,
            chunk_rows,
            shard_rows,
            auto_shard: format == ZarrFormat::V3 && shard_rows.is_none(),
            compression: codec,
            x_chunks: x_chunks.map(|(rows, cols)| [rows, cols]),
        })
    })
}

/// Parses a compression as anndata takes it: a name, and for gzip an optional level
/// (`compression_opts`, 0–9, default 4 as h5py's).
pub fn compression_of(name: Option<&str>, level: Option<u8>) -> PyResult<Compression> {
    Ok(match (name, level) {
        (None, None) => Compression::None,
        (Some("gzip"), None) => Compression::Gzip(4),
        (Some("gzip"), Some(level)) if level <= 9 => Compression::Gzip(level),
        (Some("gzip"), Some(level)) => {
            return Err(PyValueError::new_err(format!(
                "gzip's compression_opts is a level from 0 to 9, not {level}"
            )))
        }
        (Some("lzf"), None) => Compression::Lzf,
        (None | Some("lzf"), Some(_)) => {
            return Err(PyValueError::new_err(
                "compression_opts is gzip's level: it needs compression='gzip'",
            ))
        }
        (Some(other), _) => {
            return Err(PyValueError::new_err(format!(
                "compression must be None, 'gzip' or 'lzf', not {other:?}"
            )))
        }
    })
}

/// Row blocks of a matrix: `(rows, matrix)`, in order.
type RowBlocks = Box<dyn Iterator<Item = annpage::Result<(Range<usize>, Matrix)>> + Send>;

/// An iterator over row blocks: yields `(start, end, matrix)`.
#[pyclass(module = "annpage._annpage", frozen)]
pub struct Chunks {
    inner: Mutex<RowBlocks>,
    /// Where the chunks' buffers go back once Python is done with them (see `lend`).
    buffers: Option<ScanBuffers>,
}

impl Chunks {
    /// Wraps the row blocks of a file's or a collection's matrix, whose buffers go back to
    /// `buffers` once Python is done with them.
    pub fn new(
        blocks: impl Iterator<Item = annpage::Result<(Range<usize>, Matrix)>> + Send + 'static,
        buffers: Option<ScanBuffers>,
    ) -> Self {
        Chunks {
            inner: Mutex::new(Box::new(blocks)),
            buffers,
        }
    }
}

#[pymethods]
impl Chunks {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let next = py.detach(|| {
            let mut chunks = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            chunks.next()
        });
        match next {
            None => Ok(None),
            Some(Err(e)) => Err(to_py(e)),
            Some(Ok((rows, m))) => {
                let items = PyList::empty(py);
                items.append(rows.start)?;
                items.append(rows.end)?;
                items.append(lend::matrix(py, m, self.buffers.as_ref())?)?;
                Ok(Some(pyo3::types::PyTuple::new(py, items)?.into_any()))
            }
        }
    }
}

/// `BatchOptions`' fields, from a dict keyed by their names, made by the Python wrapper (which
/// checks them and names them as annbatch does) and handed over whole.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct BatchArgs {
    batch_size: usize,
    run_rows: usize,
    preload_runs: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
}

impl From<BatchArgs> for BatchOptions {
    fn from(a: BatchArgs) -> Self {
        BatchOptions {
            batch_size: a.batch_size,
            run_rows: a.run_rows,
            preload_runs: a.preload_runs,
            shuffle: a.shuffle,
            seed: a.seed,
            drop_last: a.drop_last,
        }
    }
}

/// An iterator over shuffled batches: yields `(rows, matrix)`, `rows` an int64 array of
/// positions among the selection's rows.
#[pyclass(module = "annpage._annpage", frozen)]
pub struct Batches {
    inner: Mutex<annpage::backed::Batches>,
}

impl Batches {
    /// Wraps the batches of a file's or a collection's matrix.
    pub fn new(batches: annpage::backed::Batches) -> Self {
        Batches {
            inner: Mutex::new(batches),
        }
    }
}

#[pymethods]
impl Batches {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __len__(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remaining()
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let next = py.detach(|| {
            let mut batches = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            batches.next()
        });
        match next {
            None => Ok(None),
            Some(Err(e)) => Err(to_py(e)),
            Some(Ok(batch)) => {
                let rows: Vec<i64> = batch.rows.iter().map(|&r| r as i64).collect();
                let rows = numpy::PyArray1::from_vec(py, rows).into_any();
                let x = convert::matrix(py, batch.x)?;
                Ok(Some(pyo3::types::PyTuple::new(py, [rows, x])?.into_any()))
            }
        }
    }
}

/// A matrix kind by name: `"dense"`, `"csr"` or `"csc"`.
fn matrix_kind(name: &str) -> PyResult<MatrixKind> {
    match name {
        "dense" => Ok(MatrixKind::Dense),
        "csr" => Ok(MatrixKind::Sparse(SparseFormat::Csr)),
        "csc" => Ok(MatrixKind::Sparse(SparseFormat::Csc)),
        other => Err(PyValueError::new_err(format!(
            "a matrix is stored as 'dense', 'csr' or 'csc', not {other:?}"
        ))),
    }
}
