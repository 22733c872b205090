//! Layer types. One module per op family holds, side by side, a layer's typed
//! parameters (with Caffe's defaults), its shape rule, its learnable-parameter
//! shapes and its diagnostics. The runtime lowers the same typed parameters
//! in a module of the same name (`runtime/src/ops/<family>.rs`).

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

/// What one parameter blob of a layer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamRole {
    /// The filters of Convolution/Deconvolution/InnerProduct, Embed's table.
    Weight,
    Bias,
    /// PReLU's learned negative slopes.
    Slope,
    /// Scale's learned factors.
    Scale,
    /// BatchNorm's stored statistics: updated by the forward pass, not
    /// by the solver.
    Mean,
    Variance,
    MovingAverageFactor,
    /// A Parameter layer's blob.
    Parameter,
}

impl ParamRole {
    /// The name lvc prints and writes (`weight`, `moving_average_factor`).
    pub fn name(self) -> &'static str {
        match self {
            ParamRole::Weight => "weight",
            ParamRole::Bias => "bias",
            ParamRole::Slope => "slope",
            ParamRole::Scale => "scale",
            ParamRole::Mean => "mean",
            ParamRole::Variance => "variance",
            ParamRole::MovingAverageFactor => "moving_average_factor",
            ParamRole::Parameter => "parameter",
        }
    }

    /// BatchNorm's statistics: computed, not learnt (no gradient, no
    /// weight decay, not counted as learnable).
    pub fn is_statistic(self) -> bool {
        matches!(self, ParamRole::Mean | ParamRole::Variance | ParamRole::MovingAverageFactor)
    }
}

impl fmt::Display for ParamRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for ParamRole {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// One learnable (or stored-statistics) blob of a layer, in Caffe's blob order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ParamShape {
    pub role: ParamRole,
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

    /// Floating-point operations of one forward pass (2 × multiply-adds),
    /// for the layers whose work is arithmetic-bound (Convolution,
    /// Deconvolution, InnerProduct); 0 for the rest, whose work is
    /// memory-bound and small.
    fn forward_flops(
        &self,
        _bottoms: &[BlobShape],
        _tops: &[BlobShape],
        _params: &[ParamShape],
    ) -> f64 {
        0.0
    }
}

/// A spanned value with a default, for parameters the user may leave out.
pub fn or_default<T: Clone>(v: Option<Spanned<T>>, default: T) -> T {
    v.map_or(default, |s| s.value)
}

/// What a layer type means for a class-count edit (`lvc set-classes`,
/// [`crate::classes`]): how its channel axis relates to the classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassRole {
    /// Bottom 0 carries one channel per class (a score consumer).
    Consumes,
    /// Chooses its top's channel count with `num_output`.
    Chooses,
    /// Chooses it with `num_output`, and keeps its bottom's class axis when
    /// `group == num_output` (FCN's per-class bilinear Deconvolution).
    ChoosesOrKeepsPerGroup,
    /// Passes bottom 0's channel axis to top 0 unchanged.
    Keeps,
    /// Joins its bottoms channel by channel: all carry the classes.
    Joins,
    /// None of the above: the class search stops here.
    Unrelated,
}

/// Whether a layer type compares a score blob (bottom 0) with labels
/// (bottom 1): the layers that tell `lvc train --dataset`, `lvc evaluate`
/// and `lvc infer` which blob holds a net's class scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    ScoresLabels,
    No,
}

/// The work of one layer pass, for `lvc time` and for comparing nets:
/// floating-point operations of the forward pass (2 × multiply-adds; 0 for
/// layers whose work is memory-bound and small), and the bytes of float32
/// blobs and parameters it reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Cost {
    pub forward_flops: f64,
    pub bytes: f64,
}

