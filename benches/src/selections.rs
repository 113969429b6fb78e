//! The random cells and genes of the workloads: `FILE.selections.json`, written by
//! `benches/peers.py selections FILE` (numpy PCG64, fixed seeds), so every peer uses the very
//! same ones.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::BenchResult;

/// The selections of one file.
#[derive(Clone, Debug)]
pub struct Selections {
    /// Rows per chunk of the full pass.
    pub row_chunk: usize,
    /// The random batches of cells (distinct within a batch, unsorted).
    pub batches: Vec<Vec<usize>>,
    /// The cells of the subset (sorted).
    pub subset_cells: Vec<usize>,
    /// The genes of the subset (unsorted: the user's order).
    pub subset_genes: Vec<usize>,
    /// The genes whose full columns are read (unsorted).
    pub columns: Vec<usize>,
}

/// Where the selections of `file` are: `$BENCH_SELECTIONS` when set (run.py sets it), else
/// `FILE.selections.json`.
pub fn path_for(file: &Path) -> PathBuf {
    match std::env::var_os("BENCH_SELECTIONS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let mut p = file.as_os_str().to_owned();
            p.push(".selections.json");
            PathBuf::from(p)
        }
    }
}

fn positions(v: &Value, key: &str) -> BenchResult<Vec<usize>> {
    v.as_array()
        .ok_or_else(|| format!("selections: {key} is not a list"))?
        .iter()
        .map(|x| {
            x.as_u64()
                .and_then(|x| usize::try_from(x).ok())
                .ok_or_else(|| format!("selections: {key} holds {x}, not a position").into())
        })
        .collect()
}

fn field<'a>(root: &'a Value, key: &str) -> BenchResult<&'a Value> {
    root.get(key)
        .ok_or_else(|| format!("selections: no key {key:?}").into())
}

/// Reads the selections of `file` (see [`path_for`]).
pub fn load(file: &Path) -> BenchResult<Selections> {
    let path = path_for(file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (write it with `python benches/peers.py selections {}`)",
            path.display(),
            file.display()
        )
    })?;
    let root: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let row_chunk = field(&root, "row_chunk")?
        .as_u64()
        .and_then(|x| usize::try_from(x).ok())
        .filter(|&x| x > 0)
        .ok_or("selections: row_chunk is not a positive integer")?;
    let batches = field(&root, "batches")?
        .as_array()
        .ok_or("selections: batches is not a list")?
        .iter()
        .map(|b| positions(b, "batches"))
        .collect::<BenchResult<_>>()?;
    Ok(Selections {
        row_chunk,
        batches,
        subset_cells: positions(field(&root, "subset_cells")?, "subset_cells")?,
        subset_genes: positions(field(&root, "subset_genes")?, "subset_genes")?,
        columns: positions(field(&root, "columns")?, "columns")?,
    })
}
