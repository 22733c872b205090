//! Solver-state snapshots: what Caffe's `.solverstate` holds (the iteration,
//! the update rule's history per learnable blob, multistep's current step)
//! plus what lvc needs for a bit-exact continuation: the random seed, the
//! position of the dropout stream (training passes so far), the position of
//! every Augment layer's stream, and the smoothed-loss window of the log.
//!
//! The file is safetensors, written next to the weights snapshot as
//! `<prefix>_iter_<N>.solverstate.safetensors` (Caffe writes
//! `<prefix>_iter_<N>.solverstate` next to the `.caffemodel`): float32
//! tensors `<layer>.<index>.history` and, for AdaDelta and Adam,
//! `<layer>.<index>.history2`; the metadata holds the format tag with its
//! version (`lvc-solverstate/1`), the solver type, the counters, the list of
//! learnt params (layer, index, shape) so that a mismatch names the param,
//! and `weights`, the file name of the weights snapshot written with it
//! (Caffe's `learned_net`). Floats in the metadata use Rust's shortest
//! round-trip formatting, so they read back exactly.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use lvc_compiler::schema::solver::SolverType;
use safetensors::tensor::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::smoothed::SmoothedLoss;
use crate::ops::StreamPosition;
use crate::weights::safetensors::BlobView;

/// `__metadata__.format` of a solver state is `lvc-solverstate/<version>`
/// (defined with the safetensors reader, which refuses such files as weights).
pub use crate::weights::safetensors::STATE_FORMAT;
/// The version this lvc writes and reads.
pub const STATE_VERSION: u32 = 1;

/// The solver state written with the weights snapshot `weights`:
/// `run/x_iter_4.safetensors` → `run/x_iter_4.solverstate.safetensors`.
pub fn state_path_for(weights: &Path) -> PathBuf {
    let stem = weights.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    weights.with_file_name(format!("{stem}.solverstate.safetensors"))
}

/// The optimiser history of one learnable blob.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamHistory {
    pub layer: String,
    /// The blob's index in the layer (0 weight, 1 bias, …).
    pub index: usize,
    pub shape: Vec<i64>,
    /// Caffe's `history_[i]`: momentum (SGD, Nesterov), squared-gradient
    /// sums (AdaGrad, RMSProp, AdaDelta), Adam's m.
    pub history: Vec<f32>,
    /// Caffe's `history_[i + N]`: AdaDelta's update accumulator, Adam's v.
    pub history2: Option<Vec<f32>>,
}

/// Everything a [`Trainer`] needs, besides the weights, to continue exactly
/// where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct SolverState {
    pub solver_type: SolverType,
    /// The next iteration to run (Caffe's `iter`).
    pub iter: i64,
    /// `multistep`'s position in `stepvalue` (Caffe's `current_step`).
    pub current_step: usize,
    /// The run's random seed (the clock's when `random_seed` was negative).
    pub seed: u64,
    /// Training forward passes so far: the dropout stream's position.
    pub train_passes: u64,
    /// Per layer with its own random stream (Augment), the stream's seed and
    /// position.
    pub streams: BTreeMap<String, StreamPosition>,
    pub smoothed_loss: SmoothedLoss,
    pub params: Vec<ParamHistory>,
    /// File name of the weights snapshot written with this state, in the
    /// same folder.
    pub weights: Option<String>,
}

/// Why a solver state cannot be written, read or resumed from.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateError {
    #[error("cannot access solver state {}: {source}", path.display())]
    #[diagnostic(
        code(lvc::solverstate::io),
        help("check that the path exists and is readable (or its folder writable)")
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is not a usable solver state: {what}", path.display())]
    #[diagnostic(
        code(lvc::solverstate::format),
        help("pass a `*.solverstate.safetensors` file that `lvc train` wrote next to a weights snapshot, or Caffe's binary `*.solverstate`; to start over from a snapshot's weights, pass the weights with --weights")
    )]
    Format { path: PathBuf, what: String },

    #[error("{} has solver-state format version {found}; this lvc reads version {STATE_VERSION}", path.display())]
    #[diagnostic(code(lvc::solverstate::version), help("resume with the lvc that wrote it, or start over from its weights snapshot with --weights"))]
    Version { path: PathBuf, found: String },

    #[error("{} does not fit this solver and net: {what}", path.display())]
    #[diagnostic(
        code(lvc::solverstate::mismatch),
        help("resume with the solver and net the state was written with; to start over from its weights snapshot, pass that with --weights")
    )]
    Mismatch { path: PathBuf, what: String },
}

