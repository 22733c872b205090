//! `lvc train` and `lvc time` from the command line: a tiny net trained with
//! a step schedule, tests and snapshots; the golden FCN-AlexNet losses; and
//! the errors for unreadable solvers, nets and feeds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod common;

use std::path::Path;
use std::process::Output;

use common::{golden, lvc_in, text};
use lvc_runtime::solver::read_state;
use lvc_runtime::weights::read_safetensors;

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
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn train_logs_iterations_tests_and_snapshots_as_json() {
    let dir = tiny_run();
    let out = train_sgd(dir.path(), &["--out", "run", "--log-format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = json_lines(&out);
    let of = |kind: &str| events.iter().filter(|e| e["event"] == kind).collect::<Vec<_>>();
    let iterations = of("iteration");
    assert_eq!(
        iterations.iter().map(|e| e["iter"].as_i64().unwrap()).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
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
    let check = lvc_in(
        &[
            "weights",
            "check",
            "--model",
            "net.prototxt",
            "--weights",
            "run/tiny_iter_4.safetensors",
        ],
        dir.path(),
    );
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
        &[
            "train",
            "--solver",
            &solver,
            "--weights",
            &weights,
            "--feed",
            &data,
            "--feed",
            &label,
            "--max-iter",
            "2",
            "--log-format",
            "json",
            "--out",
            "run",
        ],
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

    let short = lvc_in(
        &["train", "--solver", "solver.prototxt", "--feed", "data=data.f32:1x1x8x8"],
        dir.path(),
    );
    assert_eq!(short.status.code(), Some(2));
    assert!(text(&short.stderr).contains("data.f32 holds 64 bytes"), "{}", text(&short.stderr));

    std::fs::write(
        dir.path().join("lost.prototxt"),
        SOLVER.replace("net.prototxt", "lost_net.prototxt"),
    )
    .unwrap();
    let mut args = vec!["train", "--solver", "lost.prototxt"];
    args.extend(FEEDS);
    let lost = lvc_in(&args, dir.path());
    assert_eq!(lost.status.code(), Some(2));
    assert!(
        text(&lost.stderr).contains("net file 'lost_net.prototxt' not found"),
        "{}",
        text(&lost.stderr)
    );

    std::fs::write(
        dir.path().join("bad.prototxt"),
        "base_lr: 0.1\nlr_policy: \"sometimes\"\nnet: \"net.prototxt\"\n",
    )
    .unwrap();
    let bad = lvc_in(&["train", "--solver", "bad.prototxt"], dir.path());
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("sometimes"), "{}", text(&bad.stderr));
}

#[test]
fn time_reports_forward_backward_and_every_layer() {
    let dir = tiny_run();
    let out = lvc_in(
        &[
            "time",
            "--model",
            "net.prototxt",
            "--phase",
            "train",
            "--iterations",
            "3",
            "--format",
            "json",
        ],
        dir.path(),
    );
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

    // --no-layers: the layers keep their FLOPs, and their times are absent, not 0.
    let totals = lvc_in(
        &[
            "time",
            "--model",
            "net.prototxt",
            "--phase",
            "train",
            "--iterations",
            "1",
            "--no-layers",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert!(totals.status.success(), "{}", text(&totals.stderr));
    let totals: serde_json::Value = serde_json::from_slice(&totals.stdout).unwrap();
    assert!(totals["forward_backward_ms"].as_f64().unwrap() > 0.0, "{totals}");
    assert_eq!(totals["layers"][0]["forward_flops"].as_f64(), Some(64.0));
    assert!(
        totals["layers"][0]["forward_ms"].is_null() && totals["layers"][0]["backward_ms"].is_null(),
        "{totals}"
    );

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
        (
            "train",
            &[
                "--solver",
                "--weights",
                "--snapshot",
                "--feed",
                "--out",
                "--log-format",
                "--device",
                "--max-iter",
                "solverstate",
            ][..],
        ),
        (
            "time",
            &[
                "--model",
                "--phase",
                "--stage",
                "--input-shape",
                "--iterations",
                "--format",
                "--device",
                "--no-layers",
            ][..],
        ),
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

/// NET with dropout on the scores, trained with Adam, a multistep schedule
/// and a smoothed loss: everything `--snapshot` must restore.
fn resumable_run() -> tempfile::TempDir {
    let dir = tiny_run();
    let dropout = r#"layer { name: "drop" type: "Dropout" bottom: "score" top: "score" dropout_param { dropout_ratio: 0.3 } }
layer { name: "loss""#;
    std::fs::write(
        dir.path().join("drop_net.prototxt"),
        NET.replace(r#"layer { name: "loss""#, dropout),
    )
    .unwrap();
    let solver = SOLVER
        .replace("net.prototxt", "drop_net.prototxt")
        .replace(
            "lr_policy: \"step\"",
            "type: \"Adam\"\nlr_policy: \"multistep\"\nstepvalue: 1\nstepvalue: 3\naverage_loss: 3",
        )
        .replace("base_lr: 0.5", "base_lr: 0.1")
        .replace("max_iter: 4", "max_iter: 5")
        .replace("snapshots/tiny", "tiny");
    std::fs::write(dir.path().join("adam.prototxt"), solver).unwrap();
    dir
}

fn train_json(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--solver", "adam.prototxt", "--log-format", "json"];
    args.extend(FEEDS);
    args.extend(extra);
    lvc_in(&args, dir)
}

/// The events without their timing, snapshot paths reduced to file names.
fn comparable(events: &[serde_json::Value]) -> Vec<serde_json::Value> {
    events
        .iter()
        .cloned()
        .map(|mut e| {
            if let Some(e) = e.as_object_mut() {
                e.remove("ms");
                for key in ["path", "state"] {
                    if let Some(path) = e
                        .get(key)
                        .and_then(|p| p.as_str())
                        .map(|p| Path::new(p).file_name().unwrap().to_string_lossy().into_owned())
                    {
                        e.insert(key.to_string(), path.into());
                    }
                }
            }
            e
        })
        .collect()
}

#[test]
fn snapshot_resumes_a_feed_run_bit_exactly() {
    let dir = resumable_run();
    let straight = train_json(dir.path(), &["--out", "straight"]);
    assert!(straight.status.success(), "{}", text(&straight.stderr));
    // The interruption: the same run stopped at iteration 2 (snapshot 2).
    let cut = train_json(dir.path(), &["--out", "resumed", "--max-iter", "2"]);
    assert!(cut.status.success(), "{}", text(&cut.stderr));
    assert!(dir.path().join("resumed/tiny_iter_2.solverstate.safetensors").is_file());
    let resumed = train_json(
        dir.path(),
        &["--out", "resumed", "--snapshot", "resumed/tiny_iter_2.solverstate.safetensors"],
    );
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));

    let resumed_events = json_lines(&resumed);
    assert_eq!(resumed_events[0]["event"], "resume");
    assert_eq!(resumed_events[0]["iter"], 2);
    assert_eq!(resumed_events[0]["weights"], "resumed/tiny_iter_2.safetensors");
    // From iteration 2 on, the same log: losses, smoothed losses, rates,
    // tests and snapshots (the straight run's snapshot at 2 is the cut's).
    let later: Vec<serde_json::Value> = json_lines(&straight)
        .into_iter()
        .filter(|e| {
            e["iter"].as_i64().unwrap() >= 2 && !(e["event"] == "snapshot" && e["iter"] == 2)
        })
        .collect();
    assert_eq!(comparable(&resumed_events[1..]), comparable(&later));
    let lrs: Vec<f64> = later
        .iter()
        .filter(|e| e["event"] == "iteration")
        .map(|e| e["lr"].as_f64().unwrap())
        .collect();
    let base = f64::from(0.1f32);
    assert_eq!(lrs, [base * 0.5, base * 0.25, base * 0.25], "multistep continues at its step");

    for iter in [2, 4, 5] {
        let weights = |run: &str| {
            read_safetensors(&dir.path().join(format!("{run}/tiny_iter_{iter}.safetensors")))
                .unwrap()
                .weights
        };
        assert_eq!(weights("resumed"), weights("straight"), "iteration {iter}: tensor for tensor");
        let state = |run: &str| {
            read_state(&dir.path().join(format!("{run}/tiny_iter_{iter}.solverstate.safetensors")))
                .unwrap()
        };
        assert_eq!(state("resumed"), state("straight"), "iteration {iter}: history and streams");
    }
}

/// A miette report as one line (its text is wrapped to the terminal width).
fn one_line(stderr: &[u8]) -> String {
    text(stderr).replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn snapshot_errors_name_the_file_and_the_param() {
    let dir = resumable_run();
    let cut = train_json(dir.path(), &["--out", "run", "--max-iter", "2"]);
    assert!(cut.status.success(), "{}", text(&cut.stderr));
    let state = "run/tiny_iter_2.solverstate.safetensors";

    let both =
        train_json(dir.path(), &["--snapshot", state, "--weights", "run/tiny_iter_2.safetensors"]);
    assert_eq!(both.status.code(), Some(2));
    assert!(text(&both.stderr).contains("cannot be used with"), "{}", text(&both.stderr));

    std::fs::write(
        dir.path().join("sgd.prototxt"),
        SOLVER.replace("net.prototxt", "drop_net.prototxt"),
    )
    .unwrap();
    let mut args = vec!["train", "--solver", "sgd.prototxt", "--snapshot", state];
    args.extend(FEEDS);
    let other_type = lvc_in(&args, dir.path());
    assert_eq!(other_type.status.code(), Some(2));
    let stderr = one_line(&other_type.stderr);
    assert!(
        stderr.contains(state) && stderr.contains("solver type Adam; this solver's type is SGD"),
        "{stderr}"
    );

    // The score bias no longer learns: the state's history for it has no place.
    let frozen = NET.replace(
        "convolution_param { num_output: 2",
        "param { lr_mult: 1 } param { lr_mult: 0 } convolution_param { num_output: 2",
    );
    std::fs::write(dir.path().join("drop_net.prototxt"), frozen).unwrap();
    let other_net = train_json(dir.path(), &["--snapshot", state]);
    assert_eq!(other_net.status.code(), Some(2));
    let stderr = one_line(&other_net.stderr);
    assert!(
        stderr.contains("lvc::solverstate::mismatch")
            && stderr.contains("`score` param 1 (shape [2]), which the net does not learn"),
        "{stderr}"
    );

    let weights_file = train_json(dir.path(), &["--snapshot", "run/tiny_iter_2.safetensors"]);
    assert_eq!(weights_file.status.code(), Some(2));
    assert!(
        one_line(&weights_file.stderr).contains("it is a weights file"),
        "{}",
        text(&weights_file.stderr)
    );
}

/// Protobuf's base-128 varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn len_field(out: &mut Vec<u8>, field: u64, payload: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Caffe's `SolverState` for an SGD run of the tiny net: iter, learned_net,
/// one `BlobProto` (shape, packed data) per param blob, current_step.
fn caffe_solverstate(iter: u64, learned_net: &str, histories: &[(Vec<i64>, Vec<f32>)]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, 1 << 3);
    varint(&mut out, iter);
    len_field(&mut out, 2, learned_net.as_bytes());
    for (shape, data) in histories {
        let mut dims = Vec::new();
        shape.iter().for_each(|&d| varint(&mut dims, d as u64));
        let mut blob_shape = Vec::new();
        len_field(&mut blob_shape, 1, &dims);
        let mut blob = Vec::new();
        len_field(&mut blob, 7, &blob_shape);
        len_field(&mut blob, 5, &data.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
        len_field(&mut out, 3, &blob);
    }
    varint(&mut out, 4 << 3);
    varint(&mut out, 0);
    out
}

/// `lvc train` of the tiny SGD solver on the fed pair, with `extra` flags.
fn train_sgd(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--solver", "solver.prototxt"];
    args.extend(FEEDS);
    args.extend(extra);
    lvc_in(&args, dir)
}

#[test]
fn a_second_writer_into_an_out_folder_is_refused_with_the_holders_pid() {
    let dir = tiny_run();
    let out_dir = dir.path().join("run");
    std::fs::create_dir_all(&out_dir).unwrap();
    // Held as another lvc process would hold it (flock belongs to the open file).
    let held = lvc_fsio::FolderLock::acquire(&out_dir.join(".lock")).unwrap();
    let out = train_sgd(dir.path(), &["--out", "run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let first = text(&out.stderr).lines().next().unwrap_or_default().to_string();
    assert_eq!(
        first,
        format!(
            "error: run is in use: run/.lock is held by another lvc process (PID {})",
            std::process::id()
        )
    );
    assert!(!out_dir.join("tiny_iter_2.safetensors").exists(), "nothing was trained");
    drop(held);
    let out = train_sgd(dir.path(), &["--out", "run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_caffe_solverstate_resumes_with_the_caffemodel_it_names() {
    let dir = tiny_run();
    let straight = train_sgd(dir.path(), &["--log-format", "json", "--out", "straight"]);
    assert!(straight.status.success(), "{}", text(&straight.stderr));

    // What Caffe would have written at iteration 2 with snapshot_prefix
    // "caffe/tiny": the weights as a .caffemodel and the momentum histories.
    let caffe = dir.path().join("caffe");
    std::fs::create_dir(&caffe).unwrap();
    let weights =
        read_safetensors(&dir.path().join("straight/tiny_iter_2.safetensors")).unwrap().weights;
    lvc_runtime::weights::caffemodel::write_caffemodel(
        &caffe.join("tiny_iter_2.caffemodel"),
        &weights,
    )
    .unwrap();
    let state =
        read_state(&dir.path().join("straight/tiny_iter_2.solverstate.safetensors")).unwrap();
    let histories: Vec<(Vec<i64>, Vec<f32>)> =
        state.params.iter().map(|p| (p.shape.clone(), p.history.clone())).collect();
    assert_eq!(histories.len(), 2, "score weight and bias");
    std::fs::write(
        caffe.join("tiny_iter_2.solverstate"),
        caffe_solverstate(2, "caffe/tiny_iter_2.caffemodel", &histories),
    )
    .unwrap();

    let resumed = train_sgd(
        dir.path(),
        &[
            "--log-format",
            "json",
            "--out",
            "resumed",
            "--snapshot",
            "caffe/tiny_iter_2.solverstate",
        ],
    );
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    let events = json_lines(&resumed);
    assert_eq!(events[0]["event"], "resume");
    assert_eq!(events[0]["iter"], 2);
    assert_eq!(events[0]["weights"], "caffe/tiny_iter_2.caffemodel");
    let final_weights = |run: &str| {
        read_safetensors(&dir.path().join(format!("{run}/tiny_iter_4.safetensors")))
            .unwrap()
            .weights
    };
    assert_eq!(
        final_weights("resumed"),
        final_weights("straight"),
        "SGD with momentum continues bit-identically"
    );

    // A state for another net: named, with the count Caffe would need.
    std::fs::write(
        caffe.join("bad_iter_2.solverstate"),
        caffe_solverstate(2, "caffe/tiny_iter_2.caffemodel", &histories[..1]),
    )
    .unwrap();
    let bad = train_sgd(dir.path(), &["--snapshot", "caffe/bad_iter_2.solverstate"]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = one_line(&bad.stderr);
    assert!(
        stderr.contains("bad_iter_2.solverstate")
            && stderr.contains("holds 1 history blobs; this net has 2 param blobs"),
        "{stderr}"
    );
}
