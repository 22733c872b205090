//! `lvc check` on broken nets: the rendered diagnostics (human) and the JSON
//! report are snapshotted per file; plus the JSON schema and exit codes.

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
    let stem = Path::new(file).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
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
            assert!(["error", "warning", "advice"].contains(&d["severity"].as_str().expect("severity")));
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
    assert!(text(&clean.stdout).ends_with("fcn8s_gray_deploy.prototxt: 0 errors, 0 warnings, 47 layers\n"), "{}", text(&clean.stdout));

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
    let dot = lvc(&["dot", "-o", &out_arg, "../shared/golden/caffe/prototxt/fcn8s_gray_deploy.prototxt"]);
    assert_eq!(dot.status.code(), Some(0));
    let written = std::fs::read_to_string(&out).expect("dot file");
    assert!(written.starts_with("digraph net {") && written.contains("upscore8\\n1×2×344×344"));

    let broken = lvc(&["print", "tests/fixtures/broken/several_errors.prototxt"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("lvc::graph::unknown_type"));
    assert!(text(&broken.stdout).contains("[?]"));
}
