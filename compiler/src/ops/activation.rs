//! Elementwise layers with one bottom and one top of the same shape: ReLU,
//! Sigmoid, TanH, Power, Dropout, AbsVal, BNLL, ELU, Exp, Log, Threshold,
//! PReLU, Swish, Clip (`neuron_layer.cpp` and its subclasses).

use super::common::{error_count, filler, identity_map, range_error, same_shape, LayerRef};
use super::{AxisMap, BlobShape, FillerDef, LayerOp, OpKind, ParamRole, ParamShape, ShapeCtx};
use crate::diag::Diagnostic;
use crate::schema::{LayerDef, ParamView};

/// One elementwise function with its parameters (Caffe's defaults applied).
#[derive(Debug, Clone, PartialEq)]
pub enum Activation {
    /// `max(x,0) + negative_slope·min(x,0)`; default slope 0.
    ReLU {
        negative_slope: f64,
    },
    Sigmoid,
    TanH,
    /// `(shift + scale·x)^power`; defaults 1, 1, 0.
    Power {
        power: f64,
        scale: f64,
        shift: f64,
    },
    /// Inverted dropout in TRAIN, identity in TEST; default ratio 0.5.
    Dropout {
        ratio: f64,
    },
    AbsVal,
    /// `log(1 + exp(x))`.
    BNLL,
    /// Default alpha 1.
    ELU {
        alpha: f64,
    },
    /// `base^(shift + scale·x)`; base −1 means e. Defaults −1, 1, 0.
    Exp {
        base: f64,
        scale: f64,
        shift: f64,
    },
    /// `log_base(shift + scale·x)`; base −1 means e. Defaults −1, 1, 0.
    Log {
        base: f64,
        scale: f64,
        shift: f64,
    },
    /// `x > threshold ? 1 : 0`; default 0.
    Threshold {
        threshold: f64,
    },
    /// Learned negative slope per channel (or one shared); filler default constant 0.25.
    PReLU {
        channel_shared: bool,
        filler: FillerDef,
    },
    /// `x · sigmoid(beta·x)`; default beta 1.
    Swish {
        beta: f64,
    },
    /// `min(max(x, min), max)`; both required (the schema checks).
    Clip {
        min: f64,
        max: f64,
    },
}

#[derive(Debug, Clone)]
pub struct ActivationOp {
    pub layer: LayerRef,
    pub type_name: &'static str,
    pub function: Activation,
}

/// Builds the activation `kind` (one of this family's kinds) from `def`.
pub fn build(kind: OpKind, def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<ActivationOp> {
    let op = LayerRef::of(def);
    let type_name = kind.name();
    let errors_before = error_count(diags);
    // Caffe's defaults come from the descriptor (`schema::descriptor`).
    let num = |view: ParamView<'_>, name: &str| view.float_or_default(name).value;
    let function = match kind {
        OpKind::ReLU => Activation::ReLU {
            negative_slope: num(def.param_block("relu_param"), "negative_slope"),
        },
        OpKind::Sigmoid => Activation::Sigmoid,
        OpKind::TanH => Activation::TanH,
        OpKind::Power => {
            let v = def.param_block("power_param");
            Activation::Power {
                power: num(v, "power"),
                scale: num(v, "scale"),
                shift: num(v, "shift"),
            }
        }
        OpKind::Dropout => {
            let v = def.param_block("dropout_param");
            let ratio = num(v, "dropout_ratio");
            if !(ratio > 0.0 && ratio < 1.0) {
                diags.push(range_error(
                    &op,
                    op.anchor(v, "dropout_ratio"),
                    format!("dropout_ratio must be in (0, 1), got {ratio}"),
                    "use a ratio strictly between 0 and 1 (0.5 is usual), or remove the Dropout layer",
                ));
            }
            Activation::Dropout { ratio }
        }
        OpKind::AbsVal => Activation::AbsVal,
        OpKind::BNLL => Activation::BNLL,
        OpKind::ELU => Activation::ELU { alpha: num(def.param_block("elu_param"), "alpha") },
        OpKind::Exp | OpKind::Log => {
            let field = if kind == OpKind::Exp { "exp_param" } else { "log_param" };
            let v = def.param_block(field);
            let (base, scale, shift) = (num(v, "base"), num(v, "scale"), num(v, "shift"));
            if base != -1.0 && base <= 0.0 {
                diags.push(range_error(
                    &op,
                    op.anchor(v, "base"),
                    format!("base must be positive (or −1 for e), got {base}"),
                    "use a positive base, or −1 for the natural base e",
                ));
            }
            if kind == OpKind::Exp {
                Activation::Exp { base, scale, shift }
            } else {
                Activation::Log { base, scale, shift }
            }
        }
        OpKind::Threshold => Activation::Threshold {
            threshold: num(def.param_block("threshold_param"), "threshold"),
        },
        OpKind::PReLU => {
            let v = def.param_block("prelu_param");
            let mut f = filler(&op, v.sub("filler"), diags);
            if !v.sub("filler").is_present() {
                // Not a descriptor default: PReLU's layer code (prelu_layer.cpp)
                // fills with constant 0.25 when no filler is written.
                f.value = 0.25;
            }
            Activation::PReLU {
                channel_shared: v.bool_or_default("channel_shared").value,
                filler: f,
            }
        }
        OpKind::Swish => Activation::Swish { beta: num(def.param_block("swish_param"), "beta") },
        OpKind::Clip => {
            // Both are `required` in caffe.proto: the schema rejects a Clip without them.
            let v = def.param_block("clip_param");
            let bound = |name: &str| v.float(name).map_or(0.0, |x| x.value);
            Activation::Clip { min: bound("min"), max: bound("max") }
        }
        _ => return None,
    };
    (error_count(diags) == errors_before).then_some(ActivationOp { layer: op, type_name, function })
}

impl LayerOp for ActivationOp {
    fn type_name(&self) -> &'static str {
        self.type_name
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        let shapes = same_shape(&self.layer, self.type_name, ctx)?;
        if matches!(self.function, Activation::PReLU { .. }) && shapes[0].rank() < 2 {
            ctx.diags.push(
                self.layer
                    .error(
                        "lvc::shape::rank",
                        format!("PReLU needs a bottom with at least 2 axes, got {}", shapes[0]),
                    )
                    .with_label(ctx.bottom_span(0), format!("{}", shapes[0]))
                    .with_help("PReLU learns one slope per channel (axis 1); feed an N×C… blob"),
            );
            return None;
        }
        Some(shapes)
    }

    fn param_shapes(&self, bottoms: &[BlobShape]) -> Vec<ParamShape> {
        let Activation::PReLU { channel_shared, filler } = &self.function else {
            return Vec::new();
        };
        let channels = match (channel_shared, bottoms.first().map(|b| b.dims())) {
            (true, _) => 1,
            (false, Some([_, c, ..])) => *c,
            (false, _) => return Vec::new(),
        };
        vec![ParamShape {
            role: ParamRole::Slope,
            shape: BlobShape(vec![channels]),
            filler: Some(filler.clone()),
        }]
    }

    fn coord_map(&self) -> Option<Vec<AxisMap>> {
        Some(identity_map(2))
    }
}

