//! Writing a new file element by element, with matrices appended chunk by chunk.
//!
//! [`write_file`] creates the file (an `.h5ad` file or a Zarr store, as the options say) beside
//! its target and renames it into place once `f` has written everything; [`write()`] writes a
//! whole object so; with gzip, array chunks are compressed on one thread per core (as
//! `annpage convert` does), not by libhdf5 on one. A [`Writer`] names every element by the path
//! of its group and its name; [`Writer::matrix`] opens a [`MatrixSink`] that takes the rows
//! (or, for CSC, the columns) of a matrix in order, so that no more than one chunk is ever held.
//!
//! ```
//! use annpage_engine::data::{ArrayData, DType, Matrix};
//! use annpage_engine::file::stream::{write_file, MatrixSpec, Values};
//! use annpage_engine::format::{Encoding, WriteOptions};
//! use annpage_engine::paged::MatrixKind;
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("out.h5ad");
//! write_file(&path, &WriteOptions::default(), 2, |w| {
//!     w.set_encoding("/", Encoding::AnnData)?;
//!     let spec = MatrixSpec { kind: MatrixKind::Dense, shape: (4, 2), dtype: DType::F32, values: Values::Exactly(8) };
//!     let mut x = w.matrix("/", "X", &spec)?;
//!     for _ in 0..2 {
//!         x.push(&Matrix::Dense(ArrayData::from(ndarray::Array2::<f32>::ones((2, 2)))))?;
//!     }
//!     x.finish()
//! })?;
//! # Ok::<(), annpage_engine::Error>(())
//! ```

use std::path::Path;

use indexmap::IndexMap;

use crate::data::{ArrayData, DType, DataFrame, Element, Mapping, Matrix, SparseFormat};
use crate::error::ResultExt;
use crate::format::write::staging::Staged;
use crate::format::write::{
    create_sparse_group, index_array, sparse_index_dtype, write_dataframe, write_element,
    write_encoding, write_mapping, write_matrix, write_matrix_mapping, write_root,
};
use crate::format::{AnnDataElements, Compression, Encoding, WriteOptions};
use crate::paged::MatrixKind;
use crate::storage::h5::write::{guess_chunk, with_deflaters, Deflaters, RowWriter};
use crate::storage::write::row_range;
use crate::storage::{ArrayOptions, ArrayWriter, GroupWriter, StoreKind};
use crate::{Error, Result};

use super::join;

