//! `lvc train` and `lvc time` from the command line: a tiny net trained with
//! a step schedule, tests and snapshots; the golden FCN-AlexNet losses; and
//! the errors for unreadable solvers, nets and feeds.

mod common;

use std::path::Path;
use std::process::Output;

use common::{golden, lvc_in, text};

fn write_f32(path: &Path, values: &[f32]) {
    std::fs::write(path, values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

const NET: &str = r#"
name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
layer { name: "score" type: "Convolution" bottom: "data" top: "score"
  convolution_param { num_output: 2 kernel_size: 1 weight_filler { type: "gaussian" std: 0.1 } bias_filler { type: "constant" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
layer { name: "accuracy" type: "Accuracy" bottom: "score" bottom: "label" top: "accuracy" include { phase: TEST } }
"#;

const SOLVER: &str = r#"
net: "net.prototxt"
base_lr: 0.5
lr_policy: "step"
gamma: 0.5
stepsize: 2
momentum: 0.9
max_iter: 4
display: 1
test_iter: 1
test_interval: 2
snapshot: 2
snapshot_prefix: "snapshots/tiny"
random_seed: 7
"#;

/// A folder with the tiny net, its solver and a separable input/label pair.
fn tiny_run() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("net.prototxt"), NET).unwrap();
    std::fs::write(dir.path().join("solver.prototxt"), SOLVER).unwrap();
    let data: Vec<f32> = (0..16).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
    let label: Vec<f32> = (0..16).map(|i| if i % 2 == 0 { 1.0 } else { 0.0 }).collect();
    write_f32(&dir.path().join("data.f32"), &data);
    write_f32(&dir.path().join("label.f32"), &label);
    dir
}

const FEEDS: [&str; 4] = ["--feed", "data=data.f32:1x1x4x4", "--feed", "label=label.f32:1x1x4x4"];

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

#[test]
fn train_logs_iterations_tests_and_snapshots_as_json() {
    let dir = tiny_run();
    let mut args = vec!["train", "--solver", "solver.prototxt", "--out", "run", "--log-format", "json"];
    args.extend(FEEDS);
    let out = lvc_in(&args, dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = json_lines(&out);
    let of = |kind: &str| events.iter().filter(|e| e["event"] == kind).collect::<Vec<_>>();
    let iterations = of("iteration");
    assert_eq!(iterations.iter().map(|e| e["iter"].as_i64().unwrap()).collect::<Vec<_>>(), [0, 1, 2, 3]);
    let lrs: Vec<f64> = iterations.iter().map(|e| e["lr"].as_f64().unwrap()).collect();
    assert_eq!(lrs, [0.5, 0.5, 0.25, 0.25]);
    let losses: Vec<f64> = iterations.iter().map(|e| e["loss"].as_f64().unwrap()).collect();
    let last = of("final")[0]["loss"].as_f64().unwrap();
    assert!(last < losses[0] * 0.5, "the separable problem is learnt: {losses:?} then {last}");
    // test_initialization (default true): tests at 0, 2 and after the last update.
    let tests = of("test");
    assert_eq!(tests.iter().map(|e| e["iter"].as_i64().unwrap()).collect::<Vec<_>>(), [0, 2, 4]);
    let accuracy = tests[2]["outputs"]["accuracy"][0].as_f64().unwrap();
    assert_eq!(accuracy, 1.0, "{tests:?}");
    // Snapshots go to --out with the prefix's file name.
    let snaps: Vec<&str> = of("snapshot").iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(snaps, ["run/tiny_iter_2.safetensors", "run/tiny_iter_4.safetensors"]);
    for snap in snaps {
        assert!(std::fs::metadata(dir.path().join(snap)).unwrap().len() > 0);
    }
    // A snapshot is a weights file lvc reads back.
    let check = lvc_in(&["weights", "check", "--model", "net.prototxt", "--weights", "run/tiny_iter_4.safetensors"], dir.path());
    assert!(check.status.success(), "{}{}", text(&check.stdout), text(&check.stderr));
}

#[test]
fn human_log_prints_like_caffe_and_max_iter_overrides() {
    let dir = tiny_run();
    let mut args = vec!["train", "--solver", "solver.prototxt", "--max-iter", "1", "--out", "run"];
    args.extend(FEEDS);
    let out = lvc_in(&args, dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Iteration 0, loss = "), "{stdout}");
    assert!(stdout.contains("Iteration 1, loss = "), "final forward: {stdout}");
    assert!(stdout.contains("Testing net (#0)"), "{stdout}");
    assert!(!stdout.contains("Iteration 2"), "{stdout}");
}

#[test]
fn golden_fcn_alexnet_losses_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let solver = golden("prototxt/fcn_alexnet_slim_gray_solver.prototxt");
    let weights = golden("models/fcn_alexnet_slim_gray.caffemodel");
    let data = format!("data={}:1x1x256x256", golden("inputs/input_gray_256.f32"));
    let label = format!("label={}:1x1x256x256", golden("inputs/label_disc_256.f32"));
    let out = lvc_in(
        &["train", "--solver", &solver, "--weights", &weights, "--feed", &data, "--feed", &label, "--max-iter", "2", "--log-format", "json", "--out", "run"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let want: Vec<f64> = std::fs::read_to_string(golden("train_fcn_alexnet_slim_gray/loss.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    let got: Vec<f64> = json_lines(&out).iter().filter_map(|e| e["loss"].as_f64()).collect();
    assert_eq!(got.len(), 3, "two iterations and the final forward");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= 1e-4 * w, "iteration {i}: {g} vs Caffe {w}");
    }
}

#[test]
fn unreadable_inputs_are_reported_with_exit_2() {
    let dir = tiny_run();
    let missing = lvc_in(&["train", "--solver", "nope.prototxt"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("nope.prototxt"), "{}", text(&missing.stderr));

    let short = lvc_in(&["train", "--solver", "solver.prototxt", "--feed", "data=data.f32:1x1x8x8"], dir.path());
    assert_eq!(short.status.code(), Some(2));
    assert!(text(&short.stderr).contains("data.f32 holds 64 bytes"), "{}", text(&short.stderr));

    std::fs::write(dir.path().join("lost.prototxt"), SOLVER.replace("net.prototxt", "lost_net.prototxt")).unwrap();
    let mut args = vec!["train", "--solver", "lost.prototxt"];
    args.extend(FEEDS);
    let lost = lvc_in(&args, dir.path());
    assert_eq!(lost.status.code(), Some(2));
    assert!(text(&lost.stderr).contains("net file 'lost_net.prototxt' not found"), "{}", text(&lost.stderr));

    std::fs::write(dir.path().join("bad.prototxt"), "base_lr: 0.1\nlr_policy: \"sometimes\"\nnet: \"net.prototxt\"\n").unwrap();
    let bad = lvc_in(&["train", "--solver", "bad.prototxt"], dir.path());
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("sometimes"), "{}", text(&bad.stderr));
}

#[test]
fn time_reports_forward_backward_and_every_layer() {
    let dir = tiny_run();
    let out = lvc_in(&["time", "--model", "net.prototxt", "--phase", "train", "--iterations", "3", "--format", "json"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["forward_ms", "backward_ms", "forward_backward_ms"] {
        assert!(report[key].as_f64().unwrap() > 0.0, "{key}: {report}");
    }
    let layers = report["layers"].as_array().unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["score", "loss"]);
    assert_eq!(layers[0]["type"], "Convolution");
    // 1x1 conv, 1 → 2 channels over 4x4: 2·32·1 FLOPs forward.
    assert_eq!(layers[0]["forward_flops"].as_f64(), Some(64.0));
    assert!(layers[0]["backward_ms"].as_f64().unwrap() > 0.0);

    let deploy = lvc_in(&["time", "--model", "net.prototxt", "--iterations", "2"], dir.path());
    assert!(deploy.status.success(), "{}", text(&deploy.stderr));
    assert!(text(&deploy.stdout).contains("Average Forward pass"), "{}", text(&deploy.stdout));
    let zero = lvc_in(&["time", "--model", "net.prototxt", "--iterations", "0"], dir.path());
    assert_eq!(zero.status.code(), Some(2));
}

#[test]
fn train_and_time_help_show_flags_and_examples() {
    let dir = tempfile::tempdir().unwrap();
    for (sub, flags) in [
        ("train", &["--solver", "--weights", "--feed", "--out", "--log-format", "--device", "--max-iter"][..]),
        ("time", &["--model", "--phase", "--stage", "--input-shape", "--iterations", "--format", "--device", "--no-layers"][..]),
    ] {
        let out = lvc_in(&[sub, "--help"], dir.path());
        assert!(out.status.success());
        let help = text(&out.stdout);
        assert!(help.contains("Examples:"), "{sub}: {help}");
        for flag in flags {
            assert!(help.contains(flag), "{sub} --help lacks {flag}: {help}");
        }
    }
}
