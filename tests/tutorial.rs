//! `make tutorial` (docs/tutorial/run.sh): its solvers train the tutorial's
//! nets, and its table (docs/tutorial/table.py) reads the run folders. The
//! full script takes minutes of CPU, so it is not run here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod common;

use std::path::Path;
use std::process::Command;

use common::{golden, lvc, text};

/// One SGD iteration of `solver` on the golden 256×256 slice; the loss.
fn first_loss(solver: &str) -> f64 {
    let out_dir = tempfile::tempdir().unwrap();
    let data = format!("data={}:1x1x256x256", golden("inputs/input_gray_256.f32"));
    let label = format!("label={}:1x1x256x256", golden("inputs/label_disc_256.f32"));
    let out = lvc(&[
        "train",
        "--solver",
        solver,
        "--feed",
        &data,
        "--feed",
        &label,
        "--max-iter",
        "1",
        "--log-format",
        "json",
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{solver}: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let iteration = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{l}: {e}"))
        })
        .find(|e| e["event"] == "iteration")
        .unwrap_or_else(|| panic!("{solver}: no iteration event in {stdout}"));
    iteration["loss"].as_f64().unwrap_or_else(|| panic!("{solver}: loss {}", iteration["loss"]))
}

#[test]
fn the_cross_entropy_solver_trains_fcn_alexnet() {
    let loss = first_loss("docs/tutorial/fcn_alexnet_solver.prototxt");
    assert!(loss.is_finite() && loss > 0.0, "{loss}");
}

#[test]
fn the_dice_loss_solvers_train_with_the_soft_dice_loss() {
    // 1 − soft Dice lies in [0, 1]; the softmax cross-entropy has no upper bound.
    for solver in [
        "docs/tutorial/fcn_alexnet_dice_solver.prototxt",
        "docs/tutorial/fcn8s_dice_solver.prototxt",
    ] {
        let loss = first_loss(solver);
        assert!((0.0..=1.0).contains(&loss), "{solver}: {loss}");
    }
}

fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

fn metrics(val_dice: &[f64], val_accuracy: f64) -> String {
    let history: Vec<_> = val_dice
        .iter()
        .enumerate()
        .map(|(i, d)| serde_json::json!({"epoch": i + 1, "iterations": 34 * (i + 1), "val_dice": d, "seconds": 40.0 + i as f64}))
        .collect();
    let (best_epoch, best) = val_dice
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |b, (i, &d)| if d > b.1 { (i + 1, d) } else { b });
    serde_json::json!({"val_dice": val_dice.last(), "val_accuracy": val_accuracy, "best_epoch": best_epoch, "best_val_dice": best, "history": history})
        .to_string()
}

#[test]
fn the_table_reads_runs_logs_and_exit_statuses() {
    if Command::new("python3").arg("--version").output().map_or(true, |o| !o.status.success()) {
        eprintln!("skipped: python3 is not installed (docs/tutorial/run.sh needs it too)");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let o = out.path();
    let rows = [
        [
            "2",
            "from scratch, CE",
            "3",
            "2-ce",
            "120.4",
            "0",
            "0",
            "lvc train --dataset gray --out 2-ce",
        ],
        [
            "4b",
            "RGB into gray",
            "-",
            "-",
            "0.6",
            "1",
            "1",
            "lvc weights check --model models/fcn_alexnet.prototxt --weights w",
        ],
        [
            "4d",
            "fine-tune",
            "3",
            "4-finetune",
            "98.0",
            "1",
            "0",
            "lvc train --weights w --adapt conv1=sum",
        ],
        [
            "6",
            "Dice loss",
            "3",
            "6-dice-loss",
            "130.0",
            "0",
            "0",
            "lvc train --dataset gray --out 6-dice-loss",
        ],
        ["5", "FCN-8s", "1", "fcn8s", "300.0", "0", "0", "lvc train --dataset gray --out fcn8s"],
        [
            "time-fcn8s",
            "FCN-8s cost",
            "-",
            "-",
            "20.0",
            "0",
            "0",
            "lvc time --model models/fcn8s.prototxt",
        ],
    ];
    let tsv: String = rows
        .iter()
        .map(|r| {
            let run =
                if r[3] == "-" { "-".to_string() } else { o.join(r[3]).display().to_string() };
            format!("{}\t{}\t{}\t{run}\t{}\t{}\t{}\t{}\n", r[0], r[1], r[2], r[4], r[5], r[6], r[7])
        })
        .collect();
    write(&o.join("steps.tsv"), &tsv);
    write(&o.join("2-ce/metrics.json"), &metrics(&[0.0, 0.0, 0.0], 0.98191));
    write(&o.join("6-dice-loss/metrics.json"), &metrics(&[0.0517, 0.3229, 0.0], 0.9856));
    write(&o.join("fcn8s/metrics.json"), &metrics(&[0.1234], 0.9));
    write(
        &o.join("logs/4b.log"),
        "layer  type  status\nconv1  Convolution  shape-mismatch\n\n  × layer 'conv1': cannot copy weights: param 0: file 96 3 11 11 (34848) vs net 96 1 11 11 (11616)\n\nw: 8 ok, 1 shape-mismatch — does NOT load (Caffe would abort)\n",
    );
    write(
        &o.join("logs/time-fcn8s.log"),
        "{\n  \"iterations\": 2,\n  \"forward_ms\": 950.0,\n  \"forward_backward_ms\": 3540.7\n}\n",
    );
    let table = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tutorial/table.py"))
        .arg(o)
        .output()
        .unwrap();
    assert!(table.status.success(), "{}", text(&table.stderr));
    let shown = text(&table.stdout).replace(&o.display().to_string(), "OUT");
    insta::assert_snapshot!(shown);
}
