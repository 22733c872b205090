//! InnerProduct: axes from `axis` on are flattened into K; weight
//! `[N, K]` (or `[K, N]` with `transpose`), bias `[N]`.

use tch::Tensor;

use super::{LowerCtx, LowerResult, Lowered};
use lvc_compiler::ops::dense::InnerProductOp;

#[derive(Debug, Clone, PartialEq)]
pub struct InnerProduct {
    pub axis: usize,
    pub bias_term: bool,
    pub transpose: bool,
}

impl Lowered for InnerProduct {
    fn forward(&self, bottoms: &[Tensor], params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        let shape = x.size();
        let outer: i64 = shape[..self.axis].iter().product();
        let rows = x.reshape([outer, -1]);
        let product =
            if self.transpose { rows.matmul(&params[0]) } else { rows.matmul(&params[0].tr()) };
        let top = if self.bias_term { product + &params[1] } else { product };
        let mut top_shape = shape[..self.axis].to_vec();
        top_shape.push(top.size()[1]);
        vec![top.reshape(top_shape)]
    }
}

pub(crate) fn lower(op: &InnerProductOp, ctx: &LowerCtx<'_>) -> LowerResult {
    let p = &op.params;
    let Some(axis) = ctx.bottoms.first().and_then(|b| b.canonical_axis(p.axis.value)) else {
        return Err(format!("axis {} out of range", p.axis.value));
    };
    Ok(Box::new(InnerProduct { axis, bias_term: p.bias_term, transpose: p.transpose }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::*;

    #[test]
    fn flattens_from_axis_and_applies_weight_and_bias() {
        let x = t(&[1., 2., 3., 4.], &[1, 2, 2]);
        let w = t(&[1., 0., 0., 1., 1., 1., 1., 1.], &[2, 4]);
        let b = t(&[0.5, -0.5], &[2]);
        let ip = InnerProduct { axis: 1, bias_term: true, transpose: false };
        let y =
            &ip.forward(&[x.shallow_clone()], &[w.shallow_clone(), b.shallow_clone()], false)[0];
        assert_eq!(y.size(), vec![1, 2]);
        assert_close(y, &[5.5, 9.5], 0.0);
        let transposed = InnerProduct { axis: 1, bias_term: false, transpose: true };
        let y = &transposed.forward(&[x.shallow_clone()], &[w.reshape([4, 2])], false)[0];
        assert_close(y, &[1. + 3. + 4., 2. + 3. + 4.], 0.0);
        // axis 2: one product per (n, c).
        let per_row = InnerProduct { axis: 2, bias_term: false, transpose: false };
        let y = &per_row.forward(&[x], &[t(&[1., 1.], &[1, 2])], false)[0];
        assert_eq!(y.size(), vec![1, 2, 1]);
        assert_close(y, &[3., 7.], 0.0);
    }
}
