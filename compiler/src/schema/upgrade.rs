//! Tree → tree upgrades of old net formats, step by step as Caffe's
//! `UpgradeNetAsNeeded` (`upgrade_proto.cpp`) does them:
//!
//! 1. V0 → V1 (`layers { layer { type: "conv" } }`): padding layers folded
//!    into the next conv/pool, flat V0 fields moved into `*_param` blocks.
//! 2. Data transformation: `scale`/`mean_file`/`crop_size`/`mirror` of V1
//!    data layers move into `transform_param`.
//! 3. V1 → current (`layers { type: CONVOLUTION }` → `layer { type:
//!    "Convolution" }`), `blobs_lr`/`weight_decay`/`param` → `param { … }`.
//! 4. `input` + `input_dim`/`input_shape` → a leading `Input` layer.
//! 5. BatchNorm layers with three `param` specs get lr/decay multipliers 0.
//!
//! Runs on a validated tree. Every node it creates carries the span of the
//! token it came from, so later diagnostics still point into the user's file.

use std::collections::HashMap;

use lvc_grammar::{Field, Message, Scalar, ScalarKind, Span, Value};

use super::net::NetFormat;
use super::suggest::did_you_mean;
use crate::diag::{Diagnostic, Diagnostics};

/// What the upgrade did to a net.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradeReport {
    /// The container format the file was written in.
    pub format: NetFormat,
    /// `input`/`input_dim`/`input_shape` became an `Input` layer.
    pub input_upgraded: bool,
    /// BatchNorm `param` specs were zeroed.
    pub batch_norm_upgraded: bool,
}

impl UpgradeReport {
    /// Whether the tree differs from what was written.
    pub fn changed_anything(&self) -> bool {
        self.format != NetFormat::Current || self.input_upgraded || self.batch_norm_upgraded
    }
}

/// Upgrades `root` (a `NetParameter`) in place to the current format.
/// Returns `None` after reporting an error that stops Caffe's upgrade (both
/// `layer` and `layers`, an unknown V0 layer type, a misplaced padding layer,
/// too few input dimensions).
pub fn upgrade_net(root: &mut Message, diags: &mut Diagnostics) -> Option<UpgradeReport> {
    let first_v1 = root.fields.iter().find(|f| f.name == "layers").map(|f| f.name_span);
    let first_current = root.fields.iter().find(|f| f.name == "layer").map(|f| f.name_span);
    if let (Some(v1), Some(current)) = (first_v1, first_current) {
        diags.push(
            Diagnostic::error(
                "lvc::schema::mixed_format",
                "Refusing to upgrade inconsistent NetParameter input; the definition includes both 'layer' and 'layers' fields",
            )
            .with_label(current, "current-format `layer`")
            .with_label(v1, "V1-format `layers`")
            .with_help(
                "the current format defines `layer { type: \"Layer\" … }`, not `layers { type: LAYER … }`; \
                 switch the whole definition to `layer` blocks",
            ),
        );
        return None;
    }
    let is_v0 =
        root.all("layers").any(|f| f.value.as_message().is_some_and(|m| m.last("layer").is_some()));
    let format = match (first_v1.is_some(), is_v0) {
        (_, true) => NetFormat::V0,
        (true, false) => NetFormat::V1,
        (false, false) => NetFormat::Current,
    };
    let errors_before = diags.error_count();
    if format == NetFormat::V0 {
        upgrade_v0_net(root, diags);
        // Caffe stops at the first V0 problem; lvc reports them all, then
        // stops too, since half-upgraded layers would only add noise.
        if diags.error_count() > errors_before {
            return None;
        }
    }
    if format != NetFormat::Current {
        upgrade_data_transformation(root);
        upgrade_v1_net(root, diags);
    }
    let input_upgraded = upgrade_input(root, diags);
    let batch_norm_upgraded = upgrade_batch_norm(root);
    (diags.error_count() == errors_before).then_some(UpgradeReport {
        format,
        input_upgraded,
        batch_norm_upgraded,
    })
}

// ---------------------------------------------------------------- tree helpers

fn scalar(kind: ScalarKind, span: Span) -> Value {
    Value::Scalar(Scalar { kind, span })
}

/// A copy of `f` under another name (a V0 field moved into a `*_param`).
fn renamed(f: &Field, name: &str) -> Field {
    Field { name: name.to_string(), ..f.clone() }
}

fn str_value(msg: &Message, name: &str) -> Option<String> {
    match &msg.last(name)?.value {
        Value::Scalar(Scalar { kind: ScalarKind::Str(s), .. }) => Some(s.clone()),
        _ => None,
    }
}

