//! Layers whose tops are net inputs: Input, DummyData, the database/file
//! readers (Data, ImageData, HDF5Data, WindowData, MemoryData), Python data
//! layers, and lvc's Augment layer (TRAIN-time augmentation of data+label).
//!
//! A reader's top shapes are often known only at run time (image size in a
//! database, HDF5 datasets, Python `reshape`). Such layers answer
//! [`LayerOp::input_shapes`] with `None` entries; the IR fills them from
//! `--input-shape NAME=…` and otherwise reports the `lvc::shape::unknown_input`
//! error that `infer_shapes` gives.

use super::common::{constant_filler, identity_map, plural, range_error, Arity, LayerRef};
use super::{AxisMap, BlobShape, LayerOp, ParamShape, ShapeCtx};
use super::{OpKind, ParamRole};
use crate::diag::Diagnostic;
use crate::schema::{LayerDef, ParamView, Spanned};

/// A source of net inputs and what the prototxt says about each top's shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// `Input`: shapes from `input_param.shape` (0, 1 or one per top).
    Input,
    /// `DummyData`: constant/filler data of the given shapes.
    DummyData,
    /// `Data`: LMDB/LevelDB records (`data_param.source`).
    Database { source: Option<String> },
    /// `ImageData`: an image list file.
    ImageList { source: Option<String> },
    /// `HDF5Data`: datasets named like the tops in the listed HDF5 files.
    Hdf5 { source: Option<String> },
    /// `WindowData`: R-CNN style windows.
    Windows { source: Option<String> },
    /// `MemoryData`: arrays handed in by the caller.
    Memory,
    /// `Python` without bottoms: an external data source (`module.layer`).
    Python { module: String, layer: String, param_str: String },
}

#[derive(Debug, Clone)]
pub struct DataOp {
    pub layer: LayerRef,
    pub type_name: &'static str,
    pub source: Source,
    /// The top names, for `--input-shape NAME=…` hints.
    pub tops: Vec<String>,
    /// Each top's shape where the prototxt determines it.
    pub shapes: Vec<Option<BlobShape>>,
}

