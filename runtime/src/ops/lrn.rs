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
                // Σ over a centred, zero-padded channel window: a sum-pool along C.
                // Padded explicitly: libtorch's pool rejects windows wider than
                // the input (local_size > channels is legal in Caffe).
                let window_sums = squares
                    .unsqueeze(1)
                    .pad([0, 0, 0, 0, pre_pad, pre_pad].as_slice(), "constant", 0.0)
                    .avg_pool3d([n, 1, 1].as_slice(), [1i64, 1, 1].as_slice(), [0i64, 0, 0].as_slice(), false, true, Some(1))
                    .squeeze_dim(1);
                window_sums * (self.alpha / n as f64) + self.k
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
    fn within_channel_uses_n_squared_and_ignores_k() {
        let x = t(&[1., 2., 3., 4.], &[1, 1, 2, 2]);
        let lrn = Lrn { region: LrnRegion::WithinChannel, local_size: 3, alpha: 9.0, beta: 1.0, k: 100.0 };
        let y = &lrn.forward(&[x], &[], false)[0];
        // Every 3x3 window (pad 1) covers all four pixels: Σx² = 30 → scale 1 + 30.
        // (A 5x5 window on this 2x2 input is as legal in Caffe.)
        assert_close(y, &[1. / 31., 2. / 31., 3. / 31., 4. / 31.], 1e-6);
    }
}
