//! What a dataset training is asked to do.

use std::path::PathBuf;

use lvc_compiler::schema::solver::SolverDef;
use lvc_compiler::SourceFile;
use lvc_runtime::tch;
use lvc_runtime::weights::Adaptation;

/// What to train: a checked solver (its `max_iter` as the caller wants it),
/// a dataset and the run folder, with `lvc train --dataset`'s options.
#[derive(Debug, Clone)]
pub struct DatasetTraining {
    /// The solver file as given (recorded in run.json, named in messages).
    pub solver_path: PathBuf,
    pub solver: SourceFile,
    pub def: SolverDef,
    pub device: tch::Device,
    /// The device as run.json records it (`DeviceSpec::describe`).
    pub device_label: String,
    /// The dataset folder (`lvc dataset create`).
    pub dataset: PathBuf,
    /// A new run's folder.
    pub out: Option<PathBuf>,
    /// A run to continue after its last finished epoch.
    pub resume: Option<PathBuf>,
    /// Start weights, overriding the solver's `weights`.
    pub weights: Option<PathBuf>,
    /// Epochs to train (default: the recorded run's, else enough for max_iter).
    pub epochs: Option<u32>,
    /// Images per iteration (default: N of the `data` Input).
    pub batch_size: Option<i64>,
    /// Fixes applied to the start weights before loading.
    pub adapt: Vec<Adaptation>,
}
