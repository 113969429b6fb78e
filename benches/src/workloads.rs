//! The workloads, through annpage's public API used the way a user would (the counterparts of
//! the `anndata_*` functions of `benches/peers.py`).
//!
//! Each function opens the file itself and returns the checksum token: the caller times it
//! whole, opening the file through the last byte of the result.

use std::path::Path;

use annpage::backed::{
    read_h5ad_backed, read_zarr_backed, BackedAnnData, BackedOptions, BatchOptions, Mode,
};
use annpage::data::Matrix;
use annpage::stats::QcAccumulator;
use annpage::{AxisIndex, Selection};

use crate::checksum::{meta_checksum, w_mod, w_plus1, EntrySums, GeneSums};
use crate::selections::Selections;
use crate::BenchResult;

/// The cache budget: `$ANNPAGE_CACHE_MB` MiB, 1 GiB by default.
pub fn cache_bytes() -> BenchResult<usize> {
    let mb = match std::env::var("ANNPAGE_CACHE_MB") {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|e| format!("ANNPAGE_CACHE_MB={v:?}: {e}"))?,
        Err(_) => 1024,
    };
    Ok(mb << 20)
}

/// Opens `path` (an .h5ad file, or a Zarr store: a `.zarr` directory or `.zarr.zip`)
/// read-only in backed mode with the bench's cache budget.
fn open(path: &Path) -> BenchResult<BackedAnnData> {
    let options = BackedOptions {
        cache_bytes: cache_bytes()?,
        ..BackedOptions::default()
    };
    let name = path.to_string_lossy();
    if path.is_dir() || name.ends_with(".zarr") || name.ends_with(".zarr.zip") {
        return Ok(read_zarr_backed(path, Mode::Read, options)?);
    }
    Ok(read_h5ad_backed(path, Mode::Read, options)?)
}

/// `X` of a handle in memory (`adata[...].X`).
fn x_of(adata: &BackedAnnData) -> BenchResult<Matrix> {
    Ok(adata.x().ok_or("the file has no X")?.to_memory()?)
}

/// (a) Every cell in chunks of `row_chunk` rows with the backed chunk iterator; per gene the
/// sum and sum of squares. Each chunk is handed back when summed, for a later one to be read
/// into its memory, as a one-pass reduction over annpage should.
pub fn full_pass(path: &Path, sel: &Selections) -> BenchResult<String> {
    let adata = open(path)?;
    let mut acc = GeneSums::new(adata.n_vars());
    let mut chunks = adata.chunk_x(sel.row_chunk)?;
    while let Some(chunk) = chunks.next() {
        let (_rows, matrix) = chunk?;
        acc.add(&matrix)?;
        chunks.recycle(matrix);
    }
    Ok(acc.checksum())
}

/// `X` of the file in memory if it is CSR (the in-memory limits' input), else `None`.
fn csr_x(path: &Path) -> BenchResult<Option<annpage::data::SparseMatrix>> {
    match x_of(&open(path)?)? {
        Matrix::Sparse(x) if x.format() == annpage::data::SparseFormat::Csr => Ok(Some(x)),
        _ => Ok(None),
    }
}

