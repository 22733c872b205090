//! What schema problems look like to a user: rendered miette reports
//! (snapshots) for each diagnostic code, plus the golden Caffe typo case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod common;

use common::{codes, read_corpus_file, render, shared_dir};
use lvc_compiler::schema::{load_net, load_solver, LoadOptions};
use lvc_compiler::{Diagnostics, SourceFile};

const STRICT: LoadOptions = LoadOptions { lenient: false };
const LENIENT: LoadOptions = LoadOptions { lenient: true };

fn net_diags(text: &str, opts: &LoadOptions) -> (SourceFile, Diagnostics) {
    let source = SourceFile::new("net.prototxt", text);
    let (net, diags) = load_net(&source, opts);
    assert_eq!(
        net.is_some(),
        !diags.has_errors(),
        "a net comes back exactly when there is no error"
    );
    (source, diags)
}

fn solver_diags(text: &str) -> (SourceFile, Diagnostics) {
    let source = SourceFile::new("solver.prototxt", text);
    let (solver, diags) = load_solver(&source, &STRICT);
    assert_eq!(
        solver.is_some(),
        !diags.has_errors(),
        "a solver comes back exactly when there is no error"
    );
    (source, diags)
}

#[test]
fn golden_typo_field_suggests_num_output() {
    let path = shared_dir().join("golden/caffe/prototxt/errors/typo_field.prototxt");
    let text = std::fs::read_to_string(&path).expect("golden typo file is readable");
    let source = SourceFile::new("typo_field.prototxt", text);
    let (net, diags) = load_net(&source, &STRICT);
    assert!(net.is_none());
    assert_eq!(diags.len(), 1, "{:?}", codes(&diags));
    let d = &diags.items[0];
    assert_eq!(d.code, "lvc::schema::unknown_field");
    // Caffe: `123:14: Message type "caffe.ConvolutionParameter" has no field named "num_ouput".`
    assert_eq!(d.message, "ConvolutionParameter has no field named `num_ouput`");
    assert_eq!(d.help.as_deref(), Some("did you mean `num_output`?"));
    assert_eq!(d.layer.as_deref(), Some("conv3"));
    assert_eq!(source.line_col(d.labels[0].span.start), (123, 5));
    insta::assert_snapshot!(render(&diags, &source));
}

#[test]
fn unknown_fields_with_and_without_a_close_name() {
    let (source, diags) = net_diags(
        "layer {\n  name: \"c\"\n  type: \"Convolution\"\n  convolution_param { kernelsize: 3 num_output: 8 }\n  frobnicate: 1\n}\n",
        &STRICT,
    );
    assert_eq!(diags.error_count(), 2, "every problem is reported, not just the first");
    insta::assert_snapshot!(render(&diags, &source));
}

#[test]
fn lenient_mode_warns_and_keeps_fork_fields() {
    let text = "layer {\n  name: \"roi_pool5\"\n  type: \"ROIPooling\"\n  bottom: \"conv5\"\n  top: \"pool5\"\n  roi_pooling_param { pooled_w: 6 pooled_h: 6 }\n}\n";
    let (_, strict) = net_diags(text, &STRICT);
    assert_eq!(strict.error_count(), 1);
    let source = SourceFile::new("net.prototxt", text);
    let (net, diags) = load_net(&source, &LENIENT);
    let net = net.expect("lenient mode keeps the net");
    let roi = net.layers[0].param_block("roi_pooling_param");
    assert_eq!(
        roi.int("pooled_h").map(|v| v.value),
        Some(6),
        "the fork's block stays for the ROIPooling op"
    );
    assert_eq!(diags.warning_count(), 1);
    insta::assert_snapshot!(render(&diags, &source));
}

#[test]
fn values_of_the_wrong_kind() {
    let (source, diags) = net_diags(
        concat!(
            "layer {\n  name: \"c\"\n  type: Convolution\n",
            "  convolution_param {\n    num_output: \"96\"\n    bias_term: 2\n    weight_filler: 1\n    kernel_size { }\n    pad: 1.5\n  }\n",
            "  loss_weight: 1\n}\n"
        ),
        &STRICT,
    );
    assert!(diags.iter().all(|d| d.code == "lvc::schema::type"), "{:?}", codes(&diags));
    assert_eq!(diags.len(), 6);
    insta::assert_snapshot!(render(&diags, &source));
}

#[test]
fn enum_values_ranges_and_duplicates() {
    let (source, diags) = net_diags(
        concat!(
            "layer {\n  name: \"p\"\n  type: \"Pooling\"\n  phase: TSET\n",
            "  pooling_param { pool: MAXX kernel_size: -3 stride: 2 stride: 3 }\n",
            "  include { phase: \"TEST\" }\n}\n",
            "layer { name: \"s\" type: \"Softmax\" softmax_param { axis: 3000000000 engine: 2 } }\n"
        ),
        &STRICT,
    );
    let found: Vec<&str> = diags.iter().map(|d| d.code).collect();
    assert_eq!(
        found,
        [
            "lvc::schema::enum",
            "lvc::schema::enum",
            "lvc::schema::range",
            "lvc::schema::duplicate",
            "lvc::schema::type",
            "lvc::schema::range"
        ]
    );
    insta::assert_snapshot!(render(&diags, &source));
}

