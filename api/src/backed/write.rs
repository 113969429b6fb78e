//! Writing a backed selection to a new file, streaming the matrices chunk by chunk.
//!
//! The file written is the one `AnnData::write_h5ad` writes for `to_memory()`'s result: the
//! same groups, encodings, dtypes (including scipy's choice of `int32`/`int64` indices) and,
//! wherever the final length of a dataset is known before it is written, the same chunk shapes.
//! Dense matrices are created at their final shape and filled row block by row block; sparse
//! ones are written along their compressed axis (rows of CSR, columns of CSC), through the
//! engine's [`MatrixSink`].

use std::path::Path;

use annpage_engine::data::{DType, DataFrame, Mapping, Matrix, SparseFormat};
use annpage_engine::error::ResultExt;
use annpage_engine::file::join;
use annpage_engine::file::probe::{ElemSlot, FrameId, MatrixSlot};
use annpage_engine::file::stream::{write_file, MatrixSink, MatrixSpec, Values, Writer};
use annpage_engine::format::{Encoding, WriteOptions};
use annpage_engine::paged::{BackedMatrix, MatrixKind, MemoryPolicy};
use annpage_engine::select::{AxisIndex, IndexKind};
use annpage_engine::storage::StoreKind;
use annpage_engine::{Error, Result};
use indexmap::IndexMap;

use super::matrix::BackedMatrixView;
use super::slices::{self, max_repeats, Pieces};
use super::BackedAnnData;
use crate::transform::frame_strings_to_categoricals;
use crate::Axis;

/// How a selection is written: as it is, or transposed (anndata's `adata.T`: obs and var,
/// obsm and varm, obsp and varp change places, X and the layers are transposed, raw dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Orient {
    AsIs,
    Transposed,
}

impl Orient {
    /// `m` as written: transposed or not.
    pub(super) fn apply(self, m: Matrix) -> Matrix {
        match self {
            Orient::AsIs => m,
            Orient::Transposed => crate::transform::transpose_matrix(m),
        }
    }

    /// `(a, b)`, swapped when transposed.
    pub(super) fn pair<T>(self, a: T, b: T) -> (T, T) {
        match self {
            Orient::AsIs => (a, b),
            Orient::Transposed => (b, a),
        }
    }
}

/// How a backed write stores `X`, the layers and `raw.X` (and string columns): each as the input holds it (`None`,
/// the default) or as the kind given — anndata's `write_h5ad(as_dense=("X", "raw/X"))` is
/// `x` and `raw_x` dense. A change of kind streams too; a matrix written along the other axis
/// than the input stores it (CSC from CSR or dense, CSR or dense from CSC) is read in pieces
/// of half the budget with their converted copy, each of which reads every block holding it
/// (pieces are cut from each slice's stored values, counted in a first pass).
///
/// ```
/// use annpage::backed::{read_h5ad_backed, BackedOptions, MatrixKind, Mode, StoredAs};
/// use annpage::data::SparseFormat;
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
/// # let dir = tempfile::tempdir().unwrap();
/// # let out = dir.path().join("csc.h5ad");
/// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
/// let csc = StoredAs { x: Some(MatrixKind::Sparse(SparseFormat::Csc)), ..StoredAs::default() };
/// adata.write_stored_as(&out, &annpage::WriteOptions::default(), csc)?;
/// let back = annpage::read_h5ad(&out)?;
/// assert_eq!(back.x().unwrap().to_dense()?, adata.to_memory()?.x().unwrap().to_dense()?);
/// # Ok::<(), annpage::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredAs {
    /// `X`'s kind.
    pub x: Option<MatrixKind>,
    /// Every layer's kind.
    pub layers: Option<MatrixKind>,
    /// `raw.X`'s kind.
    pub raw_x: Option<MatrixKind>,
    /// String columns of obs, var and raw.var that repeat a value written as categoricals,
    /// as anndata's writers write them (see
    /// [`AnnData::strings_to_categoricals`](crate::AnnData::strings_to_categoricals)); by
    /// default written as stored.
    pub strings_to_categoricals: bool,
}

