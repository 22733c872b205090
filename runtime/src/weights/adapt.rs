//! Load-time fixes (`--adapt`), applied to the file's blobs before matching:
//!
//! * `<layer>=sum|mean|replicate`: input-channel adaptation of a convolution
//!   (RGB filters into a gray net by summing or averaging over the input
//!   channels; gray filters into an RGB net by replicating and dividing by
//!   the channel count, so a gray image repeated on every channel gives the
//!   same response).
//! * `reinit=<layer>`: drop the file's blobs for the layer, so that it keeps
//!   the values of its prototxt fillers, which is what renaming the layer does
//!   in Caffe (the runtime's filler initialisation runs for every layer the
//!   file does not supply).
//! * `convolutionalize`: InnerProduct weights `[out, in]` reshaped into a
//!   convolution `[out, C, kh, kw]` when the element counts match (DIGITS'
//!   and FCN's net surgery for fc6/fc7).

use std::fmt;
use std::str::FromStr;

use lvc_compiler::ops::OpKind;

use super::matching::{convolutionalizable, input_channel_change, TargetLayer};
use super::{CaffeShape, WeightBlob, WeightsFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdaptMode {
    Sum,
    Mean,
    Replicate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adaptation {
    InputChannels { layer: String, mode: AdaptMode },
    Reinit { layer: String },
    Convolutionalize,
}

impl fmt::Display for Adaptation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Adaptation::InputChannels { layer, mode } => {
                let mode = match mode {
                    AdaptMode::Sum => "sum",
                    AdaptMode::Mean => "mean",
                    AdaptMode::Replicate => "replicate",
                };
                write!(f, "{layer}={mode}")
            }
            Adaptation::Reinit { layer } => write!(f, "reinit={layer}"),
            Adaptation::Convolutionalize => f.write_str("convolutionalize"),
        }
    }
}

impl FromStr for Adaptation {
    type Err = String;
    /// `conv1=sum`, `conv1=mean`, `conv1=replicate`, `reinit=score_fr`, `convolutionalize`.
    fn from_str(s: &str) -> Result<Self, String> {
        const USAGE: &str =
            "expected <layer>=sum|mean|replicate, reinit=<layer> or convolutionalize";
        if s == "convolutionalize" {
            return Ok(Adaptation::Convolutionalize);
        }
        let (left, right) = s.split_once('=').ok_or_else(|| format!("`{s}`: {USAGE}"))?;
        if left.is_empty() || right.is_empty() {
            return Err(format!("`{s}`: {USAGE}"));
        }
        if left == "reinit" {
            return Ok(Adaptation::Reinit { layer: right.to_string() });
        }
        let mode = match right {
            "sum" => AdaptMode::Sum,
            "mean" => AdaptMode::Mean,
            "replicate" => AdaptMode::Replicate,
            other => return Err(format!("`{s}`: unknown channel mode `{other}`; {USAGE}")),
        };
        Ok(Adaptation::InputChannels { layer: left.to_string(), mode })
    }
}

/// What one adaptation did to one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedAdaptation {
    pub layer: String,
    pub what: String,
}

/// An adaptation that does not fit the net or the file.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("--adapt {adaptation}: {what}")]
#[diagnostic(code(lvc::weights::adapt), help("{help}"))]
pub struct AdaptError {
    pub adaptation: String,
    pub what: String,
    pub help: String,
}

fn adapt_error(
    adaptation: &Adaptation,
    what: impl Into<String>,
    help: impl Into<String>,
) -> AdaptError {
    AdaptError { adaptation: adaptation.to_string(), what: what.into(), help: help.into() }
}

