//! The executor: a lowered net as a list of steps over blob slots, with its
//! parameter tensors. Blobs live in a `Vec` indexed by blob id; in-place
//! layers write the slot they read. Forward keeps everything on the device
//! (no `.item()`, no host copies); backward is libtorch autograd from the
//! weighted sum of the loss tops.

use lvc_compiler::ir::NetGraph;
use lvc_compiler::memory::{Mode, NetMemory};
use lvc_compiler::ops::{BlobShape, Cost, FillerDef, ParamRole};
use lvc_compiler::schema::{NetDef, Phase};
use lvc_compiler::Diagnostic;
use rand::SeedableRng;
use tch::{Device, Kind, Tensor};

use crate::error::RuntimeError;
use crate::fill::{fill, FillRng};
use crate::ops::{accumulate, lower, LowerCtx, Lowered, OwnBackward};
use crate::weights::{match_weights, TargetLayer, WeightsFile, WeightsReport};

/// One learnable (or stored-statistics) blob of a step.
#[derive(Debug, Clone)]
pub struct ParamInfo {
    pub role: ParamRole,
    pub shape: Vec<i64>,
    pub filler: Option<FillerDef>,
    pub lr_mult: f64,
    pub decay_mult: f64,
}

impl ParamInfo {
    /// BatchNorm's statistics are blobs but never learnt.
    pub fn is_statistic(&self) -> bool {
        self.role.is_statistic()
    }
}

/// One layer in execution order.
#[derive(Debug)]
pub struct Step {
    pub layer: String,
    pub kind: String,
    pub op: Box<dyn Lowered>,
    pub bottoms: Vec<usize>,
    pub tops: Vec<usize>,
    /// One per top; 0 where the top is not a loss.
    pub loss_weights: Vec<f64>,
    /// The layer's resolved phase is TRAIN.
    pub train: bool,
    pub params: Vec<ParamInfo>,
    /// The work of one forward pass (the compiler's `Op::cost`; zero for an
    /// inserted split).
    pub cost: Cost,
}

/// A net ready to instantiate: blob names/shapes (by blob id), the input
/// blobs (Input tops) and the steps.
#[derive(Debug)]
pub struct Plan {
    pub blob_names: Vec<String>,
    pub blob_shapes: Vec<Vec<i64>>,
    pub inputs: Vec<usize>,
    pub steps: Vec<Step>,
    /// Caffe's `force_backward`: inputs and every param get gradients.
    pub force_backward: bool,
    /// The sizes the memory estimate of each use follows from (all 0 for a
    /// plan not built from a graph): [`Net::with_mode`] refuses a plan that
    /// does not fit before allocating anything.
    pub memory: NetMemory,
}

impl Plan {
    /// Lowers a checked graph. Every layer the runtime cannot run is
    /// reported (`lvc::runtime::unsupported`, on the layer's type), not just
    /// the first.
    pub fn from_graph(graph: &NetGraph, net: &NetDef) -> Result<Plan, Vec<Diagnostic>> {
        let blobs = graph.blobs();
        let mut plan = Plan {
            blob_names: blobs.iter().map(|b| b.name.clone()).collect(),
            blob_shapes: blobs
                .iter()
                .map(|b| b.shape.as_ref().map_or_else(Vec::new, |s| s.0.clone()))
                .collect(),
            inputs: Vec::new(),
            steps: Vec::new(),
            force_backward: net.force_backward,
            memory: NetMemory::of(net, graph),
        };
        let mut errors = Vec::new();
        for (_, node) in graph.nodes() {
            let def = node.def_index.and_then(|i| net.layers.get(i));
            let unsupported = |what: String| {
                let label_span = def.map_or(node.span, |d| d.kind.span);
                Diagnostic::error("lvc::runtime::unsupported", format!("the runtime cannot run this layer: {what}"))
                    .in_layer(node.name.clone())
                    .with_label(label_span, format!("{} is not supported by `lvc forward`/`lvc train`", node.kind))
                    .with_help("replace the layer with a supported one (see docs), or run only the part of the net before it")
            };
            // Data sources (Input, Data, Python data layers, …) are fed from
            // outside: their tops are `Net::forward`'s inputs.
            if crate::ops::is_fed(node) {
                plan.inputs.extend(node.tops.iter().copied());
                continue;
            }
            let bottoms: Option<Vec<usize>> = node.bottoms.iter().copied().collect();
            let bottom_shapes: Option<Vec<_>> = bottoms
                .iter()
                .flatten()
                .map(|&b| blobs.get(b).and_then(|b| b.shape.clone()))
                .collect();
            let (Some(bottoms), Some(bottom_shapes)) = (bottoms, bottom_shapes) else {
                errors.push(unsupported(
                    "its bottom shapes are unknown (fix the errors reported before)".to_string(),
                ));
                continue;
            };
            let train = node.phase == Phase::Train;
            let ctx = LowerCtx { node, bottoms: &bottom_shapes, train };
            let op = match lower(&ctx) {
                Ok(op) => op,
                Err(what) => {
                    errors.push(unsupported(what));
                    continue;
                }
            };
            let specs = def.map_or(&[][..], |d| d.params.as_slice());
            let top_shapes: Vec<BlobShape> = node
                .tops
                .iter()
                .filter_map(|&t| blobs.get(t).and_then(|b| b.shape.clone()))
                .collect();
            let cost = node.op.as_ref().map_or_else(Cost::default, |op| {
                op.cost(&bottom_shapes, &top_shapes, &node.params)
            });
            plan.steps.push(Step {
                cost,
                layer: node.name.clone(),
                kind: node.kind.clone(),
                op,
                bottoms,
                tops: node.tops.clone(),
                loss_weights: node.loss_weights.clone(),
                train,
                params: node
                    .params
                    .iter()
                    .enumerate()
                    .map(|(i, p)| ParamInfo {
                        role: p.role,
                        shape: p.shape.0.clone(),
                        filler: p.filler.clone(),
                        lr_mult: specs.get(i).map_or(1.0, |s| s.lr_mult),
                        decay_mult: specs.get(i).map_or(1.0, |s| s.decay_mult),
                    })
                    .collect(),
            });
        }
        if errors.is_empty() {
            Ok(plan)
        } else {
            Err(errors)
        }
    }

