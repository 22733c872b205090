//! Augment through the compiler and the executor: a TRAIN-only layer after
//! the inputs, seeded by the net's seed, absent from the TEST net.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use lvc_compiler::ir::{compile, CompileOptions};
use lvc_compiler::schema::Phase;
use lvc_compiler::SourceFile;
use lvc_runtime::exec::{Net, Plan};
use lvc_runtime::tch::{Device, Kind, Tensor};

mod test_device;
use test_device::test_device;

const NET: &str = r#"
name: "augmented"
layer { name: "data" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 2 dim: 1 dim: 12 dim: 12 } shape { dim: 2 dim: 1 dim: 12 dim: 12 } } }
layer { name: "augment" type: "Augment" bottom: "data" bottom: "label" top: "data_aug" top: "label_aug"
  include { phase: TRAIN }
  augment_param { seed: 3 flip_prob: 0.5 rot90_prob: 0.5 affine_prob: 0.8 max_rotation_deg: 15 max_scale: 0.1
    max_shift: 0.05 elastic_prob: 0.5 elastic_alpha: 2 elastic_sigma: 3 noise_prob: 1 noise_std: 0.1 } }
layer { name: "score" type: "Convolution" bottom: "data_aug" top: "score"
  include { phase: TRAIN }
  convolution_param { num_output: 2 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label_aug" top: "loss" include { phase: TRAIN } }
layer { name: "score_test" type: "Convolution" bottom: "data" top: "score_test"
  include { phase: TEST }
  convolution_param { num_output: 2 kernel_size: 3 pad: 1 } }
"#;

fn net(phase: Phase, seed: u64) -> Net {
    let source = SourceFile::new("augmented.prototxt", NET);
    let compiled = compile(&source, &CompileOptions { phase, ..CompileOptions::default() });
    assert!(compiled.is_ok(), "{:#?}", compiled.diags);
    let (Some(graph), Some(def)) = (compiled.graph.as_ref(), compiled.net.as_ref()) else {
        panic!("no graph")
    };
    Net::new(Plan::from_graph(graph, def).unwrap(), test_device(), seed).unwrap()
}

fn inputs() -> Vec<(&'static str, Tensor)> {
    let label = Tensor::arange(2 * 12 * 12, (Kind::Float, Device::Cpu))
        .reshape([2, 1, 12, 12])
        .remainder(5.0)
        .ge(3.0)
        .to_kind(Kind::Float);
    vec![("data", &label * 0.5 + 0.1), ("label", label)]
}

/// The augmented image and label of one forward pass.
fn augmented(net: &Net) -> (Vec<f32>, Vec<f32>) {
    let blobs = net.forward(&inputs()).unwrap();
    let get = |name: &str| {
        let id = net.plan.blob_id(name).unwrap();
        Vec::<f32>::try_from(blobs.get(id).unwrap().flatten(0, -1)).unwrap()
    };
    (get("data_aug"), get("label_aug"))
}

#[test]
fn training_nets_with_the_same_seed_augment_alike_batch_after_batch() {
    let (a, b) = (net(Phase::Train, 42), net(Phase::Train, 42));
    let first = augmented(&a);
    assert_eq!(first, augmented(&b));
    let second = augmented(&a);
    assert_ne!(first.0, second.0, "each batch draws anew");
    assert_eq!(second, augmented(&b));
    assert_ne!(first.0, augmented(&net(Phase::Train, 43)).0, "the solver seed enters the stream");
    assert!(first.1.iter().all(|v| *v == 0.0 || *v == 1.0), "labels stay labels");
    let loss = net(Phase::Train, 42)
        .forward(&inputs())
        .unwrap()
        .loss
        .map(|l| f64::try_from(l.detach()).unwrap());
    assert!(loss.is_some_and(f64::is_finite));
}

#[test]
fn the_test_net_has_no_augment_step() {
    let test = net(Phase::Test, 42);
    assert!(test.plan.steps.iter().all(|s| s.kind != "Augment"));
    assert!(test.forward(&inputs()).is_ok());
}

#[test]
fn bottoms_off_the_image_grid_are_reported_at_lowering() {
    let text = r#"
layer { name: "data" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 2 dim: 1 dim: 12 dim: 12 } shape { dim: 2 dim: 1 dim: 10 dim: 12 } } }
layer { name: "augment" type: "Augment" bottom: "data" bottom: "label" top: "data_aug" top: "label_aug"
  augment_param { flip_prob: 0.5 } }
"#;
    let source = SourceFile::new("off_grid.prototxt", text);
    let compiled =
        compile(&source, &CompileOptions { phase: Phase::Train, ..CompileOptions::default() });
    let (Some(graph), Some(def)) = (compiled.graph.as_ref(), compiled.net.as_ref()) else {
        panic!("{:#?}", compiled.diags)
    };
    let errors = Plan::from_graph(graph, def).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code, "lvc::runtime::unsupported");
    assert!(errors[0].message.contains("pixel grid"), "{}", errors[0].message);
}