/// Applies the adaptations in order to the file's blobs (in memory).
pub fn apply_adaptations(
    file: &mut WeightsFile,
    targets: &[TargetLayer],
    adaptations: &[Adaptation],
) -> Result<Vec<AppliedAdaptation>, AdaptError> {
    let mut applied = Vec::new();
    for adaptation in adaptations {
        match adaptation {
            Adaptation::InputChannels { layer, mode } => {
                applied.push(adapt_input_channels(file, targets, adaptation, layer, *mode)?);
            }
            Adaptation::Reinit { layer } => {
                let target = find_target(targets, adaptation, layer)?;
                let before = file.layers.len();
                file.layers.retain(|l| l.name != *layer);
                if file.layers.len() == before {
                    return Err(adapt_error(
                        adaptation,
                        format!("the weights file has no layer '{layer}'"),
                        "the layer already keeps its filler values; drop this --adapt",
                    ));
                }
                let fillers: Vec<String> = target
                    .params
                    .iter()
                    .map(|p| {
                        p.filler
                            .as_ref()
                            .map_or_else(|| "constant 0".to_string(), |f| f.kind.clone())
                    })
                    .collect();
                applied.push(AppliedAdaptation {
                    layer: layer.clone(),
                    what: format!(
                        "re-initialised from the prototxt fillers ({})",
                        fillers.join(", ")
                    ),
                });
            }
            Adaptation::Convolutionalize => {
                let before = applied.len();
                for target in targets.iter().filter(|t| t.kind == OpKind::Convolution.name()) {
                    for source in file.layers.iter_mut().filter(|l| l.name == target.name) {
                        if !convolutionalizable(target, source) {
                            continue;
                        }
                        let from = CaffeShape(&source.blobs[0].shape).to_string();
                        for (blob, param) in source.blobs.iter_mut().zip(&target.params) {
                            blob.shape = param.shape.0.clone();
                            blob.legacy_4d = false;
                        }
                        applied.push(AppliedAdaptation {
                            layer: target.name.clone(),
                            what: format!(
                                "InnerProduct weights {from} reshaped to {}",
                                CaffeShape(target.params[0].shape.dims())
                            ),
                        });
                    }
                }
                if applied.len() == before {
                    return Err(adapt_error(
                        adaptation,
                        "no InnerProduct weights in the file fit a convolution of the net",
                        "convolutionalize needs a file layer with [out, in] weights named like a net convolution [out, C, kh, kw] with in = C·kh·kw",
                    ));
                }
            }
        }
    }
    Ok(applied)
}

fn find_target<'a>(
    targets: &'a [TargetLayer],
    adaptation: &Adaptation,
    layer: &str,
) -> Result<&'a TargetLayer, AdaptError> {
    targets.iter().find(|t| t.name == layer).ok_or_else(|| {
        adapt_error(
            adaptation,
            format!("the net has no learnable layer '{layer}'"),
            "name a layer of the --model prototxt that has weights",
        )
    })
}

fn adapt_input_channels(
    file: &mut WeightsFile,
    targets: &[TargetLayer],
    adaptation: &Adaptation,
    layer: &str,
    mode: AdaptMode,
) -> Result<AppliedAdaptation, AdaptError> {
    let target = find_target(targets, adaptation, layer)?;
    let expected = target.params.first().map(|p| p.shape.0.clone()).unwrap_or_default();
    let mut sources = file.layers.iter_mut().filter(|l| l.name == layer).peekable();
    if sources.peek().is_none() {
        return Err(adapt_error(
            adaptation,
            format!("the weights file has no layer '{layer}'"),
            "check the layer name against `lvc weights check` output",
        ));
    }
    let mut what = String::new();
    for source in sources {
        let Some(weight) = source.blobs.first_mut() else {
            return Err(adapt_error(
                adaptation,
                format!("layer '{layer}' has no blobs in the file"),
                "nothing to adapt",
            ));
        };
        if weight.shape == expected {
            what = format!("already {}; left as is", CaffeShape(&expected));
            continue;
        }
        let Some((from, to)) = input_channel_change(&weight.shape, &expected) else {
            return Err(adapt_error(
                adaptation,
                format!("file weights {} and net weights {} do not differ only in a 1-channel input axis", CaffeShape(&weight.shape), CaffeShape(&expected)),
                "channel adaptation maps N input channels to 1 (sum, mean) or 1 to N (replicate)",
            ));
        };
        *weight = match (mode, to) {
            (AdaptMode::Sum | AdaptMode::Mean, 1) => {
                fold_input_channels(weight, mode == AdaptMode::Mean)
            }
            (AdaptMode::Replicate, _) if from == 1 => replicate_input_channel(weight, to),
            _ => {
                let help = if to == 1 {
                    format!(
                        "use `--adapt {layer}=sum` or `--adapt {layer}=mean` for this direction"
                    )
                } else {
                    format!("use `--adapt {layer}=replicate` for this direction")
                };
                return Err(adapt_error(
                    adaptation,
                    format!("the file has {from} input channel(s) and the net {to}"),
                    help,
                ));
            }
        };
        let how = match mode {
            AdaptMode::Sum => "summed over",
            AdaptMode::Mean => "averaged over",
            AdaptMode::Replicate => "replicated (÷N) to",
        };
        what = format!(
            "filters {how} input channels: {} → {}",
            CaffeShape(&[expected[0], from, expected[2], expected[3]]),
            CaffeShape(&expected)
        );
    }
    Ok(AppliedAdaptation { layer: layer.to_string(), what })
}

