//! `lvc check` on broken nets: the rendered diagnostics (human) and the JSON
//! report are snapshotted per file; plus the JSON schema and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod common;

use std::path::Path;

use common::{lvc, text};
use serde_json::Value;

/// Broken nets: ours, then Caffe's golden error cases.
fn broken_files() -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["tests/fixtures/broken", "../shared/golden/caffe/prototxt/errors"] {
        let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut names: Vec<String> = std::fs::read_dir(&full)
            .expect("fixture dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".prototxt"))
            .collect();
        names.sort();
        files.extend(names.into_iter().map(|n| format!("{dir}/{n}")));
    }
    files
}

fn snapshot_name(file: &str) -> String {
    let stem =
        Path::new(file).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if file.contains("golden") {
        format!("golden_{stem}")
    } else {
        stem
    }
}

#[test]
fn broken_nets_render_every_problem() {
    let files = broken_files();
    assert!(files.len() >= 27, "{} broken nets", files.len());
    for file in &files {
        let human = lvc(&["check", file]);
        let json = lvc(&["check", "--format", "json", file]);
        let report: Value = serde_json::from_str(&text(&json.stdout)).expect("json report");
        let ok = report["files"][0]["ok"].as_bool().expect("ok");
        let expected = if ok { 0 } else { 1 };
        assert_eq!(human.status.code(), Some(expected), "{file}: human exit code");
        assert_eq!(json.status.code(), Some(expected), "{file}: json exit code");
        let name = snapshot_name(file);
        insta::assert_snapshot!(format!("{name}_human"), text(&human.stdout));
        insta::assert_snapshot!(format!("{name}_json"), text(&json.stdout));
    }
}

#[test]
fn json_report_has_the_documented_schema() {
    let out = lvc(&[
        "check",
        "--format",
        "json",
        "tests/fixtures/broken/several_errors.prototxt",
        "../shared/golden/caffe/prototxt/fcn_alexnet_gray_deploy.prototxt",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(&text(&out.stdout)).expect("json");
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&report), ["files"]);
    let files = report["files"].as_array().expect("files");
    assert_eq!(files.len(), 2);
    for f in files {
        assert_eq!(keys(f), ["diagnostics", "ok", "path", "summary"]);
        assert_eq!(keys(&f["summary"]), ["errors", "inputs", "layers", "outputs", "warnings"]);
        for d in f["diagnostics"].as_array().expect("diagnostics") {
            assert_eq!(keys(d), ["code", "column", "help", "layer", "line", "message", "severity"]);
            assert!(
                ["error", "warning", "advice"].contains(&d["severity"].as_str().expect("severity"))
            );
        }
    }
    assert_eq!(files[0]["ok"], false);
    assert!(files[0]["summary"]["errors"].as_u64().expect("errors") >= 5);
    assert_eq!(files[1]["ok"], true);
    assert_eq!(files[1]["summary"]["layers"], 26);
    assert_eq!(files[1]["summary"]["inputs"][0]["shape"], serde_json::json!([1, 1, 256, 256]));
    assert_eq!(files[1]["summary"]["outputs"][0]["name"], "score");
}

