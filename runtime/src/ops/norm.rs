//! BatchNorm (Caffe's, without affine; statistics stored as sums with a
//! moving-average factor) and Scale.

use tch::{Kind, Tensor};

use super::{Lowered, LowerCtx, Lowering};
use lvc_compiler::ops::norm::{Norm, NormOp};

#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm {
    /// Resolved by the compiler from the phase when unset (TEST → true).
    pub use_global_stats: bool,
    pub moving_average_fraction: f64,
    pub eps: f64,
}

/// `[C]` → `[1, C, 1, …]` for an input of `rank` axes.
fn per_channel(t: &Tensor, rank: usize) -> Tensor {
    let mut shape = vec![1i64; rank];
    shape[1] = -1;
    t.reshape(shape)
}

impl Lowered for BatchNorm {
    /// params: mean sum `[C]`, variance sum `[C]`, factor `[1]`. With batch
    /// statistics the stored sums are updated in place, as Caffe does.
    fn forward(&self, bottoms: &[Tensor], params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        let rank = x.dim();
        let reduce: Vec<i64> = (0..rank as i64).filter(|&a| a != 1).collect();
        let (mean, var) = if self.use_global_stats {
            // factor 0 → scale 0, on the device (no host sync).
            let factor = &params[2];
            let scale = factor.reciprocal().where_scalarother(&factor.ne(0.0), 0.0);
            (&params[0] * &scale, &params[1] * &scale)
        } else {
            let mean = x.mean_dim(reduce.as_slice(), false, Kind::Float);
            let centred = x - per_channel(&mean, rank);
            let var = (&centred * &centred).mean_dim(reduce.as_slice(), false, Kind::Float);
            let m = x.numel() as f64 / x.size()[1] as f64;
            let correction = if m > 1.0 { m / (m - 1.0) } else { 1.0 };
            tch::no_grad(|| {
                let maf = self.moving_average_fraction;
                let mut factor = params[2].shallow_clone();
                factor.copy_(&(&params[2] * maf + 1.0));
                let mut mean_sum = params[0].shallow_clone();
                mean_sum.copy_(&(&params[0] * maf + &mean));
                let mut var_sum = params[1].shallow_clone();
                var_sum.copy_(&(&params[1] * maf + &var * correction));
            });
            (mean, var)
        };
        vec![(x - per_channel(&mean, rank)) / per_channel(&(var + self.eps).sqrt(), rank)]
    }
}

/// `y = x · γ (+ β)` with γ broadcast over axes `[axis, axis + len(γ.shape))`.
/// γ is a learnt blob (one bottom) or `bottom[1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub axis: usize,
    pub bias_term: bool,
}

impl Lowered for Scale {
    fn forward(&self, bottoms: &[Tensor], params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        let (gamma, bias) = match bottoms.get(1) {
            Some(g) => (g, params.first()),
            None => (&params[0], params.get(1)),
        };
        let rank = x.dim();
        let fit = |t: &Tensor| {
            let mut shape = vec![1i64; self.axis];
            shape.extend(gamma.size());
            shape.resize(rank, 1);
            t.reshape(shape)
        };
        let scaled = x * fit(gamma);
        vec![match bias.filter(|_| self.bias_term) {
            Some(b) => scaled + fit(b),
            None => scaled,
        }]
    }
}

pub(crate) fn lower(ctx: &LowerCtx<'_>) -> Lowering {
    let op = ctx.op::<NormOp>()?;
    Some(match &op.norm {
        Norm::BatchNorm(p) => Ok(Box::new(BatchNorm {
            use_global_stats: p.use_global_stats.unwrap_or(!ctx.train),
            moving_average_fraction: p.moving_average_fraction,
            eps: p.eps,
        }) as Box<dyn Lowered>),
        Norm::Scale(p) => match ctx.bottoms.first().and_then(|b| b.canonical_axis(p.axis.value)) {
            Some(axis) => Ok(Box::new(Scale { axis, bias_term: p.bias_term })),
            None => Err(format!("axis {} out of range", p.axis.value)),
        },
        Norm::Bias(_) | Norm::Mvn(_) => Err("Bias and MVN are parsed and shape-checked but have no runtime implementation".to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::*;

    #[test]
    fn global_stats_divide_by_the_factor() {
        let x = t(&[1., 3., 10., 20.], &[1, 2, 2, 1]);
        let params = [t(&[4., 30.], &[2]), t(&[8., 50.], &[2]), t(&[2.], &[1])];
        let bn = BatchNorm { use_global_stats: true, moving_average_fraction: 0.999, eps: 0.0 };
        // mean (2, 15), var (4, 25)
        let y = &bn.forward(&[x.shallow_clone()], &params, false)[0];
        assert_close(y, &[-0.5, 0.5, -1.0, 1.0], 1e-6);
        let zero = [t(&[4., 30.], &[2]), t(&[8., 50.], &[2]), t(&[0.], &[1])];
        let bn = BatchNorm { eps: 1.0, ..bn };
        assert_close(&bn.forward(&[x], &zero, false)[0], &[1., 3., 10., 20.], 1e-6);
    }

    #[test]
    fn batch_stats_normalise_and_update_the_running_sums() {
        let x = t(&[1., 3., 10., 20.], &[1, 2, 2, 1]);
        let params = [t(&[0., 0.], &[2]), t(&[0., 0.], &[2]), t(&[0.], &[1])];
        let bn = BatchNorm { use_global_stats: false, moving_average_fraction: 0.5, eps: 0.0 };
        let y = &bn.forward(&[x], &params, true)[0];
        assert_close(y, &[-1., 1., -1., 1.], 1e-6);
        assert_close(&params[2], &[1.], 0.0);
        assert_close(&params[0], &[2., 15.], 0.0);
        // biased variances 1 and 25, corrected by m/(m−1) = 2.
        assert_close(&params[1], &[2., 50.], 1e-6);
    }

    #[test]
    fn scale_with_learnt_or_bottom_gamma() {
        let x = t(&[1., 2., 3., 4.], &[1, 2, 2]);
        let s = Scale { axis: 1, bias_term: true };
        let y = &s.forward(&[x.shallow_clone()], &[t(&[2., 3.], &[2]), t(&[1., -1.], &[2])], false)[0];
        assert_close(y, &[3., 5., 8., 11.], 0.0);
        let from_bottom = Scale { axis: 1, bias_term: false };
        let y = &from_bottom.forward(&[x, t(&[10., 0.], &[2])], &[], false)[0];
        assert_close(y, &[10., 20., 0., 0.], 0.0);
    }
}