fn ident_value(msg: &Message, name: &str) -> Option<String> {
    match &msg.last(name)?.value {
        Value::Scalar(Scalar { kind: ScalarKind::Ident(s), .. }) => Some(s.clone()),
        _ => None,
    }
}

fn strings(msg: &Message, name: &str) -> Vec<String> {
    msg.all(name)
        .filter_map(|f| match &f.value {
            Value::Scalar(Scalar { kind: ScalarKind::Str(s), .. }) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// The sub-message `name` of `msg`, created (spanning `span`) if absent.
fn sub_mut<'m>(msg: &'m mut Message, name: &str, span: Span) -> Option<&'m mut Message> {
    if !msg.fields.iter().any(|f| f.name == name && f.value.as_message().is_some()) {
        msg.fields.push(Field::new(
            name,
            span,
            Value::Message(Message { fields: Vec::new(), span }),
        ));
    }
    msg.fields.iter_mut().rev().filter(|f| f.name == name).find_map(|f| match &mut f.value {
        Value::Message(m) => Some(m),
        Value::Scalar(_) => None,
    })
}

fn remove_all(msg: &mut Message, name: &str) -> Vec<Field> {
    let (taken, kept) = std::mem::take(&mut msg.fields).into_iter().partition(|f| f.name == name);
    msg.fields = kept;
    taken
}

// ---------------------------------------------------------------- V0 → V1

/// `UpgradeV0LayerType`: V0 type strings → V1 enum names.
pub const V0_LAYER_TYPES: &[(&str, &str)] = &[
    ("accuracy", "ACCURACY"),
    ("bnll", "BNLL"),
    ("concat", "CONCAT"),
    ("conv", "CONVOLUTION"),
    ("data", "DATA"),
    ("dropout", "DROPOUT"),
    ("euclidean_loss", "EUCLIDEAN_LOSS"),
    ("flatten", "FLATTEN"),
    ("hdf5_data", "HDF5_DATA"),
    ("hdf5_output", "HDF5_OUTPUT"),
    ("im2col", "IM2COL"),
    ("images", "IMAGE_DATA"),
    ("infogain_loss", "INFOGAIN_LOSS"),
    ("innerproduct", "INNER_PRODUCT"),
    ("lrn", "LRN"),
    ("multinomial_logistic_loss", "MULTINOMIAL_LOGISTIC_LOSS"),
    ("pool", "POOLING"),
    ("relu", "RELU"),
    ("sigmoid", "SIGMOID"),
    ("softmax", "SOFTMAX"),
    ("softmax_loss", "SOFTMAX_LOSS"),
    ("split", "SPLIT"),
    ("tanh", "TANH"),
    ("window_data", "WINDOW_DATA"),
];

fn v0_layer(connection: &Message) -> Option<&Message> {
    connection.last("layer").and_then(|f| f.value.as_message())
}

fn v0_type(connection: &Message) -> Option<String> {
    v0_layer(connection).and_then(|l| str_value(l, "type"))
}

fn upgrade_v0_net(root: &mut Message, diags: &mut Diagnostics) {
    upgrade_v0_padding_layers(root, diags);
    for f in root.fields.iter_mut().filter(|f| f.name == "layers") {
        if let Value::Message(connection) = &mut f.value {
            if let Some(v1) = upgrade_v0_layer(connection, diags) {
                *connection = v1;
            }
        }
    }
}

/// `UpgradeV0PaddingLayers`: drop every V0 `padding` layer; its consumer
/// (which must be a conv or pool with one bottom) reads the padding layer's
/// input and gets its `pad`.
fn upgrade_v0_padding_layers(root: &mut Message, diags: &mut Diagnostics) {
    // Blob name → index (in the original list) of the connection that last
    // produced it.
    let mut last_producer: HashMap<String, usize> = HashMap::new();
    let original: Vec<Message> =
        root.all("layers").filter_map(|f| f.value.as_message().cloned()).collect();
    let mut position = 0;
    for f in root.fields.iter_mut().filter(|f| f.name == "layers") {
        let Value::Message(connection) = &mut f.value else {
            continue;
        };
        let index = position;
        position += 1;
        let layer_type = v0_type(connection).unwrap_or_default();
        let bottoms = strings(connection, "bottom");
        for (j, bottom) in bottoms.iter().enumerate() {
            let Some(&source_index) = last_producer.get(bottom) else {
                continue;
            };
            let source = &original[source_index];
            if v0_type(source).as_deref() != Some("padding") {
                continue;
            }
            if let Some(problem) = padding_problem(&layer_type, bottoms.len(), source) {
                let span =
                    connection.all("bottom").nth(j).map_or(connection.span, |b| b.value.span());
                diags.push(
                    Diagnostic::error("lvc::schema::v0_padding", problem)
                        .with_label(span, "reads the output of a V0 padding layer")
                        .with_help("a V0 `padding` layer may only feed one conv or pool layer with a single bottom"),
                );
                continue;
            }
            fold_padding(connection, j, source);
        }
        for top in strings(connection, "top") {
            last_producer.insert(top, index);
        }
    }
    root.fields.retain(|f| {
        !(f.name == "layers"
            && f.value.as_message().and_then(v0_type).as_deref() == Some("padding"))
    });
}

/// Caffe's CHECKs for a padding layer feeding `consumer_type`.
fn padding_problem(
    consumer_type: &str,
    consumer_bottoms: usize,
    padding: &Message,
) -> Option<String> {
    if consumer_type != "conv" && consumer_type != "pool" {
        return Some(format!(
            "Padding layer input to non-convolutional / non-pooling layer type {consumer_type}"
        ));
    }
    if consumer_bottoms != 1 {
        return Some("Conv Layer takes a single blob as input.".to_string());
    }
    if padding.all("bottom").count() != 1 {
        return Some("Padding Layer takes a single blob as input.".to_string());
    }
    if padding.all("top").count() != 1 {
        return Some("Padding Layer produces a single blob as output.".to_string());
    }
    None
}

/// Rewires bottom `j` of `connection` to the padding layer's input and sets
/// the consumer's V0 `pad` to the padding layer's (0 when unset).
fn fold_padding(connection: &mut Message, j: usize, padding: &Message) {
    if let (Some(bottom), Some(source)) =
        (connection.fields.iter_mut().filter(|f| f.name == "bottom").nth(j), padding.last("bottom"))
    {
        if let Value::Scalar(s) = &mut bottom.value {
            s.kind = source.value.as_scalar().map_or(s.kind.clone(), |src| src.kind.clone());
        }
    }
    let pad = match v0_layer(padding).and_then(|l| l.last("pad")) {
        Some(pad) => pad.clone(),
        None => Field::new("pad", padding.span, scalar(ScalarKind::Int(0), padding.span)),
    };
    if let Some(Field { value: Value::Message(layer), .. }) =
        connection.fields.iter_mut().rev().find(|f| f.name == "layer")
    {
        remove_all(layer, "pad");
        layer.fields.push(pad);
    }
}

/// Where a flat V0 field goes, by V0 layer type: `(sub-message, new name)`.
/// `None` = the field does not apply to this type.
fn v0_field_target(field: &str, layer_type: &str) -> Option<(&'static str, &'static str)> {
    let by_type = |table: &[(&str, &'static str)], new_name: &'static str| {
        table.iter().find(|(t, _)| *t == layer_type).map(|&(_, param)| (param, new_name))
    };
    const CONV_OR_IP: &[(&str, &str)] =
        &[("conv", "convolution_param"), ("innerproduct", "inner_product_param")];
    const CONV_OR_POOL: &[(&str, &str)] =
        &[("conv", "convolution_param"), ("pool", "pooling_param")];
    const SOURCES: &[(&str, &str)] = &[
        ("data", "data_param"),
        ("hdf5_data", "hdf5_data_param"),
        ("images", "image_data_param"),
        ("window_data", "window_data_param"),
        ("infogain_loss", "infogain_loss_param"),
    ];
    const BATCHES: &[(&str, &str)] = &[
        ("data", "data_param"),
        ("hdf5_data", "hdf5_data_param"),
        ("images", "image_data_param"),
        ("window_data", "window_data_param"),
    ];
    const RAND_SKIP: &[(&str, &str)] = &[("data", "data_param"), ("images", "image_data_param")];
    const CONV: &[(&str, &str)] = &[("conv", "convolution_param")];
    const POOL: &[(&str, &str)] = &[("pool", "pooling_param")];
    const DROPOUT: &[(&str, &str)] = &[("dropout", "dropout_param")];
    const LRN: &[(&str, &str)] = &[("lrn", "lrn_param")];
    const IMAGES: &[(&str, &str)] = &[("images", "image_data_param")];
    const CONCAT: &[(&str, &str)] = &[("concat", "concat_param")];
    const WINDOW: &[(&str, &str)] = &[("window_data", "window_data_param")];
    match field {
        "num_output" => by_type(CONV_OR_IP, "num_output"),
        "biasterm" => by_type(CONV_OR_IP, "bias_term"),
        "weight_filler" => by_type(CONV_OR_IP, "weight_filler"),
        "bias_filler" => by_type(CONV_OR_IP, "bias_filler"),
        "pad" => by_type(CONV_OR_POOL, "pad"),
        "kernelsize" => by_type(CONV_OR_POOL, "kernel_size"),
        "stride" => by_type(CONV_OR_POOL, "stride"),
        "group" => by_type(CONV, "group"),
        "pool" => by_type(POOL, "pool"),
        "dropout_ratio" => by_type(DROPOUT, "dropout_ratio"),
        "local_size" | "alpha" | "beta" | "k" => by_type(LRN, lrn_field(field)),
        "source" => by_type(SOURCES, "source"),
        // Data transformation fields go to transform_param for any type.
        "scale" => Some(("transform_param", "scale")),
        "meanfile" => Some(("transform_param", "mean_file")),
        "cropsize" => Some(("transform_param", "crop_size")),
        "mirror" => Some(("transform_param", "mirror")),
        "batchsize" => by_type(BATCHES, "batch_size"),
        "rand_skip" => by_type(RAND_SKIP, "rand_skip"),
        "shuffle_images" => by_type(IMAGES, "shuffle"),
        "new_height" => by_type(IMAGES, "new_height"),
        "new_width" => by_type(IMAGES, "new_width"),
        "concat_dim" => by_type(CONCAT, "concat_dim"),
        "det_fg_threshold" => by_type(WINDOW, "fg_threshold"),
        "det_bg_threshold" => by_type(WINDOW, "bg_threshold"),
        "det_fg_fraction" => by_type(WINDOW, "fg_fraction"),
        "det_context_pad" => by_type(WINDOW, "context_pad"),
        "det_crop_mode" => by_type(WINDOW, "crop_mode"),
        _ => None,
    }
}

fn lrn_field(field: &str) -> &'static str {
    match field {
        "local_size" => "local_size",
        "alpha" => "alpha",
        "beta" => "beta",
        _ => "k",
    }
}

/// `UpgradeV0LayerParameter`: one V0 connection → a V1 layer message.
/// `None` (after an error) for an unknown V0 type.
fn upgrade_v0_layer(connection: &Message, diags: &mut Diagnostics) -> Option<Message> {
    let Some(layer) = v0_layer(connection) else {
        // A V1 layer inside a V0 net: nothing to move.
        return Some(connection.clone());
    };
    let layer_name = str_value(layer, "name").unwrap_or_default();
    let layer_type = str_value(layer, "type").unwrap_or_default();
    let mut out = Message { fields: Vec::new(), span: connection.span };
    // Connection-level fields (bottom, top, …) stay as they are.
    out.fields.extend(connection.fields.iter().filter(|f| f.name != "layer").cloned());
    for f in &layer.fields {
        match f.name.as_str() {
            "name" | "blobs" | "blobs_lr" | "weight_decay" => out.fields.push(f.clone()),
            "type" => {
                let span = f.value.span();
                match V0_LAYER_TYPES.iter().find(|(name, _)| *name == layer_type) {
                    Some(&(_, v1)) => out.fields.push(Field::new("type", f.name_span, scalar(ScalarKind::Ident(v1.into()), span))),
                    None => {
                        let names: Vec<&str> = V0_LAYER_TYPES.iter().map(|&(n, _)| n).collect();
                        diags.push(
                            Diagnostic::error("lvc::schema::v0_type", format!("Unknown layer name: {layer_type}"))
                                .with_label(span, "not a V0 layer type")
                                .with_help(did_you_mean(&layer_type, &names, "V0 layer types"))
                                .in_layer(layer_name.clone()),
                        );
                        return None;
                    }
                }
            }
            "hdf5_output_param" if layer_type == "hdf5_output" => out.fields.push(f.clone()),
            _ => match v0_field_target(&f.name, &layer_type) {
                Some((param, new_name)) => {
                    if let Some(sub) = sub_mut(&mut out, param, layer.span) {
                        sub.fields.push(renamed(f, new_name));
                    }
                }
                None => diags.push(
                    Diagnostic::warning(
                        "lvc::schema::v0_upgrade",
                        format!("Unknown parameter {} for layer type {layer_type}", f.name),
                    )
                    .with_label(f.name_span, "dropped by the V0 upgrade")
                    .with_help("Caffe drops it too (\"had one or more problems upgrading V0NetParameter\"); remove it")
                    .in_layer(layer_name.clone()),
                ),
            },
        }
    }
    Some(out)
}

// ---------------------------------------------------------------- data transformation

/// `UpgradeNetDataTransformation`: for V1 DATA, IMAGE_DATA and WINDOW_DATA
/// layers, `scale`, `mean_file`, `crop_size` and `mirror` move from the
/// data parameter into `transform_param`.
fn upgrade_data_transformation(root: &mut Message) {
    const DATA_LAYERS: &[(&str, &str)] = &[
        ("DATA", "data_param"),
        ("IMAGE_DATA", "image_data_param"),
        ("WINDOW_DATA", "window_data_param"),
    ];
    const MOVED: &[&str] = &["scale", "mean_file", "crop_size", "mirror"];
    for f in root.fields.iter_mut().filter(|f| f.name == "layers") {
        let Value::Message(layer) = &mut f.value else {
            continue;
        };
        let Some(kind) = ident_value(layer, "type") else {
            continue;
        };
        let Some(&(_, param)) = DATA_LAYERS.iter().find(|(t, _)| *t == kind) else {
            continue;
        };
        let Some(Field { value: Value::Message(data), .. }) =
            layer.fields.iter_mut().rev().find(|f| f.name == param)
        else {
            continue;
        };
        let data_span = data.span;
        let moved: Vec<Field> = MOVED.iter().flat_map(|name| remove_all(data, name)).collect();
        if moved.is_empty() {
            continue;
        }
        if let Some(transform) = sub_mut(layer, "transform_param", data_span) {
            for m in moved {
                remove_all(transform, &m.name);
                transform.fields.push(m);
            }
        }
    }
}

// ---------------------------------------------------------------- V1 → current

/// `UpgradeV1LayerType`: V1 enum names → current type strings.
pub const V1_LAYER_TYPES: &[(&str, &str)] = &[
    ("NONE", ""),
    ("ABSVAL", "AbsVal"),
    ("ACCURACY", "Accuracy"),
    ("ARGMAX", "ArgMax"),
    ("BNLL", "BNLL"),
    ("CONCAT", "Concat"),
    ("CONTRASTIVE_LOSS", "ContrastiveLoss"),
    ("CONVOLUTION", "Convolution"),
    ("DECONVOLUTION", "Deconvolution"),
    ("DATA", "Data"),
    ("DROPOUT", "Dropout"),
    ("DUMMY_DATA", "DummyData"),
    ("EUCLIDEAN_LOSS", "EuclideanLoss"),
    ("ELTWISE", "Eltwise"),
    ("EXP", "Exp"),
    ("FLATTEN", "Flatten"),
    ("HDF5_DATA", "HDF5Data"),
    ("HDF5_OUTPUT", "HDF5Output"),
    ("HINGE_LOSS", "HingeLoss"),
    ("IM2COL", "Im2col"),
    ("IMAGE_DATA", "ImageData"),
    ("INFOGAIN_LOSS", "InfogainLoss"),
    ("INNER_PRODUCT", "InnerProduct"),
    ("LRN", "LRN"),
    ("MEMORY_DATA", "MemoryData"),
    ("MULTINOMIAL_LOGISTIC_LOSS", "MultinomialLogisticLoss"),
    ("MVN", "MVN"),
    ("POOLING", "Pooling"),
    ("POWER", "Power"),
    ("RELU", "ReLU"),
    ("SIGMOID", "Sigmoid"),
    ("SIGMOID_CROSS_ENTROPY_LOSS", "SigmoidCrossEntropyLoss"),
    ("SILENCE", "Silence"),
    ("SOFTMAX", "Softmax"),
    ("SOFTMAX_LOSS", "SoftmaxWithLoss"),
    ("SPLIT", "Split"),
    ("SLICE", "Slice"),
    ("TANH", "TanH"),
    ("WINDOW_DATA", "WindowData"),
    ("THRESHOLD", "Threshold"),
];

/// The current type string for a V1 enum name.
pub fn v1_type_string(v1: &str) -> Option<&'static str> {
    V1_LAYER_TYPES.iter().find(|(name, _)| *name == v1).map(|&(_, s)| s)
}

/// The current type string for a V1 enum number, as a binary V1
/// `.caffemodel` stores it (the numbers are caffe.proto's, in the schema's
/// `LayerType` descriptor).
pub fn v1_type_string_of_number(number: u64) -> Option<&'static str> {
    let number = i32::try_from(number).ok()?;
    v1_type_string(super::descriptor::V1_LAYER_TYPE.name_of(number)?)
}

