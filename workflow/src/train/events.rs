//! What a dataset training reports as it goes: one stream of events for
//! every consumer (the terminal, a log, a server).

use std::path::PathBuf;

use serde::Serialize;

use crate::run_folder::{EpochRecord, SettingChange};

/// What a dataset training reports, in the order it happens.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    /// A resume changed tunable solver settings (recorded in run.json).
    SettingsChanged { from_epoch: u32, changes: Vec<SettingChange> },
    /// A resume continues after `after_epoch` from its snapshot.
    Resuming { run: PathBuf, after_epoch: u32, snapshot: PathBuf },
    /// An `--adapt` fix was applied to the start weights.
    WeightsAdapted { layer: String, what: String },
    /// The epochs `first_epoch..=epochs` are about to be trained.
    Started {
        dataset: PathBuf,
        run: PathBuf,
        train_images: usize,
        val_images: usize,
        batch_size: i64,
        iterations_per_epoch: i64,
        first_epoch: u32,
        epochs: u32,
        seed: u64,
        /// The solver's `display` interval (0: none).
        display: i64,
    },
    /// One solver iteration: batch `batch` of `batches` in `epoch`.
    Iteration { epoch: u32, epochs: u32, batch: i64, batches: i64, iter: i64, loss: f64, lr: f64 },
    /// The loss stopped being finite; training stops with an error next.
    Diverged { epoch: u32, batch: i64, iter: i64, loss: f64 },
    /// The epoch's val split (and train sample) were scored.
    Validated { epoch: u32, val_dice: f64, train_dice: f64 },
    /// The epoch's weights and solver state were written.
    SnapshotWritten { epoch: u32, weights: PathBuf, state: PathBuf },
    /// The epoch improved the best val Dice; its weights were written.
    BestWeights { epoch: u32, val_dice: f64, path: PathBuf },
    /// The epoch is done (metrics.json is written next).
    EpochFinished { epochs: u32, record: EpochRecord },
    /// Every epoch is done.
    Finished {
        val_dice: f64,
        best_val_dice: f64,
        best_epoch: u32,
        val_accuracy: f64,
        metrics: PathBuf,
        best_weights: PathBuf,
    },
}
