//! A [`Trainer`]'s state captured for a snapshot and restored from one
//! (the file format is `super::state`'s).

use std::collections::BTreeMap;
use std::path::Path;

use super::state::{type_name, ParamHistory, SolverState, StateError};
use super::train::Trainer;
use crate::ops::{host_f32, StreamPosition};
use tch::Tensor;

impl Trainer {
    /// The state to continue from the current iteration.
    pub fn state(&self) -> SolverState {
        let params = self
            .optimizer
            .slots()
            .iter()
            .map(|slot| ParamHistory {
                layer: self
                    .net
                    .plan
                    .steps
                    .get(slot.step)
                    .map(|s| s.layer.clone())
                    .unwrap_or_default(),
                index: slot.index,
                shape: slot.history.size(),
                history: host_f32(&slot.history),
                history2: slot.history2.as_ref().map(host_f32),
            })
            .collect();
        SolverState {
            solver_type: self.optimizer.settings.rule,
            iter: self.iter,
            current_step: self.schedule.current_step,
            seed: self.seed,
            train_passes: self.train_passes,
            streams: self.streams(),
            smoothed_loss: self.smoothed.clone(),
            params,
            weights: None,
        }
    }

    /// Per train-net layer with its own random stream, where the stream is.
    pub(super) fn streams(&self) -> BTreeMap<String, StreamPosition> {
        self.net
            .plan
            .steps
            .iter()
            .filter_map(|s| Some((s.layer.clone(), s.op.stream_position()?)))
            .collect()
    }

    /// Continues from `state` (read from `path`, named in errors): the
    /// iteration, the lr-policy position, every history blob and random
    /// stream. The weights are not part of the state; load them first.
    /// Nothing changes when the state does not fit this solver and net.
    pub fn restore(&mut self, state: &SolverState, path: &Path) -> Result<(), StateError> {
        let mismatch = |what: String| StateError::Mismatch { path: path.to_path_buf(), what };
        let rule = self.optimizer.settings.rule;
        if state.solver_type != rule {
            return Err(mismatch(format!(
                "it was written by solver type {}; this solver's type is {}",
                type_name(state.solver_type),
                type_name(rule)
            )));
        }
        let mut matched = Vec::with_capacity(state.params.len());
        for slot in self.optimizer.slots() {
            let layer = self.net.plan.steps.get(slot.step).map_or("", |s| s.layer.as_str());
            let shape = slot.history.size();
            let Some(saved) =
                state.params.iter().find(|p| p.layer == layer && p.index == slot.index)
            else {
                return Err(mismatch(format!("the net learns `{layer}` param {} (shape {shape:?}) but the state has no history for it", slot.index)));
            };
            if saved.shape != shape {
                return Err(mismatch(format!("`{layer}` param {}: the state's history has shape {:?}, the net's param {shape:?}", slot.index, saved.shape)));
            }
            let numel = shape.iter().product::<i64>();
            let lengths_fit = std::iter::once(&saved.history)
                .chain(&saved.history2)
                .all(|h| h.len() as i64 == numel);
            if !lengths_fit {
                return Err(StateError::Format {
                    path: path.to_path_buf(),
                    what: format!("`{layer}` param {}: the history does not hold {numel} values for shape {shape:?}", slot.index),
                });
            }
            if saved.history2.is_some() != slot.history2.is_some() {
                return Err(StateError::Format {
                    path: path.to_path_buf(),
                    what: format!(
                        "`{layer}` param {}: a {} solver keeps {} histories per param",
                        slot.index,
                        type_name(rule),
                        if slot.history2.is_some() { 2 } else { 1 }
                    ),
                });
            }
            matched.push(saved);
        }
        if let Some(extra) =
            state.params.iter().find(|p| !matched.iter().any(|m| std::ptr::eq(*m, *p)))
        {
            return Err(mismatch(format!(
                "it holds history for `{}` param {} (shape {:?}), which the net does not learn",
                extra.layer, extra.index, extra.shape
            )));
        }
        let streams = self.streams();
        if let Some(layer) = streams.keys().find(|l| !state.streams.contains_key(*l)) {
            return Err(mismatch(format!("the net's layer `{layer}` draws random numbers, but the state records no position for its stream")));
        }
        if let Some(layer) = state.streams.keys().find(|l| !streams.contains_key(*l)) {
            return Err(mismatch(format!("it records a random stream for layer `{layer}`, which the net lacks (or which draws nothing)")));
        }

        for (slot, saved) in self.optimizer.slots_mut().iter_mut().zip(matched) {
            let device = slot.history.device();
            slot.history = Tensor::from_slice(&saved.history)
                .reshape(saved.shape.as_slice())
                .to_device(device);
            if let (Some(history2), Some(saved2)) =
                (slot.history2.as_mut(), saved.history2.as_ref())
            {
                *history2 =
                    Tensor::from_slice(saved2).reshape(saved.shape.as_slice()).to_device(device);
            }
        }
        for step in &self.net.plan.steps {
            if let Some(&position) = state.streams.get(&step.layer) {
                step.op.seek_stream(position);
            }
        }
        self.iter = state.iter;
        self.schedule.current_step = state.current_step;
        self.seed = state.seed;
        self.train_passes = state.train_passes;
        // The window follows the solver's `average_loss`; a changed one starts over.
        if state.smoothed_loss.window == self.smoothed.window {
            self.smoothed = state.smoothed_loss.clone();
        }
        Ok(())
    }
}
