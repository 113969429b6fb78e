//! A temporary file (or, for directory stores such as Zarr, a temporary directory) beside a
//! target, renamed onto it once complete and removed otherwise.
//!
//! The file (every file of the directory) is synced before the rename and its directory after
//! it, so that a crash leaves either the old target or the complete new one. A directory
//! cannot be renamed over a directory: the old target is first renamed aside, then removed
//! once the new one is in place. A process killed while writing leaves its
//! temporary behind: the next [`Staged::beside`] for the same target removes the temporaries
//! of writers that are no longer running.
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

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Error, Result};

/// Distinguishes the temporary files of one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The targets whose temporaries [`remove_own_temporaries`] removed (the process is dying of
/// a signal): their commits are refused. Held by a commit while it renames, so that a signal
/// that comes meanwhile waits for a complete output instead of racing the renames.
static ABANDONED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn abandoned() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    // A panic while holding it left only a list of paths: still valid.
    ABANDONED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How many names to try before giving up.
const ATTEMPTS: u32 = 100;

/// How often the kernel is asked to start writing a staged file's new pages to disk.
const WRITE_BEHIND_EVERY: Duration = Duration::from_millis(25);

/// A file created beside its target under a unique hidden name. Dropping it without
/// [`Staged::commit`] removes the file.
///
/// While a staged file is written, a thread of its own asks the kernel every few
/// milliseconds to start writing its new pages to disk (Linux `sync_file_range`), so that
/// the sync before the rename finds little left to do: the work of writing the pages back
/// runs beside the writer's instead of after it.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    dir: bool,
    committed: bool,
    behind: Option<WriteBehind>,
}

impl Staged {
    /// Creates an empty, uniquely named file in the directory of `target`
    /// (`.<target name>.<pid>-<n>-<nanos>.annpage-tmp`), after removing the temporaries of the
    /// same target left by processes that are no longer running.
    pub fn beside(target: &Path) -> Result<Self> {
        Staged::create(target, false)
    }

    /// Like [`Staged::beside`], an empty directory (for stores that are directories).
    pub fn dir_beside(target: &Path) -> Result<Self> {
        Staged::create(target, true)
    }