/// The one table of layer types: `Variant(params) = builder, class role,
/// scoring`. The variant's name is the Caffe type name (case-sensitive, as
/// Caffe's registry); `params` is the family struct holding the typed
/// parameters with Caffe's defaults, its shape rule and its diagnostics
/// ([`LayerOp`]); the builder gets the kind (families serve several types),
/// the layer definition and the diagnostics sink. A new row fails to build
/// until the runtime decides to lower or refuse the type
/// (`lvc_runtime::ops::lower`).
macro_rules! layer_types {
    ($($variant:ident($params:ty) = $build:expr, $role:ident, $scoring:ident;)*) => {
        /// Every layer type lvc knows, without its parameters.
        #[allow(clippy::upper_case_acronyms)] // Caffe's type names, as written in prototxt
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum OpKind {
            $($variant,)*
        }

        /// A layer's typed op: its kind with its parameters.
        #[allow(clippy::upper_case_acronyms)] // as OpKind
        #[derive(Debug)]
        pub enum Op {
            $($variant($params),)*
        }

        impl OpKind {
            /// Every kind, in table order.
            pub const ALL: &'static [OpKind] = &[$(OpKind::$variant,)*];

            /// The Caffe type name (`"Convolution"`).
            pub fn name(self) -> &'static str {
                match self {
                    $(OpKind::$variant => stringify!($variant),)*
                }
            }

            /// The kind of a Caffe type name (case-sensitive).
            pub fn from_name(name: &str) -> Option<OpKind> {
                match name {
                    $(stringify!($variant) => Some(OpKind::$variant),)*
                    _ => None,
                }
            }

            /// How the type's channel axis relates to a net's classes.
            pub fn class_role(self) -> ClassRole {
                match self {
                    $(OpKind::$variant => ClassRole::$role,)*
                }
            }

            /// Whether the type compares class scores with labels.
            pub fn scores_labels(self) -> bool {
                match self {
                    $(OpKind::$variant => Scoring::$scoring == Scoring::ScoresLabels,)*
                }
            }

            /// Builds the op from its layer definition, reporting bad
            /// parameters (`None` when one was reported).
            pub fn build(self, def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<Op> {
                match self {
                    $(OpKind::$variant => ($build)(self, def, diags).map(Op::$variant),)*
                }
            }
        }

        impl Op {
            pub fn kind(&self) -> OpKind {
                match self {
                    $(Op::$variant(_) => OpKind::$variant,)*
                }
            }

            /// The family struct's rules (shapes, parameters, coordinates).
            pub fn rules(&self) -> &dyn LayerOp {
                match self {
                    $(Op::$variant(params) => params,)*
                }
            }
        }
    };
}

