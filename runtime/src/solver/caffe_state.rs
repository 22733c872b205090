//! Caffe's binary solver state (`<prefix>_iter_N.solverstate`, written with
//! `snapshot_format: BINARYPROTO`, Caffe's default): the `SolverState`
//! message, `iter = 1`, `learned_net = 2` (the weights snapshot, a path as
//! the Caffe process saw it), `history = 3` (one `BlobProto` per entry of the
//! solver's `history_`), `current_step = 4`. Caffe restores the histories by
//! position: `history_` has one blob per param blob the net owns, in layer
//! order, `lr_mult: 0` ones included, and a second such run for AdaDelta and
//! Adam. The file carries no solver type, seed, or random-stream positions:
//! a resumed run uses this solver's type and seed (Caffe's does too).

use std::path::{Path, PathBuf};

use crate::solver::state::{ParamHistory, SolverState, StateError};
use crate::solver::Trainer;
use crate::weights::caffemodel::parse_blob;
use crate::weights::wire::{Reader, WireType};
use crate::weights::WeightBlob;

/// What a Caffe `.solverstate` holds.
#[derive(Debug, Clone, PartialEq)]
pub struct CaffeSolverState {
    pub iter: i64,
    /// Caffe's `learned_net`: the weights snapshot written with the state.
    pub learned_net: String,
    pub history: Vec<WeightBlob>,
    pub current_step: usize,
}

/// Whether `path` names a Caffe solver state (by Caffe's file names: lvc's
/// own end in `.solverstate.safetensors`).
pub fn is_caffe_state(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    name.ends_with(".solverstate") || name.ends_with(".solverstate.h5")
}

pub fn read_caffe_state(path: &Path) -> Result<CaffeSolverState, StateError> {
    let bytes = lvc_fsio::read_regular(path, u64::MAX)
        .map_err(|source| StateError::Io { path: path.to_path_buf(), source })?;
    parse(&bytes).map_err(|what| StateError::Format { path: path.to_path_buf(), what })
}

fn parse(bytes: &[u8]) -> Result<CaffeSolverState, String> {
    if bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        return Err(
            "it is an HDF5 solver state (`snapshot_format: HDF5`), which lvc does not read; \
                    let Caffe write `snapshot_format: BINARYPROTO` (its default)"
                .to_string(),
        );
    }
    let wire = |e: crate::weights::wire::WireError| format!("not a Caffe SolverState message: {e}");
    let mut r = Reader::new(bytes);
    let mut state = CaffeSolverState {
        iter: 0,
        learned_net: String::new(),
        history: Vec::new(),
        current_step: 0,
    };
    while let Some((field, wt)) = r.key().map_err(wire)? {
        match (field, wt) {
            // int32 on the wire: a negative value arrives sign-extended.
            (1, WireType::Varint) => state.iter = i64::from(r.varint().map_err(wire)? as i32),
            (2, WireType::Len) => state.learned_net = r.string().map_err(wire)?,
            (3, WireType::Len) => {
                let at = state.history.len();
                let blob = parse_blob(r.sub_message().map_err(wire)?).map_err(wire)?;
                state.history.push(blob.finish().map_err(|e| format!("history blob {at}: {e}"))?);
            }
            (4, WireType::Varint) => {
                let step = r.varint().map_err(wire)? as i32;
                state.current_step =
                    usize::try_from(step).map_err(|_| format!("current_step is {step}"))?;
            }
            _ => r.skip(field, wt).map_err(wire)?,
        }
    }
    if state.iter < 0 {
        return Err(format!("iter is {}", state.iter));
    }
    Ok(state)
}

/// The weights snapshot a Caffe state names: `learned_net` as Caffe would
/// open it (absolute, or relative to the working folder), else its file name
/// in the state's folder (a run folder moved as a whole).
pub fn caffe_learned_net(path: &Path, state: &CaffeSolverState) -> Result<PathBuf, StateError> {
    let bad = |what: String| StateError::Format { path: path.to_path_buf(), what };
    if state.learned_net.is_empty() {
        return Err(bad("it names no weights snapshot (`learned_net`); resume needs the weights written with it".to_string()));
    }
    let as_written = PathBuf::from(&state.learned_net);
    let beside =
        as_written.file_name().map(|name| path.parent().unwrap_or(Path::new("")).join(name));
    std::iter::once(as_written.clone()).chain(beside.clone()).find(|p| p.is_file()).ok_or_else(
        || {
            let beside = beside.map_or_else(String::new, |b| format!(" or {}", b.display()));
            bad(format!(
                "its weights snapshot `{}` is not at {}{beside}",
                state.learned_net,
                as_written.display()
            ))
        },
    )
}

