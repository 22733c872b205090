//! InnerProduct (`inner_product_param`, `inner_product_layer.cpp`): flattens
//! the axes from `axis` on into K and maps them to `num_output`.

use super::common::{canonical_axis, filler, overflow, Arity, LayerRef};
use super::ParamRole;
use super::{checked_product, BlobShape, FillerDef, LayerOp, ParamShape, ShapeCtx};
use crate::diag::Diagnostic;
use crate::schema::{LayerDef, Spanned};

/// `inner_product_param` with Caffe's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct InnerProductParams {
    pub num_output: Spanned<i64>,
    /// Default true.
    pub bias_term: bool,
    /// First flattened axis; default 1.
    pub axis: Spanned<i64>,
    /// false: weight `[num_output, K]`; true: `[K, num_output]`.
    pub transpose: bool,
    pub weight_filler: FillerDef,
    pub bias_filler: FillerDef,
}

#[derive(Debug, Clone)]
pub struct InnerProductOp {
    pub layer: LayerRef,
    pub params: InnerProductParams,
}

pub fn build(def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<InnerProductOp> {
    let layer = LayerRef::of(def);
    let v = def.param_block("inner_product_param");
    let num_output = match v.int("num_output") {
        Some(n) if n.value > 0 => Some(n),
        other => {
            let (span, what) = match &other {
                Some(n) => (n.span, format!("num_output must be positive, got {}", n.value)),
                None => (layer.type_span, "num_output is not set".to_string()),
            };
            let code = if other.is_some() { "lvc::param::range" } else { "lvc::param::missing" };
            diags.push(layer.error(code, what).with_label(span, "num_output").with_help(
                "set `inner_product_param { num_output: N }`; DIGITS nets leave the classifier's \
                         num_output for DIGITS to fill in with the number of classes, so write that number in",
            ));
            None
        }
    };
    let weight_filler = filler(&layer, v.sub("weight_filler"), diags);
    let bias_filler = filler(&layer, v.sub("bias_filler"), diags);
    let params = InnerProductParams {
        num_output: num_output?,
        bias_term: v.bool_or_default("bias_term").value,
        axis: v.int_or_default("axis"),
        transpose: v.bool_or_default("transpose").value,
        weight_filler,
        bias_filler,
    };
    Some(InnerProductOp { layer, params })
}

impl InnerProductOp {
    /// K: the product of the bottom's axes from `axis` on (`None` for a bad
    /// axis, or when the product overflows beside a zero-sized axis).
    pub fn fan_in(&self, bottom: &BlobShape) -> Option<i64> {
        let axis = bottom.canonical_axis(self.params.axis.value)?;
        checked_product(&bottom.dims()[axis..])
    }
}

impl LayerOp for InnerProductOp {
    /// M·N·K multiply-adds, M the bottom's items (its axes before `axis`).
    fn forward_flops(
        &self,
        bottoms: &[BlobShape],
        _tops: &[BlobShape],
        params: &[ParamShape],
    ) -> f64 {
        let (Some(bottom), Some(weight)) = (bottoms.first(), params.first()) else { return 0.0 };
        let items = bottom
            .canonical_axis(self.params.axis.value)
            .map_or(1, |axis| super::saturating_product(&bottom.dims()[..axis]));
        2.0 * items as f64 * weight.shape.count() as f64
    }

    fn type_name(&self) -> &'static str {
        "InnerProduct"
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        if !Arity::exact(1, 1).check(&self.layer, "InnerProduct", ctx) {
            return None;
        }
        let bottom = &ctx.bottoms[0];
        let axis = canonical_axis(&self.layer, &self.params.axis, bottom, "axis", ctx.diags)?;
        if self.fan_in(bottom).is_none() {
            ctx.diags.push(overflow(
                &self.layer,
                self.params.axis.span,
                &format!("the input size K (axes {axis}.. of {bottom})"),
                "flatten fewer axes (a larger axis) or feed a smaller bottom",
            ));
            return None;
        }
        let mut dims = bottom.dims()[..axis].to_vec();
        dims.push(self.params.num_output.value);
        Some(vec![BlobShape(dims)])
    }

    fn param_shapes(&self, bottoms: &[BlobShape]) -> Vec<ParamShape> {
        let Some(k) = bottoms.first().and_then(|b| self.fan_in(b)) else { return Vec::new() };
        let p = &self.params;
        let n = p.num_output.value;
        let weight = if p.transpose { vec![k, n] } else { vec![n, k] };
        let mut blobs = vec![ParamShape {
            role: ParamRole::Weight,
            shape: BlobShape(weight),
            filler: Some(p.weight_filler.clone()),
        }];
        if p.bias_term {
            blobs.push(ParamShape {
                role: ParamRole::Bias,
                shape: BlobShape(vec![n]),
                filler: Some(p.bias_filler.clone()),
            });
        }
        blobs
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::run_layer;

    #[test]
    fn flattens_from_axis() {
        let body =
            "name: \"fc6\" type: \"InnerProduct\" bottom: \"x\" top: \"y\" inner_product_param { num_output: 4096 }";
        let r = run_layer(body, &[&[10, 256, 6, 6]]);
        assert_eq!(r.top(0), [10, 4096]);
        assert_eq!(r.param_dims(), [("weight", vec![4096, 9216]), ("bias", vec![4096])]);
        let r = run_layer(
            &body.replace("4096 }", "10 axis: 2 transpose: true bias_term: false }"),
            &[&[2, 3, 4, 5]],
        );
        assert_eq!(r.top(0), [2, 3, 10]);
        assert_eq!(r.param_dims(), [("weight", vec![20, 10])]);
    }

    #[test]
    fn num_output_is_required() {
        let r = run_layer(
            "name: \"fc8\" type: \"InnerProduct\" bottom: \"x\" top: \"y\"",
            &[&[1, 4096]],
        );
        assert_eq!(r.codes(), ["lvc::param::missing"]);
        let r = run_layer("name: \"fc8\" type: \"InnerProduct\" bottom: \"x\" top: \"y\" inner_product_param { num_output: 4 axis: 3 }", &[&[1, 4096]]);
        assert_eq!(r.codes(), ["lvc::shape::axis"]);
    }
}
