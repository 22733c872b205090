//! The per-layer `*_param` messages, fillers, transformation and loss
//! parameters (alphabetical, as in caffe.proto).

use super::lvc_ext;
use super::net::BLOB_SHAPE;
use super::*;

// caffe.proto declares one `Engine` enum per message; they are identical.
enumeration!(ENGINE = "Engine" [DEFAULT = 0, CAFFE = 1, CUDNN = 2]);
enumeration!(POOL_METHOD = "PoolMethod" [MAX = 0, AVE = 1, STOCHASTIC = 2]);

enumeration!(VARIANCE_NORM = "VarianceNorm" [FAN_IN = 0, FAN_OUT = 1, AVERAGE = 2]);

message!(FILLER_PARAMETER = "FillerParameter" [
    opt(1, "type", STRING, S("constant")),
    opt(2, "value", FLOAT, F(0.0)),
    opt(3, "min", FLOAT, F(0.0)),
    opt(4, "max", FLOAT, F(1.0)),
    opt(5, "mean", FLOAT, F(0.0)),
    opt(6, "std", FLOAT, F(1.0)),
    opt(7, "sparse", INT32, I(-1)),
    opt(8, "variance_norm", en(&VARIANCE_NORM), E("FAN_IN")),
]);

message!(TRANSFORMATION_PARAMETER = "TransformationParameter" [
    opt(1, "scale", FLOAT, F(1.0)),
    opt(2, "mirror", BOOL, B(false)),
    opt(3, "crop_size", UINT32, I(0)),
    opt(4, "mean_file", STRING, NONE),
    rep(5, "mean_value", FLOAT),
    opt(6, "force_color", BOOL, B(false)),
    opt(7, "force_gray", BOOL, B(false)),
]);

enumeration!(NORMALIZATION_MODE = "NormalizationMode" [FULL = 0, VALID = 1, BATCH_SIZE = 2, NONE = 3]);

message!(LOSS_PARAMETER = "LossParameter" [
    opt(1, "ignore_label", INT32, NONE),
    opt(2, "normalize", BOOL, NONE),
    opt(3, "normalization", en(&NORMALIZATION_MODE), E("VALID")),
    // lvc extension: per-class weights for SoftmaxWithLoss.
    lvc_ext(rep(1001, "class_weight", FLOAT)),
]);

message!(ACCURACY_PARAMETER = "AccuracyParameter" [
    opt(1, "top_k", UINT32, I(1)),
    opt(2, "axis", INT32, I(1)),
    opt(3, "ignore_label", INT32, NONE),
]);

message!(ARG_MAX_PARAMETER = "ArgMaxParameter" [
    opt(1, "out_max_val", BOOL, B(false)),
    opt(2, "top_k", UINT32, I(1)),
    opt(3, "axis", INT32, NONE),
]);

message!(BATCH_NORM_PARAMETER = "BatchNormParameter" [
    opt(1, "use_global_stats", BOOL, NONE),
    opt(2, "moving_average_fraction", FLOAT, F(0.999)),
    opt(3, "eps", FLOAT, F(1e-5)),
]);

message!(BIAS_PARAMETER = "BiasParameter" [
    opt(1, "axis", INT32, I(1)),
    opt(2, "num_axes", INT32, I(1)),
    opt(3, "filler", msg(&FILLER_PARAMETER), NONE),
]);

message!(CLIP_PARAMETER = "ClipParameter" [
    req(1, "min", FLOAT),
    req(2, "max", FLOAT),
]);

message!(CONCAT_PARAMETER = "ConcatParameter" [
    opt(1, "concat_dim", UINT32, I(1)),
    opt(2, "axis", INT32, I(1)),
]);

message!(CONTRASTIVE_LOSS_PARAMETER = "ContrastiveLossParameter" [
    opt(1, "margin", FLOAT, F(1.0)),
    opt(2, "legacy_version", BOOL, B(false)),
]);

