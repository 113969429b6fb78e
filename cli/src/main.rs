//! The `annpage` command line: inspect, convert, subset, reduce and concatenate `.h5ad` files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use annpage::backed::ReadOptions;
use annpage::inspect::describe;
use annpage::panics;
use annpage::query::Query;
use annpage::ResultExt;
use annpage::{
    concat_on_disk_observed, convert_10x_h5, convert_loom, convert_mtx, read_h5ad_backed, Axis,
    BackedAnnData, BackedOptions, Compression, ConcatProgress, Error, FileFormat, Mode, Selection,
    StoreKind, WriteOptions, ZarrCompression, ZarrFormat, ZarrOptions,
};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

mod inputs;
mod interrupt;
mod readers;
mod serve;
mod transform;

use inputs::{Input, JoinArgs};
use readers::ReaderArgs;

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
    /// Write IN to OUT in another format or compression: .h5ad to .h5ad streams the matrices
    /// through the backed plan; other inputs (csv, mtx, 10x-mtx, 10x-h5) are read whole.
    Convert {
        /// Input file (or 10x directory).
        input: PathBuf,
        /// Output file (written beside, then renamed into place).
        output: PathBuf,
        /// Input format (h5ad, zarr, csv, mtx, 10x-mtx, 10x-h5, loom); default: from the path.
        #[arg(long, value_parser = format_arg)]
        from: Option<FileFormat>,
        /// Output format (h5ad, zarr, loom, csvs: a directory); default: from the path.
        #[arg(long, value_parser = format_arg)]
        to: Option<FileFormat>,
        #[command(flatten)]
        reader: ReaderArgs,
        #[command(flatten)]
        backed: BackedArgs,
        #[command(flatten)]
        output_args: OutputArgs,
    },
    /// Write a subset of cells and genes of IN to OUT, streaming through the backed plan.
    /// Several inputs are read as one collection: their concatenation along obs (the
    /// concatenation options below), as `annpage concat` would write it.
    Subset {
        /// Input .h5ad file(s).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output .h5ad file.
        output: PathBuf,
        /// File of 0-based cell positions, one a line, any order (the output keeps it).
        #[arg(long)]
        obs_indices: Option<PathBuf>,
        /// File of 0-based gene positions, one a line, any order.
        #[arg(long)]
        var_indices: Option<PathBuf>,
        /// File of cell names, one a line.
        #[arg(long)]
        obs_names: Option<PathBuf>,
        /// File of gene names, one a line.
        #[arg(long)]
        var_names: Option<PathBuf>,
        /// Keep the cells whose obs columns pass a pandas-style query:
        /// `n_genes > 200 and cell_type in ["B", "T"]` (see the README).
        #[arg(long, allow_hyphen_values = true)]
        obs_query: Option<String>,
        /// Keep the genes whose var columns pass a pandas-style query.
        #[arg(long, allow_hyphen_values = true)]
        var_query: Option<String>,
        #[command(flatten)]
        join: JoinArgs,
        #[command(flatten)]
        backed: BackedArgs,
        #[command(flatten)]
        output_args: OutputArgs,
    },
    /// One pass over the matrix: per-cell n_genes and total_counts, per-gene n_cells, mean and
    /// var (ddof=1), written as TSV files PREFIX.obs.tsv and PREFIX.var.tsv. Several inputs are
    /// reduced as one collection (their concatenation along obs).
    Stats {
        /// Input .h5ad file(s).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Reduce this layer instead of X.
        #[arg(long)]
        layer: Option<String>,
        /// Rows per chunk (fewer where that many would take more than a quarter of the
        /// cache, or 32 MiB if more).
        #[arg(long, default_value_t = 10_000)]
        chunk_rows: usize,
        #[command(flatten)]
        join: JoinArgs,
        #[command(flatten)]
        backed: BackedArgs,
        /// Output prefix (default: IN without its extension; required with several inputs).
        #[arg(long)]
        out_prefix: Option<PathBuf>,
    },
    /// Edit a whole object as anndata does: make names unique, strings to categoricals,
    /// dense/sparse storage, transpose (the matrices streamed within --cache-mb).
    Transform(transform::TransformArgs),
    /// Concatenate files along obs or var as anndata.concat does, streaming X, layers, raw.X
    /// and dense obsm entries through one cache (a progress bar over their values on a terminal).
    Concat {
        /// Input .h5ad files, in order.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output .h5ad file (written beside, then renamed into place).
        #[arg(short, long)]
        output: PathBuf,
        /// The axis to concatenate along.
        #[arg(long, value_enum, default_value_t = AxisArg::Obs)]
        axis: AxisArg,
        #[command(flatten)]
        join: JoinArgs,
        #[command(flatten)]
        backed: BackedArgs,
        #[command(flatten)]
        output_args: OutputArgs,
    },
    /// Serve files over HTTP (JSON and binary arrays, and a browser viewer at /), read-only,
    /// every file within one cache budget. Stops on Ctrl-C or SIGTERM.
    Serve(serve::ServeArgs),
}