#[test]
fn exit_codes() {
    let clean = lvc(&["check", "../shared/golden/caffe/prototxt/fcn8s_gray_deploy.prototxt"]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stdout));
    assert!(
        text(&clean.stdout)
            .ends_with("fcn8s_gray_deploy.prototxt: 0 errors, 0 warnings, 47 layers\n"),
        "{}",
        text(&clean.stdout)
    );

    // Warnings alone keep the exit status 0.
    let warned = lvc(&["check", "tests/fixtures/broken/wrong_crop_offset.prototxt"]);
    assert_eq!(warned.status.code(), Some(0));

    let broken = lvc(&["check", "tests/fixtures/broken/unknown_type.prototxt"]);
    assert_eq!(broken.status.code(), Some(1));

    let missing = lvc(&["check", "tests/fixtures/broken/no_such_file.prototxt"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no_such_file.prototxt"));

    for bad in [["--input-shape", "data=1,x"], ["--phase", "validate"], ["--level", "high"]] {
        let out = lvc(&["check", bad[0], bad[1], "tests/fixtures/broken/unknown_type.prototxt"]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }

    // --input-shape supplies what the file lacks.
    let supplied = lvc(&[
        "check",
        "--input-shape",
        "data=1,3,32,32",
        "--input-shape",
        "label=1,1,32,32",
        "tests/fixtures/broken/missing_input_shape.prototxt",
    ]);
    assert_eq!(supplied.status.code(), Some(0), "{}", text(&supplied.stdout));
}

#[test]
fn print_and_dot_show_the_graph() {
    let print = lvc(&["print", "../shared/golden/caffe/prototxt/fcn_alexnet_gray_deploy.prototxt"]);
    assert_eq!(print.status.code(), Some(0));
    let listing = text(&print.stdout);
    assert!(listing.contains("data_data_0_split  Split (inserted)"), "{listing}");
    assert!(listing.contains("upscore[1×2×319×319]"));
    assert!(listing.contains("parameters: 56,861,124"));

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("net.dot");
    let out_arg = out.to_string_lossy().into_owned();
    let dot =
        lvc(&["dot", "-o", &out_arg, "../shared/golden/caffe/prototxt/fcn8s_gray_deploy.prototxt"]);
    assert_eq!(dot.status.code(), Some(0));
    let written = std::fs::read_to_string(&out).expect("dot file");
    assert!(written.starts_with("digraph net {") && written.contains("upscore8\\n1×2×344×344"));

    let broken = lvc(&["print", "tests/fixtures/broken/several_errors.prototxt"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("lvc::graph::unknown_type"));
    assert!(text(&broken.stdout).contains("[?]"));
}

/// Issue 13, class 4: nets whose shapes cannot exist (generated here) are
/// errors at the layer, exit 1, never a wrapped shape or a panic; `lvc
/// print` never shows a negative parameter count.
#[test]
fn impossible_shapes_are_errors_not_wrapped_numbers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 3 dim: 64 dim: 64 } } }\n";
    let cases = [
        ("input", "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 99999999999 dim: 99999999999 dim: 99999999999 dim: 99999999999 } } }\n".to_string()),
        ("conv", format!("{input}layer {{ name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv' convolution_param {{ num_output: 4000000000 kernel_size: 60000 pad: 30000 }} }}\n")),
        ("dilation", format!("{input}layer {{ name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv' convolution_param {{ num_output: 2 kernel_size: 4294967295 dilation: 4294967295 }} }}\n")),
        ("deconv", format!("{input}layer {{ name: 'up' type: 'Deconvolution' bottom: 'data' top: 'up' convolution_param {{ num_output: 2 kernel_size: 4 stride: 2000000000 }} }}\n")),
        ("fc", format!("{input}layer {{ name: 'fc' type: 'InnerProduct' bottom: 'data' top: 'fc' inner_product_param {{ num_output: 4000000000 }} }}\n")),
        ("tile", format!("{input}layer {{ name: 't' type: 'Tile' bottom: 'data' top: 't' tile_param {{ tiles: 2000000000 }} }}\n")),
    ];
    for (name, net) in cases {
        let path = dir.path().join(format!("{name}.prototxt"));
        std::fs::write(&path, net).expect("write net");
        let path = path.to_string_lossy().into_owned();
        let out = lvc(&["check", &path]);
        let shown = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{name}: {shown}{}", text(&out.stderr));
        assert!(shown.starts_with("lvc::shape::too_large"), "{name}: {shown}");
        assert!(shown.contains(&format!("[{path}:")), "{name}: the file and place: {shown}");
        assert!(shown.contains("help: "), "{name}: {shown}");
        let print = lvc(&["print", &path]);
        assert_eq!(print.status.code(), Some(1), "{name}");
        let listing = text(&print.stdout);
        assert!(!listing.contains("parameters: -"), "{name}: {listing}");
        assert!(!text(&print.stderr).contains("panicked"), "{name}");
    }
}