impl StoredAs {
    /// `frames` as stored: with [`StoredAs::strings_to_categoricals`], their string columns
    /// that repeat a value made categoricals.
    pub(super) fn convert_strings(&self, frames: &mut [&mut DataFrame]) -> Result<()> {
        if self.strings_to_categoricals {
            for frame in frames {
                frame_strings_to_categoricals(frame)?;
            }
        }
        Ok(())
    }
}

/// How one matrix is written: oriented, and stored as a kind (`None`: its own, oriented).
#[derive(Clone, Copy, Debug)]
struct Written {
    orient: Orient,
    kind: Option<MatrixKind>,
}

impl Written {
    /// As the input stores it.
    const AS_IS: Written = Written {
        orient: Orient::AsIs,
        kind: None,
    };

    /// The kind written for a matrix the input stores as `stored`.
    fn kind_for(self, stored: MatrixKind) -> MatrixKind {
        self.kind.unwrap_or(match (stored, self.orient) {
            (MatrixKind::Sparse(f), Orient::Transposed) => MatrixKind::Sparse(flip(f)),
            _ => stored,
        })
    }
}

impl BackedAnnData {
    /// Writes the selection to `path` as [`AnnData::write_h5ad`](crate::AnnData::write_h5ad) would write
    /// [`BackedAnnData::to_memory`]'s result — same layout, encodings and dtypes — without
    /// holding the matrices in memory: `X`, layers, `obsp`, `varp` and `raw.X` are written
    /// chunk by chunk, so memory stays within the cache budget plus one chunk and the
    /// annotations. The file is written beside `path` and renamed into place when complete.
    ///
    /// Chunk shapes of the datasets equal anndata's except for the `data`/`indices` of a
    /// sparse matrix selected across its compressed axis (columns of a CSR matrix, rows of a
    /// CSC one): their final length is only known at the end, so their chunks are sized from
    /// an upper bound.
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// use annpage::{Selection, WriteOptions};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/x_csc_f64.h5ad");
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let out = dir.path().join("first_ten.h5ad");
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// let first_ten = adata.slice(&Selection::from(0..10), &Selection::All)?;
    /// first_ten.write_h5ad(&out, &WriteOptions::default())?;
    /// assert_eq!(annpage::read_h5ad(&out)?, first_ten.to_memory()?);
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn write_h5ad(&self, path: impl AsRef<Path>, options: &WriteOptions) -> Result<()> {
        let options = in_store(options, StoreKind::H5ad);
        self.write_stored_as(path, &options, StoredAs::default())
    }

    /// Like [`BackedAnnData::write_h5ad`], a Zarr store (a directory) in the format, chunks,
    /// shards and codec of `options.zarr`, as anndata's `write_zarr` writes `to_memory()`'s
    /// result; matrices streamed chunk by chunk.
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// use annpage::{Selection, WriteOptions};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/x_csc_f64.h5ad");
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let out = dir.path().join("first_ten.zarr");
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// let first_ten = adata.slice(&Selection::from(0..10), &Selection::All)?;
    /// first_ten.write_zarr(&out, &WriteOptions::default())?;
    /// assert_eq!(annpage::read_zarr(&out)?, first_ten.to_memory()?);
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn write_zarr(&self, path: impl AsRef<Path>, options: &WriteOptions) -> Result<()> {
        let options = in_store(options, StoreKind::Zarr);
        self.write_stored_as(path, &options, StoredAs::default())
    }

    /// Like [`BackedAnnData::write_h5ad`] (or [`BackedAnnData::write_zarr`], as
    /// `options.store` says), with X, the layers and `raw.X` stored as `stored` gives (see
    /// [`StoredAs`]), still streamed.
    pub fn write_stored_as(
        &self,
        path: impl AsRef<Path>,
        options: &WriteOptions,
        stored: StoredAs,
    ) -> Result<()> {
        write_store(self, path.as_ref(), options, Orient::AsIs, stored)
    }
}

