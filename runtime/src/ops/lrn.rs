//! Local response normalisation, both of Caffe's modes. Caffe's backward is
//! the exact derivative of its forward, so autograd gives it; on CPU the
//! across-channel mode (AlexNet's norm1/norm2) is computed on memory
//! directly, forward and backward, as Caffe's CPU layer does.

use tch::{Kind, Tensor};

use super::{
    backward_on_memory, cpu_f32, cpu_f32_mut, forward_on_memory, LowerResult, Lowered, OwnBackward,
    OwnGradients,
};
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
                let weight =
                    Tensor::full([1, 1, n, 1], self.alpha / n as f64, (x.kind(), x.device()));
                let window_sums = squares
                    .reshape([batch, 1, channels, -1])
                    .conv2d(
                        &weight,
                        None::<Tensor>,
                        [1i64, 1].as_slice(),
                        [pre_pad, 0].as_slice(),
                        [1i64, 1].as_slice(),
                        1,
                    )
                    .reshape(shape.as_slice());
                window_sums + self.k
            }
            LrnRegion::WithinChannel => {
                // Caffe: AVE pool (n, pad (n−1)/2, stride 1: divisor always n²), then Power(−β, α, 1).
                let window_sums = squares
                    .pad([pre_pad, pre_pad, pre_pad, pre_pad].as_slice(), "constant", 0.0)
                    .avg_pool2d(
                        [n, n].as_slice(),
                        [1i64, 1].as_slice(),
                        [0i64, 0].as_slice(),
                        false,
                        true,
                        Some(1),
                    );
                window_sums * (self.alpha / (n * n) as f64) + 1.0
            }
        };
        vec![x * scale.pow_tensor_scalar(-self.beta)]
    }

    fn own_backward(&self) -> Option<&dyn OwnBackward> {
        Some(self)
    }
}

/// Across channels on CPU: `scale = k + (α/n)·Σ x²` over the centred window
/// as a running sum along the channels (add the entering channel, drop the
/// leaving one, as Caffe's `CrossChannelForward_cpu` does), `y = x·scale^−β`,
/// and Caffe's backward `dx = dy·scale^−β − (2αβ/n)·x·Σ_window dy·y/scale`.
/// Through libtorch ops (a 5×1 convolution over the squares, a `pow`) and
/// autograd's replay of them, FCN-AlexNet's norm1 (96 × 56² at batch 1) took
/// 13.5 ms forward-backward, 10 of them in backward.
impl OwnBackward for Lrn {
    fn applies(&self, device: tch::Device) -> bool {
        device == tch::Device::Cpu && self.region == LrnRegion::AcrossChannels
    }

    fn forward_untracked(&self, bottoms: &[Tensor], params: &[Tensor]) -> Vec<Tensor> {
        forward_on_memory(self, bottoms, params, |x| {
            let mut top = Tensor::empty(x.size().as_slice(), (Kind::Float, tch::Device::Cpu));
            let (xs, ys) = (cpu_f32(x)?, cpu_f32_mut(&mut top)?);
            let (images, channels, plane) = self.layout(x);
            let mut scale = vec![0f32; channels * plane];
            for (xs, ys) in xs
                .chunks_exact(channels * plane)
                .zip(ys.chunks_exact_mut(channels * plane))
                .take(images)
            {
                self.fill_scale(xs, &mut scale, channels, plane);
                self.fill_powers(&scale, ys);
                for (y, &x) in ys.iter_mut().zip(xs) {
                    *y *= x;
                }
            }
            Some(top)
        })
    }

