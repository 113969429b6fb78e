//! Writing a backed selection to a new file, streaming the matrices chunk by chunk.
//!
//! The file written is the one `AnnData::write_h5ad` writes for `to_memory()`'s result: the
//! same groups, encodings, dtypes (including scipy's choice of `int32`/`int64` indices) and,
//! wherever the final length of a dataset is known before it is written, the same chunk shapes.
//! Dense matrices are created at their final shape and filled row block by row block; sparse
//! ones are written along their compressed axis (rows of CSR, columns of CSC), appending each
//! piece's `data` and `indices` and its offsets to `indptr`.

use std::path::Path;

use annpage_engine::backed::{BackedMatrix, MatrixKind};
use annpage_engine::data::{DType, Element, Mapping, Matrix, SparseFormat, SparseMatrix};
use annpage_engine::error::ResultExt;
use annpage_engine::format::write::staging::Staged;
use annpage_engine::format::write::{
    create_sparse_group, index_array, sparse_index_dtype, write_dataframe, write_element,
    write_encoding, write_mapping, write_matrix, write_matrix_mapping,
};
use annpage_engine::format::{Compression, Encoding, WriteOptions};
use annpage_engine::h5::write::{
    create_array, guess_chunk, with_deflaters, DatasetOptions, Deflaters, RowWriter,
};
use annpage_engine::select::{AxisIndex, IndexKind};
use annpage_engine::{Error, Result};
use hdf5::Group;
use indexmap::IndexMap;

use super::layout::{join, MatrixSlot};
use super::matrix::{AxisKind, BackedMatrixView};
use super::BackedAnnData;

/// Smallest and largest amount of values written at once, in bytes.
const MIN_PIECE_BYTES: usize = 64 << 10;
const MAX_PIECE_BYTES: usize = 64 << 20;

/// See [`BackedAnnData::write_h5ad`].
pub(super) fn write_h5ad(adata: &BackedAnnData, path: &Path, options: &WriteOptions) -> Result<()> {
    let staged = Staged::beside(path).in_file(path)?;
    let write = || -> Result<()> {
        let file = hdf5::File::create(staged.path())?;
        write_root(adata, &file, options)?;
        file.close()?;
        Ok(())
    };
    write().in_file(path)?;
    staged.commit(path).in_file(path)
}

/// Writes every element, in the order `format::write_h5ad` writes them; with gzip, matrices
/// and dense arrays are compressed on as many threads as the handle reads with.
fn write_root(adata: &BackedAnnData, root: &Group, options: &WriteOptions) -> Result<()> {
    match options.compression {
        Compression::Gzip(_) => with_deflaters(adata.shared.read.workers.threads(), |d| {
            write_members(adata, root, options, d)
        }),
        _ => write_members(adata, root, options, None),
    }
}

