//! Pooling with Caffe's geometry, which libtorch's pooling does not share:
//! the output size rounds up (unless `round_mode: FLOOR`) and, when any pad
//! is set, drops a last window that would start in the trailing padding;
//! MAX never picks a padded cell; AVE divides by the window clipped to
//! `[−P, I+P)` (padded cells inside count, cells beyond do not) while
//! summing only real pixels. Both are computed by padding explicitly to
//! exactly the extent the windows cover and pooling without implicit
//! padding; AVE divides a sum-pool by a divisor map.

use tch::{Kind, Tensor};

use super::{
    backward_on_memory, cpu_f32, cpu_f32_mut, for_each_plane, forward_on_memory, LowerCtx,
    LowerResult, Lowered, OwnBackward, OwnGradients,
};
use lvc_compiler::ops::pool::{pooled_size, PoolMethod as CaffeMethod, PoolOp, RoundMode};

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

impl Pool {
    /// Kernel, stride, pad and Caffe's output size for an input of spatial
    /// size `size` (h, w).
    fn geometry(&self, size: [i64; 2]) -> ([i64; 2], [i64; 2], [i64; 2], [i64; 2]) {
        let (kernel, stride, pad) =
            if self.global { (size, [1, 1], [0, 0]) } else { (self.kernel, self.stride, self.pad) };
        let any_pad = pad.iter().any(|&p| p > 0);
        let round = if self.ceil { RoundMode::Ceil } else { RoundMode::Floor };
        let out =
            [0, 1].map(|a| pooled_size(size[a], kernel[a], stride[a], pad[a], any_pad, round));
        (kernel, stride, pad, out)
    }

    /// Pads (or trims) the two spatial axes so that they start at −P and end
    /// where the last window ends.
    fn frame(
        x: &Tensor,
        size: [i64; 2],
        kernel: [i64; 2],
        stride: [i64; 2],
        pad: [i64; 2],
        out: [i64; 2],
        value: f64,
    ) -> Tensor {
        let extent = [0, 1].map(|a| (out[a] - 1) * stride[a] + kernel[a]);
        let after = [0, 1].map(|a| (extent[a] - size[a] - pad[a]).max(0));
        // constant_pad_nd lists the last axis first.
        let padded = x.pad([pad[1], after[1], pad[0], after[0]].as_slice(), "constant", value);
        padded.narrow(2, 0, extent[0]).narrow(3, 0, extent[1])
    }

