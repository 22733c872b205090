//! What `lvc train --dataset`, `lvc evaluate` and `lvc infer` share: the
//! run folder (`run.json`, `best.safetensors`), segmentation scores, and
//! running a net on one dataset image.

use std::path::{Path, PathBuf};

use lvc_compiler::memory::Mode;
use lvc_compiler::schema::solver::SolverDef;
use lvc_compiler::schema::{load_solver, LoadOptions, NetState, Phase};
use lvc_compiler::SourceFile;
use lvc_runtime::error::RuntimeError;
use lvc_runtime::exec::Net;
use lvc_runtime::tch::{self, Kind, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::device_args::DeviceArgs;
use super::netargs::render;
use super::train::{build_net, fail, report, Failed};
use super::weights::read_weights_checked;

/// The empty-mask rule of every Dice and Jaccard lvc reports.
pub const EMPTY_RULE: &str =
    "a class absent from both the prediction and the ground truth scores Dice 1 and Jaccard 1 on that image";

/// Names of the files in a run folder.
pub const RUN_JSON: &str = "run.json";
pub const METRICS_JSON: &str = "metrics.json";
pub const BEST_WEIGHTS: &str = "best.safetensors";
pub const SNAPSHOTS: &str = "snapshots";

/// `RUN/run.json`: what a run was trained from, so that evaluation and
/// inference rebuild the same net and a resume can check it continues the
/// same run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// can tell which settings changed (`cmd::resume`). run.json of an
    /// earlier lvc lacks it and resumes with only `solver_sha256` to go by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver_text: Option<String>,
    /// Settings changed on `--resume`, oldest first; absent when none did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<SettingChange>,
}

/// One setting a resume changed (run.json `changes`): `epoch` is the first
/// epoch trained with `to`. `from` and `to` are the values as the solver
/// states them (numbers, strings such as `"step"`, lists for `stepvalue`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SettingChange {
    pub epoch: u32,
    pub field: String,
    pub from: serde_json::Value,
    pub to: serde_json::Value,
}

/// The libtorch the binary was built against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TorchVersion {
    pub tch_crate: String,
    /// `__version__` of the libtorch's `version.py`, when it can be read.
    pub libtorch: Option<String>,
}

impl TorchVersion {
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

/// SHA-256 of a file, hex; streamed (a dataset's manifest may be large),
/// and only of a regular file.
pub(super) fn sha256_file(path: &Path) -> Result<String, Failed> {
    let cannot = |e: std::io::Error| fail(2, format!("cannot read {}: {e}", path.display()));
    let (file, _) = lvc_fsio::open_regular(path).map_err(cannot)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::io::BufReader::new(file), &mut hasher).map_err(cannot)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// The largest run.json or metrics.json read.
const MAX_RUN_JSON_BYTES: u64 = 1 << 30;

/// Reads a JSON file of a run folder: a regular file only, bounded.
pub(super) fn read_run_json(path: &Path) -> Result<Vec<u8>, Failed> {
    lvc_fsio::read_regular(path, MAX_RUN_JSON_BYTES)
        .map_err(|e| fail(2, format!("cannot read {}: {e}", path.display())))
}

impl RunConfig {
    pub(super) fn read(run: &Path) -> Result<RunConfig, Failed> {
        let path = run.join(RUN_JSON);
        let text = lvc_fsio::read_regular(&path, MAX_RUN_JSON_BYTES).map_err(|e| {
            fail(2, format!("cannot read {}: {e}\n  help: pass a folder written by `lvc train --dataset … --out RUN`", path.display()))
        })?;
        RunConfig::from_json(&text, &path).map_err(|message| fail(2, message))
    }

    /// Parses the bytes of a run.json (`path` names it in the message).
    pub fn from_json(text: &[u8], path: &Path) -> Result<RunConfig, String> {
        serde_json::from_slice(text)
            .map_err(|e| format!("{} is not a run.json of this lvc: {e}", path.display()))
    }