message!(CONVOLUTION_PARAMETER = "ConvolutionParameter" [
    opt(1, "num_output", UINT32, NONE),
    opt(2, "bias_term", BOOL, B(true)),
    rep(3, "pad", UINT32),
    rep(4, "kernel_size", UINT32),
    opt(5, "group", UINT32, I(1)),
    rep(6, "stride", UINT32),
    opt(7, "weight_filler", msg(&FILLER_PARAMETER), NONE),
    opt(8, "bias_filler", msg(&FILLER_PARAMETER), NONE),
    opt(9, "pad_h", UINT32, I(0)),
    opt(10, "pad_w", UINT32, I(0)),
    opt(11, "kernel_h", UINT32, NONE),
    opt(12, "kernel_w", UINT32, NONE),
    opt(13, "stride_h", UINT32, NONE),
    opt(14, "stride_w", UINT32, NONE),
    opt(15, "engine", en(&ENGINE), E("DEFAULT")),
    opt(16, "axis", INT32, I(1)),
    opt(17, "force_nd_im2col", BOOL, B(false)),
    rep(18, "dilation", UINT32),
]);

message!(CROP_PARAMETER = "CropParameter" [
    opt(1, "axis", INT32, I(2)),
    rep(2, "offset", UINT32),
]);

enumeration!(DB = "DB" [LEVELDB = 0, LMDB = 1]);

message!(DATA_PARAMETER = "DataParameter" [
    opt(1, "source", STRING, NONE),
    opt(2, "scale", FLOAT, F(1.0)),
    opt(3, "mean_file", STRING, NONE),
    opt(4, "batch_size", UINT32, NONE),
    opt(5, "crop_size", UINT32, I(0)),
    opt(6, "mirror", BOOL, B(false)),
    opt(7, "rand_skip", UINT32, I(0)),
    opt(8, "backend", en(&DB), E("LEVELDB")),
    opt(9, "force_encoded_color", BOOL, B(false)),
    opt(10, "prefetch", UINT32, I(4)),
]);

message!(DROPOUT_PARAMETER = "DropoutParameter"[opt(1, "dropout_ratio", FLOAT, F(0.5))]);

message!(DUMMY_DATA_PARAMETER = "DummyDataParameter" [
    rep(1, "data_filler", msg(&FILLER_PARAMETER)),
    rep(2, "num", UINT32),
    rep(3, "channels", UINT32),
    rep(4, "height", UINT32),
    rep(5, "width", UINT32),
    rep(6, "shape", msg(&BLOB_SHAPE)),
]);

enumeration!(ELTWISE_OP = "EltwiseOp" [PROD = 0, SUM = 1, MAX = 2]);

message!(ELTWISE_PARAMETER = "EltwiseParameter" [
    opt(1, "operation", en(&ELTWISE_OP), E("SUM")),
    rep(2, "coeff", FLOAT),
    opt(3, "stable_prod_grad", BOOL, B(true)),
]);

message!(ELU_PARAMETER = "ELUParameter"[opt(1, "alpha", FLOAT, F(1.0))]);

message!(EMBED_PARAMETER = "EmbedParameter" [
    opt(1, "num_output", UINT32, NONE),
    opt(2, "input_dim", UINT32, NONE),
    opt(3, "bias_term", BOOL, B(true)),
    opt(4, "weight_filler", msg(&FILLER_PARAMETER), NONE),
    opt(5, "bias_filler", msg(&FILLER_PARAMETER), NONE),
]);

message!(EXP_PARAMETER = "ExpParameter" [
    opt(1, "base", FLOAT, F(-1.0)),
    opt(2, "scale", FLOAT, F(1.0)),
    opt(3, "shift", FLOAT, F(0.0)),
]);

message!(FLATTEN_PARAMETER = "FlattenParameter" [
    opt(1, "axis", INT32, I(1)),
    opt(2, "end_axis", INT32, I(-1)),
]);

message!(HDF5_DATA_PARAMETER = "HDF5DataParameter" [
    opt(1, "source", STRING, NONE),
    opt(2, "batch_size", UINT32, NONE),
    opt(3, "shuffle", BOOL, B(false)),
]);

message!(HDF5_OUTPUT_PARAMETER = "HDF5OutputParameter"[opt(1, "file_name", STRING, NONE)]);

enumeration!(HINGE_NORM = "Norm" [L1 = 1, L2 = 2]);

message!(HINGE_LOSS_PARAMETER = "HingeLossParameter"[opt(1, "norm", en(&HINGE_NORM), E("L1"))]);