/// `options` writing the store `store`.
pub(super) fn in_store(options: &WriteOptions, store: StoreKind) -> WriteOptions {
    WriteOptions {
        store,
        ..options.clone()
    }
}

/// See [`BackedAnnData::write_h5ad`]: every element, in the order `format::write_h5ad` writes
/// them, into the store `options.store` names; with gzip, matrices and dense arrays are
/// compressed on as many threads as the handle reads with.
pub(super) fn write_store(
    adata: &BackedAnnData,
    path: &Path,
    options: &WriteOptions,
    orient: Orient,
    stored: StoredAs,
) -> Result<()> {
    let threads = adata.shared.read.workers.threads();
    write_file(path, options, threads, |w| {
        write_members(adata, w, orient, stored)
    })
}

fn write_members(
    adata: &BackedAnnData,
    w: &Writer<'_>,
    orient: Orient,
    stored: StoredAs,
) -> Result<()> {
    let written = |kind| Written { orient, kind };
    let shared = &adata.shared;
    let snap = shared.snapshot();
    let layout = &snap.layout;
    let policy = MemoryPolicy::new(adata.cache_budget());

    w.set_encoding("/", Encoding::AnnData)?;
    if let Some(x) = &layout.x {
        let view = adata.view_of(x, "/X".into(), adata.obs_axis(), adata.var_axis());
        stream_matrix(&view, w, "/", "X", &policy, written(stored.x))?;
    }
    if let Some(raw) = layout.raw.as_ref().filter(|_| orient == Orient::AsIs) {
        w.create_group("/", "raw", Encoding::Raw)?;
        let all = AxisIndex::full(raw.x.shape().1);
        let view = adata.view_of(
            &raw.x,
            "/raw/X".into(),
            adata.obs_axis(),
            (&all, FrameId::RawVar),
        );
        let how = Written {
            orient: Orient::AsIs,
            kind: stored.raw_x,
        };
        stream_matrix(&view, w, "/raw", "X", &policy, how)?;
        let mut var = shared
            .frame_rows(&snap, &raw.var, &all)
            .in_file(&shared.path)?;
        stored.convert_strings(&mut [&mut var])?;
        let mut varm = Mapping::new();
        for (key, slot) in &raw.varm {
            let mut value = shared.element(&snap, slot).in_file(&shared.path)?;
            crate::validate::align(&format!("raw.varm['{key}']"), &mut value, &var, "raw.var")
                .in_element(format!("/raw/varm/{key}"))
                .in_file(&shared.path)?;
            varm.insert(key.clone(), value);
        }
        w.write_dataframe("/raw", "var", &var)?;
        w.write_mapping("/raw", "varm", &varm)?;
    }
    let (mut obs, mut var, uns) = adata.frames_and_uns(&snap).in_file(&shared.path)?;
    stored.convert_strings(&mut [&mut obs, &mut var])?;
    let (obs, var) = orient.pair(obs, var);
    w.write_dataframe("/", "obs", &obs)?;
    w.write_dataframe("/", "var", &var)?;
    drop((obs, var));

    let (obsm, varm) = orient.pair(
        ("obsm", &layout.obsm, Axis::Obs),
        ("varm", &layout.varm, Axis::Var),
    );
    for (out, (name, slots, on)) in [("obsm", obsm), ("varm", varm)] {
        w.write_mapping("/", out, &Mapping::new())?;
        let group = join("/", out);
        let index = match on {
            Axis::Obs => &adata.obs,
            Axis::Var => &adata.var,
        };
        for (key, slot) in slots {
            let path = format!("/{name}/{key}");
            if let ElemSlot::Disk {
                parent, name: at, ..
            } = slot
            {
                // A matrix (2-d array, sparse) of the axis's length is streamed as X is.
                let m = shared
                    .open_matrix(&snap, parent, at)
                    .in_file(&shared.path)?;
                if let Some(m) = m.filter(|m| m.shape().0 == index.axis_len()) {
                    let cols = AxisIndex::full(m.shape().1);
                    let blame = |e: Error| e.in_element(&path).in_file(&shared.path);
                    let selected = Selected {
                        m: &m,
                        rows: index,
                        cols: &cols,
                        blame: &blame,
                    };
                    stream_selected(&selected, w, &group, key, &policy, Written::AS_IS)?;
                    continue;
                }
            }
            let value = shared
                .rows_of(&snap, slot, index, adata.view)
                .in_element(path)
                .in_file(&shared.path)?;
            let value = adata
                .aligned(&snap, &format!("{name}['{key}']"), on, value)
                .in_file(&shared.path)?;
            w.write_element(&group, key, &value)?;
        }
    }
    let (obsp, varp) = orient.pair(
        ("obsp", &layout.obsp, adata.obs_axis()),
        ("varp", &layout.varp, adata.var_axis()),
    );
    let matrices = [
        ("obsp", obsp.0, obsp.1, obsp.2, obsp.2, Written::AS_IS),
        ("varp", varp.0, varp.1, varp.2, varp.2, Written::AS_IS),
        (
            "layers",
            "layers",
            &layout.layers,
            adata.obs_axis(),
            adata.var_axis(),
            written(stored.layers),
        ),
    ];
    for (out, name, slots, rows, cols, each) in matrices {
        w.write_matrix_mapping("/", out, &IndexMap::new())?;
        let group = join("/", out);
        for (key, slot) in slots {
            let view = adata.view_of(slot, format!("/{name}/{key}"), rows, cols);
            stream_matrix(&view, w, &group, key, &policy, each)?;
        }
    }
    w.write_mapping("/", "uns", &uns)
}

