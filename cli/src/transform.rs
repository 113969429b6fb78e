//! `annpage transform`: whole-object edits with anndata's semantics. Edits of obs and var are
//! made on the frames and the rest is streamed from the input through the backed plan (a
//! transpose too: sparse matrices stream, dense ones are read whole); a change of storage
//! reads the object whole.

use std::path::PathBuf;

use annpage::data::{Matrix, SparseFormat};
use annpage::{read_h5ad, AnnData, AnnDataElements, StoreKind, WriteOptions};
use clap::{Args, ValueEnum};

use super::{open_backed, write_backed, BackedArgs, OutputArgs};

/// The arguments of `annpage transform`.
#[derive(Args)]
pub struct TransformArgs {
    /// Input .h5ad file (read whole for --matrix-format; streamed otherwise).
    input: PathBuf,
    /// Output .h5ad file (written beside, then renamed into place).
    pub(crate) output: PathBuf,
    /// Make obs names unique as anndata's obs_names_make_unique (NAME-1, NAME-2, …; the
    /// joining string may be given).
    #[arg(long, value_name = "JOIN", num_args = 0..=1, default_missing_value = "-")]
    obs_names_make_unique: Option<String>,
    /// Make var names unique as anndata's var_names_make_unique.
    #[arg(long, value_name = "JOIN", num_args = 0..=1, default_missing_value = "-")]
    var_names_make_unique: Option<String>,
    /// Turn string columns of obs and var that repeat values into categoricals, as anndata's
    /// strings_to_categoricals (which its write_h5ad applies by default).
    #[arg(long)]
    strings_to_categoricals: bool,
    /// Store X and every layer as dense, CSR or CSC.
    #[arg(long, value_enum)]
    matrix_format: Option<FormatArg>,
    /// Transpose the object as anndata's `adata.T` (after the edits above; raw is dropped).
    #[arg(long)]
    transpose: bool,
    #[command(flatten)]
    output_args: OutputArgs,
    #[command(flatten)]
    backed: BackedArgs,
}

/// A storage format for matrices.
#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Dense,
    Csr,
    Csc,
}

/// Runs `annpage transform`.
pub fn run(args: TransformArgs) -> annpage::Result<()> {
    let options = args.output_args.options(&args.output)?;
    if args.matrix_format.is_none() {
        return streamed(&args, &options);
    }
    let mut adata = read_h5ad(&args.input)?;
    edit_annotations(&args, &mut adata)?;
    if let Some(format) = args.matrix_format {
        store_as(&mut adata, format)?;
    }
    if args.transpose {
        adata = adata.transpose();
    }
    match options.store {
        StoreKind::H5ad => adata.write_h5ad(&args.output, &options),
        StoreKind::Zarr => adata.write_zarr(&args.output, &options),
    }
}

/// The edits of obs and var (names made unique, strings made categoricals), in order.
fn edit_annotations(args: &TransformArgs, adata: &mut AnnData) -> annpage::Result<()> {
    if let Some(join) = &args.obs_names_make_unique {
        adata.obs_names_make_unique(join)?;
    }
    if let Some(join) = &args.var_names_make_unique {
        adata.var_names_make_unique(join)?;
    }
    if args.strings_to_categoricals {
        adata.strings_to_categoricals()?;
    }
    Ok(())
}

/// Without a change of storage: the edits of obs and var made on an object holding the frames
/// only, handed to a backed handle of the input as pending changes, and the handle written
/// (transposed when asked; every other element streamed or copied, within the cache budget).
fn streamed(args: &TransformArgs, options: &WriteOptions) -> annpage::Result<()> {
    let b = open_backed(&args.input, &args.backed)?;
    let mut frames = AnnDataElements::empty(b.n_obs(), b.n_vars());
    frames.obs = b.obs()?;
    frames.var = b.var()?;
    let mut frames = AnnData::from_elements(frames)?;
    edit_annotations(args, &mut frames)?;
    let elems = frames.into_elements();
    b.set_obs(elems.obs)?;
    b.set_var(elems.var)?;
    if !args.transpose {
        return write_backed(&b, &args.output, options);
    }
    match options.store {
        StoreKind::H5ad => b.transpose().write_h5ad(&args.output, options),
        StoreKind::Zarr => b.transpose().write_zarr(&args.output, options),
    }
}

/// Stores X and every layer in `format`.
fn store_as(adata: &mut AnnData, format: FormatArg) -> annpage::Result<()> {
    let convert = |m: &Matrix| match format {
        FormatArg::Dense => m.to_dense().map(Matrix::Dense),
        FormatArg::Csr => m.to_sparse(SparseFormat::Csr),
        FormatArg::Csc => m.to_sparse(SparseFormat::Csc),
    };
    if let Some(x) = adata.x() {
        let x = convert(x)?;
        adata.set_x(Some(x))?;
    }
    let layers: Vec<(String, Matrix)> = adata
        .layers()
        .iter()
        .map(|(k, m)| Ok((k.clone(), convert(m)?)))
        .collect::<annpage::Result<_>>()?;
    for (k, m) in layers {
        adata.insert_layer(k, m)?;
    }
    Ok(())
}
