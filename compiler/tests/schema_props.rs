//! Property test: whatever tree the parser accepts, loading it as a net or a
//! solver never panics, and a result comes back exactly when no error was
//! reported. Trees are drawn from the field names and values that steer the
//! validator and the V0/V1/input/BatchNorm upgrades.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use lvc_compiler::schema::print::to_prototxt;
use lvc_compiler::schema::{load_net, load_solver, LoadOptions};
use lvc_compiler::SourceFile;
use lvc_grammar::{Field, Message, Scalar, ScalarKind, Span, Value};
use proptest::prelude::*;

const NAMES: &[&str] = &[
    "layer",
    "layers",
    "name",
    "type",
    "bottom",
    "top",
    "input",
    "input_dim",
    "input_shape",
    "dim",
    "param",
    "blobs_lr",
    "weight_decay",
    "blob_share_mode",
    "convolution_param",
    "pooling_param",
    "pad",
    "kernelsize",
    "kernel_size",
    "num_output",
    "include",
    "exclude",
    "phase",
    "stage",
    "python_param",
    "data_param",
    "scale",
    "mirror",
    "transform_param",
    "pool",
    "lr_mult",
    "net",
    "net_param",
    "test_iter",
    "test_state",
    "lr_policy",
    "solver_type",
    "stepsize",
    "clip_param",
    "min",
    "bogus",
];
const IDENTS: &[&str] =
    &["MAX", "CONVOLUTION", "DATA", "RELU", "TEST", "TRAIN", "true", "ADAM", "x"];
const STRINGS: &[&str] =
    &["conv", "padding", "pool", "relu", "data", "Python", "Dice", "BatchNorm", "step", "x", ""];

fn scalar() -> impl Strategy<Value = ScalarKind> {
    prop_oneof![
        (-5i128..5_000_000_000i128).prop_map(ScalarKind::Int),
        (-1e3f64..1e3).prop_map(ScalarKind::Float),
        prop::sample::select(IDENTS).prop_map(|s| ScalarKind::Ident(s.to_string())),
        prop::sample::select(STRINGS).prop_map(|s| ScalarKind::Str(s.to_string())),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = scalar().prop_map(|kind| Value::Scalar(Scalar { kind, span: Span::default() }));
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop::collection::vec((prop::sample::select(NAMES), inner), 0..6)
            .prop_map(|fields| Value::Message(message(fields)))
    })
}

fn message(fields: Vec<(&str, Value)>) -> Message {
    Message {
        fields: fields
            .into_iter()
            .map(|(name, value)| Field {
                name: name.to_string(),
                name_span: Span::default(),
                value,
                span: Span::default(),
            })
            .collect(),
        span: Span::default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn loading_never_panics(fields in prop::collection::vec((prop::sample::select(NAMES), value()), 0..8), lenient in any::<bool>()) {
        let text = to_prototxt(&message(fields));
        let source = SourceFile::new("random.prototxt", text);
        let opts = LoadOptions { lenient };
        let (net, diags) = load_net(&source, &opts);
        prop_assert_eq!(net.is_some(), !diags.has_errors());
        let (solver, diags) = load_solver(&source, &opts);
        prop_assert_eq!(solver.is_some(), !diags.has_errors());
    }
}
