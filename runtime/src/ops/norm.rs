//! BatchNorm (Caffe's, without affine; statistics stored as sums with a
//! moving-average factor), Scale, Bias and MVN.

use tch::{Kind, Tensor};

use super::{LowerCtx, LowerResult, Lowered};
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

/// `factor` (whose shape is a run of the bottom's axes starting at `axis`)
/// reshaped to broadcast against a bottom of `rank` axes.
fn along_axes(factor: &Tensor, axis: usize, rank: usize) -> Tensor {
    let mut shape = vec![1i64; axis];
    shape.extend(factor.size());
    shape.resize(rank, 1);
    factor.reshape(shape)
}

impl Lowered for Scale {
    fn forward(&self, bottoms: &[Tensor], params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        let (gamma, bias) = match bottoms.get(1) {
            Some(g) => (g, params.first()),
            None => (&params[0], params.get(1)),
        };
        let scaled = x * along_axes(gamma, self.axis, x.dim());
        vec![match bias.filter(|_| self.bias_term) {
            Some(b) => scaled + along_axes(b, self.axis, x.dim()),
            None => scaled,
        }]
    }
}

/// `y = x + β` with β broadcast as Scale's γ: a learnt blob (one bottom) or
/// `bottom[1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bias {
    pub axis: usize,
}

impl Lowered for Bias {
    fn forward(&self, bottoms: &[Tensor], params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        let beta = match bottoms.get(1) {
            Some(beta) => beta,
            None => &params[0],
        };
        vec![x + along_axes(beta, self.axis, x.dim())]
    }
}

/// Caffe's MVN: per image and channel (per image with `across_channels`),
/// subtract the mean and, with `normalize_variance`, divide by
/// `sqrt(E[(x − m)²]) + eps` (population variance, eps outside the root).
#[derive(Debug, Clone, PartialEq)]
pub struct Mvn {
    pub normalize_variance: bool,
    pub across_channels: bool,
    pub eps: f64,
}

impl Lowered for Mvn {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        let shape = x.size();
        let groups = match shape.as_slice() {
            [n, c, ..] if !self.across_channels => n * c,
            [n, ..] => *n,
            [] => 1,
        };
        let rows = x.reshape([groups, -1]);
        let centred = &rows - rows.mean_dim(1, true, Kind::Float);
        let y = if self.normalize_variance {
            let var = (&centred * &centred).mean_dim(1, true, Kind::Float);
            // A constant row has variance 0; the root's derivative there is
            // infinite, so it is taken only where var > 0 (Caffe's y is then
            // 0 / eps = 0 with a finite gradient).
            let positive = var.gt(0.0);
            let root = var
                .clamp_min(f64::from(f32::MIN_POSITIVE))
                .sqrt()
                .where_scalarother(&positive, 0.0);
            centred / (root + self.eps)
        } else {
            centred
        };
        vec![y.reshape(shape)]
    }
}

pub(crate) fn lower(op: &NormOp, ctx: &LowerCtx<'_>) -> LowerResult {
    let axis_of = |axis: i64| {
        ctx.bottoms
            .first()
            .and_then(|b| b.canonical_axis(axis))
            .ok_or_else(|| format!("axis {axis} out of range"))
    };
    match &op.norm {
        Norm::BatchNorm(p) => Ok(Box::new(BatchNorm {
            use_global_stats: p.use_global_stats.unwrap_or(!ctx.train),
            moving_average_fraction: p.moving_average_fraction,
            eps: p.eps,
        }) as Box<dyn Lowered>),
        Norm::Scale(p) => axis_of(p.axis.value)
            .map(|axis| Box::new(Scale { axis, bias_term: p.bias_term }) as Box<dyn Lowered>),
        Norm::Bias(p) => {
            axis_of(p.axis.value).map(|axis| Box::new(Bias { axis }) as Box<dyn Lowered>)
        }
        Norm::Mvn(p) => Ok(Box::new(Mvn {
            normalize_variance: p.normalize_variance,
            across_channels: p.across_channels,
            eps: p.eps,
        })),
    }
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
    fn bias_adds_a_learnt_or_bottom_beta_along_the_axes() {
        let x = t(&[1., 2., 3., 4.], &[1, 2, 2]);
        let bias = Bias { axis: 1 };
        assert_close(
            &bias.forward(&[x.shallow_clone()], &[t(&[10., 20.], &[2])], false)[0],
            &[11., 12., 23., 24.],
            0.0,
        );
        let per_pixel = t(&[1., 0., 0., 1.], &[2, 2]);
        assert_close(&bias.forward(&[x, per_pixel], &[], false)[0], &[2., 2., 3., 5.], 0.0);
    }

    #[test]
    fn mvn_per_channel_or_across_with_eps_outside_the_root() {
        // Two channels: [1, 3] (mean 2, sd 1) and [5, 5] (constant).
        let x = t(&[1., 3., 5., 5.], &[1, 2, 2]);
        let mvn = Mvn { normalize_variance: true, across_channels: false, eps: 1e-9 };
        let y = &mvn.forward(&[x.shallow_clone()], &[], true)[0];
        assert_close(y, &[-1., 1., 0., 0.], 1e-6);
        // The constant channel's gradient stays finite: (dy − mean dy) / eps.
        let g = vals(&grad_of(&x, |x| mvn.forward(&[x.shallow_clone()], &[], true).remove(0)));
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
        let across = Mvn { normalize_variance: false, across_channels: true, eps: 1e-9 };
        assert_close(
            &across.forward(&[x.shallow_clone()], &[], true)[0],
            &[-2.5, -0.5, 1.5, 1.5],
            1e-6,
        );
        // Across channels with the variance: mean 3.5, E[(x − m)²] = 2.75.
        let both = Mvn { normalize_variance: true, across_channels: true, eps: 0.0 };
        let sd = 2.75f32.sqrt();
        assert_close(
            &both.forward(&[x], &[], true)[0],
            &[-2.5 / sd, -0.5 / sd, 1.5 / sd, 1.5 / sd],
            1e-6,
        );
        // A 0-axis bottom is one group of one value: centred to 0.
        assert_close(&mvn.forward(&[Tensor::from(3.0f32)], &[], true)[0], &[0.], 0.0);
    }

    #[test]
    fn scale_with_learnt_or_bottom_gamma() {
        let x = t(&[1., 2., 3., 4.], &[1, 2, 2]);
        let s = Scale { axis: 1, bias_term: true };
        let y =
            &s.forward(&[x.shallow_clone()], &[t(&[2., 3.], &[2]), t(&[1., -1.], &[2])], false)[0];
        assert_close(y, &[3., 5., 8., 11.], 0.0);
        let from_bottom = Scale { axis: 1, bias_term: false };
        let y = &from_bottom.forward(&[x, t(&[10., 0.], &[2])], &[], false)[0];
        assert_close(y, &[10., 20., 0., 0.], 0.0);
    }
}