    /// The blob id that holds each blob name after a whole forward pass
    /// (the last version: in-place layers write new versions).
    pub fn final_blobs(&self) -> Vec<(String, usize)> {
        let mut last: Vec<(String, usize)> = Vec::new();
        for id in self.written_blobs() {
            let name = &self.blob_names[id];
            match last.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = id,
                None => last.push((name.clone(), id)),
            }
        }
        last
    }

    /// The blobs that depend on step `index`'s tops (the tops included).
    pub fn downstream_of(&self, index: usize) -> Vec<usize> {
        let mut reached: Vec<usize> =
            self.steps.get(index).map_or_else(Vec::new, |s| s.tops.clone());
        for step in self.steps.iter().skip(index + 1) {
            if step.bottoms.iter().any(|b| reached.contains(b)) {
                reached.extend(step.tops.iter().copied());
            }
        }
        reached
    }

    pub fn blob_id(&self, name: &str) -> Option<usize> {
        self.blob_names.iter().position(|n| n == name)
    }
    /// Every blob that some step writes (or that is an input), each once, in
    /// the order first written.
    pub fn written_blobs(&self) -> Vec<usize> {
        let mut seen = vec![false; self.blob_names.len()];
        let mut order = Vec::new();
        for &id in self.inputs.iter().chain(self.steps.iter().flat_map(|s| s.tops.iter())) {
            if !std::mem::replace(&mut seen[id], true) {
                order.push(id);
            }
        }
        order
    }
}

/// The blobs after a forward pass, and the net's total loss.
pub struct Blobs {
    pub values: Vec<Option<Tensor>>,
    /// Σ loss_weight · Σ top over every loss top (`None` without loss tops).
    pub loss: Option<Tensor>,
    /// The steps that ran their own forward and await their own backward
    /// (in step order); their tops are autograd leaves.
    own: Vec<OwnStep>,
}

/// Which blob versions a forward pass keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Versions {
    All,
    Final,
}

/// A step run through [`OwnBackward`]: its step index, the bottoms as
/// autograd saw them (to feed the bottom gradients back in) and its tops.
struct OwnStep {
    step: usize,
    bottoms: Vec<Tensor>,
    /// The tops, autograd leaves whose gradients start the step's backward.
    tops: Vec<Tensor>,
}

impl Blobs {
    pub fn get(&self, id: usize) -> Option<&Tensor> {
        self.values.get(id).and_then(Option::as_ref)
    }
}

/// d loss / d blob and d loss / d param after [`Net::backward`]; `None`
/// where no gradient reaches (Caffe's diff would stay 0).
pub struct Gradients {
    pub blobs: Vec<Option<Tensor>>,
    /// Per step, per param blob.
    pub params: Vec<Vec<Option<Tensor>>>,
}

pub struct Net {
    pub plan: Plan,
    /// Per step, in Caffe's blob order.
    pub params: Vec<Vec<Tensor>>,
    pub device: Device,
    spent: SpentGradients,
}

/// Per step and param, gradients of own-backward steps handed back after
/// use ([`Net::recycle`]); the next backward writes into their storage
/// instead of allocating. fc6's weight gradient is 151 MB: a fresh one
/// costs ~16 ms of page faults (the kernel zeroing it) per pass.
#[derive(Default)]
struct SpentGradients(std::sync::Mutex<Vec<Vec<Option<Tensor>>>>);

