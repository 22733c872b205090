//! The names of the files and folders in a run folder.

use std::path::{Path, PathBuf};

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
/// The [`InferResult`](super::InferResult) of one inferred image.
pub const RESULT_JSON: &str = "result.json";
/// Every [`InferResult`](super::InferResult) of `lvc infer --all-val`.
pub const INDEX_JSON: &str = "index.json";

/// `RUN/snapshots/epoch-N.safetensors`.
pub fn snapshot_path(run: &Path, epoch: u32) -> PathBuf {
    run.join(SNAPSHOTS).join(format!("epoch-{epoch}.safetensors"))
}
