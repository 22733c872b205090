//! Layer types. One module per op family holds, side by side, a layer's typed
//! parameters (with Caffe's defaults), its shape rule, its learnable-parameter
//! shapes and its diagnostics. The runtime lowers the same typed parameters
//! in a module of the same name (`runtime/src/ops/<family>.rs`).

use std::any::Any;
use std::fmt;

use crate::diag::Diagnostic;
use crate::schema::{LayerDef, Spanned};

pub mod activation;
pub mod combine;
pub mod common;
pub mod conv;
pub mod crop;
pub mod data;
pub mod dense;
#[cfg(test)]
mod golden_tests;
pub mod loss;
pub mod lrn;
pub mod norm;
pub mod pool;
#[cfg(test)]
pub mod testing;

/// The most elements one blob may hold: Caffe's `Blob::Reshape` refuses more
/// than `INT_MAX` ("blob size exceeds INT_MAX"), and each dimension is a C++
/// `int`. lvc keeps Caffe's limit, although its own kernels index with 64
/// bits (and OpenBLAS is only called where every size fits 32 bits): a net
/// lvc accepts is a net Caffe can load, its weights can be a `.caffemodel`,
/// and with every blob and parameter under 2^31 elements the shape
/// arithmetic of a whole net stays far inside `i64`. The IR reports any top
/// or parameter beyond it (`lvc::shape::too_large`).
pub const MAX_BLOB_COUNT: i64 = i32::MAX as i64;

/// The product of `dims`; `None` when one is negative or the product
/// overflows `i64`. (A zero anywhere gives 0, whatever the others are, as in
/// Caffe, which stops checking sizes once the count is 0.)
pub fn checked_product(dims: &[i64]) -> Option<i64> {
    if dims.iter().any(|&d| d < 0) {
        return None;
    }
    if dims.contains(&0) {
        return Some(0);
    }
    dims.iter().try_fold(1i64, |acc, &d| acc.checked_mul(d))
}

/// The product of `dims`, saturating at `i64::MAX`, for comparing sizes of
/// shapes the IR already accepted (whose products of a few axes can only
/// overflow beside a zero-sized axis).
pub fn saturating_product(dims: &[i64]) -> i64 {
    checked_product(dims).unwrap_or(i64::MAX)
}

/// An N-D blob shape (Caffe's `vector<int>`), usually (N, C, H, W).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct BlobShape(pub Vec<i64>);

impl BlobShape {
    pub fn dims(&self) -> &[i64] {
        &self.0
    }
    pub fn rank(&self) -> usize {
        self.0.len()
    }
    /// The element count, saturating at `i64::MAX` (never wrapping). Every
    /// shape the IR accepts holds at most [`MAX_BLOB_COUNT`] elements, so for
    /// those this is exact; rules that must tell an overflow apart use
    /// [`BlobShape::checked_count`].
    pub fn count(&self) -> i64 {
        self.checked_count().unwrap_or(i64::MAX)
    }
    /// The element count; `None` when a dimension is negative or the product
    /// overflows `i64`.
    pub fn checked_count(&self) -> Option<i64> {
        checked_product(&self.0)
    }
    /// Python-style axis (negative counts from the end) → index, if valid.
    pub fn canonical_axis(&self, axis: i64) -> Option<usize> {
        let rank = self.rank() as i64;
        let a = if axis < 0 { axis + rank } else { axis };
        (0..rank).contains(&a).then_some(a as usize)
    }
}

impl fmt::Display for BlobShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.0.iter().map(i64::to_string).collect();
        write!(f, "{}", dims.join("×"))
    }
}

/// How a learnable blob is initialised: Caffe's `FillerParameter`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FillerDef {
    /// `constant`, `gaussian`, `xavier`, `msra`, `uniform`, `bilinear`, `positive_unitball`.
    pub kind: String,
    pub value: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: f64,
    pub sparse: i64,
    /// `FAN_IN`, `FAN_OUT` or `AVERAGE`.
    pub variance_norm: String,
}

/// One learnable (or stored-statistics) blob of a layer, in Caffe's blob order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ParamShape {
    /// What the blob is: `weight`, `bias`, `mean`, `variance`, `moving_average_factor`, …
    pub role: &'static str,
    pub shape: BlobShape,
    pub filler: Option<FillerDef>,
}

/// `x_out = scale · x_in + shift` along one spatial axis, in continuous pixel
/// coordinates. Convolution/pooling: `scale = 1/S`, `shift = -((KE-1)/2 - P)/S`;
/// deconvolution: `scale = S`, `shift = (KE-1)/2 - P`; crop: `scale = 1`,
/// `shift = -offset`; elementwise layers: identity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisMap {
    pub scale: f64,
    pub shift: f64,
}

