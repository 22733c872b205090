//! Element-wise layers: ReLU (leaky), Sigmoid, TanH, Power, Dropout.

use tch::Tensor;

use super::{Lowered, LowerCtx, Lowering};
use lvc_compiler::ops::activation::{Activation, ActivationOp};

#[derive(Debug, Clone, PartialEq)]
pub struct Relu {
    pub negative_slope: f64,
}

impl Lowered for Relu {
    /// Caffe's gradient is 1 for x > 0 and `negative_slope` for x ≤ 0;
    /// `where` routes it exactly so.
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        if self.negative_slope == 0.0 {
            vec![x.relu()]
        } else {
            vec![x.where_self(&x.gt(0.0), &(x * self.negative_slope))]
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pointwise {
    Sigmoid,
    TanH,
}

impl Lowered for Pointwise {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        vec![match self {
            Pointwise::Sigmoid => x.sigmoid(),
            Pointwise::TanH => x.tanh(),
        }]
    }
}

/// `y = (shift + scale·x)^power`.
#[derive(Debug, Clone, PartialEq)]
pub struct Power {
    pub power: f64,
    pub scale: f64,
    pub shift: f64,
}

impl Lowered for Power {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        if self.power * self.scale == 0.0 {
            // Caffe's constant case: 1 for power 0, else shift^power; no gradient.
            let value = if self.power == 0.0 { 1.0 } else { self.shift.powf(self.power) };
            return vec![x.detach().ones_like() * value];
        }
        // Functional ops only: `base` may be the bottom itself.
        let scaled = if self.scale == 1.0 { x.shallow_clone() } else { x * self.scale };
        let base = if self.shift == 0.0 { scaled } else { scaled + self.shift };
        vec![if self.power == 1.0 { base } else { base.pow_tensor_scalar(self.power) }]
    }
}

/// Inverted dropout: TRAIN scales kept units by 1/(1−ratio); TEST is identity.
/// The mask comes from libtorch's generator (`tch::manual_seed`).
#[derive(Debug, Clone, PartialEq)]
pub struct Dropout {
    pub ratio: f64,
}

impl Lowered for Dropout {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        vec![if train { x.dropout(self.ratio, true) } else { x.shallow_clone() }]
    }
}

pub(crate) fn lower(ctx: &LowerCtx<'_>) -> Lowering {
    let op = ctx.op::<ActivationOp>()?;
    Some(match &op.function {
        Activation::ReLU { negative_slope } => Ok(Box::new(Relu { negative_slope: *negative_slope })),
        Activation::Sigmoid => Ok(Box::new(Pointwise::Sigmoid)),
        Activation::TanH => Ok(Box::new(Pointwise::TanH)),
        &Activation::Power { power, scale, shift } => Ok(Box::new(Power { power, scale, shift })),
        &Activation::Dropout { ratio } => Ok(Box::new(Dropout { ratio })),
        _ => Err(format!("{} is parsed and shape-checked but has no runtime implementation", op.type_name)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::*;
    use tch::Kind;

    #[test]
    fn leaky_relu_value_and_caffe_gradient_at_zero() {
        let x = t(&[-2., 0., 3.], &[3]);
        let relu = Relu { negative_slope: 0.1 };
        assert_close(&relu.forward(&[x.shallow_clone()], &[], false)[0], &[-0.2, 0., 3.], 1e-7);
        let g = grad_of(&x, |x| relu.forward(&[x.shallow_clone()], &[], false).remove(0));
        let w: Vec<f32> = (1..=3).map(|i| (i as f32).sin()).collect();
        assert_close(&g, &[0.1 * w[0], 0.1 * w[1], w[2]], 1e-6);
        let plain = Relu { negative_slope: 0.0 };
        assert_close(&plain.forward(&[x], &[], false)[0], &[0., 0., 3.], 0.0);
    }

    #[test]
    fn sigmoid_and_tanh() {
        let x = t(&[0., 1.], &[2]);
        assert_close(&Pointwise::Sigmoid.forward(&[x.shallow_clone()], &[], false)[0], &[0.5, 0.7310586], 1e-6);
        assert_close(&Pointwise::TanH.forward(&[x], &[], false)[0], &[0., 0.7615942], 1e-6);
    }

    #[test]
    fn power_formula_and_constant_case() {
        let x = t(&[1., 2.], &[2]);
        let p = Power { power: 2.0, scale: 0.5, shift: 1.0 };
        assert_close(&p.forward(&[x.shallow_clone()], &[], false)[0], &[2.25, 4.0], 1e-7);
        let shift_only = Power { power: 1.0, scale: 1.0, shift: -116.0 };
        assert_close(&shift_only.forward(&[x.shallow_clone()], &[], false)[0], &[-115., -114.], 0.0);
        let constant = Power { power: 2.0, scale: 0.0, shift: 3.0 };
        assert_close(&constant.forward(&[x.shallow_clone()], &[], false)[0], &[9., 9.], 0.0);
        let zero_power = Power { power: 0.0, scale: 5.0, shift: 3.0 };
        assert_close(&zero_power.forward(&[x], &[], false)[0], &[1., 1.], 0.0);
    }

    #[test]
    fn dropout_is_identity_in_test_and_scales_in_train() {
        let _generator = global_generator();
        let x = Tensor::ones([10000], (Kind::Float, tch::Device::Cpu));
        let d = Dropout { ratio: 0.25 };
        assert_close(&d.forward(&[x.shallow_clone()], &[], false)[0], &[1.0; 10000], 0.0);
        let y = vals(&d.forward(&[x], &[], true)[0]);
        assert!(y.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / 10000.0;
        assert!((kept - 0.75).abs() < 0.03, "{kept}");
    }
}
