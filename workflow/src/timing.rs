//! Timing a net as Caffe's `caffe time` does. Average forward, backward and
//! forward-backward over N iterations after a warm-up, and per layer.
//!
//! Backward is libtorch autograd over the whole net, which has no per-layer
//! hooks; so per-layer times come from running each layer on its own (its
//! bottoms taken from a full forward), forward and then backward from a
//! gradient of ones into every input and parameter that needs one. The
//! per-layer sums therefore approximate, not partition, the net totals.

use std::time::Instant;

use lvc_runtime::exec::{Blobs, Net, Step};
use lvc_runtime::ops::OwnBackward;
use lvc_runtime::tch::{self, Device, Kind, Tensor};

/// Average times of one layer run alone, in ms, and its FLOPs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerTime {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `None` with `--no-layers` (the layer was not timed alone).
    pub forward_ms: Option<f64>,
    pub backward_ms: Option<f64>,
    pub forward_flops: f64,
    pub backward_flops: f64,
}

/// `lvc time`'s report: the net's average pass times and every layer's.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TimeReport {
    pub iterations: u32,
    pub device: String,
    pub forward_ms: f64,
    /// `None` when the net has no loss to differentiate.
    pub backward_ms: Option<f64>,
    pub forward_backward_ms: Option<f64>,
    pub forward_flops: f64,
    pub backward_flops: f64,
    /// What runs the GEMMs of layers with their own backward (CPU only).
    pub own_backward_gemm: String,
    pub layers: Vec<LayerTime>,
}

/// Waits for queued device work, so that wall-clock times are real.
fn sync(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}

fn elapsed_ms(device: Device, started: Instant) -> f64 {
    sync(device);
    started.elapsed().as_secs_f64() * 1e3
}

/// Random inputs of the plan's input shapes.
fn random_inputs(net: &Net) -> Vec<(String, Tensor)> {
    net.plan
        .inputs
        .iter()
        .map(|&id| {
            (
                net.plan.blob_names[id].clone(),
                Tensor::rand(net.plan.blob_shapes[id].as_slice(), (Kind::Float, net.device)),
            )
        })
        .collect()
}

/// Times `iterations` forward (and, with a loss, backward) passes of
/// `net` on random inputs after a warm-up, and each layer alone when
/// `per_layer`.
pub fn time_net(
    net: &Net,
    iterations: u32,
    per_layer: bool,
) -> Result<TimeReport, lvc_runtime::error::RuntimeError> {
    let inputs = random_inputs(net);
    let refs: Vec<(&str, Tensor)> =
        inputs.iter().map(|(n, t)| (n.as_str(), t.shallow_clone())).collect();
    let has_loss = net.forward(&refs)?.loss.is_some_and(|l| l.requires_grad());
    // Warm-up (allocator, kernel selection), then the timed passes.
    // The gradients go back to the net after each pass, as the solver's
    // update hands them back in training.
    let warm = net.forward_lean(&refs)?;
    if has_loss {
        net.recycle(net.param_gradients(&warm).params);
    }
    drop(warm);
    let (mut forward, mut backward) = (0.0, 0.0);
    for _ in 0..iterations {
        let started = Instant::now();
        let blobs = net.forward_lean(&refs)?;
        forward += elapsed_ms(net.device, started);
        if has_loss {
            let started = Instant::now();
            net.recycle(net.param_gradients(&blobs).params);
            backward += elapsed_ms(net.device, started);
        }
    }
    let n = f64::from(iterations);
    let blobs = net.forward(&refs)?;
    let layers: Vec<LayerTime> = net
        .plan
        .steps
        .iter()
        .zip(&net.params)
        .map(|(step, params)| {
            time_layer(net, step, params, &blobs, if per_layer { iterations } else { 0 }, has_loss)
        })
        .collect();
    Ok(TimeReport {
        iterations,
        device: match (net.device, lvc_runtime::device::cuda_tf32_allowed()) {
            (Device::Cuda(_), Ok((true, _))) => format!("{:?}, tf32", net.device),
            (other, _) => format!("{other:?}"),
        },
        forward_ms: forward / n,
        backward_ms: has_loss.then_some(backward / n),
        forward_backward_ms: has_loss.then_some((forward + backward) / n),
        forward_flops: layers.iter().map(|l| l.forward_flops).sum(),
        backward_flops: if has_loss { layers.iter().map(|l| l.backward_flops).sum() } else { 0.0 },
        own_backward_gemm: match net.device {
            Device::Cpu => lvc_runtime::gemm::describe(),
            other => format!("none on {other:?}: libtorch runs every layer"),
        },
        layers,
    })
}

