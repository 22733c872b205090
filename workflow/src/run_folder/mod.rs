//! The run folder as one schema: the names of its files and the types of
//! the JSON ones, each read and written by the same type.
//!
//! ```text
//! RUN/
//!   run.json                  RunConfig: what the run was trained from (written first)
//!   snapshots/epoch-N.safetensors              weights after epoch N
//!   snapshots/epoch-N.solverstate.safetensors  the solver state written with them
//!   best.safetensors          the weights of the best val Dice so far
//!   metrics.json              Metrics: every finished epoch (written last in each epoch)
//!   evaluation.json           Evaluation (`lvc evaluate --out RUN/evaluation.json`)
//!   overlays/CASE-NNNN/       InferResult in result.json, mask.png, overlay.png
//!   overlays/index.json       every InferResult of `lvc infer --all-val`
//!   curves.png, report.html   drawn by `lvc report` (and after training)
//!   .lock                     the one-writer lock (`run_lock`)
//! ```
//!
//! Reading is lenient where a report of a run in progress (or of an older
//! lvc) needs it: a missing field reads as its default, a missing or null
//! figure as NaN (serde_json writes NaN as null). The workflow's own reads
//! that depend on every field ([`RunConfig::from_json`],
//! [`Metrics::from_json`]) also check that each field the type writes is
//! there. Nothing here links libtorch: the light `lvc` binary reads runs
//! through it.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::failure::{fail, Failed};

mod evaluation;
mod infer_result;
mod metrics;
mod run_config;

pub use evaluation::{Evaluation, ImageScore, PatientScore};
pub use infer_result::InferResult;
pub use metrics::{EpochRecord, Metrics};
pub use run_config::{RunConfig, SettingChange, TorchVersion};

/// `RUN/run.json`.
pub const RUN_JSON: &str = "run.json";
/// `RUN/metrics.json`.
pub const METRICS_JSON: &str = "metrics.json";
/// `RUN/evaluation.json`, where `lvc report` looks for the evaluation.
pub const EVALUATION_JSON: &str = "evaluation.json";
/// `RUN/best.safetensors`.
pub const BEST_WEIGHTS: &str = "best.safetensors";
/// `RUN/snapshots/`.
pub const SNAPSHOTS: &str = "snapshots";
/// `RUN/overlays/`, where `lvc report` looks for the inference results.
pub const OVERLAYS_DIR: &str = "overlays";
/// `RUN/curves.png`.
pub const CURVES_PNG: &str = "curves.png";
/// `RUN/report.html`.
pub const REPORT_HTML: &str = "report.html";
/// The predicted labels of one inferred image (8-bit label values).
pub const MASK_PNG: &str = "mask.png";
/// The windowed image with the prediction and the ground truth drawn on it.
pub const OVERLAY_PNG: &str = "overlay.png";
/// The [`InferResult`] of one inferred image.
pub const RESULT_JSON: &str = "result.json";
/// Every [`InferResult`] of `lvc infer --all-val`.
pub const INDEX_JSON: &str = "index.json";

/// `RUN/snapshots/epoch-N.safetensors`.
pub fn snapshot_path(run: &Path, epoch: u32) -> PathBuf {
    run.join(SNAPSHOTS).join(format!("epoch-{epoch}.safetensors"))
}

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