impl AxisMap {
    pub const IDENTITY: AxisMap = AxisMap { scale: 1.0, shift: 0.0 };
    /// `self` after `first`: x ↦ self(first(x)).
    pub fn after(self, first: AxisMap) -> AxisMap {
        AxisMap { scale: self.scale * first.scale, shift: self.scale * first.shift + self.shift }
    }
    pub fn inverse(self) -> AxisMap {
        AxisMap { scale: 1.0 / self.scale, shift: -self.shift / self.scale }
    }
}

/// What a shape rule sees.
pub struct ShapeCtx<'a> {
    pub layer: &'a LayerDef,
    /// Shapes of the bottoms, in order.
    pub bottoms: &'a [BlobShape],
    /// Findings go here; a rule reports every problem it can see.
    pub diags: &'a mut Vec<Diagnostic>,
}

impl ShapeCtx<'_> {
    /// The span of bottom `i` as written (the layer's `type:` if the layer
    /// lists fewer bottoms than it was given).
    pub fn bottom_span(&self, i: usize) -> lvc_grammar::Span {
        self.layer.bottoms.get(i).map_or(self.layer.kind.span, |b| b.span)
    }
}

/// A layer type's typed parameters and rules. Implemented once per layer type
/// (several types of one family may share a module).
pub trait LayerOp: fmt::Debug + Send + Sync + 'static {
    /// The Caffe type name (`"Convolution"`).
    fn type_name(&self) -> &'static str;

    /// Top shapes from bottom shapes; `None` when an error was reported.
    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>>;

    /// Learnable blobs in Caffe's order, given the bottom shapes.
    fn param_shapes(&self, _bottoms: &[BlobShape]) -> Vec<ParamShape> {
        Vec::new()
    }

    /// Loss weight of top `i` when the layer does not set `loss_weight`
    /// (1 for top 0 of loss layers, else 0).
    fn default_loss_weight(&self, _top: usize) -> f64 {
        0.0
    }

    /// How this layer moves spatial coordinates (FCN's `coord_map`), one entry
    /// per spatial axis; `None` when the layer has no spatial correspondence
    /// (InnerProduct, Flatten, …), which ends a crop-offset search.
    fn coord_map(&self) -> Option<Vec<AxisMap>> {
        None
    }

    /// For layers whose tops are net inputs (Input, DummyData, the data
    /// readers, a Python layer without bottoms): one entry per top, the shape
    /// where the prototxt fixes it and `None` where it is known only at run
    /// time. The IR fills `None` entries from `--input-shape NAME=…` and uses
    /// those shapes instead of calling `infer_shapes`, which reports
    /// `lvc::shape::unknown_input` for any top left unknown. `None` (the
    /// default) for layers that compute their tops from their bottoms.
    fn input_shapes(&self) -> Option<Vec<Option<BlobShape>>> {
        None
    }

    /// For the runtime: downcast to the concrete parameter struct.
    fn as_any(&self) -> &dyn Any;
}

/// Builds an op from its layer definition, reporting bad parameters.
pub type OpBuilder = fn(&LayerDef, &mut Vec<Diagnostic>) -> Option<Box<dyn LayerOp>>;

/// A spanned value with a default, for parameters the user may leave out.
pub fn or_default<T: Clone>(v: Option<Spanned<T>>, default: T) -> T {
    v.map_or(default, |s| s.value)
}

/// Every layer type lvc knows, with its builder.
const REGISTRY: &[(&str, OpBuilder)] = &[
    ("Convolution", conv::build_convolution),
    ("Deconvolution", conv::build_deconvolution),
    ("Im2col", conv::build_im2col),
    ("Pooling", pool::build),
    ("ROIPooling", pool::build_roi),
    ("SPP", pool::build_spp),
    ("LRN", lrn::build),
    ("ReLU", activation::build),
    ("Sigmoid", activation::build),
    ("TanH", activation::build),
    ("Power", activation::build),
    ("Dropout", activation::build),
    ("AbsVal", activation::build),
    ("BNLL", activation::build),
    ("ELU", activation::build),
    ("Exp", activation::build),
    ("Log", activation::build),
    ("Threshold", activation::build),
    ("PReLU", activation::build),
    ("Swish", activation::build),
    ("Clip", activation::build),
    ("BatchNorm", norm::build),
    ("Scale", norm::build),
    ("Bias", norm::build),
    ("MVN", norm::build),
    ("Crop", crop::build),
    ("Eltwise", combine::build),
    ("Concat", combine::build),
    ("Split", combine::build),
    ("Slice", combine::build),
    ("Silence", combine::build),
    ("Flatten", combine::build),
    ("Reshape", combine::build),
    ("ArgMax", combine::build),
    ("Tile", combine::build),
    ("Reduction", combine::build),
    ("Embed", combine::build),
    ("BatchReindex", combine::build_batch_reindex),
    ("InnerProduct", dense::build),
    ("Softmax", loss::build),
    ("SoftmaxWithLoss", loss::build),
    ("Accuracy", loss::build),
    ("SigmoidCrossEntropyLoss", loss::build),
    ("EuclideanLoss", loss::build),
    ("ContrastiveLoss", loss::build),
    ("HingeLoss", loss::build),
    ("InfogainLoss", loss::build),
    ("MultinomialLogisticLoss", loss::build),
    ("SmoothL1Loss", loss::build),
    ("Dice", loss::build),
    ("DiceLoss", loss::build),
    ("Input", data::build),
    ("DummyData", data::build),
    ("Data", data::build),
    ("ImageData", data::build),
    ("HDF5Data", data::build),
    ("WindowData", data::build),
    ("MemoryData", data::build),
    ("Python", data::build),
    ("Augment", data::build_augment),
    ("Parameter", data::build_parameter),
    ("HDF5Output", data::build_hdf5_output),
];

