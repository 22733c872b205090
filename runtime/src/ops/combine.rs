//! Layers that route or reduce blobs: Eltwise, Concat, Split, Slice,
//! Silence, Flatten, Reshape, ArgMax, Tile, Reduction. (Embed is shape-checked
//! only: an index outside its table has no error path at run time.)

use tch::Tensor;

use super::{LowerCtx, LowerResult, Lowered};
use lvc_compiler::ops::combine::{Combine, CombineOp, EltwiseOp, ReductionOp};

#[derive(Debug, Clone, PartialEq)]
pub enum Eltwise {
    /// One coefficient per bottom (all 1 when none were given).
    Sum(Vec<f64>),
    Prod,
    Max,
}

impl Lowered for Eltwise {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let top = match self {
            Eltwise::Sum(coeffs) => bottoms
                .iter()
                .zip(coeffs)
                .map(|(x, &c)| if c == 1.0 { x.shallow_clone() } else { x * c })
                .reduce(|a, b| a + b),
            Eltwise::Prod => bottoms.iter().map(Tensor::shallow_clone).reduce(|a, b| a * b),
            // Caffe: bottom 1 wins ties against bottom 0 (`a > b ? a : b`), later
            // bottoms only when strictly greater; the gradient goes to the
            // winner alone, which `where` does (torch's maximum would split ties).
            Eltwise::Max => bottoms.split_first().map(|(first, rest)| {
                rest.iter().enumerate().fold(first.shallow_clone(), |best, (i, x)| {
                    if i == 0 {
                        best.where_self(&best.gt_tensor(x), x)
                    } else {
                        x.where_self(&x.gt_tensor(&best), &best)
                    }
                })
            }),
        };
        top.into_iter().collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Concat {
    pub axis: i64,
}

impl Lowered for Concat {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        vec![Tensor::cat(bottoms, self.axis)]
    }
}

/// Caffe's Split (auto-inserted or written): every top is the bottom; the
/// gradients of the tops add up.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub tops: usize,
}

impl Lowered for Split {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        // Aliases, so that each top has its own gradient (summed into the bottom).
        (0..self.tops).map(|_| bottoms[0].alias()).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    pub axis: i64,
    /// Start of every top after the first (Caffe's `slice_point`); empty:
    /// `tops` equal parts.
    pub slice_points: Vec<i64>,
    pub tops: usize,
}

impl Lowered for Slice {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        let length = x.size()[self.axis as usize];
        let starts: Vec<i64> = if self.slice_points.is_empty() {
            let part = length / self.tops as i64;
            (0..self.tops as i64).map(|i| i * part).collect()
        } else {
            std::iter::once(0).chain(self.slice_points.iter().copied()).collect()
        };
        let ends = starts.iter().skip(1).copied().chain(std::iter::once(length));
        starts.iter().zip(ends).map(|(&s, e)| x.narrow(self.axis, s, e - s)).collect()
    }
}

/// Consumes its bottoms; no tops.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence;

impl Lowered for Silence {
    fn forward(&self, _bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        Vec::new()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Flatten {
    pub axis: i64,
    pub end_axis: i64,
}

impl Lowered for Flatten {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        vec![bottoms[0].flatten(self.axis, self.end_axis)]
    }
}

/// Caffe's Reshape: `dims` replace axes `[axis, axis + num_axes)` (num_axes
/// −1: to the end); 0 copies the input dim, −1 is inferred.
#[derive(Debug, Clone, PartialEq)]
pub struct Reshape {
    pub dims: Vec<i64>,
    pub axis: i64,
    pub num_axes: i64,
}

impl Reshape {
    pub fn top_shape(&self, input: &[i64]) -> Vec<i64> {
        let rank = input.len() as i64;
        let start =
            if self.axis < 0 { self.axis + rank + 1 } else { self.axis }.clamp(0, rank) as usize;
        let end = if self.num_axes < 0 {
            input.len()
        } else {
            (start + self.num_axes as usize).min(input.len())
        };
        let mut shape: Vec<i64> = input[..start].to_vec();
        shape.extend(
            self.dims.iter().enumerate().map(|(i, &d)| if d == 0 { input[start + i] } else { d }),
        );
        shape.extend_from_slice(&input[end..]);
        let known: i64 = shape.iter().filter(|&&d| d != -1).product();
        let total: i64 = input.iter().product();
        shape.iter().map(|&d| if d == -1 && known != 0 { total / known } else { d }).collect()
    }
}

impl Lowered for Reshape {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        vec![x.reshape(self.top_shape(&x.size()))]
    }
}