    /// AVE's divisor per output cell: the window clipped to `[−P, I+P)`,
    /// built on the input's device.
    fn divisor(
        size: [i64; 2],
        kernel: [i64; 2],
        stride: [i64; 2],
        pad: [i64; 2],
        out: [i64; 2],
        device: tch::Device,
    ) -> Tensor {
        let [dh, dw] = [0, 1].map(|a| {
            let start =
                Tensor::arange(out[a], (Kind::Float, device)) * stride[a] as f64 - pad[a] as f64;
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
        let (kernel, stride, pad, out) = self.geometry(size);
        let no_pad = [0i64, 0];
        let top = match self.method {
            PoolMethod::Max => {
                // −FLT_MAX, Caffe's initial value, so padding never wins a window with a real pixel.
                let framed = Self::frame(x, size, kernel, stride, pad, out, -(f32::MAX as f64));
                framed.max_pool2d(
                    kernel.as_slice(),
                    stride.as_slice(),
                    no_pad.as_slice(),
                    [1i64, 1].as_slice(),
                    false,
                )
            }
            PoolMethod::Ave => {
                let framed = Self::frame(x, size, kernel, stride, pad, out, 0.0);
                let sums = framed.avg_pool2d(
                    kernel.as_slice(),
                    stride.as_slice(),
                    no_pad.as_slice(),
                    false,
                    true,
                    Some(1),
                );
                sums / Self::divisor(size, kernel, stride, pad, out, x.device())
            }
        };
        vec![top]
    }

    fn own_backward(&self) -> Option<&dyn OwnBackward> {
        Some(self)
    }
}

/// MAX on CPU, computed on memory as Caffe's CPU layer does: each output is
/// the first maximum (`>` scan, rows then columns) of its window clipped to
/// the image, and backward adds each output's gradient to that cell,
/// found again by the same scan (no index tensor is kept between the
/// passes). Through libtorch (an explicit pad, `max_pool2d` with indices,
/// their backward), FCN-8s's pool1 (64 × 454² at batch 1, slim: 16) took
/// 17 ms forward-backward, mostly copying and zeroing 454² maps.
impl OwnBackward for Pool {
    fn applies(&self, device: tch::Device) -> bool {
        device == tch::Device::Cpu && self.method == PoolMethod::Max
    }

    fn forward_untracked(&self, bottoms: &[Tensor], params: &[Tensor]) -> Vec<Tensor> {
        forward_on_memory(self, bottoms, params, |x| {
            let windows = self.windows(x)?;
            let mut top =
                Tensor::empty(windows.top_shape(x).as_slice(), (Kind::Float, tch::Device::Cpu));
            let (xs, ys) = (cpu_f32(x)?, cpu_f32_mut(&mut top)?);
            let input_plane = windows.input_plane();
            for_each_plane(ys, windows.output_plane(), |index, ys| {
                let xs = &xs[index * input_plane..(index + 1) * input_plane];
                windows.scan(xs, |out, argmax| ys[out] = xs[argmax]);
            });
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
            let windows = self.windows(x)?;
            let mut dx = Tensor::zeros(x.size().as_slice(), (Kind::Float, tch::Device::Cpu));
            let (xs, dys, dxs) = (cpu_f32(x)?, cpu_f32(dy)?, cpu_f32_mut(&mut dx)?);
            let (input_plane, output_plane) = (windows.input_plane(), windows.output_plane());
            if dys.len() * input_plane != xs.len() * output_plane {
                return None;
            }
            for_each_plane(dxs, input_plane, |index, dxs| {
                let xs = &xs[index * input_plane..(index + 1) * input_plane];
                let dys = &dys[index * output_plane..(index + 1) * output_plane];
                windows.scan(xs, |out, argmax| dxs[argmax] += dys[out]);
            });
            Some(dx)
        })
    }
}

/// Caffe's MAX windows over one `[H, W]` plane: output `(ph, pw)` covers rows
/// `[ph·s − p, ph·s − p + k) ∩ [0, H)`, and the same for columns.
struct MaxWindows {
    size: [usize; 2],
    out: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
}

impl Pool {
    /// The windows for a 4-D input, or `None` for another rank (or a pad as
    /// wide as the kernel, which Caffe refuses and would leave windows empty).
    fn windows(&self, x: &Tensor) -> Option<MaxWindows> {
        let shape = x.size();
        if shape.len() != 4 {
            return None;
        }
        let size = [shape[2], shape[3]];
        let (kernel, stride, pad, out) = self.geometry(size);
        let to_usize = |v: [i64; 2]| [usize::try_from(v[0]).ok(), usize::try_from(v[1]).ok()];
        match (to_usize(size), to_usize(out), to_usize(kernel), to_usize(stride), to_usize(pad)) {
            (
                [Some(h), Some(w)],
                [Some(oh), Some(ow)],
                [Some(kh), Some(kw)],
                [Some(sh), Some(sw)],
                [Some(ph), Some(pw)],
            ) if h * w > 0 && oh * ow > 0 && sh * sw > 0 && ph < kh && pw < kw => {
                Some(MaxWindows {
                    size: [h, w],
                    out: [oh, ow],
                    kernel: [kh, kw],
                    stride: [sh, sw],
                    pad: [ph, pw],
                })
            }
            _ => None,
        }
    }
}

impl MaxWindows {
    fn input_plane(&self) -> usize {
        self.size[0] * self.size[1]
    }

    fn output_plane(&self) -> usize {
        self.out[0] * self.out[1]
    }

    fn top_shape(&self, x: &Tensor) -> Vec<i64> {
        let shape = x.size();
        vec![shape[0], shape[1], self.out[0] as i64, self.out[1] as i64]
    }

    /// Calls `visit(output, argmax)` for every output of the plane, in order:
    /// the index of the window's first maximum (Caffe's `>` scan, rows then
    /// columns, from −FLT_MAX).
    #[inline]
    fn scan(&self, plane: &[f32], mut visit: impl FnMut(usize, usize)) {
        let width = self.size[1];
        for ph in 0..self.out[0] {
            let rows = self.span(0, ph);
            for pw in 0..self.out[1] {
                let cols = self.span(1, pw);
                let mut best = rows.start * width + cols.start;
                let mut value = f32::MIN;
                for h in rows.clone() {
                    let first = h * width + cols.start;
                    for (i, &v) in plane[first..h * width + cols.end].iter().enumerate() {
                        if v > value {
                            value = v;
                            best = first + i;
                        }
                    }
                }
                visit(ph * self.out[1] + pw, best);
            }
        }
    }

    /// The cells of window `index` along `axis`, clipped to the image.
    #[inline]
    fn span(&self, axis: usize, index: usize) -> std::ops::Range<usize> {
        let start = index * self.stride[axis];
        let end = (start + self.kernel[axis]).saturating_sub(self.pad[axis]).min(self.size[axis]);
        start.saturating_sub(self.pad[axis])..end
    }
}

pub(crate) fn lower(op: &PoolOp, ctx: &LowerCtx<'_>) -> LowerResult {
    let p = &op.params;
    let method = match p.method {
        CaffeMethod::Max => PoolMethod::Max,
        CaffeMethod::Ave => PoolMethod::Ave,
        CaffeMethod::Stochastic => return Err("STOCHASTIC pooling (GPU-only in Caffe)".to_string()),
    };
    if ctx.node.tops.len() > 1 {
        return Err("the MAX pooling mask top".to_string());
    }
    Ok(Box::new(Pool {
        method,
        kernel: p.kernel.as_ref().map_or([1, 1], |k| [k[0].value, k[1].value]),
        stride: [p.stride[0].value, p.stride[1].value],
        pad: [p.pad[0].value, p.pad[1].value],
        global: p.global,
        ceil: p.round_mode == RoundMode::Ceil,
    }))
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
        assert_eq!(pooled_size(112, 3, 2, 0, false, RoundMode::Ceil), 56);
        assert_eq!(pooled_size(112, 3, 2, 0, false, RoundMode::Floor), 55);
        assert_eq!(pooled_size(55, 3, 2, 0, false, RoundMode::Ceil), 27);
        assert_eq!(pooled_size(454, 2, 2, 0, false, RoundMode::Ceil), 227);
        assert_eq!(pooled_size(227, 2, 2, 0, false, RoundMode::Ceil), 114);
        // k2 s2 p1 on 11: ceil(11/2)+1 = 7, (7−1)·2 = 12 ≥ 11+1 → 6.
        assert_eq!(pooled_size(11, 2, 2, 1, true, RoundMode::Ceil), 6);
        assert_eq!(pooled_size(14, 2, 2, 1, true, RoundMode::Ceil), 8);
    }

    #[test]
    fn max_ignores_padding_and_covers_the_ceil_window() {
        // 1x1x1x3 row, k2 s2 p0 ceil → 2 outputs; the last window holds only x[2].
        let x = t(&[-5., -7., -3.], &[1, 1, 1, 3]);
        let p = Pool { kernel: [1, 2], stride: [1, 2], ..pool(PoolMethod::Max, 2, 2, 0) };
        let y = &p.forward(&[x.shallow_clone()], &[], false)[0];
        assert_close(y, &[-5., -3.], 0.0);
        // pad 1: windows [-1,1) and [1,3): padded cells never win even with negative values.
        let p =
            Pool { kernel: [1, 2], stride: [1, 2], pad: [0, 1], ..pool(PoolMethod::Max, 2, 2, 1) };
        let y = &p.forward(&[x.shallow_clone()], &[], false)[0];
        assert_close(y, &[-5., -3.], 0.0);
        // Gradient goes to the first maximum only (Caffe's `>` scan).
        let tie = t(&[2., 2., 1.], &[1, 1, 1, 3]);
        let whole_row = Pool { kernel: [1, 3], stride: [1, 1], ..pool(PoolMethod::Max, 3, 1, 0) };
        let g = grad_of(&tie, |x| whole_row.forward(&[x.shallow_clone()], &[], false).remove(0));
        assert_close(&g, &[1f32.sin(), 0., 0.], 1e-7);
    }

    /// The CPU scan against the libtorch ops: ceil windows, padding,
    /// overlapping and global windows, rectangular maps, batch 2 × 3
    /// channels; forward exactly, gradients (overlaps accumulate) to 1e-6.
    #[test]
    fn own_max_path_matches_the_libtorch_ops() {
        let cases = [
            (pool(PoolMethod::Max, 3, 2, 0), [11i64, 9i64]),
            (pool(PoolMethod::Max, 2, 2, 1), [11, 14]),
            (pool(PoolMethod::Max, 2, 2, 0), [9, 8]),
            (pool(PoolMethod::Max, 3, 1, 1), [5, 7]),
            (Pool { global: true, ..pool(PoolMethod::Max, 1, 1, 0) }, [4, 6]),
            (Pool { ceil: false, ..pool(PoolMethod::Max, 3, 2, 0) }, [10, 10]),
        ];
        for (p, [h, w]) in cases {
            assert!(p.applies(tch::Device::Cpu));
            let count = 2 * 3 * h * w;
            let x = ((Tensor::arange(count, (Kind::Float, tch::Device::Cpu)) * 0.731).sin() * 5.0)
                .reshape([2, 3, h, w]);
            let want = p.forward(&[x.shallow_clone()], &[], false).remove(0);
            let got = p.forward_untracked(&[x.shallow_clone()], &[]).remove(0);
            assert_eq!(got.size(), want.size(), "{p:?} on {h}×{w}");
            assert_close(&got, &vals(&want), 0.0);
            let dy = (Tensor::arange(want.numel() as i64, (Kind::Float, tch::Device::Cpu)) * 0.37)
                .cos()
                .reshape(want.size());
            let leaf = x.set_requires_grad(true);
            (p.forward(&[leaf.shallow_clone()], &[], true).remove(0) * &dy)
                .sum(Kind::Float)
                .backward();
            let got_dx = p.backward(&[leaf.shallow_clone()], &[], &[dy], vec![]).bottoms.remove(0);
            let got_dx = got_dx.unwrap_or_else(|| panic!("{p:?}: no bottom gradient"));
            assert_close(&got_dx, &vals(&leaf.grad()), 1e-6);
        }
        // Ties (ReLU's zeros) send the gradient to the first maximum, as Caffe's `>` scan does.
        let tie = t(&[0., 2., 2., 0.], &[1, 1, 1, 4]).set_requires_grad(true);
        let row = Pool { kernel: [1, 4], stride: [1, 1], ..pool(PoolMethod::Max, 4, 1, 0) };
        let dx = row.backward(&[tie], &[], &[t(&[3.], &[1, 1, 1, 1])], vec![]).bottoms.remove(0);
        assert_close(&dx.unwrap_or_else(|| panic!("no gradient")), &[0., 3., 0., 0.], 0.0);
        assert!(
            !pool(PoolMethod::Ave, 2, 2, 0).applies(tch::Device::Cpu),
            "AVE stays on libtorch's ops"
        );
    }

    #[test]
    fn ave_divides_by_the_window_clipped_to_the_padded_extent() {
        // 1-D: I=4, k3 s2 p1 → ceil((4+2−3)/2)+1 = 3 → (3−1)·2 = 4 ≥ 5? no → 3 outputs.
        // Windows [-1,2), [1,4), [3,6)→end clipped to I+P=5: sizes 3, 3, 2.
        let x = t(&[1., 2., 3., 4.], &[1, 1, 1, 4]);
        let p =
            Pool { kernel: [1, 3], stride: [1, 2], pad: [0, 1], ..pool(PoolMethod::Ave, 3, 2, 1) };
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