#[cfg(test)]
mod tests {
    use super::{Activation, OpKind};
    use crate::ops::testing::{layer, run_layer};

    fn function(body: &str) -> Activation {
        let (_, def) = layer(body);
        let kind = OpKind::from_name(&def.kind.value).expect("a layer type");
        super::build(kind, &def, &mut Vec::new()).expect("builds").function
    }

    const TYPES: [&str; 14] = [
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
    ];

    #[test]
    fn every_type_keeps_the_shape() {
        for t in TYPES {
            let extra = if t == "Clip" { "clip_param { min: -1 max: 1 }" } else { "" };
            let r = run_layer(
                &format!("name: \"a\" type: \"{t}\" bottom: \"x\" top: \"x\" {extra}"),
                &[&[2, 3, 5, 7]],
            );
            assert_eq!(r.top(0), [2, 3, 5, 7], "{t}");
        }
    }

    #[test]
    fn parameters_and_defaults() {
        assert_eq!(
            function("type: \"Power\" power_param { shift: -116.0 }"),
            Activation::Power { power: 1.0, scale: 1.0, shift: -116.0 }
        );
        assert_eq!(function("type: \"ReLU\""), Activation::ReLU { negative_slope: 0.0 });
        assert_eq!(function("type: \"Dropout\""), Activation::Dropout { ratio: 0.5 });
        assert_eq!(
            function("type: \"Exp\""),
            Activation::Exp { base: -1.0, scale: 1.0, shift: 0.0 }
        );
        assert_eq!(
            function("type: \"ELU\" elu_param { alpha: 0.5 }"),
            Activation::ELU { alpha: 0.5 }
        );
    }

    #[test]
    fn prelu_learns_one_slope_per_channel() {
        let r =
            run_layer("name: \"p\" type: \"PReLU\" bottom: \"x\" top: \"y\"", &[&[1, 16, 4, 4]]);
        assert_eq!(r.param_dims(), [("slope", vec![16])]);
        assert_eq!(r.params[0].filler.as_ref().map(|f| f.value), Some(0.25));
        let r = run_layer(
            "name: \"p\" type: \"PReLU\" bottom: \"x\" top: \"y\" prelu_param { channel_shared: true }",
            &[&[1, 16, 4, 4]],
        );
        assert_eq!(r.param_dims(), [("slope", vec![1])]);
        let r = run_layer("name: \"p\" type: \"PReLU\" bottom: \"x\" top: \"y\"", &[&[16]]);
        assert_eq!(r.codes(), ["lvc::shape::rank"]);
    }

    #[test]
    fn invalid_parameters() {
        let cases = [
            ("type: \"Dropout\" dropout_param { dropout_ratio: 1.0 }", "lvc::param::range"),
            ("type: \"Log\" log_param { base: 0 }", "lvc::param::range"),
        ];
        for (body, code) in cases {
            let r = run_layer(&format!("name: \"a\" {body} bottom: \"x\" top: \"y\""), &[&[1, 1]]);
            assert_eq!(r.codes(), [code], "{body}");
        }
        let r = run_layer(
            "name: \"drop6\" type: \"Dropout\" bottom: \"x\" top: \"x\" dropout_param { dropout_ratio: 1.5 }",
            &[&[1]],
        );
        insta::assert_snapshot!(r.rendered());
    }
}
