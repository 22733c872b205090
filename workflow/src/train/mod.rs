//! Training a solver on an lvc dataset: epochs over the train split on top
//! of the solver loop (`lvc_runtime::solver::Trainer::step`), validation on
//! the val split after every epoch, and the run folder (see
//! [`crate::run_folder`]):
//!
//! - `run.json` — what the run was trained from (written first);
//! - `snapshots/epoch-N.safetensors` and its solver state
//!   `snapshots/epoch-N.solverstate.safetensors` (optimizer history,
//!   iteration, lr-policy step, dropout and augmentation streams);
//!   `best.safetensors` (best val Dice);
//! - `metrics.json` — written last in each epoch, so it only ever names
//!   epochs whose weights and state are complete; a resume continues after
//!   its last epoch (a kill loses at most the epoch in progress) and ends
//!   with the weights and metrics the uninterrupted run would have had.
//!
//! Progress is reported as [`TrainEvent`]s, in the order things happen; the
//! command line prints them, and anything else (a log, a server's event
//! stream) can take the same events.

use std::path::{Path, PathBuf};
use std::time::Instant;

use lvc_fsio::FolderLock;
use lvc_runtime::solver::Event;

use crate::failure::{fail, report, Failed};
use crate::net::save_weights;
use crate::run_folder::{
    snapshot_path, write_json, EpochRecord, Metrics, BEST_WEIGHTS, METRICS_JSON,
};

mod batches;
mod events;
pub mod fed;
mod request;
mod setup;

pub use events::TrainEvent;
pub use request::DatasetTraining;

use batches::{score, train_sample, EpochBatches};

/// A finished training: its run folder, and the run's lock, held until the
/// caller is done writing into it (the report).
pub struct Trained {
    pub run: PathBuf,
    pub lock: Option<FolderLock>,
}

/// Trains `request`'s epochs, reporting progress to `on_event`.
pub fn train_on_dataset(
    request: &DatasetTraining,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<Trained, Failed> {
    let setup::Prepared {
        run,
        lock,
        dataset,
        train_split,
        val_split,
        seed,
        batch,
        per_epoch,
        epochs,
        mut history,
        mut trainer,
        segmenter,
        display,
    } = setup::prepare(request, on_event)?;
    let done = history.last().map_or(0, |e| e.epoch);
    on_event(&TrainEvent::Started {
        dataset: request.dataset.clone(),
        run: run.clone(),
        train_images: train_split.len(),
        val_images: val_split.len(),
        batch_size: batch,
        iterations_per_epoch: per_epoch,
        first_epoch: done + 1,
        epochs,
        seed,
        display,
    });
    let device = request.device;
    let mut best = history.iter().map(|e| e.val_dice).fold(f64::NEG_INFINITY, f64::max);
    for epoch in done + 1..=epochs {
        let started = Instant::now();
        let mut batches = EpochBatches::new(&train_split, seed, epoch, batch as usize, device);
        let (mut loss_sum, mut lr) = (0.0, 0.0);
        for b in 1..=per_epoch {
            let event = trainer.step(&mut batches).map_err(|e| report(1, e))?;
            if let Event::Iteration { iter, loss, lr: rate, .. } = &event {
                if !loss.is_finite() {
                    on_event(&TrainEvent::Diverged { epoch, batch: b, iter: *iter, loss: *loss });
                    return Err(diverged(request, &run, epoch, b, *iter, *loss));
                }
                loss_sum += loss;
                lr = *rate;
                on_event(&TrainEvent::Iteration {
                    epoch,
                    epochs,
                    batch: b,
                    batches: per_epoch,
                    iter: *iter,
                    loss: *loss,
                    lr: *rate,
                });
            }
        }
        let val = score(&segmenter, &val_split, 0..val_split.len()).map_err(|e| report(1, e))?;
        let train = score(
            &segmenter,
            &train_split,
            train_sample(train_split.len(), val_split.len()).into_iter(),
        )
        .map_err(|e| report(1, e))?;
        on_event(&TrainEvent::Validated { epoch, val_dice: val.dice, train_dice: train.dice });
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
        // before that leaves epoch N unfinished; a resume trains it again from
        // epoch N-1's files and rewrites the same bytes.
        let snapshot = snapshot_path(&run, epoch);
        let state = trainer.write_snapshot(&snapshot).map_err(|e| report(1, e))?;
        on_event(&TrainEvent::SnapshotWritten { epoch, weights: snapshot, state });
        if record.val_dice > best {
            best = record.val_dice;
            save_weights(&trainer.net, &run.join(BEST_WEIGHTS))?;
            on_event(&TrainEvent::BestWeights {
                epoch,
                val_dice: best,
                path: run.join(BEST_WEIGHTS),
            });
        }
        on_event(&TrainEvent::EpochFinished { epochs, record: record.clone() });
        history.push(record);
        write_json(
            &run.join(METRICS_JSON),
            &Metrics::new(dataset.manifest.classes.clone(), history.clone()),
        )?;
    }
    let metrics = Metrics::new(dataset.manifest.classes.clone(), history);
    on_event(&TrainEvent::Finished {
        val_dice: metrics.val_dice,
        best_val_dice: metrics.best_val_dice,
        best_epoch: metrics.best_epoch,
        val_accuracy: metrics.val_accuracy,
        metrics: run.join(METRICS_JSON),
        best_weights: run.join(BEST_WEIGHTS),
    });
    Ok(Trained { run, lock })
}

/// Reports a loss that stopped being finite: where, the last good
/// snapshot, and the command that continues the run once the solver is
/// fixed.
fn diverged(
    request: &DatasetTraining,
    run: &Path,
    epoch: u32,
    batch: i64,
    iter: i64,
    loss: f64,
) -> Failed {
    let kept = if epoch > 1 {
        snapshot_path(run, epoch - 1).display().to_string()
    } else {
        "none (no epoch finished)".to_string()
    };
    // resume lets the rate settings and clipping change; the command
    // repeats --batch-size, which a resume checks.
    let batch_arg = request.batch_size.map_or_else(String::new, |b| format!(" --batch-size {b}"));
    fail(1, format!(
        "the training loss is {loss} at iteration {iter} (epoch {epoch}, batch {batch}); stopped.\n  last good snapshot: {kept}\n  help: lower base_lr, or set (or lower) clip_gradients, in {}; then continue the run with `lvc train --solver {} --dataset {}{batch_arg} --resume {}`",
        request.solver_path.display(),
        shell_word(&request.solver_path),
        shell_word(&request.dataset),
        shell_word(run),
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_quote_what_a_shell_would_split() {
        assert_eq!(shell_word(Path::new("runs/r1")), "runs/r1");
        assert_eq!(shell_word(Path::new("my runs/it's")), r"'my runs/it'\''s'");
        assert_eq!(shell_word(Path::new("a$b")), "'a$b'");
    }

    #[test]
    fn events_serialize_tagged_for_logs_and_streams() {
        let event = TrainEvent::Diverged { epoch: 2, batch: 3, iter: 13, loss: 1.5 };
        let json = serde_json::to_value(&event).unwrap_or_default();
        assert_eq!(json["event"], "diverged");
        assert_eq!((json["epoch"].as_u64(), json["iter"].as_i64()), (Some(2), Some(13)));
    }
}
