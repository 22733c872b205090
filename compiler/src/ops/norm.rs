//! Normalisation and affine layers: BatchNorm (stored statistics, no affine),
//! Scale and Bias (learned or from a second bottom), MVN.

use super::common::{
    canonical_axis, constant_filler, filler, identity_map, range_error, same_shape, Arity, LayerRef,
};
use super::{AxisMap, BlobShape, FillerDef, LayerOp, ParamShape, ShapeCtx};
use super::{OpKind, ParamRole};
use crate::diag::Diagnostic;
use crate::schema::{LayerDef, Spanned};

/// `batch_norm_param` with Caffe's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormParams {
    /// Unset: true in TEST, false in TRAIN.
    pub use_global_stats: Option<bool>,
    /// Default 0.999.
    pub moving_average_fraction: f64,
    /// Default 1e-5.
    pub eps: f64,
}

/// Where a Scale/Bias layer's factor comes from and which axes it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct AffineParams {
    /// First axis the factor covers; default 1.
    pub axis: Spanned<i64>,
    /// Axes covered with one bottom; −1 = all remaining; default 1.
    pub num_axes: Spanned<i64>,
    /// Scale: the factor's filler (default constant 1). Bias: the bias filler (default constant 0).
    pub filler: FillerDef,
    /// Scale only: whether a learned bias follows (default false).
    pub bias_term: bool,
    /// Scale only: the bias filler (default constant 0).
    pub bias_filler: FillerDef,
}

/// `mvn_param` with Caffe's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct MvnParams {
    /// Default true.
    pub normalize_variance: bool,
    /// Default false.
    pub across_channels: bool,
    /// Default 1e-9.
    pub eps: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Norm {
    BatchNorm(BatchNormParams),
    Scale(AffineParams),
    Bias(AffineParams),
    Mvn(MvnParams),
}

#[derive(Debug, Clone)]
pub struct NormOp {
    pub layer: LayerRef,
    pub norm: Norm,
}

/// Builds `kind` (one of this family's kinds) from `def`.
pub fn build(kind: OpKind, def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<NormOp> {
    let layer = LayerRef::of(def);
    let norm = match kind {
        OpKind::BatchNorm => {
            let v = def.param_block("batch_norm_param");
            Norm::BatchNorm(BatchNormParams {
                use_global_stats: v.bool("use_global_stats").map(|b| b.value),
                moving_average_fraction: v.float_or_default("moving_average_fraction").value,
                eps: v.float_or_default("eps").value,
            })
        }
        OpKind::Scale | OpKind::Bias => {
            let is_scale = def.kind.value == "Scale";
            let v = def.param_block(if is_scale { "scale_param" } else { "bias_param" });
            let num_axes = v.int_or_default("num_axes");
            if num_axes.value < -1 {
                diags.push(range_error(
                    &layer,
                    num_axes.span,
                    "num_axes must be −1 or more",
                    "use −1 (all remaining axes) or a count",
                ));
                return None;
            }
            let mut f = filler(&layer, v.sub("filler"), diags);
            if is_scale && !v.sub("filler").is_present() {
                // Not a descriptor default: scale_layer.cpp fills an unwritten
                // filler with constant 1 (an identity factor).
                f = constant_filler(1.0);
            }
            let params = AffineParams {
                axis: v.int_or_default("axis"),
                num_axes,
                filler: f,
                bias_term: is_scale && v.bool_or_default("bias_term").value,
                bias_filler: filler(&layer, v.sub("bias_filler"), diags),
            };
            if is_scale {
                Norm::Scale(params)
            } else {
                Norm::Bias(params)
            }
        }
        OpKind::MVN => {
            let v = def.param_block("mvn_param");
            Norm::Mvn(MvnParams {
                normalize_variance: v.bool_or_default("normalize_variance").value,
                across_channels: v.bool_or_default("across_channels").value,
                eps: v.float_or_default("eps").value,
            })
        }
        _ => return None,
    };
    Some(NormOp { layer, norm })
}

impl NormOp {
    fn type_str(&self) -> &'static str {
        match self.norm {
            Norm::BatchNorm(_) => "BatchNorm",
            Norm::Scale(_) => "Scale",
            Norm::Bias(_) => "Bias",
            Norm::Mvn(_) => "MVN",
        }
    }

    /// The factor's shape: bottom[1]'s shape, or the covered axes of bottom[0].
    fn factor_shape(
        &self,
        p: &AffineParams,
        bottoms: &[BlobShape],
        diags: &mut Vec<Diagnostic>,
    ) -> Option<BlobShape> {
        let data = bottoms.first()?;
        // A scalar second bottom is allowed with any axis (Caffe skips the axis check).
        if let Some(factor) = bottoms.get(1).filter(|f| f.rank() == 0) {
            return Some(factor.clone());
        }
        let axis = canonical_axis(&self.layer, &p.axis, data, "axis", diags)?;
        let d = data.dims();
        match bottoms.get(1) {
            Some(factor) => {
                let end = axis + factor.rank();
                if end > d.len() || d[axis..end] != *factor.dims() {
                    diags.push(
                        self.layer
                            .error(
                                "lvc::shape::mismatch",
                                format!(
                                    "the factor {factor} does not match axes {axis}.. of {data}"
                                ),
                            )
                            .with_label(p.axis.span, format!("axis {axis}"))
                            .with_help(format!(
                                "bottom[1] must equal bottom[0]'s dims from axis {axis} on"
                            )),
                    );
                    return None;
                }
                Some(factor.clone())
            }
            None => {
                let end =
                    if p.num_axes.value == -1 { d.len() } else { axis + p.num_axes.value as usize };
                if end > d.len() {
                    diags.push(range_error(
                        &self.layer,
                        p.num_axes.span,
                        format!(
                            "axis {axis} + num_axes {} runs past the {}-axis bottom {data}",
                            p.num_axes.value,
                            d.len()
                        ),
                        format!("use num_axes ≤ {}", d.len() - axis),
                    ));
                    return None;
                }
                Some(BlobShape(d[axis..end].to_vec()))
            }
        }
    }
}