/// Writes the selection of a matrix as member `name` of the group at `parent`, in pieces of
/// about the bytes `policy` gives a write of such a selection.
fn stream_matrix(
    view: &BackedMatrixView,
    w: &Writer<'_>,
    parent: &str,
    name: &str,
    policy: &MemoryPolicy,
    how: Written,
) -> Result<()> {
    let m = match view.slot() {
        MatrixSlot::Memory(_) => {
            let m = how.orient.apply(view.to_memory()?);
            let kind = how.kind.unwrap_or(kind_of(&m));
            return w.write_matrix(parent, name, &stored_as(m, kind)?);
        }
        MatrixSlot::Disk(_) => view
            .backed_matrix()?
            .ok_or_else(|| view.blame(Error::malformed("not a matrix")))?,
    };
    let blame = |e| view.blame(e);
    let selected = Selected {
        m: &m,
        rows: view.row_index(),
        cols: view.col_index(),
        blame: &blame,
    };
    stream_selected(&selected, w, parent, name, policy, how)
}

/// The rows and columns of a matrix on disk to write, and how errors reading it name the
/// input (the others name the output).
struct Selected<'a> {
    m: &'a BackedMatrix,
    rows: &'a AxisIndex,
    cols: &'a AxisIndex,
    blame: &'a dyn Fn(Error) -> Error,
}

