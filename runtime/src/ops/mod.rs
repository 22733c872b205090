//! Lowered layers: one module per op family, mirroring
//! `lvc_compiler::ops::<family>`. Each lowered op is a small struct holding the
//! resolved Caffe parameters and computing its tops with libtorch; backward
//! comes from libtorch's autograd, except where Caffe's gradient differs from
//! the derivative of the forward formula (noted in each op).

use std::any::Any;
use std::fmt;

use lvc_compiler::ir::LayerNode;
use lvc_compiler::ops::BlobShape;
use tch::Tensor;

pub mod activation;
pub mod augment;
pub mod combine;
pub mod conv;
pub mod crop;
pub mod dense;
pub mod loss;
pub mod lrn;
pub mod norm;
pub mod pool;

/// One layer, ready to run.
pub trait Lowered: fmt::Debug + Send {
    /// The tops from the bottoms and this layer's parameter blobs (in Caffe's
    /// blob order). `train` is the layer's resolved phase (Dropout, BatchNorm).
    /// Shapes were checked by the compiler; ops may assume them.
    fn forward(&self, bottoms: &[Tensor], params: &[Tensor], train: bool) -> Vec<Tensor>;

    /// Checks the values of the bottoms that the op cannot compute with
    /// (shapes were checked by the compiler; values arrive at run time):
    /// labels outside the classes, which Caffe only `DCHECK`s and then reads
    /// out of bounds. The message says what is wrong; the caller names the
    /// layer.
    fn check_bottoms(&self, _bottoms: &[Tensor]) -> Result<(), String> {
        Ok(())
    }

    /// Starts the op's own random stream over from the net's seed (the
    /// solver's `random_seed` in training). Only ops that draw random numbers
    /// outside libtorch (Augment) keep one.
    fn reseed(&self, _net_seed: u64) {}

    /// Where the op's own random stream is (Augment: its net seed and the
    /// batches drawn since), for solver-state snapshots; `None` for ops
    /// without a stream.
    fn stream_position(&self) -> Option<StreamPosition> {
        None
    }

    /// Moves the op's own random stream to `to`, so that a resumed run draws
    /// what the uninterrupted run would have drawn. Ops without a stream
    /// ignore it.
    fn seek_stream(&self, _to: StreamPosition) {}

    /// The op's own gradients, where it computes them faster than autograd
    /// through [`Lowered::forward`] would (see [`OwnBackward`]).
    fn own_backward(&self) -> Option<&dyn OwnBackward> {
        None
    }
}

/// A layer that carries its own backward, as Caffe's layers do: the
/// executor runs [`OwnBackward::forward_untracked`] (nothing recorded for
/// autograd), makes the tops leaves, and later hands their gradients to
/// [`OwnBackward::backward`], whose bottom gradients it feeds back into
/// autograd for the layers before. This lets a layer use GEMMs that libtorch
/// does not run as fast (`crate::gemm`: own AVX2 kernels, OpenBLAS) in both
/// directions.
pub trait OwnBackward {
    /// Whether this build and `device` make the own path pay (otherwise the
    /// executor uses [`Lowered::forward`] and autograd).
    fn applies(&self, device: tch::Device) -> bool;

    /// The same tops as [`Lowered::forward`], without autograd history.
    fn forward_untracked(&self, bottoms: &[Tensor], params: &[Tensor]) -> Vec<Tensor>;

    /// From d loss / d top (one per top, same order): d loss / d bottom for
    /// every bottom that `requires_grad` (else `None`), and d loss / d param
    /// for every param that `requires_grad`, summed over bottom/top pairs.
    /// `spent` holds, per param, an earlier pass's gradient that nothing
    /// reads any more ([`crate::exec::Net::recycle`]), or `None`: the op may
    /// write this pass's gradient into its storage instead of allocating.
    fn backward(
        &self,
        bottoms: &[Tensor],
        params: &[Tensor],
        top_grads: &[Tensor],
        spent: Vec<Option<Tensor>>,
    ) -> OwnGradients;
}

/// What [`OwnBackward::backward`] returns: per bottom and per param.
pub struct OwnGradients {
    pub bottoms: Vec<Option<Tensor>>,
    pub params: Vec<Option<Tensor>>,
}

/// The position of an op's own random stream: the seed it was started from
/// and the draws (batches) taken since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamPosition {
    pub seed: u64,
    pub position: u64,
}

