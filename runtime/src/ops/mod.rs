//! Lowered layers: one module per op family, mirroring
//! `lvc_compiler::ops::<family>`. Each lowered op is a small struct holding the
//! resolved Caffe parameters and computing its tops with libtorch; backward
//! comes from libtorch's autograd, except where Caffe's gradient differs from
//! the derivative of the forward formula (noted in each op).

use std::fmt;

use lvc_compiler::ir::LayerNode;
use lvc_compiler::ops::{BlobShape, Op};
use tch::Tensor;

pub(crate) use crate::host::{cpu_f32, cpu_f32_mut};

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

/// What lowering one node gives: the op ready to run, or what the runtime
/// does not implement (reported as `lvc::runtime::unsupported`).
pub type LowerResult = Result<Box<dyn Lowered>, String>;

/// Lowers one node (not a data source: the executor feeds those). One arm
/// per layer type: a type added to `lvc_compiler::ops`'s table does not
/// build here until it is lowered or refused.
pub fn lower(ctx: &LowerCtx<'_>) -> LowerResult {
    if ctx.node.inserted_split {
        return Ok(Box::new(combine::Split { tops: ctx.node.tops.len() }));
    }
    let Some(op) = &ctx.node.op else { return Err(no_runtime(&ctx.node.kind)) };
    match op {
        Op::Convolution(p) | Op::Deconvolution(p) => conv::lower(p, ctx),
        Op::Pooling(p) => pool::lower(p, ctx),
        Op::LRN(p) => lrn::lower(p),
        Op::ReLU(p)
        | Op::Sigmoid(p)
        | Op::TanH(p)
        | Op::Power(p)
        | Op::Dropout(p)
        | Op::AbsVal(p)
        | Op::BNLL(p)
        | Op::ELU(p)
        | Op::Exp(p)
        | Op::Log(p)
        | Op::Threshold(p)
        | Op::PReLU(p)
        | Op::Swish(p)
        | Op::Clip(p) => activation::lower(p),
        Op::BatchNorm(p) | Op::Scale(p) | Op::Bias(p) | Op::MVN(p) => norm::lower(p, ctx),
        Op::Crop(p) => crop::lower(p, ctx),
        Op::Eltwise(p)
        | Op::Concat(p)
        | Op::Split(p)
        | Op::Slice(p)
        | Op::Silence(p)
        | Op::Flatten(p)
        | Op::Reshape(p)
        | Op::ArgMax(p)
        | Op::Tile(p)
        | Op::Reduction(p) => combine::lower(p, ctx),
        Op::InnerProduct(p) => dense::lower(p, ctx),
        Op::Softmax(p)
        | Op::SoftmaxWithLoss(p)
        | Op::Accuracy(p)
        | Op::SigmoidCrossEntropyLoss(p)
        | Op::EuclideanLoss(p)
        | Op::Dice(p)
        | Op::DiceLoss(p) => loss::lower(p, ctx),
        Op::Augment(p) => augment::lower(p, ctx),
        // Shape-checked by the compiler, not run.
        Op::Embed(_)
        | Op::ContrastiveLoss(_)
        | Op::HingeLoss(_)
        | Op::InfogainLoss(_)
        | Op::MultinomialLogisticLoss(_)
        | Op::SmoothL1Loss(_) => Err(not_run(op.kind().name())),
        // A data layer with bottoms (a Python layer computing from blobs)
        // or a layer with no lowering at all.
        Op::Input(_)
        | Op::DummyData(_)
        | Op::Data(_)
        | Op::ImageData(_)
        | Op::HDF5Data(_)
        | Op::WindowData(_)
        | Op::MemoryData(_)
        | Op::Python(_)
        | Op::Im2col(_)
        | Op::ROIPooling(_)
        | Op::SPP(_)
        | Op::BatchReindex(_)
        | Op::Parameter(_)
        | Op::HDF5Output(_) => Err(no_runtime(op.kind().name())),
    }
}

/// Whether a node is a data source the executor feeds (its tops are
/// `Net::forward`'s inputs): a data layer without bottoms.
pub fn is_fed(node: &LayerNode) -> bool {
    node.bottoms.is_empty()
        && matches!(
            node.op,
            Some(
                Op::Input(_)
                    | Op::DummyData(_)
                    | Op::Data(_)
                    | Op::ImageData(_)
                    | Op::HDF5Data(_)
                    | Op::WindowData(_)
                    | Op::MemoryData(_)
                    | Op::Python(_)
            )
        )
}

/// The refusal of a type the compiler checks and the runtime does not run.
pub(crate) fn not_run(type_name: &str) -> String {
    format!("{type_name} is parsed and shape-checked but has no runtime implementation")
}