/// `[O, C, kh, kw]` → `[O, 1, kh, kw]`: per output, the sum (or mean) of its
/// C input-channel kernels.
fn fold_input_channels(weight: &WeightBlob, mean: bool) -> WeightBlob {
    let (outputs, channels) = (weight.shape[0] as usize, weight.shape[1] as usize);
    let kernel = (weight.shape[2] * weight.shape[3]) as usize;
    let scale = if mean { 1.0 / channels as f32 } else { 1.0 };
    let mut data = vec![0.0f32; outputs * kernel];
    for (o, out) in data.chunks_exact_mut(kernel).enumerate() {
        for c in 0..channels {
            let start = (o * channels + c) * kernel;
            for (acc, w) in out.iter_mut().zip(&weight.data[start..start + kernel]) {
                *acc += w;
            }
        }
        out.iter_mut().for_each(|v| *v *= scale);
    }
    WeightBlob::new(vec![weight.shape[0], 1, weight.shape[2], weight.shape[3]], data)
}

/// `[O, 1, kh, kw]` → `[O, C, kh, kw]`: each kernel copied to every input
/// channel and divided by C.
fn replicate_input_channel(weight: &WeightBlob, channels: i64) -> WeightBlob {
    let kernel = (weight.shape[2] * weight.shape[3]) as usize;
    let scale = 1.0 / channels as f32;
    let mut data = Vec::with_capacity(weight.data.len() * channels as usize);
    for filter in weight.data.chunks_exact(kernel) {
        for _ in 0..channels {
            data.extend(filter.iter().map(|w| w * scale));
        }
    }
    WeightBlob::new(vec![weight.shape[0], channels, weight.shape[2], weight.shape[3]], data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::{match_weights, LayerStatus, WeightsLayer};
    use lvc_compiler::ops::{BlobShape, FillerDef, ParamRole, ParamShape};

    fn conv_target(name: &str, weight: &[i64], bias: i64) -> TargetLayer {
        let filler = FillerDef {
            kind: "gaussian".into(),
            value: 0.0,
            min: 0.0,
            max: 1.0,
            mean: 0.0,
            std: 0.01,
            sparse: -1,
            variance_norm: "FAN_IN".into(),
        };
        TargetLayer {
            name: name.into(),
            kind: "Convolution".into(),
            span: None,
            params: vec![
                ParamShape {
                    role: ParamRole::Weight,
                    shape: BlobShape(weight.to_vec()),
                    filler: Some(filler),
                },
                ParamShape { role: ParamRole::Bias, shape: BlobShape(vec![bias]), filler: None },
            ],
        }
    }

    fn file_with(name: &str, kind: &str, blobs: Vec<WeightBlob>) -> WeightsFile {
        WeightsFile {
            name: None,
            layers: vec![WeightsLayer { name: name.into(), kind: kind.into(), blobs }],
        }
    }

    /// Two outputs, three channels, 1x2 kernels: value = 100·o + 10·c + k.
    fn rgb_filters() -> WeightBlob {
        let data = (0..2)
            .flat_map(|o| {
                (0..3).flat_map(move |c| (0..2).map(move |k| (100 * o + 10 * c + k) as f32))
            })
            .collect();
        WeightBlob::new(vec![2, 3, 1, 2], data)
    }

    #[test]
    fn parses_every_flag_form() {
        assert_eq!(
            "conv1=sum".parse(),
            Ok(Adaptation::InputChannels { layer: "conv1".into(), mode: AdaptMode::Sum })
        );
        assert_eq!(
            "conv1=replicate".parse(),
            Ok(Adaptation::InputChannels { layer: "conv1".into(), mode: AdaptMode::Replicate })
        );
        assert_eq!("reinit=score_fr".parse(), Ok(Adaptation::Reinit { layer: "score_fr".into() }));
        assert_eq!("convolutionalize".parse(), Ok(Adaptation::Convolutionalize));
        assert!("conv1=avg"
            .parse::<Adaptation>()
            .unwrap_err()
            .contains("unknown channel mode `avg`"));
        assert!("conv1".parse::<Adaptation>().is_err());
        assert!("=sum".parse::<Adaptation>().is_err());
    }

    #[test]
    fn three_to_one_sum_and_mean() {
        let targets = vec![conv_target("conv1", &[2, 1, 1, 2], 2)];
        for (mode, expected) in [
            (AdaptMode::Sum, vec![30.0, 33.0, 330.0, 333.0]),
            (AdaptMode::Mean, vec![10.0, 11.0, 110.0, 111.0]),
        ] {
            let mut file = file_with(
                "conv1",
                "Convolution",
                vec![rgb_filters(), WeightBlob::new(vec![2], vec![0.5, 0.5])],
            );
            let applied = apply_adaptations(
                &mut file,
                &targets,
                &[Adaptation::InputChannels { layer: "conv1".into(), mode }],
            )
            .unwrap();
            assert_eq!(file.layers[0].blobs[0], WeightBlob::new(vec![2, 1, 1, 2], expected));
            assert!(applied[0].what.contains("2 3 1 2 (12) → 2 1 1 2 (4)"), "{:?}", applied);
            assert!(match_weights(&targets, &file).loads());
        }
    }

    #[test]
    fn one_to_three_replicates_divided_by_three() {
        let targets = vec![conv_target("conv1", &[1, 3, 1, 2], 1)];
        let mut file = file_with(
            "conv1",
            "Convolution",
            vec![
                WeightBlob::new(vec![1, 1, 1, 2], vec![3.0, 6.0]),
                WeightBlob::new(vec![1], vec![0.0]),
            ],
        );
        apply_adaptations(
            &mut file,
            &targets,
            &[Adaptation::InputChannels { layer: "conv1".into(), mode: AdaptMode::Replicate }],
        )
        .unwrap();
        assert_eq!(
            file.layers[0].blobs[0],
            WeightBlob::new(vec![1, 3, 1, 2], vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0])
        );
    }

    #[test]
    fn wrong_direction_or_shape_is_an_error_with_help() {
        let targets = vec![conv_target("conv1", &[2, 1, 1, 2], 2)];
        let mut file = file_with(
            "conv1",
            "Convolution",
            vec![rgb_filters(), WeightBlob::new(vec![2], vec![0.0; 2])],
        );
        let err = apply_adaptations(
            &mut file,
            &targets,
            &[Adaptation::InputChannels { layer: "conv1".into(), mode: AdaptMode::Replicate }],
        )
        .unwrap_err();
        assert!(
            err.what.contains("3 input channel(s) and the net 1") && err.help.contains("conv1=sum"),
            "{err:?}"
        );

        let targets = vec![conv_target("conv1", &[4, 1, 1, 2], 4)];
        let err = apply_adaptations(
            &mut file,
            &targets,
            &[Adaptation::InputChannels { layer: "conv1".into(), mode: AdaptMode::Sum }],
        )
        .unwrap_err();
        assert!(err.what.contains("do not differ only"), "{err:?}");

        let err =
            apply_adaptations(&mut file, &targets, &["conv9=sum".parse().unwrap()]).unwrap_err();
        assert!(err.what.contains("no learnable layer 'conv9'"), "{err:?}");
    }

    #[test]
    fn convolutionalize_reshapes_inner_product_weights() {
        let targets = vec![conv_target("fc6", &[2, 3, 2, 2], 2)];
        let weights: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let mut file = file_with(
            "fc6",
            "InnerProduct",
            vec![
                WeightBlob { shape: vec![1, 1, 2, 12], legacy_4d: true, data: weights.clone() },
                WeightBlob { shape: vec![1, 1, 1, 2], legacy_4d: true, data: vec![1.0, 2.0] },
            ],
        );
        assert_eq!(match_weights(&targets, &file).layers[0].status, LayerStatus::ShapeMismatch);
        let applied =
            apply_adaptations(&mut file, &targets, &[Adaptation::Convolutionalize]).unwrap();
        assert_eq!(applied.len(), 1);
        assert_eq!(file.layers[0].blobs[0], WeightBlob::new(vec![2, 3, 2, 2], weights));
        assert_eq!(file.layers[0].blobs[1], WeightBlob::new(vec![2], vec![1.0, 2.0]));
        assert!(match_weights(&targets, &file).loads());

        let err =
            apply_adaptations(&mut file, &targets, &[Adaptation::Convolutionalize]).unwrap_err();
        assert!(err.what.contains("no InnerProduct weights"), "{err:?}");
    }

    #[test]
    fn reinit_drops_the_layer_so_it_keeps_its_fillers() {
        let targets = vec![conv_target("score", &[2, 4, 1, 1], 2)];
        let mut file = file_with(
            "score",
            "Convolution",
            vec![
                WeightBlob::new(vec![21, 4, 1, 1], vec![0.0; 84]),
                WeightBlob::new(vec![21], vec![0.0; 21]),
            ],
        );
        assert!(!match_weights(&targets, &file).loads());
        let applied =
            apply_adaptations(&mut file, &targets, &["reinit=score".parse().unwrap()]).unwrap();
        assert_eq!(
            applied[0].what,
            "re-initialised from the prototxt fillers (gaussian, constant 0)"
        );
        let report = match_weights(&targets, &file);
        assert!(report.loads());
        assert_eq!(report.layers[0].status, LayerStatus::MissingInFile);
    }
}
