//! `lvc print` text of well-known corpus nets, snapshotted: every layer with
//! its blob shapes and parameter shapes, splits and in-place layers marked.
//! Findings (warnings, advice) are listed above the graph.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod ir_support;

use ir_support::{corpus, options, read};
use lvc_compiler::ir::compile;
use lvc_compiler::schema::Phase;

const FCN_INPUTS: Shapes = &[("data", &[1, 3, 500, 500]), ("label", &[1, 1, 500, 500])];

type Shapes = &'static [(&'static str, &'static [i64])];

/// (snapshot name, corpus path, phase, input shapes).
const NETS: &[(&str, &str, Phase, Shapes)] = &[
    ("lenet", "BVLC__caffe/examples/mnist/lenet.prototxt", Phase::Test, &[]),
    ("caffenet", "BVLC__caffe/models/bvlc_reference_caffenet/deploy.prototxt", Phase::Test, &[]),
    ("googlenet", "BVLC__caffe/models/bvlc_googlenet/deploy.prototxt", Phase::Test, &[]),
    (
        "resnet50",
        "KaimingHe__deep-residual-networks/prototxt/ResNet-50-deploy.prototxt",
        Phase::Test,
        &[],
    ),
    ("squeezenet_v1_1", "forresti__SqueezeNet/SqueezeNet_v1.1/deploy.prototxt", Phase::Test, &[]),
    ("mobilenet", "shicai__MobileNet-Caffe/mobilenet_deploy.prototxt", Phase::Test, &[]),
    (
        "voc_fcn32s_val",
        "shelhamer__fcn.berkeleyvision.org/voc-fcn32s/val.prototxt",
        Phase::Test,
        FCN_INPUTS,
    ),
    (
        "voc_fcn16s_train",
        "shelhamer__fcn.berkeleyvision.org/voc-fcn16s/train.prototxt",
        Phase::Train,
        FCN_INPUTS,
    ),
    (
        "voc_fcn8s_deploy",
        "shelhamer__fcn.berkeleyvision.org/voc-fcn8s/deploy.prototxt",
        Phase::Test,
        &[("data", &[1, 3, 500, 500])],
    ),
    (
        "fcn_alexnet_digits_train",
        "NVIDIA__DIGITS/examples/semantic-segmentation/fcn_alexnet.prototxt",
        Phase::Train,
        FCN_INPUTS,
    ),
    ("hed_deploy", "s9xie__hed/examples/hed/deploy.prototxt", Phase::Test, &[]),
    ("rcnn_v1", "rbgirshick__rcnn/model-defs/pascal_finetune_deploy.prototxt", Phase::Test, &[]),
    ("lenet_v0", "BVLC__caffe@v0.9/examples/lenet/lenet.prototxt", Phase::Test, &[]),
];

#[test]
fn printed_graphs() {
    for &(name, path, phase, shapes) in NETS {
        let source = read(&corpus(path));
        let compiled = compile(&source, &options(phase, shapes));
        let mut text = String::new();
        for d in compiled.diags.iter() {
            text.push_str(&format!("{:?} {}: {}\n", d.severity, d.code, d.message));
        }
        let graph = compiled.graph.unwrap_or_else(|| panic!("{path}: {:?}", compiled.diags));
        text.push_str(&graph.to_text());
        insta::assert_snapshot!(name, text);
    }
}

#[test]
fn dot_output_has_every_layer_and_blob() {
    let source = read(&corpus("BVLC__caffe/examples/mnist/lenet.prototxt"));
    let graph = compile(&source, &options(Phase::Test, &[])).graph.expect("graph");
    let dot = graph.to_dot();
    assert!(dot.starts_with("digraph net {"));
    for (_, node) in graph.nodes() {
        assert!(dot.contains(&format!("\"{}\\n{}\"", node.name, node.kind)), "{}", node.name);
    }
    assert_eq!(dot.matches(" -> ").count(), graph.graph().edge_count() + graph.outputs().len());
    assert!(dot.contains("conv1\\n64×20×24×24"));
}