/// Builds `kind` (one of this family's kinds) from `def`.
pub fn build(kind: OpKind, def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<DataOp> {
    let layer = LayerRef::of(def);
    let type_name = kind.name();
    let tops: Vec<String> = def.tops.iter().map(|t| t.value.clone()).collect();
    let n = tops.len();
    // Presence, not the default: an unwritten batch_size leaves the shape
    // unknown (even ImageDataParameter's, whose caffe.proto default is 1).
    let batch = |v: ParamView<'_>| v.int("batch_size").map(|b| b.value);
    let source = |v: ParamView<'_>| v.string("source").map(|s| s.value.to_string());
    let transform = def.param_block("transform_param");
    let crop = Some(transform.int_or_default("crop_size").value).filter(|&c| c > 0);
    let (src, shapes) = match kind {
        OpKind::Input => (Source::Input, input_shapes(&layer, def, diags)?),
        OpKind::DummyData => (Source::DummyData, dummy_shapes(&layer, def, diags)?),
        OpKind::Data => {
            let v = def.param_block("data_param");
            let channels = if transform.bool_or_default("force_gray").value {
                Some(1)
            } else if transform.bool_or_default("force_color").value {
                Some(3)
            } else {
                None
            };
            let data = match (batch(v), channels, crop) {
                (Some(b), Some(c), Some(k)) => Some(BlobShape(vec![b, c, k, k])),
                _ => None,
            };
            (Source::Database { source: source(v) }, reader_shapes(n, data, batch(v)))
        }
        OpKind::ImageData => {
            let v = def.param_block("image_data_param");
            let channels = if v.bool_or_default("is_color").value { 3 } else { 1 };
            let size = match (crop, v.int("new_height"), v.int("new_width")) {
                (Some(k), _, _) => Some((k, k)),
                (None, Some(h), Some(w)) if h.value > 0 && w.value > 0 => Some((h.value, w.value)),
                _ => None,
            };
            let data = batch(v).zip(size).map(|(b, (h, w))| BlobShape(vec![b, channels, h, w]));
            (Source::ImageList { source: source(v) }, reader_shapes(n, data, batch(v)))
        }
        OpKind::HDF5Data => {
            (Source::Hdf5 { source: source(def.param_block("hdf5_data_param")) }, vec![None; n])
        }
        OpKind::WindowData => {
            let v = def.param_block("window_data_param");
            let data = batch(v).zip(crop).map(|(b, k)| BlobShape(vec![b, 3, k, k]));
            (Source::Windows { source: source(v) }, reader_shapes(n, data, batch(v)))
        }
        OpKind::MemoryData => {
            let v = def.param_block("memory_data_param");
            let dims: Option<Vec<i64>> = ["batch_size", "channels", "height", "width"]
                .iter()
                .map(|f| v.int(f).map(|x| x.value))
                .collect();
            (Source::Memory, reader_shapes(n, dims.map(BlobShape), batch(v)))
        }
        _ => {
            let v = def.param_block("python_param");
            let module = v.string("module").map_or(String::new(), |m| m.value.to_string());
            let class = v.string("layer").map_or(String::new(), |m| m.value.to_string());
            if !def.bottoms.is_empty() {
                diags.push(
                    layer
                        .error("lvc::python::unsupported", format!("Python layer `{module}.{class}` is not supported"))
                        .with_label(layer.anchor(v, "layer"), "Python code lvc cannot run")
                        .with_help(
                            "lvc runs Python layers only as data sources (no bottoms; give their top shapes \
                             with --input-shape NAME=N,C,H,W) and DIGITS' Dice / DiceLoss natively \
                             (python_param { layer: \"Dice\" }); replace this layer with native layers",
                        ),
                );
                return None;
            }
            let param_str = v.string_or_default("param_str").value.to_string();
            (Source::Python { module, layer: class, param_str }, vec![None; n])
        }
    };
    Some(DataOp { layer, type_name, source: src, tops, shapes })
}

/// Reader layers: top 0 is the data, top 1 (if listed) the label `[batch]`.
fn reader_shapes(
    tops: usize,
    data: Option<BlobShape>,
    batch: Option<i64>,
) -> Vec<Option<BlobShape>> {
    (0..tops)
        .map(|i| match i {
            0 => data.clone(),
            1 => batch.map(|b| BlobShape(vec![b])),
            _ => None,
        })
        .collect()
}

/// `shape { dim… }` blocks as shapes; negative dims are reported.
fn blob_shapes(layer: &LayerRef, v: ParamView<'_>, diags: &mut Vec<Diagnostic>) -> Vec<BlobShape> {
    v.subs("shape")
        .into_iter()
        .map(|s| {
            let dims = s.ints("dim");
            for d in dims.iter().filter(|d| d.value < 0) {
                diags.push(range_error(
                    layer,
                    d.span,
                    format!("dim {} is negative", d.value),
                    "blob dims are sizes: use 0 or more",
                ));
            }
            BlobShape(dims.iter().map(|d| d.value).collect())
        })
        .collect()
}

/// Broadcast `given` (0, 1 or one per top) over the tops, or report a count error.
fn per_top<T: Clone>(
    layer: &LayerRef,
    what: &str,
    given: Vec<T>,
    spans: &[lvc_grammar::Span],
    tops: usize,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Option<T>>> {
    match given.len() {
        0 => Some(vec![None; tops]),
        1 => Some(vec![given.first().cloned(); tops]),
        k if k == tops => Some(given.into_iter().map(Some).collect()),
        k => {
            let mut d = layer.error(
                "lvc::param::count",
                format!("{} for {}", plural(k, what), plural(tops, "top")),
            );
            for s in spans {
                d = d.with_label(*s, "");
            }
            diags.push(d.with_help(format!(
                "give `{what}` once (for every top), once per top ({tops}), or not at all"
            )));
            None
        }
    }
}

fn input_shapes(
    layer: &LayerRef,
    def: &LayerDef,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Option<BlobShape>>> {
    let v = def.param_block("input_param");
    let spans: Vec<_> = v.subs("shape").iter().filter_map(|s| s.span()).collect();
    let shapes = blob_shapes(layer, v, diags);
    per_top(layer, "shape", shapes, &spans, def.tops.len(), diags)
}

fn dummy_shapes(
    layer: &LayerRef,
    def: &LayerDef,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Option<BlobShape>>> {
    let v = def.param_block("dummy_data_param");
    let tops = def.tops.len();
    let legacy: Vec<(&str, Vec<Spanned<i64>>)> =
        ["num", "channels", "height", "width"].into_iter().map(|f| (f, v.ints(f))).collect();
    let shape_spans: Vec<_> = v.subs("shape").iter().filter_map(|s| s.span()).collect();
    if legacy.iter().all(|(_, vals)| vals.is_empty()) {
        let shapes = blob_shapes(layer, v, diags);
        return per_top(layer, "shape", shapes, &shape_spans, tops, diags);
    }
    if let Some(first) = shape_spans.first() {
        diags.push(
            layer
                .error(
                    "lvc::param::conflict",
                    "both `shape` and the legacy num/channels/height/width are set",
                )
                .with_label(*first, "shape")
                .with_help("use either `shape { dim… }` or num/channels/height/width"),
        );
        return None;
    }
    let missing: Vec<&str> =
        legacy.iter().filter(|(_, v)| v.is_empty()).map(|(name, _)| *name).collect();
    if !missing.is_empty() {
        // Caffe requires each legacy dim once or once per top.
        diags.push(
            layer
                .error(
                    "lvc::param::missing",
                    format!("dummy_data_param lacks {}", missing.join(", ")),
                )
                .with_label(
                    v.span().unwrap_or(layer.type_span),
                    "num/channels/height/width only partly given",
                )
                .with_help(
                    "give all four of num, channels, height and width, or use `shape { dim… }`",
                ),
        );
        return None;
    }
    let mut columns = Vec::new();
    for (name, vals) in legacy {
        let spans: Vec<_> = vals.iter().map(|x| x.span).collect();
        let vals = vals.iter().map(|x| x.value).collect();
        columns.push(per_top(layer, name, vals, &spans, tops, diags)?);
    }
    Some(
        (0..tops)
            .map(|t| columns.iter().map(|c| c[t]).collect::<Option<Vec<i64>>>().map(BlobShape))
            .collect(),
    )
}

impl LayerOp for DataOp {
    fn type_name(&self) -> &'static str {
        self.type_name
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        let arity = match self.source {
            Source::Database { .. } | Source::ImageList { .. } => {
                Arity::new((0, Some(0)), (1, Some(2)))
            }
            Source::Windows { .. } | Source::Memory => Arity::exact(0, 2),
            Source::Python { .. } => Arity::new((0, Some(0)), (0, None)),
            _ => Arity::new((0, Some(0)), (1, None)),
        };
        if !arity.check(&self.layer, self.type_name, ctx) {
            return None;
        }
        let unknown: Vec<&str> = self
            .tops
            .iter()
            .zip(&self.shapes)
            .filter(|(_, s)| s.is_none())
            .map(|(t, _)| t.as_str())
            .collect();
        if unknown.is_empty() {
            return self.shapes.iter().cloned().collect();
        }
        let hint: Vec<String> =
            unknown.iter().map(|t| format!("--input-shape {t}=N,C,H,W")).collect();
        let why = match self.source {
            Source::Input => "input_param gives no shape",
            Source::Python { .. } => "a Python data layer sets its shapes at run time",
            Source::Hdf5 { .. } => "HDF5Data takes its shapes from the files",
            _ => "the shape depends on the data read at run time",
        };
        let mut d = self.layer.error(
            "lvc::shape::unknown_input",
            format!(
                "the shape of {} is unknown until run time: {why}",
                unknown.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
            ),
        );
        for t in ctx.layer.tops.iter().filter(|t| unknown.contains(&t.value.as_str())) {
            d = d.with_label(t.span, "shape unknown");
        }
        ctx.diags.push(d.with_help(format!("give it on the command line: {}", hint.join(" "))));
        None
    }

    fn input_shapes(&self) -> Option<Vec<Option<BlobShape>>> {
        Some(self.shapes.clone())
    }
}

/// `augment_param` (lvc extension): every probability in [0, 1] (default 0,
/// off) and the magnitudes of each transform. Applied in TRAIN only.
#[derive(Debug, Clone, PartialEq)]
pub struct AugmentParams {
    pub seed: i64,
    pub flip_prob: f64,
    pub rot90_prob: f64,
    pub affine_prob: f64,
    pub max_rotation_deg: f64,
    pub max_scale: f64,
    pub max_shift: f64,
    pub elastic_prob: f64,
    pub elastic_alpha: f64,
    pub elastic_sigma: f64,
    pub intensity_prob: f64,
    pub max_intensity_scale: f64,
    pub max_intensity_shift: f64,
    pub gamma_prob: f64,
    pub max_gamma: f64,
    pub contrast_prob: f64,
    pub max_contrast: f64,
    pub noise_prob: f64,
    pub noise_std: f64,
}

/// Fields of `augment_param` that are probabilities.
const PROBABILITIES: &[&str] = &[
    "flip_prob",
    "rot90_prob",
    "affine_prob",
    "elastic_prob",
    "intensity_prob",
    "gamma_prob",
    "contrast_prob",
    "noise_prob",
];

/// Magnitudes and their allowed ranges (inclusive), with why.
const MAGNITUDES: &[(&str, f64, f64, &str)] = &[
    ("max_rotation_deg", 0.0, 180.0, "a rotation of at most ±180°"),
    ("max_scale", 0.0, 0.99, "a zoom factor in [1 − s, 1 + s], so s < 1"),
    ("max_shift", 0.0, 1.0, "a shift as a fraction of the image size"),
    ("elastic_alpha", 0.0, f64::INFINITY, "a displacement strength ≥ 0"),
    ("elastic_sigma", 0.0, f64::INFINITY, "a smoothing width ≥ 0"),
    ("max_intensity_scale", 0.0, 0.99, "an intensity factor in [1 − s, 1 + s], so s < 1"),
    ("max_intensity_shift", 0.0, f64::INFINITY, "an intensity offset ≥ 0"),
    ("max_gamma", 0.0, 0.99, "a gamma in [1 − g, 1 + g], so g < 1"),
    ("max_contrast", 0.0, 0.99, "a contrast factor in [1 − c, 1 + c], so c < 1"),
    ("noise_std", 0.0, f64::INFINITY, "a noise standard deviation ≥ 0"),
];

#[derive(Debug, Clone)]
pub struct AugmentOp {
    pub layer: LayerRef,
    pub params: AugmentParams,
}

pub fn build_augment(def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<AugmentOp> {
    let layer = LayerRef::of(def);
    let v = def.param_block("augment_param");
    let errors_before = super::common::error_count(diags);
    for &name in PROBABILITIES {
        if let Some(p) = v.float(name).filter(|p| !(0.0..=1.0).contains(&p.value)) {
            diags.push(range_error(
                &layer,
                p.span,
                format!("{name} must be a probability in [0, 1], got {}", p.value),
                "use 0 (off) to 1 (always)",
            ));
        }
    }
    for &(name, lo, hi, why) in MAGNITUDES {
        if let Some(x) = v.float(name).filter(|x| !(lo..=hi).contains(&x.value)) {
            let range =
                if hi.is_finite() { format!("[{lo}, {hi}]") } else { format!("[{lo}, ∞)") };
            diags.push(range_error(
                &layer,
                x.span,
                format!("{name} must be in {range}, got {}", x.value),
                format!("{name} is {why}"),
            ));
        }
    }
    if super::common::error_count(diags) != errors_before {
        return None;
    }
    // lvc's AugmentParameter (descriptor/lvc.rs): every default is 0 (off).
    let f = |name: &str| v.float_or_default(name).value;
    let params = AugmentParams {
        seed: v.int_or_default("seed").value,
        flip_prob: f("flip_prob"),
        rot90_prob: f("rot90_prob"),
        affine_prob: f("affine_prob"),
        max_rotation_deg: f("max_rotation_deg"),
        max_scale: f("max_scale"),
        max_shift: f("max_shift"),
        elastic_prob: f("elastic_prob"),
        elastic_alpha: f("elastic_alpha"),
        elastic_sigma: f("elastic_sigma"),
        intensity_prob: f("intensity_prob"),
        max_intensity_scale: f("max_intensity_scale"),
        max_intensity_shift: f("max_intensity_shift"),
        gamma_prob: f("gamma_prob"),
        max_gamma: f("max_gamma"),
        contrast_prob: f("contrast_prob"),
        max_contrast: f("max_contrast"),
        noise_prob: f("noise_prob"),
        noise_std: f("noise_std"),
    };
    Some(AugmentOp { layer, params })
}

impl LayerOp for AugmentOp {
    fn type_name(&self) -> &'static str {
        "Augment"
    }

    /// Bottoms data (and label) pass through with their shapes.
    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        if !Arity::new((1, Some(2)), (1, Some(2))).check(&self.layer, "Augment", ctx) {
            return None;
        }
        if ctx.layer.tops.len() != ctx.bottoms.len() {
            ctx.diags.push(
                self.layer
                    .error(
                        "lvc::shape::arity",
                        "Augment needs one top per bottom (data, and optionally label)",
                    )
                    .with_label(self.layer.type_span, "")
                    .with_help("list as many tops as bottoms"),
            );
            return None;
        }
        Some(ctx.bottoms.to_vec())
    }

    /// Identity: for crop-offset purposes the augmented image is the image
    /// (the random transforms keep its size and centre on average).
    fn coord_map(&self) -> Option<Vec<AxisMap>> {
        Some(identity_map(2))
    }
}

/// `Parameter`: no bottoms, one top that is itself a learnable blob of
/// `parameter_param.shape` (Caffe leaves it zero until weights are loaded).
#[derive(Debug, Clone)]
pub struct ParameterOp {
    pub layer: LayerRef,
    pub shape: BlobShape,
}

pub fn build_parameter(def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<ParameterOp> {
    let layer = LayerRef::of(def);
    let v = def.param_block("parameter_param");
    let errors_before = super::common::error_count(diags);
    let shape = blob_shapes(&layer, v, diags).pop().unwrap_or(BlobShape(Vec::new()));
    (super::common::error_count(diags) == errors_before).then_some(ParameterOp { layer, shape })
}

impl LayerOp for ParameterOp {
    fn type_name(&self) -> &'static str {
        "Parameter"
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        Arity::exact(0, 1).check(&self.layer, "Parameter", ctx).then(|| vec![self.shape.clone()])
    }

    fn param_shapes(&self, _bottoms: &[BlobShape]) -> Vec<ParamShape> {
        vec![ParamShape {
            role: ParamRole::Parameter,
            shape: self.shape.clone(),
            filler: Some(constant_filler(0.0)),
        }]
    }
}

/// `HDF5Output`: writes its two bottoms (data, label) to
/// `hdf5_output_param.file_name`; no tops.
#[derive(Debug, Clone)]
pub struct Hdf5OutputOp {
    pub layer: LayerRef,
    pub file_name: Option<String>,
}

pub fn build_hdf5_output(def: &LayerDef, _diags: &mut Vec<Diagnostic>) -> Option<Hdf5OutputOp> {
    let file_name =
        def.param_block("hdf5_output_param").string("file_name").map(|f| f.value.to_string());
    Some(Hdf5OutputOp { layer: LayerRef::of(def), file_name })
}

impl LayerOp for Hdf5OutputOp {
    fn type_name(&self) -> &'static str {
        "HDF5Output"
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        Arity::exact(2, 0).check(&self.layer, "HDF5Output", ctx).then(Vec::new)
    }
}

#[cfg(test)]
mod tests {
    use super::{DataOp, Source};
    use crate::ops::testing::{layer, run_layer};
    use crate::ops::BlobShape;
    use crate::ops::LayerOp;

    fn data_op(body: &str) -> DataOp {
        let (_, def) = layer(body);
        let kind = crate::ops::OpKind::from_name(&def.kind.value).expect("a layer type");
        super::build(kind, &def, &mut Vec::new()).expect("builds")
    }

    fn shapes(body: &str) -> Vec<Option<Vec<i64>>> {
        data_op(body).shapes.into_iter().map(|s| s.map(|s| s.0)).collect()
    }

    #[test]
    fn input_shape_once_per_top_or_not_at_all() {
        let one = "name: \"in\" type: \"Input\" top: \"data\" top: \"label\" input_param { shape { dim: 1 dim: 1 dim: 256 dim: 256 } }";
        assert_eq!(shapes(one), [Some(vec![1, 1, 256, 256]), Some(vec![1, 1, 256, 256])]);
        let each = "name: \"in\" type: \"Input\" top: \"a\" top: \"b\" input_param { shape { dim: 1 } shape { dim: 2 dim: 3 } }";
        assert_eq!(shapes(each), [Some(vec![1]), Some(vec![2, 3])]);
        let none = "name: \"in\" type: \"Input\" top: \"a\"";
        assert_eq!(shapes(none), [None]);
        let r = run_layer(none, &[]);
        assert_eq!(r.codes(), ["lvc::shape::unknown_input"]);
        insta::assert_snapshot!(r.rendered());
        let bad = "name: \"in\" type: \"Input\" top: \"a\" top: \"b\" top: \"c\" input_param { shape { dim: 1 } shape { dim: 2 } }";
        assert_eq!(run_layer(bad, &[]).codes(), ["lvc::param::count"]);
        let r = run_layer(one, &[]);
        assert_eq!(r.tops, Some(vec![BlobShape(vec![1, 1, 256, 256]); 2]));
    }

    #[test]
    fn dummy_data_shapes() {
        let legacy = "name: \"d\" type: \"DummyData\" top: \"a\" top: \"b\" dummy_data_param { num: 2 channels: 3 channels: 1 height: 4 width: 5 }";
        assert_eq!(shapes(legacy), [Some(vec![2, 3, 4, 5]), Some(vec![2, 1, 4, 5])]);
        let shaped = "name: \"d\" type: \"DummyData\" top: \"a\" dummy_data_param { shape { dim: 7 dim: 2 } }";
        assert_eq!(shapes(shaped), [Some(vec![7, 2])]);
        let both = "name: \"d\" type: \"DummyData\" top: \"a\" dummy_data_param { num: 1 shape { dim: 7 } }";
        assert_eq!(run_layer(both, &[]).codes(), ["lvc::param::conflict"]);
        let partial =
            "name: \"d\" type: \"DummyData\" top: \"a\" dummy_data_param { num: 1 channels: 3 }";
        assert_eq!(run_layer(partial, &[]).codes(), ["lvc::param::missing"]);
        let counts = "name: \"d\" type: \"DummyData\" top: \"a\" dummy_data_param { num: 1 num: 2 channels: 3 height: 1 width: 1 }";
        assert_eq!(run_layer(counts, &[]).codes(), ["lvc::param::count"]);
    }

    #[test]
    fn readers_know_their_shapes_when_the_prototxt_fixes_them() {
        let data = "name: \"d\" type: \"Data\" top: \"data\" top: \"label\" data_param { source: \"train_db\" batch_size: 8 } \
                    transform_param { crop_size: 227 force_gray: true }";
        assert_eq!(shapes(data), [Some(vec![8, 1, 227, 227]), Some(vec![8])]);
        let db =
            "name: \"d\" type: \"Data\" top: \"data\" top: \"label\" data_param { source: \"train_db\" batch_size: 8 }";
        assert_eq!(shapes(db), [None, Some(vec![8])]);
        assert_eq!(data_op(db).source, Source::Database { source: Some("train_db".to_string()) });
        let images = "name: \"d\" type: \"ImageData\" top: \"data\" top: \"label\" \
                      image_data_param { source: \"list.txt\" batch_size: 4 new_height: 256 new_width: 256 is_color: false }";
        assert_eq!(shapes(images), [Some(vec![4, 1, 256, 256]), Some(vec![4])]);
        let memory = "name: \"m\" type: \"MemoryData\" top: \"data\" top: \"label\" \
                      memory_data_param { batch_size: 2 channels: 1 height: 28 width: 28 }";
        assert_eq!(shapes(memory), [Some(vec![2, 1, 28, 28]), Some(vec![2])]);
        let hdf5 =
            "name: \"h\" type: \"HDF5Data\" top: \"data\" hdf5_data_param { source: \"files.txt\" batch_size: 2 }";
        assert_eq!(shapes(hdf5), [None]);
        let r = run_layer(db, &[]);
        assert_eq!(r.codes(), ["lvc::shape::unknown_input"]);
    }

    #[test]
    fn python_layers_are_data_sources_or_unsupported() {
        let source = "name: \"data\" type: \"Python\" top: \"data\" top: \"label\" \
                      python_param { module: \"voc_layers\" layer: \"VOCSegDataLayer\" param_str: \"{'seed': 1337}\" }";
        let op = data_op(source);
        assert_eq!(op.shapes, [None, None]);
        assert!(matches!(&op.source, Source::Python { module, .. } if module == "voc_layers"));
        let op_layer =
            "name: \"proposal\" type: \"Python\" bottom: \"rpn_cls_prob\" top: \"rois\" \
                        python_param { module: \"rpn.proposal_layer\" layer: \"ProposalLayer\" }";
        let r = run_layer(op_layer, &[&[1, 18, 14, 14]]);
        assert_eq!(r.codes(), ["lvc::python::unsupported"]);
        insta::assert_snapshot!(r.rendered());
    }

    #[test]
    fn augment_passes_shapes_and_checks_ranges() {
        let body =
            "name: \"aug\" type: \"Augment\" bottom: \"data\" bottom: \"label\" top: \"data_aug\" top: \"label_aug\" \
                    augment_param { flip_prob: 0.5 max_rotation_deg: 15 }";
        let r = run_layer(body, &[&[1, 1, 256, 256], &[1, 1, 256, 256]]);
        assert_eq!((r.top(0), r.top(1)), (vec![1, 1, 256, 256], vec![1, 1, 256, 256]));
        let (_, def) = layer(body);
        let op = super::build_augment(&def, &mut Vec::new()).expect("builds");
        let p = &op.params;
        assert_eq!((p.flip_prob, p.max_rotation_deg, p.noise_prob), (0.5, 15.0, 0.0));
        assert_eq!(op.coord_map(), Some(vec![crate::ops::AxisMap::IDENTITY; 2]));
        let bad = body.replace("flip_prob: 0.5", "flip_prob: 1.5 max_scale: 2");
        let r = run_layer(&bad, &[&[1, 1, 256, 256], &[1, 1, 256, 256]]);
        assert_eq!(r.codes(), ["lvc::param::range", "lvc::param::range"]);
        insta::assert_snapshot!(r.rendered());
    }

    #[test]
    fn parameter_and_hdf5_output() {
        let r =
            run_layer("name: \"p\" type: \"Parameter\" top: \"w\" parameter_param { shape { dim: 3 dim: 4 } }", &[]);
        assert_eq!(r.top(0), [3, 4]);
        assert_eq!(r.param_dims(), [("parameter", vec![3, 4])]);
        let r = run_layer(
            "name: \"o\" type: \"HDF5Output\" bottom: \"a\" bottom: \"b\" hdf5_output_param { file_name: \"out.h5\" }",
            &[&[1, 2], &[1]],
        );
        assert_eq!(r.tops, Some(vec![]));
    }
}
