//! A trained net as a segmenter: one image in, per-pixel labels out; and
//! opening a run folder's deploy net with its weights.

use std::path::Path;

use lvc_compiler::ops::OpKind;
use lvc_runtime::error::RuntimeError;
use lvc_runtime::exec::{Net, Step};
use lvc_runtime::tch::{self, Kind, Tensor};

use crate::device::DeviceSpec;
use crate::failure::{fail, report, Failed};
use crate::net::{deploy_net, read_weights_checked};
use crate::run_folder::{RunConfig, BEST_WEIGHTS};

/// Opens a trained run for prediction: the solver `config` (the run's
/// run.json, which the caller has read) records, its net in the deploy
/// stage for images of `image_shape`, with `weights` (default
/// `RUN/best.safetensors`) loaded.
pub fn open_run(
    run: &Path,
    config: &RunConfig,
    weights: Option<&Path>,
    image_shape: [usize; 3],
    device: &DeviceSpec,
) -> Result<Segmenter, Failed> {
    let device = device.select().map_err(|e| report(2, e))?;
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
    Ok(segmenter)
}

/// A net that maps one image to class scores: its `data` input, its
/// optional `label` input, and the blob holding the (1, C, H, W) scores.
pub struct Segmenter {
    /// The net, with its weights.
    pub net: Net,
    data: usize,
    label: Option<usize>,
    score: usize,
    /// Classes scored (channels of the score blob).
    pub classes: usize,
}

/// A step of this type (a Caffe type name).
fn is(step: &Step, kind: OpKind) -> bool {
    OpKind::from_name(&step.kind) == Some(kind)
}

/// A step that compares a score blob (bottom 0) with the label (bottom 1):
/// its type scores labels (the compiler's op table).
fn scores_labels(step: &Step) -> bool {
    OpKind::from_name(&step.kind).is_some_and(OpKind::scores_labels)
}

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
                plan.steps.iter().find(|s| is(s, OpKind::Split) && s.tops.contains(&id))
            {
                id = split.bottoms[0];
            }
            id
        };
        let score = match label {
            Some(label) => plan
                .steps
                .iter()
                .find(|s| scores_labels(s) && s.bottoms.get(1).map(|&b| origin(b)) == Some(label))
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

    /// The name of the blob holding the class scores.
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
