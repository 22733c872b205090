//! `lvc train --dataset DS --out RUN`: epochs over an lvc dataset on top of
//! the solver loop (`lvc_runtime::solver::Trainer::step`), validation on the
//! val split after every epoch, and the run folder:
//!
//! - `run.json` — what the run was trained from (written first);
//! - `snapshots/epoch-N.safetensors` and its solver state
//!   `snapshots/epoch-N.solverstate.safetensors` (optimizer history,
//!   iteration, lr-policy step, dropout and augmentation streams);
//!   `best.safetensors` (best val Dice);
//! - `metrics.json` — written last in each epoch, so it only ever names
//!   epochs whose weights and state are complete; `--resume` continues after
//!   its last epoch (a kill loses at most the epoch in progress) and ends
//!   with the weights and metrics the uninterrupted run would have had.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use lvc_compiler::memory::Mode;
use lvc_compiler::schema::solver::{NetSource, SolverDef};
use lvc_compiler::schema::{NetState, Phase};
use lvc_compiler::SourceFile;
use lvc_data::store::{Dataset, SplitData};
use lvc_runtime::error::RuntimeError;
use lvc_runtime::exec::Net;
use lvc_runtime::solver::{
    net_weights, read_state, share_weights, solver_seed, state_path_for, DataSource, Event, Trainer,
};
use lvc_runtime::tch::{self, Tensor};
use lvc_runtime::weights::{apply_adaptations, write_weights, Adaptation};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::resume::{check_resume, record_change};
use super::run_lock::lock_run;
use super::segment::{
    mean, one_image_shape, sha256_file, Overlap, RunConfig, Segmenter, TorchVersion, BEST_WEIGHTS,
    METRICS_JSON, RUN_JSON, SNAPSHOTS,
};
use super::train::{build_net, build_plan, fail, report, Failed, TrainArgs};
use super::weights::read_weights_checked;

/// The dataset options of `lvc train` (used with `--dataset`).
#[derive(clap::Args, Debug)]
pub struct DatasetArgs {
    /// Train on an lvc dataset folder (`lvc dataset create`): its train split
    /// feeds the net's `data` and `label` inputs, its val split is scored
    /// after every epoch. Needs --out RUN (or --resume RUN). Images are fed
    /// as stored (raw DICOM values as float, no mean subtraction): normalise
    /// in the net, e.g. with a Power layer (models/demo.prototxt).
    #[arg(long, value_name = "DS", conflicts_with = "feeds")]
    pub dataset: Option<PathBuf>,
    /// Epochs to train (default: enough epochs to cover the solver's max_iter).
    #[arg(long, value_name = "N", requires = "dataset")]
    pub epochs: Option<u32>,
    /// Images per iteration (default: N of the `data` Input shape).
    #[arg(long, value_name = "B", requires = "dataset")]
    pub batch_size: Option<i64>,
    /// A fix applied to the --weights before loading (repeatable):
    /// `<layer>=sum|mean|replicate`, `reinit=<layer>` or `convolutionalize`.
    #[arg(long = "adapt", value_name = "FIX", requires = "dataset", value_parser = |s: &str| s.parse::<Adaptation>())]
    pub adapt: Vec<Adaptation>,
    /// Continue the run in RUN after its last complete epoch (checked
    /// against RUN/run.json: the same net, dataset, batch size, solver type,
    /// iter_size and random_seed): weights, optimizer history, lr step and
    /// random streams are restored, so with the same solver the result is
    /// the uninterrupted run's, bit for bit. The learning-rate settings,
    /// momentum, weight decay and clip_gradients may change; the resumed
    /// epochs use the new values, and run.json records them.
    #[arg(long, value_name = "RUN", requires = "dataset")]
    pub resume: Option<PathBuf>,
}

pub use lvc_workflow::run_folder::{write_json, EpochRecord, Metrics};

/// The train split in a per-epoch shuffled order, one batch per call.
struct EpochBatches<'a> {
    split: &'a SplitData,
    order: Vec<usize>,
    next: usize,
    batch: usize,
    device: tch::Device,
}

