//! Shared helpers of annpage's integration tests: where the fixtures are.

use std::path::PathBuf;

/// The repository's `fixtures/` folder.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}
