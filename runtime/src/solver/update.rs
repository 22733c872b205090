//! Caffe's parameter updates (`SGDSolver::ApplyUpdate` and the
//! `ComputeUpdateValue` of each solver type), on libtorch tensors in place.
//!
//! Order per iteration, as in Caffe: clip the accumulated gradients by their
//! global L2 norm, then per learnable blob: scale by 1/iter_size, add weight
//! decay, turn the gradient into the step with the rule's history, and
//! subtract the step from the weights. The learning rate (times `lr_mult`)
//! is applied inside the rule: for SGD it goes into the momentum buffer,
//! so a changing rate affects only later gradients (unlike PyTorch's SGD).

use lvc_compiler::schema::solver::{Regularization, SolverDef, SolverType};
use tch::{Kind, Tensor};

use super::lr::proto_float;
use crate::exec::Net;

/// The update rule's constants (Caffe's float fields, rounded to f32).
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateSettings {
    pub rule: SolverType,
    pub momentum: f64,
    /// Adam's β₂.
    pub momentum2: f64,
    /// ε of AdaGrad, RMSProp, AdaDelta and Adam.
    pub delta: f64,
    pub rms_decay: f64,
    pub weight_decay: f64,
    pub regularization: Regularization,
    pub iter_size: i64,
    /// Global L2 norm bound; negative = no clipping.
    pub clip_gradients: f64,
}

impl UpdateSettings {
    pub fn from_def(def: &SolverDef) -> Self {
        UpdateSettings {
            rule: def.solver_type,
            momentum: proto_float(def.momentum),
            momentum2: proto_float(def.momentum2),
            delta: proto_float(def.delta),
            rms_decay: proto_float(def.rms_decay),
            weight_decay: proto_float(def.weight_decay),
            regularization: def.regularization,
            iter_size: def.iter_size.max(1),
            clip_gradients: proto_float(def.clip_gradients),
        }
    }

    /// Plain SGD with momentum and L2 decay (Caffe's defaults otherwise).
    pub fn sgd(momentum: f64, weight_decay: f64) -> Self {
        UpdateSettings {
            rule: SolverType::Sgd,
            momentum: proto_float(momentum),
            momentum2: proto_float(0.999),
            delta: proto_float(1e-8),
            rms_decay: proto_float(0.99),
            weight_decay: proto_float(weight_decay),
            regularization: Regularization::L2,
            iter_size: 1,
            clip_gradients: -1.0,
        }
    }
}

/// One learnable blob's optimiser state: Caffe's `history_[i]` and, for
/// AdaDelta and Adam, the second history `history_[i + N]`.
pub(super) struct Slot {
    /// The blob: `net.params[step][index]`.
    pub(super) step: usize,
    pub(super) index: usize,
    lr_mult: f64,
    decay_mult: f64,
    pub(super) history: Tensor,
    pub(super) history2: Option<Tensor>,
}

/// The optimiser of one net: its settings and per-blob histories.
pub struct Optimizer {
    pub settings: UpdateSettings,
    slots: Vec<Slot>,
}

/// Per step, per param blob: the summed gradient of this iteration's
/// forward-backward passes (`None` = no gradient reached it, Caffe's 0 diff).
pub type ParamGrads = Vec<Vec<Option<Tensor>>>;

impl Optimizer {
    /// State for every blob the net learns (`requires_grad`: lr_mult ≠ 0,
    /// or force_backward, and not a BatchNorm statistic). Blobs with
    /// lr_mult 0 never move in Caffe either (rate 0 keeps the history 0).
    pub fn new(settings: UpdateSettings, net: &Net) -> Self {
        let needs_second = matches!(settings.rule, SolverType::AdaDelta | SolverType::Adam);
        let mut slots = Vec::new();
        for (step, (plan_step, params)) in net.plan.steps.iter().zip(&net.params).enumerate() {
            for (index, (info, param)) in plan_step.params.iter().zip(params).enumerate() {
                if !param.requires_grad() || info.lr_mult == 0.0 {
                    continue;
                }
                slots.push(Slot {
                    step,
                    index,
                    lr_mult: info.lr_mult,
                    decay_mult: info.decay_mult,
                    history: param.zeros_like().detach(),
                    history2: needs_second.then(|| param.zeros_like().detach()),
                });
            }
        }
        Optimizer { settings, slots }
    }

