//! Caffe's net-building rules on small nets: filtering, in-place versions,
//! split insertion (names and the loss-weight rule), inputs and outputs,
//! `--input-shape`, and the wiring diagnostics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod ir_support;

use ir_support::{assert_clean, codes, compile_text, options};
use lvc_compiler::ir::CompileOptions;
use lvc_compiler::schema::Phase;

const INPUT: &str = r#"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
"#;

fn net(body: &str) -> String {
    format!("{INPUT}{body}")
}

#[test]
fn splits_follow_caffe_names_and_in_place_versions() {
    let c = compile_text(
        &net(r#"
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "a" type: "ReLU" bottom: "conv1" top: "a" }
layer { name: "b" type: "Sigmoid" bottom: "conv1" top: "b" }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" bottom: "data" top: "sum" }
"#),
        &CompileOptions::default(),
    );
    // data feeds conv1 and sum (4 vs 3 channels): only wiring matters here.
    let g = c.graph.as_ref().expect("graph");
    let names: Vec<&str> = g.nodes().map(|(_, n)| n.name.as_str()).collect();
    assert_eq!(
        names,
        ["data", "data_data_0_split", "conv1", "relu1", "conv1_relu1_0_split", "a", "b", "sum"]
    );
    let split = g.node_by_name("conv1_relu1_0_split").expect("split");
    assert!(split.inserted_split);
    let split_tops: Vec<&str> = split.tops.iter().map(|&t| g.blob(t).name.as_str()).collect();
    assert_eq!(split_tops, ["conv1_relu1_0_split_0", "conv1_relu1_0_split_1"]);
    let relu = g.node_by_name("relu1").expect("relu1");
    assert!(g.blob(relu.tops[0]).in_place);
    let a = g.node_by_name("a").expect("a");
    assert_eq!(a.bottoms[0].map(|b| g.blob(b).name.as_str()), Some("conv1_relu1_0_split_0"));
    let sum = g.node_by_name("sum").expect("sum");
    assert_eq!(sum.bottoms[2].map(|b| g.blob(b).name.as_str()), Some("data_data_0_split_1"));
    // Edges carry blob names and in-place flags.
    let in_place_edges = g.graph().edge_weights().filter(|e| e.in_place).count();
    assert_eq!(in_place_edges, 1);
    assert_eq!(g.graph().edge_count(), 9);
}