impl Trainer {
    /// Continues from a Caffe solver state: its iteration, `multistep`
    /// position and histories, matched to this net's param blobs by position
    /// as Caffe does, then checked as [`Trainer::restore`] checks lvc's own.
    /// The seed, the random streams and the smoothed loss stay as they are
    /// (Caffe records none of them). Nothing changes when it does not fit.
    pub fn restore_caffe(
        &mut self,
        state: &CaffeSolverState,
        path: &Path,
    ) -> Result<(), StateError> {
        let mismatch = |what: String| StateError::Mismatch { path: path.to_path_buf(), what };
        let blobs: Vec<(String, usize, Vec<i64>)> = self
            .net
            .plan
            .steps
            .iter()
            .flat_map(|step| {
                step.params
                    .iter()
                    .enumerate()
                    .map(|(index, p)| (step.layer.clone(), index, p.shape.clone()))
            })
            .collect();
        let owned = blobs.len();
        let runs = match state.history.len() {
            n if n == owned => 1,
            n if n == 2 * owned && owned > 0 => 2,
            n => {
                return Err(mismatch(format!(
                    "it holds {n} history blobs; this net has {owned} param blobs (Caffe keeps one history blob per param blob, two for AdaDelta and Adam)"
                )))
            }
        };
        let mut params = Vec::with_capacity(owned);
        for (position, (layer, index, shape)) in blobs.into_iter().enumerate() {
            let runs_of_this: Vec<&WeightBlob> =
                (0..runs).map(|run| &state.history[run * owned + position]).collect();
            for blob in &runs_of_this {
                let count: i64 = shape.iter().product();
                if blob.data.len() as i64 != count {
                    return Err(mismatch(format!(
                        "history blob {position} (`{layer}` param {index}) holds {} values with shape {:?}; the net's param has shape {shape:?}",
                        blob.data.len(),
                        blob.shape
                    )));
                }
            }
            params.push(ParamHistory {
                layer,
                index,
                shape,
                history: runs_of_this[0].data.clone(),
                history2: runs_of_this.get(1).map(|b| b.data.clone()),
            });
        }
        // Only the blobs the solver updates have a slot; Caffe's histories of
        // lr_mult-0 blobs stay zero there and are dropped here.
        let slots: Vec<(String, usize)> = self
            .optimizer
            .slots()
            .iter()
            .map(|slot| {
                (
                    self.net
                        .plan
                        .steps
                        .get(slot.step)
                        .map_or_else(String::new, |s| s.layer.clone()),
                    slot.index,
                )
            })
            .collect();
        params
            .retain(|p| slots.iter().any(|(layer, index)| *layer == p.layer && *index == p.index));
        let as_lvc = SolverState {
            solver_type: self.optimizer.settings.rule,
            iter: state.iter,
            current_step: state.current_step,
            seed: self.seed,
            train_passes: self.train_passes,
            streams: self.streams(),
            smoothed_loss: self.smoothed.clone(),
            params,
            weights: Some(state.learned_net.clone()),
        };
        self.restore(&as_lvc, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::global_generator;
    use crate::solver::state::tests::{params, run, trainer};
    use crate::weights::caffemodel::{blob_header, write_f32_le};
    use crate::weights::wire::Writer;
    use lvc_compiler::schema::solver::SolverType;

    /// No random layer (Caffe's state records no stream), and a bias with
    /// `lr_mult: 0`, which Caffe's `history_` still has a blob for.
    const NET: &str = r#"
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 1 dim: 4 dim: 4 } } }
        layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 2 dim: 1 dim: 4 dim: 4 } } }
        layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" param { lr_mult: 1 } param { lr_mult: 0 }
          convolution_param { num_output: 4 kernel_size: 1 weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "constant" value: 0.1 } } }
        layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
        layer { name: "score" type: "Convolution" bottom: "conv" top: "score"
          convolution_param { num_output: 2 kernel_size: 1 weight_filler { type: "gaussian" std: 0.5 } } }
        layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
    "#;

    /// A `SolverState` message as Caffe's `SGDSolver::SnapshotSolverStateToBinaryProto`
    /// writes it: `history_` in param order (lr_mult-0 blobs included, zero),
    /// a second run for AdaDelta and Adam; one blob with the legacy 4-D fields.
    fn caffe_bytes(t: &Trainer, learned_net: &str) -> Vec<u8> {
        let state = t.state();
        let mut runs: Vec<Vec<WeightBlob>> = vec![Vec::new(), Vec::new()];
        for step in &t.net.plan.steps {
            for (index, info) in step.params.iter().enumerate() {
                let saved = state.params.iter().find(|p| p.layer == step.layer && p.index == index);
                let count = info.shape.iter().product::<i64>() as usize;
                let legacy_4d = step.layer == "score" && index == 0;
                let blob = |values: Option<&Vec<f32>>| WeightBlob {
                    shape: info.shape.clone(),
                    legacy_4d,
                    data: values.cloned().unwrap_or_else(|| vec![0.0; count]),
                };
                runs[0].push(blob(saved.map(|p| &p.history)));
                runs[1].push(blob(saved.and_then(|p| p.history2.as_ref())));
            }
        }
        let two_runs = state.params.iter().any(|p| p.history2.is_some());
        let mut w = Writer::new();
        w.int_field(1, state.iter);
        w.bytes_field(2, learned_net.as_bytes());
        for blob in runs[0].iter().chain(if two_runs { &runs[1][..] } else { &[][..] }) {
            let (header, total) = blob_header(blob);
            w.len_prefix(3, total);
            w.buf.extend_from_slice(&header.buf);
            write_f32_le(&mut w.buf, &blob.data).unwrap();
        }
        w.int_field(4, state.current_step as i64);
        w.buf
    }

    #[test]
    fn a_caffe_state_resumes_as_caffe_does() {
        let _generator = global_generator();
        let dir = tempfile::tempdir().unwrap();
        for rule in [SolverType::Sgd, SolverType::Adam] {
            let mut straight = trainer(rule, NET, 1);
            run(&mut straight, 5);
            let mut first = trainer(rule, NET, 1);
            run(&mut first, 2);
            let weights = dir.path().join("snap_iter_2.caffemodel");
            crate::weights::caffemodel::write_caffemodel(
                &weights,
                &crate::solver::net_weights(&first.net).0,
            )
            .unwrap();
            let path = dir.path().join("snap_iter_2.solverstate");
            // Caffe writes learned_net as its process saw it: here a folder
            // that does not exist, so the file is found beside the state.
            std::fs::write(&path, caffe_bytes(&first, "elsewhere/snap_iter_2.caffemodel")).unwrap();
            assert!(is_caffe_state(&path));

            let state = read_caffe_state(&path).unwrap();
            assert_eq!((state.iter, state.current_step), (2, 1));
            let runs = if rule == SolverType::Adam { 2 } else { 1 };
            assert_eq!(
                state.history.len(),
                4 * runs,
                "conv weight, conv bias (lr_mult 0), score weight, score bias"
            );
            assert_eq!(caffe_learned_net(&path, &state).unwrap(), weights);

            let mut resumed = trainer(rule, NET, 2);
            assert!(resumed
                .net
                .load_weights(&crate::weights::read_weights(&weights).unwrap())
                .unwrap()
                .loads());
            resumed.restore_caffe(&state, &path).unwrap();
            assert_eq!(resumed.iter, 2);
            run(&mut resumed, 3);
            assert_eq!(
                params(&resumed),
                params(&straight),
                "{rule:?}: bit-identical weights after the resume"
            );
        }
    }

    #[test]
    fn a_caffe_state_that_does_not_fit_is_an_error_naming_the_file() {
        let _generator = global_generator();
        let dir = tempfile::tempdir().unwrap();
        let mut adam = trainer(SolverType::Adam, NET, 1);
        run(&mut adam, 1);
        let path = dir.path().join("a_iter_1.solverstate");
        std::fs::write(&path, caffe_bytes(&adam, "a_iter_1.caffemodel")).unwrap();
        let state = read_caffe_state(&path).unwrap();
        // Two histories per blob into an SGD solver, and into a bigger net.
        let mut sgd = trainer(SolverType::Sgd, NET, 1);
        let err = sgd.restore_caffe(&state, &path).unwrap_err().to_string();
        assert!(
            err.contains("a_iter_1.solverstate") && err.contains("1 histories per param"),
            "{err}"
        );
        assert_eq!(sgd.iter, 0, "nothing changed");
        let bigger = NET.replace("num_output: 4", "num_output: 5");
        let err = trainer(SolverType::Adam, &bigger, 1)
            .restore_caffe(&state, &path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`conv` param 0") && err.contains("[5, 1, 1, 1]"), "{err}");
        // The weights snapshot is missing.
        let err = caffe_learned_net(&path, &state).unwrap_err().to_string();
        assert!(err.contains("a_iter_1.caffemodel"), "{err}");
        let h5 = dir.path().join("a_iter_1.solverstate.h5");
        std::fs::write(&h5, b"\x89HDF\r\n\x1a\n\0\0\0\0").unwrap();
        assert!(is_caffe_state(&h5));
        let err = read_caffe_state(&h5).unwrap_err().to_string();
        assert!(err.contains("HDF5") && err.contains("BINARYPROTO"), "{err}");
        // Damaged bytes: errors, never panics.
        let bytes = std::fs::read(&path).unwrap();
        for cut in [1, bytes.len() / 3, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let err = read_caffe_state(&path).unwrap_err().to_string();
            assert!(err.contains("a_iter_1.solverstate"), "{err}");
        }
    }
}
