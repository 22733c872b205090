//! What a resume may change, field by field; run.json with and without
//! the fields later lvc added.

use lvc_compiler::schema::descriptor::SOLVER_PARAMETER;
use lvc_compiler::schema::solver::SolverDef;
use lvc_compiler::schema::{load_solver, LoadOptions};
use lvc_compiler::SourceFile;
use serde_json::json;

use super::*;
use crate::run_folder::{RunConfig, SettingChange};

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
    assert_eq!((&found[0].from, &found[0].to), (&json!(0.01), &json!(0.001)), "kept as written");
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
        let change =
            found.iter().find(|c| c.field == field).unwrap_or_else(|| panic!("{field}: {found:?}"));
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
        torch: crate::run_folder::TorchVersion { tch_crate: "0.24.0".into(), libtorch: None },
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
        SettingChange { epoch: 4, field: "base_lr".into(), from: json!(0.001), to: json!(0.0002) }
    );
    // … and then back to the rate epoch 3 finished with: nothing changed.
    record_change(&mut list, 4, "base_lr", json!(0.0002), json!(0.001));
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].epoch, 2);
}
