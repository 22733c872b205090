//! What `lvc train --dataset DS --resume RUN` may change, and how a change
//! is kept in run.json.
//!
//! A divergence stops with "lower base_lr …, then --resume RUN", so a
//! resume must take an edited solver. It compares the solver field by field
//! with the one run.json recorded (`solver_text`), and every field of
//! Caffe's `SolverParameter` is in one class ([`class_of`]):
//!
//! - **Tunable** — the learning-rate schedule (`base_lr`, `lr_policy`,
//!   `gamma`, `power`, `stepsize`, `stepvalue`), the optimizer's
//!   hyperparameters (`momentum`, `momentum2`, `delta`, `rms_decay`,
//!   `weight_decay`, `regularization_type`) and `clip_gradients`. None of
//!   them changes what the snapshots hold (weights and history blobs of the
//!   same shapes, for the same solver type), and Caffe itself takes them
//!   from the solver when it restores a `.solverstate`. The resumed epochs
//!   use the new values; run.json's `changes` records each one with the
//!   first epoch trained with it.
//! - **Output** — `display`: what is printed, taken and not recorded.
//! - **Unused** — fields `train --dataset` does not read (snapshot and test
//!   intervals, device fields, start weights, `max_iter` once run.json has
//!   the epochs): accepted, with a note saying why they do nothing.
//! - **Breaking** — the net (its file's contents, an inline net, the train
//!   state, the val net and its state), the solver type, `iter_size` and
//!   `random_seed`, and outside the solver the dataset and the batch size.
//!   Each would make the snapshots or the metrics history belong to another
//!   run; a resume that changes one is refused, naming the field, its old
//!   and new value and why.

use std::path::Path;

use lvc_compiler::schema::print::to_prototxt;
use lvc_compiler::schema::solver::{
    LrPolicy, NetSource, Regularization, SnapshotFormat, SolverDef, SolverMode, SolverType,
};
use lvc_compiler::schema::{load_solver, LoadOptions, NetDef, NetState};
use lvc_compiler::SourceFile;
use serde_json::{json, Value};

use super::segment::{RunConfig, SettingChange};
use super::train::{fail, Failed};

/// What changing one solver field between two epochs of a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldClass {
    /// Applied from the next epoch and recorded in run.json.
    Tunable,
    /// Changes only what is printed.
    Output,
    /// Not read by `lvc train --dataset`; the text says why.
    Unused(&'static str),
    /// Refused; the text says what it would break.
    Breaking(&'static str),
}

/// The class of a `SolverParameter` field (caffe.proto's name); `None` for
/// a name that is not one (a unit test holds every descriptor field to a class).
pub fn class_of(field: &str) -> Option<FieldClass> {
    use FieldClass::*;
    Some(match field {
        "base_lr" | "lr_policy" | "gamma" | "power" | "stepsize" | "stepvalue" => Tunable,
        "momentum" | "momentum2" | "delta" | "rms_decay" | "weight_decay" | "regularization_type" => Tunable,
        "clip_gradients" => Tunable,
        "display" => Output,
        "max_iter" => Unused("a resumed run keeps the epochs recorded in run.json (--epochs N changes them)"),
        "average_loss" => Unused("each epoch reports its mean loss"),
        "test_iter" | "test_interval" | "test_initialization" | "test_compute_loss" => {
            Unused("validation runs on the whole val split after every epoch")
        }
        "snapshot" | "snapshot_prefix" | "snapshot_diff" | "snapshot_after_train" | "snapshot_format" => {
            Unused("every epoch is snapshotted into RUN/snapshots")
        }
        "solver_mode" | "device_id" => Unused("--device chooses the device"),
        "layer_wise_reduce" => Unused("lvc trains on one device"),
        "debug_info" => Unused("lvc prints no Caffe debug information"),
        "weights" => Unused("a resumed run continues from its last snapshot, not from start weights"),
        "net" | "net_param" | "train_net" | "train_net_param" => {
            Breaking("the snapshots hold the weights of the net the run was trained with")
        }
        "train_state" => Breaking("the train state selects the layers of the run's net"),
        "test_net" | "test_net_param" | "test_state" => {
            Breaking("the val net scores every epoch; another one would make the metrics history of two different measures")
        }
        "type" | "solver_type" => Breaking("the snapshots' optimizer history belongs to the run's solver type"),
        "iter_size" => Breaking("it changes the iterations per epoch, so the snapshots no longer fall on epoch ends"),
        "random_seed" => Breaking("the run's shuffles, dropout and augmentation are drawn from its seed"),
        _ => return None,
    })
}

/// One solver field that differs between two solvers.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub field: &'static str,
    pub from: Value,
    pub to: Value,
}