impl Command {
    /// The files or stores the command writes through a temporary beside them.
    fn outputs(&self) -> Vec<PathBuf> {
        match self {
            Command::Convert { output, .. }
            | Command::Subset { output, .. }
            | Command::Concat { output, .. } => vec![output.clone()],
            Command::Transform(args) => vec![args.output.clone()],
            Command::Stats {
                inputs, out_prefix, ..
            } => stats_prefix(out_prefix.clone(), inputs)
                .map_or_else(Vec::new, |p| annpage::stats::tsv_paths(&p).to_vec()),
            Command::Info { .. } | Command::Serve(_) => Vec::new(),
        }
    }
}

/// The prefix of `stats`' two files: `--out-prefix`, or the one input without its extension.
fn stats_prefix(out_prefix: Option<PathBuf>, inputs: &[PathBuf]) -> Option<PathBuf> {
    match (out_prefix, inputs) {
        (Some(p), _) => Some(p),
        (None, [one]) => Some(one.with_extension("")),
        (None, _) => None,
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum AxisArg {
    Obs,
    Var,
}

/// How a command reads its input in backed mode.
#[derive(Args)]
struct BackedArgs {
    /// Cache budget in MiB.
    #[arg(long, default_value_t = 256)]
    cache_mb: usize,
    /// Threads that read and decode the matrix, that compress it when writing gzip, and that
    /// `stats` reduces it on (default: one per core; at most four per core, or 16).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

#[derive(Clone, Copy, ValueEnum)]
enum CompressionArg {
    None,
    Gzip,
    Lzf,
    Zstd,
}

#[derive(Clone, Copy, ValueEnum)]
enum ZarrFormatArg {
    #[value(name = "2")]
    V2,
    #[value(name = "3")]
    V3,
}

/// How the output is written: the store its name says (`.zarr`: a Zarr store; else `.h5ad`),
/// compression, and for Zarr the format, chunks and shards.
#[derive(Args)]
struct OutputArgs {
    /// Compression of the output's arrays (lzf: .h5ad only; zstd: Zarr only).
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    compression: CompressionArg,
    /// Gzip level (0-9), with --compression gzip; zstd level with --compression zstd.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(0..=22))]
    gzip_level: u8,
    /// Write a Zarr store of this format (default for a .zarr output: 3).
    #[arg(long, value_enum)]
    zarr_format: Option<ZarrFormatArg>,
    /// Zarr output: rows per chunk (default: as zarr-python chooses).
    #[arg(long)]
    chunk_rows: Option<usize>,
    /// Zarr v3 output: rows per shard (default: shards as anndata 0.13 makes them).
    #[arg(long)]
    shard_rows: Option<usize>,
    /// Zarr output: the chunks of a dense X, ROWS,COLS (anndata's `write_zarr(chunks=)`).
    #[arg(long, value_name = "ROWS,COLS", value_parser = rows_cols)]
    x_chunks: Option<[usize; 2]>,
}

/// `ROWS,COLS` as two positive numbers.
fn rows_cols(s: &str) -> Result<[usize; 2], String> {
    let parsed = s
        .split_once(',')
        .and_then(|(r, c)| Some([r.parse().ok()?, c.parse().ok()?]));
    parsed
        .filter(|c: &[usize; 2]| !c.contains(&0))
        .ok_or_else(|| format!("expected ROWS,COLS (two positive numbers), got {s:?}"))
}

impl OutputArgs {
    /// The options writing `output`: a Zarr store when its name ends in `.zarr` or a Zarr
    /// format is given, else an .h5ad file.
    fn options(&self, output: &Path) -> annpage::Result<WriteOptions> {
        let zarr_named = output
            .file_name()
            .is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().ends_with(".zarr"));
        let store = if zarr_named || self.zarr_format.is_some() {
            StoreKind::Zarr
        } else {
            StoreKind::H5ad
        };
        let refuse = |codec: &str, store: &str| {
            Err(Error::invalid(format!(
                "--compression {codec} compresses {store} outputs only"
            ))
            .in_file(output))
        };
        let (compression, zarr_codec) = match self.compression {
            CompressionArg::Zstd if store == StoreKind::H5ad => return refuse("zstd", "Zarr"),
            CompressionArg::Lzf if store == StoreKind::Zarr => return refuse("lzf", ".h5ad"),
            CompressionArg::None => (Compression::None, None),
            CompressionArg::Gzip => (Compression::Gzip(self.gzip_level), None),
            CompressionArg::Lzf => (Compression::Lzf, None),
            CompressionArg::Zstd => (
                Compression::None,
                Some(ZarrCompression::Zstd(i32::from(self.gzip_level))),
            ),
        };
        let format = match self.zarr_format {
            Some(ZarrFormatArg::V2) => ZarrFormat::V2,
            _ => ZarrFormat::V3,
        };
        Ok(WriteOptions {
            compression,
            store,
            zarr: ZarrOptions {
                format,
                chunk_rows: self.chunk_rows,
                shard_rows: self.shard_rows,
                auto_shard: format == ZarrFormat::V3 && self.shard_rows.is_none(),
                compression: zarr_codec,
                x_chunks: self.x_chunks,
            },
        })
    }
}

fn run(cli: Cli) -> annpage::Result<()> {
    match cli.command {
        Command::Info { file, json } => {
            let info = describe(&file)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&info)
                        .map_err(|e| annpage::Error::invalid(e.to_string()))?
                );
            } else {
                print!("{}", info.to_text());
            }
        }
        Command::Convert {
            input,
            output,
            from,
            to,
            reader,
            backed,
            output_args,
        } => {
            let options = output_args.options(&output)?;
            let from = match from {
                Some(f) => f,
                None => path_format(&input, "--from")?,
            };
            let to = match to {
                Some(f) => f,
                None => path_format(&output, "--to")?,
            };
            let to = match (to, options.store) {
                (FileFormat::H5ad, StoreKind::Zarr) => FileFormat::Zarr,
                (to, _) => to,
            };
            let options = WriteOptions {
                store: if to == FileFormat::Zarr {
                    StoreKind::Zarr
                } else {
                    StoreKind::H5ad
                },
                ..options
            };
            match (from, to) {
                (FileFormat::H5ad | FileFormat::Zarr, FileFormat::H5ad | FileFormat::Zarr) => {
                    write_backed(&open_backed(&input, &backed)?, &output, &options)?
                }
                (FileFormat::Mtx, FileFormat::H5ad | FileFormat::Zarr) => {
                    convert_mtx(&input, &output, annpage::data::DType::F32, &options)?
                }
                (FileFormat::TenxH5, FileFormat::H5ad | FileFormat::Zarr) => {
                    convert_10x_h5(&input, &output, &reader.options(&input).tenx_h5, &options)?
                }
                (FileFormat::Loom, FileFormat::H5ad | FileFormat::Zarr) => {
                    convert_loom(&input, &output, &reader.options(&input).loom, &options)?
                }
                (_, FileFormat::H5ad) => from
                    .read(&input, &reader.options(&input))?
                    .write_h5ad(&output, &options)?,
                (_, FileFormat::Zarr) => from
                    .read(&input, &reader.options(&input))?
                    .write_zarr(&output, &options)?,
                (FileFormat::H5ad | FileFormat::Zarr, FileFormat::Loom) => {
                    open_backed(&input, &backed)?.write_loom(&output, reader.write_obsm_varm)?
                }
                (FileFormat::H5ad | FileFormat::Zarr, FileFormat::Csvs) => open_backed(
                    &input, &backed,
                )?
                .write_csvs(&output, !reader.with_x, reader.separator()?)?,
                (_, FileFormat::Loom) => from
                    .read(&input, &reader.options(&input))?
                    .write_loom(&output, reader.write_obsm_varm)?,
                (_, FileFormat::Csvs) => from.read(&input, &reader.options(&input))?.write_csvs(
                    &output,
                    !reader.with_x,
                    reader.separator()?,
                )?,
                (_, to) => {
                    return Err(Error::invalid(format!(
                        "annpage writes h5ad, zarr, loom and csvs, not {}",
                        to.name()
                    )))
                }
            }
        }
        Command::Subset {
            inputs,
            output,
            obs_indices,
            var_indices,
            obs_names,
            var_names,
            obs_query,
            var_query,
            join,
            backed,
            output_args,
        } => {
            let input = Input::open(&inputs, &join, backed_options(&backed))?;
            let obs = axis_selection(obs_indices, obs_names, "obs")?;
            let var = axis_selection(var_indices, var_names, "var")?;
            let obs = queried(&input, obs, obs_query, Axis::Obs)?;
            let var = queried(&input, var, var_query, Axis::Var)?;
            let options = output_args.options(&output)?;
            input.write_subset(&obs, &var, &output, &options)?;
        }
        Command::Stats {
            inputs,
            layer,
            chunk_rows,
            join,
            backed,
            out_prefix,
        } => {
            let threads = backed.threads.map(usize::from);
            let prefix = stats_prefix(out_prefix, &inputs)
                .ok_or_else(|| Error::invalid("give --out-prefix with several inputs"))?;
            let input = Input::open(&inputs, &join, backed_options(&backed))?;
            run_stats(&input, layer.as_deref(), chunk_rows, threads, &prefix)?;
        }
        Command::Transform(args) => transform::run(args)?,
        Command::Concat {
            inputs,
            output,
            axis,
            join,
            backed,
            output_args,
        } => {
            let options = join.options(match axis {
                AxisArg::Obs => Axis::Obs,
                AxisArg::Var => Axis::Var,
            });
            let write = output_args.options(&output)?;
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {percent}% of {len} values {elapsed} (eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let observe = |p: ConcatProgress| {
                bar.set_length(p.total);
                bar.set_position(p.done);
            };
            let backed = backed_options(&backed);
            concat_on_disk_observed(&inputs, &output, &options, &write, &backed, &observe)?;
            bar.finish_and_clear();
        }
        Command::Serve(_) => unreachable!("main serves before run"),
    }
    Ok(())
}