/// The current type string for a V0 type string (`conv` → `Convolution`).
pub fn v0_type_string(v0: &str) -> Option<&'static str> {
    let (_, v1) = V0_LAYER_TYPES.iter().find(|(name, _)| *name == v0)?;
    v1_type_string(v1)
}

fn upgrade_v1_net(root: &mut Message, diags: &mut Diagnostics) {
    for f in root.fields.iter_mut().filter(|f| f.name == "layers") {
        f.name = "layer".to_string();
        if let Value::Message(layer) = &mut f.value {
            *layer = upgrade_v1_layer(layer, diags);
        }
    }
}

/// Which `ParamSpec` field a V1 per-blob list fills.
fn param_spec_field(v1_field: &str) -> Option<&'static str> {
    match v1_field {
        "param" => Some("name"),
        "blob_share_mode" => Some("share_mode"),
        "blobs_lr" => Some("lr_mult"),
        "weight_decay" => Some("decay_mult"),
        _ => None,
    }
}

/// `UpgradeV1LayerParameter`: one V1 layer → a current `LayerParameter`.
fn upgrade_v1_layer(v1: &Message, diags: &mut Diagnostics) -> Message {
    let mut out = Message { fields: Vec::new(), span: v1.span };
    // ParamSpecs are created as needed: entry i collects the i-th `param`,
    // `blob_share_mode`, `blobs_lr` and `weight_decay`.
    let mut specs: Vec<Message> = Vec::new();
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    let mut specs_at: Option<usize> = None;
    for f in &v1.fields {
        if let Some(spec_field) = param_spec_field(&f.name) {
            let i = counts.entry(spec_field).or_insert(0);
            if specs.len() <= *i {
                specs.push(Message { fields: Vec::new(), span: f.span });
            }
            let spec = &mut specs[*i];
            spec.span = spec.span.join(f.span);
            spec.fields.push(renamed(f, spec_field));
            *i += 1;
            specs_at.get_or_insert(out.fields.len());
            continue;
        }
        match f.name.as_str() {
            "type" => {
                let Some(Scalar { kind: ScalarKind::Ident(name), span }) = f.value.as_scalar()
                else {
                    continue;
                };
                // The validator admitted only LayerType names.
                let kind = v1_type_string(name).unwrap_or_default();
                out.fields.push(Field::new(
                    "type",
                    f.name_span,
                    scalar(ScalarKind::Str(kind.to_string()), *span),
                ));
            }
            "layer" => {
                let name = str_value(v1, "name").unwrap_or_default();
                diags.push(
                    Diagnostic::warning(
                        "lvc::schema::v0_leftover",
                        "Input NetParameter has V0 layer -- ignoring.",
                    )
                    .with_label(f.name_span, "a V0 `layer { … }` inside a V1 layer")
                    .with_help("move its settings into the V1 layer's `*_param` blocks")
                    .in_layer(name),
                );
            }
            _ => out.fields.push(f.clone()),
        }
    }
    let at = specs_at.unwrap_or(out.fields.len());
    let spec_fields: Vec<Field> = specs
        .into_iter()
        .map(|spec| {
            let name_span = spec.fields.first().map_or(spec.span, |f| f.name_span);
            Field::new("param", name_span, Value::Message(spec))
        })
        .collect();
    out.fields.splice(at..at, spec_fields);
    out
}