#[test]
fn in_place_augment_feeds_the_later_layers_under_the_same_names() {
    // As in models/fcn_alexnet.prototxt: tops named like the bottoms.
    let text = NET
        .replace("top: \"data_aug\" top: \"label_aug\"", "top: \"data\" top: \"label\"")
        .replace("\"data_aug\"", "\"data\"")
        .replace("\"label_aug\"", "\"label\"");
    let source = SourceFile::new("in_place.prototxt", text.as_str());
    let compiled =
        compile(&source, &CompileOptions { phase: Phase::Train, ..CompileOptions::default() });
    let (Some(graph), Some(def)) = (compiled.graph.as_ref(), compiled.net.as_ref()) else {
        panic!("{:#?}", compiled.diags)
    };
    let in_place = Net::new(Plan::from_graph(graph, def).unwrap(), test_device(), 42).unwrap();
    let blobs = in_place.forward(&inputs()).unwrap();
    let last = in_place.plan.final_blobs();
    let value = |name: &str| {
        let id = last.iter().find(|(n, _)| n == name).map(|(_, id)| *id).unwrap();
        Vec::<f32>::try_from(blobs.get(id).unwrap().flatten(0, -1)).unwrap()
    };
    let fed = Vec::<f32>::try_from(inputs()[0].1.flatten(0, -1)).unwrap();
    assert_ne!(value("data"), fed, "the later layers read the augmented data");
    assert_eq!(
        value("data"),
        augmented(&net(Phase::Train, 42)).0,
        "in place or not, the same draws"
    );
}

/// The `augment` stage of models/fcn_alexnet.prototxt and models/fcn8s.prototxt.
#[test]
fn the_segmentation_models_augment_only_when_training_with_the_augment_stage() {
    for model in ["fcn_alexnet", "fcn8s"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../models/{model}.prototxt"));
        let source = SourceFile::read(&path).unwrap();
        for (phase, stages, augments) in [
            (Phase::Train, &["train", "augment"][..], true),
            (Phase::Train, &["train", "augment", "dice-loss"][..], true),
            (Phase::Train, &["train"][..], false),
            (Phase::Test, &["val", "augment"][..], false),
            (Phase::Test, &["deploy"][..], false),
        ] {
            let options = CompileOptions {
                phase,
                stages: stages.iter().map(ToString::to_string).collect(),
                ..CompileOptions::default()
            };
            let compiled = compile(&source, &options);
            assert!(compiled.is_ok(), "{model} {stages:?}: {:#?}", compiled.diags);
            let (Some(graph), Some(def)) = (compiled.graph.as_ref(), compiled.net.as_ref()) else {
                panic!("{model}: no graph")
            };
            let plan = Plan::from_graph(graph, def)
                .unwrap_or_else(|e| panic!("{model} {stages:?}: {e:#?}"));
            assert_eq!(
                plan.steps.iter().any(|s| s.kind == "Augment"),
                augments,
                "{model} {stages:?}"
            );
        }
    }
}