    /// Loads the recorded solver, warning when it changed since training.
    pub(super) fn load_solver(&self) -> Result<(SourceFile, SolverDef), Failed> {
        if sha256_file(&self.solver)? != self.solver_sha256 {
            errln!(
                "warning: {} changed since the run was trained (its SHA-256 differs from run.json)",
                self.solver.display()
            );
        }
        read_solver(&self.solver)
    }
}

/// Reads and checks a solver prototxt, printing its diagnostics.
pub(super) fn read_solver(path: &Path) -> Result<(SourceFile, SolverDef), Failed> {
    let source = SourceFile::read(path)
        .map_err(|e| fail(2, format!("cannot read {}: {e}", path.display())))?;
    let (def, diags) = load_solver(&source, &LoadOptions::default());
    diags.iter().for_each(|d| err!("{}", render(d, &source)));
    match def.filter(|_| !diags.has_errors()) {
        Some(def) => Ok((source, def)),
        None => Err(fail(
            2,
            format!("{} is not a usable solver (see the errors above)", path.display()),
        )),
    }
}

/// The solver's net in the deploy stage (TEST phase), for one image of
/// `image_shape` (C, H, W).
pub(super) fn deploy_net(
    solver: &SourceFile,
    def: &SolverDef,
    image_shape: [usize; 3],
    device: tch::Device,
) -> Result<Net, Failed> {
    let state = NetState { phase: Phase::Test, level: 0, stages: vec!["deploy".to_string()] };
    build_net(
        &def.train_net,
        &state,
        solver,
        &[("data".to_string(), one_image_shape(image_shape))],
        device,
        0,
        Mode::Inference,
    )
}

/// Opens a trained run for prediction: the recorded solver's net in the
/// deploy stage for images of `image_shape`, with `weights` (default
/// `RUN/best.safetensors`) loaded.
pub(super) fn open_run(
    run: &Path,
    weights: Option<&Path>,
    image_shape: [usize; 3],
    device: &DeviceArgs,
) -> Result<(RunConfig, Segmenter), Failed> {
    let device = device.select().map_err(|e| report(2, e))?;
    let config = RunConfig::read(run)?;
    let (solver, def) = config.load_solver()?;
    let mut net = deploy_net(&solver, &def, image_shape, device)?;
    let weights = weights.map_or_else(|| run.join(BEST_WEIGHTS), Path::to_path_buf);
    if !weights.is_file() {
        return Err(fail(2, format!("{} does not exist\n  help: it is written after the first epoch of `lvc train --dataset`; pass --weights RUN/snapshots/epoch-N.safetensors to use another", weights.display())));
    }
    let file = read_weights_checked(&weights).map_err(|e| report(2, e))?;
    let loaded = net.load_weights(&file).map_err(|e| report(2, e))?;
    if !loaded.loads() {
        return Err(fail(
            2,
            format!(
                "{} does not fit the deploy net of {} (see `lvc weights check`)",
                weights.display(),
                config.solver.display()
            ),
        ));
    }
    let segmenter = Segmenter::new(net)
        .map_err(|m| fail(2, format!("the deploy net of {}: {m}", config.solver.display())))?;
    Ok((config, segmenter))
}

/// (1, C, H, W).
pub fn one_image_shape([c, h, w]: [usize; 3]) -> Vec<i64> {
    vec![1, c as i64, h as i64, w as i64]
}

/// Pixel counts of one prediction against its ground truth, per class.
#[derive(Clone, Debug, PartialEq)]
pub struct Overlap {
    pub predicted: Vec<u64>,
    pub truth: Vec<u64>,
    pub both: Vec<u64>,
    /// Pixels scored (ground truth < class count; others are ignored).
    pub pixels: u64,
}

impl Overlap {
    pub fn of(predicted: &[u8], truth: &[u8], classes: usize) -> Overlap {
        let mut o = Overlap {
            predicted: vec![0; classes],
            truth: vec![0; classes],
            both: vec![0; classes],
            pixels: 0,
        };
        for (&p, &t) in predicted.iter().zip(truth) {
            let (p, t) = (usize::from(p), usize::from(t));
            if t >= classes {
                continue;
            }
            o.pixels += 1;
            o.truth[t] += 1;
            if p < classes {
                o.predicted[p] += 1;
                if p == t {
                    o.both[t] += 1;
                }
            }
        }
        o
    }

