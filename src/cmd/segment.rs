//! What `lvc train --dataset`, `lvc evaluate` and `lvc infer` share, now in
//! the workflow crate: the run folder, segmentation scores, and running a
//! net on one dataset image.

pub use lvc_workflow::net::one_image_shape;
pub use lvc_workflow::run_folder::{
    read_run_json, sha256_file, RunConfig, SettingChange, TorchVersion, BEST_WEIGHTS, METRICS_JSON,
    RUN_JSON, SNAPSHOTS,
};
pub use lvc_workflow::scores::{mean, sd, Overlap, EMPTY_RULE};
pub use lvc_workflow::segmenter::Segmenter;