fn format_arg(name: &str) -> Result<FileFormat, String> {
    FileFormat::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = FileFormat::ALL.iter().map(|f| f.name()).collect();
        format!(
            "unknown format '{name}', expected one of {}",
            names.join(", ")
        )
    })
}

fn path_format(path: &Path, flag: &str) -> annpage::Result<FileFormat> {
    FileFormat::from_path(path).ok_or_else(|| {
        Error::invalid(format!(
            "cannot tell the format of {} from its name; give {flag}",
            path.display()
        ))
    })
}

/// Writes a backed handle to `output` in the store `options.store` names.
fn write_backed(
    adata: &BackedAnnData,
    output: &Path,
    options: &WriteOptions,
) -> annpage::Result<()> {
    match options.store {
        StoreKind::H5ad => adata.write_h5ad(output, options),
        StoreKind::Zarr => adata.write_zarr(output, options),
    }
}

fn open_backed(path: &Path, args: &BackedArgs) -> annpage::Result<BackedAnnData> {
    read_h5ad_backed(path, Mode::Read, backed_options(args))
}

fn backed_options(args: &BackedArgs) -> BackedOptions {
    let mut options = BackedOptions {
        cache_bytes: args.cache_mb.saturating_mul(1 << 20),
        ..BackedOptions::default()
    };
    if let Some(n) = args.threads {
        options.read = ReadOptions::with_threads(usize::from(n));
    }
    options
}