fn write_members(
    adata: &BackedAnnData,
    root: &Group,
    options: &WriteOptions,
    deflaters: Option<&Deflaters>,
) -> Result<()> {
    let shared = &adata.shared;
    let snap = shared.snapshot();
    let layout = &snap.layout;
    let target = (adata.cache_budget() / 16).clamp(MIN_PIECE_BYTES, MAX_PIECE_BYTES);

    write_encoding(root, Encoding::AnnData).in_element("/")?;
    if let Some(x) = &layout.x {
        let view = adata.view_of(x, "/X".into(), adata.obs_axis(), adata.var_axis());
        stream_matrix(&view, root, "X", options, target, deflaters)?;
    }
    if let Some(raw) = &layout.raw {
        let g = root.create_group("raw").in_element("/raw")?;
        write_encoding(&g, Encoding::Raw).in_element("/raw")?;
        let all = AxisIndex::full(raw.x.shape().1);
        let view = adata.view_of(
            &raw.x,
            "/raw/X".into(),
            adata.obs_axis(),
            (&all, AxisKind::RawVar),
        );
        stream_matrix(&view, &g, "X", options, target, deflaters)?;
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
        write_dataframe(&g, "var", &var, options)?;
        write_mapping(&g, "varm", &varm, options)?;
    }
    let (obs, var, uns) = adata.frames_and_uns(&snap).in_file(&shared.path)?;
    write_dataframe(root, "obs", &obs, options)?;
    write_dataframe(root, "var", &var, options)?;
    drop((obs, var));

    for (name, slots, is_obs) in [("obsm", &layout.obsm, true), ("varm", &layout.varm, false)] {
        write_mapping(root, name, &Mapping::new(), options)?;
        let g = root.group(name).in_element(join("/", name))?;
        let index = if is_obs { &adata.obs } else { &adata.var };
        for (key, slot) in slots {
            let value = shared
                .rows_of(&snap, slot, index, adata.view)
                .in_element(format!("/{name}/{key}"))
                .in_file(&shared.path)?;
            let value = adata
                .aligned(&snap, &format!("{name}['{key}']"), is_obs, value)
                .in_file(&shared.path)?;
            write_aligned(&g, key, &value, options, deflaters)?;
        }
    }
    let matrices = [
        ("obsp", &layout.obsp, adata.obs_axis(), adata.obs_axis()),
        ("varp", &layout.varp, adata.var_axis(), adata.var_axis()),
        ("layers", &layout.layers, adata.obs_axis(), adata.var_axis()),
    ];
    for (name, slots, rows, cols) in matrices {
        write_matrix_mapping(root, name, &IndexMap::new(), options)?;
        let g = root.group(name).in_element(join("/", name))?;
        for (key, slot) in slots {
            let view = adata.view_of(slot, format!("/{name}/{key}"), rows, cols);
            stream_matrix(&view, &g, key, options, target, deflaters)?;
        }
    }
    write_mapping(root, "uns", &uns, options)
}

/// Writes an `obsm`/`varm` entry as `write_element` does, dense numeric arrays compressed on
/// the deflaters' threads.
fn write_aligned(
    g: &Group,
    key: &str,
    value: &Element,
    options: &WriteOptions,
    deflaters: Option<&Deflaters>,
) -> Result<()> {
    match (value, deflaters) {
        (Element::Array(a), Some(_)) if a.ndim() > 0 && a.dtype() != DType::String => {
            let write = || -> Result<()> {
                let ds = create_array(g, key, a.dtype(), a.shape(), &options.array_options())?;
                write_encoding(&ds, Encoding::Array)?;
                let mut w = RowWriter::new(&ds, deflaters)?;
                w.push(a)?;
                w.finish()
            };
            write().in_element(join(&g.name(), key))
        }
        _ => write_element(g, key, value, options),
    }
}

/// Writes the selection of a matrix as member `name` of `parent`.
fn stream_matrix(
    view: &BackedMatrixView,
    parent: &Group,
    name: &str,
    options: &WriteOptions,
    target: usize,
    deflaters: Option<&Deflaters>,
) -> Result<()> {
    let m = match view.slot() {
        MatrixSlot::Memory(_) => {
            return write_matrix(parent, name, &view.to_memory()?, options);
        }
        MatrixSlot::Disk(_) => view
            .backed_matrix()?
            .ok_or_else(|| view.blame(Error::malformed("not a matrix")))?,
    };
    let write = || match m.kind() {
        MatrixKind::Dense => stream_dense(view, &m, parent, name, options, target, deflaters),
        MatrixKind::Sparse(format) => {
            stream_sparse(view, &m, format, parent, name, options, target, deflaters)
        }
    };
    write().in_element(join(&parent.name(), name))
}

