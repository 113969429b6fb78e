//! `annpage-bench`: the annpage peer of the benchmarks in `docs/benchmarks.md`, and the
//! libdeflate limits.
//!
//! ```text
//! annpage-bench WORKLOAD FILE
//! ```
//!
//! WORKLOAD is one of the workloads run for every peer by `benches/run.py`:
//!
//! - `full_pass`: every cell of `X` in chunks of `row_chunk` rows (the backed chunk iterator);
//!   per-gene sum and sum of squares;
//! - `random_batches`: each batch of random cells as a backed slice, its `X` to a CSR matrix
//!   with the rows in the batch's order;
//! - `loader`: the first 200 batches of 256 cells of the shuffled batch loader
//!   (`BackedMatrixView::batches`, annbatch's sampling: random runs of 512 cells, 32 mixed);
//! - `subset`: the subset cells × genes, the whole object to memory;
//! - `gene_columns`: the full columns of a few genes;
//! - `open_meta`: open the file and read `obs` and `var` completely;
//! - `noop`: nothing (the process's baseline time and memory);
//!
//! or one of the machine's limits, measured without annpage:
//!
//! - `inflate_libdeflate_1`, `inflate_libdeflate_all`: inflate every stored chunk of
//!   `X/data` and `X/indices` with libdeflate, on one core and on all of them (the stored
//!   bytes are read beforehand, untimed); `n/a` on files whose `X` is not deflate-compressed.
//! - `zstd_all`: decode every stored inner chunk of a Zarr v3 store's sharded, zstd-compressed
//!   `X/data` and `X/indices` on all cores; `n/a` on other files and layouts.
//! - `sums_in_memory`, `qc_in_memory`: the arithmetic of `full_pass` and of `annpage stats`
//!   (`QcAccumulator`) alone, on one core, over `X` read into memory beforehand (untimed).
//!
//! The workloads go through annpage's public API only, as a user would: `read_h5ad_backed`
//! (`read_zarr_backed` for a Zarr store) with a cache budget of `$ANNPAGE_CACHE_MB` MiB (default 1,024). The random cells and genes
//! come from `FILE.selections.json` (or `$BENCH_SELECTIONS`), written by `benches/peers.py`.
//!
//! The last line printed is `CHECKSUM SECONDS`: CHECKSUM the comma-separated float64 numbers
//! `benches/peers.py` computes for the workload (run.py checks that every peer agrees),
//! SECONDS the workload's own wall time, from opening the file through the last byte of the
//! result and its checksum. Exit status 64 for a workload this tool does not implement, 2 for
//! bad arguments, 1 for a failure.

mod checksum;
mod inflate;
mod selections;
mod workloads;
mod zstd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The error type of the bench: any error, with its message.
pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Exit status of a workload this tool does not implement (run.py shows "—").
const UNSUPPORTED: u8 = 64;

/// The workloads through annpage, in the order of the report.
const WORKLOADS: [&str; 7] = [
    "full_pass",
    "random_batches",
    "loader",
    "subset",
    "gene_columns",
    "open_meta",
    "noop",
];

/// The limits this tool measures.
const LIMITS: [&str; 5] = [
    "inflate_libdeflate_1",
    "inflate_libdeflate_all",
    "zstd_all",
    "sums_in_memory",
    "qc_in_memory",
];

/// What a run gives.
enum Outcome {
    /// The checksum token and the seconds the workload took.
    Done(String, f64),
    /// A limit that does not apply to this file (printed `n/a nan`, as peers.py does).
    NotApplicable,
}

fn usage() -> String {
    format!(
        "usage: annpage-bench WORKLOAD FILE\n  workloads: {}\n  limits:    {}\n\
         Prints `CHECKSUM SECONDS` (see docs/benchmarks.md). Environment: ANNPAGE_CACHE_MB \
         (cache budget, default 1024), BENCH_SELECTIONS (default FILE.selections.json).",
        WORKLOADS.join(" "),
        LIMITS.join(" ")
    )
}

fn version() -> String {
    let (a, b, c) = hdf5::library_version();
    format!(
        "annpage-bench {} (annpage {}, HDF5 {a}.{b}.{c}, libdeflate through libdeflater)",
        env!("CARGO_PKG_VERSION"),
        env!("CARGO_PKG_VERSION"),
    )
}

/// Times `f` (which opens the file itself).
fn timed(f: impl FnOnce() -> BenchResult<String>) -> BenchResult<Outcome> {
    let t0 = Instant::now();
    let checksum = f()?;
    Ok(Outcome::Done(checksum, t0.elapsed().as_secs_f64()))
}

/// Runs a workload or limit; `None` when this tool does not implement it.
fn run(workload: &str, file: &Path) -> BenchResult<Option<Outcome>> {
    use workloads as w;
    if workload == "sums_in_memory" || workload == "qc_in_memory" {
        let sel = selections::load(file)?;
        let limit = match workload {
            "sums_in_memory" => w::sums_in_memory,
            _ => w::qc_in_memory,
        };
        return Ok(Some(match limit(file, &sel)? {
            Some((bytes, seconds)) => Outcome::Done(checksum::fmt(&[bytes]), seconds),
            None => Outcome::NotApplicable,
        }));
    }
    if workload == "zstd_all" {
        return Ok(Some(match zstd::zstd_all(file)? {
            Some((bytes, seconds)) => Outcome::Done(checksum::fmt(&[bytes as f64]), seconds),
            None => Outcome::NotApplicable,
        }));
    }
    if LIMITS.contains(&workload) {
        if file.is_dir() {
            return Ok(Some(Outcome::NotApplicable)); // A Zarr store: no deflate chunks.
        }
        let Some(chunks) = inflate::raw_chunks(file)? else {
            return Ok(Some(Outcome::NotApplicable));
        };
        let (bytes, seconds) = if workload == "inflate_libdeflate_1" {
            inflate::inflate_serial(&chunks)?
        } else {
            inflate::inflate_parallel(&chunks, inflate::all_cores())?
        };
        return Ok(Some(Outcome::Done(checksum::fmt(&[bytes as f64]), seconds)));
    }
    if workload == "noop" {
        return Ok(Some(Outcome::Done("0".into(), 0.0)));
    }
    let f: fn(&Path, &selections::Selections) -> BenchResult<String> = match workload {
        "full_pass" => w::full_pass,
        "random_batches" => w::random_batches,
        "loader" => w::loader,
        "subset" => w::subset,
        "gene_columns" => w::gene_columns,
        "open_meta" => w::open_meta,
        _ => return Ok(None),
    };
    // Not timed, as in peers.py.
    let sel = selections::load(file)?;
    w::cache_bytes()?;
    timed(|| f(file, &sel)).map(Some)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (workload, file) = match args.as_slice() {
        [flag] if flag == "--version" || flag == "-V" => {
            println!("{}", version());
            return ExitCode::SUCCESS;
        }
        [flag] if flag == "--help" || flag == "-h" => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        [workload, file] => (workload.as_str(), PathBuf::from(file)),
        _ => {
            eprintln!("{}", usage());
            return ExitCode::from(2);
        }
    };
    match run(workload, &file) {
        Ok(Some(Outcome::Done(checksum, seconds))) => {
            println!("{checksum} {seconds:?}");
            ExitCode::SUCCESS
        }
        Ok(Some(Outcome::NotApplicable)) => {
            println!("n/a nan");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!(
                "annpage-bench: workload {workload:?} is not implemented\n{}",
                usage()
            );
            ExitCode::from(UNSUPPORTED)
        }
        Err(e) => {
            eprintln!("annpage-bench {workload} {}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}