impl Change {
    pub fn class(&self) -> FieldClass {
        class_of(self.field).unwrap_or(FieldClass::Breaking("lvc does not know this field"))
    }
}

/// A net as far as a resume can compare it: a file by the path written in
/// the solver (its contents are compared through run.json's SHA-256), an
/// inline net by its layers printed back as text (spans, spacing and
/// comments do not count).
#[derive(Debug, Clone, PartialEq)]
enum NetId {
    File(String),
    Inline(String),
}

impl NetId {
    fn of(source: &NetSource) -> NetId {
        match source {
            NetSource::File(file) => NetId::File(file.written.value.clone()),
            NetSource::Inline(net) => NetId::Inline(net_text(net)),
        }
    }

    fn label(&self) -> Value {
        match self {
            NetId::File(path) => json!(path),
            NetId::Inline(_) => json!("an inline net_param"),
        }
    }
}

fn net_text(net: &NetDef) -> String {
    let mut text = format!(
        "name: {:?}\nforce_backward: {}\nstate: {:?}\n",
        net.name, net.force_backward, net.state
    );
    for layer in &net.layers {
        text.push_str("layer {\n");
        text.push_str(&to_prototxt(&layer.body));
        text.push_str("}\n");
    }
    text
}

fn state_value(state: &NetState) -> Value {
    json!({"phase": format!("{:?}", state.phase).to_uppercase(), "level": state.level, "stages": state.stages})
}