    fn backward(
        &self,
        bottoms: &[Tensor],
        params: &[Tensor],
        top_grads: &[Tensor],
        _spent: Vec<Option<Tensor>>,
    ) -> OwnGradients {
        backward_on_memory(self, bottoms, params, top_grads, |x, dy| {
            let mut dx = Tensor::empty(x.size().as_slice(), (Kind::Float, tch::Device::Cpu));
            let (xs, dys, dxs) = (cpu_f32(x)?, cpu_f32(dy)?, cpu_f32_mut(&mut dx)?);
            if dys.len() != xs.len() {
                return None;
            }
            let (images, channels, plane) = self.layout(x);
            let block = channels * plane;
            let half = (self.local_size as usize - 1) / 2;
            let (mut scale, mut ratio, mut window) =
                (vec![0f32; block], vec![0f32; block], vec![0f32; plane]);
            let cache_ratio = (2.0 * self.alpha * self.beta / self.local_size as f64) as f32;
            let images = xs
                .chunks_exact(block)
                .zip(dys.chunks_exact(block))
                .zip(dxs.chunks_exact_mut(block))
                .take(images);
            for ((xs, dys), dxs) in images {
                self.fill_scale(xs, &mut scale, channels, plane);
                // dx = dy·scale^−β, and the ratio dy·y/scale with y = x·scale^−β.
                self.fill_powers(&scale, dxs);
                for (((d, r), (&dy, &x)), &s) in
                    dxs.iter_mut().zip(ratio.iter_mut()).zip(dys.iter().zip(xs)).zip(&scale)
                {
                    *r = dy * (x * *d) / s;
                    *d *= dy;
                }
                // Σ ratio over the window centred on each channel, kept as a
                // running sum (channels outside [0, C) count 0).
                window.fill(0.0);
                for c in 0..half.min(channels) {
                    add_plane(&mut window, &ratio[c * plane..(c + 1) * plane], 1.0);
                }
                for c in 0..channels {
                    if c + half < channels {
                        add_plane(
                            &mut window,
                            &ratio[(c + half) * plane..(c + half + 1) * plane],
                            1.0,
                        );
                    }
                    let range = c * plane..(c + 1) * plane;
                    for ((d, &x), &w) in
                        dxs[range.clone()].iter_mut().zip(&xs[range]).zip(window.iter())
                    {
                        *d -= cache_ratio * x * w;
                    }
                    if c >= half {
                        add_plane(
                            &mut window,
                            &ratio[(c - half) * plane..(c - half + 1) * plane],
                            -1.0,
                        );
                    }
                }
            }
            Some(dx)
        })
    }
}

impl Lrn {
    /// (images, channels, pixels per channel plane) of an `[N, C, …]` blob.
    fn layout(&self, x: &Tensor) -> (usize, usize, usize) {
        let shape = x.size();
        let images = usize::try_from(shape[0]).unwrap_or(0);
        let channels = usize::try_from(shape[1]).unwrap_or(0);
        let plane = x.numel().checked_div(images * channels).unwrap_or(0);
        (images, channels, plane)
    }

    /// `scale[c] = k + (α/n)·Σ x[c']²` for `c'` in the window centred on `c`,
    /// a running sum along the channels.
    fn fill_scale(&self, xs: &[f32], scale: &mut [f32], channels: usize, plane: usize) {
        if channels == 0 {
            return;
        }
        let alpha_over_n = (self.alpha / self.local_size as f64) as f32;
        let half = (self.local_size as usize - 1) / 2;
        let channel = |c: usize| &xs[c * plane..(c + 1) * plane];
        let add_squares = |sum: &mut [f32], values: &[f32], factor: f32| {
            for (s, &v) in sum.iter_mut().zip(values) {
                *s += factor * (v * v);
            }
        };
        scale[..plane].fill(self.k as f32);
        for c in 0..=half.min(channels - 1) {
            add_squares(&mut scale[..plane], channel(c), alpha_over_n);
        }
        for c in 1..channels {
            let (before, after) = scale.split_at_mut(c * plane);
            let current = &mut after[..plane];
            current.copy_from_slice(&before[(c - 1) * plane..]);
            if c + half < channels {
                add_squares(current, channel(c + half), alpha_over_n);
            }
            if c > half {
                add_squares(current, channel(c - half - 1), -alpha_over_n);
            }
        }
    }

    /// `out = scale^−β`, element by element; AlexNet's β = 0.75 as
    /// `1/(√s·⁴√s)` (two square roots, which vectorise, instead of `powf`).
    fn fill_powers(&self, scale: &[f32], out: &mut [f32]) {
        if self.beta == 0.75 {
            for (o, &s) in out.iter_mut().zip(scale) {
                let root = s.sqrt();
                *o = 1.0 / (root * root.sqrt());
            }
        } else {
            let exponent = -self.beta as f32;
            for (o, &s) in out.iter_mut().zip(scale) {
                *o = s.powf(exponent);
            }
        }
    }
}

/// `sum += sign·plane`, element by element.
fn add_plane(sum: &mut [f32], plane: &[f32], sign: f32) {
    for (s, &v) in sum.iter_mut().zip(plane) {
        *s += sign * v;
    }
}

