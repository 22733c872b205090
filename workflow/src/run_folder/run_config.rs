//! `RUN/run.json`.

use std::path::{Path, PathBuf};

use lvc_compiler::schema::solver::SolverDef;
use lvc_compiler::SourceFile;
use serde::{Deserialize, Serialize};

use super::json::{read_run_file, require_fields, sha256_file};
use super::names::RUN_JSON;
use crate::failure::{fail, Failed};

/// `RUN/run.json`: what a run was trained from, so that evaluation and
/// inference rebuild the same net and a resume can check it continues the
/// same run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunConfig {
    pub solver: PathBuf,
    pub solver_sha256: String,
    /// The net file (absent for a net written inline in the solver).
    pub model: Option<PathBuf>,
    pub model_sha256: Option<String>,
    pub train_stages: Vec<String>,
    pub val_stages: Vec<String>,
    pub dataset: PathBuf,
    pub dataset_manifest_sha256: String,
    pub split: serde_json::Value,
    pub classes: Vec<String>,
    /// (C, H, W) of the dataset's images.
    pub image_shape: [usize; 3],
    pub seed: u64,
    pub batch_size: i64,
    pub epochs: u32,
    pub iterations_per_epoch: i64,
    pub weights: Option<PathBuf>,
    pub adapt: Vec<String>,
    pub device: String,
    pub lvc_version: String,
    pub torch: TorchVersion,
    /// The solver's text as the run last trained with it, so that a resume
    /// can tell which settings changed (`resume`). run.json of an
    /// earlier lvc lacks it and resumes with only `solver_sha256` to go by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solver_text: Option<String>,
    /// Settings changed on `--resume`, oldest first; absent when none did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<SettingChange>,
}

/// The fields every run.json has (those an earlier lvc wrote too); the
/// workflow refuses a run.json without one of them.
const REQUIRED: [&str; 17] = [
    "solver",
    "solver_sha256",
    "train_stages",
    "val_stages",
    "dataset",
    "dataset_manifest_sha256",
    "split",
    "classes",
    "image_shape",
    "seed",
    "batch_size",
    "epochs",
    "iterations_per_epoch",
    "adapt",
    "device",
    "lvc_version",
    "torch",
];

/// One setting a resume changed (run.json `changes`): `epoch` is the first
/// epoch trained with `to`. `from` and `to` are the values as the solver
/// states them (numbers, strings such as `"step"`, lists for `stepvalue`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SettingChange {
    pub epoch: u32,
    pub field: String,
    pub from: serde_json::Value,
    pub to: serde_json::Value,
}

/// The libtorch the binary was built against.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TorchVersion {
    pub tch_crate: String,
    /// `__version__` of the libtorch's `version.py`, when it can be read.
    pub libtorch: Option<String>,
}

impl TorchVersion {
    /// The tch crate and libtorch this build uses.
    pub fn detect() -> TorchVersion {
        // LIBTORCH is set for the build by .cargo/config.toml; the installed
        // torch package keeps its version next to the libraries.
        let libtorch = option_env!("LIBTORCH").and_then(|dir| {
            let text = std::fs::read_to_string(Path::new(dir).join("version.py")).ok()?;
            let line = text.lines().find(|l| l.starts_with("__version__"))?;
            Some(line.split(['\'', '"']).nth(1)?.to_string())
        });
        TorchVersion { tch_crate: TCH_CRATE_VERSION.to_string(), libtorch }
    }
}

/// The tch version pinned in the workspace (`tch = "=…"`).
const TCH_CRATE_VERSION: &str = "0.24.0";

impl RunConfig {
    /// Reads `RUN/run.json` for the workflow (every field checked).
    pub fn read(run: &Path) -> Result<RunConfig, Failed> {
        let path = run.join(RUN_JSON);
        let text = read_run_file(&path).map_err(|e| {
            fail(2, format!("cannot read {}: {e}\n  help: pass a folder written by `lvc train --dataset … --out RUN`", path.display()))
        })?;
        RunConfig::from_json(&text, &path).map_err(|message| fail(2, message))
    }

    /// Parses the bytes of a run.json (`path` names it in the message),
    /// refusing one that lacks a field the workflow needs.
    pub fn from_json(text: &[u8], path: &Path) -> Result<RunConfig, String> {
        let refused = |e: String| format!("{} is not a run.json of this lvc: {e}", path.display());
        let value: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| refused(e.to_string()))?;
        require_fields(&value, &REQUIRED).map_err(refused)?;
        require_fields(&value["torch"], &["tch_crate"]).map_err(refused)?;
        serde_json::from_value(value).map_err(|e| refused(e.to_string()))
    }

    /// Loads the recorded solver, warning when it changed since training.
    pub fn load_solver(&self) -> Result<(SourceFile, SolverDef), Failed> {
        if sha256_file(&self.solver)? != self.solver_sha256 {
            errln!(
                "warning: {} changed since the run was trained (its SHA-256 differs from run.json)",
                self.solver.display()
            );
        }
        crate::solver::read_solver(&self.solver)
    }
}
