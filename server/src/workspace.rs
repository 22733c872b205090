//! The workspace: dataset folders (with a `manifest.json`) and run folders
//! (with a `run.json`) at any depth under the root. The walk follows no
//! symlinks, skips hidden folders, does not descend into a dataset or a run
//! and stops at a depth and a folder count, so a huge or looping tree cannot
//! hang a request. Summaries are cached by the files' modification times:
//! a page of 200 runs reads only what changed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use lvc_data::store::Manifest;
use lvc_workflow::run_folder::{read_run_file, Metrics, RunConfig, METRICS_JSON, RUN_JSON};
use serde::Serialize;

use crate::paths::Root;

/// Deepest folder level searched below the root.
const MAX_DEPTH: usize = 8;
/// Most folders visited in one walk.
const MAX_FOLDERS: usize = 20_000;
/// Largest manifest read (a Sunnybrook import lists every record).
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// What the walk found.
#[derive(Default, Debug)]
pub struct Found {
    pub datasets: Vec<PathBuf>,
    pub runs: Vec<PathBuf>,
    /// The walk stopped at MAX_FOLDERS.
    pub truncated: bool,
}

/// Walks the root for datasets and runs.
pub fn walk(root: &Root) -> Found {
    let mut found = Found::default();
    let mut stack = vec![(root.dir().to_path_buf(), 0usize)];
    let mut visited = 0;
    while let Some((dir, depth)) = stack.pop() {
        visited += 1;
        if visited > MAX_FOLDERS {
            found.truncated = true;
            break;
        }
        if dir.join(RUN_JSON).is_file() {
            found.runs.push(dir);
            continue;
        }
        if dir.join("manifest.json").is_file() {
            found.datasets.push(dir);
            continue;
        }
        if depth >= MAX_DEPTH {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            // file_type does not follow symlinks.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push((entry.path(), depth + 1));
            }
        }
    }
    found.datasets.sort();
    found.runs.sort();
    found
}

/// A dataset on the home page.
#[derive(Clone, Debug, Serialize)]
pub struct DatasetSummary {
    pub id: String,
    pub image_shape: [usize; 3],
    pub channels: String,
    pub classes: Vec<String>,
    pub images: usize,
    /// Images per split name.
    pub splits: Vec<(String, usize)>,
    pub patients: usize,
    pub created_by: String,
    pub modified: f64,
}

/// A run on the home page.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub dataset: String,
    pub model: String,
    pub epochs: u32,
    pub epochs_done: u32,
    pub best_val_dice: Option<f64>,
    pub best_epoch: Option<u32>,
    /// Seconds of training so far.
    pub seconds: Option<f64>,
    pub device: String,
    pub modified: f64,
}

fn mtime(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

fn unix(t: Option<SystemTime>) -> f64 {
    t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map_or(0.0, |d| d.as_secs_f64())
}

/// Reads a manifest (`Err`: why it cannot be used).
pub fn read_manifest(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join("manifest.json");
    let bytes = lvc_fsio::read_regular(&path, MAX_MANIFEST_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Manifest::from_json(&bytes, &path).map_err(|e| e.to_string())
}

/// Reads run.json leniently (a run in progress, an older lvc).
pub fn read_config(run: &Path) -> Result<RunConfig, String> {
    let path = run.join(RUN_JSON);
    let bytes = read_run_file(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads metrics.json leniently; `None` before the first epoch.
pub fn read_metrics(run: &Path) -> Option<Metrics> {
    let bytes = read_run_file(&run.join(METRICS_JSON)).ok()?;
    Metrics::from_json_lenient(&bytes).ok()
}

/// The summaries, cached per folder by modification times.
#[derive(Default)]
pub struct SummaryCache {
    datasets: Mutex<HashMap<PathBuf, Cached<Option<SystemTime>, DatasetSummary>>>,
    runs: Mutex<HashMap<PathBuf, Cached<RunStamp, RunSummary>>>,
}

/// A summary and the modification times it was read at (`None`: unreadable).
type Cached<Stamp, Summary> = (Stamp, Option<Summary>);
/// run.json's and metrics.json's modification times.
type RunStamp = (Option<SystemTime>, Option<SystemTime>);

impl SummaryCache {
    pub fn dataset(&self, root: &Root, dir: &Path) -> Option<DatasetSummary> {
        let stamp = mtime(&dir.join("manifest.json"));
        let mut cache = self.datasets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, summary)) = cache.get(dir) {
            if *at == stamp {
                return summary.clone();
            }
        }
        let summary = read_manifest(dir).ok().and_then(|m| {
            Some(DatasetSummary {
                id: root.id_of(dir)?,
                image_shape: m.image_shape,
                channels: format!("{:?}", m.channels),
                classes: m.classes.clone(),
                images: m.splits.values().map(|s| s.count).sum(),
                splits: m.splits.iter().map(|(k, s)| (k.name().to_string(), s.count)).collect(),
                patients: m.splits.values().map(|s| s.cases.len()).sum(),
                created_by: m.created_by.clone(),
                modified: unix(stamp),
            })
        });
        cache.insert(dir.to_path_buf(), (stamp, summary.clone()));
        summary
    }

    pub fn run(&self, root: &Root, dir: &Path) -> Option<RunSummary> {
        let stamp = (mtime(&dir.join(RUN_JSON)), mtime(&dir.join(METRICS_JSON)));
        let mut cache = self.runs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, summary)) = cache.get(dir) {
            if *at == stamp {
                return summary.clone();
            }
        }
        let summary = read_config(dir).ok().and_then(|config| {
            let metrics = read_metrics(dir);
            let done = metrics.as_ref().map_or(0, |m| m.epochs_done);
            Some(RunSummary {
                id: root.id_of(dir)?,
                dataset: root
                    .recorded_id(&config.dataset)
                    .unwrap_or_else(|| config.dataset.display().to_string()),
                model: config
                    .model
                    .as_ref()
                    .and_then(|m| m.file_name())
                    .map(|m| m.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                epochs: config.epochs,
                epochs_done: done,
                best_val_dice: metrics
                    .as_ref()
                    .filter(|_| done > 0)
                    .map(|m| m.best_val_dice)
                    .filter(|d| d.is_finite()),
                best_epoch: metrics.as_ref().filter(|_| done > 0).map(|m| m.best_epoch),
                seconds: metrics.as_ref().and_then(Metrics::seconds),
                device: config.device.clone(),
                modified: unix(stamp.1.or(stamp.0)),
            })
        });
        cache.insert(dir.to_path_buf(), (stamp, summary.clone()));
        summary
    }
}
