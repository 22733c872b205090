//! The golden caffemodels written by real BVLC Caffe: every blob's shape,
//! count and statistics against the golden manifests, the documented
//! parameter totals, and exact caffemodel ↔ safetensors round trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::path::{Path, PathBuf};

use lvc_runtime::weights::{
    read_caffemodel, read_safetensors, write_caffemodel, write_safetensors, WeightsFile,
};
use serde_json::Value;

fn golden(rel: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden/caffe")).join(rel)
}

/// (caffemodel, manifest, key of the parameter list in the manifest)
const MODELS: [(&str, &str, &str); 5] = [
    ("fcn_alexnet_slim_gray", "fcn_alexnet_slim_gray", "params"),
    ("fcn_alexnet_slim_rgb", "fcn_alexnet_slim_rgb", "params"),
    ("fcn_alexnet_slim_gray_trained5", "train_fcn_alexnet_slim_gray", "final_params"),
    ("fcn8s_slim_gray", "fcn8s_slim_gray", "params"),
    ("layer_probe", "layer_probe", "params"),
];

fn load(model: &str) -> WeightsFile {
    read_caffemodel(&golden(&format!("models/{model}.caffemodel"))).unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) + 1e-9
}

#[test]
fn every_blob_matches_the_golden_manifest() {
    for (model, case, key) in MODELS {
        let file = load(model);
        let manifest: Value = serde_json::from_str(
            &std::fs::read_to_string(golden(&format!("{case}/manifest.json"))).unwrap(),
        )
        .unwrap();
        let params = manifest[key].as_array().unwrap();
        let with_blobs: usize = file.layers.iter().map(|l| l.blobs.len()).sum();
        assert_eq!(with_blobs, params.len(), "{model}: blob count");
        for p in params {
            let layer = p["layer"].as_str().unwrap();
            let index = p["index"].as_u64().unwrap() as usize;
            let blob =
                &file.layer(layer).unwrap_or_else(|| panic!("{model}: no layer {layer}")).blobs
                    [index];
            let shape: Vec<i64> =
                p["shape"].as_array().unwrap().iter().map(|d| d.as_i64().unwrap()).collect();
            assert_eq!(blob.shape, shape, "{model} {layer}.{index}");
            assert!(!blob.legacy_4d, "Caffe 1.0 writes BlobShape");
            assert_eq!(blob.count() as u64, p["count"].as_u64().unwrap());
            let stats = &p["stats"];
            let sum: f64 = blob.data.iter().map(|&v| f64::from(v)).sum();
            let l2 = blob.data.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
            let min = blob.data.iter().copied().fold(f32::INFINITY, f32::min);
            let max = blob.data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let what = format!("{model} {layer}.{index}");
            assert!(
                close(sum, stats["sum"].as_f64().unwrap(), 1e-6),
                "{what}: sum {sum} vs {}",
                stats["sum"]
            );
            assert!(close(l2, stats["l2"].as_f64().unwrap(), 1e-6), "{what}: l2");
            assert_eq!(min, stats["min"].as_f64().unwrap() as f32, "{what}: min");
            assert_eq!(max, stats["max"].as_f64().unwrap() as f32, "{what}: max");
        }
    }
}

#[test]
fn parameter_totals_match_the_readme() {
    assert_eq!(load("fcn_alexnet_slim_gray").param_count(), 7_301_572);
    assert_eq!(load("fcn_alexnet_slim_rgb").param_count(), 7_324_804);
    assert_eq!(load("fcn8s_slim_gray").param_count(), 2_594_230);
}

#[test]
fn every_layer_is_kept_including_splits_and_layers_without_blobs() {
    let file = load("fcn_alexnet_slim_gray");
    let names: Vec<&str> = file.layers.iter().map(|l| l.name.as_str()).collect();
    for expected in
        ["data", "data_data_0_split", "conv1", "relu1", "fc6", "score_fr", "upscore", "score"]
    {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    let conv1 = file.layer("conv1").unwrap();
    assert_eq!(conv1.kind, "Convolution");
    assert_eq!(conv1.blobs[0].shape, vec![96, 1, 11, 11]);
    assert_eq!(file.layer("upscore").unwrap().kind, "Deconvolution");
    assert!(file.layer("relu1").unwrap().blobs.is_empty());
}

#[test]
fn caffemodel_to_safetensors_to_caffemodel_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    for (model, _, _) in MODELS {
        let original = load(model);
        let st = dir.path().join(format!("{model}.safetensors"));
        write_safetensors(&st, &original, &Default::default()).unwrap();
        let via_st = read_safetensors(&st).unwrap().weights;
        let back = dir.path().join(format!("{model}.caffemodel"));
        write_caffemodel(&back, &via_st).unwrap();
        let reread = read_caffemodel(&back).unwrap();
        assert_eq!(reread.layers.len(), original.layers.len(), "{model}");
        for (a, b) in original.layers.iter().zip(&reread.layers) {
            assert_eq!(
                (&a.name, &a.kind, a.blobs.len()),
                (&b.name, &b.kind, b.blobs.len()),
                "{model}"
            );
            for (x, y) in a.blobs.iter().zip(&b.blobs) {
                assert_eq!(x.shape, y.shape);
                let bits = |d: &[f32]| d.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert!(bits(&x.data) == bits(&y.data), "{model} {}: floats differ", a.name);
            }
        }
        // Writing what was read gives the same bytes again.
        let again = dir.path().join(format!("{model}.again.caffemodel"));
        write_caffemodel(&again, &reread).unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&again).unwrap(), "{model}");
    }
}

#[test]
fn the_rewritten_caffemodel_keeps_the_packed_float_bytes_of_caffe() {
    // The float payload of Caffe's file and of ours is the same byte run.
    let original = std::fs::read(golden("models/layer_probe.caffemodel")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("probe.caffemodel");
    let file = load("layer_probe");
    write_caffemodel(&out, &file).unwrap();
    let ours = std::fs::read(&out).unwrap();
    for layer in file.layers.iter().filter(|l| !l.blobs.is_empty()) {
        for blob in &layer.blobs {
            let bytes: Vec<u8> = blob.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            let found_in = |hay: &[u8]| hay.windows(bytes.len()).any(|w| w == bytes.as_slice());
            assert!(found_in(&original) && found_in(&ours), "{}", layer.name);
        }
    }
    assert!(ours.len() < original.len(), "ours keeps only names, types and blobs");
}