/// One entry of `__metadata__.params`.
#[derive(Debug, Serialize, Deserialize)]
struct ParamMeta {
    layer: String,
    index: usize,
    shape: Vec<i64>,
    /// 1, or 2 for AdaDelta and Adam.
    histories: usize,
}

fn history_name(layer: &str, index: usize, which: usize) -> String {
    match which {
        1 => format!("{layer}.{index}.history"),
        _ => format!("{layer}.{index}.history{which}"),
    }
}

pub(super) fn type_name(rule: SolverType) -> &'static str {
    SolverType::NAMES.iter().find(|(_, _, t)| *t == rule).map_or("?", |(name, _, _)| name)
}

fn format_floats(values: &[f64]) -> String {
    values.iter().map(f64::to_string).collect::<Vec<_>>().join(" ")
}

/// Writes `state` to `path` atomically.
pub fn write_state(path: &Path, state: &SolverState) -> Result<(), StateError> {
    let bad = |what: String| StateError::Format { path: path.to_path_buf(), what };
    let mut tensors = Vec::new();
    let mut params = Vec::new();
    for p in &state.params {
        let shape =
            p.shape.iter().map(|&d| usize::try_from(d)).collect::<Result<Vec<_>, _>>().map_err(
                |_| {
                    bad(format!(
                        "`{}` param {} has a negative dimension {:?}",
                        p.layer, p.index, p.shape
                    ))
                },
            )?;
        let count = shape.iter().product::<usize>();
        let histories: Vec<&Vec<f32>> = std::iter::once(&p.history).chain(&p.history2).collect();
        for (which, data) in histories.iter().enumerate() {
            if data.len() != count {
                return Err(bad(format!(
                    "`{}` param {}: {} history values for shape {:?}",
                    p.layer,
                    p.index,
                    data.len(),
                    p.shape
                )));
            }
            tensors.push((
                history_name(&p.layer, p.index, which + 1),
                BlobView { shape: shape.clone(), data },
            ));
        }
        params.push(ParamMeta {
            layer: p.layer.clone(),
            index: p.index,
            shape: p.shape.clone(),
            histories: histories.len(),
        });
    }
    let json = |value: serde_json::Result<String>| value.map_err(|e| bad(e.to_string()));
    let mut metadata = HashMap::from([
        ("format".to_string(), format!("{STATE_FORMAT}/{STATE_VERSION}")),
        ("lvc_version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("solver_type".to_string(), type_name(state.solver_type).to_string()),
        ("iter".to_string(), state.iter.to_string()),
        ("current_step".to_string(), state.current_step.to_string()),
        ("seed".to_string(), state.seed.to_string()),
        ("train_passes".to_string(), state.train_passes.to_string()),
        ("streams".to_string(), json(serde_json::to_string(&state.streams))?),
        ("params".to_string(), json(serde_json::to_string(&params))?),
        ("smoothed_loss_window".to_string(), state.smoothed_loss.window.to_string()),
        ("smoothed_loss_next".to_string(), state.smoothed_loss.next.to_string()),
        ("smoothed_loss_value".to_string(), state.smoothed_loss.value.to_string()),
        ("smoothed_loss_losses".to_string(), format_floats(&state.smoothed_loss.losses)),
    ]);
    if let Some(weights) = &state.weights {
        metadata.insert("weights".to_string(), weights.clone());
    }
    lvc_fsio::write_atomic_via_temp_path(path, |tmp| {
        safetensors::tensor::serialize_to_file(tensors, &Some(metadata), tmp)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))
    })
    .map_err(|source| StateError::Io { path: path.to_path_buf(), source })
}