    fn create(target: &Path, dir_store: bool) -> Result<Self> {
        let name = target.file_name().ok_or_else(|| {
            Error::invalid(format!("'{}' does not name a file", target.display()))
        })?;
        let dir = parent_dir(target);
        check_replaceable(target, dir_store)?;
        // The temporary's name adds ~30 bytes: a long target name is cut (file names hold
        // 255 bytes), which keeps it unique by its suffix.
        let name = temp_stem(name);
        let name = name.as_os_str();
        remove_stale(dir, name);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        for _ in 0..ATTEMPTS {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let mut file_name = std::ffi::OsString::from(".");
            file_name.push(name);
            file_name.push(format!(".{}-{n}-{nanos}.annpage-tmp", std::process::id()));
            let path = dir.join(file_name);
            let made = if dir_store {
                std::fs::create_dir(&path)
            } else {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map(drop)
            };
            match made {
                Ok(()) => {
                    let behind = (!dir_store).then(|| WriteBehind::start(&path)).flatten();
                    return Ok(Staged {
                        path,
                        dir: dir_store,
                        committed: false,
                        behind,
                    });
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

    /// Syncs the temporary file, renames it onto `target` (replacing it) and syncs the
    /// directory, so that the new target survives a crash.
    pub fn commit(mut self, target: &Path) -> Result<()> {
        drop(self.behind.take());
        if !self.dir {
            File::open(&self.path)?.sync_all()?;
            let renaming = abandoned();
            refuse_abandoned(&renaming, target)?;
            std::fs::rename(&self.path, target)?;
            self.committed = true;
            return sync_dir(target);
        }
        sync_tree(&self.path)?;
        let renaming = abandoned();
        refuse_abandoned(&renaming, target)?;
        // A directory is not renamed over another: move the old target aside first.
        // Named as a temporary of this process: removed by a later write if this one dies.
        let aside = sibling_temporary(&self.path, '1');
        let replaced = match std::fs::symlink_metadata(target) {
            Ok(meta) if meta.is_dir() => {
                std::fs::rename(target, &aside)?;
                true
            }
            Ok(_) => {
                std::fs::remove_file(target)?;
                false
            }
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) => return Err(e.into()),
        };
        std::fs::rename(&self.path, target)?;
        self.committed = true;
        sync_dir(target)?;
        drop(renaming);
        if replaced {
            // The output is in place: the old store's removal is best effort (what is left is
            // a temporary of this process).
            let _ = std::fs::remove_dir_all(&aside);
        }
        Ok(())
    }

    /// Commits staged files (not directory stores) together: each synced, then all renamed
    /// onto their targets under one hold of the lock a dying process's signal waits for, so
    /// that a signal leaves every new file in place or none.
    ///
    /// ```
    /// use annpage_engine::format::write::staging::Staged;
    /// let dir = tempfile::tempdir().unwrap();
    /// let (a, b) = (dir.path().join("a.tsv"), dir.path().join("b.tsv"));
    /// let (sa, sb) = (Staged::beside(&a)?, Staged::beside(&b)?);
    /// std::fs::write(sa.path(), b"1")?;
    /// std::fs::write(sb.path(), b"2")?;
    /// Staged::commit_all(vec![(sa, a.as_path()), (sb, b.as_path())])?;
    /// assert_eq!(std::fs::read(&b)?, b"2");
    /// # Ok::<(), annpage_engine::Error>(())
    /// ```
    pub fn commit_all(mut files: Vec<(Staged, &Path)>) -> Result<()> {
        for (staged, _) in &mut files {
            if staged.dir {
                return Err(Error::invalid("commit_all commits files, not directories"));
            }
            drop(staged.behind.take());
            File::open(&staged.path)?.sync_all()?;
        }
        let renaming = abandoned();
        for (_, target) in &files {
            refuse_abandoned(&renaming, target)?;
        }
        for (staged, target) in &mut files {
            std::fs::rename(&staged.path, target)?;
            staged.committed = true;
        }
        files.iter().try_for_each(|(_, target)| sync_dir(target))
    }
}

/// A name beside the temporary `path` that is still a temporary of this process
/// (`...-<nanos><digit>.annpage-tmp`), for a store moved aside.
fn sibling_temporary(path: &Path, digit: char) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    if let Some(stem) = name.to_str().and_then(|s| s.strip_suffix(".annpage-tmp")) {
        name = format!("{stem}{digit}.annpage-tmp").into();
    } else {
        name.push(format!(".{digit}"));
    }
    PathBuf::from(name)
}

/// Fails if `target`'s temporaries were removed for a signal (see [`ABANDONED`]).
fn refuse_abandoned(list: &[PathBuf], target: &Path) -> Result<()> {
    let same = |t: &PathBuf| {
        t == target
            || (t.file_name() == target.file_name()
                && parent_dir(t).canonicalize().ok() == parent_dir(target).canonicalize().ok())
    };
    if list.iter().any(same) {
        return Err(Error::Io(std::io::Error::new(
            ErrorKind::Interrupted,
            format!("the write of '{}' was interrupted", target.display()),
        )));
    }
    Ok(())
}

/// The thread that has the kernel write a staged file's pages back while it is written; it
/// stops when dropped.
#[derive(Debug)]
struct WriteBehind {
    stop: Option<crossbeam::channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WriteBehind {
    /// Starts the thread for the file at `path` (`None` where it cannot be opened or no
    /// thread can be started: the write does not depend on it).
    fn start(path: &Path) -> Option<WriteBehind> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let file = File::open(path).ok()?;
        let (stop, stopped) = crossbeam::channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("annpage-write-behind".into())
            .spawn(move || {
                while let Err(crossbeam::channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(WRITE_BEHIND_EVERY)
                {
                    start_writeback(&file);
                }
            })
            .ok()?;
        Some(WriteBehind {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        // The thread stops when its channel closes.
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Asks the kernel to start writing `file`'s dirty pages to disk, without waiting for them;
/// failures are ignored (the sync before the rename reports any).
#[cfg(target_os = "linux")]
fn start_writeback(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for as long as `file` is borrowed; offset 0 with
    // length 0 names the whole file; SYNC_FILE_RANGE_WRITE only starts write-out of pages
    // already dirty, reads and writes no memory of this process, and returns an error code
    // for any bad argument.
    let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File) {}

/// Syncs the directory holding `path`, making a rename in it durable. Filesystems that
/// cannot sync a directory (`EINVAL`) are not an error.
fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match File::open(dir)?.sync_all() {
        Err(e) if e.kind() == ErrorKind::InvalidInput => Ok(()),
        r => Ok(r?),
    }
}

/// Syncs every file and directory below `dir`, and `dir` itself.
fn sync_tree(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        } else {
            File::open(entry.path())?.sync_all()?;
        }
    }
    match File::open(dir)?.sync_all() {
        Err(e) if e.kind() == ErrorKind::InvalidInput => Ok(()),
        r => Ok(r?),
    }
}

/// The process id in a temporary's name `.<target name>.<pid>-<n>-<nanos>.annpage-tmp`, if
/// `file` is a temporary of the target named `name`.
fn temp_pid(file: &OsStr, name: &OsStr) -> Option<u32> {
    let file = file.to_str()?;
    let rest = file.strip_prefix('.')?.strip_prefix(name.to_str()?)?;
    let id = rest.strip_prefix('.')?.strip_suffix(".annpage-tmp")?;
    let parts: Vec<&str> = id.split('-').collect();
    let all_digits = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if parts.len() != 3 || !parts.iter().all(all_digits) {
        return None;
    }
    parts[0].parse().ok()
}

/// Whether process `pid` may be running (when in doubt, it is).
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        if pid <= 0 {
            return true;
        }
        // SAFETY: signal 0 sends nothing; kill only checks that the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    true
}

/// Removes the temporaries of the target `name` in `dir` whose writer is no longer running
/// (killed before it could clean up): its pid is gone, or now names a process started after
/// the temporary was last written. A live writer's temporary is never touched; failures are
/// ignored (the write itself does not depend on them).
/// Refuses a target the commit must not replace: a directory where a file goes, and, where a
/// directory store goes, anything but nothing, an empty directory or a store of the same kind
/// (a Zarr store: the rename removes what the directory held).
fn check_replaceable(target: &Path, dir_store: bool) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::Io(std::io::Error::new(
            ErrorKind::AlreadyExists,
            format!("'{}' {why}: refusing to replace it", target.display()),
        )))
    };
    let Ok(meta) = std::fs::metadata(target) else {
        return Ok(());
    };
    match (dir_store, meta.is_dir()) {
        (false, true) => refuse("is a directory"),
        (true, false) => refuse("exists and is not a directory"),
        (true, true) => {
            let is_store = ["zarr.json", ".zgroup", ".zarray", ".zattrs"]
                .iter()
                .any(|m| target.join(m).is_file());
            let empty = std::fs::read_dir(target)?.next().is_none();
            if is_store || empty {
                Ok(())
            } else {
                refuse("is a directory that is not a Zarr store")
            }
        }
        (false, false) => Ok(()),
    }
}