// ---------------------------------------------------------------- inputs

/// `UpgradeNetInput`: `input` names with `input_shape` (one per input) or
/// `input_dim` (four per input) become one `Input` layer named "input" at
/// the front. Inputs without shapes are dropped. Returns whether anything
/// changed.
fn upgrade_input(root: &mut Message, diags: &mut Diagnostics) -> bool {
    let inputs = remove_all(root, "input");
    let shapes = remove_all(root, "input_shape");
    let dims = remove_all(root, "input_dim");
    if inputs.is_empty() {
        if let Some(first) = shapes.first().or(dims.first()) {
            diags.push(
                Diagnostic::warning(
                    "lvc::schema::input_without_name",
                    format!("`{}` without any `input`; ignored", first.name),
                )
                .with_label(first.name_span, "no `input:` names this shape")
                .with_help("add `input: \"data\"` before the shape, or use an `Input` layer"),
            );
        }
        return false;
    }
    if shapes.is_empty() && dims.is_empty() {
        return true;
    }
    let whole = inputs
        .iter()
        .chain(&shapes)
        .chain(&dims)
        .map(|f| f.span)
        .reduce(Span::join)
        .unwrap_or_default();
    let anchor = inputs[0].name_span;
    let mut input_param = Message { fields: Vec::new(), span: whole };
    let mut layer = Message { fields: Vec::new(), span: whole };
    layer.fields.push(Field::new("name", anchor, scalar(ScalarKind::Str("input".into()), anchor)));
    layer.fields.push(Field::new("type", anchor, scalar(ScalarKind::Str("Input".into()), anchor)));
    for (i, input) in inputs.iter().enumerate() {
        layer.fields.push(renamed(input, "top"));
        let shape = if !shapes.is_empty() {
            shapes.get(i).map(|s| renamed(s, "shape"))
        } else {
            dims.get(4 * i..4 * i + 4).map(|four| {
                let span = four.iter().map(|d| d.span).reduce(Span::join).unwrap_or(input.span);
                let dim_fields = four.iter().map(|d| renamed(d, "dim")).collect();
                Field::new(
                    "shape",
                    four[0].name_span,
                    Value::Message(Message { fields: dim_fields, span }),
                )
            })
        };
        match shape {
            Some(shape) => input_param.fields.push(shape),
            None => {
                let (what, have) = if shapes.is_empty() {
                    ("four `input_dim` values", format!("{} `input_dim` values", dims.len()))
                } else {
                    ("one `input_shape`", format!("{} `input_shape` blocks", shapes.len()))
                };
                diags.push(
                    Diagnostic::error(
                        "lvc::schema::input_shape",
                        format!("input {} has no shape: each `input` needs {what}, and there are {have} for {} inputs", quoted_input(input), inputs.len()),
                    )
                    .with_label(input.value.span(), "no shape for this input")
                    .with_help("give N, C, H, W as four `input_dim:` lines (or one `input_shape { dim: … }`) per `input:`"),
                );
                return true;
            }
        }
    }
    layer.fields.push(Field::new("input_param", anchor, Value::Message(input_param)));
    let first_layer =
        root.fields.iter().position(|f| f.name == "layer").unwrap_or(root.fields.len());
    root.fields.insert(first_layer, Field::new("layer", anchor, Value::Message(layer)));
    true
}

