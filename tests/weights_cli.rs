//! `lvc weights check` and `lvc weights convert` on the golden Caffe models:
//! exit codes, the table, JSON and conversions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::text;
use lvc_runtime::weights::{
    read_caffemodel, read_safetensors, write_caffemodel, WeightBlob, WeightsFile, WeightsLayer,
};
use serde_json::Value;

fn golden_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/golden/caffe")).to_path_buf()
}

/// Runs `lvc` in the golden folder, so paths (and snapshots) are relative.
fn lvc(args: &[&str]) -> Output {
    common::lvc_in(args, &golden_dir())
}

const GRAY: &str = "prototxt/fcn_alexnet_slim_gray_deploy.prototxt";
const RGB_WEIGHTS: &str = "models/fcn_alexnet_slim_rgb.caffemodel";

#[test]
fn rgb_weights_into_the_gray_net_fail_on_conv1_only() {
    let out = lvc(&["weights", "check", "--model", GRAY, "--weights", RGB_WEIGHTS]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    insta::assert_snapshot!("rgb_into_gray_human", text(&out.stdout));
}

#[test]
fn json_names_conv1_param_0_with_both_shapes_and_nothing_else() {
    let out =
        lvc(&["weights", "check", "--model", GRAY, "--weights", RGB_WEIGHTS, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(json["loads"], false);
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 9, "every learnable layer is listed");
    let bad: Vec<&Value> = layers.iter().filter(|l| l["status"] != "ok").collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["layer"], "conv1");
    assert_eq!(bad[0]["status"], "shape-mismatch");
    assert_eq!(
        bad[0]["params"],
        serde_json::json!([{"index": 0, "expected": [96, 1, 11, 11], "found": [96, 3, 11, 11]}])
    );
    assert_eq!(bad[0]["line"], 24);
    assert!(bad[0]["fix"].as_str().unwrap().contains("--adapt conv1=sum"));
}

#[test]
fn adapting_conv1_makes_it_load() {
    for fix in ["conv1=sum", "conv1=mean"] {
        let out = lvc(&[
            "weights",
            "check",
            "--model",
            GRAY,
            "--weights",
            RGB_WEIGHTS,
            "--adapt",
            fix,
            "--format",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{fix}: {}", text(&out.stderr));
        let json: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
        assert_eq!(json["loads"], true);
        assert!(json["layers"][0]["adapted"]
            .as_str()
            .unwrap()
            .contains("96 3 11 11 (34848) → 96 1 11 11 (11616)"));
    }
}

#[test]
fn an_adaptation_that_does_not_fit_cannot_run() {
    let out = lvc(&[
        "weights",
        "check",
        "--model",
        GRAY,
        "--weights",
        RGB_WEIGHTS,
        "--adapt",
        "conv1=replicate",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("lvc::weights::adapt") && err.contains("--adapt conv1=sum"), "{err}");
    let out = lvc(&[
        "weights",
        "check",
        "--model",
        GRAY,
        "--weights",
        RGB_WEIGHTS,
        "--adapt",
        "conv1=avg",
    ]);
    assert_eq!(out.status.code(), Some(2), "clap rejects an unknown mode");
    assert!(text(&out.stderr).contains("unknown channel mode `avg`"));
}

#[test]
fn slim_weights_into_the_full_net_list_all_three_layers() {
    let out = lvc(&[
        "weights",
        "check",
        "--model",
        "prototxt/fcn_alexnet_gray_deploy.prototxt",
        "--weights",
        "models/fcn_alexnet_slim_gray.caffemodel",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let bad: Vec<&str> = json["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["status"] != "ok")
        .map(|l| l["layer"].as_str().unwrap())
        .collect();
    assert_eq!(bad, vec!["fc6", "fc7", "score_fr"]);
    let reinit = ["--adapt", "reinit=fc6", "--adapt", "reinit=fc7", "--adapt", "reinit=score_fr"];
    let mut args = vec![
        "weights",
        "check",
        "--model",
        "prototxt/fcn_alexnet_gray_deploy.prototxt",
        "--weights",
        "models/fcn_alexnet_slim_gray.caffemodel",
    ];
    args.extend(reinit);
    let out = lvc(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout)
        .contains("adapted fc6: re-initialised from the prototxt fillers (gaussian, constant)"));
}

#[test]
fn a_renamed_layer_is_reported_but_loads() {
    let out = lvc(&[
        "weights",
        "check",
        "--model",
        "prototxt/errors/renamed_conv1.prototxt",
        "--weights",
        "models/fcn_alexnet_slim_gray.caffemodel",
    ]);
    assert_eq!(out.status.code(), Some(0), "Caffe only logs 'Ignoring source layer conv1'");
    insta::assert_snapshot!("renamed_conv1_human", text(&out.stdout));
}

#[test]
fn a_missing_bias_is_a_blob_count_mismatch() {
    let args = [
        "weights",
        "check",
        "--model",
        "prototxt/errors/upscore_bias.prototxt",
        "--weights",
        "models/fcn_alexnet_slim_gray.caffemodel",
    ];
    let out = lvc(&[&args[..], &["--format", "json"]].concat());
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    let upscore =
        json["layers"].as_array().unwrap().iter().find(|l| l["layer"] == "upscore").unwrap();
    assert_eq!(upscore["status"], "blob-count-mismatch");
    assert_eq!(
        upscore["params"][1],
        serde_json::json!({"index": 1, "expected": [2], "found": null})
    );
    let out = lvc(&[&args[..], &["--adapt", "reinit=upscore"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn matching_models_load_with_phase_flags() {
    let out = lvc(&[
        "weights",
        "check",
        "--model",
        "prototxt/layer_probe.prototxt",
        "--phase",
        "train",
        "--weights",
        "models/layer_probe.caffemodel",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("— loads"));
}

#[test]
fn unreadable_inputs_cannot_run() {
    let out = lvc(&["weights", "check", "--model", GRAY, "--weights", "models/nope.caffemodel"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("lvc::weights::io") && err.contains("models/nope.caffemodel"), "{err}");

    let out = lvc(&["weights", "check", "--model", GRAY, "--weights", "models/fcn8s_slim_gray.h5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("lvc::weights::format"));

    let out = lvc(&[
        "weights",
        "check",
        "--model",
        "prototxt/errors/typo_field.prototxt",
        "--weights",
        RGB_WEIGHTS,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("has errors"), "{}", text(&out.stderr));
}

#[test]
fn a_damaged_caffemodel_names_file_and_byte() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(golden_dir().join("models/layer_probe.caffemodel")).unwrap();
    let cut = dir.path().join("cut.caffemodel");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = lvc(&[
        "weights",
        "check",
        "--model",
        "prototxt/layer_probe.prototxt",
        "--weights",
        cut.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("lvc::weights::malformed")
            && err.contains("cut.caffemodel")
            && err.contains("at byte"),
        "{err}"
    );
}

#[test]
fn convert_round_trips_through_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("gray.safetensors");
    let back = dir.path().join("gray.caffemodel");
    let st_arg = st.to_str().unwrap();
    let out = lvc(&[
        "weights",
        "convert",
        "--model",
        GRAY,
        "models/fcn_alexnet_slim_gray.caffemodel",
        st_arg,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("9 layers with weights, 7301572 values"),
        "{}",
        text(&out.stdout)
    );
    let snapshot = read_safetensors(&st).unwrap();
    assert_eq!(snapshot.roles["conv1"], vec!["weight", "bias"]);

    let out = lvc(&["weights", "convert", st_arg, back.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let original =
        read_caffemodel(&golden_dir().join("models/fcn_alexnet_slim_gray.caffemodel")).unwrap();
    let reread = read_caffemodel(&back).unwrap();
    for (a, b) in original.layers.iter().zip(&reread.layers) {
        assert_eq!(a.name, b.name);
        for (x, y) in a.blobs.iter().zip(&b.blobs) {
            assert_eq!(x.shape, y.shape);
            assert!(
                x.data.iter().zip(&y.data).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{}",
                a.name
            );
        }
    }

    // The checked file loads into its own net.
    let out = lvc(&["weights", "check", "--model", GRAY, "--weights", st_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn convert_with_a_model_writes_nothing_unless_it_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("gray.caffemodel");
    let target = out_path.to_str().unwrap();
    let out = lvc(&["weights", "convert", "--model", GRAY, RGB_WEIGHTS, target]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out_path.exists());
    assert!(text(&out.stderr).contains("not written"));

    let out =
        lvc(&["weights", "convert", "--model", GRAY, "--adapt", "conv1=sum", RGB_WEIGHTS, target]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let converted = read_caffemodel(&out_path).unwrap();
    assert_eq!(converted.layer("conv1").unwrap().blobs[0].shape, vec![96, 1, 11, 11]);
    let out = lvc(&["weights", "check", "--model", GRAY, "--weights", target]);
    assert_eq!(out.status.code(), Some(0));

    let out = lvc(&["weights", "convert", "--adapt", "conv1=sum", RGB_WEIGHTS, target]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--adapt needs --model"));
}

#[test]
fn inner_product_weights_are_convolutionalized_on_request() {
    // DIGITS' net surgery: fc6 was an InnerProduct (3 x 16, legacy 4-D dims
    // as in 2014 model-zoo files) and is a 2x2 convolution over 4 channels now.
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("fcn.prototxt");
    std::fs::write(
        &model,
        "layer { name: \"data\" type: \"Input\" top: \"data\" input_param { shape { dim: 1 dim: 4 dim: 2 dim: 2 } } }\n\
         layer { name: \"fc6\" type: \"Convolution\" bottom: \"data\" top: \"fc6\"\n\
         convolution_param { num_output: 3 kernel_size: 2 } }\n",
    )
    .unwrap();
    let weights = dir.path().join("ip.caffemodel");
    let ip = WeightsLayer {
        name: "fc6".into(),
        kind: "InnerProduct".into(),
        blobs: vec![
            WeightBlob {
                shape: vec![1, 1, 3, 16],
                legacy_4d: true,
                data: (0..48).map(|v| v as f32).collect(),
            },
            WeightBlob { shape: vec![1, 1, 1, 3], legacy_4d: true, data: vec![0.5; 3] },
        ],
    };
    write_caffemodel(&weights, &WeightsFile { name: None, layers: vec![ip] }).unwrap();
    let (m, w) = (model.to_str().unwrap(), weights.to_str().unwrap());

    let out = lvc(&["weights", "check", "--model", m, "--weights", w, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(
        json["layers"][0]["params"],
        serde_json::json!([{"index": 0, "expected": [3, 4, 2, 2], "found": [1, 1, 3, 16]}])
    );
    assert!(json["layers"][0]["fix"].as_str().unwrap().contains("--adapt convolutionalize"));

    let converted = dir.path().join("conv.caffemodel");
    let out = lvc(&[
        "weights",
        "convert",
        "--model",
        m,
        "--adapt",
        "convolutionalize",
        w,
        converted.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let fc6 = read_caffemodel(&converted).unwrap().layers.remove(0);
    assert_eq!(
        fc6.blobs[0],
        WeightBlob::new(vec![3, 4, 2, 2], (0..48).map(|v| v as f32).collect())
    );
    assert_eq!(fc6.blobs[1], WeightBlob::new(vec![3], vec![0.5; 3]));
}

#[test]
fn help_shows_examples_and_every_adapt_form() {
    let out = lvc(&["weights", "check", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for expected in
        ["Examples:", "--adapt conv1=sum", "reinit=<layer>", "convolutionalize", "Exit status"]
    {
        assert!(help.contains(expected), "{expected} missing from:\n{help}");
    }
    let out = lvc(&["weights", "convert", "--help"]);
    assert!(text(&out.stdout)
        .contains("lvc weights convert fcn_alexnet.caffemodel fcn_alexnet.safetensors"));
}
