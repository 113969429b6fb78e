//! The options of the readers of formats other than h5ad (and of the csvs and loom writers),
//! as the CLI takes them.

use std::path::Path;

use annpage::{
    CsvOptions, Error, FormatOptions, LoomOptions, TenxH5Options, TenxMtxOptions, VarNames,
};
use clap::Args;

/// Options of the readers of formats other than h5ad.
#[derive(Args)]
pub struct ReaderArgs {
    /// Table field separator (csv): one character, `tab`, or `whitespace` (runs of blanks).
    /// Default: from the extension (.tsv tab, .txt whitespace, else comma).
    #[arg(long, value_parser = delimiter_arg)]
    delimiter: Option<Delimiter>,
    /// The table's first column holds row names (csv); default: decided from the first lines.
    #[arg(long)]
    first_column_names: bool,
    /// Name genes by their ids, not symbols (10x-mtx).
    #[arg(long)]
    gene_ids: bool,
    /// Keep repeated gene symbols as they are (10x-mtx); default: numbered name-1, name-2.
    #[arg(long)]
    keep_duplicate_names: bool,
    /// Keep every feature type, not only Gene Expression (10x-mtx, 10x-h5).
    #[arg(long)]
    all_features: bool,
    /// Keep this genome's features (10x-h5; names the group of v2 files with several).
    #[arg(long)]
    genome: Option<String>,
    /// Write X.csv too (csvs output; anndata's write_csvs skips it by default). --delimiter
    /// sets the output's separator.
    #[arg(long)]
    pub(crate) with_x: bool,
    /// Read this loom layer as X when the file has it (loom; anndata's default: spliced).
    #[arg(long, default_value = "spliced")]
    loom_x_name: String,
    /// Write obsm/varm arrays as loom attributes too (loom output).
    #[arg(long)]
    pub(crate) write_obsm_varm: bool,
}

/// A table's field separator.
#[derive(Clone, Copy, Debug)]
enum Delimiter {
    /// Runs of blanks (`whitespace`).
    Whitespace,
    /// One character (`tab` or `\t` for a tab).
    Char(char),
}

fn delimiter_arg(text: &str) -> Result<Delimiter, String> {
    let mut chars = text.chars();
    match (text, chars.next(), chars.next()) {
        ("whitespace", ..) => Ok(Delimiter::Whitespace),
        ("tab" | "\\t", ..) => Ok(Delimiter::Char('\t')),
        (_, Some(c), None) if c != '\n' && c != '\r' && c != '"' => Ok(Delimiter::Char(c)),
        _ => Err(format!(
            "'{text}' is no delimiter: give one character (not a quote or a line break), \
             'tab' or 'whitespace'"
        )),
    }
}

impl ReaderArgs {
    /// The separator of a csvs output.
    pub fn separator(&self) -> annpage::Result<char> {
        match self.delimiter {
            None => Ok(','),
            Some(Delimiter::Char(c)) => Ok(c),
            Some(Delimiter::Whitespace) => Err(Error::invalid(
                "--delimiter whitespace reads tables; a written one needs one character",
            )),
        }
    }

    /// The readers' options for `input`: a table's separator from its extension unless
    /// `--delimiter` gives one.
    pub fn options(&self, input: &Path) -> FormatOptions {
        let csv = (self.delimiter.is_some() || self.first_column_names).then(|| {
            let by_path = CsvOptions::for_path(input);
            CsvOptions {
                delimiter: match self.delimiter {
                    None => by_path.delimiter,
                    Some(Delimiter::Whitespace) => None,
                    Some(Delimiter::Char(c)) => Some(c),
                },
                first_column_names: self.first_column_names.then_some(true),
            }
        });
        FormatOptions {
            csv,
            tenx_mtx: TenxMtxOptions {
                var_names: if self.gene_ids {
                    VarNames::GeneIds
                } else {
                    VarNames::GeneSymbols
                },
                make_unique: !self.keep_duplicate_names,
                gex_only: !self.all_features,
                prefix: String::new(),
            },
            tenx_h5: TenxH5Options {
                genome: self.genome.clone(),
                gex_only: !self.all_features,
            },
            loom: LoomOptions {
                x_name: self.loom_x_name.clone(),
                ..LoomOptions::default()
            },
        }
    }
}
