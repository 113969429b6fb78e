//! Writing a backed selection to a new file, streaming the matrices chunk by chunk.
//!
//! The file written is the one `AnnData::write_h5ad` writes for `to_memory()`'s result: the
//! same groups, encodings, dtypes (including scipy's choice of `int32`/`int64` indices) and,
//! wherever the final length of a dataset is known before it is written, the same chunk shapes.
//! Dense matrices are created at their final shape and filled row block by row block; sparse
//! ones are written along their compressed axis (rows of CSR, columns of CSC), through the
//! engine's [`MatrixSink`].

use std::path::Path;

use annpage_engine::data::{Mapping, Matrix, SparseFormat, SparseMatrix};
use annpage_engine::error::ResultExt;
use annpage_engine::file::join;
use annpage_engine::file::probe::{ElemSlot, FrameId, MatrixSlot};
use annpage_engine::file::stream::{write_file, MatrixSink, MatrixSpec, Values, Writer};
use annpage_engine::format::{Encoding, WriteOptions};
use annpage_engine::paged::{BackedMatrix, MatrixKind, MemoryPolicy};
use annpage_engine::select::{AxisIndex, IndexKind};
use annpage_engine::{Error, Result};
use indexmap::IndexMap;

use super::matrix::BackedMatrixView;
use super::BackedAnnData;
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
    fn apply(self, m: Matrix) -> Matrix {
        match self {
            Orient::AsIs => m,
            Orient::Transposed => crate::transform::transpose_matrix(m),
        }
    }

    /// `(a, b)`, swapped when transposed.
    fn pair<T>(self, a: T, b: T) -> (T, T) {
        match self {
            Orient::AsIs => (a, b),
            Orient::Transposed => (b, a),
        }
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
) -> Result<()> {
    let threads = adata.shared.read.workers.threads();
    write_file(path, options, threads, |w| write_members(adata, w, orient))
}

