//! Convolution and Deconvolution. Caffe's weight layouts are libtorch's:
//! convolution `[C_out, C_in/g, k…]`, deconvolution `[C_in, C_out/g, k…]`
//! (= `conv_transpose`), so blobs load without transposition.

use tch::Tensor;

use super::{accumulate, LowerCtx, LowerResult, Lowered, OwnBackward, OwnGradients};
use lvc_compiler::ops::conv::ConvOp;

/// Both directions of Caffe's `convolution_param` over N spatial axes
/// (channel axis 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    pub stride: Vec<i64>,
    pub pad: Vec<i64>,
    pub dilation: Vec<i64>,
    pub group: i64,
    /// Deconvolution: `out = S·(I−1) + D·(K−1) + 1 − 2P`.
    pub transposed: bool,
    pub bias_term: bool,
}

impl Lowered for Conv {
    /// params: weight, then bias when `bias_term`.
    fn forward(&self, bottoms: &[Tensor], params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let bias = if self.bias_term { params.get(1) } else { None };
        let output_padding = vec![0i64; self.stride.len()];
        bottoms
            .iter()
            .map(|x| {
                x.convolution(
                    &params[0],
                    bias,
                    self.stride.as_slice(),
                    self.pad.as_slice(),
                    self.dilation.as_slice(),
                    self.transposed,
                    output_padding.as_slice(),
                    self.group,
                )
            })
            .collect()
    }
}

/// A 2-D convolution (group 1, stride 1, no dilation) computed as one GEMM
/// per image: `W[O, C·k·k] × cols[C·k·k, L]`, where `cols` is the input
/// itself for a 1×1 kernel without padding and its im2col otherwise.
/// Backward is then two GEMMs (and a col2im). libtorch's direct kernels run
/// these shapes (FCN's fc6: a 6×6 or 7×7 kernel on a 14² or 15² input, 4096
/// outputs; fc7 and score layers: 1×1) well below its GEMM rate, backward
/// especially; on CPU the layer carries its own backward so that its three
/// GEMMs run in the kernels `crate::gemm` picks (AVX2 kernels, OpenBLAS).
#[derive(Debug, Clone, PartialEq)]
pub struct GemmConv {
    pub kernel: Vec<i64>,
    pub pad: Vec<i64>,
    pub bias_term: bool,
}

impl GemmConv {
    fn pointwise(&self) -> bool {
        self.kernel.iter().all(|&k| k == 1) && self.pad.iter().all(|&p| p == 0)
    }

    /// Output height and width for an `[N, C, H, W]` bottom.
    fn output_size(&self, bottom: &[i64]) -> (i64, i64) {
        (
            bottom[2] + 2 * self.pad[0] - self.kernel[0] + 1,
            bottom[3] + 2 * self.pad[1] - self.kernel[1] + 1,
        )
    }

    /// The GEMM's right operand `[C·kh·kw, N·L]` (L output pixels per image):
    /// the input itself for a pointwise kernel, its im2col otherwise. The
    /// whole batch is one plain 2-D GEMM: a broadcast `matmul` against
    /// `[N, K, L]` takes libtorch's batched path, which runs fc6's forward at
    /// half the rate and its backward slower still. For N = 1 the permute is
    /// a view.
    fn columns(&self, x: &Tensor) -> Tensor {
        let s = x.size();
        let cols = if self.pointwise() {
            x.reshape([s[0], s[1], s[2] * s[3]])
        } else {
            x.im2col(self.kernel.as_slice(), [1, 1], self.pad.as_slice(), [1, 1])
        };
        let rows = cols.size()[1];
        cols.permute([1, 0, 2]).reshape([rows, -1])
    }

    /// `[O, N·L]` back to `[N, O, oh, ow]`.
    fn to_output(y: Tensor, bottom: &[i64], (out_h, out_w): (i64, i64)) -> Tensor {
        let outputs = y.size()[0];
        y.reshape([outputs, bottom[0], out_h * out_w])
            .permute([1, 0, 2])
            .reshape([bottom[0], outputs, out_h, out_w])
    }
}

