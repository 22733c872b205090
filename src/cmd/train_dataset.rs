//! `lvc train --dataset DS --out RUN`: the dataset options, and the
//! terminal's view of `lvc_workflow::train::train_on_dataset`'s events — a
//! redrawn progress bar with ETA on a terminal, plain lines otherwise, one
//! line per epoch and a summary — followed by the run's report.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use lvc_compiler::schema::solver::SolverDef;
use lvc_compiler::SourceFile;
use lvc_runtime::tch;
use lvc_runtime::weights::Adaptation;
use lvc_workflow::failure::Failed;
use lvc_workflow::train::{train_on_dataset, DatasetTraining, TrainEvent};

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

/// What `lvc train` passes on besides the dataset options: the solver as
/// read, where it came from, and the options shared with fed training.
pub(super) struct Solver {
    pub path: PathBuf,
    pub source: SourceFile,
    pub def: SolverDef,
    pub device: tch::Device,
    pub device_label: String,
    pub out: Option<PathBuf>,
    pub weights: Option<PathBuf>,
    /// `--log-format json`: one JSON object per training event on stdout
    /// (`{"event": "iteration", "epoch": 1, …}`), as `lvc serve` reads it.
    pub json: bool,
}

/// Trains on `dataset` and prints the progress, then writes the report.
pub(super) fn train(solver: Solver, dataset: &Path, opts: &DatasetArgs) -> Result<(), Failed> {
    let request = DatasetTraining {
        solver_path: solver.path,
        solver: solver.source,
        def: solver.def,
        device: solver.device,
        device_label: solver.device_label,
        dataset: dataset.to_path_buf(),
        out: solver.out,
        resume: opts.resume.clone(),
        weights: solver.weights,
        epochs: opts.epochs,
        batch_size: opts.batch_size,
        adapt: opts.adapt.clone(),
    };
    let mut terminal = Terminal { tty: std::io::stderr().is_terminal(), progress: None };
    let json = solver.json;
    // The lock stays held while the report is written into the run.
    let trained = train_on_dataset(&request, &mut |event| {
        if json {
            json_line(event)
        } else {
            terminal.show(event)
        }
    })?;
    // curves.png and report.html for people (`lvc report --run RUN` redraws
    // them after `lvc evaluate`/`lvc infer`); the training stands either way.
    match crate::report::write_run_report(&trained.run, None, None) {
        // stdout holds only events in JSON mode.
        Ok(written) if json => errln!("report: {}", written.report.display()),
        Ok(written) => outln!("report: {}", written.report.display()),
        Err(err) => errln!("warning: {:?}", miette::Report::new(err)),
    }
    drop(trained.lock);
    Ok(())
}

/// One event as a line of JSON on stdout, flushed at once (a reader such as
/// `lvc serve` sees each iteration as it happens). A closed stdout loses the
/// progress, not the training.
fn json_line(event: &TrainEvent) {
    if let Ok(line) = serde_json::to_string(event) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}

/// The terminal's view of a training.
struct Terminal {
    tty: bool,
    progress: Option<Progress>,
}

/// Live progress through the iterations still to train.
struct Progress {
    started: Instant,
    total: i64,
    done: i64,
    display: i64,
}

impl Terminal {
    fn show(&mut self, event: &TrainEvent) {
        match event {
            TrainEvent::SettingsChanged { from_epoch, changes } => {
                let list: Vec<String> =
                    changes.iter().map(|c| format!("{} {} → {}", c.field, c.from, c.to)).collect();
                outln!(
                    "changed from epoch {from_epoch} on (recorded in run.json): {}",
                    list.join(", ")
                );
            }
            TrainEvent::Resuming { run, after_epoch, snapshot } => {
                outln!(
                    "resuming {} after epoch {after_epoch} ({})",
                    run.display(),
                    snapshot.display()
                );
            }
            TrainEvent::WeightsAdapted { layer, what } => outln!("adapted {layer}: {what}"),
            TrainEvent::Started {
                dataset,
                run,
                train_images,
                val_images,
                batch_size,
                iterations_per_epoch,
                first_epoch,
                epochs,
                seed,
                display,
            } => {
                outln!(
                    "training {} → {}: {train_images} train / {val_images} val images, batch {batch_size}, {iterations_per_epoch} iterations per epoch, epochs {first_epoch}..={epochs}, seed {seed}",
                    dataset.display(),
                    run.display(),
                );
                let epochs_left = i64::from(epochs.saturating_sub(first_epoch - 1));
                self.progress = Some(Progress {
                    started: Instant::now(),
                    total: epochs_left * iterations_per_epoch,
                    done: 0,
                    display: *display,
                });
            }
            TrainEvent::Iteration { epoch, epochs, batch, batches, iter, loss, lr } => {
                let Some(progress) = &mut self.progress else { return };
                progress.done += 1;
                if self.tty {
                    let elapsed = progress.started.elapsed().as_secs_f64();
                    let eta =
                        elapsed / progress.done as f64 * (progress.total - progress.done) as f64;
                    let width = 24;
                    let filled = (batch * width / (*batches).max(1)) as usize;
                    let bar = format!(
                        "{}{}",
                        "#".repeat(filled),
                        "-".repeat(width as usize - filled.min(width as usize))
                    );
                    // Raw: the line-erase sequence is lvc's own, and the line
                    // holds only numbers.
                    eprint!("\r\x1b[2Kepoch {epoch}/{epochs} [{bar}] {batch}/{batches}  loss {loss:.4}  lr {lr:.3e}  ETA {}", clock(eta));
                    let _ = std::io::stderr().flush();
                } else if progress.display > 0 && iter % progress.display == 0 {
                    outln!("epoch {epoch}/{epochs} iteration {iter}: loss = {loss:.6}, lr = {lr}");
                }
            }
            TrainEvent::Diverged { .. } | TrainEvent::Validated { .. } => self.clear_line(),
            TrainEvent::SnapshotWritten { .. } | TrainEvent::BestWeights { .. } => {}
            TrainEvent::EpochFinished { epochs, record } => {
                outln!(
                    "epoch {}/{epochs}: train_loss {:.4}  train_dice {:.4}  val_loss {:.4}  val_accuracy {:.4}  val_dice {:.4}  ({:.1} s)",
                    record.epoch,
                    record.train_loss,
                    record.train_dice.unwrap_or(f64::NAN),
                    record.val_loss,
                    record.val_accuracy,
                    record.val_dice,
                    record.seconds
                );
            }
            TrainEvent::Finished {
                val_dice,
                best_val_dice,
                best_epoch,
                val_accuracy,
                metrics,
                best_weights,
            } => {
                outln!(
                    "done: val_dice {val_dice:.4} (best {best_val_dice:.4} at epoch {best_epoch}), val_accuracy {val_accuracy:.4}; {} and {}",
                    metrics.display(),
                    best_weights.display()
                );
            }
        }
    }

    fn clear_line(&self) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }
}

fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_formats_hours_minutes_seconds() {
        assert_eq!(clock(3725.4), "1:02:05");
        assert_eq!(clock(-3.0), "0:00:00");
    }
}
