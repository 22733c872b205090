//! Every field of Caffe's `SolverParameter` in one class, and the fields
//! that differ between two solvers.

use lvc_compiler::schema::print::to_prototxt;
use lvc_compiler::schema::solver::{
    LrPolicy, NetSource, Regularization, SnapshotFormat, SolverDef, SolverMode, SolverType,
};
use lvc_compiler::schema::{NetDef, NetState};
use serde_json::{json, Value};

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