/// Writes a new file at `path` with `f`: the file is created beside `path` and renamed into
/// place (after an fsync) only when `f` succeeds; on error `path` is left as it was. With gzip,
/// chunks are compressed on `threads` threads. Errors that do not name a file yet name `path`.
pub fn write_file<R>(
    path: &Path,
    options: &WriteOptions,
    threads: usize,
    f: impl FnOnce(&Writer<'_>) -> Result<R>,
) -> Result<R> {
    // Options no array can be written with are one error, before anything is written.
    options.check().in_file(path)?;
    match options.store {
        StoreKind::H5ad => write_h5(path, options, threads, f),
        StoreKind::Zarr => write_zarr(path, options, f),
    }
}

/// [`write_file`] for an HDF5 file.
fn write_h5<R>(
    path: &Path,
    options: &WriteOptions,
    threads: usize,
    f: impl FnOnce(&Writer<'_>) -> Result<R>,
) -> Result<R> {
    let staged = Staged::beside(path).in_file(path)?;
    let write = || -> Result<R> {
        let file = crate::storage::h5::create(staged.path())?;
        let result = match options.compression {
            Compression::Gzip(_) => with_deflaters(threads, |deflaters| {
                f(&Writer {
                    root: &*file,
                    options,
                    deflaters,
                })
            }),
            _ => f(&Writer {
                root: &*file,
                options,
                deflaters: None,
            }),
        }?;
        file.close()?;
        Ok(result)
    };
    let result = write().in_file(path)?;
    staged.commit(path).in_file(path)?;
    Ok(result)
}

/// [`write_file`] for a Zarr store (a directory), written as `options.zarr` says.
fn write_zarr<R>(
    path: &Path,
    options: &WriteOptions,
    f: impl FnOnce(&Writer<'_>) -> Result<R>,
) -> Result<R> {
    let staged = Staged::dir_beside(path).in_file(path)?;
    let write = || -> Result<R> {
        // The store is created in the staged directory, which must not exist yet.
        std::fs::remove_dir(staged.path())?;
        let root = crate::storage::zarr::write::create(staged.path(), &options.zarr)?;
        f(&Writer {
            root: root.as_ref(),
            options,
            deflaters: None,
        })
    };
    let result = write().in_file(path)?;
    staged.commit(path).in_file(path)?;
    Ok(result)
}

/// Writes a whole object to `path` as `options` say (an `.h5ad` file, or a Zarr store), as
/// anndata's `write_h5ad` / `write_zarr` write it: beside `path`, renamed into place when
/// complete.
///
/// ```
/// use annpage_engine::file::stream::write;
/// use annpage_engine::format::{AnnDataElements, WriteOptions};
/// use annpage_engine::storage::ZarrOptions;
/// let dir = tempfile::tempdir().unwrap();
/// let elems = AnnDataElements::empty(3, 2);
/// write(dir.path().join("a.zarr"), &elems, &WriteOptions::zarr(ZarrOptions::default()))?;
/// let back = annpage_engine::file::read_h5ad(dir.path().join("a.zarr"))?;
/// assert_eq!(back.obs.nrows(), 3);
/// # Ok::<(), annpage_engine::Error>(())
/// ```
pub fn write(
    path: impl AsRef<Path>,
    adata: &AnnDataElements,
    options: &WriteOptions,
) -> Result<()> {
    write_file(path.as_ref(), options, 1, |w| w.write_all(adata))
}

/// A file being written (see [`write_file`]). Groups are named by path (`"/"`, `"/raw"`,
/// `"/layers"`); each element by its group and its name in it.
pub struct Writer<'a> {
    root: &'a dyn GroupWriter,
    options: &'a WriteOptions,
    deflaters: Option<&'a Deflaters>,
}

impl std::fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("root", &self.root.path())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Writer<'_> {
    /// The options the file is written with.
    pub fn options(&self) -> &WriteOptions {
        self.options
    }

    /// The root group, for elements written by a writer of their own (a streamed `X`).
    pub fn root(&self) -> &dyn GroupWriter {
        self.root
    }

    /// Writes every element of `adata` into the root, as anndata writes a whole object (in
    /// a Zarr store, a missing `raw` as anndata's `None`).
    pub fn write_all(&self, adata: &AnnDataElements) -> Result<()> {
        write_root(self.root, adata, self.options)?;
        if adata.raw.is_none() && self.options.store == StoreKind::Zarr {
            let write_null = || -> Result<()> {
                let null = self.root.write_null("raw", DType::Bool)?;
                null.set_str_attr("encoding-type", "null")?;
                null.set_str_attr("encoding-version", "0.1.0")
            };
            write_null().in_element("/raw")?;
        }
        Ok(())
    }

    /// Runs `f` on the group at `path` (`/` for the root); an error naming it when there is
    /// none.
    fn in_group<T>(&self, path: &str, f: impl FnOnce(&dyn GroupWriter) -> Result<T>) -> Result<T> {
        let mut names = path.split('/').filter(|n| !n.is_empty());
        let Some(first) = names.next() else {
            return f(self.root);
        };
        let group = self
            .root
            .open_group(first)
            .and_then(|g| names.try_fold(g, |g, name| g.open_group(name)))
            .in_element(path)?;
        f(group.as_ref())
    }

    /// Sets the `encoding-type`/`encoding-version` attributes of the group at `path`.
    pub fn set_encoding(&self, path: &str, encoding: Encoding) -> Result<()> {
        self.in_group(path, |g| write_encoding(g, encoding))
            .in_element(path)
    }

    /// Creates the group `name` in `parent` with the attributes of `encoding` (e.g. `raw`).
    pub fn create_group(&self, parent: &str, name: &str, encoding: Encoding) -> Result<()> {
        let path = join(parent, name);
        self.in_group(parent, |g| {
            write_encoding(g.create_group(name)?.as_ref(), encoding)
        })
        .in_element(path)
    }

    /// Writes `value` as `name` in `parent`, as `write_h5ad` writes an element; with
    /// gzip, a dense numeric array's chunks are compressed on several threads.
    pub fn write_element(&self, parent: &str, name: &str, value: &Element) -> Result<()> {
        self.in_group(parent, |g| match value {
            Element::Array(a)
                if self.deflaters.is_some() && a.ndim() > 0 && a.dtype() != DType::String =>
            {
                let write = || -> Result<()> {
                    let opts = self.options.array_options();
                    let ds = g.create_array(name, a.dtype(), a.shape(), &opts)?;
                    write_encoding(ds.as_ref(), Encoding::Array)?;
                    let mut w = Rows::new(ds, a.nrows(), &opts, self.deflaters)?;
                    w.push(a)?;
                    w.finish()
                };
                write().in_element(join(parent, name))
            }
            _ => write_element(g, name, value, self.options),
        })
    }

    /// Writes a data frame (`obs`, `var`, `raw/var`).
    pub fn write_dataframe(&self, parent: &str, name: &str, df: &DataFrame) -> Result<()> {
        self.in_group(parent, |g| write_dataframe(g, name, df, self.options))
    }

    /// Writes a mapping (`obsm`, `varm`, `uns`), possibly empty.
    pub fn write_mapping(&self, parent: &str, name: &str, mapping: &Mapping) -> Result<()> {
        self.in_group(parent, |g| write_mapping(g, name, mapping, self.options))
    }

    /// Writes a matrix held in memory.
    pub fn write_matrix(&self, parent: &str, name: &str, m: &Matrix) -> Result<()> {
        self.in_group(parent, |g| write_matrix(g, name, m, self.options))
    }

    /// Writes a mapping of matrices (`layers`, `obsp`, `varp`), possibly empty.
    pub fn write_matrix_mapping(
        &self,
        parent: &str,
        name: &str,
        matrices: &IndexMap<String, Matrix>,
    ) -> Result<()> {
        self.in_group(parent, |g| {
            write_matrix_mapping(g, name, matrices, self.options)
        })
    }

    /// Creates matrix `name` in `parent` as `spec` describes, to be filled through the sink in
    /// order: rows of a dense or CSR matrix, columns of a CSC one.
    pub fn matrix(&self, parent: &str, name: &str, spec: &MatrixSpec) -> Result<MatrixSink<'_>> {
        self.in_group(parent, |g| MatrixSink::create(g, name, spec, self))
            .in_element(join(parent, name))
    }
}