/// Errors reading `view` name the input (see [`BackedMatrixView::blame`]), the others the output.
#[allow(clippy::too_many_arguments)]
fn stream_dense(
    view: &BackedMatrixView,
    m: &BackedMatrix,
    parent: &Group,
    name: &str,
    options: &WriteOptions,
    target: usize,
    deflaters: Option<&Deflaters>,
) -> Result<()> {
    let (rows, cols) = (view.row_index(), view.col_index());
    let dtype = m.dtype();
    let ds = create_array(
        parent,
        name,
        dtype,
        &[rows.len(), cols.len()],
        &options.array_options(),
    )?;
    write_encoding(&ds, Encoding::Array)?;
    if rows.is_empty() {
        return Ok(());
    }
    let row_bytes = cols.len().saturating_mul(dtype.size()).max(1);
    let chunk_rows = (target / row_bytes).max(1);
    let mut writer = RowWriter::new(&ds, deflaters)?;
    let blame = |e| view.blame(e);
    for piece in m.chunks(rows, cols, chunk_rows).map_err(blame)? {
        let (range, values) = piece.map_err(blame)?;
        let Matrix::Dense(a) = values else {
            return Err(blame(Error::malformed("a dense matrix gave sparse rows")));
        };
        if range.start != writer.rows() {
            return Err(blame(Error::malformed(
                "a dense matrix gave its rows out of order",
            )));
        }
        writer.push(&a)?;
    }
    writer.finish()
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

#[allow(clippy::too_many_arguments)]
fn stream_sparse(
    view: &BackedMatrixView,
    m: &BackedMatrix,
    format: SparseFormat,
    parent: &Group,
    name: &str,
    options: &WriteOptions,
    target: usize,
    deflaters: Option<&Deflaters>,
) -> Result<()> {
    let (rows, cols) = (view.row_index(), view.col_index());
    let blame = |e| view.blame(e);
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
    let mut nnz = exact.then_some(bound);
    if nnz.is_none() && out_shape.0 <= limit && out_shape.1 <= limit && bound > limit as u64 {
        // The index dtype depends on the exact count: count in a first pass.
        let mut count = 0u64;
        for piece in pieces(m, format, rows, cols, per_piece).map_err(blame)? {
            count += piece.map_err(blame)?.nnz() as u64;
        }
        nnz = Some(count);
    }
    let index_dtype = sparse_index_dtype(
        out_shape,
        usize::try_from(nnz.unwrap_or(bound)).unwrap_or(usize::MAX),
    );

    let g = create_sparse_group(parent, name, format, out_shape)?;
    let write = || -> Result<()> {
        let opts = options.sparse_options();
        let values = |name: &str, dtype: DType| -> Result<hdf5::Dataset> {
            match nnz {
                Some(n) => create_array(&g, name, dtype, &[to_usize(n)?], &opts),
                None => {
                    let chunks = guess_chunk(&[to_usize(bound)?], dtype.size());
                    let grow = DatasetOptions {
                        chunks: Some(chunks),
                        ..opts.clone()
                    };
                    create_array(&g, name, dtype, &[0], &grow)
                }
            }
        };
        let data_ds = values("data", dtype)?;
        let indices_ds = values("indices", index_dtype)?;
        let indptr_ds = create_array(&g, "indptr", index_dtype, &[major.len() + 1], &opts)?;
        let mut data_w = RowWriter::new(&data_ds, deflaters)?;
        let mut indices_w = RowWriter::new(&indices_ds, deflaters)?;
        let mut indptr_w = RowWriter::new(&indptr_ds, deflaters)?;
        indptr_w.push(&index_array(&[0u64], index_dtype)?)?;
        let (mut offset, mut done) = (0u64, 0usize);
        for piece in pieces(m, format, rows, cols, per_piece).map_err(blame)? {
            let (_, _, piece_indptr, indices, data) = piece.map_err(blame)?.into_parts();
            let indices = index_array(&indices, index_dtype)?;
            if let Some(n) = nnz {
                if offset + data.len() as u64 > n {
                    return Err(blame(Error::malformed(
                        "the matrix holds more values than its indptr says",
                    )));
                }
            }
            data_w.push(&data)?;
            indices_w.push(&indices)?;
            let offsets: Vec<u64> = piece_indptr[1..].iter().map(|&p| p + offset).collect();
            indptr_w.push(&index_array(&offsets, index_dtype)?)?;
            offset += data.len() as u64;
            done += offsets.len();
        }
        data_w.finish()?;
        indices_w.finish()?;
        indptr_w.finish()?;
        if done != major.len() || nnz.is_some_and(|n| n != offset) {
            return Err(blame(Error::malformed(format!(
                "wrote {done} slices and {offset} values, expected {} and {}",
                major.len(),
                nnz.unwrap_or(offset)
            ))));
        }
        Ok(())
    };
    write().in_element(g.name())
}

fn to_usize(v: u64) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::invalid(format!("{v} values do not fit in memory")))
}
