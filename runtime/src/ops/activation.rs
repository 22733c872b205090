//! Element-wise layers: every neuron layer of Caffe (ReLU, Sigmoid, TanH,
//! Power, Dropout, AbsVal, BNLL, ELU, Exp, Log, Threshold, PReLU, Swish,
//! Clip). Where autograd's derivative differs from Caffe's backward (BNLL's
//! ½ at 0, Threshold's none), the op says how it gets Caffe's.

use tch::Tensor;

use super::{LowerResult, Lowered};
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

/// Functions of x alone whose autograd derivative is Caffe's backward,
/// including at the kinks (AbsVal: 0 at 0; ELU: α at 0; Clip: 1 on both
/// bounds, as Caffe's `x >= min && x <= max`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pointwise {
    Sigmoid,
    TanH,
    AbsVal,
    Elu {
        alpha: f64,
    },
    /// `outer · exp(inner · x)`: Caffe's `base^(shift + scale·x)` with
    /// `inner = ln(base)·scale`, `outer = base^shift`.
    Exp {
        inner: f64,
        outer: f64,
    },
    /// `ln(shift + scale·x) / ln(base)`.
    Log {
        scale: f64,
        shift: f64,
        base_scale: f64,
    },
    Swish {
        beta: f64,
    },
    Clip {
        min: f64,
        max: f64,
    },
}

impl Pointwise {
    /// Caffe's Exp with base −1 meaning e.
    fn exp(base: f64, scale: f64, shift: f64) -> Pointwise {
        let log_base = if base == -1.0 { 1.0 } else { base.ln() };
        Pointwise::Exp {
            inner: log_base * scale,
            outer: if shift == 0.0 { 1.0 } else { (log_base * shift).exp() },
        }
    }

    /// Caffe's Log with base −1 meaning e.
    fn log(base: f64, scale: f64, shift: f64) -> Pointwise {
        Pointwise::Log {
            scale,
            shift,
            base_scale: if base == -1.0 { 1.0 } else { 1.0 / base.ln() },
        }
    }
}

impl Lowered for Pointwise {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        vec![match *self {
            Pointwise::Sigmoid => x.sigmoid(),
            Pointwise::TanH => x.tanh(),
            Pointwise::AbsVal => x.abs(),
            // exp only of x ≤ 0: the branch `where` drops must stay finite,
            // or its zero gradient times exp(∞) would be NaN.
            Pointwise::Elu { alpha } => {
                x.where_self(&x.gt(0.0), &((x.clamp_max(0.0).exp() - 1.0) * alpha))
            }
            Pointwise::Exp { inner, outer } => {
                let y = (x * inner).exp();
                if outer == 1.0 {
                    y
                } else {
                    y * outer
                }
            }
            Pointwise::Log { scale, shift, base_scale } => {
                let y = (x * scale + shift).log();
                if base_scale == 1.0 {
                    y
                } else {
                    y * base_scale
                }
            }
            Pointwise::Swish { beta } => x * (x * beta).sigmoid(),
            Pointwise::Clip { min, max } => x.clamp(min, max),
        }]
    }
}

/// `log(1 + exp(x))`, computed without overflow. Caffe's derivative is
/// `σ(x)` everywhere (½ at 0, where relu + log1p(exp(−|x|)) would give 0
/// through autograd), so the value carries σ(x) as its gradient directly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bnll;

impl Lowered for Bnll {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        let value = (x.relu() + (-x.abs()).exp().log1p()).detach();
        // `x − x.detach()` is exactly 0 with gradient 1.
        vec![value + (x - x.detach()) * x.sigmoid().detach()]
    }
}

/// `x > threshold ? 1 : 0`. Caffe has no backward for it (a net that needs
/// one fails there); here no gradient flows through it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub threshold: f64,
}

impl Lowered for Threshold {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        vec![bottoms[0].detach().gt(self.threshold).to_kind(tch::Kind::Float)]
    }
}

/// `x > 0 ? x : a·x` with a learned slope `a` per channel (axis 1) or one
/// shared: the param is `[C]` or `[1]`. Both gradients are Caffe's: `a` for
/// x ≤ 0, and `Σ x·dy` over x ≤ 0 for the slope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prelu;

