//! Pooling with Caffe's geometry, which libtorch's pooling does not share:
//! the output size rounds up (unless `round_mode: FLOOR`) and, when any pad
//! is set, drops a last window that would start in the trailing padding;
//! MAX never picks a padded cell; AVE divides by the window clipped to
//! `[−P, I+P)` (padded cells inside count, cells beyond do not) while
//! summing only real pixels. Both are computed by padding explicitly to
//! exactly the extent the windows cover and pooling without implicit
//! padding; AVE divides a sum-pool by a divisor map.

use tch::{Kind, Tensor};

use super::{Lowered, LowerCtx, Lowering};
use lvc_compiler::ops::pool::{PoolMethod as CaffeMethod, PoolOp, RoundMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMethod {
    Max,
    Ave,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub method: PoolMethod,
    /// (h, w); ignored with `global`.
    pub kernel: [i64; 2],
    pub stride: [i64; 2],
    pub pad: [i64; 2],
    pub global: bool,
    /// Caffe's default CEIL; false for `round_mode: FLOOR`.
    pub ceil: bool,
}

/// Caffe's pooled size along one axis. `any_pad`: a pad is set on some axis
/// (Caffe applies the clipping rule to both axes then).
pub fn pooled_size(input: i64, kernel: i64, stride: i64, pad: i64, any_pad: bool, ceil: bool) -> i64 {
    let span = (input + 2 * pad - kernel) as f32 / stride as f32;
    let mut out = if ceil { span.ceil() } else { span.floor() } as i64 + 1;
    if any_pad && (out - 1) * stride >= input + pad {
        out -= 1;
    }
    out
}

impl Pool {
    /// Kernel, stride and pad for an input of spatial size (h, w).
    fn geometry(&self, h: i64, w: i64) -> ([i64; 2], [i64; 2], [i64; 2]) {
        if self.global {
            ([h, w], [1, 1], [0, 0])
        } else {
            (self.kernel, self.stride, self.pad)
        }
    }

    /// Pads (or trims) the two spatial axes so that they start at −P and end
    /// where the last window ends.
    fn frame(x: &Tensor, size: [i64; 2], kernel: [i64; 2], stride: [i64; 2], pad: [i64; 2], out: [i64; 2], value: f64) -> Tensor {
        let extent = [0, 1].map(|a| (out[a] - 1) * stride[a] + kernel[a]);
        let after = [0, 1].map(|a| (extent[a] - size[a] - pad[a]).max(0));
        // constant_pad_nd lists the last axis first.
        let padded = x.pad([pad[1], after[1], pad[0], after[0]].as_slice(), "constant", value);
        padded.narrow(2, 0, extent[0]).narrow(3, 0, extent[1])
    }

    /// AVE's divisor per output cell: the window clipped to `[−P, I+P)`,
    /// built on the input's device.
    fn divisor(size: [i64; 2], kernel: [i64; 2], stride: [i64; 2], pad: [i64; 2], out: [i64; 2], device: tch::Device) -> Tensor {
        let [dh, dw] = [0, 1].map(|a| {
            let start = Tensor::arange(out[a], (Kind::Float, device)) * stride[a] as f64 - pad[a] as f64;
            let end = (&start + kernel[a] as f64).clamp_max((size[a] + pad[a]) as f64);
            end - start
        });
        dh.unsqueeze(1) * dw.unsqueeze(0)
    }
}

impl Lowered for Pool {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        let shape = x.size();
        let size = [shape[2], shape[3]];
        let (kernel, stride, pad) = self.geometry(size[0], size[1]);
        let any_pad = pad.iter().any(|&p| p > 0);
        let out = [0, 1].map(|a| pooled_size(size[a], kernel[a], stride[a], pad[a], any_pad, self.ceil));
        let no_pad = [0i64, 0];
        let top = match self.method {
            PoolMethod::Max => {
                // −FLT_MAX, Caffe's initial value, so padding never wins a window with a real pixel.
                let framed = Self::frame(x, size, kernel, stride, pad, out, -(f32::MAX as f64));
                framed.max_pool2d(kernel.as_slice(), stride.as_slice(), no_pad.as_slice(), [1i64, 1].as_slice(), false)
            }
            PoolMethod::Ave => {
                let framed = Self::frame(x, size, kernel, stride, pad, out, 0.0);
                let sums = framed.avg_pool2d(kernel.as_slice(), stride.as_slice(), no_pad.as_slice(), false, true, Some(1));
                sums / Self::divisor(size, kernel, stride, pad, out, x.device())
            }
        };
        vec![top]
    }
}

