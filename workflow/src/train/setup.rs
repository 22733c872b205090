//! Everything before the first epoch of a dataset training: the run folder
//! (new, or resumed and checked against run.json), the train net with its
//! start or resumed weights, the val graph sharing them, and the trainer
//! at the right iteration.

use std::path::{Path, PathBuf};

use lvc_compiler::memory::Mode;
use lvc_compiler::schema::solver::{NetSource, SolverDef};
use lvc_compiler::schema::{NetState, Phase};
use lvc_data::store::{Dataset, SplitData};
use lvc_fsio::FolderLock;
use lvc_runtime::exec::Net;
use lvc_runtime::solver::{read_state, share_weights, solver_seed, state_path_for, Trainer};
use lvc_runtime::tch;
use lvc_runtime::weights::{apply_adaptations, Adaptation};

use super::events::TrainEvent;
use super::request::DatasetTraining;
use crate::failure::{fail, report, Failed};
use crate::net::{build_net, build_plan, build_train_net, one_image_shape, read_weights_checked};
use crate::resume::{check_resume, record_change};
use crate::run_folder::{
    read_run_json, sha256_file, snapshot_path, write_json, EpochRecord, Metrics, RunConfig,
    SettingChange, TorchVersion, METRICS_JSON, RUN_JSON, SNAPSHOTS,
};
use crate::run_lock::lock_run;
use crate::segmenter::Segmenter;

/// A run ready for its next epoch.
pub(super) struct Prepared {
    pub run: PathBuf,
    /// The run's lock, held until the caller is done with the folder.
    pub lock: Option<FolderLock>,
    pub dataset: Dataset,
    pub train_split: SplitData,
    pub val_split: SplitData,
    pub seed: u64,
    pub batch: i64,
    pub per_epoch: i64,
    pub epochs: u32,
    /// The finished epochs (from metrics.json on a resume).
    pub history: Vec<EpochRecord>,
    pub trainer: Trainer,
    pub segmenter: Segmenter,
    pub display: i64,
}