/// One layer alone: forward, then backward into whatever needs a gradient.
fn time_layer(
    net: &Net,
    step: &Step,
    params: &[Tensor],
    blobs: &Blobs,
    iterations: u32,
    has_loss: bool,
) -> LayerTime {
    let bottoms: Vec<Tensor> = step
        .bottoms
        .iter()
        .filter_map(|&b| blobs.get(b))
        .map(|t| t.detach().set_requires_grad(has_loss && t.requires_grad()))
        .collect();
    let wrt: Vec<&Tensor> = bottoms
        .iter()
        .chain(params.iter())
        .filter(|t| has_loss && t.requires_grad() && t.is_floating_point())
        .collect();
    let (forward_flops, input_grad_flops, weight_grad_flops) = flops(step);
    let mut forward = 0.0;
    let mut backward = 0.0;
    // Round 0 is the warm-up; with 0 iterations only FLOPs are counted.
    let own = net.own_backward(step);
    // An own step's param gradients go back to it as spent storage, as the
    // solver's update hands them back to the net in training.
    let mut spent = Vec::new();
    for round in (0..=iterations).filter(|_| iterations > 0) {
        let (forward_round, backward_round) = match own {
            Some(op) => {
                let (times, grads) = own_round(
                    net,
                    op,
                    &bottoms,
                    params,
                    !wrt.is_empty(),
                    std::mem::take(&mut spent),
                );
                spent = grads;
                times
            }
            None => autograd_round(net, step, &bottoms, params, &wrt),
        };
        if round > 0 {
            forward += forward_round;
            backward += backward_round;
        }
    }
    let n = f64::from(iterations.max(1));
    let input_grad = bottoms.iter().any(Tensor::requires_grad);
    let weight_grad = params.first().is_some_and(Tensor::requires_grad);
    LayerTime {
        name: step.layer.clone(),
        kind: step.kind.clone(),
        forward_ms: (iterations > 0).then_some(forward / n),
        backward_ms: (iterations > 0).then_some(backward / n),
        forward_flops,
        backward_flops: if input_grad { input_grad_flops } else { 0.0 }
            + if weight_grad { weight_grad_flops } else { 0.0 },
    }
}

/// One timed forward and backward (ms) of a layer with its own backward, as
/// the executor runs it, and the param gradients (to hand back as `spent`
/// next round); `backward` says whether anything needs a gradient.
fn own_round(
    net: &Net,
    op: &dyn OwnBackward,
    bottoms: &[Tensor],
    params: &[Tensor],
    backward: bool,
    spent: Vec<Option<Tensor>>,
) -> ((f64, f64), Vec<Option<Tensor>>) {
    let started = Instant::now();
    let tops = op.forward_untracked(bottoms, params);
    let forward = elapsed_ms(net.device, started);
    if !backward {
        return ((forward, 0.0), Vec::new());
    }
    let ones: Vec<Tensor> = tops.iter().map(Tensor::ones_like).collect();
    let started = Instant::now();
    let grads = op.backward(bottoms, params, &ones, spent).params;
    ((forward, elapsed_ms(net.device, started)), grads)
}

/// One timed forward and autograd backward (ms) into `wrt`.
fn autograd_round(
    net: &Net,
    step: &Step,
    bottoms: &[Tensor],
    params: &[Tensor],
    wrt: &[&Tensor],
) -> (f64, f64) {
    let started = Instant::now();
    let tops = step.op.forward(bottoms, params, step.train);
    let forward = elapsed_ms(net.device, started);
    let differentiable: Vec<&Tensor> = tops.iter().filter(|t| t.requires_grad()).collect();
    if wrt.is_empty() || differentiable.is_empty() {
        return (forward, 0.0);
    }
    let ones: Vec<Tensor> = differentiable.iter().map(|t| t.ones_like()).collect();
    let started = Instant::now();
    let sum = differentiable
        .iter()
        .zip(&ones)
        .map(|(t, o)| (*t * o).sum(Kind::Float))
        .reduce(|a, b| a + b);
    if let Some(sum) = sum {
        let _ = Tensor::run_backward(&[sum], wrt, false, false);
    }
    (forward, elapsed_ms(net.device, started))
}

/// (forward, input-gradient, weight-gradient) FLOPs of a layer: its op's
/// forward FLOPs (`Op::cost`: 2 × the multiply-adds of Convolution,
/// Deconvolution and InnerProduct, 0 for the memory-bound rest), each
/// gradient costing as much again.
fn flops(step: &Step) -> (f64, f64, f64) {
    let f = step.cost.forward_flops;
    (f, f, f)
}