/// What is known of a sparse matrix's stored values before it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Values {
    /// Exactly this many (the datasets are created at their final length, chunked as h5py
    /// chunks them).
    Exactly(u64),
    /// At most this many (the datasets grow as values come; the bound sets the index dtype as
    /// scipy would from the count, so a bound past 2^31 keeps `int64`).
    AtMost(u64),
}

/// A matrix to be written by a [`MatrixSink`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatrixSpec {
    /// Dense, CSR or CSC.
    pub kind: MatrixKind,
    /// `(rows, columns)`.
    pub shape: (usize, usize),
    /// The dtype of the values.
    pub dtype: DType,
    /// The stored values (ignored for dense matrices).
    pub values: Values,
}

/// A matrix being written: [`MatrixSink::push`] appends pieces in order, [`MatrixSink::finish`]
/// checks that the whole matrix came.
pub struct MatrixSink<'a> {
    path: String,
    shape: (usize, usize),
    kind: MatrixKind,
    state: Sink<'a>,
}

impl std::fmt::Debug for MatrixSink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatrixSink")
            .field("path", &self.path)
            .field("shape", &self.shape)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

// One per matrix being written: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Sink<'a> {
    Dense(Rows<'a>),
    Sparse {
        data: Rows<'a>,
        indices: Rows<'a>,
        indptr: Rows<'a>,
        index_dtype: DType,
        /// Values and major slices written.
        offset: u64,
        slices: usize,
        exact: Option<u64>,
    },
}