pub(super) fn prepare(
    request: &DatasetTraining,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<Prepared, Failed> {
    let mut def = request.def.clone();
    let (source, device, dataset_path) = (&request.solver, request.device, &request.dataset);
    let run = match (&request.resume, &request.out) {
        (Some(resume), Some(out)) if absolute(resume) != absolute(out) => {
            return Err(fail(2, "--resume RUN and --out name different folders; --resume continues in RUN (drop --out)"));
        }
        (Some(run), _) | (None, Some(run)) => run.clone(),
        (None, None) => {
            return Err(fail(
                2,
                "--dataset needs --out RUN (the run folder for snapshots and metrics)",
            ))
        }
    };
    let dataset = Dataset::open(dataset_path).map_err(|e| report(2, e))?;
    let train_split = dataset.split("train").map_err(|e| report(2, e))?;
    let val_split = dataset.split("val").map_err(|e| report(2, e))?;
    if train_split.is_empty() || val_split.is_empty() {
        return Err(fail(2, format!("{}: the train and val splits both need images (re-create it with a --val-pct that leaves both non-empty)", dataset_path.display())));
    }
    let [c, h, w] = dataset.manifest.image_shape;
    // One writer per run (run_lock), held until the command ends. A resume
    // takes it before reading run.json and metrics.json, which it rewrites;
    // a missing folder is left to RunConfig::read's error. A new run takes
    // it below, where it creates the folder.
    let mut lock = None;
    let recorded = match &request.resume {
        Some(_) => {
            if run.is_dir() {
                lock = Some(lock_run(&run).map_err(|m| fail(2, m))?);
            }
            Some(RunConfig::read(&run)?)
        }
        None => None,
    };
    let seed = recorded.as_ref().map_or_else(|| solver_seed(&def), |r| r.seed);
    tch::manual_seed(seed as i64);

    // The batch size is N of the `data` Input unless --batch-size says otherwise.
    // Only compiled: the net as declared may not fit where the batch given does.
    let declared = build_plan(&def.train_net, &def.train_state, source, &[])?;
    let declared_batch =
        declared.blob_id("data").and_then(|id| declared.blob_shapes[id].first().copied());
    let Some(batch) = request.batch_size.or(declared_batch).filter(|&b| b > 0) else {
        return Err(fail(2, "the train net has no `data` Input with a batch dimension; give one (or --batch-size B)"));
    };
    let shapes = [
        ("data".to_string(), vec![batch, c as i64, h as i64, w as i64]),
        ("label".to_string(), vec![batch, 1, h as i64, w as i64]),
    ];
    let mut net = build_train_net(&def, source, &shapes, device, seed)?;
    let passes = def.iter_size.max(1) * batch;
    let per_epoch = train_split.len() as i64 / passes;
    if per_epoch == 0 {
        return Err(fail(2, format!("the train split has {} images, fewer than one iteration's {passes} (batch {batch} × iter_size); pass a smaller --batch-size", train_split.len())));
    }
    let epochs = request.epochs.or(recorded.as_ref().map(|r| r.epochs)).unwrap_or_else(|| {
        u32::try_from((def.max_iter.max(1) + per_epoch - 1) / per_epoch).unwrap_or(u32::MAX)
    });
    def.max_iter = i64::from(epochs) * per_epoch;

    let (val_source, val_state) = val_state(&def);
    let model = model_file(&def.train_net);
    let config = RunConfig {
        solver: absolute(&request.solver_path),
        solver_sha256: sha256_file(&request.solver_path)?,
        model_sha256: model.as_deref().map(sha256_file).transpose()?,
        model,
        train_stages: def.train_state.stages.clone(),
        val_stages: val_state.stages.clone(),
        dataset: absolute(dataset_path),
        dataset_manifest_sha256: sha256_file(&dataset_path.join("manifest.json"))?,
        split: serde_json::to_value(&dataset.manifest.split).unwrap_or_default(),
        classes: dataset.manifest.classes.clone(),
        image_shape: dataset.manifest.image_shape,
        seed,
        batch_size: batch,
        epochs,
        iterations_per_epoch: per_epoch,
        weights: request.weights.clone().or_else(|| def.weights.first().map(PathBuf::from)),
        adapt: request.adapt.iter().map(ToString::to_string).collect(),
        device: request.device_label.clone(),
        lvc_version: env!("CARGO_PKG_VERSION").to_string(),
        torch: TorchVersion::detect(),
        solver_text: Some(source.text.to_string()),
        changes: Vec::new(),
    };

    let mut history: Vec<EpochRecord> = Vec::new();
    let mut schedule_changed = false;
    match &recorded {
        Some(recorded) => {
            let accepted = check_resume(&run, recorded, &config, source)?;
            let metrics_path = run.join(METRICS_JSON);
            if metrics_path.is_file() {
                let text = read_run_json(&metrics_path)?;
                let metrics = Metrics::from_json(&text, &metrics_path).map_err(|m| fail(2, m))?;
                history = metrics.history;
            }
            // The changes apply from the first epoch this resume trains.
            let from_epoch = history.last().map_or(0, |e| e.epoch) + 1;
            let mut changes = recorded.changes.clone();
            for change in &accepted.changes {
                record_change(
                    &mut changes,
                    from_epoch,
                    change.field,
                    change.from.clone(),
                    change.to.clone(),
                );
            }
            // --epochs moves max_iter, and with it poly's rate.
            record_change(
                &mut changes,
                from_epoch,
                "epochs",
                recorded.epochs.into(),
                epochs.into(),
            );
            if !accepted.changes.is_empty() {
                let changes = accepted
                    .changes
                    .iter()
                    .map(|c| SettingChange {
                        epoch: from_epoch,
                        field: c.field.to_string(),
                        from: c.from.clone(),
                        to: c.to.clone(),
                    })
                    .collect();
                on_event(&TrainEvent::SettingsChanged { from_epoch, changes });
            }
            schedule_changed = accepted.schedule_changed;
            // The solver now trained with (its text, for the next resume's
            // comparison; its hash, for evaluate's check), where the net
            // and the rest are the recorded run's (checked equal above).
            let resumed = RunConfig {
                epochs,
                solver: config.solver.clone(),
                solver_sha256: config.solver_sha256.clone(),
                solver_text: config.solver_text.clone(),
                model: config.model.clone(),
                changes,
                ..recorded.clone()
            };
            write_json(&run.join(RUN_JSON), &resumed)?;
        }
        None => {
            std::fs::create_dir_all(&run)
                .map_err(|e| fail(2, format!("cannot create {}: {e}", run.display())))?;
            lock = Some(lock_run(&run).map_err(|m| fail(2, m))?);
            if run.join(METRICS_JSON).exists() {
                return Err(fail(2, format!("{} already holds a run; continue it with --resume {0}, or choose another --out", run.display())));
            }
            std::fs::create_dir_all(run.join(SNAPSHOTS))
                .map_err(|e| fail(2, format!("cannot create {}: {e}", run.display())))?;
            write_json(&run.join(RUN_JSON), &config)?;
        }
    }
    let done = history.last().map_or(0, |e| e.epoch);
    let mut resume_state = None;
    if done > 0 {
        let snapshot = snapshot_path(&run, done);
        let file = read_weights_checked(&snapshot).map_err(|e| report(2, e))?;
        net.load_weights(&file).map_err(|e| report(2, e))?;
        let state_path = state_path_for(&snapshot);
        if state_path.exists() {
            resume_state = Some((read_state(&state_path).map_err(|e| report(2, e))?, state_path));
        } else {
            errln!(
                "warning: {} is missing (a run from an lvc without solver states): resuming from the weights only; the optimizer history and random streams start over",
                state_path.display()
            );
        }
        on_event(&TrainEvent::Resuming { run: run.clone(), after_epoch: done, snapshot });
    } else if let Some(weights) = &config.weights {
        load_start_weights(&mut net, weights, &request.adapt, on_event)?;
    }

    let val_shapes = [
        ("data".to_string(), one_image_shape([c, h, w])),
        ("label".to_string(), vec![1, 1, h as i64, w as i64]),
    ];
    let mut val_net =
        build_net(val_source, &val_state, source, &val_shapes, device, seed, Mode::Inference)?;
    share_weights(&net, &mut val_net);
    let segmenter = Segmenter::new(val_net).map_err(|m| fail(2, format!("the val graph: {m}")))?;
    if segmenter.classes != dataset.manifest.classes.len() {
        return Err(fail(2, format!(
            "the net scores {} classes but the dataset has {} ({}); change the class count with `lvc set-classes`",
            segmenter.classes,
            dataset.manifest.classes.len(),
            dataset.manifest.classes.join(", ")
        )));
    }

    let mut trainer = Trainer::new(&def, seed, net, Vec::new());
    trainer.iter = i64::from(done) * per_epoch;
    if let Some((state, path)) = &resume_state {
        if state.iter != trainer.iter {
            return Err(fail(2, format!(
                "{} is at iteration {}, but epoch {done} ends at iteration {} ({per_epoch} per epoch); the snapshots folder does not belong to this run",
                path.display(),
                state.iter,
                trainer.iter
            )));
        }
        trainer.restore(state, path).map_err(|e| report(2, e))?;
    }
    // The restored multistep position belongs to the old schedule (or, with
    // no state, to none): put it where the solver's schedule has it now.
    if schedule_changed || resume_state.is_none() {
        trainer.schedule.seek(trainer.iter);
    }
    Ok(Prepared {
        run,
        lock,
        dataset,
        train_split,
        val_split,
        seed,
        batch,
        per_epoch,
        epochs,
        history,
        trainer,
        segmenter,
        display: def.display,
    })
}

/// Where the run's solver net is, when it is a file.
fn model_file(net: &NetSource) -> Option<PathBuf> {
    match net {
        NetSource::File(file) => file.found().map(absolute),
        NetSource::Inline(_) => None,
    }
}

pub(super) fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The validation graph: the solver's first test net, else the train net in
/// the TEST phase with stage `val` (DIGITS' convention).
fn val_state(def: &SolverDef) -> (&NetSource, NetState) {
    match def.test_nets.first() {
        Some(test) => (&test.source, test.state.clone()),
        None => (
            &def.train_net,
            NetState { phase: Phase::Test, level: 0, stages: vec!["val".to_string()] },
        ),
    }
}

/// Loads the start weights (after the --adapt fixes) into `net`.
fn load_start_weights(
    net: &mut Net,
    path: &Path,
    adapt: &[Adaptation],
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<(), Failed> {
    let mut file = read_weights_checked(path).map_err(|e| report(2, e))?;
    for applied in apply_adaptations(&mut file, &net.targets(), adapt).map_err(|e| report(2, e))? {
        on_event(&TrainEvent::WeightsAdapted { layer: applied.layer, what: applied.what });
    }
    let loaded = net.load_weights(&file).map_err(|e| report(2, e))?;
    if !loaded.loads() {
        for layer in loaded.layers.iter().filter(|l| l.status.is_fatal()) {
            errln!("error: layer '{}': {}", layer.layer, layer.status.as_str());
        }
        return Err(fail(2, format!("{} does not load into the train net (see `lvc weights check`; --adapt fixes channel and class-count mismatches)", path.display())));
    }
    Ok(())
}
