//! Checking a resume against the recorded run, and keeping its changes in
//! run.json.

use std::path::Path;

use lvc_compiler::schema::solver::SolverDef;
use lvc_compiler::schema::{load_solver, LoadOptions};
use lvc_compiler::SourceFile;
use serde_json::{json, Value};

use super::fields::{solver_changes, Change, FieldClass};
use crate::failure::{fail, Failed};
use crate::run_folder::{RunConfig, SettingChange, BEST_WEIGHTS, RUN_JSON};

/// What a resume may go on with.
pub struct Accepted {
    /// Tunable changes, for run.json.
    pub changes: Vec<Change>,
    /// Whether the learning-rate schedule may differ from the one the
    /// snapshots were trained on (changed, or unknown for an earlier run.json):
    /// multistep's position is then recomputed rather than restored.
    pub schedule_changed: bool,
}

/// A solver text as `load_solver` reads it, without printing its
/// diagnostics (they were shown when the run started, or just now by train).
fn quietly(source: &SourceFile) -> Option<SolverDef> {
    let (def, diags) = load_solver(source, &LoadOptions::default());
    def.filter(|_| !diags.has_errors())
}

/// Checks that resuming `recorded` with `now` (trained from `solver`, as
/// written: `train` overrides max_iter in its own copy) continues the same
/// run. Every breaking change is reported; none means the tunable ones are
/// returned and the unused ones noted on stderr.
pub fn check_resume(
    run: &Path,
    recorded: &RunConfig,
    now: &RunConfig,
    solver: &SourceFile,
) -> Result<Accepted, Failed> {
    let run_json = run.join(RUN_JSON);
    // Under the path run.json records for it (absolute), as the recorded
    // text is read: defaults derived from the path (snapshot_prefix) agree.
    let Some(def) = quietly(&SourceFile::new(now.solver.clone(), solver.text.clone())) else {
        return Err(fail(2, format!("{} is not a usable solver", solver.path.display())));
    };
    let old = recorded.solver_text.as_deref().and_then(|text| {
        let old = quietly(&SourceFile::new(recorded.solver.clone(), text));
        if old.is_none() {
            errln!(
                "warning: the solver recorded in {} no longer loads; comparing by its SHA-256 only",
                run_json.display()
            );
        }
        old
    });
    let def = &def;
    let changes = old.as_ref().map(|old| solver_changes(old, def)).unwrap_or_default();
    let mut refused: Vec<(&'static str, String)> = Vec::new();
    for change in &changes {
        if let FieldClass::Breaking(why) = change.class() {
            refused.push((
                change.field,
                format!("{} changed from {} to {}: {why}", change.field, change.from, change.to),
            ));
        }
    }
    // What run.json records itself, checked for every run.json (an earlier
    // lvc's has no solver text); a field already named above is not named twice.
    let mut also = |field: &'static str, differs: bool, message: &dyn Fn() -> String| {
        if differs && !refused.iter().any(|(f, _)| *f == field) {
            refused.push((field, message()));
        }
    };
    also("dataset", recorded.dataset_manifest_sha256 != now.dataset_manifest_sha256, &|| {
        format!(
            "the dataset changed: the manifest of {} is not the one run.json recorded (of {}): the epochs are drawn from the run's train split",
            now.dataset.display(),
            recorded.dataset.display()
        )
    });
    also("batch size", recorded.batch_size != now.batch_size, &|| {
        format!("the batch size changed from {} to {}: the iterations per epoch and the snapshots' iterations follow it", recorded.batch_size, now.batch_size)
    });
    also("net", recorded.model_sha256 != now.model_sha256, &|| {
        match (&recorded.model, &now.model) {
        (Some(trained), Some(model)) if trained == model => format!(
            "the net changed: {} was edited since the run was trained (its SHA-256 is not run.json's model_sha256): the snapshots hold the weights of the net as it was",
            model.display()
        ),
        (Some(trained), Some(model)) => format!(
            "the net changed: {} is not {}, the net the run was trained with (by run.json's model_sha256): the snapshots hold that net's weights",
            model.display(),
            trained.display()
        ),
        (from, to) => {
            let label = |m: &Option<std::path::PathBuf>| m.as_ref().map_or_else(|| "an inline net_param".to_string(), |p| p.display().to_string());
            format!("net changed from {} to {}: the snapshots hold the weights of the net the run was trained with", label(from), label(to))
        }
    }
    });
    also("train_state", recorded.train_stages != now.train_stages, &|| {
        format!(
            "the train stages changed from {:?} to {:?}: they select the layers of the run's net",
            recorded.train_stages, now.train_stages
        )
    });
    also("test_state", recorded.val_stages != now.val_stages, &|| {
        format!(
            "the val stages changed from {:?} to {:?}: the val net scores every epoch",
            recorded.val_stages, now.val_stages
        )
    });
    let same_batches = recorded.batch_size == now.batch_size
        && recorded.dataset_manifest_sha256 == now.dataset_manifest_sha256;
    also(
        "iter_size",
        same_batches && recorded.iterations_per_epoch != now.iterations_per_epoch,
        &|| {
            format!(
            "an epoch is now {} iterations, the run's were {} (iter_size changed): the snapshots no longer fall on epoch ends",
            now.iterations_per_epoch, recorded.iterations_per_epoch
        )
        },
    );
    also(
        "random_seed",
        old.is_none() && def.random_seed >= 0 && def.random_seed as u64 != recorded.seed,
        &|| {
            format!("random_seed is now {}, the run's seed is {}: the run's shuffles, dropout and augmentation are drawn from its seed", def.random_seed, recorded.seed)
        },
    );
    if let Some(((_, last), first)) = refused.split_last() {
        for (_, message) in first {
            errln!("error: cannot resume {}: {message}", run.display());
        }
        return Err(fail(
            2,
            format!(
                "cannot resume {}: {last}\n  help: resume with the setting run.json records (learning-rate settings, momentum, weight decay and clip_gradients may change), or start a new run with --out NEW (--weights {} carries the weights over)",
                run.display(),
                run.join(BEST_WEIGHTS).display()
            ),
        ));
    }

    for change in &changes {
        if let FieldClass::Unused(why) = change.class() {
            errln!(
                "note: {} changed from {} to {}; it has no effect here: {why}",
                change.field,
                change.from,
                change.to
            );
        }
    }
    let changes: Vec<Change> =
        changes.into_iter().filter(|c| c.class() == FieldClass::Tunable).collect();
    let unknown = old.is_none() && recorded.solver_sha256 != now.solver_sha256;
    if unknown {
        errln!(
            "warning: {} (from an earlier lvc) keeps the solver's SHA-256 but not its settings, so the changes to {} cannot be listed; the net, dataset, batch size, stages, seed and iterations per epoch were checked, the solver type is checked against the snapshot, and the rest take effect now",
            run_json.display(),
            now.solver.display()
        );
    }
    let schedule_changed = unknown
        || changes.iter().any(|c| {
            matches!(
                c.field,
                "base_lr" | "lr_policy" | "gamma" | "power" | "stepsize" | "stepvalue"
            )
        });
    let mut accepted = changes;
    if unknown {
        accepted.push(Change {
            field: "solver",
            from: json!(recorded.solver_sha256),
            to: json!(now.solver_sha256),
        });
    }
    Ok(Accepted { changes: accepted, schedule_changed })
}

/// Adds `change`, first trained in `epoch`, to run.json's list. An entry for
/// the same field from `epoch` on is one whose epoch never finished (a
/// resume that was itself interrupted, then resumed again): it is folded
/// into this one, and dropped when the value is back where it was, so the
/// list says what the finished epochs were trained with.
pub fn record_change(
    list: &mut Vec<SettingChange>,
    epoch: u32,
    field: &str,
    from: Value,
    to: Value,
) {
    let mut from = from;
    if let Some(at) = list.iter().position(|c| c.field == field && c.epoch >= epoch) {
        from = list.remove(at).from;
        list.retain(|c| !(c.field == field && c.epoch >= epoch));
    }
    if from != to {
        list.push(SettingChange { epoch, field: field.to_string(), from, to });
    }
}
