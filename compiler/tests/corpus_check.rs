//! The FCN nets of the corpus (shelhamer/fcn.berkeleyvision.org and DIGITS'
//! FCN-AlexNet) check clean at 500×500 in both phases, with every written
//! crop offset agreeing with the graph.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod ir_support;

use ir_support::{assert_clean, corpus, options, read};
use lvc_compiler::ir::compile;
use lvc_compiler::schema::Phase;

/// The input shapes a user passes with `--input-shape`, by blob name.
fn shape_for(name: &str) -> Option<&'static [i64]> {
    match name {
        "data" | "color" | "hha" => Some(&[1, 3, 500, 500]),
        "label" | "sem" | "geo" | "depth" => Some(&[1, 1, 500, 500]),
        _ => None,
    }
}

fn fcn_nets() -> Vec<std::path::PathBuf> {
    let mut nets = Vec::new();
    let fcn = corpus("shelhamer__fcn.berkeleyvision.org");
    for dir in std::fs::read_dir(&fcn).expect("fcn corpus") {
        for file in std::fs::read_dir(dir.expect("dir").path()).expect("net dir") {
            let path = file.expect("file").path();
            let name =
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.ends_with(".prototxt") && !name.contains("solver") {
                nets.push(path);
            }
        }
    }
    let digits = corpus("NVIDIA__DIGITS/examples/semantic-segmentation");
    nets.push(digits.join("fcn_alexnet.prototxt"));
    nets.push(digits.join("fcn_alexnet.deploy.prototxt"));
    nets.sort();
    nets
}

#[test]
fn fcn_corpus_nets_check_clean() {
    let nets = fcn_nets();
    assert_eq!(nets.len(), 33, "31 FCN nets + 2 DIGITS FCN-AlexNet nets");
    let mut crops = 0;
    for path in &nets {
        let source = read(path);
        for phase in [Phase::Train, Phase::Test] {
            // First pass: which inputs does this net have?
            let probe = compile(&source, &options(phase, &[]));
            let graph =
                probe.graph.as_ref().unwrap_or_else(|| panic!("{} does not load", path.display()));
            let shapes: Vec<(&str, &[i64])> = graph
                .inputs()
                .iter()
                .filter_map(|&b| {
                    let name = graph.blob(b).name.as_str();
                    shape_for(name).map(|s| (name, s))
                })
                .collect();
            let compiled = compile(&source, &options(phase, &shapes));
            let what = format!("{} ({phase:?})", path.display());
            assert_clean(&compiled, &what);
            let findings: Vec<String> =
                compiled.diags.iter().map(|d| format!("{} {}", d.code, d.message)).collect();
            assert!(findings.iter().all(|f| !f.starts_with("lvc::crop")), "{what}: {findings:?}");
            let g = compiled.graph.as_ref().expect("graph");
            crops += g.nodes().filter(|(_, n)| n.kind == "Crop").count();
            // Every FCN ends in score blobs of the input's spatial size
            // (`score`, or `score_sem`/`score_geo` for SIFT Flow).
            let full_size = g.blobs().iter().any(|b| {
                b.name.starts_with("score")
                    && b.shape.as_ref().is_some_and(|s| s.0.get(2..) == Some(&[500, 500][..]))
            });
            assert!(full_size, "{what}: no 500×500 score blob");
        }
    }
    assert!(crops > 60, "crop layers checked: {crops}");
}
