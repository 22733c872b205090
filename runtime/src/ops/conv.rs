//! Convolution and Deconvolution. Caffe's weight layouts are libtorch's:
//! convolution `[C_out, C_in/g, k…]`, deconvolution `[C_in, C_out/g, k…]`
//! (= `conv_transpose`), so blobs load without transposition.

use tch::Tensor;

use super::{Lowered, LowerCtx, Lowering};
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

/// Convolution / Deconvolution over the channel axis 1 (Caffe's `axis`
/// may move it; only 1 is lowered).
pub(crate) fn lower(ctx: &LowerCtx<'_>) -> Lowering {
    let op = ctx.op::<ConvOp>()?;
    let Some(geometry) = ctx.bottoms.first().and_then(|b| op.geometry(b)) else {
        return Some(Err("the bottom's shape does not fit the convolution".to_string()));
    };
    if geometry.axis != 1 {
        return Some(Err(format!("convolution over axis {} (only the channel axis 1 is supported)", geometry.axis)));
    }
    Some(Ok(Box::new(Conv {
        stride: geometry.stride,
        pad: geometry.pad,
        dilation: geometry.dilation,
        group: op.params.group.value,
        transposed: op.transposed,
        bias_term: op.params.bias_term,
    })))
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
        let y = &conv2(1, 0, 1, 1, false).forward(&[x.shallow_clone()], &[w.shallow_clone(), b.shallow_clone()], false)[0];
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
}
