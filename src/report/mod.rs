//! What a run folder says about its training, drawn for people: the
//! training curves (`curves.png`) and one self-contained HTML page
//! (`report.html`) with the run summary, the curves, the evaluation table and
//! the best and worst validation overlays.
//!
//! The inputs are the files `lvc train --dataset`, `lvc evaluate` and
//! `lvc infer --all-val` write. They are read leniently — only the fields
//! shown are needed, and any of them may be absent or null (serde_json writes
//! NaN as null) — so a report can be drawn for a run in progress.

use std::path::{Path, PathBuf};

use lvc_workflow::run_folder::{read_run_file, Metrics};

pub mod curves;
pub mod html;

pub use lvc_workflow::run_folder::{
    CURVES_PNG, EVALUATION_JSON, METRICS_JSON, OVERLAYS_DIR, REPORT_HTML, RUN_JSON,
};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ReportError {
    #[error("cannot read {path}: {reason}")]
    #[diagnostic(code(lvc::report::read), help("{help}"))]
    Read { path: PathBuf, reason: String, help: String },
    #[error("{path} is not a valid {what}: {reason}")]
    #[diagnostic(
        code(lvc::report::parse),
        help("it is written by `{writer}`; rerun that command to rewrite it")
    )]
    Parse { path: PathBuf, what: &'static str, reason: String, writer: &'static str },
    #[error("{path} has no finished epoch to draw")]
    #[diagnostic(code(lvc::report::no_epochs), help("curves need at least one epoch in `history`; wait for the first epoch of `lvc train --dataset` to finish"))]
    NoEpochs { path: PathBuf },
    #[error("cannot draw {path}: {reason}")]
    #[diagnostic(
        code(lvc::report::draw),
        help("this is a bug in lvc's plotting; the metrics themselves are fine")
    )]
    Draw { path: PathBuf, reason: String },
    #[error("cannot write {path}: {reason}")]
    #[diagnostic(code(lvc::report::write), help("check that the folder exists and is writable"))]
    Write { path: PathBuf, reason: String },
}

/// Reads a file of a run folder: a regular file only, bounded.
fn read_bytes(path: &Path, help: &str) -> Result<Vec<u8>, ReportError> {
    read_run_file(path).map_err(|e| ReportError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
        help: help.to_string(),
    })
}

/// Reads and parses a JSON file written by `writer`.
fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
    writer: &'static str,
) -> Result<T, ReportError> {
    let bytes = read_bytes(path, &format!("it is written by `{writer}`"))?;
    serde_json::from_slice(&bytes).map_err(|e| ReportError::Parse {
        path: path.to_path_buf(),
        what,
        reason: e.to_string(),
        writer,
    })
}

/// Reads `RUN/metrics.json` leniently (any figure may be missing or null).
pub fn read_metrics(path: &Path) -> Result<Metrics, ReportError> {
    read_json(path, "metrics file", "lvc train --dataset DS --out RUN")
}

/// Writes `bytes` to `path` atomically.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    lvc_fsio::write_atomic(path, bytes)
        .map_err(|e| ReportError::Write { path: path.to_path_buf(), reason: e.to_string() })
}

/// What `write_run_report` wrote.
#[derive(Debug)]
pub struct Written {
    pub curves: Option<PathBuf>,
    pub report: PathBuf,
    /// Parts of the page that had no data, in words.
    pub missing: Vec<String>,
}

/// (Re)writes `RUN/curves.png` and `RUN/report.html`. Needs `metrics.json`;
/// run.json, the evaluation and the overlays are shown when present and
/// named as missing otherwise. `evaluation` and `overlays` default to
/// `RUN/evaluation.json` and `RUN/overlays`.
pub fn write_run_report(
    run: &Path,
    evaluation: Option<&Path>,
    overlays: Option<&Path>,
) -> Result<Written, ReportError> {
    let metrics_path = run.join(METRICS_JSON);
    let metrics = read_metrics(&metrics_path)?;
    let curves_path = run.join(CURVES_PNG);
    let curves = match curves::write_curves(&metrics_path, &curves_path) {
        Ok(()) => Some(read_bytes(&curves_path, "it was written a moment ago; check the disk")?),
        Err(ReportError::NoEpochs { .. }) => None,
        Err(other) => return Err(other),
    };
    let evaluation_path = evaluation.map_or_else(|| run.join(EVALUATION_JSON), Path::to_path_buf);
    let overlays_path = overlays.map_or_else(|| run.join(OVERLAYS_DIR), Path::to_path_buf);
    let page = html::RunPage::gather(run, metrics, curves, &evaluation_path, &overlays_path)?;
    let report = run.join(REPORT_HTML);
    write_file(&report, page.render().as_bytes())?;
    Ok(Written {
        curves: page.curves.is_some().then_some(curves_path),
        report,
        missing: page.missing(),
    })
}