message!(IMAGE_DATA_PARAMETER = "ImageDataParameter" [
    opt(1, "source", STRING, NONE),
    opt(2, "scale", FLOAT, F(1.0)),
    opt(3, "mean_file", STRING, NONE),
    opt(4, "batch_size", UINT32, I(1)),
    opt(5, "crop_size", UINT32, I(0)),
    opt(6, "mirror", BOOL, B(false)),
    opt(7, "rand_skip", UINT32, I(0)),
    opt(8, "shuffle", BOOL, B(false)),
    opt(9, "new_height", UINT32, I(0)),
    opt(10, "new_width", UINT32, I(0)),
    opt(11, "is_color", BOOL, B(true)),
    opt(12, "root_folder", STRING, S("")),
]);

message!(INFOGAIN_LOSS_PARAMETER = "InfogainLossParameter" [
    opt(1, "source", STRING, NONE),
    opt(2, "axis", INT32, I(1)),
]);

message!(INNER_PRODUCT_PARAMETER = "InnerProductParameter" [
    opt(1, "num_output", UINT32, NONE),
    opt(2, "bias_term", BOOL, B(true)),
    opt(3, "weight_filler", msg(&FILLER_PARAMETER), NONE),
    opt(4, "bias_filler", msg(&FILLER_PARAMETER), NONE),
    opt(5, "axis", INT32, I(1)),
    opt(6, "transpose", BOOL, B(false)),
]);

message!(INPUT_PARAMETER = "InputParameter"[rep(1, "shape", msg(&BLOB_SHAPE))]);

message!(LOG_PARAMETER = "LogParameter" [
    opt(1, "base", FLOAT, F(-1.0)),
    opt(2, "scale", FLOAT, F(1.0)),
    opt(3, "shift", FLOAT, F(0.0)),
]);

enumeration!(NORM_REGION = "NormRegion" [ACROSS_CHANNELS = 0, WITHIN_CHANNEL = 1]);

message!(LRN_PARAMETER = "LRNParameter" [
    opt(1, "local_size", UINT32, I(5)),
    opt(2, "alpha", FLOAT, F(1.0)),
    opt(3, "beta", FLOAT, F(0.75)),
    opt(4, "norm_region", en(&NORM_REGION), E("ACROSS_CHANNELS")),
    opt(5, "k", FLOAT, F(1.0)),
    opt(6, "engine", en(&ENGINE), E("DEFAULT")),
]);

message!(MEMORY_DATA_PARAMETER = "MemoryDataParameter" [
    opt(1, "batch_size", UINT32, NONE),
    opt(2, "channels", UINT32, NONE),
    opt(3, "height", UINT32, NONE),
    opt(4, "width", UINT32, NONE),
]);

message!(MVN_PARAMETER = "MVNParameter" [
    opt(1, "normalize_variance", BOOL, B(true)),
    opt(2, "across_channels", BOOL, B(false)),
    opt(3, "eps", FLOAT, F(1e-9)),
]);

message!(PARAMETER_PARAMETER = "ParameterParameter"[opt(1, "shape", msg(&BLOB_SHAPE), NONE)]);

enumeration!(ROUND_MODE = "RoundMode" [CEIL = 0, FLOOR = 1]);

message!(POOLING_PARAMETER = "PoolingParameter" [
    opt(1, "pool", en(&POOL_METHOD), E("MAX")),
    opt(2, "kernel_size", UINT32, NONE),
    opt(3, "stride", UINT32, I(1)),
    opt(4, "pad", UINT32, I(0)),
    opt(5, "kernel_h", UINT32, NONE),
    opt(6, "kernel_w", UINT32, NONE),
    opt(7, "stride_h", UINT32, NONE),
    opt(8, "stride_w", UINT32, NONE),
    opt(9, "pad_h", UINT32, I(0)),
    opt(10, "pad_w", UINT32, I(0)),
    opt(11, "engine", en(&ENGINE), E("DEFAULT")),
    opt(12, "global_pooling", BOOL, B(false)),
    opt(13, "round_mode", en(&ROUND_MODE), E("CEIL")),
]);

message!(POWER_PARAMETER = "PowerParameter" [
    opt(1, "power", FLOAT, F(1.0)),
    opt(2, "scale", FLOAT, F(1.0)),
    opt(3, "shift", FLOAT, F(0.0)),
]);

message!(PRELU_PARAMETER = "PReLUParameter" [
    opt(1, "filler", msg(&FILLER_PARAMETER), NONE),
    opt(2, "channel_shared", BOOL, B(false)),
]);