fn quoted_input(input: &Field) -> String {
    match input.value.as_scalar().map(|s| &s.kind) {
        Some(ScalarKind::Str(name)) => format!("`{name}`"),
        _ => "(unnamed)".to_string(),
    }
}

// ---------------------------------------------------------------- BatchNorm

/// `UpgradeNetBatchNorm`: a BatchNorm layer declaring exactly three `param`
/// specs (the old definition) gets lr_mult 0 and decay_mult 0 on each.
fn upgrade_batch_norm(root: &mut Message) -> bool {
    let mut changed = false;
    for f in root.fields.iter_mut().filter(|f| f.name == "layer") {
        let Value::Message(layer) = &mut f.value else {
            continue;
        };
        if str_value(layer, "type").as_deref() != Some("BatchNorm")
            || layer.all("param").count() != 3
        {
            continue;
        }
        for p in layer.fields.iter_mut().filter(|p| p.name == "param") {
            let Value::Message(spec) = &mut p.value else {
                continue;
            };
            let span = spec.span;
            for name in ["lr_mult", "decay_mult"] {
                remove_all(spec, name);
                spec.fields.push(Field::new(name, span, scalar(ScalarKind::Float(0.0), span)));
            }
        }
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::print::to_prototxt;

    fn upgraded(text: &str) -> (String, Option<UpgradeReport>, Diagnostics) {
        let mut tree = lvc_grammar::parse(text).expect("test input parses");
        let mut diags = Diagnostics::new();
        let report = upgrade_net(&mut tree, &mut diags);
        (to_prototxt(&tree), report, diags)
    }

    #[test]
    fn v1_per_blob_lists_become_param_specs_as_needed() {
        let (text, report, diags) = upgraded(
            "layers { name: \"c\" type: CONVOLUTION param: \"w\" param: \"b\" blob_share_mode: PERMISSIVE blobs_lr: 1 blobs_lr: 2 weight_decay: 1 loss_weight: 0 }",
        );
        assert!(diags.is_empty());
        assert_eq!(report.map(|r| r.format), Some(NetFormat::V1));
        assert_eq!(
            text,
            "layer {\n  name: \"c\"\n  type: \"Convolution\"\n  param {\n    name: \"w\"\n    share_mode: PERMISSIVE\n    lr_mult: 1\n    decay_mult: 1\n  }\n  param {\n    name: \"b\"\n    lr_mult: 2\n  }\n  loss_weight: 0\n}\n"
        );
    }

    #[test]
    fn v1_none_and_untyped_layers_get_the_empty_type() {
        let (text, _, _) = upgraded("layers { name: \"a\" type: NONE } layers { name: \"b\" }");
        assert_eq!(text, "layer {\n  name: \"a\"\n  type: \"\"\n}\nlayer {\n  name: \"b\"\n}\n");
    }

    #[test]
    fn every_v1_enum_name_has_a_type_string() {
        for name in crate::schema::descriptor::V1_LAYER_TYPE.names() {
            assert!(v1_type_string(name).is_some(), "{name}");
        }
        for (_, v1) in V0_LAYER_TYPES {
            assert!(v1_type_string(v1).is_some(), "{v1}");
        }
    }

    #[test]
    fn v1_data_transformation_moves_into_transform_param() {
        let (text, _, _) = upgraded("layers { name: \"d\" type: DATA data_param { source: \"db\" scale: 0.5 mirror: true batch_size: 4 } }");
        assert_eq!(
            text,
            "layer {\n  name: \"d\"\n  type: \"Data\"\n  data_param {\n    source: \"db\"\n    batch_size: 4\n  }\n  transform_param {\n    scale: 0.5\n    mirror: true\n  }\n}\n"
        );
    }

    #[test]
    fn v0_data_layer_fields_move_to_their_params() {
        let (text, report, diags) = upgraded(
            "layers { layer { name: \"data\" type: \"data\" source: \"lmdb\" meanfile: \"m.binaryproto\" batchsize: 64 cropsize: 227 mirror: true rand_skip: 3 } top: \"data\" top: \"label\" }",
        );
        assert!(diags.is_empty());
        assert_eq!(report.map(|r| r.format), Some(NetFormat::V0));
        assert_eq!(
            text,
            "layer {\n  top: \"data\"\n  top: \"label\"\n  name: \"data\"\n  type: \"Data\"\n  data_param {\n    source: \"lmdb\"\n    batch_size: 64\n    rand_skip: 3\n  }\n  transform_param {\n    mean_file: \"m.binaryproto\"\n    crop_size: 227\n    mirror: true\n  }\n}\n"
        );
    }

    #[test]
    fn v0_padding_folds_into_pooling_and_overrides_its_pad() {
        let (text, _, diags) = upgraded(concat!(
            "layers { layer { name: \"p\" type: \"padding\" pad: 1 } bottom: \"x\" top: \"xp\" }\n",
            "layers { layer { name: \"pool\" type: \"pool\" pad: 7 kernelsize: 3 } bottom: \"xp\" top: \"y\" }\n",
        ));
        assert!(diags.is_empty());
        assert_eq!(
            text,
            "layer {\n  bottom: \"x\"\n  top: \"y\"\n  name: \"pool\"\n  type: \"Pooling\"\n  pooling_param {\n    kernel_size: 3\n    pad: 1\n  }\n}\n"
        );
    }

    #[test]
    fn input_shape_becomes_a_leading_input_layer_with_original_spans() {
        let text = "name: \"n\"\nlayer { name: \"r\" type: \"ReLU\" }\ninput: \"data\"\ninput_shape { dim: 1 dim: 3 }\n";
        let mut tree = lvc_grammar::parse(text).expect("test input parses");
        let mut diags = Diagnostics::new();
        let report = upgrade_net(&mut tree, &mut diags).expect("upgrades");
        assert!(report.input_upgraded && report.format == NetFormat::Current);
        assert_eq!(
            to_prototxt(&tree),
            "name: \"n\"\nlayer {\n  name: \"input\"\n  type: \"Input\"\n  top: \"data\"\n  input_param {\n    shape {\n      dim: 1\n      dim: 3\n    }\n  }\n}\nlayer {\n  name: \"r\"\n  type: \"ReLU\"\n}\n"
        );
        let input = tree.fields[1].value.as_message().expect("a layer message");
        let top = input.last("top").expect("a top").value.span();
        assert_eq!(&text[top.start..top.end], "\"data\"");
    }

    #[test]
    fn input_without_dims_is_dropped() {
        let (text, report, diags) = upgraded("input: \"data\"\nlayer { name: \"r\" }");
        assert!(diags.is_empty());
        assert!(report.is_some_and(|r| r.input_upgraded));
        assert_eq!(text, "layer {\n  name: \"r\"\n}\n");
    }

    #[test]
    fn batch_norm_with_three_params_gets_zero_multipliers() {
        let (text, report, _) = upgraded(concat!(
            "layer { type: \"BatchNorm\" param { lr_mult: 1 } param { lr_mult: 1 name: \"v\" } param { decay_mult: 1 } }\n",
            "layer { type: \"BatchNorm\" param { lr_mult: 1 } }\n",
        ));
        assert!(report.is_some_and(|r| r.batch_norm_upgraded));
        assert_eq!(text.matches("lr_mult: 0.0").count(), 3);
        assert_eq!(text.matches("decay_mult: 0.0").count(), 3);
        assert!(text.contains("name: \"v\""), "other ParamSpec fields stay");
        assert!(
            text.ends_with("layer {\n  type: \"BatchNorm\"\n  param {\n    lr_mult: 1\n  }\n}\n")
        );
    }

    #[test]
    fn current_nets_are_left_alone() {
        let source = "name: \"n\"\nlayer {\n  name: \"c\"\n  type: \"Convolution\"\n}\n";
        let (text, report, diags) = upgraded(source);
        assert!(diags.is_empty());
        assert_eq!(text, source);
        assert!(report.is_some_and(|r| !r.changed_anything()));
    }
}