    /// Number of blobs this optimiser updates.
    pub fn learnable_count(&self) -> usize {
        self.slots.len()
    }

    /// The per-blob histories, in net order (solver-state snapshots).
    pub(super) fn slots(&self) -> &[Slot] {
        &self.slots
    }

    pub(super) fn slots_mut(&mut self) -> &mut [Slot] {
        &mut self.slots
    }

    /// The global L2 norm of the gradients over every learnable blob.
    pub fn gradient_norm(&self, grads: &ParamGrads) -> f64 {
        let sumsq: f64 = self
            .slots
            .iter()
            .filter_map(|s| grads.get(s.step).and_then(|g| g.get(s.index)).and_then(Option::as_ref))
            .map(|g| f64::try_from(g.square().sum(Kind::Double)).unwrap_or(0.0))
            .sum();
        sumsq.sqrt()
    }

    /// Applies one update with learning rate `rate` at iteration `iter`
    /// (0-based; Adam's bias correction uses `iter + 1`). `grads` are the
    /// gradients summed over `iter_size` passes; the update consumes them
    /// and writes into their storage (a shallow clone kept elsewhere sees
    /// the decayed diff). Returns that storage, spent, in the same layout,
    /// for [`Net::recycle`].
    pub fn apply(
        &mut self,
        net: &mut Net,
        mut grads: ParamGrads,
        rate: f64,
        iter: i64,
    ) -> ParamGrads {
        let s = &self.settings;
        let clip_scale = if s.clip_gradients >= 0.0 {
            let norm = self.gradient_norm(&grads);
            (norm > s.clip_gradients).then(|| s.clip_gradients / norm)
        } else {
            None
        };
        let iter_scale = (s.iter_size != 1).then(|| 1.0 / s.iter_size as f64);
        // Autograd may hand one buffer to several params (both operands of
        // an add get the same gradient): such a gradient is copied before it
        // is written. Every other one is this update's to overwrite, as
        // Caffe's update writes into the diffs: no new fc6-sized tensor (and
        // its page faults) per step. Each full pass over fc6-sized blobs costs
        // ~150 MB of memory traffic, so the update is written in as few
        // passes as Caffe's.
        let storage = |g: &Tensor| g.data_ptr() as usize;
        let mut users: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
        for g in grads.iter().flatten().flatten() {
            *users.entry(storage(g)).or_default() += 1;
        }
        tch::no_grad(|| {
            for slot in &mut self.slots {
                let weight = &mut net.params[slot.step][slot.index];
                let mut diff = match grads
                    .get_mut(slot.step)
                    .and_then(|g| g.get_mut(slot.index))
                    .and_then(Option::take)
                {
                    Some(g) if users.get(&storage(&g)).copied().unwrap_or(0) > 1 => g.copy(),
                    Some(g) => g.detach(),
                    None => weight.zeros_like(),
                };
                if let Some(scale) = clip_scale {
                    diff *= scale;
                }
                if let Some(scale) = iter_scale {
                    diff *= scale;
                }
                let local_decay = proto_float(s.weight_decay * slot.decay_mult);
                if local_decay != 0.0 {
                    // diff += decay·w (or decay·sign(w)) in one pass: Caffe's axpy.
                    let decay = Tensor::from(local_decay as f32).to_device(weight.device());
                    let _ = match s.regularization {
                        Regularization::L2 => diff.addcmul_(&weight.detach(), &decay),
                        Regularization::L1 => diff.addcmul_(&weight.detach().sign(), &decay),
                    };
                }
                let local_rate = proto_float(rate * slot.lr_mult);
                let step = compute_step(s, slot, &diff, local_rate, iter);
                let _ = weight.f_sub_(&step);
                if let Some(spent) = grads.get_mut(slot.step).and_then(|g| g.get_mut(slot.index)) {
                    *spent = Some(diff);
                }
            }
        });
        grads
    }
}