message!(PYTHON_PARAMETER = "PythonParameter" [
    opt(1, "module", STRING, NONE),
    opt(2, "layer", STRING, NONE),
    opt(3, "param_str", STRING, S("")),
    opt(4, "share_in_parallel", BOOL, B(false)),
]);

message!(RECURRENT_PARAMETER = "RecurrentParameter" [
    opt(1, "num_output", UINT32, I(0)),
    opt(2, "weight_filler", msg(&FILLER_PARAMETER), NONE),
    opt(3, "bias_filler", msg(&FILLER_PARAMETER), NONE),
    opt(4, "debug_info", BOOL, B(false)),
    opt(5, "expose_hidden", BOOL, B(false)),
]);

enumeration!(REDUCTION_OP = "ReductionOp" [SUM = 1, ASUM = 2, SUMSQ = 3, MEAN = 4]);

message!(REDUCTION_PARAMETER = "ReductionParameter" [
    opt(1, "operation", en(&REDUCTION_OP), E("SUM")),
    opt(2, "axis", INT32, I(0)),
    opt(3, "coeff", FLOAT, F(1.0)),
]);

message!(RELU_PARAMETER = "ReLUParameter" [
    opt(1, "negative_slope", FLOAT, F(0.0)),
    opt(2, "engine", en(&ENGINE), E("DEFAULT")),
]);

message!(RESHAPE_PARAMETER = "ReshapeParameter" [
    opt(1, "shape", msg(&BLOB_SHAPE), NONE),
    opt(2, "axis", INT32, I(0)),
    opt(3, "num_axes", INT32, I(-1)),
]);

message!(SCALE_PARAMETER = "ScaleParameter" [
    opt(1, "axis", INT32, I(1)),
    opt(2, "num_axes", INT32, I(1)),
    opt(3, "filler", msg(&FILLER_PARAMETER), NONE),
    opt(4, "bias_term", BOOL, B(false)),
    opt(5, "bias_filler", msg(&FILLER_PARAMETER), NONE),
]);

message!(SIGMOID_PARAMETER = "SigmoidParameter"[opt(1, "engine", en(&ENGINE), E("DEFAULT"))]);

message!(SLICE_PARAMETER = "SliceParameter" [
    opt(1, "slice_dim", UINT32, I(1)),
    rep(2, "slice_point", UINT32),
    opt(3, "axis", INT32, I(1)),
]);

message!(SOFTMAX_PARAMETER = "SoftmaxParameter" [
    opt(1, "engine", en(&ENGINE), E("DEFAULT")),
    opt(2, "axis", INT32, I(1)),
]);

message!(SPP_PARAMETER = "SPPParameter" [
    opt(1, "pyramid_height", UINT32, NONE),
    opt(2, "pool", en(&POOL_METHOD), E("MAX")),
    opt(6, "engine", en(&ENGINE), E("DEFAULT")),
]);

message!(SWISH_PARAMETER = "SwishParameter"[opt(1, "beta", FLOAT, F(1.0))]);

message!(TANH_PARAMETER = "TanHParameter"[opt(1, "engine", en(&ENGINE), E("DEFAULT"))]);

message!(THRESHOLD_PARAMETER = "ThresholdParameter"[opt(1, "threshold", FLOAT, F(0.0))]);

message!(TILE_PARAMETER = "TileParameter" [
    opt(1, "axis", INT32, I(1)),
    opt(2, "tiles", INT32, NONE),
]);

message!(WINDOW_DATA_PARAMETER = "WindowDataParameter" [
    opt(1, "source", STRING, NONE),
    opt(2, "scale", FLOAT, F(1.0)),
    opt(3, "mean_file", STRING, NONE),
    opt(4, "batch_size", UINT32, NONE),
    opt(5, "crop_size", UINT32, I(0)),
    opt(6, "mirror", BOOL, B(false)),
    opt(7, "fg_threshold", FLOAT, F(0.5)),
    opt(8, "bg_threshold", FLOAT, F(0.5)),
    opt(9, "fg_fraction", FLOAT, F(0.25)),
    opt(10, "context_pad", UINT32, I(0)),
    opt(11, "crop_mode", STRING, S("warp")),
    opt(12, "cache_images", BOOL, B(false)),
    opt(13, "root_folder", STRING, S("")),
]);
