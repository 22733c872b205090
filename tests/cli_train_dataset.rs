//! `lvc train --dataset`, `lvc evaluate` and `lvc infer` end to end on a
//! 3-case phantom and a tiny FCN (one strided conv, 1x1 scores, bilinear
//! 4x upsampling).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use lvc_runtime::solver::read_state;
use lvc_runtime::weights::read_safetensors;
use serde_json::Value;

mod common;

const LVC: &str = env!("CARGO_BIN_EXE_lvc");

const TINY_NET: &str = r#"name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 1 dim: 256 dim: 256 } } }
layer { name: "label" type: "Input" top: "label" exclude { stage: "deploy" } input_param { shape { dim: 2 dim: 1 dim: 256 dim: 256 } } }
layer { name: "normalise" type: "Power" bottom: "data" top: "x" power_param { scale: 0.005 shift: -0.5 } }
layer { name: "conv1" type: "Convolution" bottom: "x" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 4 stride: 4 weight_filler { type: "msra" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "score_fr" type: "Convolution" bottom: "conv1" top: "score_fr"
  convolution_param { num_output: 2 kernel_size: 1 weight_filler { type: "msra" } } }
layer { name: "upscore" type: "Deconvolution" bottom: "score_fr" top: "upscore" param { lr_mult: 0 }
  convolution_param { num_output: 2 group: 2 bias_term: false kernel_size: 8 stride: 4 weight_filler { type: "bilinear" } } }
layer { name: "score" type: "Crop" bottom: "upscore" bottom: "data" top: "score" crop_param { axis: 2 offset: 2 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" exclude { stage: "deploy" } }
layer { name: "prob" type: "Softmax" bottom: "score" top: "prob" include { stage: "deploy" } }
"#;

fn solver(base_lr: &str) -> String {
    format!("net: \"tiny.prototxt\"\ntype: \"SGD\"\nbase_lr: {base_lr}\nmomentum: 0.9\nlr_policy: \"fixed\"\nmax_iter: 10\ndisplay: 0\nrandom_seed: 3\n")
}

/// TINY_NET with augmentation (its own random stream) and dropout
/// (libtorch's generator), trained with Adam and a multistep schedule that
/// steps in both epochs: everything `--resume` must restore.
fn augmented_net() -> String {
    let augment = r#"layer { name: "augment" type: "Augment" bottom: "data" bottom: "label" top: "data" top: "label" include { phase: TRAIN }
  augment_param { seed: 2 flip_prob: 0.5 affine_prob: 0.5 max_rotation_deg: 10 noise_prob: 0.5 noise_std: 5 } }
layer { name: "normalise""#;
    let dropout = r#"layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "drop1" type: "Dropout" bottom: "conv1" top: "conv1" dropout_param { dropout_ratio: 0.2 } }"#;
    TINY_NET
        .replace(r#"layer { name: "normalise""#, augment)
        .replace(r#"layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }"#, dropout)
}

const AUGMENTED_SOLVER: &str = "net: \"augmented.prototxt\"\ntype: \"Adam\"\nbase_lr: 0.01\nmomentum: 0.9\nlr_policy: \"multistep\"\ngamma: 0.5\nstepvalue: 5\nstepvalue: 20\nmax_iter: 10\ndisplay: 0\nrandom_seed: 4\n";

/// A 3-case phantom imported with one val patient, the tiny net and its
/// solvers; built once per test binary.
struct Fixture {
    root: PathBuf,
}

impl Fixture {
    fn dataset(&self) -> PathBuf {
        self.root.join("ds")
    }
    fn solver(&self) -> PathBuf {
        self.root.join("solver.prototxt")
    }
    /// Writes `text` to `name` in the fixture folder (next to tiny.prototxt).
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.root.join(name);
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }
    /// A fresh run folder path for one test.
    fn run(&self, name: &str) -> PathBuf {
        let run = self.root.join("runs").join(name);
        let _ = std::fs::remove_dir_all(&run);
        run
    }
}

fn lvc(args: &[&str]) -> Output {
    Command::new(LVC).args(args).output().unwrap_or_else(|e| panic!("cannot run lvc: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(args: &[&str]) -> String {
    let out = lvc(args);
    assert!(
        out.status.success(),
        "lvc {args:?} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lvc-train-dataset");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", root.display()));
        let phantom = root.join("phantom");
        ok(&["phantom", "--out", s(&phantom), "--cases", "3", "--seed", "5"]);
        let contours = phantom.join("Sunnybrook Cardiac MR Database ContoursPart3");
        let images = phantom.join("challenge_training");
        ok(&[
            "dataset",
            "create",
            "--images",
            s(&images),
            "--contours",
            s(&contours),
            "--out",
            s(&root.join("ds")),
            "--val-pct",
            "30",
            "--seed",
            "1",
        ]);
        std::fs::write(root.join("tiny.prototxt"), TINY_NET).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(root.join("solver.prototxt"), solver("0.01"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(root.join("diverging_solver.prototxt"), solver("1e30"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(root.join("augmented.prototxt"), augmented_net())
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(root.join("augmented_solver.prototxt"), AUGMENTED_SOLVER)
            .unwrap_or_else(|e| panic!("{e}"));
        Fixture { root }
    })
}

fn read_json(path: &Path) -> Value {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A trained 2-epoch run shared by the evaluate/infer tests.
fn trained_run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let f = fixture();
        let run = f.run("shared");
        ok(&[
            "train",
            "--solver",
            s(&f.solver()),
            "--dataset",
            s(&f.dataset()),
            "--out",
            s(&run),
            "--epochs",
            "2",
        ]);
        run
    })
}

#[test]
fn train_writes_metrics_snapshots_best_and_run_config() {
    let f = fixture();
    let run = f.run("full");
    let stdout = ok(&[
        "train",
        "--solver",
        s(&f.solver()),
        "--dataset",
        s(&f.dataset()),
        "--out",
        s(&run),
        "--epochs",
        "2",
    ]);
    assert!(stdout.contains("batch 2"), "{stdout}");
    assert!(stdout.contains("epoch 2/2: train_loss"), "{stdout}");

    let metrics = read_json(&run.join("metrics.json"));
    let history = metrics["history"].as_array().cloned().unwrap_or_default();
    assert_eq!(history.len(), 2);
    for key in ["val_dice", "val_accuracy", "train_loss", "train_dice"] {
        assert_eq!(metrics[key], history[1][key], "top-level {key} is the final epoch's");
    }
    for epoch in &history {
        for key in
            ["train_loss", "val_loss", "val_accuracy", "val_dice", "train_dice", "lr", "seconds"]
        {
            assert!(epoch[key].as_f64().is_some_and(f64::is_finite), "{key} in {epoch}");
        }
        assert_eq!(epoch["val_class_dice"].as_array().map(Vec::len), Some(2));
        for key in ["val_dice", "train_dice"] {
            let dice = epoch[key].as_f64().unwrap_or(-1.0);
            assert!((0.0..=1.0).contains(&dice), "{key} {dice}");
        }
    }
    assert!(
        history[1]["train_loss"].as_f64() < history[0]["train_loss"].as_f64(),
        "training lowers the loss: {history:?}"
    );
    for file in
        ["snapshots/epoch-1.safetensors", "snapshots/epoch-2.safetensors", "best.safetensors"]
    {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let config = read_json(&run.join("run.json"));
    assert_eq!(config["seed"], 3);
    assert_eq!(config["batch_size"], 2);
    assert_eq!(config["epochs"], 2);
    assert_eq!(config["image_shape"], serde_json::json!([1, 256, 256]));
    assert_eq!(config["dataset_manifest_sha256"].as_str().map(str::len), Some(64));
    assert_eq!(config["model_sha256"].as_str().map(str::len), Some(64));
    assert_eq!(config["split"]["kind"], "patient");
    assert!(config["model"].as_str().is_some_and(|m| m.ends_with("tiny.prototxt")));
}

#[test]
fn resume_continues_after_the_last_complete_epoch() {
    let f = fixture();
    let run = f.run("resume");
    ok(&[
        "train",
        "--solver",
        s(&f.solver()),
        "--dataset",
        s(&f.dataset()),
        "--out",
        s(&run),
        "--epochs",
        "1",
    ]);
    let first = read_json(&run.join("metrics.json"))["history"][0].clone();
    // A kill after epoch 2's snapshot but before its metrics: the snapshot is
    // there, metrics.json still ends at epoch 1.
    std::fs::copy(
        run.join("snapshots/epoch-1.safetensors"),
        run.join("snapshots/epoch-2.safetensors"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // A run folder from an lvc that wrote no solver states resumes from the weights, saying so.
    std::fs::remove_file(run.join("snapshots/epoch-1.solverstate.safetensors"))
        .unwrap_or_else(|e| panic!("{e}"));

    let resumed = lvc(&[
        "train",
        "--solver",
        s(&f.solver()),
        "--dataset",
        s(&f.dataset()),
        "--resume",
        s(&run),
        "--epochs",
        "2",
    ]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    assert!(
        text(&resumed.stderr).contains("resuming from the weights only"),
        "{}",
        text(&resumed.stderr)
    );
    let stdout = text(&resumed.stdout);
    assert!(stdout.contains("after epoch 1"), "{stdout}");
    assert!(!stdout.contains("epoch 1/2:"), "epoch 1 is not trained again: {stdout}");
    let history =
        read_json(&run.join("metrics.json"))["history"].as_array().cloned().unwrap_or_default();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0], first, "the finished epoch's record is kept");
    assert_eq!(history[1]["epoch"], 2);
    assert_eq!(read_json(&run.join("run.json"))["epochs"], 2);
}

#[test]
fn a_run_folder_is_not_overwritten_and_resume_checks_the_solver() {
    let f = fixture();
    let run = trained_run();
    let again = lvc(&[
        "train",
        "--solver",
        s(&f.solver()),
        "--dataset",
        s(&f.dataset()),
        "--out",
        s(run),
        "--epochs",
        "1",
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("--resume"), "{}", text(&again.stderr));

    let other = f.write("adam_solver.prototxt", &solver("0.01").replace("SGD", "Adam"));
    let resumed = lvc(&[
        "train",
        "--solver",
        s(&other),
        "--dataset",
        s(&f.dataset()),
        "--resume",
        s(run),
        "--epochs",
        "3",
    ]);
    assert_eq!(resumed.status.code(), Some(2));
    assert!(
        text(&resumed.stderr).contains("type changed from \"SGD\" to \"Adam\""),
        "{}",
        text(&resumed.stderr)
    );

    let no_out = lvc(&["train", "--solver", s(&f.solver()), "--dataset", s(&f.dataset())]);
    assert_eq!(no_out.status.code(), Some(2));
    assert!(text(&no_out.stderr).contains("--out RUN"), "{}", text(&no_out.stderr));
}

#[test]
fn a_diverging_loss_stops_naming_the_iteration_and_keeps_no_bad_snapshot() {
    let f = fixture();
    let run = f.run("diverging");
    let out = lvc(&[
        "train",
        "--solver",
        s(&f.root.join("diverging_solver.prototxt")),
        "--dataset",
        s(&f.dataset()),
        "--out",
        s(&run),
        "--epochs",
        "2",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("at iteration"), "{stderr}");
    assert!(stderr.contains("last good snapshot"), "{stderr}");
    assert!(
        !run.join("snapshots/epoch-1.safetensors").exists(),
        "no snapshot of the diverged epoch"
    );
    assert!(!run.join("metrics.json").exists());
}

#[test]
fn evaluate_reports_per_image_and_per_patient_scores() {
    let run = trained_run();
    let out = ok(&["evaluate", "--run", s(run), "--format", "json"]);
    let report: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    for key in ["mean_dice", "sd_dice", "mean_jaccard", "pixel_accuracy"] {
        assert!(
            report[key].as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)),
            "{key}: {}",
            report[key]
        );
    }
    assert!(report["empty_rule"].as_str().is_some_and(|r| r.contains("Dice 1")));
    let manifest = read_json(&fixture().dataset().join("manifest.json"));
    let val_cases = manifest["splits"]["val"]["cases"].clone();
    let patients: Vec<Value> = report["per_patient"]
        .as_array()
        .map(|p| p.iter().map(|p| p["case"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(Value::Array(patients), val_cases);
    assert_eq!(
        report["per_image"].as_array().map(Vec::len),
        manifest["splits"]["val"]["count"].as_u64().map(|n| n as usize)
    );
    // The evaluation scores best.safetensors, which training scored the same way.
    let best = read_json(&run.join("metrics.json"))["best_val_dice"].as_f64().unwrap_or(-1.0);
    assert!(
        (report["mean_dice"].as_f64().unwrap_or(0.0) - best).abs() < 1e-9,
        "evaluate {} vs training {best}",
        report["mean_dice"]
    );

    let human = ok(&["evaluate", "--run", s(run), "--split", "train"]);
    assert!(human.contains("train split") && human.contains("Dice "), "{human}");
}

#[test]
fn infer_writes_mask_overlay_and_dice_for_a_record() {
    let run = trained_run();
    let manifest = read_json(&fixture().dataset().join("manifest.json"));
    let record = manifest["records"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["split"] == "val"))
        .cloned()
        .unwrap_or_default();
    let name = format!(
        "{}/{:04}",
        record["case"].as_str().unwrap_or_default(),
        record["image"].as_u64().unwrap_or(0)
    );
    let out = fixture().run("infer-one");
    let stdout =
        ok(&["infer", "--run", s(run), "--record", &name, "--out", s(&out), "--opacity", "0.5"]);
    assert!(stdout.contains("Dice"), "{stdout}");
    let mask = image::open(out.join("mask.png")).unwrap_or_else(|e| panic!("{e}")).to_luma8();
    assert_eq!(mask.dimensions(), (256, 256));
    assert!(mask.pixels().all(|p| p.0[0] <= 1), "mask.png holds label values");
    let overlay = image::open(out.join("overlay.png")).unwrap_or_else(|e| panic!("{e}")).to_rgb8();
    assert_eq!(overlay.dimensions(), (512, 512));
    let truth_contour = overlay.pixels().filter(|p| p.0 == [40, 230, 60]).count();
    assert!(truth_contour > 0, "the ground-truth contour is drawn");
    let result = read_json(&out.join("result.json"));
    assert!(result["dice"].as_f64().is_some_and(|d| (0.0..=1.0).contains(&d)));

    let bad = lvc(&["infer", "--run", s(run), "--record", "NOPE/0001", "--out", s(&out)]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("no record NOPE/0001"), "{}", text(&bad.stderr));
}

#[test]
fn infer_all_val_writes_one_folder_per_image_and_a_dicom_needs_no_truth() {
    let run = trained_run();
    let out = fixture().run("infer-all");
    ok(&["infer", "--run", s(run), "--all-val", "--out", s(&out)]);
    let index = read_json(&out.join("index.json"));
    let manifest = read_json(&fixture().dataset().join("manifest.json"));
    assert_eq!(
        index.as_array().map(Vec::len),
        manifest["splits"]["val"]["count"].as_u64().map(|n| n as usize)
    );
    for entry in index.as_array().cloned().unwrap_or_default() {
        let folder = PathBuf::from(entry["folder"].as_str().unwrap_or_default());
        assert!(
            folder.join("overlay.png").is_file() && folder.join("mask.png").is_file(),
            "{}",
            folder.display()
        );
    }

    let record = &manifest["records"][0];
    let dicom = fixture()
        .root
        .join("phantom/challenge_training")
        .join(record["case"].as_str().unwrap_or_default());
    let file = std::fs::read_dir(&dicom)
        .ok()
        .and_then(|mut d| d.next())
        .and_then(Result::ok)
        .map(|e| e.path())
        .unwrap_or_default();
    let single = fixture().run("infer-dicom");
    let stdout = ok(&["infer", "--run", s(run), "--image", s(&file), "--out", s(&single)]);
    assert!(stdout.contains("no ground truth"), "{stdout}");
    assert!(read_json(&single.join("result.json"))["dice"].is_null());
}

#[test]
fn infer_refuses_an_image_that_is_a_fifo_or_nests_too_deep() {
    let run = trained_run();
    let dir = fixture().run("infer-hostile");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let fifo = dir.join("pipe.dcm");
    common::make_fifo(&fifo);
    let good = fixture().root.join("phantom/challenge_training/SC-HF-I-1/IM-0004-0001.dcm");
    let deep = dir.join("deep.dcm");
    let bytes = std::fs::read(&good).unwrap_or_else(|e| panic!("{}: {e}", good.display()));
    std::fs::write(&deep, common::with_nested_sequences(&bytes, 10_000))
        .unwrap_or_else(|e| panic!("{e}"));
    for (image, code, needle) in [
        (&fifo, "lvc::dicom::not_a_file", "it is a FIFO"),
        (&deep, "lvc::dicom::nesting", "opens nesting level 65"),
    ] {
        let out = common::lvc_within(
            &["infer", "--run", s(run), "--image", s(image), "--out", s(&dir.join("out"))],
            &dir,
            60,
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        for want in [code, s(image), needle] {
            assert!(common::says(&stderr, want), "{want:?} missing in\n{stderr}");
        }
    }
    assert!(!dir.join("out").exists());
}

#[test]
fn start_weights_load_with_adaptations() {
    let f = fixture();
    let best = trained_run().join("best.safetensors");
    let run = f.run("adapted");
    let stdout = ok(&[
        "train",
        "--solver",
        s(&f.solver()),
        "--dataset",
        s(&f.dataset()),
        "--out",
        s(&run),
        "--epochs",
        "1",
        "--weights",
        s(&best),
        "--adapt",
        "reinit=score_fr",
    ]);
    assert!(stdout.contains("adapted score_fr: re-initialised"), "{stdout}");
    let config = read_json(&run.join("run.json"));
    assert_eq!(config["adapt"], serde_json::json!(["reinit=score_fr"]));
    assert!(config["weights"].as_str().is_some_and(|w| w.ends_with("best.safetensors")));

    let unknown = lvc(&[
        "train",
        "--solver",
        s(&f.solver()),
        "--dataset",
        s(&f.dataset()),
        "--out",
        s(&f.run("adapt-bad")),
        "--epochs",
        "1",
        "--weights",
        s(&best),
        "--adapt",
        "reinit=no_such_layer",
    ]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown.stderr));
    assert!(text(&unknown.stderr).contains("no_such_layer"), "{}", text(&unknown.stderr));
}

/// metrics.json without the wall-clock figures.
fn metrics_without_timing(run: &Path) -> Value {
    let mut metrics = read_json(&run.join("metrics.json"));
    for epoch in metrics["history"].as_array_mut().into_iter().flatten() {
        epoch.as_object_mut().map(|e| e.remove("seconds"));
    }
    metrics
}

#[test]
fn a_run_killed_during_an_epoch_resumes_to_bit_identical_weights_and_metrics() {
    let f = fixture();
    let solver = f.root.join("augmented_solver.prototxt");
    let straight = f.run("straight");
    ok(&[
        "train",
        "--solver",
        s(&solver),
        "--dataset",
        s(&f.dataset()),
        "--out",
        s(&straight),
        "--epochs",
        "2",
    ]);

    // kill -9 as soon as epoch 1 is finished (metrics.json names it).
    let killed = f.run("killed");
    let mut child = Command::new(LVC)
        .args([
            "train",
            "--solver",
            s(&solver),
            "--dataset",
            s(&f.dataset()),
            "--out",
            s(&killed),
            "--epochs",
            "2",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run lvc: {e}"));
    let metrics = killed.join("metrics.json");
    while !metrics.exists() {
        assert!(child.try_wait().ok().flatten().is_none(), "lvc stopped before finishing epoch 1");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(
        child.try_wait().ok().flatten().is_none(),
        "epoch 2 finished before the kill; nothing was interrupted"
    );
    child.kill().unwrap_or_else(|e| panic!("cannot kill lvc: {e}"));
    let _ = child.wait();
    assert_eq!(
        read_json(&metrics)["history"].as_array().map(Vec::len),
        Some(1),
        "the kill came during epoch 2"
    );
    assert!(killed.join("snapshots/epoch-1.solverstate.safetensors").is_file());

    let stdout = ok(&[
        "train",
        "--solver",
        s(&solver),
        "--dataset",
        s(&f.dataset()),
        "--resume",
        s(&killed),
    ]);
    assert!(stdout.contains("after epoch 1"), "{stdout}");
    for file in ["snapshots/epoch-2.safetensors", "best.safetensors"] {
        let weights = |run: &Path| {
            read_safetensors(&run.join(file)).unwrap_or_else(|e| panic!("{file}: {e}")).weights
        };
        assert_eq!(weights(&killed), weights(&straight), "{file}: tensor for tensor");
    }
    let state = |run: &Path| {
        read_state(&run.join("snapshots/epoch-2.solverstate.safetensors"))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let (resumed_state, straight_state) = (state(&killed), state(&straight));
    assert_eq!(resumed_state, straight_state, "history, lr step and random streams");
    assert!(
        straight_state.streams.contains_key("augment") && straight_state.current_step == 2,
        "{straight_state:?}"
    );
    assert_eq!(metrics_without_timing(&killed), metrics_without_timing(&straight));
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() <= 1e-6 * b.abs())
}

#[test]
fn resume_takes_a_new_rate_and_clipping_uses_them_and_records_them() {
    let f = fixture();
    let solver_path = f.write("tunable_solver.prototxt", &solver("0.01"));
    let run = f.run("tunable");
    ok(&[
        "train",
        "--solver",
        s(&solver_path),
        "--dataset",
        s(&f.dataset()),
        "--out",
        s(&run),
        "--epochs",
        "1",
    ]);
    assert!(
        read_json(&run.join("run.json")).get("changes").is_none(),
        "a run never resumed records no changes"
    );

    // Edited in place, as the divergence advice says.
    f.write(
        "tunable_solver.prototxt",
        &format!(
            "{}clip_gradients: 10\ndisplay: 5\nsnapshot: 3\n",
            solver("0.005").replace("display: 0\n", "")
        ),
    );
    let resumed = lvc(&[
        "train",
        "--solver",
        s(&solver_path),
        "--dataset",
        s(&f.dataset()),
        "--resume",
        s(&run),
        "--epochs",
        "2",
    ]);
    let (stdout, stderr) = (text(&resumed.stdout), text(&resumed.stderr));
    assert!(resumed.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("changed from epoch 2 on (recorded in run.json): base_lr 0.01 → 0.005, clip_gradients -1.0 → 10.0"), "{stdout}");
    assert!(stderr.contains("note: snapshot changed from 0 to 3; it has no effect here: every epoch is snapshotted into RUN/snapshots"), "{stderr}");
    assert!(!stderr.contains("display"), "display is output only: {stderr}");

    let config = read_json(&run.join("run.json"));
    assert_eq!(
        config["changes"],
        serde_json::json!([
            {"epoch": 2, "field": "base_lr", "from": 0.01, "to": 0.005},
            {"epoch": 2, "field": "clip_gradients", "from": -1.0, "to": 10.0},
            {"epoch": 2, "field": "epochs", "from": 1, "to": 2},
        ])
    );
    assert!(
        config["solver_text"].as_str().is_some_and(|t| t.contains("base_lr: 0.005")),
        "the next resume compares with the new solver"
    );
    // The trainer used the new rate (Caffe reads base_lr as a float32).
    let history =
        read_json(&run.join("metrics.json"))["history"].as_array().cloned().unwrap_or_default();
    assert!(close(&history[0]["lr"], 0.01) && close(&history[1]["lr"], 0.005), "{history:?}");

    // Resuming again with the same solver changes nothing more.
    ok(&[
        "train",
        "--solver",
        s(&solver_path),
        "--dataset",
        s(&f.dataset()),
        "--resume",
        s(&run),
        "--epochs",
        "2",
    ]);
    assert_eq!(read_json(&run.join("run.json"))["changes"], config["changes"]);
    // evaluate reads the solver recorded after the change without a warning.
    let evaluated = lvc(&["evaluate", "--run", s(&run)]);
    assert!(
        evaluated.status.success() && !text(&evaluated.stderr).contains("changed since"),
        "{}",
        text(&evaluated.stderr)
    );
}

#[test]
fn a_diverged_run_continues_as_its_advice_says() {
    let f = fixture();
    let solver_path = f.write("advised_solver.prototxt", &solver("1e30"));
    let run = f.run("advised");
    let out = lvc(&[
        "train",
        "--solver",
        s(&solver_path),
        "--dataset",
        s(&f.dataset()),
        "--out",
        s(&run),
        "--epochs",
        "1",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lower base_lr, or set (or lower) clip_gradients, in "), "{stderr}");
    let command = stderr.split('`').nth(1).unwrap_or_else(|| panic!("no command in {stderr}"));
    assert_eq!(
        command,
        format!(
            "lvc train --solver {} --dataset {} --resume {}",
            s(&solver_path),
            s(&f.dataset()),
            s(&run)
        )
    );

    // Do what it says, literally: edit the solver, run the command.
    f.write("advised_solver.prototxt", &format!("{}clip_gradients: 100\n", solver("0.01")));
    let args: Vec<&str> = command.split(' ').skip(1).collect();
    let stdout = ok(&args);
    assert!(stdout.contains("epoch 1/1: train_loss"), "{stdout}");
    let changes = read_json(&run.join("run.json"))["changes"].clone();
    assert_eq!(
        changes[0],
        serde_json::json!({"epoch": 1, "field": "base_lr", "from": 1e30, "to": 0.01})
    );
    assert_eq!(changes[1]["field"], "clip_gradients");
    assert!(close(&read_json(&run.join("metrics.json"))["history"][0]["lr"], 0.01));
}

#[test]
fn resume_refuses_what_would_make_another_run_naming_each_field() {
    let f = fixture();
    let run = f.run("refusals");
    ok(&[
        "train",
        "--solver",
        s(&f.solver()),
        "--dataset",
        s(&f.dataset()),
        "--out",
        s(&run),
        "--epochs",
        "1",
    ]);
    let other_dataset = f.root.join("ds-other-split");
    if !other_dataset.exists() {
        let phantom = f.root.join("phantom");
        let contours = phantom.join("Sunnybrook Cardiac MR Database ContoursPart3");
        let images = phantom.join("challenge_training");
        ok(&[
            "dataset",
            "create",
            "--images",
            s(&images),
            "--contours",
            s(&contours),
            "--out",
            s(&other_dataset),
            "--val-pct",
            "60",
            "--seed",
            "1",
        ]);
    }
    let wider = f.write("tiny_wider.prototxt", &TINY_NET.replace("num_output: 4", "num_output: 5"));
    let kept: Vec<Vec<u8>> = ["run.json", "metrics.json"]
        .iter()
        .map(|n| std::fs::read(run.join(n)).unwrap_or_default())
        .collect();

    let base = solver("0.01");
    let cases: [(&str, String, &[&str], &str); 6] = [
        ("type", base.replace("\"SGD\"", "\"Adam\""), &[], "type changed from \"SGD\" to \"Adam\": the snapshots' optimizer history belongs to the run's solver type"),
        ("iter_size", format!("{base}iter_size: 2\n"), &[], "iter_size changed from 1 to 2"),
        ("random_seed", base.replace("random_seed: 3", "random_seed: 4"), &[], "random_seed changed from 3 to 4"),
        ("net", base.replace("tiny.prototxt", s(&wider)), &[], "the net changed: "),
        ("batch", base.clone(), &["--batch-size", "1"], "the batch size changed from 2 to 1"),
        ("dataset", base.clone(), &["--dataset", s(&other_dataset)], "the dataset changed: the manifest of "),
    ];
    let dataset = f.dataset();
    for (name, text_of_solver, extra, expected) in cases {
        let path = f.write(&format!("refused_{name}_solver.prototxt"), &text_of_solver);
        let mut args = vec!["train", "--solver", s(&path), "--resume", s(&run), "--epochs", "2"];
        if !extra.contains(&"--dataset") {
            args.extend(["--dataset", s(&dataset)]);
        }
        args.extend(extra);
        let out = lvc(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: cannot resume {}: ", s(&run))),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(expected), "{name}: expected {expected:?} in {stderr}");
        assert!(
            stderr.contains("help: resume with the setting run.json records"),
            "{name}: {stderr}"
        );
    }
    // Two at once: both are named.
    let both = f.write(
        "refused_two_solver.prototxt",
        &base.replace("\"SGD\"", "\"Nesterov\"").replace("random_seed: 3", "random_seed: 9"),
    );
    let out = lvc(&[
        "train",
        "--solver",
        s(&both),
        "--dataset",
        s(&f.dataset()),
        "--resume",
        s(&run),
        "--epochs",
        "2",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("type changed from \"SGD\" to \"Nesterov\"")
            && stderr.contains("random_seed changed from 3 to 9"),
        "{stderr}"
    );
    let now: Vec<Vec<u8>> = ["run.json", "metrics.json"]
        .iter()
        .map(|n| std::fs::read(run.join(n)).unwrap_or_default())
        .collect();
    assert!(now == kept, "a refused resume writes nothing");
    assert!(!run.join("snapshots/epoch-2.safetensors").exists());
}

#[test]
fn a_run_has_one_writer_and_readers_are_not_held_up() {
    let f = fixture();
    let run = f.run("locked");
    ok(&[
        "train",
        "--solver",
        s(&f.solver()),
        "--dataset",
        s(&f.dataset()),
        "--out",
        s(&run),
        "--epochs",
        "1",
    ]);
    let kept: Vec<Vec<u8>> = ["run.json", "metrics.json", "report.html", "curves.png"]
        .iter()
        .map(|n| std::fs::read(run.join(n)).unwrap_or_default())
        .collect();
    // The lock as another lvc process would hold it: flock belongs to the
    // open file, so this process's holds against the children's.
    let held = lvc_fsio::FolderLock::acquire(&run.join(".lock")).unwrap_or_else(|e| panic!("{e}"));
    let in_use = format!(
        "error: {} is in use: {} is held by another lvc process (PID {})",
        s(&run),
        run.join(".lock").display(),
        std::process::id()
    );
    let evaluation = run.join("evaluation.json");
    let overlays = run.join("overlays");
    let (solver, dataset) = (f.solver(), f.dataset());
    let writers: [Vec<&str>; 5] = [
        vec![
            "train",
            "--solver",
            s(&solver),
            "--dataset",
            s(&dataset),
            "--resume",
            s(&run),
            "--epochs",
            "2",
        ],
        // Refused for the lock, not for the run already in the folder.
        vec![
            "train",
            "--solver",
            s(&solver),
            "--dataset",
            s(&dataset),
            "--out",
            s(&run),
            "--epochs",
            "1",
        ],
        vec!["evaluate", "--run", s(&run), "--out", s(&evaluation)],
        vec!["infer", "--run", s(&run), "--all-val", "--out", s(&overlays)],
        vec!["report", "--run", s(&run)],
    ];
    for args in &writers {
        let out = lvc(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().next(), Some(in_use.as_str()), "{args:?}");
        assert!(stderr.contains("help: a run folder takes one writer at a time"), "{stderr}");
    }
    let now: Vec<Vec<u8>> = ["run.json", "metrics.json", "report.html", "curves.png"]
        .iter()
        .map(|n| std::fs::read(run.join(n)).unwrap_or_default())
        .collect();
    assert!(now == kept, "nothing was written");
    assert!(!evaluation.exists() && !overlays.exists());
    // Readers, and writers outside the run, do not wait for the lock.
    ok(&["evaluate", "--run", s(&run)]);
    let outside = f.run("locked-evaluation");
    std::fs::create_dir_all(&outside).unwrap_or_else(|e| panic!("{e}"));
    ok(&["evaluate", "--run", s(&run), "--out", s(&outside.join("evaluation.json"))]);

    drop(held);
    // Released, the run takes writers again, and its .lock confuses nothing.
    ok(&["report", "--run", s(&run)]);
    ok(&[
        "train",
        "--solver",
        s(&f.solver()),
        "--dataset",
        s(&f.dataset()),
        "--resume",
        s(&run),
        "--epochs",
        "2",
    ]);
    assert_eq!(read_json(&run.join("metrics.json"))["history"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_resumed_multistep_schedule_follows_the_new_stepvalues() {
    let f = fixture();
    let multistep = |stepvalue: u32| {
        solver("0.01").replace(
            "lr_policy: \"fixed\"",
            &format!("lr_policy: \"multistep\"\ngamma: 0.5\nstepvalue: {stepvalue}"),
        )
    };
    let solver_path = f.write("multistep_solver.prototxt", &multistep(1));
    let run = f.run("multistep");
    ok(&[
        "train",
        "--solver",
        s(&solver_path),
        "--dataset",
        s(&f.dataset()),
        "--out",
        s(&run),
        "--epochs",
        "1",
    ]);
    // The step at iteration 1 is moved past the run's end: the restored
    // position (one step taken) belongs to the old schedule.
    f.write("multistep_solver.prototxt", &multistep(1000));
    let stdout = ok(&[
        "train",
        "--solver",
        s(&solver_path),
        "--dataset",
        s(&f.dataset()),
        "--resume",
        s(&run),
        "--epochs",
        "2",
    ]);
    assert!(stdout.contains("stepvalue [1] → [1000]"), "{stdout}");
    let history =
        read_json(&run.join("metrics.json"))["history"].as_array().cloned().unwrap_or_default();
    assert!(close(&history[0]["lr"], 0.005) && close(&history[1]["lr"], 0.01), "{history:?}");
}

#[test]
fn a_run_json_of_an_earlier_lvc_resumes_with_a_changed_rate_checking_what_it_records() {
    let f = fixture();
    let solver_path = f.write("earlier_solver.prototxt", &solver("0.01"));
    let run = f.run("earlier");
    ok(&[
        "train",
        "--solver",
        s(&solver_path),
        "--dataset",
        s(&f.dataset()),
        "--out",
        s(&run),
        "--epochs",
        "1",
    ]);
    // run.json as an lvc before solver_text and changes wrote it.
    let mut config = read_json(&run.join("run.json"));
    config.as_object_mut().map(|c| c.remove("solver_text"));
    let trained_sha = config["solver_sha256"].clone();
    std::fs::write(run.join("run.json"), config.to_string()).unwrap_or_else(|e| panic!("{e}"));

    f.write("earlier_solver.prototxt", &solver("0.01").replace("random_seed: 3", "random_seed: 4"));
    let out = lvc(&[
        "train",
        "--solver",
        s(&solver_path),
        "--dataset",
        s(&f.dataset()),
        "--resume",
        s(&run),
        "--epochs",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("random_seed is now 4, the run's seed is 3"),
        "{}",
        text(&out.stderr)
    );

    f.write("earlier_solver.prototxt", &solver("0.005"));
    let out = lvc(&[
        "train",
        "--solver",
        s(&solver_path),
        "--dataset",
        s(&f.dataset()),
        "--resume",
        s(&run),
        "--epochs",
        "2",
    ]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("keeps the solver's SHA-256 but not its settings"), "{stderr}");
    let config = read_json(&run.join("run.json"));
    assert_eq!(config["changes"][0]["field"], "solver");
    assert_eq!(
        (&config["changes"][0]["from"], &config["changes"][0]["to"]),
        (&trained_sha, &config["solver_sha256"])
    );
    assert_ne!(trained_sha, config["solver_sha256"]);
    assert!(config["solver_text"].as_str().is_some(), "it keeps the text from now on");
    assert!(close(&read_json(&run.join("metrics.json"))["history"][1]["lr"], 0.005));
}