/// Reads a list file: one entry a line (CRLF or LF), blank lines and a leading byte-order mark
/// ignored. Read line by line, so that what is no list (a binary file, a device) is refused at
/// its first bad line: text that is not UTF-8, or a line longer than [`MAX_LIST_LINE`].
fn read_list(path: &Path) -> annpage::Result<Vec<String>> {
    use std::io::{BufRead, Read};
    let file = std::fs::File::open(path).in_file(path)?;
    let mut reader = std::io::BufReader::new(file);
    let mut entries = Vec::new();
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let limit = MAX_LIST_LINE as u64 + 2;
        let n = (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut line)
            .in_file(path)?;
        if n == 0 {
            break;
        }
        let bad = |what: &str| Error::invalid(format!("line {number} {what}")).in_file(path);
        if line.last() != Some(&b'\n') && n as u64 == limit {
            return Err(bad(&format!(
                "is longer than {MAX_LIST_LINE} bytes: not a list of one entry a line"
            )));
        }
        let text = std::str::from_utf8(&line).map_err(|_| bad("is not UTF-8 text"))?;
        // A byte-order mark (editors on Windows write one) is not part of the first entry.
        let text = if number == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        let text = text.trim_end_matches('\n').trim_end_matches('\r');
        if !text.trim().is_empty() {
            entries.push(text.to_owned());
        }
    }
    Ok(entries)
}

