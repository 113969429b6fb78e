//! A temporary file beside a target, renamed onto it once complete and removed otherwise.
//!
//! ```
//! use annpage_engine::format::write::staging::Staged;
//! let dir = tempfile::tempdir().unwrap();
//! let target = dir.path().join("out.h5ad");
//! let staged = Staged::beside(&target).unwrap();
//! std::fs::write(staged.path(), b"complete").unwrap();
//! staged.commit(&target).unwrap();
//! assert_eq!(std::fs::read(&target).unwrap(), b"complete");
//! ```

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Error, Result};

/// Distinguishes the temporary files of one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// How many names to try before giving up.
const ATTEMPTS: u32 = 100;

/// A file created beside its target under a unique hidden name. Dropping it without
/// [`Staged::commit`] removes the file.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    committed: bool,
}

impl Staged {
    /// Creates an empty, uniquely named file in the directory of `target`
    /// (`.<target name>.<pid>-<n>.annpage-tmp`).
    pub fn beside(target: &Path) -> Result<Self> {
        let name = target.file_name().ok_or_else(|| {
            Error::invalid(format!("'{}' does not name a file", target.display()))
        })?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for _ in 0..ATTEMPTS {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let mut file_name = std::ffi::OsString::from(".");
            file_name.push(name);
            file_name.push(format!(".{}-{n}-{nanos}.annpage-tmp", std::process::id()));
            let path = dir.join(file_name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => {
                    return Ok(Staged {
                        path,
                        committed: false,
                    })
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Io(std::io::Error::new(
            ErrorKind::AlreadyExists,
            format!("no free temporary file name in '{}'", dir.display()),
        )))
    }

    /// The temporary file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the temporary file onto `target` (replacing it).
    pub fn commit(mut self, target: &Path) -> Result<()> {
        std::fs::rename(&self.path, target)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            // Nothing better to do if it cannot be removed: the error being reported matters more.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn commits_or_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.h5ad");
        let a = Staged::beside(&target).unwrap();
        let b = Staged::beside(&target).unwrap();
        assert_ne!(a.path(), b.path());
        assert_eq!(a.path().parent(), Some(dir.path()));
        assert!(a
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".out.h5ad."));
        std::fs::write(a.path(), b"new").unwrap();
        drop(b);
        assert_eq!(files_in(dir.path()).len(), 1);
        std::fs::write(&target, b"old").unwrap();
        a.commit(&target).unwrap();
        assert_eq!(files_in(dir.path()), ["out.h5ad"]);
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }

    #[test]
    fn a_failed_rename_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory cannot be replaced by a file.
        let target = dir.path().join("sub");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), b"x").unwrap();
        let s = Staged::beside(&target).unwrap();
        assert!(s.commit(&target).is_err());
        assert_eq!(files_in(dir.path()), ["sub"]);
        assert!(Staged::beside(Path::new("/")).is_err());
    }
}
