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

mod evaluation;
mod infer_result;
mod json;
mod metrics;
mod names;
mod run_config;

pub use evaluation::{Evaluation, ImageScore, PatientScore};
pub use infer_result::InferResult;
pub use json::{
    present, read_run_file, read_run_json, sha256_file, write_json, MAX_RUN_FILE_BYTES,
};
pub use metrics::{EpochRecord, Metrics};
pub use names::{
    snapshot_path, BEST_WEIGHTS, CURVES_PNG, EVALUATION_JSON, INDEX_JSON, MASK_PNG, METRICS_JSON,
    OVERLAYS_DIR, OVERLAY_PNG, REPORT_HTML, RESULT_JSON, RUN_JSON, SNAPSHOTS,
};
pub use run_config::{RunConfig, SettingChange, TorchVersion};