fn write_members(adata: &BackedAnnData, w: &Writer<'_>, orient: Orient) -> Result<()> {
    let shared = &adata.shared;
    let snap = shared.snapshot();
    let layout = &snap.layout;
    let policy = MemoryPolicy::new(adata.cache_budget());

    w.set_encoding("/", Encoding::AnnData)?;
    if let Some(x) = &layout.x {
        let view = adata.view_of(x, "/X".into(), adata.obs_axis(), adata.var_axis());
        stream_matrix(&view, w, "/", "X", &policy, orient)?;
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
        stream_matrix(&view, w, "/raw", "X", &policy, Orient::AsIs)?;
        let var = shared
            .frame_rows(&snap, &raw.var, &all)
            .in_file(&shared.path)?;
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
    let (obs, var, uns) = adata.frames_and_uns(&snap).in_file(&shared.path)?;
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
                    stream_selected(&selected, w, &group, key, &policy, Orient::AsIs)?;
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
        ("obsp", obsp.0, obsp.1, obsp.2, obsp.2, Orient::AsIs),
        ("varp", varp.0, varp.1, varp.2, varp.2, Orient::AsIs),
        (
            "layers",
            "layers",
            &layout.layers,
            adata.obs_axis(),
            adata.var_axis(),
            orient,
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
    orient: Orient,
) -> Result<()> {
    let m = match view.slot() {
        MatrixSlot::Memory(_) => {
            return w.write_matrix(parent, name, &orient.apply(view.to_memory()?))
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
    stream_selected(&selected, w, parent, name, policy, orient)
}

/// The rows and columns of a matrix on disk to write, and how errors reading it name the
/// input (the others name the output).
struct Selected<'a> {
    m: &'a BackedMatrix,
    rows: &'a AxisIndex,
    cols: &'a AxisIndex,
    blame: &'a dyn Fn(Error) -> Error,
}

/// [`stream_matrix`] of a matrix on disk.
fn stream_selected(
    s: &Selected<'_>,
    w: &Writer<'_>,
    parent: &str,
    name: &str,
    policy: &MemoryPolicy,
    orient: Orient,
) -> Result<()> {
    let major = match s.m.kind() {
        MatrixKind::Sparse(SparseFormat::Csc) => s.cols,
        _ => s.rows,
    };
    let scattered = !in_order(major) && s.m.decodes_whole_chunks();
    let target = if scattered {
        policy.scattered_piece_bytes()
    } else {
        policy.write_piece_bytes()
    };
    // A piece that large is held within the budget: the cache gives up its room meanwhile.
    let _room = scattered.then(|| s.m.cache().reserve(target));
    match (s.m.kind(), orient) {
        (MatrixKind::Dense, Orient::AsIs) => stream_dense(s, w, parent, name, target),
        // Rows of the transposed are columns of a row-major array: read whole.
        (MatrixKind::Dense, Orient::Transposed) => {
            let m = s.m.read(s.rows, s.cols).map_err(s.blame)?;
            w.write_matrix(parent, name, &orient.apply(m))
        }
        (MatrixKind::Sparse(format), _) => {
            stream_sparse(s, format, w, (parent, name), target, orient)
        }
    }
}

fn stream_dense(
    s: &Selected<'_>,
    w: &Writer<'_>,
    parent: &str,
    name: &str,
    target: usize,
) -> Result<()> {
    let (m, rows, cols, blame) = (s.m, s.rows, s.cols, s.blame);
    let dtype = m.dtype();
    let spec = MatrixSpec {
        kind: MatrixKind::Dense,
        shape: (rows.len(), cols.len()),
        dtype,
        values: Values::Exactly(0),
    };
    let mut sink = w.matrix(parent, name, &spec)?;
    if rows.is_empty() {
        return sink.finish();
    }
    let row_bytes = cols.len().saturating_mul(dtype.size()).max(1);
    let chunk_rows = (target / row_bytes).max(1);
    for piece in m.chunks(rows, cols, chunk_rows).map_err(blame)? {
        let (range, values) = piece.map_err(blame)?;
        if !matches!(values, Matrix::Dense(_)) {
            return Err(blame(Error::malformed("a dense matrix gave sparse rows")));
        }
        if range.start != sink.written() {
            return Err(blame(Error::malformed(
                "a dense matrix gave its rows out of order",
            )));
        }
        sink.push(&values)?;
    }
    sink.check_complete().map_err(blame)?;
    sink.finish()
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

/// How many times the most repeated position of `index` is selected.
fn max_repeats(index: &AxisIndex) -> u64 {
    match index.kind() {
        IndexKind::Positions(ps) => {
            let mut sorted = ps.to_vec();
            sorted.sort_unstable();
            sorted
                .chunk_by(|a, b| a == b)
                .map(|run| run.len() as u64)
                .max()
                .unwrap_or(0)
        }
        _ => u64::from(!index.is_empty()),
    }
}

/// The pieces of a sparse selection along its compressed axis, in order, each holding at
/// most `per_piece` major slices.
fn pieces<'a>(
    m: &'a BackedMatrix,
    format: SparseFormat,
    rows: &'a AxisIndex,
    cols: &'a AxisIndex,
    per_piece: usize,
) -> Result<Box<dyn Iterator<Item = Result<SparseMatrix>> + 'a>> {
    fn sparse(m: Matrix) -> Result<SparseMatrix> {
        match m {
            Matrix::Sparse(s) => Ok(s),
            Matrix::Dense(_) => Err(Error::malformed("a sparse matrix gave dense values")),
        }
    }
    Ok(match format {
        SparseFormat::Csr => Box::new(
            m.chunks(rows, cols, per_piece)?
                .map(|piece| piece.and_then(|(_, values)| sparse(values))),
        ),
        SparseFormat::Csc => {
            let n = cols.len();
            Box::new((0..n).step_by(per_piece).map(move |start| {
                let end = n.min(start + per_piece);
                let picked = cols.compose(&AxisIndex::range(start..end, n)?)?;
                sparse(m.read(rows, &picked)?)
            }))
        }
    })
}

/// Writes a sparse selection along its compressed axis; transposed, the same pieces are the
/// other format's (a CSR piece of rows is a CSC piece of columns of the transpose).
fn stream_sparse(
    s: &Selected<'_>,
    format: SparseFormat,
    w: &Writer<'_>,
    (parent, name): (&str, &str),
    target: usize,
    orient: Orient,
) -> Result<()> {
    let (m, rows, cols, blame) = (s.m, s.rows, s.cols, s.blame);
    let out_shape = (rows.len(), cols.len());
    let (major, minor) = match format {
        SparseFormat::Csr => (rows, cols),
        SparseFormat::Csc => (cols, rows),
    };
    let indptr = m
        .indptr()
        .ok_or_else(|| blame(Error::malformed("a sparse matrix without indptr")))?;
    // The number of values written: exact when whole major slices are taken, else bounded
    // by each selected value's repeats in the minor selection.
    let stored = stored_in(indptr, major);
    let exact = minor.is_full() || minor.is_empty() || major.is_empty();
    let bound = if minor.is_empty() || major.is_empty() {
        0
    } else if exact {
        stored
    } else {
        stored
            .saturating_mul(max_repeats(minor))
            .min((major.len() as u64).saturating_mul(minor.len() as u64))
    };
    let dtype = m.dtype();
    let per_slice = (bound / major.len().max(1) as u64) as usize * (dtype.size() + 8) + 8;
    let per_piece = (target / per_slice.max(1)).max(1);

    let limit = i32::MAX as usize;
    let mut values = if exact {
        Values::Exactly(bound)
    } else {
        Values::AtMost(bound)
    };
    if !exact && out_shape.0 <= limit && out_shape.1 <= limit && bound > limit as u64 {
        // The index dtype depends on the exact count: count in a first pass.
        let mut count = 0u64;
        for piece in pieces(m, format, rows, cols, per_piece).map_err(blame)? {
            count += piece.map_err(blame)?.nnz() as u64;
        }
        values = Values::Exactly(count);
    }
    let (kind, shape) = match orient {
        Orient::AsIs => (format, out_shape),
        Orient::Transposed => (flip(format), (out_shape.1, out_shape.0)),
    };
    let spec = MatrixSpec {
        kind: MatrixKind::Sparse(kind),
        shape,
        dtype,
        values,
    };
    let mut sink: MatrixSink<'_> = w.matrix(parent, name, &spec)?;
    for piece in pieces(m, format, rows, cols, per_piece).map_err(blame)? {
        let piece = piece.map_err(blame)?;
        let piece = match orient {
            Orient::AsIs => piece,
            Orient::Transposed => piece.transpose(),
        };
        sink.push(&Matrix::Sparse(piece))?;
    }
    sink.check_complete().map_err(blame)?;
    sink.finish()
}

/// The other compressed format.
fn flip(format: SparseFormat) -> SparseFormat {
    match format {
        SparseFormat::Csr => SparseFormat::Csc,
        SparseFormat::Csc => SparseFormat::Csr,
    }
}