/// [`stream_matrix`] of a matrix on disk: read in pieces of the output's major slices (rows,
/// or columns of a CSC output; transposed, the other axis of the input), each oriented and
/// stored as the output's kind and appended.
fn stream_selected(
    s: &Selected<'_>,
    w: &Writer<'_>,
    parent: &str,
    name: &str,
    policy: &MemoryPolicy,
    how: Written,
) -> Result<()> {
    let (m, blame) = (s.m, s.blame);
    let stored = m.kind();
    let out = how.kind_for(stored);
    let by_rows = major_is_rows(out) == (how.orient == Orient::AsIs);
    let (major, minor) = if by_rows {
        (s.rows, s.cols)
    } else {
        (s.cols, s.rows)
    };
    // Pieces across the stored axis (CSC rows, CSR or dense columns) read every block holding
    // them; compressed chunks are decoded whole: both take pieces as large as the budget
    // allows.
    let across = by_rows != major_is_rows(stored);
    let scattered = !in_order(major) && m.decodes_whole_chunks();
    let (target, room) = if across || scattered {
        let room = policy.scattered_piece_bytes();
        (room, room)
    } else {
        (policy.write_piece_bytes(), 0)
    };
    // A piece that large is held within the budget: the cache gives up its room meanwhile.
    let _room = (room > 0).then(|| m.cache().reserve(room));

    let (bound, exact) = stored_bound(s)?;
    let dtype = m.dtype();
    if stored == MatrixKind::Dense {
        // Refused before anything is written.
        can_be_sparse(dtype, out).map_err(blame)?;
    }
    // What each piece holds, slice by slice: the values read, and their converted copy
    // when the kind changes (a dense matrix made sparse may keep every entry).
    let counts = slices::values_per(m, (s.rows, s.cols), by_rows, target as u64).map_err(blame)?;
    let (value, entry) = (
        dtype.size() as u64,
        minor.len() as u64 * dtype.size() as u64,
    );
    let converted = out != stored || how.orient == Orient::Transposed;
    let costs: Vec<u64> = counts
        .iter()
        .map(|&n| {
            let read = if stored == MatrixKind::Dense {
                entry
            } else {
                n * (value + 4)
            };
            let copy = match out {
                _ if !converted => 0,
                MatrixKind::Dense => entry,
                MatrixKind::Sparse(_) => n * (value + 4),
            };
            read + copy + 8
        })
        .collect();
    let shape = how.orient.pair(s.rows.len(), s.cols.len());
    // `align`: the output's chunk rows, which each piece then holds whole (see
    // `MatrixSink::aligned_rows`), or 1.
    let read = |align: usize| -> Result<Pieces<'_>> {
        let pieces = slices::pieces(m, (s.rows, s.cols), by_rows, &costs, target as u64, align)?;
        let orient = how.orient;
        Ok(Box::new(pieces.map(move |piece| {
            let (range, piece) = piece?;
            Ok((range, stored_as(orient.apply(piece), out)?))
        })))
    };
    let values = match out {
        MatrixKind::Dense => Values::Exactly(0),
        MatrixKind::Sparse(_) if exact => Values::Exactly(bound),
        MatrixKind::Sparse(_) => {
            let limit = i32::MAX as usize;
            if shape.0 <= limit && shape.1 <= limit && bound > limit as u64 {
                // The index dtype depends on the exact count: count in a first pass.
                let mut count = 0u64;
                for piece in read(1).map_err(blame)? {
                    if let (_, Matrix::Sparse(p)) = piece.map_err(blame)? {
                        count += p.nnz() as u64;
                    }
                }
                Values::Exactly(count)
            } else {
                Values::AtMost(bound)
            }
        }
    };
    let spec = MatrixSpec {
        kind: out,
        shape,
        dtype,
        values,
    };
    let mut sink: MatrixSink<'_> = w.matrix(parent, name, &spec)?;
    // Pieces of whole output chunks where a band of chunks fits a piece; a wider band is
    // cheaper held back by the writer than read whole, with the next one read ahead (a
    // 1,000-column float64 obsm: 98 MiB pending against 144 MiB aligned).
    let band = sink.aligned_rows(1);
    let widest = costs.iter().max().copied().unwrap_or(0);
    let align = if (band as u64).saturating_mul(widest) <= target as u64 {
        band
    } else {
        1
    };
    for piece in read(align).map_err(blame)? {
        let (range, piece) = piece.map_err(blame)?;
        if range.start != sink.written() {
            return Err(blame(Error::malformed(
                "a matrix gave its pieces out of order",
            )));
        }
        sink.push(&piece)?;
    }
    sink.check_complete().map_err(blame)?;
    sink.finish()
}