impl Lowered for GemmConv {
    /// params: weight `[O, C, kh, kw]`, then bias when `bias_term`.
    fn forward(&self, bottoms: &[Tensor], params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let weight = &params[0];
        let outputs = weight.size()[0];
        let matrix = weight.reshape([outputs, -1]);
        let bias = params.get(1).filter(|_| self.bias_term).map(|b| b.reshape([outputs, 1]));
        bottoms
            .iter()
            .map(|x| {
                let cols = self.columns(x);
                let y = match &bias {
                    Some(bias) => bias.addmm(&matrix, &cols),
                    None => matrix.mm(&cols),
                };
                Self::to_output(y, &x.size(), self.output_size(&x.size()))
            })
            .collect()
    }

    fn own_backward(&self) -> Option<&dyn OwnBackward> {
        Some(self)
    }
}

/// Forward and backward as Caffe's `BaseConvolutionLayer` computes them,
/// three GEMMs through `crate::gemm`: `Y = W·cols + b`, `dW = dY·colsᵀ`,
/// `dcols = Wᵀ·dY` then col2im. The columns are rebuilt in backward rather
/// than kept (fc6: 9216 × 81 floats, an im2col of a 14² map).
impl OwnBackward for GemmConv {
    fn applies(&self, device: tch::Device) -> bool {
        device == tch::Device::Cpu && crate::gemm::available()
    }

    fn forward_untracked(&self, bottoms: &[Tensor], params: &[Tensor]) -> Vec<Tensor> {
        tch::no_grad(|| {
            let weight = &params[0];
            let outputs = weight.size()[0];
            let matrix = weight.reshape([outputs, -1]);
            let bias = params.get(1).filter(|_| self.bias_term);
            bottoms
                .iter()
                .map(|x| {
                    let cols = self.columns(x).contiguous();
                    let mut y = crate::gemm::product(false, &matrix, false, &cols, None);
                    if let Some(bias) = bias {
                        y += bias.reshape([outputs, 1]);
                    }
                    Self::to_output(y, &x.size(), self.output_size(&x.size())).contiguous()
                })
                .collect()
        })
    }

    fn backward(
        &self,
        bottoms: &[Tensor],
        params: &[Tensor],
        top_grads: &[Tensor],
        spent: Vec<Option<Tensor>>,
    ) -> OwnGradients {
        tch::no_grad(|| {
            let weight = &params[0];
            let outputs = weight.size()[0];
            let mut spent_weight_grad =
                spent.into_iter().next().flatten().map(|g| g.reshape([outputs, -1]));
            let matrix = weight.reshape([outputs, -1]);
            let bias = params.get(1).filter(|b| self.bias_term && b.requires_grad());
            let mut weight_grad: Option<Tensor> = None;
            let mut bias_grad: Option<Tensor> = None;
            let mut bottom_grads = Vec::with_capacity(bottoms.len());
            for (x, dy) in bottoms.iter().zip(top_grads) {
                let s = x.size();
                let dy = dy
                    .reshape([s[0], outputs, -1])
                    .permute([1, 0, 2])
                    .reshape([outputs, -1])
                    .contiguous();
                if weight.requires_grad() {
                    let dw = crate::gemm::product(
                        false,
                        &dy,
                        true,
                        &self.columns(x).contiguous(),
                        spent_weight_grad.take(),
                    );
                    accumulate(&mut weight_grad, dw);
                }
                if bias.is_some() {
                    let db = dy.sum_dim_intlist([1i64].as_slice(), false, tch::Kind::Float);
                    accumulate(&mut bias_grad, db);
                }
                bottom_grads.push(x.requires_grad().then(|| {
                    // As `dcolsᵀ = dYᵀ·W` (`[N·L, K]`): OpenBLAS runs fc6's
                    // input gradient so in 39.6 ms against 44.2 for `Wᵀ·dY`.
                    let dcols = crate::gemm::product(true, &dy, false, &matrix, None).tr();
                    let rows = dcols.size()[0];
                    let dcols = dcols.reshape([rows, s[0], -1]).permute([1, 0, 2]);
                    if self.pointwise() {
                        dcols.reshape(s.as_slice())
                    } else {
                        dcols.col2im(
                            [s[2], s[3]].as_slice(),
                            self.kernel.as_slice(),
                            [1, 1],
                            self.pad.as_slice(),
                            [1, 1],
                        )
                    }
                }));
            }
            let mut param_grads = vec![weight_grad.map(|g| g.reshape(weight.size()))];
            if let Some(b) = params.get(1) {
                param_grads.push(bias_grad.filter(|_| b.requires_grad()));
            }
            OwnGradients { bottoms: bottom_grads, params: param_grads }
        })
    }
}