/// Caffe's ArgMax: the `top_k` largest entries along `axis` — their values
/// when `out_max_val`, else their indices (as floats). Without an axis, over
/// everything but axis 0, as `[N, 1 or 2, top_k]` (indices, then values).
/// Ties go to the larger index, as Caffe's `std::greater` on (value, index)
/// pairs orders them. No gradient (Caffe has no backward for it).
#[derive(Debug, Clone, PartialEq)]
pub struct ArgMax {
    pub axis: Option<i64>,
    pub top_k: i64,
    pub out_max_val: bool,
}

impl Lowered for ArgMax {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = bottoms[0].detach();
        let (data, axis) = match self.axis {
            Some(axis) => (x.shallow_clone(), axis),
            // A 0-axis bottom (a full Reduction) counts as one item.
            None => (x.reshape([x.size().first().copied().unwrap_or(1), -1]), 1),
        };
        let len = data.size()[axis as usize];
        // Reversed, a stable descending sort puts the larger index first among equals.
        let (values, reversed) = data.flip([axis]).sort_stable(true, axis, true);
        let values = values.narrow(axis, 0, self.top_k);
        let indices =
            (reversed.narrow(axis, 0, self.top_k) * -1 + (len - 1)).to_kind(tch::Kind::Float);
        vec![match self.axis {
            Some(_) if self.out_max_val => values,
            Some(_) => indices,
            None => {
                let rows = if self.out_max_val {
                    Tensor::stack(&[indices, values], 1)
                } else {
                    indices.unsqueeze(1)
                };
                let mut shape = vec![1i64; x.dim().max(3)];
                shape[..3].copy_from_slice(&rows.size());
                rows.reshape(shape)
            }
        }]
    }
}

/// `tiles` copies of the bottom along `axis`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    pub axis: usize,
    pub tiles: i64,
}

impl Lowered for Tile {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        let mut repeats = vec![1i64; x.dim()];
        repeats[self.axis] = self.tiles;
        vec![x.repeat(repeats)]
    }
}

/// Caffe's Reduction over every axis from `axis` on, times `coeff` (ASUM's
/// gradient is sign(x), 0 at 0, in autograd as in Caffe).
#[derive(Debug, Clone, PartialEq)]
pub struct Reduction {
    pub kind: ReductionOp,
    pub axis: usize,
    pub coeff: f64,
}

impl Lowered for Reduction {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        let outer = x.size()[..self.axis].to_vec();
        let rows = x.reshape([outer.iter().product::<i64>(), -1]);
        let reduced = match self.kind {
            ReductionOp::Sum => rows.sum_dim_intlist(1, false, tch::Kind::Float),
            ReductionOp::Asum => rows.abs().sum_dim_intlist(1, false, tch::Kind::Float),
            ReductionOp::SumSq => (&rows * &rows).sum_dim_intlist(1, false, tch::Kind::Float),
            ReductionOp::Mean => rows.mean_dim(1, false, tch::Kind::Float),
        };
        vec![(reduced * self.coeff).reshape(outer)]
    }
}

