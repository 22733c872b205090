//! Shapes that cannot exist (issue 13, class 4): every overflow or blob
//! beyond Caffe's INT_MAX elements is an `lvc::shape::too_large` error on
//! the layer, never a wrapped shape, a negative parameter count or (in this
//! test profile, which checks overflow) a panic. Plus the memory estimate,
//! and the linear work of reporting many errors (class 5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod common;
mod ir_support;

use ir_support::{compile_text, options};
use lvc_compiler::ir::{CompileOptions, Compiled};
use lvc_compiler::memory::{self, Mode};
use lvc_compiler::ops::MAX_BLOB_COUNT;
use lvc_compiler::schema::Phase;
use lvc_compiler::SourceFile;

fn input(dims: &[i64]) -> String {
    let dims: Vec<String> = dims.iter().map(|d| format!("dim: {d}")).collect();
    format!("layer {{ name: \"data\" type: \"Input\" top: \"data\" input_param {{ shape {{ {} }} }} }}\n", dims.join(" "))
}

fn layer(name: &str, kind: &str, bottoms: &[&str], body: &str) -> String {
    let bottoms: String = bottoms.iter().map(|b| format!("bottom: \"{b}\" ")).collect();
    format!("layer {{ name: \"{name}\" type: \"{kind}\" {bottoms}top: \"{name}\" {body} }}\n")
}

fn check(text: &str) -> Compiled {
    compile_text(text, &CompileOptions::default())
}

/// The `too_large` errors of a compile: one per layer, labelled inside that
/// layer's block, with a help line; and nothing but them.
fn too_large(c: &Compiled, text: &str, layers: &[&str]) {
    let found: Vec<_> = c.diags.iter().collect();
    assert_eq!(found.len(), layers.len(), "{:#?}", c.diags);
    for (d, layer) in found.iter().zip(layers) {
        assert_eq!(d.code, "lvc::shape::too_large", "{d:#?}");
        assert_eq!(d.layer.as_deref(), Some(*layer));
        assert!(d.help.is_some());
        let span = d.primary_span().expect("labelled");
        let block = text.find(&format!("name: \"{layer}\"")).expect("layer in text");
        let end = block + text[block..].find('\n').expect("one layer per line");
        assert!((block..end).contains(&span.start), "label outside layer '{layer}': {d:#?}");
    }
    // The layer's tops stay unknown: nothing downstream sees the shape.
    let graph = c.graph.as_ref().expect("graph");
    assert!(graph.param_count() >= 0);
    for blob in graph.blobs() {
        if let Some(shape) = &blob.shape {
            assert!(
                shape.checked_count().is_some_and(|n| n <= MAX_BLOB_COUNT),
                "{} {shape}",
                blob.name
            );
        }
    }
}

#[test]
fn inputs_beyond_int_max_and_beyond_i64() {
    let text = input(&[99_999_999_999; 4]) + &layer("relu", "ReLU", &["data"], "");
    too_large(&check(&text), &text, &["data"]);
    // 10^14 elements: fits i64, not a Caffe blob.
    let text = input(&[100_000, 100_000, 100, 100]);
    too_large(&check(&text), &text, &["data"]);
    // --input-shape goes through the same check.
    let c = compile_text(
        &input(&[1, 3, 8, 8]),
        &options(Phase::Test, &[("data", &[1 << 20, 1 << 20, 1 << 20])]),
    );
    assert_eq!(ir_support::codes(&c), ["lvc::shape::too_large"]);
}