/// A 2-D group-less deconvolution with few channels (binary segmentation's
/// fixed bilinear upsamplers), run on CPU as libtorch's plain GEMM + col2im
/// (`slow_conv_transpose2d`) instead of its oneDNN kernel. At batch 1 with
/// 1–3 channels oneDNN picks a path that is 5–16× slower for many map sizes
/// (FCN-8s's `upscore8`, k16 s8 on 2×42²: 31 ms against 2.1 ms, forward and
/// input gradient; 16–66 ms on 36², 40², 46², 52², 58², 60²). Over a grid of
/// kernels 4–64, strides 2–32, maps 5²–63², batches 1/2/4 and 1–3 channels
/// (`benches/train/deconv_grid.py`), the GEMM path's total was 0.70× oneDNN's;
/// its worst ratio 1.76× (k63 s32 on 2×11², 1.4 vs 2.5 ms), its worst loss
/// 12 ms (3 channels, batch 4, 63², k16 s8: 18.6 vs 30.9 ms). From 21
/// channels on oneDNN wins (1.3–2.4×), hence the channel bound. Other devices
/// keep `convolution`.
#[derive(Debug, Clone, PartialEq)]
pub struct GemmDeconv {
    pub kernel: Vec<i64>,
    pub stride: Vec<i64>,
    pub pad: Vec<i64>,
    pub bias_term: bool,
}

/// The largest `C_in · C_out` of a deconvolution lowered as [`GemmDeconv`].
const GEMM_DECONV_MAX_CHANNEL_PRODUCT: i64 = 9;

impl Lowered for GemmDeconv {
    /// params: weight `[C_in, C_out, kh, kw]`, then bias when `bias_term`.
    fn forward(&self, bottoms: &[Tensor], params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let bias = params.get(1).filter(|_| self.bias_term);
        let zeros = [0i64; 2];
        bottoms
            .iter()
            .map(|x| match x.device() {
                tch::Device::Cpu => x.slow_conv_transpose2d(
                    &params[0],
                    self.kernel.as_slice(),
                    bias,
                    self.stride.as_slice(),
                    self.pad.as_slice(),
                    zeros,
                    [1, 1],
                ),
                _ => x.convolution(
                    &params[0],
                    bias,
                    self.stride.as_slice(),
                    self.pad.as_slice(),
                    [1, 1],
                    true,
                    zeros,
                    1,
                ),
            })
            .collect()
    }
}

/// The largest output (pixels per image) for which a big-kernel convolution
/// runs as im2col + GEMM: the column matrix stays small (fc6: 9216 × 81).
const GEMM_MAX_OUTPUT_PIXELS: i64 = 256;
/// The smallest kernel area that makes that worthwhile (3×3 convolutions on
/// small maps are left to libtorch).
const GEMM_MIN_KERNEL_AREA: i64 = 25;