impl<'a> MatrixSink<'a> {
    fn create(
        parent: &dyn GroupWriter,
        name: &str,
        spec: &MatrixSpec,
        w: &Writer<'a>,
    ) -> Result<Self> {
        let (options, deflaters) = (w.options, w.deflaters);
        let path = join(&parent.path(), name);
        let state = match spec.kind {
            MatrixKind::Dense => {
                let shape = [spec.shape.0, spec.shape.1];
                let opts = match path.as_str() {
                    "/X" => options.x_options(),
                    _ => options.array_options(),
                };
                let ds = parent.create_array(name, spec.dtype, &shape, &opts)?;
                write_encoding(ds.as_ref(), Encoding::Array)?;
                Sink::Dense(Rows::new(ds, spec.shape.0, &opts, deflaters)?)
            }
            MatrixKind::Sparse(format) => {
                let (count, exact) = match spec.values {
                    Values::Exactly(n) => (n, Some(n)),
                    Values::AtMost(n) => (n, None),
                };
                let index_dtype =
                    sparse_index_dtype(spec.shape, usize::try_from(count).unwrap_or(usize::MAX));
                let g = create_sparse_group(parent, name, format, spec.shape)?;
                let opts = options.sparse_options();
                let values = |n: &str, dtype: DType| -> Result<Rows<'a>> {
                    match exact {
                        Some(len) => {
                            let len = to_usize(len)?;
                            let array = g.create_array(n, dtype, &[len], &opts)?;
                            Rows::new(array, len, &opts, deflaters)
                        }
                        None => {
                            let len = usize::try_from(count.max(1)).unwrap_or(usize::MAX);
                            let grow = ArrayOptions {
                                chunks: Some(guess_chunk(&[len], dtype.size())),
                                ..opts.clone()
                            };
                            let array = g.create_array(n, dtype, &[0], &grow)?;
                            Rows::new(array, 0, &grow, deflaters)
                        }
                    }
                };
                let major = match format {
                    SparseFormat::Csr => spec.shape.0,
                    SparseFormat::Csc => spec.shape.1,
                };
                let data = values("data", spec.dtype)?;
                let indices = values("indices", index_dtype)?;
                let indptr_array = g.create_array("indptr", index_dtype, &[major + 1], &opts)?;
                let mut indptr = Rows::new(indptr_array, major + 1, &opts, deflaters)?;
                indptr.push(&index_array(&[0u64], index_dtype)?)?;
                Sink::Sparse {
                    data,
                    indices,
                    indptr,
                    index_dtype,
                    offset: 0,
                    slices: 0,
                    exact,
                }
            }
        };
        Ok(MatrixSink {
            path,
            shape: spec.shape,
            kind: spec.kind,
            state,
        })
    }

    /// The rows (dense, CSR) or columns (CSC) written so far.
    pub fn written(&self) -> usize {
        match &self.state {
            Sink::Dense(w) => w.rows(),
            Sink::Sparse { slices, .. } => *slices,
        }
    }

    /// How many rows to push at once, about `about`, so that a dense matrix is written whole
    /// chunks at a time: a multiple of its chunks' rows (at least one chunk's), pushed from
    /// the first row on. The writer then keeps no rows waiting for the rest of their chunk
    /// (a band of chunks, all columns wide). `about` itself for sparse and unchunked ones.
    pub fn aligned_rows(&self, about: usize) -> usize {
        let chunk = match &self.state {
            Sink::Dense(w) => w.chunk_rows(),
            Sink::Sparse { .. } => None,
        };
        match chunk.filter(|&c| c > 0) {
            Some(c) => (about / c).max(1).saturating_mul(c),
            None => about.max(1),
        }
    }

    /// Appends the next rows (dense, CSR) or columns (CSC): a matrix of the sink's kind and
    /// dtype whose other axis has the full length.
    pub fn push(&mut self, piece: &Matrix) -> Result<()> {
        self.push_inner(piece).in_element(&self.path)
    }

    fn push_inner(&mut self, piece: &Matrix) -> Result<()> {
        match (&mut self.state, piece) {
            (Sink::Dense(w), Matrix::Dense(a)) => w.push(a),
            (
                Sink::Sparse {
                    data,
                    indices,
                    indptr,
                    index_dtype,
                    offset,
                    slices,
                    exact,
                },
                Matrix::Sparse(s),
            ) if MatrixKind::Sparse(s.format()) == self.kind => {
                if exact.is_some_and(|n| *offset + s.nnz() as u64 > n) {
                    return Err(Error::malformed(
                        "the matrix holds more values than its indptr says",
                    ));
                }
                data.push(s.data())?;
                indices.push(&index_array(s.indices(), *index_dtype)?)?;
                let offsets: Vec<u64> = s.indptr()[1..].iter().map(|&p| p + *offset).collect();
                indptr.push(&index_array(&offsets, *index_dtype)?)?;
                *offset += s.nnz() as u64;
                *slices += offsets.len();
                Ok(())
            }
            _ => Err(Error::malformed(
                "a piece of another kind than the matrix written",
            )),
        }
    }

    /// Fails unless every row (dense, CSR) or column (CSC) came, and with
    /// [`Values::Exactly`], every value: a source that gave fewer is malformed (callers blame it).
    pub fn check_complete(&self) -> Result<()> {
        let major = match self.kind {
            MatrixKind::Sparse(SparseFormat::Csc) => self.shape.1,
            _ => self.shape.0,
        };
        let written = self.written();
        match &self.state {
            Sink::Dense(_) if written != major => Err(Error::malformed(format!(
                "wrote {written} rows, expected {major}"
            ))),
            Sink::Sparse { offset, exact, .. }
                if written != major || exact.is_some_and(|n| n != *offset) =>
            {
                Err(Error::malformed(format!(
                    "wrote {written} slices and {offset} values, expected {major} and {}",
                    exact.unwrap_or(*offset)
                )))
            }
            _ => Ok(()),
        }
    }

    /// Completes the matrix (see [`MatrixSink::check_complete`]).
    pub fn finish(self) -> Result<()> {
        self.check_complete()?;
        let finish = || -> Result<()> {
            match self.state {
                Sink::Dense(w) => w.finish(),
                Sink::Sparse {
                    data,
                    indices,
                    indptr,
                    ..
                } => {
                    data.finish()?;
                    indices.finish()?;
                    indptr.finish()
                }
            }
        };
        finish().in_element(self.path)
    }
}