impl<'a> EpochBatches<'a> {
    /// Epoch `epoch`'s order: a shuffle seeded by the run seed and the epoch,
    /// so a resumed run sees the same order it would have seen.
    fn new(split: &'a SplitData, seed: u64, epoch: u32, batch: usize, device: tch::Device) -> Self {
        let mut order: Vec<usize> = (0..split.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            seed ^ u64::from(epoch).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ));
        EpochBatches { split, order, next: 0, batch, device }
    }
}

impl DataSource for EpochBatches<'_> {
    fn next_batch(&mut self, phase: Phase) -> Result<Vec<(String, Tensor)>, RuntimeError> {
        if phase != Phase::Train {
            return Err(RuntimeError::Input {
                name: "data".to_string(),
                reason: "the dataset's train batches only feed the train net".to_string(),
                help: "validation runs on the val split after each epoch; remove test nets' test_interval from the solver".to_string(),
            });
        }
        let [_, c, h, w] = self.split.shape;
        let mut images = Vec::with_capacity(self.batch * c * h * w);
        let mut labels = Vec::with_capacity(self.batch * h * w);
        for k in 0..self.batch {
            let index = self.order[(self.next * self.batch + k) % self.order.len()];
            images.extend_from_slice(self.split.image(index));
            labels.extend(self.split.label(index).iter().map(|&v| f32::from(v)));
        }
        self.next += 1;
        let b = self.batch as i64;
        Ok(vec![
            (
                "data".to_string(),
                Tensor::from_slice(&images)
                    .reshape([b, c as i64, h as i64, w as i64])
                    .to_device(self.device),
            ),
            (
                "label".to_string(),
                Tensor::from_slice(&labels)
                    .reshape([b, 1, h as i64, w as i64])
                    .to_device(self.device),
            ),
        ])
    }
}

/// Loss, accuracy and Dice of some images of a split with the current weights.
struct Validation {
    loss: f64,
    accuracy: f64,
    dice: f64,
    class_dice: Vec<f64>,
}

/// Scores `images` of `split` (every image for the val split; the
/// [`train_sample`] for the train Dice).
fn score(
    segmenter: &Segmenter,
    split: &SplitData,
    images: impl Iterator<Item = usize>,
) -> Result<Validation, RuntimeError> {
    let mut overlaps = Vec::with_capacity(split.len());
    let mut losses = Vec::with_capacity(split.len());
    for i in images {
        let (predicted, loss) = segmenter.segment(split.image(i), Some(split.label(i)))?;
        overlaps.push(Overlap::of(&predicted, split.label(i), segmenter.classes));
        losses.extend(loss);
    }
    Ok(Validation {
        loss: mean(losses),
        accuracy: mean(overlaps.iter().map(Overlap::accuracy)),
        dice: mean(overlaps.iter().map(Overlap::foreground_dice)),
        class_dice: (0..segmenter.classes)
            .map(|c| mean(overlaps.iter().map(|o| o.dice(c))))
            .collect(),
    })
}

/// The training images the train Dice is measured on each epoch: as many
/// as the val split has (at least 16, at most all), evenly spaced over the
/// split (which is ordered by case), so every patient is represented and
/// the cost stays that of one validation pass.
fn train_sample(train_len: usize, val_len: usize) -> Vec<usize> {
    let n = val_len.max(16).min(train_len);
    (0..n).map(|k| k * train_len / n).collect()
}

/// Live progress: a redrawn bar with ETA on a terminal, plain lines otherwise.
struct Progress {
    tty: bool,
    started: Instant,
    total: i64,
    done: i64,
    display: i64,
}

impl Progress {
    fn iteration(&mut self, epoch: u32, epochs: u32, batch: i64, per_epoch: i64, event: &Event) {
        let Event::Iteration { iter, loss, lr, .. } = event else { return };
        self.done += 1;
        if self.tty {
            let elapsed = self.started.elapsed().as_secs_f64();
            let eta = elapsed / self.done as f64 * (self.total - self.done) as f64;
            let width = 24;
            let filled = (batch * width / per_epoch.max(1)) as usize;
            let bar = format!(
                "{}{}",
                "#".repeat(filled),
                "-".repeat(width as usize - filled.min(width as usize))
            );
            // Raw: the line-erase sequence is lvc's own, and the line holds
            // only numbers.
            eprint!("\r\x1b[2Kepoch {epoch}/{epochs} [{bar}] {batch}/{per_epoch}  loss {loss:.4}  lr {lr:.3e}  ETA {}", clock(eta));
            let _ = std::io::stderr().flush();
        } else if self.display > 0 && iter % self.display == 0 {
            outln!("epoch {epoch}/{epochs} iteration {iter}: loss = {loss:.6}, lr = {lr}");
        }
    }

