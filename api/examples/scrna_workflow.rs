//! The first steps of the single-cell RNA-seq workflow, as a scanpy tutorial takes them:
//! a Cell Ranger matrix directory → QC columns → keep cells with more than 200 genes and genes
//! seen in at least 3 of those cells → raw counts kept as a layer → a gzip-compressed .h5ad.
//!
//! ```sh
//! cargo run --release -p annpage --example scrna_workflow -- filtered_feature_bc_matrix/ out.h5ad
//! ```
//!
//! The directory is read into memory (a 10x matrix is read whole, as scanpy reads it); the
//! QC pass is the engine's one-pass reduction; the output is written beside its name and
//! renamed into place.

use std::process::ExitCode;

use annpage::data::{ArrayData, Column, Matrix};
use annpage::stats::QcAccumulator;
use annpage::{AnnData, Compression, Selection, WriteOptions};

fn qc(adata: &AnnData) -> annpage::Result<annpage::stats::QcStats> {
    let x = adata.x().expect("a 10x directory always has a matrix");
    let mut acc = QcAccumulator::with_n_obs(adata.n_obs(), adata.n_vars());
    acc.add_chunk(x)?;
    Ok(acc.finish())
}

fn counts(values: &[u64]) -> Column {
    Column::Array(ArrayData::from(
        values.iter().map(|&v| v as i64).collect::<Vec<i64>>(),
    ))
}

fn run(dir: &str, out: &str) -> annpage::Result<()> {
    let mut adata = annpage::read_10x_mtx(dir, &Default::default())?;

    // QC columns: genes detected and total counts per cell.
    let stats = qc(&adata)?;
    adata.obs_mut().insert("n_genes", counts(&stats.n_genes))?;
    let totals = ArrayData::from(stats.total_counts.clone());
    adata
        .obs_mut()
        .insert("total_counts", Column::Array(totals))?;

    // Cells with more than 200 genes; then genes seen in at least 3 of the cells kept.
    let cells: Vec<bool> = stats.n_genes.iter().map(|&n| n > 200).collect();
    let mut adata = adata.subset(&Selection::Mask(cells), &Selection::All)?;
    let stats = qc(&adata)?;
    adata.var_mut().insert("n_cells", counts(&stats.n_cells))?;
    let genes: Vec<bool> = stats.n_cells.iter().map(|&n| n >= 3).collect();
    let mut adata = adata.subset(&Selection::All, &Selection::Mask(genes))?;

    // The raw counts, kept before any normalisation changes X.
    let x: Matrix = adata.x().cloned().expect("kept from the input");
    adata.insert_layer("counts", x)?;

    adata.write_h5ad(
        out,
        &WriteOptions {
            compression: Compression::Gzip(4),
            ..Default::default()
        },
    )?;
    println!(
        "{} cells × {} genes written to {out}",
        adata.n_obs(),
        adata.n_vars()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, out] = args.as_slice() else {
        eprintln!("usage: scrna_workflow TENX_DIR OUT.h5ad");
        return ExitCode::from(2);
    };
    match run(dir, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