    pub fn classes(&self) -> usize {
        self.truth.len()
    }

    /// 2|P∩T| / (|P|+|T|); see [`EMPTY_RULE`].
    pub fn dice(&self, class: usize) -> f64 {
        let sum = self.predicted[class] + self.truth[class];
        if sum == 0 {
            1.0
        } else {
            2.0 * self.both[class] as f64 / sum as f64
        }
    }

    /// |P∩T| / |P∪T|; see [`EMPTY_RULE`].
    pub fn jaccard(&self, class: usize) -> f64 {
        let union = self.predicted[class] + self.truth[class] - self.both[class];
        if union == 0 {
            1.0
        } else {
            self.both[class] as f64 / union as f64
        }
    }

    pub fn accuracy(&self) -> f64 {
        if self.pixels == 0 {
            1.0
        } else {
            self.both.iter().sum::<u64>() as f64 / self.pixels as f64
        }
    }

    /// The mean Dice of the foreground classes (1..C); the LV Dice for two classes.
    pub fn foreground_dice(&self) -> f64 {
        mean((1..self.classes()).map(|c| self.dice(c)))
    }

    pub fn foreground_jaccard(&self) -> f64 {
        mean((1..self.classes()).map(|c| self.jaccard(c)))
    }
}

pub fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values.into_iter().fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Sample standard deviation (0 for fewer than two values).
pub fn sd(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values.iter().copied());
    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
}

/// A net that maps one image to class scores: its `data` input, its
/// optional `label` input, and the blob holding the (1, C, H, W) scores.
pub struct Segmenter {
    pub net: Net,
    data: usize,
    label: Option<usize>,
    score: usize,
    pub classes: usize,
}

/// Layer types that compare a score blob (bottom 0) with the label (bottom 1).
const SCORING_LAYERS: [&str; 6] =
    ["SoftmaxWithLoss", "DiceLoss", "Dice", "Accuracy", "Python", "SigmoidCrossEntropyLoss"];

impl Segmenter {
    /// Finds the blobs: with a `label` input, the score is the first bottom
    /// of the first loss/metric layer that reads the label; without one
    /// (deploy), the first net output shaped (1, C, H, W) like the input.
    pub fn new(net: Net) -> Result<Segmenter, String> {
        let plan = &net.plan;
        let input =
            |name: &str| plan.inputs.iter().copied().find(|&id| plan.blob_names[id] == name);
        let data = input("data").ok_or("the net has no Input named `data`")?;
        let label = input("label");
        // Caffe inserts Split layers where a blob has several readers; look through them.
        let origin = |mut id: usize| {
            while let Some(split) =
                plan.steps.iter().find(|s| s.kind == "Split" && s.tops.contains(&id))
            {
                id = split.bottoms[0];
            }
            id
        };
        let score = match label {
            Some(label) => plan
                .steps
                .iter()
                .find(|s| {
                    SCORING_LAYERS.contains(&s.kind.as_str())
                        && s.bottoms.get(1).map(|&b| origin(b)) == Some(label)
                })
                .map(|s| origin(s.bottoms[0]))
                .ok_or("no loss or metric layer compares a score blob with `label`")?,
            None => {
                let spatial = plan.blob_shapes[data].get(2..).unwrap_or_default().to_vec();
                plan.final_blobs()
                    .into_iter()
                    .map(|(_, id)| id)
                    .filter(|id| !plan.steps.iter().any(|s| s.bottoms.contains(id)))
                    .find(|&id| plan.blob_shapes[id].len() == 4 && plan.blob_shapes[id][2..] == spatial[..])
                    .ok_or("no net output has the input's height and width (expected class scores (1, C, H, W))")?
            }
        };
        let classes = plan.blob_shapes[score].get(1).copied().unwrap_or(0);
        if classes < 2 {
            return Err(format!(
                "the score blob `{}` has {classes} channel(s); lvc needs one score per class (≥ 2)",
                plan.blob_names[score]
            ));
        }
        Ok(Segmenter { net, data, label, score, classes: classes as usize })
    }