/// A small constant vector (class weights) uploaded to the device once:
/// a host→device copy inside a forward pass would synchronise a CUDA stream.
#[derive(Debug, Default)]
pub struct DeviceConst {
    values: Vec<f32>,
    uploaded: std::sync::Mutex<Option<Tensor>>,
}

impl DeviceConst {
    pub fn new(values: Vec<f32>) -> Self {
        DeviceConst { values, uploaded: std::sync::Mutex::new(None) }
    }
    pub fn values(&self) -> &[f32] {
        &self.values
    }
    /// The values as a tensor on `device` (uploaded on first use there).
    pub fn on(&self, device: tch::Device) -> Tensor {
        let mut cached = self.uploaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match cached.as_ref().filter(|t| t.device() == device) {
            Some(t) => t.shallow_clone(),
            None => {
                let t = Tensor::from_slice(&self.values).to_device(device);
                *cached = Some(t.shallow_clone());
                t
            }
        }
    }
}

impl Clone for DeviceConst {
    fn clone(&self) -> Self {
        DeviceConst::new(self.values.clone())
    }
}

impl PartialEq for DeviceConst {
    fn eq(&self, other: &Self) -> bool {
        self.values == other.values
    }
}

/// `sum += term`, where an absent sum is the first term (no zeros tensor
/// to start from: the shapes need not be known, and nothing is allocated
/// for a sum of one).
pub(crate) fn accumulate(sum: &mut Option<Tensor>, term: Tensor) {
    *sum = Some(match sum.take() {
        Some(total) => total + term,
        None => term,
    });
}

/// A tensor's values on the host as float32, in order (empty if the copy
/// fails, which only a failed device does; callers write files from it).
pub(crate) fn host_f32(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(
        t.detach().to_device(tch::Device::Cpu).to_kind(tch::Kind::Float).flatten(0, -1),
    )
    .unwrap_or_default()
}

/// The elements of a contiguous float32 CPU tensor, for layers that compute
/// on memory directly (`None` for any other tensor).
pub(crate) fn cpu_f32(t: &Tensor) -> Option<&[f32]> {
    if !is_cpu_f32(t) {
        return None;
    }
    if t.numel() == 0 {
        return Some(&[]);
    }
    // SAFETY: a contiguous float32 CPU tensor holds numel() f32s from
    // data_ptr(); the slice borrows `t`, which keeps the storage alive.
    Some(unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel()) })
}

/// As [`cpu_f32`], writable: for a tensor the caller just allocated (no
/// other tensor shares its storage while the slice lives).
pub(crate) fn cpu_f32_mut(t: &mut Tensor) -> Option<&mut [f32]> {
    if !is_cpu_f32(t) {
        return None;
    }
    if t.numel() == 0 {
        return Some(&mut []);
    }
    // SAFETY: as in `cpu_f32`; `t` is borrowed mutably for the slice's life.
    Some(unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, t.numel()) })
}

/// [`OwnBackward::forward_untracked`] of a one-bottom layer whose CPU path
/// computes on memory: `compute` gets the bottom as a contiguous float32
/// tensor and returns the top, or `None` for a layout it does not handle,
/// which then runs `op`'s libtorch forward.
pub(crate) fn forward_on_memory(
    op: &dyn Lowered,
    bottoms: &[Tensor],
    params: &[Tensor],
    compute: impl FnOnce(&Tensor) -> Option<Tensor>,
) -> Vec<Tensor> {
    let x = bottoms[0].detach().to_kind(tch::Kind::Float).contiguous();
    match compute(&x) {
        Some(top) => vec![top],
        None => tch::no_grad(|| op.forward(bottoms, params, false)),
    }
}

/// [`OwnBackward::backward`] of a one-bottom layer without learnt params
/// whose CPU path computes on memory: `compute` gets the bottom and the top
/// gradient as contiguous float32 tensors and returns the bottom gradient,
/// or `None` for a layout it does not handle, which then goes through
/// `op`'s libtorch forward and autograd.
pub(crate) fn backward_on_memory(
    op: &dyn Lowered,
    bottoms: &[Tensor],
    params: &[Tensor],
    top_grads: &[Tensor],
    compute: impl FnOnce(&Tensor, &Tensor) -> Option<Tensor>,
) -> OwnGradients {
    let bottom = &bottoms[0];
    if !bottom.requires_grad() {
        return OwnGradients { bottoms: vec![None], params: vec![] };
    }
    let x = bottom.detach().to_kind(tch::Kind::Float).contiguous();
    let dy = top_grads[0].to_kind(tch::Kind::Float).contiguous();
    let grad = compute(&x, &dy).or_else(|| {
        tch::with_grad(|| {
            let leaf = bottom.detach().set_requires_grad(true);
            let top = op.forward(&[leaf.shallow_clone()], params, true).remove(0);
            Tensor::run_backward(
                &[(top * &top_grads[0]).sum(tch::Kind::Float)],
                &[&leaf],
                false,
                false,
            )
            .pop()
        })
    });
    OwnGradients { bottoms: vec![grad], params: vec![] }
}

