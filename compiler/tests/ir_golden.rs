//! Caffe's own goldens: every golden prototxt checks clean, and the graph
//! reproduces the blob shapes, split layers, in-place flags and parameter
//! shapes that real BVLC Caffe reported in the manifests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod ir_support;

use ir_support::{assert_clean, options, read, shared};
use lvc_compiler::ir::compile;
use lvc_compiler::schema::Phase;
use serde_json::Value;

fn manifests() -> Vec<(String, Value)> {
    let root = shared("golden/caffe");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).expect("golden dir") {
        let path = entry.expect("entry").path().join("manifest.json");
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let manifest: Value = serde_json::from_str(&text).expect("manifest json");
        if manifest.get("layers").is_some() {
            out.push((path.display().to_string(), manifest));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn dims(v: &Value) -> Vec<i64> {
    v.as_array().expect("shape array").iter().map(|d| d.as_i64().expect("dim")).collect()
}

#[test]
fn forward_manifests_match_the_graph() {
    let manifests = manifests();
    assert_eq!(manifests.len(), 8, "forward manifests with layer lists");
    for (path, m) in manifests {
        let prototxt = shared("golden/caffe").join(m["prototxt"].as_str().expect("prototxt"));
        let phase = if m["mode"] == "forward" { Phase::Test } else { Phase::Train };
        let source = read(&prototxt);
        let compiled = compile(&source, &options(phase, &[]));
        assert_clean(&compiled, &path);
        let graph = compiled.graph.expect("graph");

        let ours: Vec<(String, String, Vec<i64>, bool)> = graph
            .nodes()
            .flat_map(|(_, n)| {
                n.tops.iter().map(|&t| {
                    let blob = graph.blob(t);
                    let shape = blob.shape.as_ref().map(|s| s.0.clone()).unwrap_or_default();
                    (n.name.clone(), blob.name.clone(), shape, blob.in_place)
                })
            })
            .collect();
        let caffe: Vec<(String, String, Vec<i64>, bool)> = m["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| {
                (
                    l["layer"].as_str().expect("layer").to_string(),
                    l["top"].as_str().expect("top").to_string(),
                    dims(&l["shape"]),
                    l["in_place"].as_bool().expect("in_place"),
                )
            })
            .collect();
        assert_eq!(ours, caffe, "{path}: layer tops in execution order");

        for p in m["params"].as_array().expect("params") {
            let layer = p["layer"].as_str().expect("layer");
            let index = p["index"].as_u64().expect("index") as usize;
            let params =
                graph.param_shapes(layer).unwrap_or_else(|| panic!("{path}: no layer {layer}"));
            assert_eq!(
                params.get(index).map(|s| s.shape.0.clone()),
                Some(dims(&p["shape"])),
                "{path}: {layer} param {index}"
            );
        }
        let caffe_count: i64 = m["params"]
            .as_array()
            .expect("params")
            .iter()
            .map(|p| p["count"].as_i64().expect("count"))
            .sum();
        assert_eq!(graph.param_count(), caffe_count, "{path}: parameter count");
    }
}

#[test]
fn every_golden_prototxt_checks_clean() {
    let dir = shared("golden/caffe/prototxt");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("prototxt dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !name.ends_with(".prototxt") || name.contains("solver") {
            continue;
        }
        let source = read(&path);
        for phase in [Phase::Test, Phase::Train] {
            let compiled = compile(&source, &options(phase, &[]));
            assert_clean(&compiled, &format!("{name} ({phase:?})"));
            let warnings: Vec<&str> = compiled.diags.iter().map(|d| d.code).collect();
            // Only the counter-example's group-less bilinear deconvolutions warn.
            if !name.contains("bilinearfiller") {
                assert!(warnings.is_empty(), "{name}: unexpected findings {warnings:?}");
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 13);
}

#[test]
fn fcn_crop_offsets_agree_with_the_written_ones() {
    let cases = [
        ("fcn_alexnet_gray_deploy.prototxt", vec![("score", 18)], "upscore", vec![1, 2, 319, 319]),
        (
            "fcn8s_gray_deploy.prototxt",
            vec![("score_pool4c", 5), ("score_pool3c", 9), ("score", 31)],
            "upscore8",
            vec![1, 2, 344, 344],
        ),
    ];
    for (file, crops, upscore, upscore_shape) in cases {
        let source = read(&shared("golden/caffe/prototxt").join(file));
        let compiled = compile(&source, &options(Phase::Test, &[]));
        let graph = compiled.graph.expect("graph");
        for (layer, offset) in crops {
            let node = graph.node_by_name(layer).expect("crop layer");
            assert_eq!(node.crop_offsets, Some(vec![0, 0, offset, offset]), "{file} {layer}");
        }
        assert_eq!(graph.blob_shape(upscore).map(|s| s.0.clone()), Some(upscore_shape));
        assert!(compiled.diags.iter().all(|d| !d.code.starts_with("lvc::crop")), "{file}");
    }
}
