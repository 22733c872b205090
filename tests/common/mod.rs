//! Shared by the CLI tests (`mod common;`): running the `lvc` binary and
//! finding the Caffe golden files in ../shared.

// Each test binary compiles its own copy and uses only some of these.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `lvc` with `args` in the workspace root, so relative paths
/// (`models/…`, `tests/fixtures/…`) and snapshots stay stable.
pub fn lvc(args: &[&str]) -> Output {
    lvc_in(args, Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// Runs `lvc` with `args` in `dir`.
pub fn lvc_in(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lvc")).args(args).current_dir(dir).output().expect("run lvc")
}

/// Captured output as text (lossy: a test failure should still show it).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path under the Caffe golden folder (`../shared/golden/caffe`).
pub fn golden(rel: &str) -> String {
    format!("{}/../shared/golden/caffe/{rel}", env!("CARGO_MANIFEST_DIR"))
}