#[test]
fn an_explicit_loss_weight_reserves_split_top_zero() {
    let c = compile_text(
        &net(r#"
layer { name: "sq" type: "Power" bottom: "data" top: "sq" loss_weight: 0.5 power_param { power: 2 } }
layer { name: "use" type: "ReLU" bottom: "sq" top: "use" }
"#),
        &CompileOptions::default(),
    );
    assert_clean(&c, "loss split");
    let g = c.graph.as_ref().expect("graph");
    let split = g.node_by_name("sq_sq_0_split").expect("split");
    assert_eq!(split.loss_weights, vec![0.5, 0.0]);
    assert_eq!(g.node_by_name("sq").expect("sq").loss_weights, vec![0.0]);
    let user = g.node_by_name("use").expect("use");
    assert_eq!(user.bottoms[0].map(|b| g.blob(b).name.as_str()), Some("sq_sq_0_split_1"));
    let outputs: Vec<&str> = g.outputs().iter().map(|&b| g.blob(b).name.as_str()).collect();
    assert_eq!(outputs, ["sq_sq_0_split_0", "use"]);
}

#[test]
fn loss_layers_get_their_default_weight() {
    let c = compile_text(
        &net(r#"
layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "data" bottom: "label" top: "loss" }
"#),
        &CompileOptions::default(),
    );
    assert_clean(&c, "loss");
    let g = c.graph.as_ref().expect("graph");
    assert_eq!(g.node_by_name("loss").expect("loss").loss_weights, vec![1.0]);
    assert_eq!(g.blob_shape("loss").map(|s| s.0.clone()), Some(vec![]));
}

#[test]
fn phases_and_stages_filter_layers() {
    let text = net(r#"
layer { name: "drop" type: "Dropout" bottom: "data" top: "data" include { phase: TRAIN } }
layer { name: "deploy_only" type: "ReLU" bottom: "data" top: "out" include { stage: "deploy" } }
layer { name: "not_deploy" type: "Sigmoid" bottom: "data" top: "out" exclude { stage: "deploy" } }
"#);
    let test = compile_text(&text, &CompileOptions::default());
    let names = |c: &lvc_compiler::ir::Compiled| -> Vec<String> {
        c.graph.as_ref().expect("graph").nodes().map(|(_, n)| n.name.clone()).collect()
    };
    assert_eq!(names(&test), ["data", "not_deploy"]);
    let train = compile_text(&text, &options(Phase::Train, &[]));
    assert_eq!(names(&train), ["data", "drop", "not_deploy"]);
    assert_eq!(
        train.graph.as_ref().expect("graph").node_by_name("drop").expect("drop").phase,
        Phase::Train
    );
    let deploy = compile_text(
        &text,
        &CompileOptions { stages: vec!["deploy".into()], ..CompileOptions::default() },
    );
    assert_eq!(names(&deploy), ["data", "deploy_only"]);
}

#[test]
fn input_shapes_override_and_supply() {
    let text = net(r#"layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }"#);
    let c = compile_text(&text, &options(Phase::Test, &[("data", &[2, 3, 5, 5])]));
    assert_clean(&c, "override");
    assert_eq!(
        c.graph.as_ref().expect("graph").blob_shape("out").map(|s| s.0.clone()),
        Some(vec![2, 3, 5, 5])
    );

    let c = compile_text(&text, &options(Phase::Test, &[("dtaa", &[1, 1, 1, 1])]));
    assert_eq!(codes(&c), ["lvc::graph::unused_input_shape"]);
    assert!(c.diags.items[0].help.as_deref().unwrap_or("").contains("did you mean 'data'"));
}

#[test]
fn a_missing_input_shape_names_the_flag() {
    let text = r#"
layer { name: "data" type: "Input" top: "data" }
layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }
"#;
    let c = compile_text(text, &CompileOptions::default());
    assert_eq!(codes(&c), ["lvc::graph::input_shape"]);
    assert!(c.diags.items[0].help.as_deref().unwrap_or("").contains("--input-shape data="));
    // The dependent layer is skipped silently.
    assert_eq!(c.graph.as_ref().expect("graph").blob_shape("out"), None);
    let c = compile_text(text, &options(Phase::Test, &[("data", &[1, 1, 4, 4])]));
    assert_clean(&c, "supplied");
}

#[test]
fn bottoms_of_filtered_layers_say_so() {
    let text = r#"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } include { phase: TRAIN } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "data" bottom: "label" top: "loss" }
"#;
    let c = compile_text(text, &CompileOptions::default());
    assert_eq!(codes(&c), ["lvc::graph::unknown_bottom"]);
    let help = c.diags.items[0].help.clone().unwrap_or_default();
    assert!(
        help.contains("layer 'label'")
            && help.contains("phase TEST")
            && help.contains("--phase train"),
        "{help}"
    );
    assert_eq!(c.diags.items[0].labels.len(), 2);
}

#[test]
fn several_problems_are_all_reported_in_file_order() {
    let c = compile_text(
        &net(r#"
layer { name: "a" type: "LocalResponseNorm" bottom: "data" top: "a" }
layer { name: "b" type: "ReLU" bottom: "a" top: "b" }
layer { name: "c" type: "ReLU" bottom: "nope" top: "c" }
layer { name: "d" type: "ReLU" bottom: "data" top: "b" }
"#),
        &CompileOptions::default(),
    );
    assert_eq!(
        codes(&c),
        ["lvc::graph::unknown_type", "lvc::graph::unknown_bottom", "lvc::graph::duplicate_top"]
    );
    assert!(c.diags.items[0].help.as_deref().unwrap_or("").contains("'LRN'"));
    assert!(c.graph.is_some());
}

#[test]
fn loss_weight_count_must_match_tops() {
    let c = compile_text(
        &net(
            r#"layer { name: "r" type: "ReLU" bottom: "data" top: "r" loss_weight: 1 loss_weight: 2 }"#,
        ),
        &CompileOptions::default(),
    );
    assert_eq!(codes(&c), ["lvc::graph::loss_weight"]);
}

#[test]
fn crops_without_offsets_use_the_graph_and_are_bounds_checked() {
    let c = compile_text(
        &net(r#"
layer { name: "pad" type: "Convolution" bottom: "data" top: "pad" convolution_param { num_output: 3 kernel_size: 1 pad: 4 } }
layer { name: "zero" type: "Crop" bottom: "pad" bottom: "data" top: "zero" crop_param { axis: 2 } }
layer { name: "auto" type: "Crop" bottom: "zero" bottom: "data" top: "auto" }
"#),
        &CompileOptions::default(),
    );
    // `zero` crops at BVLC's 0 where the graph says 4; `auto` then takes the
    // graph's 4, which no longer fits in the 8×8 blob `zero` left.
    assert_eq!(codes(&c), ["lvc::crop::offset", "lvc::crop::auto", "lvc::crop::bounds"]);
    let g = c.graph.as_ref().expect("graph");
    assert_eq!(g.node_by_name("zero").expect("zero").crop_offsets, Some(vec![0, 0, 0, 0]));
    assert_eq!(g.node_by_name("auto").expect("auto").crop_offsets, Some(vec![0, 0, 4, 4]));
    assert!(c.diags.items[0].message.contains("the graph gives 4"), "{}", c.diags.items[0].message);

    let ok = compile_text(
        &net(r#"
layer { name: "pad" type: "Convolution" bottom: "data" top: "pad" convolution_param { num_output: 3 kernel_size: 1 pad: 4 } }
layer { name: "auto" type: "Crop" bottom: "pad" bottom: "data" top: "auto" }
"#),
        &CompileOptions::default(),
    );
    assert_eq!(codes(&ok), ["lvc::crop::auto"]);
    assert_eq!(ok.diags.items[0].severity, lvc_compiler::Severity::Advice);
    assert_eq!(
        ok.graph.as_ref().expect("graph").node_by_name("auto").expect("auto").crop_offsets,
        Some(vec![0, 0, 4, 4])
    );
}