#[test]
fn convolution_and_deconvolution_sizes_are_checked() {
    let base = input(&[1, 3, 64, 64]);
    // The weight, the bias and the top are too large: one error.
    let text = base.clone()
        + &layer(
            "conv",
            "Convolution",
            &["data"],
            "convolution_param { num_output: 4000000000 kernel_size: 60000 pad: 30000 }",
        );
    let c = check(&text);
    too_large(&c, &text, &["conv"]);
    let d = &c.diags.items[0];
    assert!(d.labels.iter().any(|l| l.text == "num_output 4000000000"), "{d:#?}");
    assert!(d.message.contains("2 more blobs of this layer are too large"), "{}", d.message);
    // D·(K−1)+1 beyond i64 (both are uint32).
    let text = base.clone()
        + &layer(
            "conv",
            "Convolution",
            &["data"],
            "convolution_param { num_output: 2 kernel_size: 4294967295 dilation: 4294967295 }",
        );
    too_large(&check(&text), &text, &["conv"]);
    // S·(H−1)+K−2P beyond INT_MAX, and beyond i64.
    let text = base.clone()
        + &layer(
            "up",
            "Deconvolution",
            &["data"],
            "convolution_param { num_output: 2 kernel_size: 4 stride: 2000000000 }",
        );
    too_large(&check(&text), &text, &["up"]);
    let deconv =
        |body: &str| input(&[1, 1, 1_000_000, 1]) + &layer("up", "Deconvolution", &["data"], body);
    let text =
        deconv("convolution_param { num_output: 1 kernel_size: 4294967295 stride: 4294967295 }");
    too_large(&check(&text), &text, &["up"]);
    // A dilated kernel just inside i64, plus S·(H−1): beyond it.
    let text = deconv("convolution_param { num_output: 1 kernel_size: 4294967295 dilation: 2147483648 stride: 4294967295 }");
    let c = check(&text);
    too_large(&c, &text, &["up"]);
    assert!(
        c.diags.items[0].message.contains("overflows 64-bit integers"),
        "{}",
        c.diags.items[0].message
    );
    // Im2col's channels C·∏K.
    let text = base
        + &layer(
            "cols",
            "Im2col",
            &["data"],
            "convolution_param { kernel_size: 4294967295 kernel_size: 4294967295 pad: 2147483647 }",
        );
    too_large(&check(&text), &text, &["cols"]);
}

#[test]
fn dense_combining_and_pyramid_layers_are_checked() {
    let base = input(&[1, 3, 64, 64]);
    let cases = [
        layer("fc", "InnerProduct", &["data"], "inner_product_param { num_output: 4000000000 }"),
        layer("fc", "InnerProduct", &["data"], "inner_product_param { num_output: 1000000 }"),
        layer("fc", "Tile", &["data"], "tile_param { tiles: 2000000000 }"),
        layer("fc", "Concat", &["data"; 8], "concat_param { axis: 2 }"),
        layer("fc", "SPP", &["data"], "spp_param { pyramid_height: 4000000000 }"),
        layer("fc", "SPP", &["data"], "spp_param { pyramid_height: 20 }"),
        layer(
            "fc",
            "Embed",
            &["data"],
            "embed_param { num_output: 4000000000 input_dim: 4000000000 }",
        ),
    ];
    for case in cases {
        let text = if case.contains("Concat") {
            input(&[1, 1, 1_000_000_000, 1]) + &case
        } else {
            base.clone() + &case
        };
        too_large(&check(&text), &text, &["fc"]);
    }
    // Flatten and InnerProduct beside a zero-sized axis: the other axes
    // multiply past i64.
    let zero = input(&[0, 2_147_483_647, 2_147_483_647, 2_147_483_647]);
    for case in [
        layer("f", "Flatten", &["data"], ""),
        layer("f", "InnerProduct", &["data"], "inner_product_param { num_output: 2 }"),
    ] {
        let text = zero.clone() + &case;
        too_large(&check(&text), &text, &["f"]);
    }
    // Reshape's int64 dims multiply past i64: it cannot match the bottom.
    let text = base
        + &layer("r", "Reshape", &["data"], "reshape_param { shape { dim: 0 dim: -1 dim: 99999999999 dim: 99999999999 dim: 99999999999 } }");
    assert_eq!(ir_support::codes(&check(&text)), ["lvc::shape::reshape"]);
}

#[test]
fn the_largest_caffe_blob_is_fine() {
    let c = check(&(input(&[1, 1, 46_340, 46_340]) + &layer("relu", "ReLU", &["data"], "")));
    assert!(c.is_ok(), "{:#?}", c.diags);
    let c = check(&input(&[1, MAX_BLOB_COUNT]));
    assert!(c.is_ok(), "{:#?}", c.diags);
    assert_eq!(ir_support::codes(&check(&input(&[2, MAX_BLOB_COUNT]))), ["lvc::shape::too_large"]);
}

#[test]
fn an_impossible_shape_reads_well() {
    let text = input(&[1, 3, 64, 64])
        + &layer(
            "conv",
            "Convolution",
            &["data"],
            "convolution_param { num_output: 4000000000 kernel_size: 3 }",
        );
    let c = check(&text);
    insta::assert_snapshot!(common::render(&c.diags, &SourceFile::new("test.prototxt", text)));
}