/// Runs `work(index, plane)` on every `plane`-sized chunk of `out` (a plane
/// of an `[N·C, …]` blob), the chunks split into one contiguous run per
/// core libtorch uses.
pub(crate) fn for_each_plane(
    out: &mut [f32],
    plane: usize,
    work: impl Fn(usize, &mut [f32]) + Sync,
) {
    crate::parallel::for_each_run(out, plane, 1, crate::parallel::threads(), |first, run| {
        for (offset, plane) in run.chunks_exact_mut(plane).enumerate() {
            work(first + offset, plane);
        }
    });
}

fn is_cpu_f32(t: &Tensor) -> bool {
    t.device() == tch::Device::Cpu && t.kind() == tch::Kind::Float && t.is_contiguous()
}

/// A 0-dim float tensor made on `device` (no host copy).
pub(crate) fn scalar(value: f64, device: tch::Device) -> Tensor {
    Tensor::full([0i64; 0].as_slice(), value, (tch::Kind::Float, device))
}

/// What lowering one node sees.
pub struct LowerCtx<'a> {
    pub node: &'a LayerNode,
    /// Bottom shapes (all known: lowering runs only on error-free graphs).
    pub bottoms: &'a [BlobShape],
    /// The node's phase is TRAIN.
    pub train: bool,
}

impl LowerCtx<'_> {
    /// The node's typed op as `T`, if it is one.
    pub fn op<T: Any>(&self) -> Option<&T> {
        self.node.op.as_ref().and_then(|op| op.as_any().downcast_ref::<T>())
    }
}

/// A family's answer: `None` — not mine; `Some(Err(what))` — mine, but
/// `what` is not implemented.
pub(crate) type Lowering = Option<Result<Box<dyn Lowered>, String>>;

/// Lowers one node (not Input: the executor feeds inputs). `Err` says what
/// is unsupported.
pub fn lower(ctx: &LowerCtx<'_>) -> Result<Box<dyn Lowered>, String> {
    let families: [fn(&LowerCtx<'_>) -> Lowering; 10] = [
        augment::lower,
        conv::lower,
        pool::lower,
        lrn::lower,
        activation::lower,
        crop::lower,
        combine::lower,
        dense::lower,
        norm::lower,
        loss::lower,
    ];
    families.iter().find_map(|lower| lower(ctx)).unwrap_or_else(|| {
        Err(format!("layer type '{}' has no runtime implementation", ctx.node.kind))
    })
}

#[cfg(test)]
pub(crate) mod testing {
    use tch::{Kind, Tensor};

    /// Held by every test that seeds or draws from libtorch's global
    /// generator (Dropout, the trainer's per-pass seeding): tests run on
    /// parallel threads, and a draw between another test's seed and its
    /// dropout would change that test's masks.
    pub fn global_generator() -> std::sync::MutexGuard<'static, ()> {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn t(values: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(values).reshape(shape)
    }

    pub fn vals(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.to_kind(Kind::Float).flatten(0, -1)).unwrap()
    }

    pub fn assert_close(got: &Tensor, want: &[f32], tol: f32) {
        let g = vals(got);
        assert_eq!(g.len(), want.len(), "length");
        for (i, (a, b)) in g.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= tol * (1.0 + b.abs()),
                "element {i}: got {a}, want {b}\n{g:?}"
            );
        }
    }

    /// d(Σ y·w)/dx for the fixed upstream gradient w = sin(1), sin(2), ….
    pub fn grad_of(x: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> Tensor {
        let x = x.detach().set_requires_grad(true);
        let y = f(&x);
        let w = (Tensor::arange(y.numel() as i64, (Kind::Float, y.device())) + 1.0)
            .reshape(y.size())
            .sin();
        (y * w).sum(Kind::Float).backward();
        x.grad()
    }
}