/// Whether a convolution runs as [`GemmConv`]: 2-D, group 1, stride 1, no
/// dilation, and either pointwise or a big kernel on a small output.
fn gemm_lowering(
    geometry: &lvc_compiler::ops::conv::ConvGeometry,
    group: i64,
    transposed: bool,
    bottom: &[i64],
) -> bool {
    let plain = !transposed
        && group == 1
        && geometry.kernel.len() == 2
        && bottom.len() == 4
        && geometry.stride.iter().all(|&s| s == 1)
        && geometry.dilation.iter().all(|&d| d == 1);
    if !plain {
        return false;
    }
    let pointwise = geometry.kernel.iter().all(|&k| k == 1) && geometry.pad.iter().all(|&p| p == 0);
    let out_pixels: i64 =
        (0..2).map(|i| bottom[2 + i] + 2 * geometry.pad[i] - geometry.kernel[i] + 1).product();
    let kernel_area: i64 = geometry.kernel.iter().product();
    pointwise || (kernel_area >= GEMM_MIN_KERNEL_AREA && out_pixels <= GEMM_MAX_OUTPUT_PIXELS)
}

/// Whether a deconvolution runs as [`GemmDeconv`]: 2-D, group 1, no
/// dilation, few channels.
fn gemm_deconv_lowering(
    geometry: &lvc_compiler::ops::conv::ConvGeometry,
    group: i64,
    transposed: bool,
    num_output: i64,
) -> bool {
    transposed
        && group == 1
        && geometry.kernel.len() == 2
        && geometry.dilation.iter().all(|&d| d == 1)
        && geometry.channels_in * num_output <= GEMM_DECONV_MAX_CHANNEL_PRODUCT
}

