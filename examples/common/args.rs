//! Shared by the examples: `--quick` (the small configuration the tests use) and `--out DIR`
//! (default `runs/examples/NAME`).

use std::path::PathBuf;

/// `(quick, out)` from the command line.
pub fn args(name: &str) -> (bool, PathBuf) {
    let a: Vec<String> = std::env::args().collect();
    let out = a
        .iter()
        .position(|s| s == "--out")
        .and_then(|i| a.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("runs/examples").join(name));
    (a.iter().any(|s| s == "--quick"), out)
}