/// An array filled row block by row block, in order: HDF5 datasets through [`RowWriter`]
/// (chunks compressed on several threads), other backends' arrays through their writer.
// A few per matrix being written: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Rows<'a> {
    H5(RowWriter<'a>),
    Store {
        array: Box<dyn ArrayWriter>,
        /// The array's current length; grown by appending past it when resizable.
        extent: usize,
        resizable: bool,
        rows: usize,
    },
}

impl<'a> Rows<'a> {
    /// A writer of `array`, created `extent` rows long with `options`.
    fn new(
        array: Box<dyn ArrayWriter>,
        extent: usize,
        options: &ArrayOptions,
        deflaters: Option<&'a Deflaters>,
    ) -> Result<Self> {
        match array.as_any().downcast_ref::<hdf5::Dataset>() {
            Some(ds) => Ok(Rows::H5(RowWriter::new(ds, deflaters)?)),
            None => Ok(Rows::Store {
                array,
                extent,
                resizable: options.resizable,
                rows: 0,
            }),
        }
    }

    /// The rows of one chunk of the array, if chunked.
    fn chunk_rows(&self) -> Option<usize> {
        match self {
            Rows::H5(w) => w.chunk_rows(),
            Rows::Store { array, .. } => array.chunk_rows(),
        }
    }

    /// Rows pushed so far.
    fn rows(&self) -> usize {
        match self {
            Rows::H5(w) => w.rows(),
            Rows::Store { rows, .. } => *rows,
        }
    }

    /// Writes `block` after the rows pushed so far: in place within the array's length, then
    /// appended (for a resizable array), as [`RowWriter::push`] does.
    fn push(&mut self, block: &ArrayData) -> Result<()> {
        match self {
            Rows::H5(w) => w.push(block),
            Rows::Store {
                array,
                extent,
                resizable,
                rows,
            } => {
                let n = block.nrows();
                let end = *rows + n;
                let inside = extent.saturating_sub(*rows).min(n);
                if !*resizable {
                    row_range(*extent, *rows, n, "an array")?;
                }
                if inside == n {
                    array.write_rows(*rows, block)?;
                } else {
                    let first: Vec<usize> = (0..inside).collect();
                    let rest: Vec<usize> = (inside..n).collect();
                    if inside > 0 {
                        array.write_rows(*rows, &block.select(0, &first))?;
                    }
                    array.append_rows(&block.select(0, &rest))?;
                    *extent = end;
                }
                *rows = end;
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<()> {
        match self {
            Rows::H5(w) => w.finish(),
            Rows::Store { .. } => Ok(()),
        }
    }
}

fn to_usize(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::invalid(format!("{v} values do not fit in memory")))
}