    fn clear_line(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }
}

/// `path` as one word of a shell command: as is when it holds only
/// characters no shell treats specially, else in single quotes.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Where the run's solver net is, when it is a file.
fn model_file(net: &NetSource) -> Option<PathBuf> {
    match net {
        NetSource::File(file) => file.candidates.iter().find(|p| p.is_file()).map(|p| absolute(p)),
        NetSource::Inline(_) => None,
    }
}

fn absolute(path: &Path) -> PathBuf {
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
fn load_start_weights(net: &mut Net, path: &Path, adapt: &[Adaptation]) -> Result<(), Failed> {
    let mut file = read_weights_checked(path).map_err(|e| report(2, e))?;
    for applied in apply_adaptations(&mut file, &net.targets(), adapt).map_err(|e| report(2, e))? {
        outln!("adapted {}: {}", applied.layer, applied.what);
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

fn snapshot_path(run: &Path, epoch: u32) -> PathBuf {
    run.join(SNAPSHOTS).join(format!("epoch-{epoch}.safetensors"))
}

fn save_weights(net: &Net, path: &Path) -> Result<(), Failed> {
    let (weights, roles) = net_weights(net);
    write_weights(path, &weights, &roles).map_err(|e| report(1, e))
}

pub(super) fn train(
    args: &TrainArgs,
    dataset_path: &Path,
    source: &SourceFile,
    mut def: SolverDef,
    device: tch::Device,
) -> Result<(), Failed> {
    let opts = &args.dataset;
    let run = match (&opts.resume, &args.out) {
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
    // One writer per run (cmd::run_lock), held until the command ends. A
    // resume takes it before reading run.json and metrics.json, which it
    // rewrites; a missing folder is left to RunConfig::read's error. A new
    // run takes it below, where it creates the folder.
    let mut _lock = None;
    let recorded = match &opts.resume {
        Some(_) => {
            if run.is_dir() {
                _lock = Some(lock_run(&run).map_err(|m| fail(2, m))?);
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
    let Some(batch) = opts.batch_size.or(declared_batch).filter(|&b| b > 0) else {
        return Err(fail(2, "the train net has no `data` Input with a batch dimension; give one (or --batch-size B)"));
    };
    let shapes = [
        ("data".to_string(), vec![batch, c as i64, h as i64, w as i64]),
        ("label".to_string(), vec![batch, 1, h as i64, w as i64]),
    ];
    let mut net = build_net(
        &def.train_net,
        &def.train_state,
        source,
        &shapes,
        device,
        seed,
        Mode::training_with(def.solver_type),
    )?;
    let passes = def.iter_size.max(1) * batch;
    let per_epoch = train_split.len() as i64 / passes;
    if per_epoch == 0 {
        return Err(fail(2, format!("the train split has {} images, fewer than one iteration's {passes} (batch {batch} × iter_size); pass a smaller --batch-size", train_split.len())));
    }
    let epochs = opts.epochs.or(recorded.as_ref().map(|r| r.epochs)).unwrap_or_else(|| {
        u32::try_from((def.max_iter.max(1) + per_epoch - 1) / per_epoch).unwrap_or(u32::MAX)
    });
    def.max_iter = i64::from(epochs) * per_epoch;

    let (val_source, val_state) = val_state(&def);
    let model = model_file(&def.train_net);
    let config = RunConfig {
        solver: absolute(&args.solver),
        solver_sha256: sha256_file(&args.solver)?,
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
        weights: args.weights.clone().or_else(|| def.weights.first().map(PathBuf::from)),
        adapt: opts.adapt.iter().map(ToString::to_string).collect(),
        device: args.device.describe(),
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
                let text = super::segment::read_run_json(&metrics_path)?;
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
                let list: Vec<String> = accepted
                    .changes
                    .iter()
                    .map(|c| format!("{} {} → {}", c.field, c.from, c.to))
                    .collect();
                outln!(
                    "changed from epoch {from_epoch} on (recorded in run.json): {}",
                    list.join(", ")
                );
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
            _lock = Some(lock_run(&run).map_err(|m| fail(2, m))?);
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
        outln!("resuming {} after epoch {done} ({})", run.display(), snapshot.display());
    } else if let Some(weights) = &config.weights {
        load_start_weights(&mut net, weights, &opts.adapt)?;
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
    let remaining = i64::from(epochs.saturating_sub(done)) * per_epoch;
    outln!(
        "training {} → {}: {} train / {} val images, batch {batch}, {per_epoch} iterations per epoch, epochs {}..={epochs}, seed {seed}",
        dataset_path.display(),
        run.display(),
        train_split.len(),
        val_split.len(),
        done + 1
    );
    let mut progress = Progress {
        tty: std::io::stderr().is_terminal(),
        started: Instant::now(),
        total: remaining,
        done: 0,
        display: def.display,
    };
    let mut best = history.iter().map(|e| e.val_dice).fold(f64::NEG_INFINITY, f64::max);
    for epoch in done + 1..=epochs {
        let started = Instant::now();
        let mut batches = EpochBatches::new(&train_split, seed, epoch, batch as usize, device);
        let (mut loss_sum, mut lr) = (0.0, 0.0);
        for b in 1..=per_epoch {
            let event = trainer.step(&mut batches).map_err(|e| report(1, e))?;
            if let Event::Iteration { iter, loss, lr: rate, .. } = &event {
                if !loss.is_finite() {
                    progress.clear_line();
                    let kept = if epoch > 1 {
                        snapshot_path(&run, epoch - 1).display().to_string()
                    } else {
                        "none (no epoch finished)".to_string()
                    };
                    // cmd::resume lets the rate settings and clipping change;
                    // the command repeats --batch-size, which a resume checks.
                    let batch_arg =
                        opts.batch_size.map_or_else(String::new, |b| format!(" --batch-size {b}"));
                    return Err(fail(1, format!(
                        "the training loss is {loss} at iteration {iter} (epoch {epoch}, batch {b}); stopped.\n  last good snapshot: {kept}\n  help: lower base_lr, or set (or lower) clip_gradients, in {}; then continue the run with `lvc train --solver {} --dataset {}{batch_arg} --resume {}`",
                        args.solver.display(),
                        shell_word(&args.solver),
                        shell_word(dataset_path),
                        shell_word(&run),
                    )));
                }
                loss_sum += loss;
                lr = *rate;
            }
            progress.iteration(epoch, epochs, b, per_epoch, &event);
        }
        let val = score(&segmenter, &val_split, 0..val_split.len()).map_err(|e| report(1, e))?;
        let train = score(
            &segmenter,
            &train_split,
            train_sample(train_split.len(), val_split.len()).into_iter(),
        )
        .map_err(|e| report(1, e))?;
        progress.clear_line();
        let record = EpochRecord {
            epoch,
            iterations: trainer.iter,
            train_loss: loss_sum / per_epoch as f64,
            val_loss: val.loss,
            val_accuracy: val.accuracy,
            val_dice: val.dice,
            train_dice: Some(train.dice),
            val_class_dice: val.class_dice,
            lr,
            seconds: started.elapsed().as_secs_f64(),
        };
        // What a kill -9 may interrupt: each file below is written atomically
        // (temp + rename), and metrics.json, written last, is what makes the
        // epoch count as finished. The weights go before the solver state
        // (which names them), then best, then metrics.json: once metrics.json
        // lists epoch N, its weights and state are both complete. A kill
        // before that leaves epoch N unfinished; --resume trains it again from
        // epoch N-1's files and rewrites the same bytes.
        trainer.write_snapshot(&snapshot_path(&run, epoch)).map_err(|e| report(1, e))?;
        if record.val_dice > best {
            best = record.val_dice;
            save_weights(&trainer.net, &run.join(BEST_WEIGHTS))?;
        }
        outln!(
            "epoch {epoch}/{epochs}: train_loss {:.4}  train_dice {:.4}  val_loss {:.4}  val_accuracy {:.4}  val_dice {:.4}  ({:.1} s)",
            record.train_loss, train.dice, record.val_loss, record.val_accuracy, record.val_dice, record.seconds
        );
        history.push(record);
        write_json(
            &run.join(METRICS_JSON),
            &Metrics::new(dataset.manifest.classes.clone(), history.clone()),
        )?;
    }
    let metrics = Metrics::new(dataset.manifest.classes.clone(), history);
    outln!(
        "done: val_dice {:.4} (best {:.4} at epoch {}), val_accuracy {:.4}; {} and {}",
        metrics.val_dice,
        metrics.best_val_dice,
        metrics.best_epoch,
        metrics.val_accuracy,
        run.join(METRICS_JSON).display(),
        run.join(BEST_WEIGHTS).display()
    );
    // curves.png and report.html for people (`lvc report --run RUN` redraws
    // them after `lvc evaluate`/`lvc infer`); the training stands either way.
    match crate::report::write_run_report(&run, None, None) {
        Ok(written) => outln!("report: {}", written.report.display()),
        Err(err) => errln!("warning: {:?}", miette::Report::new(err)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_sample_spans_the_split_at_the_size_of_val() {
        assert_eq!(train_sample(236, 52).len(), 52);
        assert_eq!(train_sample(236, 52).last(), Some(&(51 * 236 / 52)));
        assert_eq!(train_sample(100, 4), (0..16).map(|k| k * 100 / 16).collect::<Vec<_>>());
        assert_eq!(train_sample(5, 52), vec![0, 1, 2, 3, 4]);
        assert!(train_sample(0, 3).is_empty());
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation_that_changes_per_epoch() {
        let split = SplitData {
            split: lvc_data::sunnybrook::import::Split::Train,
            shape: [10, 1, 2, 2],
            images: (0..40).map(|v| v as f32).collect(),
            labels: vec![0; 40],
            records: Vec::new(),
        };
        let first = EpochBatches::new(&split, 7, 1, 2, tch::Device::Cpu).order;
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_eq!(first, EpochBatches::new(&split, 7, 1, 2, tch::Device::Cpu).order);
        assert_ne!(first, EpochBatches::new(&split, 7, 2, 2, tch::Device::Cpu).order);
    }

    #[test]
    fn batches_hold_the_shuffled_images_and_their_labels() {
        let split = SplitData {
            split: lvc_data::sunnybrook::import::Split::Train,
            shape: [3, 1, 1, 2],
            images: vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0],
            labels: vec![0, 1, 1, 1, 0, 0],
            records: Vec::new(),
        };
        let mut batches = EpochBatches::new(&split, 3, 1, 2, tch::Device::Cpu);
        let order = batches.order.clone();
        let inputs = batches.next_batch(Phase::Train).unwrap_or_default();
        assert_eq!(inputs[0].1.size(), vec![2, 1, 1, 2]);
        let data = Vec::<f32>::try_from(inputs[0].1.flatten(0, -1)).unwrap_or_default();
        assert_eq!(data[..2], split.image(order[0]).to_vec()[..]);
        let label = Vec::<f32>::try_from(inputs[1].1.flatten(0, -1)).unwrap_or_default();
        assert_eq!(
            label[2..],
            split.label(order[1]).iter().map(|&v| f32::from(v)).collect::<Vec<_>>()[..]
        );
        assert!(batches.next_batch(Phase::Test).is_err());
    }

    #[test]
    fn shell_words_quote_what_a_shell_would_split() {
        assert_eq!(shell_word(Path::new("runs/r1")), "runs/r1");
        assert_eq!(shell_word(Path::new("my runs/it's")), r"'my runs/it'\''s'");
        assert_eq!(shell_word(Path::new("a$b")), "'a$b'");
    }

    #[test]
    fn clock_formats_hours_minutes_seconds() {
        assert_eq!(clock(3725.4), "1:02:05");
        assert_eq!(clock(-3.0), "0:00:00");
    }
}