/// Convolution / Deconvolution over the channel axis 1 (Caffe's `axis`
/// may move it; only 1 is lowered).
pub(crate) fn lower(op: &ConvOp, ctx: &LowerCtx<'_>) -> LowerResult {
    let Some(geometry) = ctx.bottoms.first().and_then(|b| op.geometry(b)) else {
        return Err("the bottom's shape does not fit the convolution".to_string());
    };
    if geometry.axis != 1 {
        return Err(format!(
            "convolution over axis {} (only the channel axis 1 is supported)",
            geometry.axis
        ));
    }
    let bottom = ctx.bottoms.first().map_or(&[][..], |b| b.dims());
    if gemm_lowering(&geometry, op.params.group.value, op.transposed, bottom) {
        return Ok(Box::new(GemmConv {
            kernel: geometry.kernel,
            pad: geometry.pad,
            bias_term: op.params.bias_term,
        }));
    }
    if gemm_deconv_lowering(
        &geometry,
        op.params.group.value,
        op.transposed,
        op.params.num_output.value,
    ) {
        return Ok(Box::new(GemmDeconv {
            kernel: geometry.kernel,
            stride: geometry.stride,
            pad: geometry.pad,
            bias_term: op.params.bias_term,
        }));
    }
    Ok(Box::new(Conv {
        stride: geometry.stride,
        pad: geometry.pad,
        dilation: geometry.dilation,
        group: op.params.group.value,
        transposed: op.transposed,
        bias_term: op.params.bias_term,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::*;

    fn conv2(stride: i64, pad: i64, dilation: i64, group: i64, transposed: bool) -> Conv {
        Conv {
            stride: vec![stride; 2],
            pad: vec![pad; 2],
            dilation: vec![dilation; 2],
            group,
            transposed,
            bias_term: true,
        }
    }

    #[test]
    fn convolution_with_bias_and_output_size() {
        // 1x1x3x3 input, 2x2 kernel of ones: window sums + bias.
        let x = t(&[1., 2., 3., 4., 5., 6., 7., 8., 9.], &[1, 1, 3, 3]);
        let w = t(&[1.; 4], &[1, 1, 2, 2]);
        let b = t(&[0.5], &[1]);
        let y = &conv2(1, 0, 1, 1, false).forward(
            &[x.shallow_clone()],
            &[w.shallow_clone(), b.shallow_clone()],
            false,
        )[0];
        assert_eq!(y.size(), vec![1, 1, 2, 2]);
        assert_close(y, &[12.5, 16.5, 24.5, 28.5], 0.0);
        // pad 1 dilation 2 (extent 3): floor((3 + 2 − 3)/1) + 1 = 3.
        let y = &conv2(1, 1, 2, 1, false).forward(&[x], &[w, b], false)[0];
        assert_eq!(y.size(), vec![1, 1, 3, 3]);
        assert_close(y, &[5.5, 10.5, 5.5, 10.5, 20.5, 10.5, 5.5, 10.5, 5.5], 0.0);
    }

    #[test]
    fn groups_split_channels_into_contiguous_halves() {
        let x = t(&[1., 10.], &[1, 2, 1, 1]);
        let w = t(&[2., 3.], &[2, 1, 1, 1]);
        let b = t(&[0., 0.], &[2]);
        let y = &conv2(1, 0, 1, 2, false).forward(&[x], &[w, b], false)[0];
        assert_close(y, &[2., 30.], 0.0);
    }

    #[test]
    fn deconvolution_uses_the_c_in_first_layout_and_caffe_size() {
        // C_in 2 → C_out 1: weight [2, 1, 2, 2].
        let x = t(&[1., 2.], &[1, 2, 1, 1]);
        let w = t(&[1., 1., 1., 1., 10., 10., 10., 10.], &[2, 1, 2, 2]);
        let mut deconv = conv2(2, 0, 1, 1, true);
        deconv.bias_term = false;
        let y = &deconv.forward(&[x], &[w], false)[0];
        // out = 2·(1−1) + 2 − 0 = 2
        assert_eq!(y.size(), vec![1, 1, 2, 2]);
        assert_close(y, &[21.; 4], 0.0);
    }

    /// GemmConv against libtorch's convolution: forward and the gradients
    /// of input, weight and bias, pointwise and big-kernel, batch 2.
    #[test]
    fn gemm_lowering_matches_the_direct_convolution() {
        for (kernel, pad, size) in [(1i64, 0i64, 5i64), (4, 0, 6), (5, 1, 7)] {
            let x = (Tensor::arange(2 * 3 * size * size, (tch::Kind::Float, tch::Device::Cpu))
                * 0.37)
                .sin()
                .reshape([2, 3, size, size]);
            let w = (Tensor::arange(4 * 3 * kernel * kernel, (tch::Kind::Float, tch::Device::Cpu))
                * 0.11)
                .cos()
                .reshape([4, 3, kernel, kernel]);
            let b = t(&[0.1, -0.2, 0.3, 0.0], &[4]);
            let direct = Conv {
                stride: vec![1, 1],
                pad: vec![pad; 2],
                dilation: vec![1, 1],
                group: 1,
                transposed: false,
                bias_term: true,
            };
            let gemm = GemmConv { kernel: vec![kernel; 2], pad: vec![pad; 2], bias_term: true };
            assert_same_op(&gemm, &direct, &x, &w, &b);
        }
    }

    /// `op` against `reference` on (x, weight, bias): the top (shape and
    /// values, 1e-5) and the gradients of all three (1e-4).
    fn assert_same_op(
        op: &dyn Lowered,
        reference: &dyn Lowered,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
    ) {
        let run = |op: &dyn Lowered, x: &Tensor, w: &Tensor, b: &Tensor| {
            op.forward(&[x.shallow_clone()], &[w.shallow_clone(), b.shallow_clone()], true)
                .remove(0)
        };
        let want = run(reference, x, w, b);
        let got = run(op, x, w, b);
        assert_eq!(got.size(), want.size());
        assert_close(&got, &vals(&want), 1e-5);
        for wrt in 0..3 {
            let grad = |op: &dyn Lowered| match wrt {
                0 => grad_of(x, |x| run(op, x, w, b)),
                1 => grad_of(w, |w| run(op, x, w, b)),
                _ => grad_of(b, |b| run(op, x, w, b)),
            };
            assert_close(&grad(op), &vals(&grad(reference)), 1e-4);
        }
    }

    /// GemmDeconv against libtorch's transposed convolution: forward and the
    /// gradients of input, weight and bias, with stride, padding and batch 2.
    #[test]
    fn gemm_deconvolution_matches_the_transposed_convolution() {
        for (kernel, stride, pad, channels_in, channels_out) in
            [(4i64, 2i64, 0i64, 2i64, 2i64), (16, 8, 4, 1, 3), (3, 1, 1, 3, 1)]
        {
            let x = (Tensor::arange(2 * channels_in * 25, (tch::Kind::Float, tch::Device::Cpu))
                * 0.37)
                .sin()
                .reshape([2, channels_in, 5, 5]);
            let w = (Tensor::arange(
                channels_in * channels_out * kernel * kernel,
                (tch::Kind::Float, tch::Device::Cpu),
            ) * 0.11)
                .cos()
                .reshape([channels_in, channels_out, kernel, kernel]);
            let b = (Tensor::arange(channels_out, (tch::Kind::Float, tch::Device::Cpu)) * 0.3
                - 0.2)
                .reshape([channels_out]);
            let direct = Conv {
                stride: vec![stride; 2],
                pad: vec![pad; 2],
                dilation: vec![1, 1],
                group: 1,
                transposed: true,
                bias_term: true,
            };
            let gemm = GemmDeconv {
                kernel: vec![kernel; 2],
                stride: vec![stride; 2],
                pad: vec![pad; 2],
                bias_term: true,
            };
            assert_same_op(&gemm, &direct, &x, &w, &b);
        }
    }

    #[test]
    fn gemm_deconvolution_is_chosen_for_few_channels_only() {
        let geometry = |channels_in: i64, dilation: i64| lvc_compiler::ops::conv::ConvGeometry {
            axis: 1,
            channels_in,
            kernel: vec![16; 2],
            stride: vec![8; 2],
            pad: vec![0; 2],
            dilation: vec![dilation; 2],
        };
        // FCN-8s upscore8 with 2 classes; 3 × 3 is the bound.
        assert!(gemm_deconv_lowering(&geometry(2, 1), 1, true, 2));
        assert!(gemm_deconv_lowering(&geometry(3, 1), 1, true, 3));
        // 21 classes (PASCAL), grouped (DIGITS' group: 2), dilated, or a convolution: not.
        assert!(!gemm_deconv_lowering(&geometry(21, 1), 1, true, 21));
        assert!(!gemm_deconv_lowering(&geometry(2, 1), 2, true, 2));
        assert!(!gemm_deconv_lowering(&geometry(2, 2), 1, true, 2));
        assert!(!gemm_deconv_lowering(&geometry(2, 1), 1, false, 2));
    }

    #[test]
    fn gemm_lowering_is_chosen_for_pointwise_and_fc6_like_convolutions() {
        let geometry = |k: i64, pad: i64, stride: i64| lvc_compiler::ops::conv::ConvGeometry {
            axis: 1,
            channels_in: 256,
            kernel: vec![k; 2],
            stride: vec![stride; 2],
            pad: vec![pad; 2],
            dilation: vec![1; 2],
        };
        // fc6 of FCN-AlexNet: 6×6 on 14² → 9²; fc7 and score layers: 1×1.
        assert!(gemm_lowering(&geometry(6, 0, 1), 1, false, &[1, 256, 14, 14]));
        assert!(gemm_lowering(&geometry(1, 0, 1), 1, false, &[1, 4096, 9, 9]));
        assert!(gemm_lowering(&geometry(1, 0, 1), 1, false, &[1, 64, 454, 454]));
        // 3×3 convolutions, strided, grouped, transposed or padded 1×1: libtorch's.
        assert!(!gemm_lowering(&geometry(3, 1, 1), 1, false, &[1, 256, 14, 14]));
        assert!(!gemm_lowering(&geometry(11, 100, 4), 1, false, &[1, 1, 256, 256]));
        assert!(!gemm_lowering(&geometry(6, 0, 1), 2, false, &[1, 256, 14, 14]));
        assert!(!gemm_lowering(&geometry(6, 0, 1), 1, true, &[1, 256, 14, 14]));
        assert!(!gemm_lowering(&geometry(1, 1, 1), 1, false, &[1, 256, 14, 14]));
        // A big kernel on a big output stays direct.
        assert!(!gemm_lowering(&geometry(5, 2, 1), 1, false, &[1, 96, 56, 56]));
    }
}