/// `--memory`: the estimate per phase, human and JSON; a phase with errors
/// says so instead.
#[test]
fn memory_estimates_per_phase() {
    let out = lvc(&["check", "--memory", "models/demo.prototxt"]);
    assert_eq!(out.status.code(), Some(0));
    let shown = text(&out.stdout);
    let lines: Vec<&str> = shown.lines().collect();
    assert!(lines[lines.len() - 2].starts_with("  memory, TRAIN (training with SGD): "), "{shown}");
    assert!(
        lines[lines.len() - 2].contains("gradients")
            && lines[lines.len() - 2].contains("solver history"),
        "{shown}"
    );
    assert!(lines[lines.len() - 1].starts_with("  memory, TEST (inference): "), "{shown}");
    assert!(!lines[lines.len() - 1].contains("gradients"), "{shown}");

    let json = lvc(&["check", "--memory", "--format", "json", "models/demo.prototxt"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let memory = &report["files"][0]["memory"];
    assert_eq!(memory["train"]["mode"], "training");
    assert_eq!(memory["train"]["history_blobs"], 1);
    assert_eq!(memory["test"]["mode"], "inference");
    let total = |e: &serde_json::Value| e["total"].as_u64().expect("bytes");
    let sum = |e: &serde_json::Value| {
        ["parameters", "activations", "gradients", "history", "workspace"]
            .iter()
            .map(|k| e[k].as_u64().expect(k))
            .sum::<u64>()
    };
    assert_eq!(total(&memory["train"]), sum(&memory["train"]));
    assert!(total(&memory["train"]) > total(&memory["test"]));
    // Twice the batch: twice the activations, but for the few (loss, Dice)
    // blobs whose size does not follow the batch.
    let big = lvc(&[
        "check",
        "--memory",
        "--format",
        "json",
        "--input-shape",
        "data=8,1,256,256",
        "--input-shape",
        "label=8,1,256,256",
        "models/demo.prototxt",
    ]);
    let big: serde_json::Value = serde_json::from_slice(&big.stdout).expect("JSON");
    let (one, two) = (
        memory["test"]["activations"].as_u64().unwrap(),
        big["files"][0]["memory"]["test"]["activations"].as_u64().unwrap(),
    );
    assert!((2 * one - 64..=2 * one).contains(&two), "{one} → {two}");
    // Without --memory the JSON has no such key (the documented schema).
    let plain: serde_json::Value =
        serde_json::from_slice(&lvc(&["check", "--format", "json", "models/demo.prototxt"]).stdout)
            .expect("JSON");
    assert!(plain["files"][0].get("memory").is_none());

    let broken = lvc(&["check", "--memory", "tests/fixtures/broken/unknown_type.prototxt"]);
    assert!(
        text(&broken.stdout)
            .contains("  memory, TEST: not estimated, the net has errors in this phase"),
        "{}",
        text(&broken.stdout)
    );
}

/// Issue 13, class 5: thousands of errors in one file are all reported, in
/// file order, human and JSON (the speed is measured by `make bench-check`,
/// not here).
#[test]
fn thousands_of_errors_are_all_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut net = String::from("layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n");
    for i in 0..3000 {
        net.push_str(&format!("layer {{ name: 'c{i}' type: 'Convolution' bottom: 'data' top: 'c{i}' convolution_param {{ num_output: 4 kernel_size: 3 group: 3 }} }}\n"));
    }
    let path = dir.path().join("many.prototxt");
    std::fs::write(&path, net).expect("write net");
    let path = path.to_string_lossy().into_owned();
    let human = lvc(&["check", &path]);
    assert_eq!(human.status.code(), Some(1));
    let shown = text(&human.stdout);
    assert_eq!(shown.matches("lvc::shape::group").count(), 3000);
    assert!(shown.contains(&format!("[{path}:3001:")), "the last layer's line");
    assert!(shown.ends_with("many.prototxt: 3000 errors, 0 warnings, 3001 layers\n"));
    let json: serde_json::Value =
        serde_json::from_slice(&lvc(&["check", "--format", "json", &path]).stdout).expect("JSON");
    let diags = json["files"][0]["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(diags.len(), 3000);
    assert_eq!(diags[2999]["line"], 3001);
    assert!(diags.windows(2).all(|w| w[0]["line"].as_u64() < w[1]["line"].as_u64()));
}
