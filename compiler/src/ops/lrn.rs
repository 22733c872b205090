//! LRN (`lrn_param`): local response normalisation across channels or
//! within a channel (`lrn_layer.cpp`). The top has the bottom's shape.

use super::common::{check_rank4, identity_map, range_error, same_shape, LayerRef};
use super::{AxisMap, BlobShape, LayerOp, ShapeCtx};
use crate::diag::Diagnostic;
use crate::schema::LayerDef;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormRegion {
    /// `y = x·(k + α/n·Σ x²)^(−β)` over n neighbouring channels.
    AcrossChannels,
    /// `y = x·(1 + α/n²·Σ x²)^(−β)` over an n×n window; k is ignored.
    WithinChannel,
}

/// `lrn_param` with Caffe's defaults (5, 1.0, 0.75, k 1.0, ACROSS_CHANNELS).
#[derive(Debug, Clone, PartialEq)]
pub struct LrnParams {
    /// Odd.
    pub local_size: i64,
    pub alpha: f64,
    pub beta: f64,
    pub k: f64,
    pub region: NormRegion,
}

#[derive(Debug, Clone)]
pub struct LrnOp {
    pub layer: LayerRef,
    pub params: LrnParams,
}

pub fn build(def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<LrnOp> {
    let op = LayerRef::of(def);
    let v = def.param_block("lrn_param");
    let local_size = v.int_or_default("local_size");
    if local_size.value < 1 || local_size.value % 2 == 0 {
        diags.push(range_error(
            &op,
            local_size.span,
            format!("local_size must be a positive odd number, got {}", local_size.value),
            match local_size.value {
                n if n > 1 => format!(
                    "LRN centres its window on each channel, so it needs an odd size; use local_size: {} or {}",
                    n - 1,
                    n + 1
                ),
                _ => "use local_size: 5 (Caffe's default) or another odd size".to_string(),
            },
        ));
        return None;
    }
    let num = |name: &str| v.float_or_default(name).value;
    let region = match v.ident_or_default("norm_region").value {
        "WITHIN_CHANNEL" => NormRegion::WithinChannel,
        _ => NormRegion::AcrossChannels,
    };
    let params = LrnParams {
        local_size: local_size.value,
        alpha: num("alpha"),
        beta: num("beta"),
        k: num("k"),
        region,
    };
    Some(LrnOp { layer: op, params })
}

impl LayerOp for LrnOp {
    fn type_name(&self) -> &'static str {
        "LRN"
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        let shapes = same_shape(&self.layer, "LRN", ctx)?;
        check_rank4(&self.layer, "LRN", ctx, 0).then_some(shapes)
    }

    fn coord_map(&self) -> Option<Vec<AxisMap>> {
        Some(identity_map(2))
    }
}

#[cfg(test)]
mod tests {
    use super::NormRegion;
    use crate::ops::testing::{layer, run_layer};

    #[test]
    fn keeps_the_shape_with_caffe_defaults() {
        let body = "name: \"norm1\" type: \"LRN\" bottom: \"x\" top: \"y\"";
        assert_eq!(run_layer(body, &[&[1, 96, 56, 56]]).top(0), [1, 96, 56, 56]);
        let (_, def) = layer(body);
        let op = super::build(&def, &mut Vec::new()).expect("builds");
        let p = &op.params;
        assert_eq!(
            (p.local_size, p.alpha, p.beta, p.k, p.region),
            (5, 1.0, 0.75, 1.0, NormRegion::AcrossChannels)
        );
    }

    #[test]
    fn within_channel_region() {
        let (_, def) = layer(
            "name: \"n\" type: \"LRN\" lrn_param { local_size: 3 norm_region: WITHIN_CHANNEL }",
        );
        let op = super::build(&def, &mut Vec::new()).expect("builds");
        assert_eq!(op.params.region, NormRegion::WithinChannel);
    }

    #[test]
    fn even_local_size_is_rejected() {
        let r = run_layer(
            "name: \"n\" type: \"LRN\" bottom: \"x\" top: \"y\" lrn_param { local_size: 4 }",
            &[&[1, 8, 4, 4]],
        );
        assert_eq!(r.codes(), ["lvc::param::range"]);
        insta::assert_snapshot!(r.rendered());
        let r = run_layer("name: \"n\" type: \"LRN\" bottom: \"x\" top: \"y\"", &[&[8, 4]]);
        assert_eq!(r.codes(), ["lvc::shape::rank"]);
    }
}