/// The values a selection stores (0 for a dense one) and whether that is exact: it is when
/// whole major slices are taken, else it bounds them by each selected value's repeats in
/// the minor selection. A dense matrix's bound is its size.
fn stored_bound(s: &Selected<'_>) -> Result<(u64, bool)> {
    let (rows, cols) = (s.rows, s.cols);
    let (major, minor) = match s.m.kind() {
        MatrixKind::Dense => {
            let all = (rows.len() as u64).saturating_mul(cols.len() as u64);
            return Ok((all, rows.is_empty() || cols.is_empty()));
        }
        MatrixKind::Sparse(SparseFormat::Csr) => (rows, cols),
        MatrixKind::Sparse(SparseFormat::Csc) => (cols, rows),
    };
    let indptr =
        s.m.indptr()
            .ok_or_else(|| (s.blame)(Error::malformed("a sparse matrix without indptr")))?;
    let stored = stored_in(indptr, major);
    Ok(if minor.is_empty() || major.is_empty() {
        (0, true)
    } else if minor.is_full() {
        (stored, true)
    } else {
        let most = (major.len() as u64).saturating_mul(minor.len() as u64);
        (stored.saturating_mul(max_repeats(minor)).min(most), false)
    })
}

/// Whether a matrix of `kind` is stored by rows (dense and CSR) rather than by columns (CSC).
fn major_is_rows(kind: MatrixKind) -> bool {
    kind != MatrixKind::Sparse(SparseFormat::Csc)
}

/// The kind of a matrix in memory.
fn kind_of(m: &Matrix) -> MatrixKind {
    match m {
        Matrix::Dense(_) => MatrixKind::Dense,
        Matrix::Sparse(s) => MatrixKind::Sparse(s.format()),
    }
}

/// `m` stored as `kind` (as scipy converts: a dense matrix's non-zeros; no copy when it is
/// stored so already).
pub(super) fn stored_as(m: Matrix, kind: MatrixKind) -> Result<Matrix> {
    match (kind, m) {
        (MatrixKind::Dense, m @ Matrix::Dense(_)) => Ok(m),
        (MatrixKind::Dense, m) => m.to_dense().map(Matrix::Dense),
        (MatrixKind::Sparse(f), Matrix::Dense(a)) => {
            can_be_sparse(a.dtype(), kind)?;
            Matrix::Dense(a).into_sparse(f).map(Matrix::Sparse)
        }
        (MatrixKind::Sparse(f), m) => m.into_sparse(f).map(Matrix::Sparse),
    }
}

/// Fails if dense values of `dtype` cannot be made `kind`: scipy.sparse has no float16, so
/// anndata could neither make such a matrix nor read it.
pub(super) fn can_be_sparse(dtype: DType, kind: MatrixKind) -> Result<()> {
    if dtype == DType::F16 && kind != MatrixKind::Dense {
        return Err(Error::unsupported(
            "a float16 matrix cannot be stored sparse (scipy.sparse has no float16)",
        ));
    }
    Ok(())
}

/// The stored values of the major slices `major` (from `indptr`).
fn stored_in(indptr: &[u64], major: &AxisIndex) -> u64 {
    let len = |p: usize| indptr[p + 1] - indptr[p];
    match major.as_range() {
        Some(r) if !r.is_empty() => indptr[r.end] - indptr[r.start],
        Some(_) => 0,
        None => major.iter().map(len).sum(),
    }
}

/// Whether `index` selects positions in increasing order (repeats allowed).
fn in_order(index: &AxisIndex) -> bool {
    match index.kind() {
        IndexKind::Positions(ps) => ps.windows(2).all(|w| w[0] <= w[1]),
        IndexKind::Strided { step, .. } => step > 0,
        IndexKind::Range(_) => true,
    }
}

/// The other compressed format.
fn flip(format: SparseFormat) -> SparseFormat {
    match format {
        SparseFormat::Csr => SparseFormat::Csc,
        SparseFormat::Csc => SparseFormat::Csr,
    }
}