pub(crate) fn lower(op: &CombineOp, ctx: &LowerCtx<'_>) -> LowerResult {
    let Some(bottom) = ctx.bottoms.first() else {
        return match op.op {
            Combine::Silence => Ok(Box::new(Silence)),
            _ => Err("a combining layer without bottoms".to_string()),
        };
    };
    let axis_of = |a: i64| {
        bottom.canonical_axis(a).map(|a| a as i64).ok_or_else(|| format!("axis {a} out of range"))
    };
    let tops = ctx.node.tops.len();
    match &op.op {
        Combine::Eltwise(p) => Ok(Box::new(match p.operation {
            EltwiseOp::Sum if p.coeff.is_empty() => Eltwise::Sum(vec![1.0; ctx.bottoms.len()]),
            EltwiseOp::Sum => Eltwise::Sum(p.coeff.clone()),
            EltwiseOp::Prod => Eltwise::Prod,
            EltwiseOp::Max => Eltwise::Max,
        }) as Box<dyn Lowered>),
        Combine::Concat { axis: a } => {
            axis_of(a.value).map(|axis| Box::new(Concat { axis }) as Box<dyn Lowered>)
        }
        Combine::Split => Ok(Box::new(Split { tops })),
        Combine::Slice { axis: a, points } => axis_of(a.value).map(|axis| {
            Box::new(Slice { axis, slice_points: points.iter().map(|p| p.value).collect(), tops })
                as Box<dyn Lowered>
        }),
        Combine::Silence => Ok(Box::new(Silence)),
        Combine::Flatten { axis: a, end_axis } => axis_of(a.value).and_then(|start| {
            axis_of(end_axis.value)
                .map(|end| Box::new(Flatten { axis: start, end_axis: end }) as Box<dyn Lowered>)
        }),
        Combine::Reshape { dims, axis: a, num_axes } => Ok(Box::new(Reshape {
            dims: dims.iter().map(|d| d.value).collect(),
            axis: a.value,
            num_axes: num_axes.value,
        })),
        Combine::ArgMax { out_max_val, top_k, axis } => {
            axis.as_ref().map(|a| axis_of(a.value)).transpose().map(|axis| {
                Box::new(ArgMax { axis, top_k: top_k.value, out_max_val: *out_max_val })
                    as Box<dyn Lowered>
            })
        }
        Combine::Tile { axis, tiles } => axis_of(axis.value)
            .map(|axis| Box::new(Tile { axis: axis as usize, tiles: *tiles }) as Box<dyn Lowered>),
        Combine::Reduction { operation, axis, coeff } => axis_of(axis.value).map(|axis| {
            Box::new(Reduction { kind: *operation, axis: axis as usize, coeff: *coeff })
                as Box<dyn Lowered>
        }),
        Combine::Embed { .. } => Err(super::not_run(op.type_name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::*;

    #[test]
    fn argmax_breaks_ties_to_the_larger_index_like_caffe() {
        // Per row: [1, 3, 3, 0] → top-2 indices 2, 1; values 3, 3.
        let x = t(&[1., 3., 3., 0., 5., 4., 4., 9.], &[2, 4]);
        let along = |out_max_val| {
            ArgMax { axis: Some(1), top_k: 2, out_max_val }
                .forward(&[x.shallow_clone()], &[], false)
                .remove(0)
        };
        assert_close(&along(false), &[2., 1., 3., 0.], 0.0);
        assert_close(&along(true), &[3., 3., 9., 5.], 0.0);
        // No axis: [N, 2, top_k] = indices, then values, over all but axis 0.
        let x4 = x.reshape([2, 1, 2, 2]);
        let y = &ArgMax { axis: None, top_k: 1, out_max_val: true }.forward(
            &[x4.shallow_clone()],
            &[],
            false,
        )[0];
        assert_eq!(y.size(), vec![2, 2, 1, 1]);
        assert_close(y, &[2., 3., 3., 9.], 0.0);
        let y = &ArgMax { axis: None, top_k: 1, out_max_val: false }.forward(&[x4], &[], false)[0];
        assert_eq!(y.size(), vec![2, 1, 1, 1]);
        assert!(!y.requires_grad());
        // A 0-axis bottom (after a full Reduction) is one item of one value.
        let y = &ArgMax { axis: None, top_k: 1, out_max_val: false }.forward(
            &[Tensor::from(2.5f32)],
            &[],
            false,
        )[0];
        assert_eq!(y.size(), vec![1, 1, 1]);
        assert_close(y, &[0.], 0.0);
    }

    #[test]
    fn tile_repeats_along_the_axis_and_sums_gradients_back() {
        let x = t(&[1., 2.], &[1, 2]);
        let tile = Tile { axis: 0, tiles: 3 };
        let y = &tile.forward(&[x.shallow_clone()], &[], false)[0];
        assert_eq!(y.size(), vec![3, 2]);
        assert_close(y, &[1., 2., 1., 2., 1., 2.], 0.0);
        let w: Vec<f32> = (1..=6).map(|i| (i as f32).sin()).collect();
        let g = grad_of(&x, |x| tile.forward(&[x.shallow_clone()], &[], false).remove(0));
        assert_close(&g, &[w[0] + w[2] + w[4], w[1] + w[3] + w[5]], 1e-6);
    }

    #[test]
    fn reductions_from_the_axis_on_with_coeff() {
        let x = t(&[1., -2., 0., 3.], &[2, 2]);
        let run = |kind, axis| {
            Reduction { kind, axis, coeff: 0.5 }.forward(&[x.shallow_clone()], &[], false).remove(0)
        };
        assert_close(&run(ReductionOp::Sum, 1), &[-0.5, 1.5], 0.0);
        assert_close(&run(ReductionOp::Asum, 1), &[1.5, 1.5], 0.0);
        assert_close(&run(ReductionOp::SumSq, 1), &[2.5, 4.5], 0.0);
        assert_close(&run(ReductionOp::Mean, 1), &[-0.25, 0.75], 0.0);
        let all = run(ReductionOp::Sum, 0);
        assert_eq!(all.size(), Vec::<i64>::new());
        assert_close(&all, &[1.0], 0.0);
        // ASUM's gradient is sign(x): 0 at 0.
        let g = grad_of(&x, |x| {
            Reduction { kind: ReductionOp::Asum, axis: 1, coeff: 1.0 }
                .forward(&[x.shallow_clone()], &[], false)
                .remove(0)
        });
        let w: Vec<f32> = (1..=2).map(|i| (i as f32).sin()).collect();
        assert_close(&g, &[w[0], -w[0], 0., w[1]], 1e-6);
    }

    #[test]
    fn eltwise_sum_prod_max() {
        let a = t(&[1., 5., 2.], &[3]);
        let b = t(&[2., 5., 1.], &[3]);
        let sum = Eltwise::Sum(vec![1.0, -0.5]);
        assert_close(
            &sum.forward(&[a.shallow_clone(), b.shallow_clone()], &[], false)[0],
            &[0., 2.5, 1.5],
            0.0,
        );
        assert_close(
            &Eltwise::Prod.forward(&[a.shallow_clone(), b.shallow_clone()], &[], false)[0],
            &[2., 25., 2.],
            0.0,
        );
        assert_close(
            &Eltwise::Max.forward(&[a.shallow_clone(), b.shallow_clone()], &[], false)[0],
            &[2., 5., 2.],
            0.0,
        );
        // The tie at index 1 sends the whole gradient to bottom 1; a third
        // bottom must be strictly greater to win.
        let c = t(&[2., 0., 0.], &[3]);
        let gc = grad_of(&c, |c| {
            Eltwise::Max
                .forward(&[a.shallow_clone(), b.shallow_clone(), c.shallow_clone()], &[], false)
                .remove(0)
        });
        assert_eq!(vals(&gc), vec![0.0, 0.0, 0.0]);
        let ga = grad_of(&a, |a| {
            Eltwise::Max.forward(&[a.shallow_clone(), b.shallow_clone()], &[], false).remove(0)
        });
        assert_eq!(vals(&ga)[1], 0.0);
        let gb = grad_of(&b, |b| {
            Eltwise::Max.forward(&[a.shallow_clone(), b.shallow_clone()], &[], false).remove(0)
        });
        assert_eq!(vals(&gb)[1], 2f32.sin());
    }

    #[test]
    fn concat_split_slice() {
        let a = t(&[1., 2.], &[1, 2]);
        let b = t(&[3.], &[1, 1]);
        let c = &Concat { axis: 1 }.forward(&[a.shallow_clone(), b], &[], false)[0];
        assert_close(c, &[1., 2., 3.], 0.0);
        let tops = Split { tops: 3 }.forward(&[a.shallow_clone()], &[], false);
        assert_eq!(tops.len(), 3);
        let parts = Slice { axis: 1, slice_points: vec![1], tops: 2 }.forward(
            &[c.shallow_clone()],
            &[],
            false,
        );
        assert_close(&parts[0], &[1.], 0.0);
        assert_close(&parts[1], &[2., 3.], 0.0);
        let x = t(&[1., 2., 3., 4.], &[1, 4]);
        let halves = Slice { axis: 1, slice_points: vec![], tops: 2 }.forward(&[x], &[], false);
        assert_close(&halves[1], &[3., 4.], 0.0);
        assert!(Silence.forward(&[a], &[], false).is_empty());
    }

    #[test]
    fn flatten_and_reshape_rules() {
        let x = t(&[0.; 24], &[2, 3, 2, 2]);
        assert_eq!(
            Flatten { axis: 1, end_axis: -1 }.forward(&[x.shallow_clone()], &[], false)[0].size(),
            vec![2, 12]
        );
        let r = Reshape { dims: vec![0, -1], axis: 0, num_axes: -1 };
        assert_eq!(r.top_shape(&[2, 3, 2, 2]), vec![2, 12]);
        let r = Reshape { dims: vec![3, 2], axis: 1, num_axes: 1 };
        assert_eq!(r.top_shape(&[2, 6, 2]), vec![2, 3, 2, 2]);
        let r = Reshape { dims: vec![-1], axis: 2, num_axes: -1 };
        assert_eq!(r.forward(&[x], &[], false)[0].size(), vec![2, 3, 4]);
    }
}