fn no_runtime(kind: &str) -> String {
    format!("layer type '{kind}' has no runtime implementation")
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

#[cfg(test)]
mod lowering_tests {
    use lvc_compiler::ir::LayerNode;
    use lvc_compiler::ops::{BlobShape, OpKind};
    use lvc_compiler::schema::{load_net, LoadOptions, Phase};
    use lvc_compiler::SourceFile;

    use super::{is_fed, lower, LowerCtx};

    /// What the runtime does with a layer of this kind: "fed" (a data
    /// source without bottoms, its tops are the net's inputs), "lowered",
    /// or the refusal's reason.
    fn status(kind: OpKind) -> String {
        let t = kind.name();
        let (params, bottoms): (&str, &[&[i64]]) = match kind {
            OpKind::Convolution | OpKind::Deconvolution => {
                ("convolution_param { num_output: 2 kernel_size: 1 }", &[&[1, 2, 4, 4]])
            }
            OpKind::Im2col => ("convolution_param { kernel_size: 1 }", &[&[1, 2, 4, 4]]),
            OpKind::Pooling => ("pooling_param { kernel_size: 2 stride: 2 }", &[&[1, 2, 4, 4]]),
            OpKind::ROIPooling => {
                ("roi_pooling_param { pooled_h: 2 pooled_w: 2 }", &[&[1, 2, 4, 4], &[1, 5]])
            }
            OpKind::InnerProduct => ("inner_product_param { num_output: 2 }", &[&[1, 2, 4, 4]]),
            OpKind::Clip => ("clip_param { min: 0 max: 1 }", &[&[1, 2, 4, 4]]),
            OpKind::Tile => ("tile_param { tiles: 2 }", &[&[1, 2, 4, 4]]),
            OpKind::Embed => ("embed_param { num_output: 2 input_dim: 4 }", &[&[1, 4]]),
            OpKind::SPP => ("spp_param { pyramid_height: 1 }", &[&[1, 2, 4, 4]]),
            OpKind::Crop => ("", &[&[1, 2, 4, 4], &[1, 2, 2, 2]]),
            OpKind::Input
            | OpKind::DummyData
            | OpKind::Data
            | OpKind::ImageData
            | OpKind::HDF5Data
            | OpKind::WindowData
            | OpKind::MemoryData
            | OpKind::Python
            | OpKind::Parameter => ("", &[]),
            OpKind::Eltwise
            | OpKind::Concat
            | OpKind::BatchReindex
            | OpKind::HDF5Output
            | OpKind::SoftmaxWithLoss
            | OpKind::Accuracy
            | OpKind::SigmoidCrossEntropyLoss
            | OpKind::EuclideanLoss
            | OpKind::ContrastiveLoss
            | OpKind::HingeLoss
            | OpKind::InfogainLoss
            | OpKind::MultinomialLogisticLoss
            | OpKind::SmoothL1Loss
            | OpKind::Dice
            | OpKind::DiceLoss => ("", &[&[1, 2, 4, 4], &[1, 2, 4, 4]]),
            _ => ("", &[&[1, 2, 4, 4]]),
        };
        let text = format!("layer {{ name: \"x\" type: \"{t}\" top: \"y\" {params} }}");
        let source = SourceFile::new("status.prototxt", text);
        let def = load_net(&source, &LoadOptions { lenient: true })
            .0
            .and_then(|net| net.layers.into_iter().next())
            .unwrap_or_else(|| panic!("{t} loads"));
        let op = kind.build(&def, &mut Vec::new()).unwrap_or_else(|| panic!("{t} builds"));
        let node = LayerNode {
            name: "x".into(),
            kind: t.into(),
            op: Some(op),
            def_index: Some(0),
            span: def.span,
            phase: Phase::Test,
            bottoms: (0..bottoms.len()).map(Some).collect(),
            tops: vec![bottoms.len()],
            loss_weights: vec![0.0],
            params: Vec::new(),
            inserted_split: false,
            crop_offsets: (kind == OpKind::Crop).then(|| vec![0, 0, 1, 1]),
        };
        if is_fed(&node) {
            return "fed".into();
        }
        let shapes: Vec<BlobShape> = bottoms.iter().map(|b| BlobShape(b.to_vec())).collect();
        match lower(&LowerCtx { node: &node, bottoms: &shapes, train: false }) {
            Ok(_) => "lowered".into(),
            Err(why) => why,
        }
    }

    /// Every layer type the compiler knows and what the runtime does with it.
    #[test]
    fn every_layer_type_is_lowered_fed_or_refused() {
        let table: Vec<String> =
            OpKind::ALL.iter().map(|&k| format!("{}: {}", k.name(), status(k))).collect();
        let refused = |t: &str| format!("{t}: layer type '{t}' has no runtime implementation");
        let not_run = |t: &str| {
            format!("{t}: {t} is parsed and shape-checked but has no runtime implementation")
        };
        let mut want: Vec<String> = [
            "Convolution",
            "Deconvolution",
            "Pooling",
            "LRN",
            "ReLU",
            "Sigmoid",
            "TanH",
            "Power",
            "Dropout",
            "AbsVal",
            "BNLL",
            "ELU",
            "Exp",
            "Log",
            "Threshold",
            "PReLU",
            "Swish",
            "Clip",
            "BatchNorm",
            "Scale",
            "Bias",
            "MVN",
            "Crop",
            "Eltwise",
            "Concat",
            "Split",
            "Slice",
            "Silence",
            "Flatten",
            "Reshape",
            "ArgMax",
            "Tile",
            "Reduction",
            "InnerProduct",
            "Softmax",
            "SoftmaxWithLoss",
            "Accuracy",
            "SigmoidCrossEntropyLoss",
            "EuclideanLoss",
            "Dice",
            "DiceLoss",
            "Augment",
        ]
        .iter()
        .map(|t| format!("{t}: lowered"))
        .collect();
        want.extend(
            [
                "Input",
                "DummyData",
                "Data",
                "ImageData",
                "HDF5Data",
                "WindowData",
                "MemoryData",
                "Python",
            ]
            .iter()
            .map(|t| format!("{t}: fed")),
        );
        want.extend(
            ["Im2col", "ROIPooling", "SPP", "BatchReindex", "Parameter", "HDF5Output"].map(refused),
        );
        want.extend(
            [
                "Embed",
                "ContrastiveLoss",
                "HingeLoss",
                "InfogainLoss",
                "MultinomialLogisticLoss",
                "SmoothL1Loss",
            ]
            .map(not_run),
        );
        let mut got = table.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{table:#?}");
    }
}