/// The limit `sums_in_memory`: the arithmetic of [`full_pass`] alone, over `X` already in
/// memory (read first, not timed) in the same chunks of rows. Returns the bytes of
/// `X/indices` and `X/data` summed over and the seconds; `None` for an `X` that is not CSR.
pub fn sums_in_memory(path: &Path, sel: &Selections) -> BenchResult<Option<(f64, f64)>> {
    let Some(x) = csr_x(path)? else {
        return Ok(None);
    };
    let t0 = std::time::Instant::now();
    let mut acc = GeneSums::new(x.shape().1);
    let indptr = x.indptr();
    let rows = x.shape().0;
    for start in (0..rows).step_by(sel.row_chunk.max(1)) {
        let end = rows.min(start + sel.row_chunk);
        let range = indptr[start] as usize..indptr[end] as usize;
        if !acc.add_csr(x.indices(), x.data(), range) {
            return Err("X's data is not f32, f64, i32 or i64".into());
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    // The checksum is the full pass's; the bytes are what run.py reports a throughput of.
    std::hint::black_box(acc.checksum());
    let bytes = x.nnz() * (4 + x.data().dtype().size());
    Ok(Some((bytes as f64, seconds)))
}

/// The limit `qc_in_memory`: the arithmetic of `annpage stats` alone (`QcAccumulator` on one
/// thread), over `X` already in memory (read first, not timed) in the same chunks of rows as
/// [`sums_in_memory`]. Returns the bytes of `X/indices` and `X/data` reduced and the seconds;
/// `None` for an `X` that is not CSR.
pub fn qc_in_memory(path: &Path, sel: &Selections) -> BenchResult<Option<(f64, f64)>> {
    let Some(x) = csr_x(path)? else {
        return Ok(None);
    };
    let (rows, cols) = x.shape();
    let step = sel.row_chunk.max(1);
    // The chunks are cut before the clock starts: the limit is the reduction alone.
    let chunks = (0..rows)
        .step_by(step)
        .map(|start| {
            let end = rows.min(start + step);
            let picked = AxisIndex::range(start..end, rows)?;
            Ok(Matrix::Sparse(x.subset(&picked, &AxisIndex::full(cols))?))
        })
        .collect::<BenchResult<Vec<_>>>()?;
    let t0 = std::time::Instant::now();
    let mut acc = QcAccumulator::with_n_obs(rows, cols).with_threads(1);
    for chunk in &chunks {
        acc.add_chunk(chunk)?;
    }
    std::hint::black_box(acc.finish());
    let seconds = t0.elapsed().as_secs_f64();
    let bytes = x.nnz() * (4 + x.data().dtype().size());
    Ok(Some((bytes as f64, seconds)))
}

/// (b) The batches of cells handed to the loader as an epoch's order (`X.batches_of`), each
/// batch's `X` in memory as CSR with the rows in the batch's order (what `adata[batch].X`
/// gives).
pub fn random_batches(path: &Path, sel: &Selections) -> BenchResult<String> {
    let adata = open(path)?;
    let x = adata.x().ok_or("the file has no X")?;
    let mut acc = EntrySums::default();
    for batch in x.batches_of(sel.batches.clone())? {
        acc.add(&batch?.x, w_mod::<7>, w_mod::<5>)?;
    }
    Ok(acc.checksum())
}

/// (b′) The first [`LOADER_BATCHES`] batches of the shuffled batch loader with annbatch's
/// sampling: runs of 512 consecutive cells, 32 runs mixed, batches of 256 (the defaults of
/// [`BatchOptions`], seed 0).
pub fn loader(path: &Path, _sel: &Selections) -> BenchResult<String> {
    let adata = open(path)?;
    let x = adata.x().ok_or("the file has no X")?;
    let mut acc = EntrySums::default();
    for batch in x.batches(&BatchOptions::default())?.take(LOADER_BATCHES) {
        acc.add(&batch?.x, w_mod::<7>, w_mod::<5>)?;
    }
    Ok(acc.checksum())
}

/// Batches the `loader` workload takes (as many as `random_batches` reads).
pub const LOADER_BATCHES: usize = 200;

/// (c) The subset cells × genes, the whole object to memory (`adata[cells, genes]
/// .to_memory()`, as the anndata peer does); the checksum is over its `X`.
pub fn subset(path: &Path, sel: &Selections) -> BenchResult<String> {
    let adata = open(path)?;
    let view = adata.slice(
        &Selection::positions(sel.subset_cells.iter().copied()),
        &Selection::positions(sel.subset_genes.iter().copied()),
    )?;
    let sub = view.to_memory()?;
    let x = sub.x().ok_or("the subset has no X")?;
    let mut acc = EntrySums::default();
    acc.add(x, w_mod::<7>, w_mod::<5>)?;
    Ok(acc.checksum())
}

/// (d) The full columns of the given genes (`adata[:, genes].X`).
pub fn gene_columns(path: &Path, sel: &Selections) -> BenchResult<String> {
    let adata = open(path)?;
    let view = adata.slice(
        &Selection::All,
        &Selection::positions(sel.columns.iter().copied()),
    )?;
    let x = x_of(&view)?;
    let mut acc = EntrySums::default();
    acc.add(&x, w_mod::<7>, w_plus1)?;
    Ok(acc.checksum())
}

/// (e) Open the file and read `obs` and `var` completely.
pub fn open_meta(path: &Path, _sel: &Selections) -> BenchResult<String> {
    let adata = open(path)?;
    let obs = adata.obs()?;
    let var = adata.var()?;
    meta_checksum(adata.n_obs(), adata.n_vars(), &obs, &var)
}
