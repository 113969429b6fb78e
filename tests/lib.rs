//! Shared helpers of annpage's integration tests: where the fixtures are.

use std::path::PathBuf;

/// The repository's `fixtures/` folder.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// `Debug` of a value without the memory layout of its arrays (`strides=[..], layout=..`,
/// which differ between equal arrays), so that equal objects print alike and NaN equals NaN.
pub fn layout_free_debug(v: &impl std::fmt::Debug) -> String {
    let s = format!("{v:?}");
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(at) = rest.find(", strides=[") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let end = tail.find(')').map_or(tail.len(), |e| e + 1);
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}