/// The estimate of a small net, by hand: Input 2×3×8×8, conv 4×3×3×3 (+4
/// bias) → 2×4×6×6, ReLU in place, InnerProduct 5×144 frozen (lr_mult 0),
/// SoftmaxWithLoss.
#[test]
fn the_memory_estimate_counts_what_it_says() {
    let text = "layer { name: 'data' type: 'Input' top: 'data' top: 'label' \
                  input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } shape { dim: 2 } } }\n\
                layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv' convolution_param { num_output: 4 kernel_size: 3 } }\n\
                layer { name: 'relu' type: 'ReLU' bottom: 'conv' top: 'conv' }\n\
                layer { name: 'fc' type: 'InnerProduct' bottom: 'conv' top: 'fc' param { lr_mult: 0 } param { lr_mult: 0 } \
                  inner_product_param { num_output: 5 } }\n\
                layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'fc' bottom: 'label' top: 'loss' }\n";
    let c = check(text);
    assert!(c.is_ok(), "{:#?}", c.diags);
    let (net, graph) = (c.net.as_ref().unwrap(), c.graph.as_ref().unwrap());
    let params = (4 * 27 + 4) + (5 * 144 + 5);
    let learnable = 4 * 27 + 4;
    // data, label, conv (once: ReLU is in place), fc, loss (a scalar).
    let activations = 2 * 3 * 64 + 2 + 2 * 4 * 36 + 2 * 5 + 1;
    let largest = 2 * 3 * 64;
    // Columns of conv: C·k·k × positions × batch.
    let columns = 3 * 9 * 36 * 2;
    let inference = memory::estimate(net, graph, Mode::Inference);
    assert_eq!(
        (
            inference.parameters,
            inference.activations,
            inference.gradients,
            inference.history,
            inference.workspace
        ),
        (4 * params, 4 * activations, 0, 0, 4 * columns)
    );
    assert_eq!(inference.total(), 4 * (params + activations + columns));
    let adam = memory::estimate(
        net,
        graph,
        Mode::training_with(lvc_compiler::schema::solver::SolverType::Adam),
    );
    assert_eq!(
        (adam.gradients, adam.history, adam.workspace),
        (4 * (learnable + largest), 4 * 2 * learnable, 8 * columns)
    );
    assert_eq!(
        adam.total(),
        adam.parameters + adam.activations + adam.gradients + adam.history + adam.workspace
    );
    assert_eq!(
        inference.to_string(),
        "14 kB (parameters 3.3 kB, activations 2.7 kB, workspace 7.8 kB)"
    );
    assert!(
        adam.to_string().contains(", gradients 2.0 kB, solver history 896 B, workspace 16 kB)"),
        "{adam}"
    );
}

/// Terabytes of blobs that each fit Caffe's limit: the net checks, and the
/// estimate says how much it needs (what the runtime refuses).
#[test]
fn the_estimate_of_a_huge_net_does_not_wrap() {
    let mut text = input(&[1, 1, 46_000, 46_000]);
    for i in 0..1000 {
        text += &layer(&format!("r{i}"), "ReLU", &["data"], "");
    }
    let c = check(&text);
    assert!(c.is_ok(), "{:#?}", c.diags);
    let e = memory::estimate(c.net.as_ref().unwrap(), c.graph.as_ref().unwrap(), Mode::Inference);
    assert_eq!(e.activations, 1001 * 46_000 * 46_000 * 4);
    assert!(e.to_string().starts_with("8.5 TB (parameters 0 B, activations 8.5 TB"), "{e}");
}

/// Thousands of unknown bottoms: each message still lists the blobs there
/// are, the first ones also suggest the likely name, and the suggestions'
/// work is bounded (a fixed budget of name comparisons for the whole net),
/// so the report is linear in the number of errors.
#[test]
fn many_unknown_bottoms_are_reported_in_linear_work() {
    let mut text = input(&[1, 3, 8, 8]);
    let n = 5000;
    for i in 0..n {
        text += &layer(&format!("r{i}"), "ReLU", &["dta"], "");
    }
    let c = check(&text);
    assert_eq!(c.diags.len(), n);
    let helps: Vec<&str> = c.diags.iter().map(|d| d.help.as_deref().unwrap_or("")).collect();
    assert!(helps[0].starts_with("did you mean 'data'?"), "{}", helps[0]);
    assert!(helps.iter().all(|h| h.contains("blobs available here: ")));
    let suggested = helps.iter().filter(|h| h.starts_with("did you mean")).count();
    // Layer i compares against i + 1 names: the budget covers the first
    // ~630 of 5000 (Σ i ≈ 200,000), more would mean quadratic work.
    assert!((100..2000).contains(&suggested), "{suggested} messages with suggestions");
}