#[test]
fn an_enum_number_reads_as_its_name() {
    let source = SourceFile::new(
        "net.prototxt",
        "layer { name: \"p\" type: \"Pooling\" pooling_param { pool: 1 } }",
    );
    let (net, diags) = load_net(&source, &STRICT);
    assert!(diags.is_empty(), "{:?}", codes(&diags));
    let net = net.expect("valid net");
    assert_eq!(
        net.layers[0].param_block("pooling_param").ident("pool").map(|p| p.value),
        Some("AVE")
    );
}

#[test]
fn include_and_exclude_in_one_layer() {
    let (source, diags) = net_diags(
        "layer {\n  name: \"d\"\n  type: \"Dropout\"\n  include { phase: TRAIN }\n  exclude { stage: \"deploy\" }\n}\n",
        &STRICT,
    );
    assert_eq!(
        codes(&diags),
        ["lvc::schema::include_exclude: Specify either include rules or exclude rules; not both."]
    );
    insta::assert_snapshot!(render(&diags, &source));
}

#[test]
fn layer_and_layers_together() {
    let (source, diags) = net_diags(
        "layer { name: \"a\" type: \"ReLU\" }\nlayers { name: \"b\" type: RELU }\n",
        &STRICT,
    );
    assert_eq!(diags.items[0].code, "lvc::schema::mixed_format");
    insta::assert_snapshot!(render(&diags, &source));
}

#[test]
fn v0_upgrade_problems() {
    let (source, diags) = net_diags(
        concat!(
            "layers { layer { name: \"r\" type: \"relU\" } bottom: \"data\" top: \"r\" }\n",
            "layers { layer { name: \"pad1\" type: \"padding\" pad: 2 } bottom: \"data\" top: \"p\" }\n",
            "layers { layer { name: \"relu1\" type: \"relu\" } bottom: \"p\" top: \"p\" }\n",
            "layers { layer { name: \"drop\" type: \"dropout\" num_output: 3 } bottom: \"p\" top: \"p\" }\n"
        ),
        &STRICT,
    );
    let found: Vec<&str> = diags.iter().map(|d| d.code).collect();
    assert_eq!(
        found,
        ["lvc::schema::v0_padding", "lvc::schema::v0_type", "lvc::schema::v0_upgrade"]
    );
    insta::assert_snapshot!(render(&diags, &source));
}

#[test]
fn deploy_inputs_without_enough_dims() {
    let (source, diags) = net_diags(
        "input: \"data\"\ninput: \"rois\"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 227\ninput_dim: 227\nlayer { name: \"r\" type: \"ReLU\" bottom: \"data\" top: \"r\" }\n",
        &STRICT,
    );
    assert_eq!(diags.items[0].code, "lvc::schema::input_shape");
    insta::assert_snapshot!(render(&diags, &source));
}

#[test]
fn files_that_are_not_nets() {
    let labelmap =
        read_corpus_file("prototxt/weiliu89__caffe@ssd/data/VOC0712/labelmap_voc.prototxt");
    let (net, diags) = load_net(&labelmap, &LENIENT);
    assert!(net.is_none());
    let mut out = render(&diags, &labelmap);
    let solver = read_corpus_file("prototxt/BVLC__caffe/examples/mnist/lenet_solver.prototxt");
    let (net, diags) = load_net(&solver, &LENIENT);
    assert!(net.is_none());
    assert!(diags.items[0].message.contains("SolverParameter"));
    out.push_str(&render(&diags, &solver));
    let net = read_corpus_file("prototxt/BVLC__caffe/examples/mnist/lenet_train_test.prototxt");
    let (solver, diags) = load_solver(&net, &LENIENT);
    assert!(solver.is_none());
    assert_eq!(diags.items[0].code, "lvc::schema::not_a_solver");
    out.push_str(&render(&diags, &net));
    insta::assert_snapshot!(out);
}

#[test]
fn parse_errors_become_diagnostics() {
    let (source, diags) = net_diags("layer {\n  name: \"a\"\n", &STRICT);
    assert_eq!(diags.items[0].code, "lvc::parse::unclosed");
    insta::assert_snapshot!(render(&diags, &source));
}

#[test]
fn solver_settings_problems() {
    let (source, diags) = solver_diags(
        "net: \"train_val.prototxt\"\ntrain_net: \"other.prototxt\"\nbase_lr: 0.01\nlr_policy: \"stepp\"\ntype: \"adam\"\nregularization_type: \"L3\"\n",
    );
    let found: Vec<&str> = diags.iter().map(|d| d.code).collect();
    assert_eq!(
        found,
        [
            "lvc::schema::solver_type",
            "lvc::schema::lr_policy",
            "lvc::schema::regularization",
            "lvc::schema::solver_net"
        ]
    );
    let mut out = render(&diags, &source);
    let (source, diags) = solver_diags("net: \"n.prototxt\"\nlr_policy: \"step\"\ntype: \"Adam\"\nsolver_type: ADAM\ntest_iter: 10\n");
    let found: Vec<&str> = diags.iter().map(|d| d.code).collect();
    assert_eq!(
        found,
        [
            "lvc::schema::solver_type_conflict",
            "lvc::schema::solver_test_nets",
            "lvc::schema::lr_policy"
        ]
    );
    out.push_str(&render(&diags, &source));
    insta::assert_snapshot!(out);
}

#[test]
fn inline_v1_net_in_a_solver() {
    let source =
        read_corpus_file("prototxt/BVLC__caffe/examples/mnist/lenet_consolidated_solver.prototxt");
    let (_, diags) = load_solver(&source, &STRICT);
    assert_eq!(diags.len(), 1);
    insta::assert_snapshot!(render(&diags, &source));
}