/// The value subtracted from the weights (Caffe's diff after
/// `ComputeUpdateValue`), updating the slot's histories.
fn compute_step(
    s: &UpdateSettings,
    slot: &mut Slot,
    diff: &Tensor,
    local_rate: f64,
    iter: i64,
) -> Tensor {
    let momentum = s.momentum;
    match s.rule {
        SolverType::Sgd => {
            // history = momentum·history + local_rate·diff, in place; the
            // step is the history itself (the weights read it right away).
            let rate = Tensor::from(local_rate as f32).to_device(diff.device());
            slot.history *= momentum;
            let _ = slot.history.addcmul_(diff, &rate);
            slot.history.shallow_clone()
        }
        SolverType::Nesterov => {
            let previous = slot.history.copy();
            slot.history *= momentum;
            slot.history += diff * local_rate;
            &slot.history * (1.0 + momentum) - previous * momentum
        }
        SolverType::AdaGrad => {
            slot.history += diff.square();
            diff * local_rate / (slot.history.sqrt() + s.delta)
        }
        SolverType::RmsProp => {
            slot.history *= s.rms_decay;
            slot.history += diff.square() * (1.0 - s.rms_decay);
            diff * local_rate / (slot.history.sqrt() + s.delta)
        }
        SolverType::AdaDelta => {
            let updates = slot.history2.get_or_insert_with(|| diff.zeros_like());
            slot.history *= momentum;
            slot.history += diff.square() * (1.0 - momentum);
            let scale = ((&*updates + s.delta) / (&slot.history + s.delta)).sqrt();
            let change = diff * scale;
            *updates *= momentum;
            *updates += change.square() * (1.0 - momentum);
            change * local_rate
        }
        SolverType::Adam => {
            let beta1 = momentum;
            let beta2 = s.momentum2;
            let t = (iter + 1) as i32;
            let correction = (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t));
            let v = slot.history2.get_or_insert_with(|| diff.zeros_like());
            *v *= beta2;
            *v += diff.square() * (1.0 - beta2);
            slot.history *= beta1;
            slot.history += diff * (1.0 - beta1);
            &slot.history * (local_rate * correction) / (v.sqrt() + s.delta)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::{ParamInfo, Plan, Step};
    use crate::ops::activation::Relu;
    use lvc_compiler::ops::ParamRole;
    use tch::Device;

    /// A net with one step holding blobs of the given initial values and
    /// (lr_mult, decay_mult); the optimiser never runs the step.
    fn net(blobs: &[(&[f32], f64, f64)]) -> Net {
        let params: Vec<ParamInfo> = blobs
            .iter()
            .map(|(v, lr, decay)| ParamInfo {
                role: ParamRole::Weight,
                shape: vec![v.len() as i64],
                filler: None,
                lr_mult: *lr,
                decay_mult: *decay,
            })
            .collect();
        let plan = Plan {
            blob_names: vec!["x".into(), "y".into()],
            blob_shapes: vec![vec![1], vec![1]],
            inputs: vec![0],
            steps: vec![Step {
                layer: "layer".into(),
                kind: "test".into(),
                op: Box::new(Relu { negative_slope: 0.0 }),
                bottoms: vec![0],
                tops: vec![1],
                loss_weights: vec![0.0],
                train: true,
                cost: Default::default(),
                params,
            }],
            force_backward: false,
            memory: Default::default(),
        };
        let tensors = blobs
            .iter()
            .map(|(v, lr, _)| Tensor::from_slice(v).set_requires_grad(*lr != 0.0))
            .collect();
        Net::from_parts(plan, vec![tensors], Device::Cpu)
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f32>::try_from(t.detach()).unwrap().into_iter().map(f64::from).collect()
    }

    fn grads(per_blob: &[&[f32]]) -> ParamGrads {
        vec![per_blob.iter().map(|g| Some(Tensor::from_slice(g))).collect()]
    }

    fn assert_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "got {got:?}, want {want:?}");
        }
    }

    /// Runs `rule` on one scalar weight with the gradient sequence `gs`
    /// (no decay) and compares with the scalar reference `step(state, g, t)`.
    fn check_rule(rule: SolverType, rate: f64, step: impl Fn(&mut [f64; 2], f64, i32) -> f64) {
        let mut settings = UpdateSettings::sgd(0.9, 0.0);
        settings.rule = rule;
        settings.delta = 1e-3;
        let mut n = net(&[(&[1.0], 1.0, 1.0)]);
        let mut opt = Optimizer::new(settings, &n);
        let (mut w, mut state) = (1.0f64, [0.0f64; 2]);
        for (t, g) in [0.5f32, -0.25, 2.0, 0.125].into_iter().enumerate() {
            opt.apply(&mut n, grads(&[&[g]]), rate, t as i64);
            w -= step(&mut state, f64::from(g), t as i32 + 1);
            assert_close(&values(&n.params[0][0]), &[w]);
        }
    }

    #[test]
    fn sgd_keeps_the_learning_rate_inside_the_momentum_buffer() {
        let mut n = net(&[(&[1.0, -2.0], 1.0, 1.0)]);
        let mut opt = Optimizer::new(UpdateSettings::sgd(0.9, 0.0), &n);
        opt.apply(&mut n, grads(&[&[1.0, 1.0]]), 0.1, 0);
        // V = 0.1·1; w = 1 − 0.1
        assert_close(&values(&n.params[0][0]), &[0.9, -2.1]);
        // The rate drops to 0: Caffe still moves by momentum·V = 0.09
        // (PyTorch's lr-outside-the-buffer SGD would not move at all).
        opt.apply(&mut n, grads(&[&[5.0, 5.0]]), 0.0, 1);
        assert_close(&values(&n.params[0][0]), &[0.81, -2.19]);
    }

    /// The update writes into the gradients it is given, except where two
    /// params share one buffer (autograd hands an add's gradient to both
    /// operands): each must see the gradient, not the other's decayed diff.
    #[test]
    fn a_gradient_shared_by_two_params_is_not_overwritten() {
        let mut n = net(&[(&[2.0], 1.0, 1.0), (&[-4.0], 1.0, 1.0)]);
        let mut opt = Optimizer::new(UpdateSettings::sgd(0.0, 0.5), &n);
        let shared = Tensor::from_slice(&[1.0f32]);
        opt.apply(
            &mut n,
            vec![vec![Some(shared.shallow_clone()), Some(shared.shallow_clone())]],
            0.1,
            0,
        );
        // diff = 1 + 0.5·w for each: 2 → 2 − 0.1·2 = 1.8; −4 → −4 − 0.1·(−1) = −3.9.
        assert_close(&values(&n.params[0][0]), &[1.8]);
        assert_close(&values(&n.params[0][1]), &[-3.9]);
        assert_close(&values(&shared), &[1.0]);
        // An unshared gradient is the update's own: decayed in place.
        let own = Tensor::from_slice(&[1.0f32]);
        let mut n = net(&[(&[2.0], 1.0, 1.0)]);
        let mut opt = Optimizer::new(UpdateSettings::sgd(0.0, 0.5), &n);
        opt.apply(&mut n, vec![vec![Some(own.shallow_clone())]], 0.1, 0);
        assert_close(&values(&n.params[0][0]), &[1.8]);
        assert_close(&values(&own), &[2.0]);
    }

    #[test]
    fn weight_decay_and_multipliers_apply_per_blob() {
        // blob 0: lr_mult 2, decay_mult 1 (L2); blob 1: decay_mult 0; blob 2: lr_mult 0.
        let mut n = net(&[(&[2.0], 2.0, 1.0), (&[2.0], 1.0, 0.0), (&[2.0], 0.0, 1.0)]);
        let mut opt = Optimizer::new(UpdateSettings::sgd(0.0, 0.5), &n);
        assert_eq!(opt.learnable_count(), 2);
        opt.apply(&mut n, grads(&[&[1.0], &[1.0], &[1.0]]), 0.1, 0);
        // diff = 1 + 0.5·2 = 2; step = 0.1·2·2 = 0.4
        assert_close(&values(&n.params[0][0]), &[1.6]);
        assert_close(&values(&n.params[0][1]), &[1.9]);
        assert_close(&values(&n.params[0][2]), &[2.0]);

        let mut n = net(&[(&[2.0, -3.0, 0.0], 1.0, 1.0)]);
        let mut settings = UpdateSettings::sgd(0.0, 0.5);
        settings.regularization = Regularization::L1;
        let mut opt = Optimizer::new(settings, &n);
        opt.apply(&mut n, grads(&[&[0.0, 0.0, 0.0]]), 1.0, 0);
        // L1 adds decay·sign(w); sign(0) = 0.
        assert_close(&values(&n.params[0][0]), &[1.5, -2.5, 0.0]);
    }

    #[test]
    fn missing_gradients_count_as_zero_but_still_decay() {
        let mut n = net(&[(&[4.0], 1.0, 1.0)]);
        let mut opt = Optimizer::new(UpdateSettings::sgd(0.0, 0.25), &n);
        opt.apply(&mut n, vec![vec![None]], 1.0, 0);
        assert_close(&values(&n.params[0][0]), &[3.0]);
    }

    #[test]
    fn clipping_uses_the_global_norm_before_iter_size_scaling() {
        let mut n = net(&[(&[0.0], 1.0, 1.0), (&[0.0], 1.0, 1.0)]);
        let mut settings = UpdateSettings::sgd(0.0, 0.0);
        settings.clip_gradients = 1.0;
        settings.iter_size = 2;
        let mut opt = Optimizer::new(settings, &n);
        // Summed gradients (3, 4): norm 5 → scaled to (0.6, 0.8), then ÷ iter_size 2.
        assert!((opt.gradient_norm(&grads(&[&[3.0], &[4.0]])) - 5.0).abs() < 1e-12);
        opt.apply(&mut n, grads(&[&[3.0], &[4.0]]), 1.0, 0);
        assert_close(&values(&n.params[0][0]), &[-0.3]);
        assert_close(&values(&n.params[0][1]), &[-0.4]);
        // Below the bound nothing is clipped.
        opt.apply(&mut n, grads(&[&[0.6], &[0.0]]), 1.0, 1);
        assert_close(&values(&n.params[0][0]), &[-0.6]);
    }

    #[test]
    fn nesterov_matches_caffe() {
        check_rule(SolverType::Nesterov, 0.1, |s, g, _| {
            let previous = s[0];
            s[0] = 0.9 * s[0] + 0.1 * g;
            1.9 * s[0] - 0.9 * previous
        });
    }

    #[test]
    fn adagrad_matches_caffe() {
        check_rule(SolverType::AdaGrad, 0.1, |s, g, _| {
            s[0] += g * g;
            0.1 * g / (s[0].sqrt() + 1e-3)
        });
    }

    #[test]
    fn rmsprop_matches_caffe() {
        check_rule(SolverType::RmsProp, 0.1, |s, g, _| {
            s[0] = 0.99 * s[0] + 0.01 * g * g;
            0.1 * g / (s[0].sqrt() + 1e-3)
        });
    }

    #[test]
    fn adadelta_matches_caffe() {
        check_rule(SolverType::AdaDelta, 1.0, |s, g, _| {
            s[0] = 0.9 * s[0] + 0.1 * g * g;
            let change = g * ((s[1] + 1e-3) / (s[0] + 1e-3)).sqrt();
            s[1] = 0.9 * s[1] + 0.1 * change * change;
            change
        });
    }

    #[test]
    fn adam_uses_caffes_bias_correction() {
        check_rule(SolverType::Adam, 0.1, |s, g, t| {
            s[0] = 0.9 * s[0] + 0.1 * g;
            s[1] = 0.999 * s[1] + 0.001 * g * g;
            let correction = (1.0 - 0.999f64.powi(t)).sqrt() / (1.0 - 0.9f64.powi(t));
            0.1 * correction * s[0] / (s[1].sqrt() + 1e-3)
        });
    }
}