/// The longest line a list file may have (names and positions are far shorter).
const MAX_LIST_LINE: usize = 1 << 16;

/// The selection of one axis: `selection`, or the rows of obs (var) that pass `query`.
fn queried(
    input: &Input,
    selection: Selection,
    query: Option<String>,
    axis: Axis,
) -> annpage::Result<Selection> {
    let Some(q) = query else {
        return Ok(selection);
    };
    let name = axis.name();
    if !matches!(selection, Selection::All) {
        return Err(Error::invalid(format!(
            "--{name}-query cannot be combined with --{name}-indices or --{name}-names"
        )));
    }
    // Query errors read `IN: /obs: ...`, like the errors of the file's own.
    let mask = q
        .parse::<Query>()
        .and_then(|query| query.mask(&input.frame(axis)?))
        .in_element(format!("/{name}"))
        .in_file(input.path())?;
    Ok(Selection::Mask(mask))
}

fn axis_selection(
    indices: Option<PathBuf>,
    names: Option<PathBuf>,
    axis: &str,
) -> annpage::Result<Selection> {
    match (indices, names) {
        (Some(_), Some(_)) => Err(Error::invalid(format!(
            "give either --{axis}-indices or --{axis}-names, not both"
        ))),
        (Some(path), None) => {
            let lines = read_list(&path)?;
            let mut positions = Vec::with_capacity(lines.len());
            for (i, line) in lines.iter().enumerate() {
                let p: usize = line.trim().parse().map_err(|_| {
                    Error::invalid(format!(
                        "line {}: '{line}' is not a 0-based position",
                        i + 1
                    ))
                    .in_file(&path)
                })?;
                positions.push(p);
            }
            Ok(Selection::positions(positions))
        }
        (None, Some(path)) => Ok(Selection::names(read_list(&path)?)),
        (None, None) => Ok(Selection::All),
    }
}

fn run_stats(
    input: &Input,
    layer: Option<&str>,
    chunk_rows: usize,
    threads: Option<usize>,
    prefix: &Path,
) -> annpage::Result<()> {
    let n_obs = input.shape().0;
    let bar = ProgressBar::new(n_obs as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} cells {elapsed} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // The names are read through the HDF5 library while the pass reads the matrix: the two
    // overlap.
    let (stats, names) = std::thread::scope(|s| {
        let names = s.spawn(|| input.names());
        let stats = input.qc(layer, chunk_rows, threads, &mut |rows| bar.inc(rows as u64));
        let names = names
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (stats, names)
    });
    let stats = stats?;
    let (obs_names, var_names) = names?;
    bar.finish_and_clear();
    let [obs_path, var_path] = stats.write_tsv(&obs_names, &var_names, prefix)?;
    eprintln!(
        "annpage: wrote {} and {}",
        obs_path.display(),
        var_path.display()
    );
    Ok(())
}

/// An error as one line of the terminal: line breaks become spaces, other control characters
/// (from names inside a file: escapes, carriage returns) are shown escaped, not sent.
fn one_line(message: &str) -> String {
    message
        .chars()
        .map(|c| match c {
            '\n' => " ".to_owned(),
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version: as clap prints them.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // No command at all: the help, and a failure.
            let _ = e.print();
            return ExitCode::FAILURE;
        }
        Err(e) => {
            // One line, as every other error: clap's first, without its own prefix.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("annpage: error: {} (see annpage --help)", one_line(first));
            return ExitCode::FAILURE;
        }
    };
    if let Command::Serve(args) = cli.command {
        // A request's panic (a decoder's on a corrupt file, contained) is one line of the log.
        panics::install_hook(panics::Report::OneLine);
        return match serve::serve(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("annpage: error: {}", one_line(&e.to_string()));
                ExitCode::FAILURE
            }
        };
    }
    panics::install_hook(panics::Report::Quiet);
    let interrupt = interrupt::remove_temporaries_on_signal(cli.command.outputs());
    let outcome = std::panic::catch_unwind(|| run(cli));
    // Stopped by a signal: the process dies of it, whatever the command made of it.
    interrupt.settle();
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            // One line: the file, the element and what was wrong.
            eprintln!("annpage: error: {}", one_line(&e.to_string()));
            ExitCode::FAILURE
        }
        Err(payload) => {
            eprintln!("annpage: error: {}", one_line(&panics::uncaught(&*payload)));
            // The exit status of a panic, as before: a bug, not a bad input.
            ExitCode::from(101)
        }
    }
}
