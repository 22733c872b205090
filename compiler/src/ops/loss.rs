//! Softmax, the loss layers and the metrics: SoftmaxWithLoss, Accuracy,
//! SigmoidCrossEntropyLoss, EuclideanLoss, ContrastiveLoss, HingeLoss,
//! InfogainLoss, MultinomialLogisticLoss, SmoothL1Loss (Faster R-CNN fork),
//! and lvc's native Dice metric / DiceLoss (DIGITS' Python Dice layer).

use super::common::{canonical_axis, identity_map, plural, range_error, Arity, LayerRef};
use super::OpKind;
use super::{checked_product, saturating_product, AxisMap, BlobShape, LayerOp, ShapeCtx};
use crate::diag::Diagnostic;
use crate::schema::{LayerDef, ParamView, Spanned};

/// Caffe's `LossParameter.NormalizationMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalization {
    /// outer·inner, ignored positions included.
    Full,
    /// Non-ignored positions.
    Valid,
    /// outer (the batch size for axis 1).
    BatchSize,
    /// 1.
    None,
}

/// `loss_param` with Caffe's presence rules applied.
#[derive(Debug, Clone, PartialEq)]
pub struct LossParams {
    /// Only when written (presence matters).
    pub ignore_label: Option<Spanned<i64>>,
    /// `normalization` if written, else legacy `normalize` (true → VALID,
    /// false → BATCH_SIZE), else the layer's default (VALID; BATCH_SIZE for
    /// SigmoidCrossEntropyLoss).
    pub normalization: Normalization,
    /// lvc extension `class_weight`: one per class, or empty.
    pub class_weight: Vec<Spanned<f64>>,
}

/// `dice_param` (lvc extension) with its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct DiceParams {
    /// Added to numerator and denominator; default 1.
    pub smooth: f64,
    pub ignore_label: Option<Spanned<i64>>,
    /// One per class, or empty (all 1).
    pub class_weight: Vec<Spanned<f64>>,
    /// Score of an image where prediction and label are both empty; default 1.
    pub empty_score: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Loss {
    /// Softmax along `axis` (default 1).
    Softmax {
        axis: Spanned<i64>,
    },
    SoftmaxWithLoss {
        axis: Spanned<i64>,
        loss: LossParams,
    },
    /// `accuracy_param`: top_k (default 1), axis (default 1), its own ignore_label.
    Accuracy {
        top_k: Spanned<i64>,
        axis: Spanned<i64>,
        ignore_label: Option<Spanned<i64>>,
    },
    SigmoidCrossEntropyLoss {
        loss: LossParams,
    },
    EuclideanLoss,
    /// `contrastive_loss_param`: margin (default 1), legacy_version (default false).
    ContrastiveLoss {
        margin: f64,
        legacy_version: bool,
    },
    /// `hinge_loss_param.norm`: L1 (default) or L2.
    HingeLoss {
        norm: String,
    },
    /// `axis` from `infogain_loss_param` (default 1).
    InfogainLoss {
        axis: Spanned<i64>,
        loss: LossParams,
    },
    MultinomialLogisticLoss,
    /// `smooth_l1_loss_param.sigma` (default 1).
    SmoothL1Loss {
        sigma: f64,
    },
    /// Dice of the argmax prediction (a metric, never a loss).
    Dice(DiceParams),
    /// Soft Dice loss on the softmax probabilities.
    DiceLoss(DiceParams),
}

#[derive(Debug, Clone)]
pub struct LossOp {
    pub layer: LayerRef,
    pub type_name: &'static str,
    pub loss: Loss,
}

