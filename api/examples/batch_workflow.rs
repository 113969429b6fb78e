//! Combining batches, as `anndata.concat(..., join="outer", label="batch", keys=...,
//! index_unique="-")` does, out of core: X and layers are streamed in row chunks through one
//! cache of 256 MiB shared by all inputs, so memory does not grow with the matrices.
//!
//! ```sh
//! cargo run --release -p annpage --example batch_workflow -- out.h5ad a.h5ad b.h5ad c.h5ad
//! ```
//!
//! Each input's file stem becomes its key: cells are named `BARCODE-STEM` and
//! `obs["batch"]` is a categorical of the stems, in the order given.

use std::path::Path;
use std::process::ExitCode;

use annpage::{concat_on_disk, BackedOptions, Compression, ConcatOptions, Join, WriteOptions};

fn run(out: &str, inputs: &[String]) -> annpage::Result<()> {
    let keys = inputs
        .iter()
        .map(|p| {
            let stem = Path::new(p).file_stem().unwrap_or_default();
            stem.to_string_lossy().into_owned()
        })
        .collect();
    let options = ConcatOptions {
        join: Join::Outer,
        label: Some("batch".into()),
        keys: Some(keys),
        index_unique: Some("-".into()),
        ..Default::default()
    };
    let write = WriteOptions {
        compression: Compression::Gzip(4),
        ..Default::default()
    };
    let cache = BackedOptions {
        cache_bytes: 256 << 20,
        ..Default::default()
    };
    concat_on_disk(inputs, out, &options, &write, &cache)?;
    println!("{} batches written to {out}", inputs.len());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((out, inputs)) = args.split_first().filter(|(_, rest)| !rest.is_empty()) else {
        eprintln!("usage: batch_workflow OUT.h5ad IN.h5ad...");
        return ExitCode::from(2);
    };
    match run(out, inputs) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