impl LayerOp for NormOp {
    fn type_name(&self) -> &'static str {
        self.type_str()
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        match &self.norm {
            Norm::Scale(p) | Norm::Bias(p) => {
                if !Arity::new((1, Some(2)), (1, Some(1))).check(&self.layer, self.type_str(), ctx)
                {
                    return None;
                }
                self.factor_shape(p, ctx.bottoms, ctx.diags)?;
                Some(vec![ctx.bottoms[0].clone()])
            }
            _ => same_shape(&self.layer, self.type_str(), ctx),
        }
    }

    fn param_shapes(&self, bottoms: &[BlobShape]) -> Vec<ParamShape> {
        match &self.norm {
            Norm::BatchNorm(_) => {
                let channels = match bottoms.first().map(|b| b.dims()) {
                    Some([_, c, ..]) => *c,
                    _ => 1,
                };
                [
                    (ParamRole::Mean, channels),
                    (ParamRole::Variance, channels),
                    (ParamRole::MovingAverageFactor, 1),
                ]
                .into_iter()
                .map(|(role, n)| ParamShape {
                    role,
                    shape: BlobShape(vec![n]),
                    filler: Some(constant_filler(0.0)),
                })
                .collect()
            }
            Norm::Scale(p) | Norm::Bias(p) => {
                let Some(shape) = self.factor_shape(p, bottoms, &mut Vec::new()) else {
                    return Vec::new();
                };
                let is_scale = matches!(self.norm, Norm::Scale(_));
                let mut blobs = Vec::new();
                if bottoms.len() == 1 {
                    let role = if is_scale { ParamRole::Scale } else { ParamRole::Bias };
                    blobs.push(ParamShape {
                        role,
                        shape: shape.clone(),
                        filler: Some(p.filler.clone()),
                    });
                }
                if p.bias_term {
                    blobs.push(ParamShape {
                        role: ParamRole::Bias,
                        shape,
                        filler: Some(p.bias_filler.clone()),
                    });
                }
                blobs
            }
            Norm::Mvn(_) => Vec::new(),
        }
    }

    fn coord_map(&self) -> Option<Vec<AxisMap>> {
        Some(identity_map(2))
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::run_layer;

    #[test]
    fn batch_norm_stores_three_statistics() {
        let r = run_layer(
            "name: \"bn\" type: \"BatchNorm\" bottom: \"x\" top: \"x\"",
            &[&[2, 64, 8, 8]],
        );
        assert_eq!(r.top(0), [2, 64, 8, 8]);
        assert_eq!(
            r.param_dims(),
            [("mean", vec![64]), ("variance", vec![64]), ("moving_average_factor", vec![1])]
        );
    }

    #[test]
    fn scale_learns_a_factor_over_the_covered_axes() {
        let r = run_layer(
            "name: \"s\" type: \"Scale\" bottom: \"x\" top: \"x\" scale_param { bias_term: true }",
            &[&[2, 64, 8, 8]],
        );
        assert_eq!(r.param_dims(), [("scale", vec![64]), ("bias", vec![64])]);
        assert_eq!(r.params[0].filler.as_ref().map(|f| f.value), Some(1.0));
        let r = run_layer(
            "name: \"s\" type: \"Scale\" bottom: \"x\" top: \"y\" scale_param { axis: 1 num_axes: -1 }",
            &[&[2, 3, 4, 5]],
        );
        assert_eq!(r.param_dims(), [("scale", vec![3, 4, 5])]);
        let r = run_layer(
            "name: \"s\" type: \"Scale\" bottom: \"x\" top: \"y\" scale_param { num_axes: 4 }",
            &[&[2, 3, 4, 5]],
        );
        assert_eq!(r.codes(), ["lvc::param::range"]);
    }

    #[test]
    fn scale_by_a_second_bottom() {
        let body = "name: \"s\" type: \"Scale\" bottom: \"x\" bottom: \"f\" top: \"y\"";
        let r = run_layer(body, &[&[2, 3, 4, 5], &[3, 4]]);
        assert_eq!(r.top(0), [2, 3, 4, 5]);
        assert!(r.params.is_empty());
        let r = run_layer(body, &[&[2, 3, 4, 5], &[4]]);
        assert_eq!(r.codes(), ["lvc::shape::mismatch"]);
        let r = run_layer(body, &[&[2, 3, 4, 5], &[]]);
        assert_eq!(r.top(0), [2, 3, 4, 5]);
    }

    #[test]
    fn bias_and_mvn() {
        let r = run_layer("name: \"b\" type: \"Bias\" bottom: \"x\" top: \"y\"", &[&[2, 3, 4, 5]]);
        assert_eq!(r.param_dims(), [("bias", vec![3])]);
        assert_eq!(r.params[0].filler.as_ref().map(|f| f.value), Some(0.0));
        let r = run_layer("name: \"m\" type: \"MVN\" bottom: \"x\" top: \"y\"", &[&[2, 3, 4, 5]]);
        assert_eq!(r.top(0), [2, 3, 4, 5]);
    }
}
