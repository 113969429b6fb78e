//! Helpers for unit tests: small files written by the real h5py, anndata and zarr, and
//! values built in one line.
//!
//! A test describes its input file by the Python script that writes it ([`py_file`]). The
//! file itself is committed under `fixtures/engine/HASH/` (HASH names the script; `test.txt`
//! beside the file names the test that first wrote it), so the engine's unit tests run
//! without Python; `./dev fixtures` writes the missing ones with the project's venv
//! (`ANNPAGE_WRITE_FIXTURES=1`). Tests that check what the
//! engine writes with anndata need Python at run time: they are `#[ignore]`d with a reason
//! and `./dev test` runs them (`--run-ignored only`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::data::{ArrayData, SparseFormat, SparseMatrix};

/// The project's Python (with h5py, numpy, anndata), created by `./dev setup`.
///
/// `ANNPAGE_TEST_PYTHON=none` (set by `./dev test` for the tests that must run without
/// Python) makes any use of it fail the test.
pub(crate) fn python() -> PathBuf {
    assert!(
        std::env::var_os("ANNPAGE_TEST_PYTHON").is_none_or(|v| v != "none"),
        "this test runs Python: it must read a committed fixture (`py_file`) or be \
         #[ignore]d as one that checks the engine's output with anndata"
    );
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `./dev setup` (or `./dev test`) to create the Python environment \
         these tests check their output with",
        python.display()
    );
    python
}

/// Runs a Python script that writes the file at `path` (bound in the script, along with
/// `h5py`, `np` and `warnings`, which are silenced), panicking with its stderr if it fails.
pub(crate) fn run_python(script: &str, path: &Path) {
    let out = Command::new(python())
        .arg("-c")
        .arg(full_script(script))
        .arg(path)
        .output()
        .expect("cannot start the venv's python");
    assert!(
        out.status.success(),
        "python failed:\n{}\n--- script ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        full_script(script)
    );
}

fn full_script(script: &str) -> String {
    format!(
        "import sys, warnings, h5py, numpy as np\nwarnings.simplefilter('ignore')\n\
         path = sys.argv[1]\n{script}"
    )
}

/// A temporary directory holding a copy of `name` as `script` writes it (see
/// [`run_python`]), from the committed fixture of that script.
pub(crate) fn py_file(name: &str, script: &str) -> (tempfile::TempDir, PathBuf) {
    let key = fnv1a(&[name.as_bytes(), b"\0", full_script(script).as_bytes()]);
    let fixture = fixture(key, name, |path| run_python(script, path));
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    copy_all(&fixture, &path);
    (dir, path)
}

/// A copy of the file `base` (a [`py_file`]) edited by `script` (run with `path` bound to
/// the copy), from the committed fixture of that edit, written beside `base`.
pub(crate) fn py_edit(base: &Path, script: &str) -> PathBuf {
    let bytes = std::fs::read(base).expect("reading the file to edit");
    let name = base.file_name().expect("a file name").to_string_lossy();
    let key = fnv1a(&[&bytes, b"\0", full_script(script).as_bytes()]);
    let fixture = fixture(key, &name, |path| {
        std::fs::copy(base, path).expect("copying the file to edit");
        run_python(script, path);
    });
    let path = base.with_file_name(format!("{key:016x}-{name}"));
    copy_all(&fixture, &path);
    path
}

/// The committed fixture `fixtures/engine/KEY/NAME`, written first by `write` when
/// `ANNPAGE_WRITE_FIXTURES=1`.
fn fixture(key: u64, name: &str, write: impl FnOnce(&Path)) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/engine")
        .join(format!("{key:016x}"));
    let path = dir.join(name);
    if std::env::var_os("ANNPAGE_WRITE_FIXTURES").is_some_and(|v| v == "1") && !path.exists() {
        // Written beside and renamed, so tests sharing a script never see half a file.
        let parent = dir.parent().expect("fixtures/engine");
        std::fs::create_dir_all(parent).expect("creating fixtures/engine");
        let staging = tempfile::tempdir_in(parent).expect("staging directory");
        write(&staging.path().join(name));
        let test = std::thread::current().name().unwrap_or("?").to_string();
        std::fs::write(staging.path().join("test.txt"), test + "\n").unwrap();
        // Another test may have written the same fixture meanwhile: either copy will do.
        let staged = staging.keep();
        if std::fs::rename(&staged, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&staged);
        }
    }
    assert!(
        path.exists(),
        "no committed fixture {} for this test's Python script: run `./dev fixtures` (writes \
         fixtures/engine/ with h5py/anndata) and commit it",
        path.display()
    );
    path
}

/// Copies a file, a symbolic link (as a link), or a directory (a Zarr store) with everything
/// in it.
fn copy_all(from: &Path, to: &Path) {
    let kind = std::fs::symlink_metadata(from).unwrap().file_type();
    if kind.is_symlink() {
        #[cfg(unix)]
        std::os::unix::fs::symlink(std::fs::read_link(from).unwrap(), to).unwrap();
        #[cfg(not(unix))]
        panic!("{}: symbolic links are copied on Unix only", from.display());
    } else if kind.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_all(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

/// FNV-1a over `parts`: a hash that stays the same across Rust releases, naming fixtures.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in parts.iter().flat_map(|p| p.iter()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Owned strings from string slices.
pub(crate) fn strings(v: &[&str]) -> Vec<crate::data::CompactString> {
    v.iter().map(|&s| s.into()).collect()
}

/// A sparse matrix from its parts (which must be valid).
pub(crate) fn sparse(
    format: SparseFormat,
    shape: (usize, usize),
    indptr: &[u64],
    indices: &[u32],
    data: ArrayData,
) -> SparseMatrix {
    SparseMatrix::new(format, shape, indptr.to_vec(), indices.to_vec(), data).unwrap()
}
