//! `annpage transform`: whole-object edits with anndata's semantics. Edits of obs and var are
//! made on the frames and the rest is streamed from the input through the backed plan, stored
//! as asked and transposed when asked.

use std::path::PathBuf;

use annpage::backed::{MatrixKind, StoredAs};
use annpage::data::SparseFormat;
use annpage::{AnnData, AnnDataElements};
use clap::{Args, ValueEnum};

use super::{open_backed, BackedArgs, OutputArgs};

/// The arguments of `annpage transform`.
#[derive(Args)]
pub struct TransformArgs {
    /// Input .h5ad file (streamed within --cache-mb).
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
    /// Turn string columns of obs, var and raw.var that repeat values into categoricals, as
    /// anndata's write_h5ad does by default (its strings_to_categoricals, then raw.var's).
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

/// Runs `annpage transform`: the edits of obs and var made on an object holding the frames
/// only, handed to a backed handle of the input as pending changes, and the handle written —
/// stored as asked, transposed when asked — every other element streamed or copied within
/// the cache budget.
pub fn run(args: TransformArgs) -> annpage::Result<()> {
    let options = args.output_args.options(&args.output)?;
    let b = open_backed(&args.input, &args.backed)?;
    let mut frames = AnnDataElements::empty(b.n_obs(), b.n_vars());
    frames.obs = b.obs()?;
    frames.var = b.var()?;
    let mut frames = AnnData::from_elements(frames)?;
    edit_annotations(&args, &mut frames)?;
    let elems = frames.into_elements();
    b.set_obs(elems.obs)?;
    b.set_var(elems.var)?;
    // The storage is changed before the transpose: CSR X transposed is CSC.
    let kind = args.matrix_format.map(|f| f.kind(args.transpose));
    let stored = StoredAs {
        x: kind,
        layers: kind,
        raw_x: None,
        // obs, var and raw.var, as anndata's write_h5ad converts them.
        strings_to_categoricals: args.strings_to_categoricals,
    };
    if args.transpose {
        b.transpose()
            .write_stored_as(&args.output, &options, stored)
    } else {
        b.write_stored_as(&args.output, &options, stored)
    }
}

/// The edits of obs and var's names (made unique), in order.
fn edit_annotations(args: &TransformArgs, adata: &mut AnnData) -> annpage::Result<()> {
    if let Some(join) = &args.obs_names_make_unique {
        adata.obs_names_make_unique(join)?;
    }
    if let Some(join) = &args.var_names_make_unique {
        adata.var_names_make_unique(join)?;
    }
    Ok(())
}

impl FormatArg {
    /// The kind a matrix stored in this format has once transposed (when `transposed`).
    fn kind(self, transposed: bool) -> MatrixKind {
        match (self, transposed) {
            (FormatArg::Dense, _) => MatrixKind::Dense,
            (FormatArg::Csr, false) | (FormatArg::Csc, true) => {
                MatrixKind::Sparse(SparseFormat::Csr)
            }
            (FormatArg::Csr, true) | (FormatArg::Csc, false) => {
                MatrixKind::Sparse(SparseFormat::Csc)
            }
        }
    }
}