layer_types! {
    Convolution(conv::ConvOp) = conv::build, Chooses, No;
    Deconvolution(conv::ConvOp) = conv::build, ChoosesOrKeepsPerGroup, No;
    Im2col(conv::Im2colOp) = |_, d, x| conv::build_im2col(d, x), Unrelated, No;
    Pooling(pool::PoolOp) = |_, d, x| pool::build(d, x), Unrelated, No;
    ROIPooling(pool::RoiPoolOp) = |_, d, x| pool::build_roi(d, x), Unrelated, No;
    SPP(pool::SppOp) = |_, d, x| pool::build_spp(d, x), Unrelated, No;
    LRN(lrn::LrnOp) = |_, d, x| lrn::build(d, x), Unrelated, No;
    ReLU(activation::ActivationOp) = activation::build, Keeps, No;
    Sigmoid(activation::ActivationOp) = activation::build, Keeps, No;
    TanH(activation::ActivationOp) = activation::build, Keeps, No;
    Power(activation::ActivationOp) = activation::build, Keeps, No;
    Dropout(activation::ActivationOp) = activation::build, Keeps, No;
    AbsVal(activation::ActivationOp) = activation::build, Keeps, No;
    BNLL(activation::ActivationOp) = activation::build, Unrelated, No;
    ELU(activation::ActivationOp) = activation::build, Keeps, No;
    Exp(activation::ActivationOp) = activation::build, Unrelated, No;
    Log(activation::ActivationOp) = activation::build, Unrelated, No;
    Threshold(activation::ActivationOp) = activation::build, Unrelated, No;
    PReLU(activation::ActivationOp) = activation::build, Unrelated, No;
    Swish(activation::ActivationOp) = activation::build, Unrelated, No;
    Clip(activation::ActivationOp) = activation::build, Unrelated, No;
    BatchNorm(norm::NormOp) = norm::build, Keeps, No;
    Scale(norm::NormOp) = norm::build, Keeps, No;
    Bias(norm::NormOp) = norm::build, Keeps, No;
    MVN(norm::NormOp) = norm::build, Unrelated, No;
    Crop(crop::CropOp) = |_, d, x| crop::build(d, x), Keeps, No;
    Eltwise(combine::CombineOp) = combine::build, Joins, No;
    Concat(combine::CombineOp) = combine::build, Unrelated, No;
    Split(combine::CombineOp) = combine::build, Keeps, No;
    Slice(combine::CombineOp) = combine::build, Unrelated, No;
    Silence(combine::CombineOp) = combine::build, Unrelated, No;
    Flatten(combine::CombineOp) = combine::build, Unrelated, No;
    Reshape(combine::CombineOp) = combine::build, Unrelated, No;
    ArgMax(combine::CombineOp) = combine::build, Consumes, No;
    Tile(combine::CombineOp) = combine::build, Unrelated, No;
    Reduction(combine::CombineOp) = combine::build, Unrelated, No;
    Embed(combine::CombineOp) = combine::build, Unrelated, No;
    BatchReindex(combine::BatchReindexOp) = |_, d, x| combine::build_batch_reindex(d, x), Unrelated, No;
    InnerProduct(dense::InnerProductOp) = |_, d, x| dense::build(d, x), Chooses, No;
    Softmax(loss::LossOp) = loss::build, Consumes, No;
    SoftmaxWithLoss(loss::LossOp) = loss::build, Consumes, ScoresLabels;
    Accuracy(loss::LossOp) = loss::build, Consumes, ScoresLabels;
    SigmoidCrossEntropyLoss(loss::LossOp) = loss::build, Unrelated, ScoresLabels;
    EuclideanLoss(loss::LossOp) = loss::build, Unrelated, No;
    ContrastiveLoss(loss::LossOp) = loss::build, Unrelated, No;
    HingeLoss(loss::LossOp) = loss::build, Unrelated, No;
    InfogainLoss(loss::LossOp) = loss::build, Unrelated, No;
    MultinomialLogisticLoss(loss::LossOp) = loss::build, Unrelated, No;
    SmoothL1Loss(loss::LossOp) = loss::build, Unrelated, No;
    Dice(loss::LossOp) = loss::build, Consumes, ScoresLabels;
    DiceLoss(loss::LossOp) = loss::build, Consumes, ScoresLabels;
    Input(data::DataOp) = data::build, Unrelated, No;
    DummyData(data::DataOp) = data::build, Unrelated, No;
    Data(data::DataOp) = data::build, Unrelated, No;
    ImageData(data::DataOp) = data::build, Unrelated, No;
    HDF5Data(data::DataOp) = data::build, Unrelated, No;
    WindowData(data::DataOp) = data::build, Unrelated, No;
    MemoryData(data::DataOp) = data::build, Unrelated, No;
    // DIGITS' Dice metric was a Python layer comparing scores with labels.
    Python(data::DataOp) = data::build, Unrelated, ScoresLabels;
    Augment(data::AugmentOp) = |_, d, x| data::build_augment(d, x), Unrelated, No;
    Parameter(data::ParameterOp) = |_, d, x| data::build_parameter(d, x), Unrelated, No;
    HDF5Output(data::Hdf5OutputOp) = |_, d, x| data::build_hdf5_output(d, x), Unrelated, No;
}

impl Op {
    /// Top shapes from bottom shapes; `None` when an error was reported.
    pub fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        self.rules().infer_shapes(ctx)
    }
    /// Learnable blobs in Caffe's order, given the bottom shapes.
    pub fn param_shapes(&self, bottoms: &[BlobShape]) -> Vec<ParamShape> {
        self.rules().param_shapes(bottoms)
    }
    /// See [`LayerOp::default_loss_weight`].
    pub fn default_loss_weight(&self, top: usize) -> f64 {
        self.rules().default_loss_weight(top)
    }
    /// See [`LayerOp::coord_map`].
    pub fn coord_map(&self) -> Option<Vec<AxisMap>> {
        self.rules().coord_map()
    }
    /// See [`LayerOp::input_shapes`].
    pub fn input_shapes(&self) -> Option<Vec<Option<BlobShape>>> {
        self.rules().input_shapes()
    }
    /// The work of one forward pass over blobs of these shapes.
    pub fn cost(&self, bottoms: &[BlobShape], tops: &[BlobShape], params: &[ParamShape]) -> Cost {
        let elements: i64 = bottoms
            .iter()
            .chain(tops)
            .map(BlobShape::count)
            .chain(params.iter().map(|p| p.shape.count()))
            .fold(0i64, i64::saturating_add);
        Cost {
            forward_flops: self.rules().forward_flops(bottoms, tops, params),
            bytes: 4.0 * elements as f64,
        }
    }
}

