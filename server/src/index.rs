//! `--index DIR`: local copies that make a served file fast to read, written once and reused
//! while made from the same file. A compressed file gets an uncompressed copy (`NAME.plain.h5ad`:
//! a random batch of cells then reads its rows instead of inflating a chunk per row), and an X
//! that is not CSC a gene-major copy (`NAME.genes.h5ad`: a gene's values only, where a CSR X
//! needs a pass over every cell). Until a copy is ready, reads go to the file.
//!
//! Beside each copy, `COPY.source` records what it was made from: each file's canonical path,
//! length and modification time (a directory store's also for every file under it, folded into
//! a digest), and a collection's concatenation options. A copy is reused only when that record
//! matches the files served now, so a file replaced by another of the same name and shape (even one with an
//! older modification time, as `cp -p` or `rsync -t` leave) is copied again, never answered for
//! by the copy of the file before.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use annpage::backed::{MatrixKind, ReadPath};
use annpage::data::SparseFormat;
use annpage::{read_h5ad_backed, BackedAnnData, BackedOptions, Mode, ResultExt, WriteOptions};

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
    // What the copies are made from, taken before they are: a file changed while it is
    // copied then leaves a record that no longer matches, and is copied again next time.
    let made_from = provenance(d);
    let mut missing = vec![];
    for (wanted, copy) in [(plain, Copy::Plain), (genes, Copy::Genes)] {
        if !wanted {
            continue;
        }
        let path = dir.join(match copy {
            Copy::Plain => format!("{}.plain.h5ad", d.name),
            Copy::Genes => format!("{}.genes.h5ad", d.name),
        });
        match fresh(&path, made_from.as_deref(), d, backed) {
            Some(opened) => set(d, copy, opened),
            None => missing.push((path, copy)),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    if made_from.is_none() {
        eprintln!(
            "WARN {}: not every file of it could be looked at; its copies are written again at \
             every start",
            d.name
        );
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
                // The record of a copy made before goes first: it must never stand beside
                // another copy.
                match std::fs::remove_file(source_record(&path)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        eprintln!("WARN no copy {}: {e}", path.display());
                        continue;
                    }
                    _ => {}
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
                let opened = written
                    .and_then(|()| read_h5ad_backed(&path, Mode::Read, backed.clone()))
                    .and_then(|opened| {
                        if let Some(record) = &made_from {
                            write_record(&path, record).in_file(source_record(&path))?;
                        }
                        Ok(opened)
                    });
                match opened {
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

/// The copy at `path` when its record says it was made from the files of `d` as they are now,
/// and it opens with the same shape.
fn fresh(
    path: &Path,
    now: Option<&str>,
    d: &Dataset,
    backed: &BackedOptions,
) -> Option<BackedAnnData> {
    let record = std::fs::read_to_string(source_record(path)).ok()?;
    if Some(record.as_str()) != now {
        return None;
    }
    let copy = read_h5ad_backed(path, Mode::Read, backed.clone()).ok()?;
    (copy.shape() == d.handle.shape()).then_some(copy)
}

/// Where the record of what the copy at `path` was made from is kept: `COPY.source`.
fn source_record(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".source");
    PathBuf::from(name)
}

/// What `d` is now, one line per file: canonical path, length and modification time in
/// nanoseconds, and for a directory store the same of every file under it (folded into a
/// digest: a store rewritten in place changes its files, not its root); for a collection,
/// then how it concatenates them. `None` when a file cannot be looked at.
fn provenance(d: &Dataset) -> Option<String> {
    let mut record = String::new();
    if let Source::Collection(_) = d.handle {
        record.push_str(&format!("collection\t{:?}\n", d.concat));
    }
    for file in &d.paths {
        let path = std::fs::canonicalize(file).ok()?;
        let meta = std::fs::metadata(&path).ok()?;
        let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        record.push_str(&format!(
            "{}\t{}\t{}",
            path.display(),
            meta.len(),
            modified.as_nanos()
        ));
        if meta.is_dir() {
            let mut tree = Tree::default();
            tree.walk(&path, Path::new(""), 0)?;
            record.push_str(&format!("\t{}\t{:016x}", tree.files, tree.digest));
        }
        record.push('\n');
    }
    Some(record)
}

/// The files under a directory store, folded in a stable order (entries sorted by name).
struct Tree {
    /// Entries read so far, directories included.
    entries: u64,
    files: u64,
    /// FNV-1a over each file's path under the root, length and modification time.
    digest: u64,
    /// The directories walked (device, inode): links are followed as the store's reader
    /// follows them, and a directory seen twice stops the walk.
    visited: std::collections::HashSet<(u64, u64)>,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            entries: 0,
            files: 0,
            digest: 0xcbf2_9ce4_8422_2325,
            visited: Default::default(),
        }
    }
}

impl Tree {
    /// Deeper trees, or more entries, than any store holds are not looked at (no copy is then
    /// reused): walking them could take without end.
    const MAX_DEPTH: usize = 64;
    const MAX_ENTRIES: u64 = 10_000_000;

    fn walk(&mut self, dir: &Path, under: &Path, depth: usize) -> Option<()> {
        use std::os::unix::fs::MetadataExt;
        if depth > Self::MAX_DEPTH {
            return None;
        }
        let meta = std::fs::metadata(dir).ok()?;
        if !self.visited.insert((meta.dev(), meta.ino())) {
            return None; // A loop of links, or a directory linked twice.
        }
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir).ok()? {
            self.entries += 1;
            if self.entries > Self::MAX_ENTRIES {
                return None;
            }
            entries.push(entry.ok()?);
        }
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = under.join(entry.file_name());
            // What a link leads to, as the store's reader reads it.
            let meta = std::fs::metadata(entry.path()).ok()?;
            if meta.is_dir() {
                self.walk(&entry.path(), &name, depth + 1)?;
                continue;
            }
            self.files += 1;
            let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
            self.fold(name.as_os_str().as_encoded_bytes());
            self.fold(&[0]);
            self.fold(&meta.len().to_le_bytes());
            self.fold(&modified.as_nanos().to_le_bytes());
        }
        Some(())
    }

    fn fold(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.digest = (self.digest ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Writes `record` as the copy's record, beside it first and renamed into place once synced.
fn write_record(copy: &Path, record: &str) -> std::io::Result<()> {
    let target = source_record(copy);
    let mut staged = target.as_os_str().to_owned();
    staged.push(format!(".{}.tmp", std::process::id()));
    let staged = PathBuf::from(staged);
    let mut file = std::fs::File::create(&staged)?;
    file.write_all(record.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&staged, &target)?;
    if let Some(dir) = target.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
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