fn loss_params(
    layer: &LayerRef,
    v: ParamView<'_>,
    default: Normalization,
    diags: &mut Vec<Diagnostic>,
) -> LossParams {
    let normalization = match (v.ident("normalization"), v.bool("normalize")) {
        (Some(n), _) => match n.value {
            "FULL" => Normalization::Full,
            "BATCH_SIZE" => Normalization::BatchSize,
            "NONE" => Normalization::None,
            _ => Normalization::Valid,
        },
        (None, Some(b)) if b.value => Normalization::Valid,
        (None, Some(_)) => Normalization::BatchSize,
        // Not the descriptor's VALID: the default depends on the layer
        // (SigmoidCrossEntropyLoss keeps BATCH_SIZE) and on `normalize`.
        (None, None) => default,
    };
    LossParams {
        ignore_label: v.int("ignore_label"),
        normalization,
        class_weight: class_weights(layer, v, diags),
    }
}

fn class_weights(
    layer: &LayerRef,
    v: ParamView<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Spanned<f64>> {
    let weights = v.floats("class_weight");
    for w in weights.iter().filter(|w| !(w.value >= 0.0 && w.value.is_finite())) {
        diags.push(range_error(
            layer,
            w.span,
            format!("class_weight must be a finite number ≥ 0, got {}", w.value),
            "use non-negative weights (0 switches a class off)",
        ));
    }
    weights
}

fn dice_params(layer: &LayerRef, def: &LayerDef, diags: &mut Vec<Diagnostic>) -> DiceParams {
    let v = def.param_block("dice_param");
    let smooth = v.float_or_default("smooth");
    if smooth.value < 0.0 {
        diags.push(range_error(
            layer,
            smooth.span,
            format!("smooth must be ≥ 0, got {}", smooth.value),
            "use smooth: 1 (the usual choice) or 0",
        ));
    }
    DiceParams {
        smooth: smooth.value,
        ignore_label: v.int("ignore_label"),
        class_weight: class_weights(layer, v, diags),
        empty_score: v.float_or_default("empty_score").value,
    }
}

/// Builds `kind` (one of this family's kinds) from `def`.
pub fn build(kind: OpKind, def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<LossOp> {
    let layer = LayerRef::of(def);
    let type_name = kind.name();
    let errors_before = super::common::error_count(diags);
    let softmax_axis = || def.param_block("softmax_param").int_or_default("axis");
    let lp = def.param_block("loss_param");
    let loss = match kind {
        OpKind::Softmax => Loss::Softmax { axis: softmax_axis() },
        OpKind::SoftmaxWithLoss => Loss::SoftmaxWithLoss {
            axis: softmax_axis(),
            loss: loss_params(&layer, lp, Normalization::Valid, diags),
        },
        OpKind::Accuracy => {
            let v = def.param_block("accuracy_param");
            let top_k = v.int_or_default("top_k");
            if top_k.value < 1 {
                diags.push(range_error(
                    &layer,
                    top_k.span,
                    "top_k must be at least 1",
                    "use top_k: 1 or more",
                ));
            }
            Loss::Accuracy {
                top_k,
                axis: v.int_or_default("axis"),
                ignore_label: v.int("ignore_label"),
            }
        }
        OpKind::SigmoidCrossEntropyLoss => {
            // "for historical reasons" this loss defaults to BATCH_SIZE.
            Loss::SigmoidCrossEntropyLoss {
                loss: loss_params(&layer, lp, Normalization::BatchSize, diags),
            }
        }
        OpKind::EuclideanLoss => Loss::EuclideanLoss,
        OpKind::ContrastiveLoss => {
            let v = def.param_block("contrastive_loss_param");
            Loss::ContrastiveLoss {
                margin: v.float_or_default("margin").value,
                legacy_version: v.bool_or_default("legacy_version").value,
            }
        }
        OpKind::HingeLoss => Loss::HingeLoss {
            norm: def.param_block("hinge_loss_param").ident_or_default("norm").value.to_string(),
        },
        OpKind::InfogainLoss => Loss::InfogainLoss {
            axis: def.param_block("infogain_loss_param").int_or_default("axis"),
            loss: loss_params(&layer, lp, Normalization::Valid, diags),
        },
        OpKind::MultinomialLogisticLoss => Loss::MultinomialLogisticLoss,
        OpKind::SmoothL1Loss => Loss::SmoothL1Loss {
            // Not in the descriptor: `smooth_l1_loss_param` is the Fast R-CNN
            // fork's; its caffe.proto declares sigma [default = 1].
            sigma: def.param_block("smooth_l1_loss_param").float("sigma").map_or(1.0, |s| s.value),
        },
        OpKind::Dice => Loss::Dice(dice_params(&layer, def, diags)),
        _ => Loss::DiceLoss(dice_params(&layer, def, diags)),
    };
    (super::common::error_count(diags) == errors_before).then_some(LossOp {
        layer,
        type_name,
        loss,
    })
}

/// `(outer, classes, inner)` of a score blob around its class axis.
fn split_at_axis(shape: &BlobShape, axis: usize) -> (i64, i64, i64) {
    // Saturating: the shape passed the IR's size check, so these overflow
    // only beside a zero-sized axis, and then the label check below fails.
    let d = shape.dims();
    (saturating_product(&d[..axis]), d[axis], saturating_product(&d[axis + 1..]))
}

impl LossOp {
    fn arity(&self) -> Arity {
        match &self.loss {
            Loss::Softmax { .. } => Arity::exact(1, 1),
            Loss::SoftmaxWithLoss { .. } => Arity::new((2, Some(2)), (1, Some(2))).auto_tops(),
            Loss::Accuracy { .. } | Loss::Dice(_) => Arity::new((2, Some(2)), (1, Some(2))),
            Loss::ContrastiveLoss { .. } => Arity::exact(3, 1).auto_tops(),
            Loss::InfogainLoss { .. } => Arity::new((2, Some(3)), (1, Some(2))).auto_tops(),
            Loss::SmoothL1Loss { .. } => Arity::new((2, Some(4)), (1, Some(1))).auto_tops(),
            _ => Arity::exact(2, 1).auto_tops(),
        }
    }

    fn is_loss(&self) -> bool {
        !matches!(self.loss, Loss::Softmax { .. } | Loss::Accuracy { .. } | Loss::Dice(_))
    }

    /// LossLayer's check: scores and labels have the same first dimension.
    fn same_batch(&self, ctx: &mut ShapeCtx<'_>) -> bool {
        let (a, b) = (&ctx.bottoms[0], &ctx.bottoms[1]);
        if a.dims().first() == b.dims().first() {
            return true;
        }
        let d = self
            .layer
            .error(
                "lvc::shape::label",
                format!("{} and {} differ in their first (batch) axis", a, b),
            )
            .with_label(ctx.bottom_span(0), format!("{a}"))
            .with_label(ctx.bottom_span(1), format!("{b}"))
            .with_help("feed the predictions and the labels of the same batch");
        ctx.diags.push(d);
        false
    }

    /// The label-count rule of SoftmaxWithLoss, Accuracy and InfogainLoss:
    /// one label per (outer, inner) position.
    fn label_count(&self, ctx: &mut ShapeCtx<'_>, axis: usize) -> bool {
        let (scores, label) = (ctx.bottoms[0].clone(), ctx.bottoms[1].clone());
        let (outer, classes, inner) = split_at_axis(&scores, axis);
        if outer.checked_mul(inner) == label.checked_count() {
            return true;
        }
        let mut expected = scores.dims().to_vec();
        expected[axis] = 1;
        ctx.diags.push(
            self.layer
                .error(
                    "lvc::shape::label",
                    format!(
                        "the label has {} values, but the scores {scores} have {} positions to label ({} along axis {axis})",
                        label.count(),
                        outer.saturating_mul(inner),
                        plural(classes as usize, "class")
                    ),
                )
                .with_label(ctx.bottom_span(1), format!("label {label}"))
                .with_label(ctx.bottom_span(0), format!("scores {scores}"))
                .with_help(format!(
                    "the label needs one value per position, i.e. {}; crop the scores against the label (as FCN's `score` Crop layer does) or fix the data layer",
                    BlobShape(expected)
                )),
        );
        false
    }

    fn check_class_weights(
        &self,
        ctx: &mut ShapeCtx<'_>,
        weights: &[Spanned<f64>],
        classes: i64,
    ) -> bool {
        if weights.is_empty() || weights.len() as i64 == classes {
            return true;
        }
        let mut d = self.layer.error(
            "lvc::param::count",
            format!(
                "{} for {}",
                plural(weights.len(), "class_weight"),
                plural(classes as usize, "class")
            ),
        );
        for w in weights {
            d = d.with_label(w.span, "");
        }
        ctx.diags.push(
            d.with_help(format!("give exactly one class_weight per class ({classes}), or none")),
        );
        false
    }

    /// Dice / DiceLoss: scores N×C×H×W and a label N×1×H×W.
    fn dice_shapes(&self, ctx: &mut ShapeCtx<'_>, p: &DiceParams) -> Option<(i64, bool)> {
        let (scores, label) = (ctx.bottoms[0].clone(), ctx.bottoms[1].clone());
        let (s, l) = (scores.dims(), label.dims());
        let fits =
            s.len() >= 2 && l.len() == s.len() && l[0] == s[0] && l[1] == 1 && l[2..] == s[2..];
        if !fits {
            let mut expected = s.to_vec();
            if expected.len() >= 2 {
                expected[1] = 1;
            }
            ctx.diags.push(
                self.layer
                    .error("lvc::shape::dice", format!("{} needs a label of shape {}, got {label}", self.type_name, BlobShape(expected.clone())))
                    .with_label(ctx.bottom_span(1), format!("label {label}"))
                    .with_label(ctx.bottom_span(0), format!("scores {scores}"))
                    .with_help(format!(
                        "the label must be one class index per pixel ({}) with the scores' spatial size; crop the scores to the label",
                        BlobShape(expected)
                    )),
            );
            return None;
        }
        let classes = s[1];
        let weights_ok = self.check_class_weights(ctx, &p.class_weight, classes);
        Some((classes, weights_ok))
    }
}

impl LayerOp for LossOp {
    fn type_name(&self) -> &'static str {
        self.type_name
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        let arity = self.arity();
        if !arity.check(&self.layer, self.type_name, ctx) {
            return None;
        }
        let tops = arity.top_count(ctx.layer.tops.len());
        let scalar = BlobShape(Vec::new());
        let scores = ctx.bottoms[0].clone();
        // Every type but Softmax has a label (or target) as bottom 1.
        let batch_ok = ctx.bottoms.len() < 2 || self.same_batch(ctx);
        let second = match &self.loss {
            Loss::Softmax { axis } => {
                canonical_axis(&self.layer, axis, &scores, "axis", ctx.diags)?;
                return Some(vec![scores]);
            }
            Loss::SoftmaxWithLoss { axis, loss } | Loss::InfogainLoss { axis, loss } => {
                let a = canonical_axis(&self.layer, axis, &scores, "axis", ctx.diags)?;
                let labels_ok = self.label_count(ctx, a);
                let weights_ok =
                    self.check_class_weights(ctx, &loss.class_weight, scores.dims()[a]);
                if !(batch_ok && labels_ok && weights_ok) {
                    return None;
                }
                scores.clone()
            }
            Loss::Accuracy { top_k, axis, .. } => {
                let a = canonical_axis(&self.layer, axis, &scores, "axis", ctx.diags)?;
                let labels_ok = self.label_count(ctx, a);
                let classes = scores.dims()[a];
                if top_k.value > classes {
                    ctx.diags.push(range_error(
                        &self.layer,
                        top_k.span,
                        format!("top_k {} exceeds the {classes} classes", top_k.value),
                        format!("use top_k ≤ {classes}"),
                    ));
                    return None;
                }
                if !(batch_ok && labels_ok) {
                    return None;
                }
                BlobShape(vec![classes])
            }
            Loss::Dice(p) | Loss::DiceLoss(p) => {
                let (classes, weights_ok) = self.dice_shapes(ctx, p)?;
                if !weights_ok {
                    return None;
                }
                BlobShape(vec![classes])
            }
            Loss::SigmoidCrossEntropyLoss { .. }
            | Loss::EuclideanLoss
            | Loss::SmoothL1Loss { .. } => {
                let same = if matches!(self.loss, Loss::EuclideanLoss) {
                    scores.dims().get(1..).map(checked_product)
                        == ctx.bottoms[1].dims().get(1..).map(checked_product)
                } else {
                    scores.checked_count() == ctx.bottoms[1].checked_count()
                };
                if !same {
                    ctx.diags.push(
                        self.layer
                            .error(
                                "lvc::shape::mismatch",
                                format!(
                                    "{} needs inputs of one size, got {} and {}",
                                    self.type_name, scores, ctx.bottoms[1]
                                ),
                            )
                            .with_label(ctx.bottom_span(0), format!("{scores}"))
                            .with_label(ctx.bottom_span(1), format!("{}", ctx.bottoms[1]))
                            .with_help(
                                "the prediction and the target must have the same number of values",
                            ),
                    );
                    return None;
                }
                if !batch_ok {
                    return None;
                }
                scalar.clone()
            }
            Loss::ContrastiveLoss { .. }
            | Loss::HingeLoss { .. }
            | Loss::MultinomialLogisticLoss => {
                if !batch_ok {
                    return None;
                }
                scalar.clone()
            }
        };
        Some((0..tops).map(|i| if i == 0 { scalar.clone() } else { second.clone() }).collect())
    }

    fn default_loss_weight(&self, top: usize) -> f64 {
        if top == 0 && self.is_loss() {
            1.0
        } else {
            0.0
        }
    }

    fn coord_map(&self) -> Option<Vec<AxisMap>> {
        matches!(self.loss, Loss::Softmax { .. }).then(|| identity_map(2))
    }
}

#[cfg(test)]
mod tests {
    use super::{Loss, Normalization};
    use crate::ops::testing::{layer, run_layer};
    use crate::ops::{LayerOp, OpKind};

    fn loss_of(body: &str) -> Loss {
        let (_, def) = layer(body);
        let kind = crate::ops::OpKind::from_name(&def.kind.value).expect("a layer type");
        super::build(kind, &def, &mut Vec::new()).expect("builds").loss
    }

    fn normalization(body: &str) -> Normalization {
        match loss_of(body) {
            Loss::SoftmaxWithLoss { loss, .. } | Loss::SigmoidCrossEntropyLoss { loss } => {
                loss.normalization
            }
            other => panic!("not a loss with loss_param: {other:?}"),
        }
    }

    const SWL: &str = "name: \"loss\" type: \"SoftmaxWithLoss\" bottom: \"score\" bottom: \"label\" top: \"loss\"";

    #[test]
    fn softmax_with_loss_is_a_weighted_scalar() {
        let r = run_layer(SWL, &[&[1, 2, 256, 256], &[1, 1, 256, 256]]);
        assert_eq!(r.tops, Some(vec![crate::ops::BlobShape(vec![])]));
        let (_, def) = layer(SWL);
        let kind = OpKind::from_name(&def.kind.value).expect("a layer type");
        let op = super::build(kind, &def, &mut Vec::new()).expect("builds");
        assert_eq!((op.default_loss_weight(0), op.default_loss_weight(1)), (1.0, 0.0));
        // No top listed: Caffe creates one.
        let r = run_layer(&SWL.replace("top: \"loss\"", ""), &[&[1, 2, 4, 4], &[1, 1, 4, 4]]);
        assert_eq!(r.tops.as_ref().map(Vec::len), Some(1));
        let r = run_layer(&format!("{SWL} top: \"prob\""), &[&[1, 2, 4, 4], &[1, 1, 4, 4]]);
        assert_eq!(r.top(1), [1, 2, 4, 4]);
    }

    #[test]
    fn normalization_presence_rules() {
        assert_eq!(normalization(SWL), Normalization::Valid);
        assert_eq!(
            normalization(&format!("{SWL} loss_param {{ normalize: false }}")),
            Normalization::BatchSize
        );
        assert_eq!(
            normalization(&format!("{SWL} loss_param {{ normalize: true }}")),
            Normalization::Valid
        );
        assert_eq!(
            normalization(&format!("{SWL} loss_param {{ normalize: false normalization: FULL }}")),
            Normalization::Full
        );
        assert_eq!(
            normalization(
                "name: \"l\" type: \"SigmoidCrossEntropyLoss\" bottom: \"a\" bottom: \"b\""
            ),
            Normalization::BatchSize
        );
        let Loss::SoftmaxWithLoss { loss, .. } =
            loss_of(&format!("{SWL} loss_param {{ ignore_label: 255 }}"))
        else {
            panic!("SoftmaxWithLoss")
        };
        assert_eq!(loss.ignore_label.map(|l| l.value), Some(255));
    }

    #[test]
    fn labels_must_cover_every_position() {
        let r = run_layer(SWL, &[&[1, 2, 319, 319], &[1, 1, 256, 256]]);
        assert_eq!(r.codes(), ["lvc::shape::label"]);
        insta::assert_snapshot!(r.rendered());
        let r = run_layer(SWL, &[&[2, 2, 4, 4], &[1, 2, 4, 4]]);
        assert_eq!(r.codes(), ["lvc::shape::label"]);
    }

    #[test]
    fn class_weights_one_per_class() {
        let r = run_layer(
            &format!("{SWL} loss_param {{ class_weight: 1 class_weight: 3 }}"),
            &[&[1, 2, 4, 4], &[1, 1, 4, 4]],
        );
        assert!(r.diags.is_empty());
        let r = run_layer(
            &format!("{SWL} loss_param {{ class_weight: 1 class_weight: 3 class_weight: 1 }}"),
            &[&[1, 2, 4, 4], &[1, 1, 4, 4]],
        );
        assert_eq!(r.codes(), ["lvc::param::count"]);
        let r = run_layer(
            &format!("{SWL} loss_param {{ class_weight: -1 class_weight: 3 }}"),
            &[&[1, 2, 4, 4], &[1, 1, 4, 4]],
        );
        assert_eq!(r.codes(), ["lvc::param::range"]);
    }

    #[test]
    fn accuracy_top_k_and_per_class_top() {
        let body =
            "name: \"acc\" type: \"Accuracy\" bottom: \"score\" bottom: \"label\" top: \"acc\" top: \"per_class\"";
        let r = run_layer(body, &[&[1, 2, 8, 8], &[1, 1, 8, 8]]);
        assert_eq!((r.top(0), r.top(1)), (vec![], vec![2]));
        let r = run_layer(
            &format!("{body} accuracy_param {{ top_k: 3 }}"),
            &[&[1, 2, 8, 8], &[1, 1, 8, 8]],
        );
        assert_eq!(r.codes(), ["lvc::param::range"]);
        let (_, def) = layer(body);
        let op = crate::ops::testing::build(&def, &mut Vec::new()).expect("builds");
        assert_eq!(op.default_loss_weight(0), 0.0);
    }

    #[test]
    fn other_losses() {
        let pair = |kind: &str, a: &[i64], b: &[i64]| {
            run_layer(
                &format!("name: \"l\" type: \"{kind}\" bottom: \"a\" bottom: \"b\" top: \"l\""),
                &[a, b],
            )
        };
        assert_eq!(pair("EuclideanLoss", &[4, 3], &[4, 3, 1, 1]).top(0), Vec::<i64>::new());
        assert_eq!(pair("EuclideanLoss", &[4, 3], &[4, 2]).codes(), ["lvc::shape::mismatch"]);
        assert_eq!(pair("SigmoidCrossEntropyLoss", &[4, 3], &[4, 3]).top(0), Vec::<i64>::new());
        assert_eq!(pair("HingeLoss", &[4, 10], &[4]).top(0), Vec::<i64>::new());
        assert_eq!(pair("MultinomialLogisticLoss", &[4, 10], &[5]).codes(), ["lvc::shape::label"]);
        assert_eq!(pair("InfogainLoss", &[4, 10], &[4]).top(0), Vec::<i64>::new());
        assert_eq!(pair("SmoothL1Loss", &[1, 84, 1, 1], &[1, 84, 1, 1]).top(0), Vec::<i64>::new());
        let r = run_layer(
            "name: \"c\" type: \"ContrastiveLoss\" bottom: \"a\" bottom: \"b\" bottom: \"y\" top: \"l\"",
            &[&[4, 2], &[4, 2], &[4]],
        );
        assert_eq!(r.top(0), Vec::<i64>::new());
        let r =
            run_layer("name: \"s\" type: \"Softmax\" bottom: \"a\" top: \"p\"", &[&[1, 2, 3, 3]]);
        assert_eq!(r.top(0), [1, 2, 3, 3]);
    }

    #[test]
    fn dice_metric_and_loss() {
        let metric =
            "name: \"dice\" type: \"Dice\" bottom: \"score\" bottom: \"label\" top: \"dice\" top: \"per_class\"";
        let r = run_layer(metric, &[&[1, 2, 256, 256], &[1, 1, 256, 256]]);
        assert_eq!((r.top(0), r.top(1)), (vec![], vec![2]));
        let loss = "name: \"loss\" type: \"DiceLoss\" bottom: \"score\" bottom: \"label\" top: \"loss\" dice_param { smooth: 1 }";
        let (_, def) = layer(loss);
        let op = crate::ops::testing::build(&def, &mut Vec::new()).expect("builds");
        assert_eq!(op.default_loss_weight(0), 1.0);
        let (_, def) = layer(metric);
        assert_eq!(
            crate::ops::testing::build(&def, &mut Vec::new())
                .expect("builds")
                .default_loss_weight(0),
            0.0
        );
        let r = run_layer(loss, &[&[1, 2, 319, 319], &[1, 1, 256, 256]]);
        assert_eq!(r.codes(), ["lvc::shape::dice"]);
        insta::assert_snapshot!(r.rendered());
        let r = run_layer(loss, &[&[1, 2, 8, 8], &[1, 2, 8, 8]]);
        assert_eq!(r.codes(), ["lvc::shape::dice"]);
        let r = run_layer(
            &loss.replace("smooth: 1", "class_weight: 1"),
            &[&[1, 2, 8, 8], &[1, 1, 8, 8]],
        );
        assert_eq!(r.codes(), ["lvc::param::count"]);
        let Loss::DiceLoss(p) = loss_of(loss) else { panic!("DiceLoss") };
        assert_eq!((p.smooth, p.empty_score), (1.0, 1.0));
    }

    #[test]
    fn digits_python_dice_layer_runs_natively() {
        let body =
            "name: \"dice\" type: \"Python\" bottom: \"score\" bottom: \"label\" top: \"dice\"\n\
                    python_param { module: \"digits_python_layers\" layer: \"Dice\" }";
        let r = run_layer(body, &[&[1, 2, 16, 16], &[1, 1, 16, 16]]);
        assert_eq!(r.top(0), Vec::<i64>::new());
    }
}
