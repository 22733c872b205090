//! Local response normalisation, both of Caffe's modes. Caffe's backward is
//! the exact derivative of its forward, so autograd gives it.

use tch::Tensor;

use super::{Lowered, LowerCtx, Lowering};
use lvc_compiler::ops::lrn::{LrnOp, NormRegion};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LrnRegion {
    AcrossChannels,
    WithinChannel,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lrn {
    pub region: LrnRegion,
    /// Odd.
    pub local_size: i64,
    pub alpha: f64,
    pub beta: f64,
    /// Ignored WITHIN_CHANNEL (Caffe fixes the shift to 1 there).
    pub k: f64,
}

impl Lowered for Lrn {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        let n = self.local_size;
        let pre_pad = (n - 1) / 2;
        let squares = x * x;
        let scale = match self.region {
            LrnRegion::AcrossChannels => {
                // Caffe's Σ (α/n)·x² over a centred, zero-padded window of
                // channels, as one n×1 convolution of the squares seen as a
                // [N, 1, C, H·W] image (zero padding (n−1)/2 along C, so
                // local_size > channels works as in Caffe). A sum-pool along C
                // (avg_pool3d) gives the same values at 1.6–1.8× the time,
                // forward and backward, on FCN-AlexNet's norm1/norm2.
                let shape = x.size();
                let (batch, channels) = (shape[0], shape[1]);
                let weight = Tensor::full([1, 1, n, 1], self.alpha / n as f64, (x.kind(), x.device()));
                let window_sums = squares
                    .reshape([batch, 1, channels, -1])
                    .conv2d(&weight, None::<Tensor>, [1i64, 1].as_slice(), [pre_pad, 0].as_slice(), [1i64, 1].as_slice(), 1)
                    .reshape(shape.as_slice());
                window_sums + self.k
            }
            LrnRegion::WithinChannel => {
                // Caffe: AVE pool (n, pad (n−1)/2, stride 1: divisor always n²), then Power(−β, α, 1).
                let window_sums = squares
                    .pad([pre_pad, pre_pad, pre_pad, pre_pad].as_slice(), "constant", 0.0)
                    .avg_pool2d([n, n].as_slice(), [1i64, 1].as_slice(), [0i64, 0].as_slice(), false, true, Some(1));
                window_sums * (self.alpha / (n * n) as f64) + 1.0
            }
        };
        vec![x * scale.pow_tensor_scalar(-self.beta)]
    }
}

pub(crate) fn lower(ctx: &LowerCtx<'_>) -> Lowering {
    let p = &ctx.op::<LrnOp>()?.params;
    Some(Ok(Box::new(Lrn {
        region: match p.region {
            NormRegion::AcrossChannels => LrnRegion::AcrossChannels,
            NormRegion::WithinChannel => LrnRegion::WithinChannel,
        },
        local_size: p.local_size,
        alpha: p.alpha,
        beta: p.beta,
        k: p.k,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::*;

    #[test]
    fn across_channels_divides_alpha_by_n_with_a_zero_padded_window() {
        let x = t(&[1., 2., 3.], &[1, 3, 1, 1]);
        let lrn = Lrn { region: LrnRegion::AcrossChannels, local_size: 3, alpha: 3.0, beta: 0.5, k: 2.0 };
        let y = &lrn.forward(&[x], &[], false)[0];
        // scale_c = 2 + (3/3)·Σ window x²: c0: 1+4, c1: 1+4+9, c2: 4+9.
        let want = [1.0 / 7f32.sqrt(), 2.0 / 16f32.sqrt(), 3.0 / 15f32.sqrt()];
        assert_close(y, &want, 1e-6);
    }

    #[test]
    fn across_channels_window_wider_than_the_channels_and_several_pixels() {
        // 2 channels, 2 pixels, local_size 5: every window holds both channels.
        let x = t(&[1., 2., 3., 4.], &[1, 2, 1, 2]);
        let lrn = Lrn { region: LrnRegion::AcrossChannels, local_size: 5, alpha: 5.0, beta: 1.0, k: 1.0 };
        let y = &lrn.forward(&[x.shallow_clone()], &[], false)[0];
        // pixel 0: Σx² = 1 + 9 = 10 → scale 11; pixel 1: 4 + 16 = 20 → 21.
        assert_close(y, &[1. / 11., 2. / 21., 3. / 11., 4. / 21.], 1e-6);
        // d y_c / d x_c = 1/s − 2x_c²/s² (β = 1, α/n = 1); pixel 0, channel 0: 1/11 − 2/121.
        let g = grad_of(&x, |x| lrn.forward(&[x.shallow_clone()], &[], false).remove(0));
        let w: Vec<f32> = (1..=4).map(|i| (i as f32).sin()).collect();
        let want0 = w[0] * (1.0 / 11.0 - 2.0 / 121.0) + w[2] * (-2.0 * 3.0 * 1.0 / 121.0);
        assert_close(&g.flatten(0, -1).narrow(0, 0, 1), &[want0], 1e-5);
    }

    #[test]
    fn within_channel_uses_n_squared_and_ignores_k() {
        let x = t(&[1., 2., 3., 4.], &[1, 1, 2, 2]);
        let lrn = Lrn { region: LrnRegion::WithinChannel, local_size: 3, alpha: 9.0, beta: 1.0, k: 100.0 };
        let y = &lrn.forward(&[x], &[], false)[0];
        // Every 3x3 window (pad 1) covers all four pixels: Σx² = 30 → scale 1 + 30.
        // (A 5x5 window on this 2x2 input is as legal in Caffe.)
        assert_close(y, &[1. / 31., 2. / 31., 3. / 31., 4. / 31.], 1e-6);
    }
}