/// The part of a target's name its temporaries start with: the name itself, or its first
/// 150 bytes (at a character boundary).
fn temp_stem(name: &OsStr) -> std::ffi::OsString {
    const MAX: usize = 150;
    if name.len() <= MAX {
        return name.to_owned();
    }
    let text = name.to_string_lossy();
    let cut = (0..=MAX)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text[..cut].into()
}

/// The directory a target is written in (`.` for a bare name).
fn parent_dir(target: &Path) -> &Path {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Removes the temporaries this process is writing for `target` (files, or directory stores;
/// for a directory of files, those of its files too), for a process about to die of a signal:
/// a [`Staged`] removes its own when dropped, which a process killed by a signal never does.
/// Failures are ignored; what is left is removed by the next write of the same target once
/// this process is gone.
///
/// ```
/// use annpage_engine::format::write::staging::{remove_own_temporaries, Staged};
/// let dir = tempfile::tempdir()?;
/// let target = dir.path().join("out.h5ad");
/// let staged = Staged::beside(&target)?;
/// remove_own_temporaries(&target);
/// assert!(!staged.path().exists());
/// # Ok::<(), annpage_engine::Error>(())
/// ```
pub fn remove_own_temporaries(target: &Path) {
    // Waits for a commit renaming now; none of `target` starts afterwards.
    let mut list = abandoned();
    list.push(target.to_path_buf());
    let Some(name) = target.file_name() else {
        return;
    };
    remove_own_in(parent_dir(target), Some(&temp_stem(name)));
    // A directory of files (`write_csvs`): the temporaries of its files, and of `uns`'s.
    if target.is_dir() {
        remove_own_in(target, None);
        remove_own_in(&target.join("uns"), None);
    }
}

/// Removes this process's temporaries in `dir`: those of the target whose name starts with
/// `stem`, or (`None`) of any target.
fn remove_own_in(dir: &Path, stem: Option<&OsStr>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let pid = match stem {
            Some(stem) => temp_pid(&file, stem),
            None => file.to_str().and_then(|f| {
                // `.<stem>.<pid>-<n>-<nanos>.annpage-tmp`
                let stem = f
                    .strip_prefix('.')?
                    .strip_suffix(".annpage-tmp")?
                    .rsplit_once('.')?;
                temp_pid(&file, OsStr::new(stem.0))
            }),
        };
        if pid != Some(std::process::id()) {
            continue;
        }
        if let Ok(meta) = entry.metadata() {
            if meta.is_dir() {
                remove_store_being_written(&entry.path());
            } else {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Removes a directory store whose writer threads may still be adding chunks to it (they
/// create each chunk's directories by path, from the store's root). The store is moved
/// aside and an empty file put where it was, so that their directory creations fail instead
/// of starting a new store; then the store is removed, then the file.
fn remove_store_being_written(store: &Path) {
    // Still a temporary's name: a later write removes it if this process dies before it is gone.
    let aside = sibling_temporary(store, '0');
    for _ in 0..3 {
        if std::fs::rename(store, &aside).is_err() {
            let _ = std::fs::remove_dir_all(store);
            continue;
        }
        let blocked = File::options()
            .write(true)
            .create_new(true)
            .open(store)
            .is_ok();
        for _ in 0..3 {
            if std::fs::remove_dir_all(&aside).is_ok() {
                break;
            }
        }
        if blocked {
            let _ = std::fs::remove_file(store);
            return;
        }
        // A writer recreated the store between the rename and the file: again.
    }
}

fn remove_stale(dir: &Path, name: &OsStr) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = temp_pid(&entry.file_name(), name) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if ((meta.is_file() || meta.is_dir()) && !alive(pid)) || started_after(pid, &meta) {
            let _ = remove(&entry.path(), meta.is_dir());
        }
    }
}

/// Whether the process `pid` now running started after the temporary was last written: then
/// it reuses the pid of the writer, which is gone. `false` when unknown.
fn started_after(pid: u32, meta: &std::fs::Metadata) -> bool {
    if pid == std::process::id() || !(meta.is_file() || meta.is_dir()) {
        return false;
    }
    match (process_start(pid), meta.modified()) {
        // Ten minutes of slack: the start time is derived from the boot time, which moves
        // when the clock is stepped; a live writer's temporary must never look older.
        (Some(start), Ok(written)) => start > written + std::time::Duration::from_secs(600),
        _ => false,
    }
}

/// When process `pid` started (Linux: `/proc/<pid>/stat` and the boot time of `/proc/stat`).
#[cfg(target_os = "linux")]
fn process_start(pid: u32) -> Option<SystemTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), from field 3 (state) on;
    // field 22 is the start time in clock ticks after boot.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let boot: u64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf only reads a system constant.
    let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    let since_boot = std::time::Duration::from_millis(ticks.checked_mul(1000)? / per_second.max(1));
    UNIX_EPOCH
        .checked_add(std::time::Duration::from_secs(boot))?
        .checked_add(since_boot)
}

#[cfg(not(target_os = "linux"))]
fn process_start(_pid: u32) -> Option<SystemTime> {
    None
}

/// Removes a temporary file or directory.
fn remove(path: &Path, dir: bool) -> std::io::Result<()> {
    if dir {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        drop(self.behind.take());
        if !self.committed {
            // Nothing better to do if it cannot be removed: the error being reported matters more.
            let _ = remove(&self.path, self.dir);
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
    fn a_store_is_removed_while_writer_threads_still_add_chunks_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.zarr");
        let staged = Staged::dir_beside(&target).unwrap();
        let root = staged.path().to_owned();
        // Enough chunks already written that their removal takes a while.
        for k in 0..2000 {
            let chunk = root.join(format!("X/indices/c/{}", k % 40));
            std::fs::create_dir_all(&chunk).unwrap();
            std::fs::write(chunk.join(k.to_string()), [0u8; 64]).unwrap();
        }
        // Writers as a store's: each chunk's directories, then the chunk, until an error
        // ends the write.
        let writers: Vec<_> = (0..2)
            .map(|t| {
                let root = root.clone();
                std::thread::spawn(move || {
                    for k in 0.. {
                        let chunk = root.join(format!("X/data/c/{t}/{}", k % 50));
                        if std::fs::create_dir_all(&chunk).is_err()
                            || std::fs::write(chunk.join("0"), [0u8; 64]).is_err()
                        {
                            return;
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        remove_own_temporaries(&target);
        for w in writers {
            w.join().unwrap();
        }
        std::mem::forget(staged);
        assert_eq!(files_in(dir.path()), Vec::<String>::new());
        // A write of the same target that reaches its commit now (the signal came first) is
        // refused, whatever the path's spelling.
        let late = Staged::dir_beside(&target).unwrap();
        let spelled = dir.path().join(".").join("out.zarr");
        let e = late.commit(&spelled).unwrap_err();
        assert!(e.to_string().contains("interrupted"), "{e}");
        assert!(!target.exists());
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
    fn a_file_written_back_while_it_is_written_holds_every_byte() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.h5ad");
        let staged = Staged::beside(&target).unwrap();
        assert_eq!(staged.behind.is_some(), cfg!(target_os = "linux"));
        let mut file = OpenOptions::new().write(true).open(staged.path()).unwrap();
        let mut want = Vec::new();
        for piece in 0..40u32 {
            let bytes: Vec<u8> = (0..64 << 10).map(|i| (i as u32 ^ piece) as u8).collect();
            file.write_all(&bytes).unwrap();
            want.extend_from_slice(&bytes);
            // Long enough for the write-behind thread to have started write-out several times.
            if piece % 8 == 0 {
                std::thread::sleep(2 * WRITE_BEHIND_EVERY);
            }
        }
        drop(file);
        staged.commit(&target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), want);
    }

    /// The pid of a process that has exited.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!alive(pid));
        pid
    }

    #[test]
    fn temporaries_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.h5ad");
        let dead = dead_pid();
        let me = std::process::id();
        let leftovers = [
            format!(".out.h5ad.{dead}-0-123.annpage-tmp"), // removed
            format!(".out.h5ad.{dead}-7-9.annpage-tmp"),   // removed
            format!(".out.h5ad.{me}-0-123.annpage-tmp"),   // a live writer: kept
            format!(".other.h5ad.{dead}-0-1.annpage-tmp"), // another target: kept
            format!(".out.h5ad.x.{dead}-0-1.annpage-tmp"), // not ours: kept
            format!(".out.h5ad.{dead}-0.annpage-tmp"),     // not ours: kept
            format!("out.h5ad.{dead}-0-1.annpage-tmp"),    // not ours: kept
        ];
        for name in &leftovers {
            std::fs::write(dir.path().join(name), b"partial").unwrap();
        }
        let staged = Staged::beside(&target).unwrap();
        std::fs::write(staged.path(), b"new").unwrap();
        let mut kept: Vec<String> = leftovers[2..].to_vec();
        kept.push(
            staged
                .path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
        kept.sort();
        assert_eq!(files_in(dir.path()), kept);
        staged.commit(&target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(files_in(dir.path()).len(), leftovers.len() - 2 + 1);
        assert!(alive(me));
        assert_eq!(
            temp_pid(OsStr::new(&leftovers[0]), OsStr::new("out.h5ad")),
            Some(dead)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_reused_pid_does_not_keep_an_older_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.h5ad");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let old = dir.path().join(format!(".out.h5ad.{pid}-0-1.annpage-tmp"));
        let new = dir.path().join(format!(".out.h5ad.{pid}-1-1.annpage-tmp"));
        std::fs::write(&old, b"partial").unwrap();
        std::fs::write(&new, b"partial").unwrap();
        // Written an hour before the process started: another writer's, which is gone.
        let hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        let start = process_start(pid).unwrap();
        let now = SystemTime::now();
        assert!(start <= now + std::time::Duration::from_secs(1) && start > hour_ago);
        drop(Staged::beside(&target).unwrap());
        let left = files_in(dir.path());
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(left, [new.file_name().unwrap().to_string_lossy()]);
    }

    #[test]
    fn a_failed_rename_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory cannot be replaced by a file.
        let target = dir.path().join("sub");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), b"x").unwrap();
        let s = Staged::beside(&dir.path().join("file")).unwrap();
        assert!(s.commit(&target).is_err());
        assert_eq!(files_in(dir.path()), ["sub"]);
        assert!(Staged::beside(Path::new("/")).is_err());
    }

    #[test]
    fn only_what_a_write_may_replace_is_staged_for() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::create_dir_all(plain.join("sub")).unwrap();
        std::fs::write(plain.join("in.h5ad"), b"input").unwrap();
        let file = dir.path().join("file.zarr");
        std::fs::write(&file, b"x").unwrap();
        for (target, dir_store, why) in [
            (&plain, false, "is a directory"),
            (&plain, true, "not a Zarr store"),
            (&file, true, "not a directory"),
        ] {
            let err = Staged::create(target, dir_store).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        assert!(plain.join("in.h5ad").is_file() && file.is_file());
        // An empty directory and a store are replaced.
        let empty = dir.path().join("empty.zarr");
        std::fs::create_dir(&empty).unwrap();
        drop(Staged::dir_beside(&empty).unwrap());
        std::fs::write(plain.join("sub/zarr.json"), b"{}").unwrap();
        drop(Staged::dir_beside(&plain.join("sub")).unwrap());
        // A name as long as a file name may be still stages (its temporary's name is cut).
        let long = dir.path().join("x".repeat(250));
        let staged = Staged::beside(&long).unwrap();
        std::fs::write(staged.path(), b"long").unwrap();
        staged.commit(&long).unwrap();
        assert_eq!(std::fs::read(&long).unwrap(), b"long");
    }

    #[test]
    fn directories_commit_over_an_old_target_or_clean_up() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.zarr");
        std::fs::create_dir_all(target.join("old")).unwrap();
        std::fs::write(target.join("zarr.json"), b"{}").unwrap();
        let staged = Staged::dir_beside(&target).unwrap();
        std::fs::create_dir(staged.path().join("X")).unwrap();
        std::fs::write(staged.path().join("X/zarr.json"), b"{}").unwrap();
        std::fs::write(staged.path().join("zarr.json"), b"{}").unwrap();
        staged.commit(&target).unwrap();
        assert_eq!(files_in(dir.path()), ["out.zarr"]);
        assert!(target.join("X/zarr.json").is_file() && !target.join("old").exists());
        let dropped = Staged::dir_beside(&target).unwrap();
        std::fs::write(dropped.path().join("partial"), b"x").unwrap();
        drop(dropped);
        assert_eq!(files_in(dir.path()), ["out.zarr"]);
    }
}