impl Lowered for Prelu {
    fn forward(&self, bottoms: &[Tensor], params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        let mut shape = vec![1i64; x.dim()];
        if let Some(axis) = shape.get_mut(1) {
            *axis = params[0].size()[0];
        }
        let slope = params[0].reshape(shape);
        vec![x.where_self(&x.gt(0.0), &(x * slope))]
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
/// The mask comes from libtorch's generator (`tch::manual_seed`), which the
/// trainer reseeds before every training pass so that a resumed run draws
/// the same masks (`solver::train`).
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

pub(crate) fn lower(op: &ActivationOp) -> LowerResult {
    match &op.function {
        Activation::ReLU { negative_slope } => {
            Ok(Box::new(Relu { negative_slope: *negative_slope }))
        }
        Activation::Sigmoid => Ok(Box::new(Pointwise::Sigmoid)),
        Activation::TanH => Ok(Box::new(Pointwise::TanH)),
        &Activation::Power { power, scale, shift } => Ok(Box::new(Power { power, scale, shift })),
        &Activation::Dropout { ratio } => Ok(Box::new(Dropout { ratio })),
        Activation::AbsVal => Ok(Box::new(Pointwise::AbsVal)),
        Activation::BNLL => Ok(Box::new(Bnll)),
        &Activation::ELU { alpha } => Ok(Box::new(Pointwise::Elu { alpha })),
        &Activation::Exp { base, scale, shift } => Ok(Box::new(Pointwise::exp(base, scale, shift))),
        &Activation::Log { base, scale, shift } => Ok(Box::new(Pointwise::log(base, scale, shift))),
        &Activation::Threshold { threshold } => Ok(Box::new(Threshold { threshold })),
        Activation::PReLU { .. } => Ok(Box::new(Prelu)),
        &Activation::Swish { beta } => Ok(Box::new(Pointwise::Swish { beta })),
        &Activation::Clip { min, max } => Ok(Box::new(Pointwise::Clip { min, max })),
    }
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
        assert_close(
            &Pointwise::Sigmoid.forward(&[x.shallow_clone()], &[], false)[0],
            &[0.5, 0.7310586],
            1e-6,
        );
        assert_close(&Pointwise::TanH.forward(&[x], &[], false)[0], &[0., 0.7615942], 1e-6);
    }

    /// Value and d(Σ y·w)/dx (w = sin(1), sin(2), … as `grad_of` uses).
    fn value_and_grad(op: &dyn Lowered, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let x = t(x, &[x.len() as i64]);
        let y = vals(&op.forward(&[x.shallow_clone()], &[], true)[0]);
        let g = grad_of(&x, |x| op.forward(&[x.shallow_clone()], &[], true).remove(0));
        let w: Vec<f32> = (1..=y.len()).map(|i| (i as f32).sin()).collect();
        (y, vals(&g).iter().zip(&w).map(|(g, w)| g / w).collect())
    }

    fn close(got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= tol * (1.0 + b.abs()),
                "element {i}: got {a}, want {b} ({got:?})"
            );
        }
    }

    #[test]
    fn absval_gradient_is_the_sign_and_zero_at_zero() {
        let (y, g) = value_and_grad(&Pointwise::AbsVal, &[-2., 0., 3.]);
        close(&y, &[2., 0., 3.], 0.0);
        close(&g, &[-1., 0., 1.], 1e-6);
    }

    #[test]
    fn bnll_is_stable_and_its_gradient_is_the_sigmoid_incl_one_half_at_zero() {
        let (y, g) = value_and_grad(&Bnll, &[-100., -1., 0., 1., 100.]);
        let softplus = |x: f64| (1.0 + x.exp()).ln() as f32;
        close(&y, &[0.0, softplus(-1.0), std::f32::consts::LN_2, softplus(1.0), 100.0], 1e-6);
        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
        close(&g, &[0.0, sigmoid(-1.0), 0.5, sigmoid(1.0), 1.0], 1e-6);
    }

    #[test]
    fn elu_takes_alpha_at_zero_and_stays_finite_for_large_inputs() {
        let (y, g) = value_and_grad(&Pointwise::Elu { alpha: 0.5 }, &[-1., 0., 2., 100.]);
        close(&y, &[0.5 * ((-1f32).exp() - 1.0), 0., 2., 100.], 1e-6);
        close(&g, &[0.5 * (-1f32).exp(), 0.5, 1., 1.], 1e-6);
    }

    #[test]
    fn exp_and_log_follow_caffes_base_scale_shift() {
        // 2^(1 + 3x): d/dx = y · 3 ln 2.
        let (y, g) = value_and_grad(&Pointwise::exp(2.0, 3.0, 1.0), &[0., 0.5]);
        let want: Vec<f32> = [0f32, 0.5].iter().map(|x| 2f32.powf(1.0 + 3.0 * x)).collect();
        close(&y, &want, 1e-6);
        close(&g, &want.iter().map(|y| y * 3.0 * 2f32.ln()).collect::<Vec<_>>(), 1e-6);
        // Base −1 is e.
        let (y, _) = value_and_grad(&Pointwise::exp(-1.0, 1.0, 0.0), &[1.]);
        close(&y, &[std::f32::consts::E], 1e-6);
        // log10(1 + 2x): d/dx = 2 / ((1 + 2x) ln 10).
        let (y, g) = value_and_grad(&Pointwise::log(10.0, 2.0, 1.0), &[0., 4.5]);
        close(&y, &[0., 1.], 1e-6);
        close(&g, &[2.0 / 10f32.ln(), 2.0 / (10.0 * 10f32.ln())], 1e-6);
        let (y, _) = value_and_grad(&Pointwise::log(-1.0, 1.0, 0.0), &[std::f32::consts::E]);
        close(&y, &[1.], 1e-6);
    }

    #[test]
    fn swish_and_clip() {
        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
        let (y, g) = value_and_grad(&Pointwise::Swish { beta: 2.0 }, &[-1., 0.5]);
        close(&y, &[-sigmoid(-2.0), 0.5 * sigmoid(1.0)], 1e-6);
        // d/dx x·σ(βx) = σ(βx) + βx·σ(βx)(1 − σ(βx)).
        let d = |x: f32| sigmoid(2.0 * x) + 2.0 * x * sigmoid(2.0 * x) * (1.0 - sigmoid(2.0 * x));
        close(&g, &[d(-1.0), d(0.5)], 1e-6);
        // Caffe passes the gradient on both bounds (x >= min && x <= max).
        let (y, g) =
            value_and_grad(&Pointwise::Clip { min: -1.0, max: 1.0 }, &[-2., -1., 0.5, 1., 2.]);
        close(&y, &[-1., -1., 0.5, 1., 1.], 0.0);
        close(&g, &[0., 1., 1., 1., 0.], 1e-6);
    }

    #[test]
    fn threshold_is_a_step_without_gradient() {
        let x = t(&[-1., 0.5, 0.6], &[3]).set_requires_grad(true);
        let y = &Threshold { threshold: 0.5 }.forward(&[x], &[], false)[0];
        assert_close(y, &[0., 0., 1.], 0.0);
        assert!(!y.requires_grad());
    }

    #[test]
    fn prelu_slopes_per_channel_with_caffes_gradients() {
        // N=1, C=2, 2 values per channel; slopes 0.1 and 0.5.
        let x = t(&[-2., 3., 0., -4.], &[1, 2, 2]);
        let slope = t(&[0.1, 0.5], &[2]);
        let run = |x: &Tensor, a: &Tensor| {
            Prelu.forward(&[x.shallow_clone()], &[a.shallow_clone()], true).remove(0)
        };
        assert_close(&run(&x, &slope), &[-0.2, 3., 0., -2.], 1e-6);
        let w: Vec<f32> = (1..=4).map(|i| (i as f32).sin()).collect();
        // dx: slope where x ≤ 0 (incl. 0), 1 above.
        assert_close(
            &grad_of(&x, |x| run(x, &slope)),
            &[0.1 * w[0], w[1], 0.5 * w[2], 0.5 * w[3]],
            1e-6,
        );
        // d slope_c = Σ_{x ≤ 0 in c} x·w.
        assert_close(&grad_of(&slope, |a| run(&x, a)), &[-2.0 * w[0], -4.0 * w[3]], 1e-6);
        // One shared slope.
        let shared = t(&[0.25], &[1]);
        assert_close(&run(&x, &shared), &[-0.5, 3., 0., -1.], 1e-6);
    }

    #[test]
    fn power_formula_and_constant_case() {
        let x = t(&[1., 2.], &[2]);
        let p = Power { power: 2.0, scale: 0.5, shift: 1.0 };
        assert_close(&p.forward(&[x.shallow_clone()], &[], false)[0], &[2.25, 4.0], 1e-7);
        let shift_only = Power { power: 1.0, scale: 1.0, shift: -116.0 };
        assert_close(
            &shift_only.forward(&[x.shallow_clone()], &[], false)[0],
            &[-115., -114.],
            0.0,
        );
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