/// Every type name lvc builds (for "unknown layer type; did you mean …").
pub fn known_types() -> impl Iterator<Item = &'static str> {
    OpKind::ALL.iter().map(|k| k.name())
}

#[cfg(test)]
mod tests {
    use super::{known_types, ClassRole, OpKind};

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
    fn table_covers_caffe_and_lvc_types() {
        for t in CAFFE_TYPES.split(", ") {
            assert_eq!(OpKind::from_name(t).is_some(), !NOT_BUILT.contains(&t), "{t}");
        }
        for t in ["Dice", "DiceLoss", "Augment", "Python", "ROIPooling", "SmoothL1Loss"] {
            assert!(OpKind::from_name(t).is_some(), "{t}");
        }
        assert!(OpKind::from_name("LocalResponseNorm").is_none());
        assert!(OpKind::from_name("lrn").is_none());
        for &kind in OpKind::ALL {
            assert_eq!(OpKind::from_name(kind.name()), Some(kind));
        }
        let mut names: Vec<&str> = known_types().collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate type names");
    }

    /// Each family's builder builds exactly the kind the table sends it.
    #[test]
    fn every_kind_builds_itself() {
        // ROIPooling needs its fork-only param block (tested in `pool`).
        for &kind in OpKind::ALL.iter().filter(|k| **k != OpKind::ROIPooling) {
            let body = match kind {
                OpKind::Convolution | OpKind::Deconvolution => {
                    "convolution_param { num_output: 1 kernel_size: 1 }"
                }
                OpKind::Im2col => "convolution_param { kernel_size: 1 }",
                OpKind::Pooling => "pooling_param { kernel_size: 1 }",
                OpKind::InnerProduct => "inner_product_param { num_output: 1 }",
                OpKind::Clip => "clip_param { min: 0 max: 1 }",
                OpKind::Tile => "tile_param { tiles: 1 }",
                OpKind::Embed => "embed_param { num_output: 1 input_dim: 1 }",
                OpKind::SPP => "spp_param { pyramid_height: 1 }",
                _ => "",
            };
            let t = kind.name();
            let text = format!("name: \"x\" type: \"{t}\" top: \"y\" {body}");
            let (_, def) = super::testing::layer(&text);
            // Built from (nearly) empty blocks: under test, a `*_or_default`
            // read of a field without a declared default fails here.
            let op =
                kind.build(&def, &mut Vec::new()).unwrap_or_else(|| panic!("{t} does not build"));
            assert_eq!(op.kind(), kind);
            assert_eq!(op.rules().type_name(), t);
        }
    }

    /// The class search's roles, as `lvc set-classes` has always used them.
    #[test]
    fn class_roles() {
        let with = |role: ClassRole| -> Vec<&str> {
            OpKind::ALL.iter().filter(|k| k.class_role() == role).map(|k| k.name()).collect()
        };
        assert_eq!(
            with(ClassRole::Consumes),
            ["ArgMax", "Softmax", "SoftmaxWithLoss", "Accuracy", "Dice", "DiceLoss"]
        );
        assert_eq!(with(ClassRole::Chooses), ["Convolution", "InnerProduct"]);
        assert_eq!(with(ClassRole::ChoosesOrKeepsPerGroup), ["Deconvolution"]);
        assert_eq!(with(ClassRole::Joins), ["Eltwise"]);
        let scoring: Vec<&str> =
            OpKind::ALL.iter().filter(|k| k.scores_labels()).map(|k| k.name()).collect();
        assert_eq!(
            scoring,
            [
                "SoftmaxWithLoss",
                "Accuracy",
                "SigmoidCrossEntropyLoss",
                "Dice",
                "DiceLoss",
                "Python"
            ]
        );
    }
}
