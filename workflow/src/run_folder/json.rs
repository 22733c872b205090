//! Reading and writing the files of a run folder: bounded reads, atomic
//! JSON writes, hashes, and how figures and fields are read back.

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::failure::{fail, Failed};

/// The largest run file read (run.json, metrics.json, evaluation.json, an
/// overlay): far above what a run writes, far below what would exhaust
/// memory.
pub const MAX_RUN_FILE_BYTES: u64 = 1 << 30;

/// Reads a file of a run folder: a regular file only, bounded.
pub fn read_run_file(path: &Path) -> std::io::Result<Vec<u8>> {
    lvc_fsio::read_regular(path, MAX_RUN_FILE_BYTES)
}

/// [`read_run_file`], failing with exit code 2 and `cannot read PATH: …`.
pub fn read_run_json(path: &Path) -> Result<Vec<u8>, Failed> {
    read_run_file(path).map_err(|e| fail(2, format!("cannot read {}: {e}", path.display())))
}

/// Writes `value` as pretty JSON to `path` atomically (exit code 1 on failure).
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), Failed> {
    let text = serde_json::to_vec_pretty(value)
        .map_err(|e| fail(1, format!("cannot encode {}: {e}", path.display())))?;
    lvc_data::atomic::write_atomic(path, &text)
        .map_err(|e| fail(1, format!("cannot write {}: {e}", path.display())))
}

/// SHA-256 of a file, hex; streamed (a dataset's manifest may be large),
/// and only of a regular file.
pub fn sha256_file(path: &Path) -> Result<String, Failed> {
    let cannot = |e: std::io::Error| fail(2, format!("cannot read {}: {e}", path.display()));
    let (file, _) = lvc_fsio::open_regular(path).map_err(cannot)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::io::BufReader::new(file), &mut hasher).map_err(cannot)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// A figure as written: serde_json writes NaN as `null`, so `null` (and,
/// with the container's default, a missing figure) reads back as NaN.
pub(crate) fn figure<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// The NaN default of a figure.
pub(crate) fn no_figure() -> f64 {
    f64::NAN
}

/// A figure that is there: `None` for NaN (absent or null in the file).
pub fn present(value: f64) -> Option<f64> {
    (!value.is_nan()).then_some(value)
}

/// Checks that the JSON object `value` has every field in `fields`: what a
/// strict read (the workflow's own) needs beyond the lenient parse.
pub(crate) fn require_fields(value: &serde_json::Value, fields: &[&str]) -> Result<(), String> {
    let Some(object) = value.as_object() else {
        return Err("expected a JSON object".to_string());
    };
    match fields.iter().find(|f| !object.contains_key(**f)) {
        Some(missing) => Err(format!("missing field `{missing}`")),
        None => Ok(()),
    }
}