pub(crate) fn lower(op: &LrnOp) -> LowerResult {
    let p = &op.params;
    Ok(Box::new(Lrn {
        region: match p.region {
            NormRegion::AcrossChannels => LrnRegion::AcrossChannels,
            NormRegion::WithinChannel => LrnRegion::WithinChannel,
        },
        local_size: p.local_size,
        alpha: p.alpha,
        beta: p.beta,
        k: p.k,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::*;

    #[test]
    fn across_channels_divides_alpha_by_n_with_a_zero_padded_window() {
        let x = t(&[1., 2., 3.], &[1, 3, 1, 1]);
        let lrn =
            Lrn { region: LrnRegion::AcrossChannels, local_size: 3, alpha: 3.0, beta: 0.5, k: 2.0 };
        let y = &lrn.forward(&[x], &[], false)[0];
        // scale_c = 2 + (3/3)·Σ window x²: c0: 1+4, c1: 1+4+9, c2: 4+9.
        let want = [1.0 / 7f32.sqrt(), 2.0 / 16f32.sqrt(), 3.0 / 15f32.sqrt()];
        assert_close(y, &want, 1e-6);
    }

    #[test]
    fn across_channels_window_wider_than_the_channels_and_several_pixels() {
        // 2 channels, 2 pixels, local_size 5: every window holds both channels.
        let x = t(&[1., 2., 3., 4.], &[1, 2, 1, 2]);
        let lrn =
            Lrn { region: LrnRegion::AcrossChannels, local_size: 5, alpha: 5.0, beta: 1.0, k: 1.0 };
        let y = &lrn.forward(&[x.shallow_clone()], &[], false)[0];
        // pixel 0: Σx² = 1 + 9 = 10 → scale 11; pixel 1: 4 + 16 = 20 → 21.
        assert_close(y, &[1. / 11., 2. / 21., 3. / 11., 4. / 21.], 1e-6);
        // d y_c / d x_c = 1/s − 2x_c²/s² (β = 1, α/n = 1); pixel 0, channel 0: 1/11 − 2/121.
        let g = grad_of(&x, |x| lrn.forward(&[x.shallow_clone()], &[], false).remove(0));
        let w: Vec<f32> = (1..=4).map(|i| (i as f32).sin()).collect();
        let want0 = w[0] * (1.0 / 11.0 - 2.0 / 121.0) + w[2] * (-2.0 * 3.0 * 1.0 / 121.0);
        assert_close(&g.flatten(0, -1).narrow(0, 0, 1), &[want0], 1e-5);
    }

    /// The CPU path against the libtorch ops and autograd: windows narrower
    /// and wider than the channels, one channel, β = 0.75 (two roots) and
    /// others (`powf`), batch 2.
    #[test]
    fn own_path_matches_the_libtorch_ops_forward_and_backward() {
        for (channels, n, beta) in
            [(7i64, 5i64, 0.75), (3, 5, 0.75), (6, 3, 0.6), (1, 5, 1.0), (4, 9, 0.75)]
        {
            let count = 2 * channels * 3 * 4;
            let x = ((Tensor::arange(count, (Kind::Float, tch::Device::Cpu)) * 0.37).sin() * 3.0)
                .reshape([2, channels, 3, 4]);
            let dy = (Tensor::arange(count, (Kind::Float, tch::Device::Cpu)) * 0.23)
                .cos()
                .reshape([2, channels, 3, 4]);
            let lrn =
                Lrn { region: LrnRegion::AcrossChannels, local_size: n, alpha: 0.3, beta, k: 1.5 };
            assert!(lrn.applies(tch::Device::Cpu));
            let want = lrn.forward(&[x.shallow_clone()], &[], false).remove(0);
            let got = lrn.forward_untracked(&[x.shallow_clone()], &[]).remove(0);
            assert_close(&got, &vals(&want), 1e-6);
            let leaf = x.set_requires_grad(true);
            (lrn.forward(&[leaf.shallow_clone()], &[], true).remove(0) * &dy)
                .sum(Kind::Float)
                .backward();
            let want_dx = leaf.grad();
            let got_dx =
                lrn.backward(&[leaf], &[], &[dy.shallow_clone()], vec![]).bottoms.remove(0);
            let got_dx = got_dx.unwrap_or_else(|| panic!("C {channels} n {n}: no bottom gradient"));
            assert_close(&got_dx, &vals(&want_dx), 1e-5);
        }
        let within =
            Lrn { region: LrnRegion::WithinChannel, local_size: 3, alpha: 1.0, beta: 0.75, k: 1.0 };
        assert!(!within.applies(tch::Device::Cpu), "WITHIN_CHANNEL stays on libtorch's ops");
    }

    #[test]
    fn within_channel_uses_n_squared_and_ignores_k() {
        let x = t(&[1., 2., 3., 4.], &[1, 1, 2, 2]);
        let lrn = Lrn {
            region: LrnRegion::WithinChannel,
            local_size: 3,
            alpha: 9.0,
            beta: 1.0,
            k: 100.0,
        };
        let y = &lrn.forward(&[x], &[], false)[0];
        // Every 3x3 window (pad 1) covers all four pixels: Σx² = 30 → scale 1 + 30.
        // (A 5x5 window on this 2x2 input is as legal in Caffe.)
        assert_close(y, &[1. / 31., 2. / 31., 3. / 31., 4. / 31.], 1e-6);
    }
}