pub(crate) fn lower(ctx: &LowerCtx<'_>) -> Lowering {
    let op = ctx.op::<PoolOp>()?;
    let p = &op.params;
    let method = match p.method {
        CaffeMethod::Max => PoolMethod::Max,
        CaffeMethod::Ave => PoolMethod::Ave,
        CaffeMethod::Stochastic => return Some(Err("STOCHASTIC pooling (GPU-only in Caffe)".to_string())),
    };
    if ctx.node.tops.len() > 1 {
        return Some(Err("the MAX pooling mask top".to_string()));
    }
    Some(Ok(Box::new(Pool {
        method,
        kernel: p.kernel.as_ref().map_or([1, 1], |k| [k[0].value, k[1].value]),
        stride: [p.stride[0].value, p.stride[1].value],
        pad: [p.pad[0].value, p.pad[1].value],
        global: p.global,
        ceil: p.round_mode == RoundMode::Ceil,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::*;

    fn pool(method: PoolMethod, k: i64, s: i64, p: i64) -> Pool {
        Pool { method, kernel: [k, k], stride: [s, s], pad: [p, p], global: false, ceil: true }
    }

    #[test]
    fn sizes_round_up_and_clip_windows_starting_in_the_padding() {
        assert_eq!(pooled_size(112, 3, 2, 0, false, true), 56);
        assert_eq!(pooled_size(112, 3, 2, 0, false, false), 55);
        assert_eq!(pooled_size(55, 3, 2, 0, false, true), 27);
        assert_eq!(pooled_size(454, 2, 2, 0, false, true), 227);
        assert_eq!(pooled_size(227, 2, 2, 0, false, true), 114);
        // k2 s2 p1 on 11: ceil(11/2)+1 = 7, (7−1)·2 = 12 ≥ 11+1 → 6.
        assert_eq!(pooled_size(11, 2, 2, 1, true, true), 6);
        assert_eq!(pooled_size(14, 2, 2, 1, true, true), 8);
    }

    #[test]
    fn max_ignores_padding_and_covers_the_ceil_window() {
        // 1x1x1x3 row, k2 s2 p0 ceil → 2 outputs; the last window holds only x[2].
        let x = t(&[-5., -7., -3.], &[1, 1, 1, 3]);
        let p = Pool { kernel: [1, 2], stride: [1, 2], ..pool(PoolMethod::Max, 2, 2, 0) };
        let y = &p.forward(&[x.shallow_clone()], &[], false)[0];
        assert_close(y, &[-5., -3.], 0.0);
        // pad 1: windows [-1,1) and [1,3): padded cells never win even with negative values.
        let p = Pool { kernel: [1, 2], stride: [1, 2], pad: [0, 1], ..pool(PoolMethod::Max, 2, 2, 1) };
        let y = &p.forward(&[x.shallow_clone()], &[], false)[0];
        assert_close(y, &[-5., -3.], 0.0);
        // Gradient goes to the first maximum only (Caffe's `>` scan).
        let tie = t(&[2., 2., 1.], &[1, 1, 1, 3]);
        let whole_row = Pool { kernel: [1, 3], stride: [1, 1], ..pool(PoolMethod::Max, 3, 1, 0) };
        let g = grad_of(&tie, |x| whole_row.forward(&[x.shallow_clone()], &[], false).remove(0));
        assert_close(&g, &[1f32.sin(), 0., 0.], 1e-7);
    }

    #[test]
    fn ave_divides_by_the_window_clipped_to_the_padded_extent() {
        // 1-D: I=4, k3 s2 p1 → ceil((4+2−3)/2)+1 = 3 → (3−1)·2 = 4 ≥ 5? no → 3 outputs.
        // Windows [-1,2), [1,4), [3,6)→end clipped to I+P=5: sizes 3, 3, 2.
        let x = t(&[1., 2., 3., 4.], &[1, 1, 1, 4]);
        let p = Pool { kernel: [1, 3], stride: [1, 2], pad: [0, 1], ..pool(PoolMethod::Ave, 3, 2, 1) };
        let y = &p.forward(&[x], &[], false)[0];
        assert_close(y, &[3.0 / 3.0, 9.0 / 3.0, 4.0 / 2.0], 1e-7);
    }

    #[test]
    fn global_pooling_averages_everything() {
        let x = t(&[1., 2., 3., 6.], &[1, 1, 2, 2]);
        let p = Pool { global: true, ..pool(PoolMethod::Ave, 1, 1, 0) };
        assert_close(&p.forward(&[x.shallow_clone()], &[], false)[0], &[3.0], 0.0);
        let p = Pool { global: true, ..pool(PoolMethod::Max, 1, 1, 0) };
        assert_close(&p.forward(&[x], &[], false)[0], &[6.0], 0.0);
    }
}
