//! Scoring a trained run on a dataset split with its deploy net: per image,
//! per patient, and mean ± sd ([`Evaluation`]).

use std::path::{Path, PathBuf};

use lvc_data::store::Dataset;

use crate::device::DeviceSpec;
use crate::failure::{fail, report, Failed};
use crate::run_folder::{Evaluation, RunConfig, BEST_WEIGHTS};
use crate::run_lock::lock_run_if_inside;
use crate::scores::Overlap;
use crate::segmenter::open_run;
use lvc_fsio::FolderLock;

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvaluateRequest {
    /// The run folder (`lvc train --dataset … --out RUN`).
    pub run: PathBuf,
    /// The dataset (default: the one run.json records).
    pub dataset: Option<PathBuf>,
    /// `train` or `val`.
    pub split: String,
    /// The weights (default: `RUN/best.safetensors`).
    pub weights: Option<PathBuf>,
    /// Where the caller will write the report, if anywhere: inside the run
    /// it makes this a writer of it, which takes the run's lock.
    pub out: Option<PathBuf>,
    pub device: DeviceSpec,
}

/// An evaluation, with the run's lock when the report goes into the run
/// (held until the caller has written it).
pub struct Evaluated {
    pub evaluation: Evaluation,
    pub lock: Option<FolderLock>,
}

/// Scores every image of the split with the run's deploy net.
pub fn evaluate_run(request: &EvaluateRequest) -> Result<Evaluated, Failed> {
    let recorded = RunConfig::read(&request.run)?;
    // Writing into the run makes this a writer of it (run_lock); scoring
    // alone reads whole files and waits for no one.
    let lock = match &request.out {
        Some(out) => lock_run_if_inside(&request.run, out).map_err(|m| fail(2, m))?,
        None => None,
    };
    let dataset_path = request.dataset.clone().unwrap_or_else(|| recorded.dataset.clone());
    let dataset = Dataset::open(&dataset_path).map_err(|e| report(2, e))?;
    let split = dataset.split(&request.split).map_err(|e| report(2, e))?;
    let segmenter = open_run(
        &request.run,
        &recorded,
        request.weights.as_deref(),
        dataset.manifest.image_shape,
        &request.device,
    )?;
    if segmenter.classes != dataset.manifest.classes.len() {
        return Err(fail(
            2,
            format!(
                "the net scores {} classes, {} has {}",
                segmenter.classes,
                dataset_path.display(),
                dataset.manifest.classes.len()
            ),
        ));
    }
    let mut scored = Vec::with_capacity(split.len());
    for (i, record) in split.records.iter().enumerate() {
        let (predicted, _) = segmenter.segment(split.image(i), None).map_err(|e| report(1, e))?;
        scored.push((
            record.case.clone(),
            record.image,
            Overlap::of(&predicted, split.label(i), segmenter.classes),
        ));
    }
    let weights = request.weights.clone().unwrap_or_else(|| request.run.join(BEST_WEIGHTS));
    let evaluation =
        Evaluation::from_overlaps(&request.split, weights.display().to_string(), &scored);
    Ok(Evaluated { evaluation, lock })
}

/// Writes an evaluation's JSON (as `lvc evaluate` prints it) to `path`
/// atomically.
pub fn write_evaluation(path: &Path, json: &str) -> Result<(), Failed> {
    lvc_data::atomic::write_atomic(path, json.as_bytes())
        .map_err(|e| fail(1, format!("cannot write {}: {e}", path.display())))
}