#[cfg(test)]
pub(crate) mod testing {
    //! A synthetic run folder, as `lvc train`, `lvc evaluate` and
    //! `lvc infer --all-val` leave it (no training needed).

    use std::path::Path;

    /// `epochs` epochs of falling loss and rising Dice.
    pub fn metrics_json(epochs: u32) -> String {
        let history: Vec<serde_json::Value> = (1..=epochs)
            .map(|e| {
                let t = f64::from(e);
                serde_json::json!({
                    "epoch": e, "iterations": e * 40, "train_loss": 0.9 / t + 0.05, "val_loss": 0.8 / t + 0.1,
                    "val_accuracy": 0.9 + 0.09 * (1.0 - 1.0 / t), "val_dice": 0.85 * (1.0 - 0.8 / t),
                    "val_class_dice": [0.99, 0.85 * (1.0 - 0.8 / t)], "lr": 0.001, "seconds": 12.5
                })
            })
            .collect();
        let last = history.last().cloned().unwrap_or_default();
        serde_json::json!({
            "epochs_done": epochs, "train_loss": last["train_loss"], "val_loss": last["val_loss"],
            "val_accuracy": last["val_accuracy"], "val_dice": last["val_dice"], "best_epoch": epochs,
            "best_val_dice": last["val_dice"], "classes": ["background", "left_ventricle"],
            "empty_rule": "both empty: Dice 1", "history": history
        })
        .to_string()
    }

    /// A complete run folder (run.json, metrics.json with 6 epochs,
    /// evaluation.json, three scored overlays): a copy of
    /// tests/fixtures/report_run, which the CLI tests use too.
    pub fn write_run(run: &Path) {
        copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report_run"), run);
    }

    fn copy_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_tree(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_read_leniently_with_nulls_and_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(METRICS_JSON);
        std::fs::write(&path, r#"{"val_dice": null, "future_field": 3, "history": [{"epoch": 1, "train_loss": null, "seconds": 2.5}, {"epoch": 2, "seconds": 3}]}"#).unwrap();
        let m = read_metrics(&path).unwrap();
        assert!(m.val_dice.is_nan(), "null reads as no figure");
        assert_eq!(m.history.len(), 2);
        assert!(m.history[0].train_loss.is_nan());
        assert_eq!(m.seconds(), Some(5.5));
    }

    #[test]
    fn unreadable_and_broken_metrics_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = write_run_report(dir.path(), None, None).unwrap_err();
        assert!(
            matches!(missing, ReportError::Read { .. })
                && missing.to_string().contains(METRICS_JSON),
            "{missing}"
        );
        std::fs::write(dir.path().join(METRICS_JSON), "{\"history\": [1, 2]").unwrap();
        let broken = write_run_report(dir.path(), None, None).unwrap_err();
        assert!(
            matches!(broken, ReportError::Parse { .. })
                && broken.to_string().contains(METRICS_JSON),
            "{broken}"
        );
    }

    #[test]
    fn a_run_without_finished_epochs_gets_a_page_without_curves() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(METRICS_JSON), r#"{"history": []}"#).unwrap();
        let written = write_run_report(dir.path(), None, None).unwrap();
        assert!(written.curves.is_none() && !dir.path().join(CURVES_PNG).exists());
        let page = std::fs::read_to_string(&written.report).unwrap();
        assert!(page.contains("No finished epoch"), "{page}");
        assert!(written.missing.iter().any(|m| m.contains("curves")), "{:?}", written.missing);
    }

    #[test]
    fn a_full_run_folder_gets_curves_and_a_page() {
        let dir = tempfile::tempdir().unwrap();
        testing::write_run(dir.path());
        let written = write_run_report(dir.path(), None, None).unwrap();
        assert_eq!(written.curves.as_deref(), Some(dir.path().join(CURVES_PNG).as_path()));
        assert!(written.missing.is_empty(), "{:?}", written.missing);
        let png = image::open(dir.path().join(CURVES_PNG)).unwrap();
        assert_eq!((png.width(), png.height()), (curves::WIDTH, curves::HEIGHT));
    }
}