impl SpentGradients {
    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Option<Tensor>>>> {
        // A panic while the lock was held leaves at worst a missing entry.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Net {
    /// Instantiates a plan on `device` with every parameter from its filler,
    /// drawn in layer order from one stream seeded with `seed`, for
    /// inference ([`Net::with_mode`]).
    pub fn new(plan: Plan, device: Device, seed: u64) -> Result<Net, RuntimeError> {
        Net::with_mode(plan, device, seed, Mode::Inference)
    }

    /// [`Net::new`] for a use: first the plan's memory estimate for `mode`
    /// (training keeps gradients and the solver's history) is checked
    /// against what `device` has free, and a net that cannot fit is refused
    /// (`lvc::runtime::memory`) before anything is allocated.
    pub fn with_mode(
        plan: Plan,
        device: Device,
        seed: u64,
        mode: Mode,
    ) -> Result<Net, RuntimeError> {
        crate::memory::ensure_fits(&plan.memory.estimate(mode), device)?;
        let mut rng = FillRng::seed_from_u64(seed);
        let mut params = Vec::with_capacity(plan.steps.len());
        for step in &plan.steps {
            step.op.reseed(seed);
            let mut blobs = Vec::with_capacity(step.params.len());
            for info in &step.params {
                // Fallible all the way: an allocation libtorch refuses is an
                // error naming the blob, not a panic.
                let context = || {
                    format!("allocating {} of layer '{}' ({:?})", info.role, step.layer, info.shape)
                };
                let value = match &info.filler {
                    Some(filler) => fill(filler, &info.shape, &mut rng)?,
                    None => Tensor::f_zeros(info.shape.as_slice(), (Kind::Float, Device::Cpu))
                        .map_err(RuntimeError::torch(context()))?,
                };
                let learnt = !info.is_statistic() && (plan.force_backward || info.lr_mult != 0.0);
                let value = value.f_to_device(device).map_err(RuntimeError::torch(context()))?;
                blobs.push(value.set_requires_grad(learnt));
            }
            params.push(blobs);
        }
        Ok(Net::from_parts(plan, params, device))
    }

    /// A net of given parameter values (per step, in Caffe's blob order).
    pub(crate) fn from_parts(plan: Plan, params: Vec<Vec<Tensor>>, device: Device) -> Net {
        Net { plan, params, device, spent: SpentGradients::default() }
    }

    /// The layers the weights matcher compares against.
    pub fn targets(&self) -> Vec<TargetLayer> {
        self.plan
            .steps
            .iter()
            .map(|s| TargetLayer {
                name: s.layer.clone(),
                kind: s.kind.clone(),
                span: None,
                params: s
                    .params
                    .iter()
                    .map(|p| lvc_compiler::ops::ParamShape {
                        role: p.role,
                        shape: lvc_compiler::ops::BlobShape(p.shape.clone()),
                        filler: p.filler.clone(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// Caffe's `CopyTrainedLayersFrom`: layers match by name; when the report
    /// has no fatal mismatch, every matched layer's blobs are copied in.
    /// Layers absent from the file keep their filler values.
    pub fn load_weights(&mut self, file: &WeightsFile) -> Result<WeightsReport, RuntimeError> {
        let report = match_weights(&self.targets(), file);
        if !report.loads() {
            return Ok(report);
        }
        for layer_report in &report.layers {
            let Some(source) = layer_report.source.and_then(|i| file.layers.get(i)) else {
                continue;
            };
            let Some(step) = self.plan.steps.iter().position(|s| s.layer == layer_report.layer)
            else {
                continue;
            };
            for (index, (param, blob)) in
                self.params[step].iter_mut().zip(&source.blobs).enumerate()
            {
                if blob.data.len() as i64 != param.numel() as i64 {
                    return Err(RuntimeError::Param {
                        layer: layer_report.layer.clone(),
                        index,
                        reason: format!(
                            "the file holds {} values for a blob of {}",
                            blob.data.len(),
                            param.numel()
                        ),
                        help: "the weights file is inconsistent; re-export it".to_string(),
                    });
                }
                let value =
                    Tensor::from_slice(&blob.data).reshape(param.size()).to_device(self.device);
                tch::no_grad(|| param.copy_(&value));
            }
        }
        Ok(report)
    }

    /// Runs every step. `inputs` are (input blob name, tensor) pairs; each
    /// must match the plan's shape for that blob. `train` overrides nothing:
    /// each step runs in its own resolved phase. Every blob version stays in
    /// [`Blobs`], also those an in-place layer overwrote (the golden tests
    /// compare each layer's top).
    pub fn forward(&self, inputs: &[(&str, Tensor)]) -> Result<Blobs, RuntimeError> {
        self.run(inputs, Versions::All)
    }

    /// [`Net::forward`] keeping only what a blob name holds after the pass
    /// (as Caffe, whose in-place layers overwrite): an in-place layer's input
    /// is released once the layer has run, so that a convolution's output is
    /// not kept beside its ReLU's for the whole pass (autograd keeps what
    /// backward needs). What training, timing and inference use.
    pub fn forward_lean(&self, inputs: &[(&str, Tensor)]) -> Result<Blobs, RuntimeError> {
        self.run(inputs, Versions::Final)
    }

    fn run(&self, inputs: &[(&str, Tensor)], keep: Versions) -> Result<Blobs, RuntimeError> {
        let mut values: Vec<Option<Tensor>> =
            (0..self.plan.blob_names.len()).map(|_| None).collect();
        for &id in &self.plan.inputs {
            let name = &self.plan.blob_names[id];
            let given =
                inputs.iter().find(|(n, _)| n == name).ok_or_else(|| RuntimeError::Input {
                    name: name.clone(),
                    reason: "no value given for this net input".to_string(),
                    help: format!("pass `--input {name}=FILE.npy`"),
                })?;
            let want = &self.plan.blob_shapes[id];
            if &given.1.size() != want {
                return Err(RuntimeError::Input {
                    name: name.clone(),
                    reason: format!(
                        "shape {:?} does not match the net's {:?}",
                        given.1.size(),
                        want
                    ),
                    help:
                        "reshape the input, or compile the net for this shape with `--input-shape`"
                            .to_string(),
                });
            }
            let tensor = given.1.to_kind(Kind::Float).to_device(self.device);
            values[id] = Some(if self.plan.force_backward {
                tensor.detach().set_requires_grad(true)
            } else {
                tensor
            });
        }
        if let Some(unknown) = inputs
            .iter()
            .find(|(n, _)| !self.plan.inputs.iter().any(|&i| self.plan.blob_names[i] == *n))
        {
            return Err(RuntimeError::Input {
                name: unknown.0.to_string(),
                reason: "the net has no input of this name".to_string(),
                help: format!(
                    "the net's inputs are: {}",
                    self.plan
                        .inputs
                        .iter()
                        .map(|&i| self.plan.blob_names[i].as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let mut loss: Option<Tensor> = None;
        let mut own = Vec::new();
        let recording = autograd_recording();
        for (index, (step, params)) in self.plan.steps.iter().zip(&self.params).enumerate() {
            let bottoms: Vec<Tensor> = step
                .bottoms
                .iter()
                .map(|&b| values[b].as_ref().map(Tensor::shallow_clone))
                .collect::<Option<_>>()
                .ok_or_else(|| RuntimeError::Input {
                    name: step.layer.clone(),
                    reason: "a bottom of this layer has no value".to_string(),
                    help: "the plan reads a blob no earlier layer wrote; this is a bug in lowering"
                        .to_string(),
                })?;
            step.op
                .check_bottoms(&bottoms)
                .map_err(|reason| RuntimeError::Labels { layer: step.layer.clone(), reason })?;
            // A libtorch error (an allocation it refuses) is an error
            // naming the layer, not a panic.
            let tops = crate::guard::catch_torch(
                || format!("the forward pass of layer '{}' ({})", step.layer, step.kind),
                || self.forward_step(step, &bottoms, params, index, recording, &mut own),
            )?;
            if keep == Versions::Final {
                let names = &self.plan.blob_names;
                for &bottom in &step.bottoms {
                    if step.tops.iter().any(|&top| names[top] == names[bottom]) {
                        values[bottom] = None;
                    }
                }
            }
            for ((&id, top), &weight) in step.tops.iter().zip(tops).zip(&step.loss_weights) {
                if weight != 0.0 {
                    accumulate(&mut loss, top.sum(Kind::Float) * weight);
                }
                values[id] = Some(top);
            }
        }
        Ok(Blobs { values, loss, own })
    }

    /// One step's tops; an own-backward step run under autograd is recorded
    /// in `own` for the backward pass.
    fn forward_step(
        &self,
        step: &Step,
        bottoms: &[Tensor],
        params: &[Tensor],
        index: usize,
        recording: bool,
        own: &mut Vec<OwnStep>,
    ) -> Vec<Tensor> {
        match self.own_backward(step) {
            Some(op) => {
                let tops = op.forward_untracked(bottoms, params);
                let tracked = recording && bottoms.iter().chain(params).any(Tensor::requires_grad);
                if tracked {
                    let tops: Vec<Tensor> =
                        tops.into_iter().map(|t| t.set_requires_grad(true)).collect();
                    own.push(OwnStep {
                        step: index,
                        bottoms: bottoms.iter().map(Tensor::shallow_clone).collect(),
                        tops: tops.iter().map(Tensor::shallow_clone).collect(),
                    });
                    tops
                } else {
                    tops
                }
            }
            None => step.op.forward(bottoms, params, step.train),
        }
    }

    /// Gradients of the total loss with respect to every blob and parameter
    /// that takes part in it.
    pub fn backward(&self, blobs: &Blobs) -> Gradients {
        self.gradients(blobs, true)
    }

    /// Only the parameter gradients (what a solver needs): no blob gradient
    /// is requested from autograd, so none is kept alive until the end of
    /// the pass. `Gradients::blobs` is all `None`.
    pub fn param_gradients(&self, blobs: &Blobs) -> Gradients {
        self.gradients(blobs, false)
    }

    /// Autograd and the steps with their own backward, in reverse step
    /// order. Each backward root (the loss; each own step's bottom gradients
    /// as the surrogate `Σ bottom · grad`, whose backward carries exactly
    /// `grad`) waits until an own step needs what it reaches: before own step
    /// k runs, only the waiting roots that depend on k's tops are run (one
    /// autograd pass for all of them), and what is left runs as one pass at
    /// the end. So a shared encoder (FCN-8s: pool3, pool4 and pool5 each feed
    /// an own step) is crossed once, not once per own step. Every pass but
    /// the last keeps the graph, since later passes may cross parts of it.
    fn gradients(&self, blobs: &Blobs, with_blobs: bool) -> Gradients {
        let requested: Vec<usize> = (0..blobs.values.len())
            .filter(|&i| with_blobs && blobs.get(i).is_some_and(Tensor::requires_grad))
            .collect();
        // Requested blobs, then the own steps' tops (autograd leaves, held
        // by the own step: a lean pass may have released the blob slot).
        let mut targets: Vec<(usize, &Tensor)> =
            requested.iter().filter_map(|&i| blobs.get(i).map(|t| (i, t))).collect();
        for own in &blobs.own {
            for (&id, top) in self.plan.steps[own.step].tops.iter().zip(&own.tops) {
                if !targets.iter().any(|&(t, _)| t == id) {
                    targets.push((id, top));
                }
            }
        }
        let blob_ids: Vec<usize> = targets.iter().map(|&(id, _)| id).collect();
        let param_ids: Vec<(usize, usize)> = self
            .params
            .iter()
            .enumerate()
            .flat_map(|(s, ps)| {
                ps.iter().enumerate().filter(|(_, p)| p.requires_grad()).map(move |(i, _)| (s, i))
            })
            .collect();
        let mut grads = Gradients {
            blobs: (0..blobs.values.len()).map(|_| None).collect(),
            params: self.params.iter().map(|ps| ps.iter().map(|_| None).collect()).collect(),
        };
        let Some(loss) = blobs.loss.as_ref().filter(|l| l.requires_grad()) else { return grads };
        let wrt: Vec<&Tensor> = targets
            .iter()
            .map(|&(_, t)| t)
            .chain(param_ids.iter().map(|&(s, i)| &self.params[s][i]))
            .collect();
        if wrt.is_empty() {
            return grads;
        }
        let mut sums: Vec<Option<Tensor>> = wrt.iter().map(|_| None).collect();
        let blob_slot = |id: usize| blob_ids.iter().position(|&b| b == id);
        let param_slot = |s: usize, i: usize| {
            param_ids.iter().position(|&p| p == (s, i)).map(|p| blob_ids.len() + p)
        };
        // Waiting roots, each with the blobs it starts from.
        let loss_tops: Vec<usize> = self
            .plan
            .steps
            .iter()
            .flat_map(|s| {
                s.tops.iter().zip(&s.loss_weights).filter(|(_, &w)| w != 0.0).map(|(&id, _)| id)
            })
            .collect();
        let mut waiting: Vec<(Tensor, Vec<usize>)> = vec![(loss.shallow_clone(), loss_tops)];
        for own in blobs.own.iter().rev() {
            let step = &self.plan.steps[own.step];
            let Some(op) = self.own_backward(step) else { continue };
            let downstream = self.plan.downstream_of(own.step);
            let (due, later): (Vec<_>, Vec<_>) = waiting
                .into_iter()
                .partition(|(_, from)| from.iter().any(|id| downstream.contains(id)));
            waiting = later;
            if let Some(root) = due.into_iter().map(|(root, _)| root).reduce(|a, b| a + b) {
                backward_into(&mut sums, &root, &wrt, true);
            }
            let reached: Vec<Option<Tensor>> = step
                .tops
                .iter()
                .map(|&id| {
                    blob_slot(id).and_then(|slot| sums[slot].as_ref().map(Tensor::shallow_clone))
                })
                .collect();
            if reached.iter().all(Option::is_none) {
                continue;
            }
            // A top no gradient reaches (an unused output) contributes zeros.
            let top_grads: Vec<Tensor> = reached
                .into_iter()
                .zip(&own.tops)
                .map(|(grad, top)| grad.unwrap_or_else(|| top.zeros_like()))
                .collect();
            let spent =
                self.spent.slots().get_mut(own.step).map(std::mem::take).unwrap_or_default();
            let own_grads = op.backward(&own.bottoms, &self.params[own.step], &top_grads, spent);
            for (i, grad) in own_grads.params.into_iter().enumerate() {
                if let (Some(grad), Some(slot)) = (grad, param_slot(own.step, i)) {
                    accumulate(&mut sums[slot], grad);
                }
            }
            let surrogate = own
                .bottoms
                .iter()
                .zip(own_grads.bottoms)
                .filter_map(|(bottom, grad)| grad.map(|g| (bottom * g).sum(Kind::Float)))
                .reduce(|a, b| a + b);
            if let Some(surrogate) = surrogate {
                waiting.push((surrogate, step.bottoms.clone()));
            }
        }
        if let Some(root) = waiting.into_iter().map(|(root, _)| root).reduce(|a, b| a + b) {
            backward_into(&mut sums, &root, &wrt, false);
        }
        // The requested blobs are the first targets.
        for (slot, &id) in blob_ids.iter().enumerate().take(requested.len()) {
            grads.blobs[id] = sums[slot].take();
        }
        for (p, &(s, i)) in param_ids.iter().enumerate() {
            grads.params[s][i] = sums[blob_ids.len() + p].take();
        }
        grads
    }

    /// Hands back a pass's parameter gradients (as [`Net::param_gradients`]
    /// returned them, per step and param) once nothing reads them any more,
    /// e.g. after the solver's update: the next backward of a step with its
    /// own backward writes that param's gradient into the same storage. The
    /// caller must hold no other tensor sharing their storage.
    pub fn recycle(&self, grads: Vec<Vec<Option<Tensor>>>) {
        let mut slots = self.spent.slots();
        slots.resize_with(self.plan.steps.len(), Vec::new);
        for ((slot, step), grads) in slots.iter_mut().zip(&self.plan.steps).zip(grads) {
            if self.own_backward(step).is_some() {
                *slot = grads;
            }
        }
    }

    /// The step's own backward, where its op has one that pays on this
    /// net's device; `None` means autograd through [`Lowered::forward`].
    pub fn own_backward<'a>(&self, step: &'a Step) -> Option<&'a dyn OwnBackward> {
        step.op.own_backward().filter(|op| op.applies(self.device))
    }
}

/// Adds d root / d wrt[i] into `sums[i]` where a gradient reaches.
fn backward_into(sums: &mut [Option<Tensor>], root: &Tensor, wrt: &[&Tensor], keep_graph: bool) {
    let computed = Tensor::run_backward(&[root], wrt, keep_graph, false);
    for (sum, grad) in sums.iter_mut().zip(computed) {
        if grad.defined() {
            accumulate(sum, grad);
        }
    }
}

/// Whether autograd records operations now (false inside `tch::no_grad`):
/// a view of a leaf that requires grad requires grad only while recording.
fn autograd_recording() -> bool {
    Tensor::zeros([1], (Kind::Float, Device::Cpu)).set_requires_grad(true).view([1]).requires_grad()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::activation::Power;
    use crate::ops::combine::Split;
    use crate::ops::conv::Conv;

    fn constant(value: f64) -> Option<FillerDef> {
        Some(FillerDef {
            kind: "constant".into(),
            value,
            min: 0.0,
            max: 1.0,
            mean: 0.0,
            std: 1.0,
            sparse: -1,
            variance_norm: "FAN_IN".into(),
        })
    }

    fn step(
        layer: &str,
        op: Box<dyn Lowered>,
        bottoms: Vec<usize>,
        tops: Vec<usize>,
        loss: f64,
    ) -> Step {
        Step {
            layer: layer.into(),
            kind: "test".into(),
            op,
            loss_weights: vec![loss; tops.len()],
            bottoms,
            tops,
            train: false,
            params: Vec::new(),
            cost: Default::default(),
        }
    }

    /// data → conv (1x1, w = 2, b = 0.5) → split → {square ×0.5 loss, relu in place}
    fn plan() -> Plan {
        let mut conv = step(
            "conv",
            Box::new(Conv {
                stride: vec![1, 1],
                pad: vec![0, 0],
                dilation: vec![1, 1],
                group: 1,
                transposed: false,
                bias_term: true,
            }),
            vec![0],
            vec![1],
            0.0,
        );
        conv.params = vec![
            ParamInfo {
                role: ParamRole::Weight,
                shape: vec![1, 1, 1, 1],
                filler: constant(2.0),
                lr_mult: 1.0,
                decay_mult: 1.0,
            },
            ParamInfo {
                role: ParamRole::Bias,
                shape: vec![1],
                filler: constant(0.5),
                lr_mult: 0.0,
                decay_mult: 0.0,
            },
        ];
        Plan {
            blob_names: ["data", "conv", "split_0", "split_1", "sq", "split_1"]
                .map(String::from)
                .to_vec(),
            blob_shapes: vec![vec![1, 1, 1, 2]; 6],
            inputs: vec![0],
            steps: vec![
                conv,
                step("split", Box::new(Split { tops: 2 }), vec![1], vec![2, 3], 0.0),
                step(
                    "sq",
                    Box::new(Power { power: 2.0, scale: 1.0, shift: 0.0 }),
                    vec![2],
                    vec![4],
                    0.5,
                ),
                step(
                    "relu",
                    Box::new(crate::ops::activation::Relu { negative_slope: 0.0 }),
                    vec![3],
                    vec![5],
                    0.0,
                ),
            ],
            force_backward: true,
            memory: NetMemory::default(),
        }
    }

    fn data(values: &[f32]) -> Tensor {
        Tensor::from_slice(values).reshape([1, 1, 1, 2])
    }

    #[test]
    fn forward_fills_blobs_and_sums_weighted_losses() {
        let net = Net::new(plan(), Device::Cpu, 1).unwrap();
        let blobs = net.forward(&[("data", data(&[1.0, -1.0]))]).unwrap();
        let conv: Vec<f32> = Vec::try_from(blobs.get(1).unwrap().flatten(0, -1)).unwrap();
        assert_eq!(conv, vec![2.5, -1.5]);
        let relu: Vec<f32> = Vec::try_from(blobs.get(5).unwrap().flatten(0, -1)).unwrap();
        assert_eq!(relu, vec![2.5, 0.0]);
        let loss = f64::try_from(blobs.loss.as_ref().unwrap()).unwrap();
        assert!((loss - 0.5 * (6.25 + 2.25)).abs() < 1e-6);
        // The in-place relu's version is what "split_1" holds after the pass.
        let finals = net.plan.final_blobs();
        assert_eq!(finals.iter().find(|(n, _)| n == "split_1").unwrap().1, 5);
        assert_eq!(finals.len(), 5);
    }

    #[test]
    fn backward_gives_blob_and_param_gradients() {
        let net = Net::new(plan(), Device::Cpu, 1).unwrap();
        let blobs = net.forward(&[("data", data(&[1.0, -1.0]))]).unwrap();
        let grads = net.backward(&blobs);
        let values =
            |t: &Option<Tensor>| Vec::<f32>::try_from(t.as_ref().unwrap().flatten(0, -1)).unwrap();
        // d(0.5 Σ y²)/dy = y on the loss branch only.
        assert_eq!(values(&grads.blobs[4]), vec![0.5, 0.5]);
        assert_eq!(values(&grads.blobs[2]), vec![2.5, -1.5]);
        assert_eq!(values(&grads.blobs[1]), vec![2.5, -1.5]);
        assert_eq!(values(&grads.blobs[0]), vec![5.0, -3.0]);
        // dL/dw = Σ y·x, dL/db = Σ y; force_backward gives the lr_mult-0 bias a gradient too.
        assert_eq!(values(&grads.params[0][0]), vec![4.0]);
        assert_eq!(values(&grads.params[0][1]), vec![1.0]);
    }

    #[test]
    fn param_gradients_are_backward_without_blob_gradients() {
        let net = Net::new(plan(), Device::Cpu, 1).unwrap();
        // A graph is freed by its backward: one forward per backward.
        let forward = || net.forward(&[("data", data(&[1.0, -1.0]))]).unwrap();
        let all = net.backward(&forward());
        let params_only = net.param_gradients(&forward());
        assert!(params_only.blobs.iter().all(Option::is_none));
        for (a, b) in all.params.iter().flatten().zip(params_only.params.iter().flatten()) {
            assert!(a.as_ref().unwrap().equal(b.as_ref().unwrap()));
        }
    }

    #[test]
    fn parameters_are_learnt_only_with_lr_mult_unless_forced() {
        let mut p = plan();
        p.force_backward = false;
        let net = Net::new(p, Device::Cpu, 1).unwrap();
        assert!(net.params[0][0].requires_grad());
        assert!(!net.params[0][1].requires_grad());
        let blobs = net.forward(&[("data", data(&[1.0, 1.0]))]).unwrap();
        let grads = net.backward(&blobs);
        assert!(grads.blobs[0].is_none(), "inputs get no gradient without force_backward");
        assert!(grads.params[0][1].is_none());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let net = Net::new(plan(), Device::Cpu, 1).unwrap();
        let missing = net.forward(&[]).err().unwrap();
        assert!(missing.to_string().contains("no value given"), "{missing}");
        let shape = net
            .forward(&[("data", Tensor::zeros([1, 1, 2, 2], (Kind::Float, Device::Cpu)))])
            .err()
            .unwrap();
        assert!(shape.to_string().contains("does not match"), "{shape}");
        let unknown = net
            .forward(&[("data", data(&[0.0, 0.0])), ("label", data(&[0.0, 0.0]))])
            .err()
            .unwrap();
        assert!(unknown.to_string().contains("no input of this name"), "{unknown}");
    }

    #[test]
    fn fillers_are_seeded() {
        let mut p = plan();
        p.steps[0].params[0].filler =
            Some(FillerDef { kind: "gaussian".into(), ..constant(0.0).unwrap() });
        let value = |seed| {
            f64::try_from(
                &Net::new(plan_with(&p), Device::Cpu, seed).unwrap().params[0][0]
                    .detach()
                    .flatten(0, -1)
                    .get(0),
            )
            .unwrap()
        };
        assert_eq!(value(7), value(7));
        assert_ne!(value(7), value(8));
    }

    /// data → split → {d1 → own 3×3 (pad 1) → split → {own 1×1 → ReLU in
    /// place → ½ square loss, ReLU in place → square loss}, d2 → own 1×1 →
    /// square loss}: own steps that feed each other through autograd, share an
    /// upstream split and have their tops overwritten in place, batch 2.
    /// `own` picks GemmConv (own backward where OpenBLAS is linked) or
    /// libtorch's direct convolution (autograd) for the three layers.
    fn branching_plan(own: bool) -> Plan {
        use crate::ops::conv::GemmConv;
        let layer = |kernel: i64, pad: i64| -> Box<dyn Lowered> {
            if own {
                Box::new(GemmConv { kernel: vec![kernel; 2], pad: vec![pad; 2], bias_term: true })
            } else {
                Box::new(Conv {
                    stride: vec![1, 1],
                    pad: vec![pad; 2],
                    dilation: vec![1, 1],
                    group: 1,
                    transposed: false,
                    bias_term: true,
                })
            }
        };
        let gaussian =
            Some(FillerDef { kind: "gaussian".into(), std: 0.5, ..constant(0.0).unwrap() });
        let params = |outputs: i64, inputs: i64, kernel: i64, bias_lr: f64| {
            vec![
                ParamInfo {
                    role: ParamRole::Weight,
                    shape: vec![outputs, inputs, kernel, kernel],
                    filler: gaussian.clone(),
                    lr_mult: 1.0,
                    decay_mult: 1.0,
                },
                ParamInfo {
                    role: ParamRole::Bias,
                    shape: vec![outputs],
                    filler: gaussian.clone(),
                    lr_mult: bias_lr,
                    decay_mult: 0.0,
                },
            ]
        };
        let square = || Box::new(Power { power: 2.0, scale: 1.0, shift: 0.0 });
        let relu = || Box::new(crate::ops::activation::Relu { negative_slope: 0.0 });
        let mut conv_a = step("conv_a", layer(3, 1), vec![1], vec![3], 0.0);
        conv_a.params = params(4, 3, 3, 1.0);
        let mut conv_b = step("conv_b", layer(1, 0), vec![4], vec![6], 0.0);
        conv_b.params = params(2, 4, 1, 0.0);
        let mut conv_c = step("conv_c", layer(1, 0), vec![2], vec![11], 0.0);
        conv_c.params = params(2, 3, 1, 1.0);
        Plan {
            blob_names: [
                "data", "d1", "d2", "a", "a1", "a2", "b", "b", "lb", "a2", "r2", "c", "c2",
            ]
            .map(String::from)
            .to_vec(),
            blob_shapes: vec![vec![2, 3, 5, 5]; 13],
            inputs: vec![0],
            steps: vec![
                step("split_data", Box::new(Split { tops: 2 }), vec![0], vec![1, 2], 0.0),
                conv_a,
                step("split_a", Box::new(Split { tops: 2 }), vec![3], vec![4, 5], 0.0),
                conv_b,
                step("relu_b", relu(), vec![6], vec![7], 0.0),
                step("loss_b", square(), vec![7], vec![8], 0.5),
                step("relu_a", relu(), vec![5], vec![9], 0.0),
                step("loss_r", square(), vec![9], vec![10], 1.0),
                conv_c,
                step("loss_c", square(), vec![11], vec![12], 1.0),
            ],
            force_backward: false,
            memory: NetMemory::default(),
        }
    }

    fn assert_same_gradients<'a>(
        pairs: impl Iterator<Item = (&'a Option<Tensor>, &'a Option<Tensor>)>,
    ) {
        for (i, (g, w)) in pairs.enumerate() {
            match (g, w) {
                (Some(g), Some(w)) => {
                    let diff = f64::try_from((g - w).abs().max()).unwrap();
                    let scale = f64::try_from(w.abs().max()).unwrap();
                    assert!(
                        diff <= 1e-5 * (1.0 + scale),
                        "gradient {i}: max difference {diff} (scale {scale})"
                    );
                }
                (None, None) => {}
                _ => panic!(
                    "gradient {i}: present on one path only ({} vs {})",
                    g.is_some(),
                    w.is_some()
                ),
            }
        }
    }

    #[test]
    fn own_backward_steps_give_autograds_gradients() {
        let x = (Tensor::arange(2 * 3 * 25, (Kind::Float, Device::Cpu)) * 0.37)
            .sin()
            .reshape([2, 3, 5, 5]);
        let run = |own: bool, force_backward: bool, lean: bool| {
            let mut plan = branching_plan(own);
            plan.force_backward = force_backward;
            let net = Net::new(plan, Device::Cpu, 3).unwrap();
            let inputs = [("data", x.shallow_clone())];
            let blobs =
                if lean { net.forward_lean(&inputs) } else { net.forward(&inputs) }.unwrap();
            let loss = f64::try_from(blobs.loss.as_ref().unwrap()).unwrap();
            let own_steps = blobs.own.len();
            (loss, own_steps, net.backward(&blobs))
        };
        for force_backward in [false, true] {
            let (want_loss, no_own, want) = run(false, force_backward, false);
            assert_eq!(no_own, 0);
            for lean in [false, true] {
                let (loss, own_steps, got) = run(true, force_backward, lean);
                assert_eq!(own_steps, if crate::gemm::available() { 3 } else { 0 });
                assert!(
                    (loss - want_loss).abs() <= 1e-5 * want_loss.abs(),
                    "loss {loss} vs {want_loss}"
                );
                assert_same_gradients(
                    got.params.iter().flatten().zip(want.params.iter().flatten()),
                );
                if lean {
                    // The overwritten versions are gone: conv_b's and relu_a's inputs.
                    assert!(got.blobs[6].is_none() && got.blobs[5].is_none());
                    assert!(got.blobs[7].is_some());
                } else {
                    assert_same_gradients(got.blobs.iter().zip(&want.blobs));
                }
                // conv_b's bias has lr_mult 0: no gradient unless forced.
                assert_eq!(got.params[3][1].is_some(), force_backward);
                assert_eq!(got.blobs[0].is_some(), force_backward);
            }
        }
    }

    /// Gradients handed back with `recycle` are overwritten by the next
    /// pass, which gives what a net without spent storage gives.
    #[test]
    fn recycled_gradients_are_overwritten_with_the_next_passes() {
        let input = |scale: f64| {
            (Tensor::arange(2 * 3 * 25, (Kind::Float, Device::Cpu)) * scale)
                .sin()
                .reshape([2, 3, 5, 5])
        };
        let gradients = |net: &Net, x: &Tensor| {
            net.param_gradients(&net.forward_lean(&[("data", x.shallow_clone())]).unwrap())
        };
        let net = Net::new(branching_plan(true), Device::Cpu, 3).unwrap();
        let first = gradients(&net, &input(0.37)).params;
        let storage: Vec<Vec<Option<usize>>> = first
            .iter()
            .map(|ps| ps.iter().map(|g| g.as_ref().map(|g| g.data_ptr() as usize)).collect())
            .collect();
        net.recycle(first);
        let second = gradients(&net, &input(0.91));
        let fresh = Net::new(branching_plan(true), Device::Cpu, 3).unwrap();
        let want = gradients(&fresh, &input(0.91));
        assert_same_gradients(second.params.iter().flatten().zip(want.params.iter().flatten()));
        if crate::gemm::available() {
            // conv_a (step 1) has its own backward: its weight gradient
            // reuses the recycled storage.
            let reused = second.params[1][0].as_ref().map(|g| g.data_ptr() as usize);
            assert!(reused.is_some());
            assert_eq!(reused, storage[1][0]);
        }
    }

    /// A plan with the same params as `p` (plans own their ops, so rebuild).
    fn plan_with(p: &Plan) -> Plan {
        let mut fresh = plan();
        for (step, source) in fresh.steps.iter_mut().zip(&p.steps) {
            step.params = source.params.clone();
        }
        fresh
    }
}