/// Reads a solver state written by [`write_state`].
pub fn read_state(path: &Path) -> Result<SolverState, StateError> {
    let bytes = lvc_fsio::read_regular(path, u64::MAX)
        .map_err(|source| StateError::Io { path: path.to_path_buf(), source })?;
    let bad = |what: String| StateError::Format { path: path.to_path_buf(), what };
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e:?}")))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e:?}")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let field =
        |key: &str| metadata.get(key).ok_or_else(|| bad(format!("its metadata lacks `{key}`")));
    let number = |key: &str| -> Result<u64, StateError> {
        let text = field(key)?;
        text.parse().map_err(|_| bad(format!("`{key}` is `{text}`, not a count")))
    };

    let tag = field("format")?;
    let Some(version) = tag.strip_prefix(STATE_FORMAT).and_then(|rest| rest.strip_prefix('/'))
    else {
        let what = if tag.starts_with("lvc-weights") {
            "it is a weights file (pass it with --weights)".to_string()
        } else {
            format!("its format is `{tag}`")
        };
        return Err(bad(what));
    };
    if version != STATE_VERSION.to_string() {
        return Err(StateError::Version { path: path.to_path_buf(), found: version.to_string() });
    }

    let type_text = field("solver_type")?;
    let solver_type = SolverType::NAMES
        .iter()
        .find(|(name, _, _)| name == type_text)
        .map(|(_, _, t)| *t)
        .ok_or_else(|| bad(format!("unknown solver type `{type_text}`")))?;
    let iter_text = field("iter")?;
    let iter = iter_text
        .parse::<i64>()
        .map_err(|_| bad(format!("`iter` is `{iter_text}`, not an iteration")))?;
    let count = |key: &str| {
        number(key)
            .and_then(|n| usize::try_from(n).map_err(|_| bad(format!("`{key}` is too large"))))
    };
    let float = |key: &str, text: &str| {
        text.parse::<f64>().map_err(|_| bad(format!("`{key}` holds `{text}`, not a number")))
    };

    let streams: BTreeMap<String, StreamPosition> = serde_json::from_str(field("streams")?)
        .map_err(|e| bad(format!("`streams` is not valid: {e}")))?;
    let metas: Vec<ParamMeta> = serde_json::from_str(field("params")?)
        .map_err(|e| bad(format!("`params` is not valid: {e}")))?;
    let mut params = Vec::with_capacity(metas.len());
    for meta in metas {
        if !(1..=2).contains(&meta.histories) {
            return Err(bad(format!(
                "`{}` param {} lists {} histories (1 or 2)",
                meta.layer, meta.index, meta.histories
            )));
        }
        let mut histories = Vec::with_capacity(meta.histories);
        for which in 1..=meta.histories {
            let name = history_name(&meta.layer, meta.index, which);
            let view =
                file.tensor(&name).map_err(|_| bad(format!("tensor `{name}` is missing")))?;
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            if view.dtype() != Dtype::F32 || shape != meta.shape {
                return Err(bad(format!(
                    "tensor `{name}` is {:?} {shape:?}; the metadata says F32 {:?}",
                    view.dtype(),
                    meta.shape
                )));
            }
            let mut values = Vec::new();
            crate::weights::wire::extend_f32_le(&mut values, view.data());
            histories.push(values);
        }
        let history2 = (histories.len() == 2).then(|| histories.pop()).flatten();
        let history = histories.pop().unwrap_or_default();
        params.push(ParamHistory {
            layer: meta.layer,
            index: meta.index,
            shape: meta.shape,
            history,
            history2,
        });
    }

    let losses_text = field("smoothed_loss_losses")?;
    let losses = losses_text
        .split_whitespace()
        .map(|v| float("smoothed_loss_losses", v))
        .collect::<Result<Vec<f64>, _>>()?;
    let smoothed_loss = SmoothedLoss {
        window: count("smoothed_loss_window")?,
        losses,
        next: count("smoothed_loss_next")?,
        value: float("smoothed_loss_value", field("smoothed_loss_value")?)?,
    };
    if smoothed_loss.losses.len() > smoothed_loss.window
        || (smoothed_loss.next > 0 && smoothed_loss.next >= smoothed_loss.window)
    {
        return Err(bad("the smoothed-loss window is inconsistent".to_string()));
    }
    Ok(SolverState {
        solver_type,
        iter,
        current_step: count("current_step")?,
        seed: number("seed")?,
        train_passes: number("train_passes")?,
        streams,
        smoothed_loss,
        params,
        weights: metadata.get("weights").cloned(),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::exec::{Net, Plan};
    use crate::ops::host_f32;
    use crate::ops::testing::global_generator;
    use crate::solver::lr::LrSchedule;
    use crate::solver::train::Trainer;
    use crate::solver::train::{FedTensors, LoopSettings};
    use crate::solver::update::UpdateSettings;
    use lvc_compiler::ir::{compile, CompileOptions};
    use lvc_compiler::schema::solver::LrPolicy;
    use lvc_compiler::schema::Phase;
    use lvc_compiler::SourceFile;
    use tch::Tensor;

    /// Augmentation (noise and flips: its own stream) and Dropout (libtorch's
    /// generator) in the train net, so that a resume must restore both.
    fn net_text(score_outputs: usize, extra_layer: bool) -> String {
        let extra = if extra_layer {
            r#"layer { name: "extra" type: "Convolution" bottom: "score" top: "extra" convolution_param { num_output: 2 kernel_size: 1 } }"#
        } else {
            ""
        };
        format!(
            r#"
            layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ dim: 2 dim: 1 dim: 4 dim: 4 }} }} }}
            layer {{ name: "label" type: "Input" top: "label" input_param {{ shape {{ dim: 2 dim: 1 dim: 4 dim: 4 }} }} }}
            layer {{ name: "augment" type: "Augment" bottom: "data" bottom: "label" top: "data" top: "label"
              augment_param {{ seed: 1 flip_prob: 0.5 noise_prob: 0.5 noise_std: 0.2 }} }}
            layer {{ name: "conv" type: "Convolution" bottom: "data" top: "conv"
              convolution_param {{ num_output: 4 kernel_size: 1 weight_filler {{ type: "gaussian" std: 0.5 }} }} }}
            layer {{ name: "drop" type: "Dropout" bottom: "conv" top: "conv" dropout_param {{ dropout_ratio: 0.5 }} }}
            layer {{ name: "score" type: "Convolution" bottom: "conv" top: "score"
              convolution_param {{ num_output: {score_outputs} kernel_size: 1 weight_filler {{ type: "gaussian" std: 0.5 }} }} }}
            {extra}
            layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }}
            "#
        )
    }

    pub(in crate::solver) fn net(text: &str, seed: u64) -> Net {
        let compiled = compile(
            &SourceFile::new("t.prototxt", text),
            &CompileOptions { phase: Phase::Train, ..CompileOptions::default() },
        );
        assert!(!compiled.diags.has_errors(), "{:#?}", compiled.diags);
        let plan =
            Plan::from_graph(compiled.graph.as_ref().unwrap(), compiled.net.as_ref().unwrap())
                .unwrap();
        Net::new(plan, tch::Device::Cpu, seed).unwrap()
    }

    pub(in crate::solver) fn data() -> FedTensors {
        let image: Vec<f32> = (0..32).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
        let label: Vec<f32> = (0..32).map(|i| f32::from(u8::from(i % 3 == 0))).collect();
        FedTensors {
            tensors: vec![
                ("data".into(), Tensor::from_slice(&image).reshape([2, 1, 4, 4])),
                ("label".into(), Tensor::from_slice(&label).reshape([2, 1, 4, 4])),
            ],
        }
    }

    /// A trainer with `rule`, a multistep schedule (its position is state)
    /// and a smoothed-loss window of 3.
    pub(in crate::solver) fn trainer(rule: SolverType, text: &str, seed: u64) -> Trainer {
        let mut update = UpdateSettings::sgd(0.9, 0.001);
        update.rule = rule;
        let mut schedule = LrSchedule::new(0.1, LrPolicy::Multistep);
        schedule.gamma = 0.5;
        schedule.stepvalue = vec![1, 3];
        let settings = LoopSettings {
            max_iter: 5,
            display: 1,
            average_loss: 3,
            test_interval: 0,
            test_initialization: false,
            snapshot: 0,
            snapshot_prefix: String::new(),
            snapshot_after_train: false,
        };
        Trainer::with_settings(update, schedule, settings, 9, net(text, seed), Vec::new())
    }

    pub(in crate::solver) fn run(t: &mut Trainer, iterations: usize) -> Vec<f64> {
        let mut feed = data();
        (0..iterations)
            .map(|_| match t.step(&mut feed).unwrap() {
                crate::solver::Event::Iteration { smoothed_loss, .. } => smoothed_loss,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    pub(in crate::solver) fn params(t: &Trainer) -> Vec<Vec<f32>> {
        t.net.params.iter().flatten().map(host_f32).collect()
    }

    const RULES: [SolverType; 6] = [
        SolverType::Sgd,
        SolverType::Nesterov,
        SolverType::AdaGrad,
        SolverType::RmsProp,
        SolverType::AdaDelta,
        SolverType::Adam,
    ];

    #[test]
    fn every_solver_type_round_trips_and_resumes_bit_exactly() {
        let _generator = global_generator();
        let dir = tempfile::tempdir().unwrap();
        let text = net_text(2, false);
        for rule in RULES {
            let mut straight = trainer(rule, &text, 1);
            let straight_losses = run(&mut straight, 5);

            let mut first = trainer(rule, &text, 1);
            run(&mut first, 2);
            let weights = dir.path().join(format!("{}_iter_2.safetensors", type_name(rule)));
            let state_path = first.write_snapshot(&weights).unwrap();
            let state = read_state(&state_path).unwrap();
            let mut captured = first.state();
            captured.weights = Some(format!("{}_iter_2.safetensors", type_name(rule)));
            assert_eq!(state, captured, "{rule:?}: the file holds what was captured");
            assert_eq!((state.iter, state.current_step, state.train_passes), (2, 1, 2), "{rule:?}");
            assert_eq!(
                state.streams.get("augment"),
                Some(&StreamPosition { seed: 1, position: 2 }),
                "{rule:?}"
            );
            assert_eq!(state.params.len(), 4, "{rule:?}: conv and score, weight and bias");
            let second = matches!(rule, SolverType::AdaDelta | SolverType::Adam);
            for p in &state.params {
                assert_eq!(p.history2.is_some(), second, "{rule:?} {}.{}", p.layer, p.index);
                assert!(
                    p.history.iter().any(|&v| v != 0.0),
                    "{rule:?} {}.{}: the history moved",
                    p.layer,
                    p.index
                );
            }

            // Another seed for the fillers: the weights come from the snapshot.
            let mut resumed = trainer(rule, &text, 2);
            let file = crate::weights::read_weights(&weights).unwrap();
            assert!(resumed.net.load_weights(&file).unwrap().loads());
            resumed.restore(&state, &state_path).unwrap();
            let resumed_losses = run(&mut resumed, 3);
            assert_eq!(
                resumed_losses,
                straight_losses[2..],
                "{rule:?}: the same losses, smoothed over the same window"
            );
            assert_eq!(params(&resumed), params(&straight), "{rule:?}: bit-identical weights");
            assert_eq!(resumed.state(), straight.state(), "{rule:?}: the same history and streams");
        }
    }

    #[test]
    fn without_the_state_a_resume_differs() {
        // The counter-test: weights alone do not continue the run.
        let _generator = global_generator();
        let dir = tempfile::tempdir().unwrap();
        let text = net_text(2, false);
        let mut straight = trainer(SolverType::Adam, &text, 1);
        run(&mut straight, 4);
        let mut first = trainer(SolverType::Adam, &text, 1);
        run(&mut first, 2);
        let weights = dir.path().join("w.safetensors");
        first.write_snapshot(&weights).unwrap();
        let mut weights_only = trainer(SolverType::Adam, &text, 1);
        assert!(weights_only
            .net
            .load_weights(&crate::weights::read_weights(&weights).unwrap())
            .unwrap()
            .loads());
        weights_only.iter = 2;
        run(&mut weights_only, 2);
        assert_ne!(params(&weights_only), params(&straight));
    }

    fn mismatch(state: &SolverState, mut t: Trainer) -> String {
        let before = t.state();
        let err = t.restore(state, Path::new("run/x_iter_2.solverstate.safetensors")).unwrap_err();
        assert!(matches!(err, StateError::Mismatch { .. }), "{err:?}");
        assert_eq!(t.state(), before, "a failed restore changes nothing");
        err.to_string()
    }

    #[test]
    fn a_state_that_does_not_fit_names_the_file_and_the_param() {
        let _generator = global_generator();
        let text = net_text(2, false);
        let mut t = trainer(SolverType::Sgd, &text, 1);
        run(&mut t, 1);
        let state = t.state();

        let other_rule = mismatch(&state, trainer(SolverType::Adam, &text, 1));
        assert!(other_rule.contains("run/x_iter_2.solverstate.safetensors"), "{other_rule}");
        assert!(
            other_rule.contains("written by solver type SGD; this solver's type is Adam"),
            "{other_rule}"
        );

        let other_shape = mismatch(&state, trainer(SolverType::Sgd, &net_text(3, false), 1));
        assert!(other_shape.contains("`score` param 0: the state's history has shape [2, 4, 1, 1], the net's param [3, 4, 1, 1]"), "{other_shape}");

        let more_params = mismatch(&state, trainer(SolverType::Sgd, &net_text(2, true), 1));
        assert!(more_params.contains("the net learns `extra` param 0 (shape [2, 2, 1, 1]) but the state has no history for it"), "{more_params}");

        let mut extra = state.clone();
        extra.params.push(ParamHistory {
            layer: "gone".into(),
            index: 1,
            shape: vec![2],
            history: vec![0.0; 2],
            history2: None,
        });
        let extra_param = mismatch(&extra, trainer(SolverType::Sgd, &text, 1));
        assert!(
            extra_param
                .contains("history for `gone` param 1 (shape [2]), which the net does not learn"),
            "{extra_param}"
        );

        let mut short = state.clone();
        short.params[0].history.pop();
        let err = trainer(SolverType::Sgd, &text, 1).restore(&short, Path::new("s")).unwrap_err();
        assert!(
            matches!(&err, StateError::Format { what, .. } if what.contains("does not hold")),
            "{err:?}"
        );

        let mut no_stream = state.clone();
        no_stream.streams.clear();
        let stream = mismatch(&no_stream, trainer(SolverType::Sgd, &text, 1));
        assert!(stream.contains("layer `augment` draws random numbers"), "{stream}");
    }

    #[test]
    fn damaged_foreign_and_newer_files_are_errors_not_panics() {
        let _generator = global_generator();
        let dir = tempfile::tempdir().unwrap();
        let mut t = trainer(SolverType::Adam, &net_text(2, false), 1);
        run(&mut t, 1);
        let weights = dir.path().join("x_iter_1.safetensors");
        let state_path = t.write_snapshot(&weights).unwrap();
        assert_eq!(state_path, dir.path().join("x_iter_1.solverstate.safetensors"));

        let as_weights = crate::weights::read_weights(&state_path).unwrap_err().to_string();
        assert!(as_weights.contains("is a solver state"), "{as_weights}");
        let as_state = read_state(&weights).unwrap_err();
        assert!(
            matches!(&as_state, StateError::Format { what, .. } if what.contains("weights file")),
            "{as_state:?}"
        );

        let bytes = std::fs::read(&state_path).unwrap();
        let truncated = dir.path().join("truncated.solverstate.safetensors");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
        assert!(matches!(read_state(&truncated), Err(StateError::Format { .. })));
        assert!(matches!(read_state(&dir.path().join("missing")), Err(StateError::Io { .. })));

        let newer = dir.path().join("newer.solverstate.safetensors");
        let metadata = HashMap::from([("format".to_string(), format!("{STATE_FORMAT}/2"))]);
        let no_tensors: Vec<(String, BlobView)> = Vec::new();
        safetensors::tensor::serialize_to_file(no_tensors, &Some(metadata), &newer).unwrap();
        let err = read_state(&newer).unwrap_err();
        assert!(matches!(&err, StateError::Version { found, .. } if found == "2"), "{err:?}");

        let mut state = t.state();
        state.params[0].history.pop();
        let err = write_state(&dir.path().join("bad.solverstate.safetensors"), &state).unwrap_err();
        assert!(err.to_string().contains("values for shape"), "{err}");
    }
}