fn name_of<T: PartialEq + Copy>(names: &[(&'static str, T)], value: T) -> Value {
    names.iter().find(|(_, v)| *v == value).map_or(Value::Null, |(name, _)| json!(name))
}

/// The changes found so far.
struct Diff(Vec<Change>);

impl Diff {
    fn value(&mut self, field: &'static str, from: Value, to: Value) {
        if from != to {
            self.0.push(Change { field, from, to });
        }
    }

    /// Compared as the float32 Caffe reads (0.9 and 0.90000000001 are one
    /// value), kept as written (0.01, not 0.009999999776482582).
    fn float(&mut self, field: &'static str, from: f64, to: f64) {
        if from as f32 != to as f32 {
            self.0.push(Change { field, from: json!(from), to: json!(to) });
        }
    }
}

/// Every field of `new` that differs from `old`, in caffe.proto's names
/// (a removed field counts as its default). Of the test nets
/// only the first counts: it is the val net; `train --dataset` builds no
/// others.
pub fn solver_changes(old: &SolverDef, new: &SolverDef) -> Vec<Change> {
    let mut diff = Diff(Vec::new());
    // Named field by field, without `..`: a field added to SolverDef does
    // not compile here until it is compared (and classified).
    let SolverDef {
        train_net,
        train_state,
        test_nets,
        test_interval,
        test_initialization,
        test_compute_loss,
        base_lr,
        lr_policy,
        gamma,
        power,
        stepsize,
        stepvalue,
        max_iter,
        momentum,
        momentum2,
        delta,
        rms_decay,
        weight_decay,
        regularization,
        solver_type,
        iter_size,
        clip_gradients,
        random_seed,
        display,
        average_loss,
        debug_info,
        snapshot,
        snapshot_prefix,
        snapshot_diff,
        snapshot_after_train,
        snapshot_format,
        solver_mode,
        device_id,
        weights,
        body: _,
    } = old;

    match (NetId::of(train_net), NetId::of(&new.train_net)) {
        // The same file, or the same file's contents under another path:
        // the contents are checked against run.json's model_sha256.
        (NetId::File(_), NetId::File(_)) => {}
        (from, to) if from == to => {}
        (NetId::Inline(_), NetId::Inline(_)) => {
            diff.value("net", json!("an inline net_param"), json!("another inline net_param"))
        }
        (from, to) => diff.value("net", from.label(), to.label()),
    }
    diff.value("train_state", state_value(train_state), state_value(&new.train_state));
    let val = |nets: &[lvc_compiler::schema::solver::TestNet]| {
        nets.first().map(|t| (NetId::of(&t.source), t.state.clone(), t.test_iter))
    };
    match (val(test_nets), val(&new.test_nets)) {
        (Some((from, from_state, from_iter)), Some((to, to_state, to_iter))) => {
            match (&from, &to) {
                (NetId::Inline(_), NetId::Inline(_)) if from != to => {
                    diff.value(
                        "test_net",
                        json!("an inline test net"),
                        json!("another inline test net"),
                    );
                }
                _ => diff.value("test_net", from.label(), to.label()),
            }
            diff.value("test_state", state_value(&from_state), state_value(&to_state));
            diff.value("test_iter", json!(from_iter), json!(to_iter));
        }
        (from, to) => {
            let label = |v: Option<(NetId, NetState, i64)>| {
                v.map_or(json!("none (the train net in stage val)"), |(id, _, _)| id.label())
            };
            diff.value("test_net", label(from), label(to));
        }
    }
    diff.value("test_interval", json!(test_interval), json!(new.test_interval));
    diff.value("test_initialization", json!(test_initialization), json!(new.test_initialization));
    diff.value("test_compute_loss", json!(test_compute_loss), json!(new.test_compute_loss));
    diff.float("base_lr", *base_lr, new.base_lr);
    diff.value(
        "lr_policy",
        name_of(LrPolicy::NAMES, *lr_policy),
        name_of(LrPolicy::NAMES, new.lr_policy),
    );
    diff.float("gamma", *gamma, new.gamma);
    diff.float("power", *power, new.power);
    diff.value("stepsize", json!(stepsize), json!(new.stepsize));
    diff.value("stepvalue", json!(stepvalue), json!(new.stepvalue));
    diff.value("max_iter", json!(max_iter), json!(new.max_iter));
    diff.float("momentum", *momentum, new.momentum);
    diff.float("momentum2", *momentum2, new.momentum2);
    diff.float("delta", *delta, new.delta);
    diff.float("rms_decay", *rms_decay, new.rms_decay);
    diff.float("weight_decay", *weight_decay, new.weight_decay);
    let regularization_name =
        |r: Regularization| json!(if r == Regularization::L1 { "L1" } else { "L2" });
    diff.value(
        "regularization_type",
        regularization_name(*regularization),
        regularization_name(new.regularization),
    );
    let types: Vec<(&str, SolverType)> =
        SolverType::NAMES.iter().map(|&(name, _, t)| (name, t)).collect();
    diff.value("type", name_of(&types, *solver_type), name_of(&types, new.solver_type));
    diff.value("iter_size", json!(iter_size), json!(new.iter_size));
    diff.float("clip_gradients", *clip_gradients, new.clip_gradients);
    diff.value("random_seed", json!(random_seed), json!(new.random_seed));
    diff.value("display", json!(display), json!(new.display));
    diff.value("average_loss", json!(average_loss), json!(new.average_loss));
    diff.value("debug_info", json!(debug_info), json!(new.debug_info));
    diff.value("snapshot", json!(snapshot), json!(new.snapshot));
    diff.value("snapshot_prefix", json!(snapshot_prefix), json!(new.snapshot_prefix));
    diff.value("snapshot_diff", json!(snapshot_diff), json!(new.snapshot_diff));
    diff.value(
        "snapshot_after_train",
        json!(snapshot_after_train),
        json!(new.snapshot_after_train),
    );
    let format_name =
        |f: SnapshotFormat| json!(if f == SnapshotFormat::Hdf5 { "HDF5" } else { "BINARYPROTO" });
    diff.value("snapshot_format", format_name(*snapshot_format), format_name(new.snapshot_format));
    let mode_name = |m: SolverMode| json!(if m == SolverMode::Cpu { "CPU" } else { "GPU" });
    diff.value("solver_mode", mode_name(*solver_mode), mode_name(new.solver_mode));
    diff.value("device_id", json!(device_id), json!(new.device_id));
    diff.value("weights", json!(weights), json!(new.weights));
    diff.0
}

/// What a resume may go on with.
pub(super) struct Accepted {
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
pub(super) fn check_resume(
    run: &Path,
    recorded: &RunConfig,
    now: &RunConfig,
    solver: &SourceFile,
) -> Result<Accepted, Failed> {
    let run_json = run.join(super::segment::RUN_JSON);
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
                run.join(super::segment::BEST_WEIGHTS).display()
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

#[cfg(test)]
mod tests {
    use lvc_compiler::schema::descriptor::SOLVER_PARAMETER;

    use super::*;

    const BASE: &str = "net: \"tiny.prototxt\"\ntype: \"SGD\"\nbase_lr: 0.01\nmomentum: 0.9\nlr_policy: \"fixed\"\nmax_iter: 10\ndisplay: 0\nrandom_seed: 3\n";

    fn def(text: &str) -> SolverDef {
        let (def, diags) =
            load_solver(&SourceFile::new("jobs/solver.prototxt", text), &LoadOptions::default());
        def.filter(|_| !diags.has_errors()).unwrap_or_else(|| panic!("{diags:?}"))
    }

    fn changes(edit: &str) -> Vec<Change> {
        solver_changes(&def(BASE), &def(&format!("{BASE}{edit}")))
    }

    #[test]
    fn every_solver_parameter_field_has_a_class() {
        let unclassified: Vec<&str> =
            SOLVER_PARAMETER.field_names().filter(|f| class_of(f).is_none()).collect();
        assert!(unclassified.is_empty(), "classify {unclassified:?}");
        assert_eq!(class_of("not_a_field"), None);
    }

    #[test]
    fn rate_optimizer_and_clipping_settings_are_tunable() {
        let edit = "lr_policy: \"multistep\"\ngamma: 0.5\nstepvalue: 4\nstepvalue: 8\nclip_gradients: 10\nweight_decay: 0.0005\nregularization_type: \"L1\"\n";
        let found = solver_changes(
            &def(BASE),
            &def(&BASE
                .replace("base_lr: 0.01", "base_lr: 0.001")
                .replace("lr_policy: \"fixed\"\n", edit)),
        );
        let fields: Vec<&str> = found.iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            [
                "base_lr",
                "lr_policy",
                "gamma",
                "stepvalue",
                "weight_decay",
                "regularization_type",
                "clip_gradients"
            ]
        );
        assert!(found.iter().all(|c| c.class() == FieldClass::Tunable), "{found:?}");
        assert_eq!(
            (&found[0].from, &found[0].to),
            (&json!(0.01), &json!(0.001)),
            "kept as written"
        );
        assert_eq!((&found[1].from, &found[1].to), (&json!("fixed"), &json!("multistep")));
        assert_eq!(found[3].to, json!([4, 8]));
        assert_eq!((&found[6].from, &found[6].to), (&json!(-1.0), &json!(10.0)));
        for edit in [
            "momentum: 0.95\n",
            "momentum2: 0.99\n",
            "delta: 1e-6\n",
            "rms_decay: 0.9\n",
            "power: 2\n",
            "stepsize: 5\n",
        ] {
            let found = solver_changes(
                &def(BASE),
                &def(&format!("{}{edit}", BASE.replace("momentum: 0.9\n", ""))),
            );
            assert!(
                found.iter().all(|c| c.class() == FieldClass::Tunable) && !found.is_empty(),
                "{edit}: {found:?}"
            );
        }
    }

    #[test]
    fn the_same_value_written_differently_is_no_change() {
        assert!(changes("").is_empty());
        let respelled = BASE
            .replace("base_lr: 0.01", "base_lr: 1e-2")
            .replace("momentum: 0.9", "momentum: 0.90000000001");
        assert!(solver_changes(&def(BASE), &def(&format!("# edited\n{respelled}"))).is_empty());
        // Another path to a net file: its contents are what counts (model_sha256).
        assert!(solver_changes(
            &def(BASE),
            &def(&BASE.replace("tiny.prototxt", "../jobs/tiny.prototxt"))
        )
        .is_empty());
    }

    #[test]
    fn net_solver_type_iter_size_and_seed_are_breaking() {
        let cases = [
            ("type: \"SGD\"", "type: \"Adam\"", "type", json!("SGD"), json!("Adam")),
            ("random_seed: 3", "random_seed: 4", "random_seed", json!(3), json!(4)),
            ("display: 0", "display: 0\niter_size: 2", "iter_size", json!(1), json!(2)),
            (
                "display: 0",
                "display: 0\ntrain_state { stage: \"x\" }",
                "train_state",
                json!({"phase": "TRAIN", "level": 0, "stages": []}),
                json!({"phase": "TRAIN", "level": 0, "stages": ["x"]}),
            ),
            (
                "display: 0",
                "display: 0\ntest_net: \"val.prototxt\"\ntest_iter: 1\ntest_interval: 5",
                "test_net",
                json!("none (the train net in stage val)"),
                json!("val.prototxt"),
            ),
        ];
        for (from, to, field, old, new) in cases {
            let found = solver_changes(&def(BASE), &def(&BASE.replace(from, to)));
            let change = found
                .iter()
                .find(|c| c.field == field)
                .unwrap_or_else(|| panic!("{field}: {found:?}"));
            assert!(matches!(change.class(), FieldClass::Breaking(_)), "{change:?}");
            assert_eq!((&change.from, &change.to), (&old, &new), "{field}");
        }
    }

    #[test]
    fn inline_nets_compare_by_their_layers() {
        let inline = |layers: &str| {
            def(&BASE.replace(
                "net: \"tiny.prototxt\"",
                &format!("net_param {{ name: \"n\" layer {{ name: \"data\" type: \"Input\" top: \"data\" input_param {{ shape {{ dim: 1 dim: 1 dim: 4 dim: 4 }} }} }} {layers} }}"),
            ))
        };
        let a = inline("layer { name: \"c\" type: \"Convolution\" bottom: \"data\" top: \"c\" convolution_param { num_output: 2 kernel_size: 1 } }");
        let spaced = inline("layer {  name: \"c\"   type: \"Convolution\" bottom: \"data\" top: \"c\"\n convolution_param { num_output: 2 kernel_size: 1 } }");
        let b = inline("layer { name: \"c\" type: \"Convolution\" bottom: \"data\" top: \"c\" convolution_param { num_output: 3 kernel_size: 1 } }");
        assert!(solver_changes(&a, &spaced).is_empty());
        let found = solver_changes(&a, &b);
        assert_eq!(found.iter().map(|c| c.field).collect::<Vec<_>>(), ["net"]);
        assert_eq!(solver_changes(&def(BASE), &a)[0].to, json!("an inline net_param"));
    }

    #[test]
    fn unused_and_output_fields_are_classed_so() {
        let found = changes("snapshot: 5\ntest_interval: 3\nsolver_mode: CPU\nweights: \"w.caffemodel\"\naverage_loss: 4\n");
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found.iter().all(|c| matches!(c.class(), FieldClass::Unused(_))), "{found:?}");
        let found = solver_changes(
            &def(BASE),
            &def(&BASE.replace("display: 0", "display: 5").replace("max_iter: 10", "max_iter: 20")),
        );
        assert_eq!(found.iter().map(|c| c.field).collect::<Vec<_>>(), ["max_iter", "display"]);
        assert!(
            matches!(found[0].class(), FieldClass::Unused(why) if why.contains("--epochs")),
            "{found:?}"
        );
        assert_eq!(found[1].class(), FieldClass::Output);
    }

    #[test]
    fn run_json_reads_with_and_without_the_solver_text_and_changes() {
        let config = RunConfig {
            solver: "/jobs/solver.prototxt".into(),
            solver_sha256: "ab".into(),
            model: None,
            model_sha256: None,
            train_stages: vec![],
            val_stages: vec!["val".into()],
            dataset: "/ds".into(),
            dataset_manifest_sha256: "cd".into(),
            split: json!({"kind": "patient"}),
            classes: vec!["background".into(), "left_ventricle".into()],
            image_shape: [1, 256, 256],
            seed: 3,
            batch_size: 2,
            epochs: 2,
            iterations_per_epoch: 5,
            weights: None,
            adapt: vec![],
            device: "cpu".into(),
            lvc_version: "0.1.0".into(),
            torch: super::super::segment::TorchVersion {
                tch_crate: "0.24.0".into(),
                libtorch: None,
            },
            solver_text: None,
            changes: vec![],
        };
        let old = serde_json::to_value(&config).unwrap_or_default();
        assert!(
            old.get("solver_text").is_none() && old.get("changes").is_none(),
            "written as an earlier lvc wrote it: {old}"
        );
        assert_eq!(serde_json::from_value::<RunConfig>(old).ok().as_ref(), Some(&config));
        let mut changes = Vec::new();
        record_change(&mut changes, 2, "base_lr", json!(0.01), json!(0.005));
        let new = RunConfig { solver_text: Some(BASE.into()), changes, ..config };
        let text = serde_json::to_string(&new).unwrap_or_default();
        assert!(
            text.contains(r#""changes":[{"epoch":2,"field":"base_lr","from":0.01,"to":0.005}]"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<RunConfig>(&text).ok(), Some(new));
    }

    #[test]
    fn a_change_redone_before_its_epoch_finished_is_folded() {
        let mut list = Vec::new();
        record_change(&mut list, 2, "base_lr", json!(0.01), json!(0.001));
        record_change(&mut list, 4, "base_lr", json!(0.001), json!(0.0005));
        assert_eq!(list.len(), 2);
        // Epoch 4 was interrupted; resumed at epoch 4 again with another rate.
        record_change(&mut list, 4, "base_lr", json!(0.0005), json!(0.0002));
        assert_eq!(
            list[1],
            SettingChange {
                epoch: 4,
                field: "base_lr".into(),
                from: json!(0.001),
                to: json!(0.0002)
            }
        );
        // … and then back to the rate epoch 3 finished with: nothing changed.
        record_change(&mut list, 4, "base_lr", json!(0.0002), json!(0.001));
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].epoch, 2);
    }
}