    pub fn score_name(&self) -> &str {
        &self.net.plan.blob_names[self.score]
    }

    /// The input shape (1, C, H, W).
    pub fn input_shape(&self) -> &[i64] {
        &self.net.plan.blob_shapes[self.data]
    }

    /// Per-pixel argmax labels of one image (C·H·W values), and the net's
    /// loss when `label` (H·W values) is given and the net has a label input.
    pub fn segment(
        &self,
        image: &[f32],
        label: Option<&[u8]>,
    ) -> Result<(Vec<u8>, Option<f64>), RuntimeError> {
        let shape = self.input_shape().to_vec();
        let device = self.net.device;
        let mut inputs = vec![(
            self.net.plan.blob_names[self.data].as_str(),
            Tensor::from_slice(image).reshape(&shape).to_device(device),
        )];
        if let (Some(id), Some(label)) = (self.label, label) {
            let values: Vec<f32> = label.iter().map(|&v| f32::from(v)).collect();
            let label_shape = [1, 1, shape[2], shape[3]];
            inputs.push((
                self.net.plan.blob_names[id].as_str(),
                Tensor::from_slice(&values).reshape(label_shape).to_device(device),
            ));
        }
        let blobs = tch::no_grad(|| self.net.forward_lean(&inputs))?;
        let loss = blobs.loss.as_ref().and_then(|l| f64::try_from(l.detach()).ok());
        let scores = blobs
            .get(self.score)
            .ok_or_else(|| self.score_error("the forward pass did not compute it".to_string()))?;
        let predicted = scores
            .detach()
            .argmax(1, false)
            .to_kind(Kind::Uint8)
            .to_device(tch::Device::Cpu)
            .flatten(0, -1);
        let predicted = Vec::<u8>::try_from(predicted)
            .map_err(|e| self.score_error(format!("cannot read the predictions back: {e}")))?;
        Ok((predicted, loss))
    }

    fn score_error(&self, reason: String) -> RuntimeError {
        RuntimeError::Input {
            name: self.score_name().to_string(),
            reason,
            help: "check the net with `lvc check --stage deploy` and `lvc forward`".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_and_jaccard_count_overlap_per_class() {
        // truth: 4 LV pixels; prediction: 3 of them plus 1 false positive.
        let truth = [1, 1, 1, 1, 0, 0, 0, 0];
        let predicted = [1, 1, 1, 0, 1, 0, 0, 0];
        let o = Overlap::of(&predicted, &truth, 2);
        assert_eq!(o.both, vec![3, 3]);
        assert!((o.dice(1) - 6.0 / 8.0).abs() < 1e-12);
        assert!((o.jaccard(1) - 3.0 / 5.0).abs() < 1e-12);
        assert!((o.accuracy() - 6.0 / 8.0).abs() < 1e-12);
        assert_eq!(o.foreground_dice(), o.dice(1));
    }

    #[test]
    fn both_empty_scores_one_and_a_missed_mask_scores_zero() {
        let background = [0u8; 6];
        assert_eq!(Overlap::of(&background, &background, 2).dice(1), 1.0);
        assert_eq!(Overlap::of(&background, &background, 2).jaccard(1), 1.0);
        let truth = [0, 1, 1, 0, 0, 0];
        assert_eq!(Overlap::of(&background, &truth, 2).dice(1), 0.0);
    }

    #[test]
    fn ignored_labels_are_not_scored() {
        let o = Overlap::of(&[1, 0, 1], &[1, 255, 0], 2);
        assert_eq!(o.pixels, 2);
        assert_eq!(o.accuracy(), 0.5);
    }

    #[test]
    fn mean_and_sample_sd() {
        assert_eq!(mean([1.0, 2.0, 3.0]), 2.0);
        assert_eq!(mean(std::iter::empty()), 0.0);
        assert!((sd(&[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
        assert_eq!(sd(&[5.0]), 0.0);
    }
}
