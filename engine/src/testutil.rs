//! Helpers for unit tests: small HDF5 files written by the real h5py and anndata, and values
//! built in one line.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::data::{ArrayData, SparseFormat, SparseMatrix};

/// The project's Python (with h5py, numpy, anndata), created by `./dev setup`.
pub(crate) fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `./dev setup` (or `./dev test`) to create the Python environment \
         these tests write their HDF5 files with",
        python.display()
    );
    python
}

/// Runs a Python script that writes the file at `path` (bound in the script, along with
/// `h5py`, `np` and `warnings`, which are silenced), panicking with its stderr if it fails.
pub(crate) fn run_python(script: &str, path: &Path) {
    let full = format!(
        "import sys, warnings, h5py, numpy as np\nwarnings.simplefilter('ignore')\n\
         path = sys.argv[1]\n{script}"
    );
    let out = Command::new(python())
        .arg("-c")
        .arg(&full)
        .arg(path)
        .output()
        .expect("cannot start the venv's python");
    assert!(
        out.status.success(),
        "python failed:\n{}\n--- script ---\n{full}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A temporary directory holding `name`, written by `script` (see [`run_python`]).
pub(crate) fn py_file(name: &str, script: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    run_python(script, &path);
    (dir, path)
}

/// Owned strings from string slices.
pub(crate) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
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
