//! `--index DIR`: local copies that make a served file fast to read, written once and reused
//! while newer than the file. A compressed file gets an uncompressed copy (`NAME.plain.h5ad`:
//! a random batch of cells then reads its rows instead of inflating a chunk per row), and an X
//! that is not CSC a gene-major copy (`NAME.genes.h5ad`: a gene's values only, where a CSR X
//! needs a pass over every cell). Until a copy is ready, reads go to the file.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use annpage::backed::{MatrixKind, ReadPath};
use annpage::data::SparseFormat;
use annpage::{read_h5ad_backed, BackedAnnData, BackedOptions, Mode, WriteOptions};

use crate::catalog::Dataset;
use crate::source::Source;
use crate::{ServeError, ServeOptions};

/// Which copy.
#[derive(Clone, Copy, PartialEq)]
enum Copy {
    /// Uncompressed (and, for a collection, concatenated): `NAME.plain.h5ad`.
    Plain,
    /// X as CSC: `NAME.genes.h5ad`.
    Genes,
}

/// Opens the copies `d` needs that are in `dir` and fresh; writes the others on a thread of
/// its own (the uncompressed copy first, so that the gene-major one is gathered from it).
pub(crate) fn open_or_write(
    d: &Arc<Dataset>,
    dir: &Path,
    options: &ServeOptions,
    backed: &BackedOptions,
) -> Result<(), ServeError> {
    if !d.handle.has_x() {
        return Ok(());
    }
    // A collection is read through one concatenated copy, and its X is CSR.
    let (plain, genes) = match &d.handle {
        Source::File(b) => (
            !stored_plain(b),
            b.x()
                .is_some_and(|x| x.kind() != MatrixKind::Sparse(SparseFormat::Csc)),
        ),
        Source::Collection(_) => (true, true),
    };
    let mut missing = vec![];
    for (wanted, copy) in [(plain, Copy::Plain), (genes, Copy::Genes)] {
        if !wanted {
            continue;
        }
        let path = dir.join(match copy {
            Copy::Plain => format!("{}.plain.h5ad", d.name),
            Copy::Genes => format!("{}.genes.h5ad", d.name),
        });
        match fresh(&path, d, backed) {
            Some(opened) => set(d, copy, opened),
            None => missing.push((path, copy)),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let (d, backed, log) = (d.clone(), backed.clone(), options.log_requests);
    // What one pass of the gene-major copy gathers: half the cache, at most 512 MiB.
    let memory = (options.cache_bytes / 2).clamp(1 << 20, 512 << 20);
    std::thread::Builder::new()
        .name(format!("index-{}", d.name))
        .spawn(move || {
            for (path, copy) in missing {
                let start = Instant::now();
                if log {
                    eprintln!("INFO writing {}", path.display());
                }
                let options = WriteOptions::default();
                // The gene-major copy is gathered from the uncompressed one when it is ready.
                let written = match (copy, d.reader()) {
                    (Copy::Plain, _) => d.handle.write_h5ad(&path, &options),
                    (Copy::Genes, Source::File(b)) => b.write_gene_major(&path, memory, &options),
                    (Copy::Genes, Source::Collection(_)) => {
                        eprintln!(
                            "WARN no copy {}: the concatenated copy is missing",
                            path.display()
                        );
                        continue;
                    }
                };
                match written.and_then(|()| read_h5ad_backed(&path, Mode::Read, backed.clone())) {
                    Ok(opened) => {
                        set(&d, copy, opened);
                        // The blocks the writing left in the shared cache are of the file, which
                        // the copy now answers for: let them go, and what the writing freed.
                        if let Some(cache) = &backed.cache {
                            cache.clear();
                        }
                        release_freed_memory();
                        if log {
                            let s = start.elapsed().as_secs_f64();
                            eprintln!("INFO {} is ready ({s:.1} s)", path.display());
                        }
                    }
                    // Reads keep going to the dataset.
                    Err(e) => eprintln!("WARN no copy {}: {e}", path.display()),
                }
            }
        })
        .map_err(ServeError::Io)?;
    Ok(())
}

fn set(d: &Dataset, copy: Copy, opened: BackedAnnData) {
    // Set once: a copy found ready at start is not written again.
    match copy {
        Copy::Plain => drop(d.plain.set(Source::File(opened))),
        Copy::Genes => drop(d.gene_major.set(opened)),
    }
}

/// The copy at `path` when it is newer than every file of `d` and opens with the same shape.
fn fresh(path: &Path, d: &Dataset, backed: &BackedOptions) -> Option<BackedAnnData> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let copied = modified(path)?;
    for file in &d.paths {
        if copied < modified(file)? {
            return None;
        }
    }
    let copy = read_h5ad_backed(path, Mode::Read, backed.clone()).ok()?;
    (copy.shape() == d.handle.shape()).then_some(copy)
}

/// Whether every matrix dataset of X is read without decoding (no filter).
fn stored_plain(handle: &BackedAnnData) -> bool {
    let Some(x) = handle.x() else { return true };
    x.read_paths().is_ok_and(|paths| {
        paths.iter().all(|(_, path)| match path {
            ReadPath::Memory => true,
            ReadPath::Direct { filters, .. } => filters == "none",
            _ => false,
        })
    })
}

/// Hands the memory a copy's writing freed back to the system: glibc keeps freed blocks in its
/// arenas, and after a gene-major copy that was 150 MB the server then held above its budget.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn release_freed_memory() {
    // SAFETY: malloc_trim takes an integer (the padding to keep), has no preconditions, and is
    // thread-safe: it locks each arena while it returns that arena's free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_freed_memory() {}

#[cfg(test)]
mod tests {
    #[test]
    fn freed_memory_is_released_while_other_threads_allocate() {
        let workers: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    (0..200)
                        .map(|k| vec![(i + k) as u8; 64 << 10].len())
                        .sum::<usize>()
                })
            })
            .collect();
        drop(vec![1u8; 64 << 20]);
        super::release_freed_memory();
        for w in workers {
            assert_eq!(w.join().unwrap(), 200 * (64 << 10));
        }
    }
}
