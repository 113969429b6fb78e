//! The `annpage` command line: inspect, convert, subset and reduce `.h5ad` files.

use std::path::PathBuf;
use std::process::ExitCode;

use annpage::{Compression, WriteOptions};
use annpage_engine::format::inspect::{describe, ElementInfo};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "annpage",
    version,
    about = "Out-of-core storage engine for AnnData (.h5ad)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the tree of elements with encoding, dtype, shape and storage (metadata only).
    Info {
        /// The .h5ad file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read IN whole and write OUT.
    Convert {
        /// Input .h5ad file.
        input: PathBuf,
        /// Output .h5ad file (written beside, then renamed into place).
        output: PathBuf,
        /// Compression of the output's arrays.
        #[arg(long, value_enum, default_value_t = CompressionArg::None)]
        compression: CompressionArg,
        /// Gzip level (0-9), with --compression gzip.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(0..=9))]
        gzip_level: u8,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum CompressionArg {
    None,
    Gzip,
    Lzf,
}

fn compression(arg: CompressionArg, level: u8) -> Compression {
    match arg {
        CompressionArg::None => Compression::None,
        CompressionArg::Gzip => Compression::Gzip(level),
        CompressionArg::Lzf => Compression::Lzf,
    }
}

fn info_json(info: &ElementInfo) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert("path".into(), info.path.clone().into());
    obj.insert("encoding".into(), info.encoding.clone().into());
    if let Some(d) = &info.dtype {
        obj.insert("dtype".into(), d.clone().into());
    }
    if let Some(s) = &info.shape {
        obj.insert("shape".into(), s.clone().into());
    }
    if let Some(n) = info.nnz {
        obj.insert("nnz".into(), n.into());
    }
    if let Some(st) = &info.storage {
        let mut s = serde_json::Map::new();
        s.insert("layout".into(), st.layout.into());
        if let Some(c) = &st.chunk {
            s.insert("chunk".into(), c.clone().into());
        }
        s.insert("filters".into(), st.filters.clone().into());
        obj.insert("storage".into(), s.into());
    }
    obj.insert(
        "children".into(),
        info.children
            .iter()
            .map(info_json)
            .collect::<Vec<_>>()
            .into(),
    );
    obj.into()
}

fn run(cli: Cli) -> annpage::Result<()> {
    match cli.command {
        Command::Info { file, json } => {
            let info = describe(&file)?;
            if json {
                println!("{}", info_json(&info));
            } else {
                print!("{}", info.to_text());
            }
        }
        Command::Convert {
            input,
            output,
            compression: c,
            gzip_level,
        } => {
            let adata = annpage::read_h5ad(&input)?;
            let options = WriteOptions {
                compression: compression(c, gzip_level),
            };
            adata.write_h5ad(&output, &options)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the file, the element and what was wrong.
            let msg = e.to_string().replace('\n', " ");
            eprintln!("annpage: error: {msg}");
            ExitCode::FAILURE
        }
    }
}