/// The builder for a layer type (case-sensitive, as Caffe's registry).
pub fn builder_for(type_name: &str) -> Option<OpBuilder> {
    REGISTRY.iter().find(|(name, _)| *name == type_name).map(|(_, b)| *b)
}

/// Every type name lvc builds (for "unknown layer type; did you mean …").
pub fn known_types() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::{builder_for, known_types};

    /// BVLC Caffe's registry (from the golden `Unknown layer type` message).
    const CAFFE_TYPES: &str = "AbsVal, Accuracy, ArgMax, BNLL, BatchNorm, BatchReindex, Bias, Clip, Concat, \
        ContrastiveLoss, Convolution, Crop, Data, Deconvolution, Dropout, DummyData, ELU, Eltwise, Embed, \
        EuclideanLoss, Exp, Filter, Flatten, HDF5Data, HDF5Output, HingeLoss, Im2col, InfogainLoss, \
        InnerProduct, Input, LRN, LSTM, LSTMUnit, Log, MVN, MemoryData, MultinomialLogisticLoss, PReLU, \
        Parameter, Pooling, Power, RNN, ReLU, Reduction, Reshape, SPP, Scale, Sigmoid, \
        SigmoidCrossEntropyLoss, Silence, Slice, Softmax, SoftmaxWithLoss, Split, Swish, TanH, Threshold, Tile";

    /// Caffe types lvc does not build: recurrent nets, and Filter (its top
    /// size depends on the data).
    const NOT_BUILT: &[&str] = &["Filter", "LSTM", "LSTMUnit", "RNN"];

    #[test]
    fn registry_covers_caffe_and_lvc_types() {
        for t in CAFFE_TYPES.split(", ") {
            assert_eq!(builder_for(t).is_some(), !NOT_BUILT.contains(&t), "{t}");
        }
        for t in ["Dice", "DiceLoss", "Augment", "Python", "ROIPooling", "SmoothL1Loss"] {
            assert!(builder_for(t).is_some(), "{t}");
        }
        assert!(builder_for("LocalResponseNorm").is_none());
        assert!(builder_for("lrn").is_none());
        let mut names: Vec<&str> = known_types().collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate registry entries");
    }

    /// Each family's builder accepts exactly the types the registry sends it.
    #[test]
    fn every_registered_type_reports_its_own_name() {
        // ROIPooling needs its fork-only param block (tested in `pool`).
        for t in known_types().filter(|t| *t != "ROIPooling") {
            let body = match t {
                "Convolution" | "Deconvolution" => {
                    "convolution_param { num_output: 1 kernel_size: 1 }"
                }
                "Im2col" => "convolution_param { kernel_size: 1 }",
                "Pooling" => "pooling_param { kernel_size: 1 }",
                "InnerProduct" => "inner_product_param { num_output: 1 }",
                "Clip" => "clip_param { min: 0 max: 1 }",
                "Tile" => "tile_param { tiles: 1 }",
                "Embed" => "embed_param { num_output: 1 input_dim: 1 }",
                "SPP" => "spp_param { pyramid_height: 1 }",
                _ => "",
            };
            let text = format!("name: \"x\" type: \"{t}\" top: \"y\" {body}");
            let (_, def) = super::testing::layer(&text);
            let builder = builder_for(t).expect("registered");
            let op = builder(&def, &mut Vec::new()).unwrap_or_else(|| panic!("{t} does not build"));
            assert_eq!(op.type_name(), t);
        }
    }
}
