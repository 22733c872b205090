//! Layers that join, split or re-arrange blobs without learning anything:
//! Eltwise, Concat, Split, Slice, Silence, Flatten, Reshape, ArgMax, Tile,
//! Reduction, and Embed (a lookup table).

use super::common::{
    canonical_axis, filler, identity_map, overflow, plural, range_error, Arity, LayerRef,
};
use super::{
    checked_product, saturating_product, AxisMap, BlobShape, FillerDef, LayerOp, ParamShape,
    ShapeCtx,
};
use super::{OpKind, ParamRole};
use crate::diag::Diagnostic;
use crate::schema::{LayerDef, ParamView, Spanned};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EltwiseOp {
    Prod,
    Sum,
    /// Ties go to the earlier bottom only between bottoms 0 and 1 (`a > b ? a : b`).
    Max,
}

/// `reduction_param.operation` (default SUM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReductionOp {
    Sum,
    /// Σ|x|; Caffe's gradient is sign(x), 0 at 0.
    Asum,
    SumSq,
    Mean,
}

/// `eltwise_param` with Caffe's defaults (SUM, no coefficients).
#[derive(Debug, Clone, PartialEq)]
pub struct EltwiseParams {
    pub operation: EltwiseOp,
    /// Empty, or one per bottom (SUM only).
    pub coeff: Vec<f64>,
    pub stable_prod_grad: bool,
}

/// The operation of a combining layer and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Combine {
    Eltwise(EltwiseParams),
    /// Join along `axis` (default 1; legacy `concat_dim`).
    Concat {
        axis: Spanned<i64>,
    },
    /// Copies its bottom to every top.
    Split,
    /// Cut along `axis` at `points` (empty: equal parts, one per top).
    Slice {
        axis: Spanned<i64>,
        points: Vec<Spanned<i64>>,
    },
    /// Consumes bottoms, produces nothing.
    Silence,
    /// Merge axes `axis..=end_axis` (defaults 1, −1) into one.
    Flatten {
        axis: Spanned<i64>,
        end_axis: Spanned<i64>,
    },
    /// `shape` applied to axes `[axis, axis+num_axes)`; 0 copies, −1 infers.
    Reshape {
        dims: Vec<Spanned<i64>>,
        axis: Spanned<i64>,
        num_axes: Spanned<i64>,
    },
    /// Index (or value) of the `top_k` largest entries; over all but axis 0
    /// when `axis` is unset.
    ArgMax {
        out_max_val: bool,
        top_k: Spanned<i64>,
        axis: Option<Spanned<i64>>,
    },
    /// Repeat `tiles` times along `axis` (default 1).
    Tile {
        axis: Spanned<i64>,
        tiles: i64,
    },
    /// SUM / ASUM / SUMSQ / MEAN over every axis from `axis` (default 0) on.
    Reduction {
        operation: ReductionOp,
        axis: Spanned<i64>,
        coeff: f64,
    },
    /// Lookup of integer indices in a `[input_dim, num_output]` table.
    Embed {
        num_output: i64,
        input_dim: i64,
        bias_term: bool,
        weight_filler: FillerDef,
        bias_filler: FillerDef,
    },
}

#[derive(Debug, Clone)]
pub struct CombineOp {
    pub layer: LayerRef,
    pub type_name: &'static str,
    pub op: Combine,
}

/// Builds `kind` (one of this family's kinds) from `def`.
pub fn build(kind: OpKind, def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<CombineOp> {
    let layer = LayerRef::of(def);
    let type_name = kind.name();
    let op = match kind {
        OpKind::Eltwise => eltwise(&layer, def, diags)?,
        OpKind::Concat => Combine::Concat {
            axis: legacy_axis(&layer, def.param_block("concat_param"), "concat_dim", diags)?,
        },
        OpKind::Split => Combine::Split,
        OpKind::Slice => {
            let v = def.param_block("slice_param");
            Combine::Slice {
                axis: legacy_axis(&layer, v, "slice_dim", diags)?,
                points: v.ints("slice_point"),
            }
        }
        OpKind::Silence => Combine::Silence,
        OpKind::Flatten => {
            let v = def.param_block("flatten_param");
            Combine::Flatten {
                axis: v.int_or_default("axis"),
                end_axis: v.int_or_default("end_axis"),
            }
        }
        OpKind::Reshape => reshape(&layer, def.param_block("reshape_param"), diags)?,
        OpKind::ArgMax => {
            let v = def.param_block("argmax_param");
            let top_k = v.int_or_default("top_k");
            if top_k.value < 1 {
                diags.push(range_error(
                    &layer,
                    top_k.span,
                    "top_k must be at least 1",
                    "use top_k: 1 or more",
                ));
                return None;
            }
            Combine::ArgMax {
                out_max_val: v.bool_or_default("out_max_val").value,
                top_k,
                axis: v.int("axis"),
            }
        }
        OpKind::Tile => {
            let v = def.param_block("tile_param");
            let tiles = match v.int("tiles") {
                Some(t) if t.value > 0 => t.value,
                other => {
                    let span = other.map_or(layer.type_span, |t| t.span);
                    diags.push(
                        layer
                            .error(
                                "lvc::param::range",
                                "tile_param.tiles must be set to a positive number",
                            )
                            .with_label(span, "tiles")
                            .with_help("set `tile_param { tiles: N }` with N ≥ 1"),
                    );
                    return None;
                }
            };
            Combine::Tile { axis: v.int_or_default("axis"), tiles }
        }
        OpKind::Reduction => {
            let v = def.param_block("reduction_param");
            Combine::Reduction {
                // The schema admits only ReductionOp's four names.
                operation: match v.ident_or_default("operation").value {
                    "ASUM" => ReductionOp::Asum,
                    "SUMSQ" => ReductionOp::SumSq,
                    "MEAN" => ReductionOp::Mean,
                    _ => ReductionOp::Sum,
                },
                axis: v.int_or_default("axis"),
                coeff: v.float_or_default("coeff").value,
            }
        }
        _ => embed(&layer, def.param_block("embed_param"), diags)?,
    };
    Some(CombineOp { layer, type_name, op })
}

fn eltwise(layer: &LayerRef, def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<Combine> {
    let v = def.param_block("eltwise_param");
    let operation = match v.ident_or_default("operation").value {
        "PROD" => EltwiseOp::Prod,
        "MAX" => EltwiseOp::Max,
        _ => EltwiseOp::Sum,
    };
    let coeff = v.floats("coeff");
    let mut ok = true;
    if !coeff.is_empty() && operation != EltwiseOp::Sum {
        ok = false;
        diags.push(
            layer
                .error("lvc::param::conflict", "Eltwise takes coefficients only for SUM")
                .with_label(coeff[0].span, "coeff")
                .with_label(layer.anchor(v, "operation"), "not SUM")
                .with_help("remove the coeff lines, or use operation: SUM"),
        );
    }
    let bottoms = def.bottoms.len();
    if !coeff.is_empty() && coeff.len() != bottoms {
        ok = false;
        let mut d = layer.error(
            "lvc::param::count",
            format!("{} for {}", plural(coeff.len(), "coefficient"), plural(bottoms, "bottom")),
        );
        for c in &coeff {
            d = d.with_label(c.span, "");
        }
        diags.push(
            d.with_help(format!("give exactly one coeff per bottom ({bottoms}), or none (all 1)")),
        );
    }
    ok.then(|| {
        Combine::Eltwise(EltwiseParams {
            operation,
            coeff: coeff.iter().map(|c| c.value).collect(),
            stable_prod_grad: v.bool_or_default("stable_prod_grad").value,
        })
    })
}

/// `axis` or its deprecated alias (`concat_dim`, `slice_dim`); both is an error.
fn legacy_axis(
    layer: &LayerRef,
    v: ParamView<'_>,
    legacy: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Spanned<i64>> {
    match (v.int("axis"), v.int(legacy)) {
        (Some(a), Some(l)) => {
            diags.push(
                layer
                    .error("lvc::param::conflict", format!("both `axis` and `{legacy}` are set"))
                    .with_label(a.span, "axis")
                    .with_label(l.span, legacy.to_string())
                    .with_help(format!("keep only `axis` (`{legacy}` is its deprecated name)")),
            );
            None
        }
        (Some(a), None) => Some(a),
        (None, Some(l)) => Some(l),
        (None, None) => Some(v.int_or_default("axis")),
    }
}

fn reshape(layer: &LayerRef, v: ParamView<'_>, diags: &mut Vec<Diagnostic>) -> Option<Combine> {
    let dims = v.sub("shape").ints("dim");
    let mut ok = true;
    for d in dims.iter().filter(|d| d.value < -1) {
        ok = false;
        diags.push(range_error(
            layer,
            d.span,
            format!("reshape dim {} is invalid", d.value),
            "use a size, 0 (copy the input's) or −1 (infer)",
        ));
    }
    let inferred: Vec<&Spanned<i64>> = dims.iter().filter(|d| d.value == -1).collect();
    if inferred.len() > 1 {
        ok = false;
        let mut d = layer.error("lvc::param::count", "more than one reshape dim is −1");
        for x in inferred {
            d = d.with_label(x.span, "−1");
        }
        diags.push(d.with_help("at most one dim can be inferred; give the others explicitly"));
    }
    let num_axes = v.int_or_default("num_axes");
    if num_axes.value < -1 {
        ok = false;
        diags.push(range_error(
            layer,
            num_axes.span,
            "num_axes must be −1 or more",
            "use −1 (all remaining axes) or a count",
        ));
    }
    ok.then(|| Combine::Reshape { dims, axis: v.int_or_default("axis"), num_axes })
}

fn embed(layer: &LayerRef, v: ParamView<'_>, diags: &mut Vec<Diagnostic>) -> Option<Combine> {
    let mut positive = |name: &str| match v.int(name) {
        Some(x) if x.value > 0 => Some(x.value),
        other => {
            diags.push(
                layer
                    .error(
                        "lvc::param::missing",
                        format!("embed_param.{name} must be set to a positive number"),
                    )
                    .with_label(other.map_or(layer.type_span, |x| x.span), name.to_string())
                    .with_help(format!("set `embed_param {{ {name}: N }}`")),
            );
            None
        }
    };
    let (num_output, input_dim) = (positive("num_output"), positive("input_dim"));
    let weight_filler = filler(layer, v.sub("weight_filler"), diags);
    let bias_filler = filler(layer, v.sub("bias_filler"), diags);
    Some(Combine::Embed {
        num_output: num_output?,
        input_dim: input_dim?,
        bias_term: v.bool_or_default("bias_term").value,
        weight_filler,
        bias_filler,
    })
}

impl CombineOp {
    fn arity(&self) -> Arity {
        match &self.op {
            Combine::Eltwise(_) => Arity::new((2, None), (1, Some(1))),
            Combine::Concat { .. } => Arity::new((1, None), (1, Some(1))),
            Combine::Split | Combine::Slice { .. } => Arity::new((1, Some(1)), (1, None)),
            Combine::Silence => Arity::new((1, None), (0, Some(0))),
            _ => Arity::exact(1, 1),
        }
    }

    fn no_in_place(&self, ctx: &mut ShapeCtx<'_>) -> bool {
        let (Some(b), Some(t)) = (ctx.layer.bottoms.first(), ctx.layer.tops.first()) else {
            return true;
        };
        if b.value != t.value {
            return true;
        }
        ctx.diags.push(
            self.layer
                .error("lvc::shape::in_place", format!("{} cannot run in place", self.type_name))
                .with_label(t.span, "top is the bottom")
                .with_help("give the top a new name"),
        );
        false
    }

    fn eltwise(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        let first = ctx.bottoms[0].clone();
        let only_spatial = ctx
            .bottoms
            .iter()
            .all(|b| b.rank() == first.rank() && b.dims().get(..2) == first.dims().get(..2));
        let help = if only_spatial && first.rank() > 2 {
            format!("insert a Crop layer (like FCN's score_pool4c) so both are {first}")
        } else {
            format!("the bottoms differ beyond their spatial size; make them all {first} (check num_output of the layers that produce them)")
        };
        super::common::bottoms_agree(
            &self.layer,
            ctx,
            "lvc::shape::eltwise",
            "Eltwise needs bottoms of one shape",
            &help,
        )
        .then(|| vec![first])
    }

    fn concat(&self, ctx: &mut ShapeCtx<'_>, axis: &Spanned<i64>) -> Option<Vec<BlobShape>> {
        let first = ctx.bottoms[0].clone();
        let a = canonical_axis(&self.layer, axis, &first, "axis", ctx.diags)?;
        let bad: Vec<usize> = (1..ctx.bottoms.len())
            .filter(|&i| {
                let b = &ctx.bottoms[i];
                b.rank() != first.rank()
                    || (0..first.rank()).any(|d| d != a && b.dims()[d] != first.dims()[d])
            })
            .collect();
        if !bad.is_empty() {
            let mut d = self.layer.error(
                "lvc::shape::concat",
                format!("Concat along axis {a} needs the bottoms to agree on every other axis"),
            );
            d = d.with_label(ctx.bottom_span(0), format!("{first}"));
            for &i in &bad {
                d = d.with_label(ctx.bottom_span(i), format!("{}", ctx.bottoms[i]));
            }
            ctx.diags.push(d.with_help(format!(
                    "all bottoms must be {} except along axis {a}; crop or resize the others",
                    first
                        .dims()
                        .iter()
                        .enumerate()
                        .map(|(i, x)| if i == a { "*".to_string() } else { x.to_string() })
                        .collect::<Vec<_>>()
                        .join("×")
                )));
            return None;
        }
        let mut dims = first.dims().to_vec();
        let Some(joined) = ctx.bottoms.iter().try_fold(0i64, |sum, b| sum.checked_add(b.dims()[a]))
        else {
            ctx.diags.push(overflow(
                &self.layer,
                self.layer.type_span,
                &format!("the concatenated axis {a}"),
                "join fewer or smaller bottoms",
            ));
            return None;
        };
        dims[a] = joined;
        Some(vec![BlobShape(dims)])
    }

    fn slice(
        &self,
        ctx: &mut ShapeCtx<'_>,
        axis: &Spanned<i64>,
        points: &[Spanned<i64>],
    ) -> Option<Vec<BlobShape>> {
        let bottom = ctx.bottoms[0].clone();
        let a = canonical_axis(&self.layer, axis, &bottom, "axis", ctx.diags)?;
        let (size, tops) = (bottom.dims()[a], ctx.layer.tops.len() as i64);
        let sizes: Vec<i64> = if points.is_empty() {
            if size % tops != 0 {
                ctx.diags.push(
                    self.layer
                        .error(
                            "lvc::shape::slice",
                            format!("{tops} tops do not evenly divide axis {a} of size {size}"),
                        )
                        .with_label(ctx.bottom_span(0), format!("{bottom}"))
                        .with_help(
                            "give slice_point values, or a number of tops that divides the axis",
                        ),
                );
                return None;
            }
            vec![size / tops; tops as usize]
        } else {
            if points.len() as i64 != tops - 1 {
                let mut d = self.layer.error(
                    "lvc::param::count",
                    format!(
                        "{} for {}",
                        plural(points.len(), "slice_point"),
                        plural(tops as usize, "top")
                    ),
                );
                for p in points {
                    d = d.with_label(p.span, "");
                }
                ctx.diags.push(d.with_help(format!(
                    "give one slice_point fewer than there are tops ({})",
                    tops - 1
                )));
                return None;
            }
            let mut prev = 0;
            let mut sizes = Vec::new();
            for p in points {
                if p.value <= prev || p.value >= size {
                    ctx.diags.push(range_error(
                        &self.layer,
                        p.span,
                        format!("slice_point {} is not inside ({prev}, {size})", p.value),
                        "slice points must increase strictly and stay inside the sliced axis",
                    ));
                    return None;
                }
                sizes.push(p.value - prev);
                prev = p.value;
            }
            sizes.push(size - prev);
            sizes
        };
        Some(
            sizes
                .into_iter()
                .map(|s| {
                    let mut d = bottom.dims().to_vec();
                    d[a] = s;
                    BlobShape(d)
                })
                .collect(),
        )
    }

    fn flatten(
        &self,
        ctx: &mut ShapeCtx<'_>,
        axis: &Spanned<i64>,
        end_axis: &Spanned<i64>,
    ) -> Option<Vec<BlobShape>> {
        let bottom = ctx.bottoms[0].clone();
        let start = canonical_axis(&self.layer, axis, &bottom, "axis", ctx.diags);
        let end = canonical_axis(&self.layer, end_axis, &bottom, "end_axis", ctx.diags);
        let (start, end) = (start?, end?);
        if end < start {
            ctx.diags.push(range_error(
                &self.layer,
                end_axis.span,
                format!("end_axis {end} comes before axis {start}"),
                "use an end_axis at or after axis",
            ));
            return None;
        }
        let d = bottom.dims();
        let mut dims = d[..start].to_vec();
        // Beside a zero-sized axis the others may multiply past i64.
        let Some(merged) = checked_product(&d[start..=end]) else {
            ctx.diags.push(overflow(
                &self.layer,
                axis.span,
                &format!("the merged axes {start}..={end} of {bottom}"),
                "flatten fewer axes",
            ));
            return None;
        };
        dims.push(merged);
        dims.extend(&d[end + 1..]);
        Some(vec![BlobShape(dims)])
    }

    fn reshape(
        &self,
        ctx: &mut ShapeCtx<'_>,
        new: &[Spanned<i64>],
        axis: &Spanned<i64>,
        num_axes: &Spanned<i64>,
    ) -> Option<Vec<BlobShape>> {
        let bottom = ctx.bottoms[0].clone();
        let rank = bottom.rank() as i64;
        // Reshape's axis may equal the rank (insert at the end).
        let start = if axis.value >= 0 { axis.value } else { rank + axis.value + 1 };
        let end = if num_axes.value == -1 { rank } else { start + num_axes.value };
        if !(0..=rank).contains(&start) || end > rank {
            ctx.diags.push(range_error(
                &self.layer,
                if (0..=rank).contains(&start) { num_axes.span } else { axis.span },
                format!("axes {start}..{end} are not inside the {rank}-axis bottom {bottom}"),
                format!("use axis in {}..={rank} and axis + num_axes ≤ {rank}", -rank - 1),
            ));
            return None;
        }
        let (start, end) = (start as usize, end as usize);
        let d = bottom.dims();
        let mut dims = d[..start].to_vec();
        for (i, x) in new.iter().enumerate() {
            match x.value {
                0 => match d.get(start + i) {
                    Some(&copied) => dims.push(copied),
                    None => {
                        ctx.diags.push(range_error(
                            &self.layer,
                            x.span,
                            format!(
                                "dim 0 copies input axis {}, which {bottom} does not have",
                                start + i
                            ),
                            "give the size explicitly",
                        ));
                        return None;
                    }
                },
                v => dims.push(v),
            }
        }
        dims.extend(&d[end..]);
        // The written dims are int64: their product may overflow, and then
        // it cannot equal the bottom's count (Caffe's own check fails too).
        let known: Option<i64> =
            dims.iter().filter(|&&x| x != -1).try_fold(1i64, |p, &x| p.checked_mul(x));
        let count = bottom.checked_count();
        if let (Some(pos), Some(known), Some(count)) =
            (dims.iter().position(|&x| x == -1), known, count)
        {
            if known > 0 && count % known == 0 {
                dims[pos] = count / known;
            }
        }
        let top = BlobShape(dims);
        if top.checked_count().is_none() || top.checked_count() != count || top.dims().contains(&-1)
        {
            let mut diag = self.layer.error(
                "lvc::shape::reshape",
                format!("cannot reshape {bottom} ({} values) to {top}", bottom.count()),
            );
            for x in new {
                diag = diag.with_label(x.span, "");
            }
            ctx.diags.push(
                diag.with_help("the new shape must hold exactly as many values as the bottom"),
            );
            return None;
        }
        Some(vec![top])
    }

    fn argmax(
        &self,
        ctx: &mut ShapeCtx<'_>,
        out_max_val: bool,
        top_k: &Spanned<i64>,
        axis: &Option<Spanned<i64>>,
    ) -> Option<Vec<BlobShape>> {
        let bottom = ctx.bottoms[0].clone();
        let (available, dims) = match axis {
            Some(a) => {
                let a = canonical_axis(&self.layer, a, &bottom, "axis", ctx.diags)?;
                let mut dims = bottom.dims().to_vec();
                dims[a] = top_k.value;
                (bottom.dims()[a], dims)
            }
            None => {
                let mut dims = vec![1; bottom.rank().max(3)];
                dims[0] = bottom.dims().first().copied().unwrap_or(1);
                dims[2] = top_k.value;
                if out_max_val {
                    dims[1] = 2;
                }
                (saturating_product(bottom.dims().get(1..).unwrap_or(&[])), dims)
            }
        };
        if top_k.value > available {
            ctx.diags.push(range_error(
                &self.layer,
                top_k.span,
                format!("top_k {} exceeds the {available} values it chooses from", top_k.value),
                format!("use top_k ≤ {available}"),
            ));
            return None;
        }
        Some(vec![BlobShape(dims)])
    }
}

impl LayerOp for CombineOp {
    fn type_name(&self) -> &'static str {
        self.type_name
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        if !self.arity().check(&self.layer, self.type_name, ctx) {
            return None;
        }
        let bottom = ctx.bottoms[0].clone();
        match &self.op {
            Combine::Eltwise(_) => self.eltwise(ctx),
            Combine::Concat { axis } => self.concat(ctx, axis),
            Combine::Split => Some(vec![bottom; ctx.layer.tops.len()]),
            Combine::Slice { axis, points } => self.slice(ctx, axis, points),
            Combine::Silence => Some(Vec::new()),
            Combine::Flatten { axis, end_axis } => {
                if !self.no_in_place(ctx) {
                    return None;
                }
                self.flatten(ctx, axis, end_axis)
            }
            Combine::Reshape { dims, axis, num_axes } => {
                if !self.no_in_place(ctx) {
                    return None;
                }
                self.reshape(ctx, dims, axis, num_axes)
            }
            Combine::ArgMax { out_max_val, top_k, axis } => {
                self.argmax(ctx, *out_max_val, top_k, axis)
            }
            Combine::Tile { axis, tiles } => {
                let a = canonical_axis(&self.layer, axis, &bottom, "axis", ctx.diags)?;
                let mut dims = bottom.dims().to_vec();
                let Some(tiled) = dims[a].checked_mul(*tiles) else {
                    ctx.diags.push(overflow(
                        &self.layer,
                        self.layer.type_span,
                        &format!("axis {a} tiled {tiles} times"),
                        "use fewer tiles",
                    ));
                    return None;
                };
                dims[a] = tiled;
                Some(vec![BlobShape(dims)])
            }
            Combine::Reduction { axis, .. } => {
                let a = canonical_axis(&self.layer, axis, &bottom, "axis", ctx.diags)?;
                Some(vec![BlobShape(bottom.dims()[..a].to_vec())])
            }
            Combine::Embed { num_output, .. } => {
                let mut dims = bottom.dims().to_vec();
                dims.push(*num_output);
                Some(vec![BlobShape(dims)])
            }
        }
    }

    fn param_shapes(&self, _bottoms: &[BlobShape]) -> Vec<ParamShape> {
        let Combine::Embed { num_output, input_dim, bias_term, weight_filler, bias_filler } =
            &self.op
        else {
            return Vec::new();
        };
        let mut blobs = vec![ParamShape {
            role: ParamRole::Weight,
            shape: BlobShape(vec![*input_dim, *num_output]),
            filler: Some(weight_filler.clone()),
        }];
        if *bias_term {
            blobs.push(ParamShape {
                role: ParamRole::Bias,
                shape: BlobShape(vec![*num_output]),
                filler: Some(bias_filler.clone()),
            });
        }
        blobs
    }

    /// Identity for Eltwise and Split, and for Concat/Slice along the batch
    /// or channel axis; anything else has no spatial correspondence.
    fn coord_map(&self) -> Option<Vec<AxisMap>> {
        match &self.op {
            Combine::Eltwise(_) | Combine::Split => Some(identity_map(2)),
            Combine::Concat { axis } | Combine::Slice { axis, .. }
                if (0..=1).contains(&axis.value) =>
            {
                Some(identity_map(2))
            }
            _ => None,
        }
    }
}

/// `BatchReindex`: picks items of bottom 0 by the indices in bottom 1 (1-D).
#[derive(Debug, Clone)]
pub struct BatchReindexOp {
    pub layer: LayerRef,
}

pub fn build_batch_reindex(def: &LayerDef, _diags: &mut Vec<Diagnostic>) -> Option<BatchReindexOp> {
    Some(BatchReindexOp { layer: LayerRef::of(def) })
}

impl LayerOp for BatchReindexOp {
    fn type_name(&self) -> &'static str {
        "BatchReindex"
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        if !Arity::exact(2, 1).check(&self.layer, "BatchReindex", ctx) {
            return None;
        }
        let (data, index) = (&ctx.bottoms[0], &ctx.bottoms[1]);
        if index.rank() != 1 || data.rank() == 0 {
            let d = self
                .layer
                .error(
                    "lvc::shape::mismatch",
                    format!("BatchReindex needs a 1-D index blob, got {index}"),
                )
                .with_label(ctx.bottom_span(1), format!("{index}"))
                .with_help("bottom 1 holds one item index per output item");
            ctx.diags.push(d);
            return None;
        }
        let mut dims = vec![index.dims()[0]];
        dims.extend(&data.dims()[1..]);
        Some(vec![BlobShape(dims)])
    }
}

#[cfg(test)]
mod tests {
    use super::{Combine, OpKind, ReductionOp};
    use crate::ops::testing::run_layer;

    fn layer(kind: &str, bottoms: usize, tops: usize, params: &str) -> String {
        let b: String = (0..bottoms).map(|i| format!("bottom: \"b{i}\" ")).collect();
        let t: String = (0..tops).map(|i| format!("top: \"t{i}\" ")).collect();
        format!("name: \"{}\" type: \"{kind}\" {b}{t}{params}", kind.to_lowercase())
    }

    #[test]
    fn eltwise_needs_one_shape() {
        let r = run_layer(&layer("Eltwise", 2, 1, ""), &[&[1, 2, 20, 20], &[1, 2, 20, 20]]);
        assert_eq!(r.top(0), [1, 2, 20, 20]);
        let r = run_layer(
            &layer("Eltwise", 3, 1, ""),
            &[&[1, 2, 20, 20], &[1, 2, 29, 29], &[1, 3, 20, 20]],
        );
        assert_eq!(r.codes(), ["lvc::shape::eltwise"]);
        assert_eq!(r.diags[0].labels.len(), 3);
        let r = run_layer(&layer("Eltwise", 1, 1, ""), &[&[1, 2]]);
        assert_eq!(r.codes(), ["lvc::shape::arity"]);
    }

    #[test]
    fn eltwise_coefficients() {
        let r = run_layer(
            &layer("Eltwise", 2, 1, "eltwise_param { coeff: 1 coeff: -1 }"),
            &[&[3], &[3]],
        );
        assert_eq!(r.top(0), [3]);
        let r = run_layer(
            &layer("Eltwise", 2, 1, "eltwise_param { coeff: 1 coeff: 1 coeff: 1 }"),
            &[&[3], &[3]],
        );
        assert_eq!(r.codes(), ["lvc::param::count"]);
        let r = run_layer(
            &layer("Eltwise", 2, 1, "eltwise_param { operation: PROD coeff: 1 coeff: 2 }"),
            &[&[3], &[3]],
        );
        assert_eq!(r.codes(), ["lvc::param::conflict"]);
    }

    #[test]
    fn concat_adds_along_the_axis() {
        let r =
            run_layer(&layer("Concat", 3, 1, ""), &[&[1, 2, 5, 5], &[1, 3, 5, 5], &[1, 1, 5, 5]]);
        assert_eq!(r.top(0), [1, 6, 5, 5]);
        let r = run_layer(
            &layer("Concat", 2, 1, "concat_param { concat_dim: 0 }"),
            &[&[1, 2], &[4, 2]],
        );
        assert_eq!(r.top(0), [5, 2]);
        let r = run_layer(&layer("Concat", 2, 1, ""), &[&[1, 2, 5, 5], &[1, 3, 6, 5]]);
        assert_eq!(r.codes(), ["lvc::shape::concat"]);
        insta::assert_snapshot!(r.rendered());
        let r = run_layer(
            &layer("Concat", 2, 1, "concat_param { axis: 1 concat_dim: 1 }"),
            &[&[1], &[1]],
        );
        assert_eq!(r.codes(), ["lvc::param::conflict"]);
    }

    #[test]
    fn split_slice_silence() {
        let r = run_layer(&layer("Split", 1, 3, ""), &[&[1, 2, 3]]);
        assert_eq!(r.tops.as_ref().map(Vec::len), Some(3));
        let r = run_layer(
            &layer("Slice", 1, 3, "slice_param { axis: 1 slice_point: 1 slice_point: 4 }"),
            &[&[2, 6, 3]],
        );
        assert_eq!((r.top(0), r.top(1), r.top(2)), (vec![2, 1, 3], vec![2, 3, 3], vec![2, 2, 3]));
        let r = run_layer(&layer("Slice", 1, 2, ""), &[&[2, 6, 3]]);
        assert_eq!(r.top(1), [2, 3, 3]);
        let r = run_layer(&layer("Slice", 1, 4, ""), &[&[2, 6, 3]]);
        assert_eq!(r.codes(), ["lvc::shape::slice"]);
        let r = run_layer(
            &layer("Slice", 1, 3, "slice_param { slice_point: 4 slice_point: 2 }"),
            &[&[2, 6, 3]],
        );
        assert_eq!(r.codes(), ["lvc::param::range"]);
        let r = run_layer(&layer("Slice", 1, 3, "slice_param { slice_point: 4 }"), &[&[2, 6, 3]]);
        assert_eq!(r.codes(), ["lvc::param::count"]);
        let r = run_layer(&layer("Silence", 2, 0, ""), &[&[1], &[2]]);
        assert_eq!(r.tops, Some(vec![]));
    }

    #[test]
    fn flatten_and_reshape() {
        let r = run_layer(&layer("Flatten", 1, 1, ""), &[&[2, 3, 4, 5]]);
        assert_eq!(r.top(0), [2, 60]);
        let r = run_layer(
            &layer("Flatten", 1, 1, "flatten_param { axis: 1 end_axis: 2 }"),
            &[&[2, 3, 4, 5]],
        );
        assert_eq!(r.top(0), [2, 12, 5]);
        let r = run_layer(
            &layer("Reshape", 1, 1, "reshape_param { shape { dim: 0 dim: -1 dim: 2 } }"),
            &[&[2, 3, 4, 5]],
        );
        assert_eq!(r.top(0), [2, 30, 2]);
        let r = run_layer(
            &layer(
                "Reshape",
                1,
                1,
                "reshape_param { shape { dim: 2 dim: 2 } axis: 1 num_axes: 1 }",
            ),
            &[&[2, 4, 5]],
        );
        assert_eq!(r.top(0), [2, 2, 2, 5]);
        let r = run_layer(
            &layer("Reshape", 1, 1, "reshape_param { shape { dim: 7 dim: -1 } }"),
            &[&[2, 3, 4, 5]],
        );
        assert_eq!(r.codes(), ["lvc::shape::reshape"]);
        let r = run_layer(
            &layer("Reshape", 1, 1, "reshape_param { shape { dim: -1 dim: -1 } }"),
            &[&[4]],
        );
        assert_eq!(r.codes(), ["lvc::param::count"]);
        let r = run_layer("name: \"r\" type: \"Flatten\" bottom: \"x\" top: \"x\"", &[&[2, 3]]);
        assert_eq!(r.codes(), ["lvc::shape::in_place"]);
    }

    #[test]
    fn argmax_tile_reduction_embed() {
        let r = run_layer(&layer("ArgMax", 1, 1, ""), &[&[2, 10]]);
        assert_eq!(r.top(0), [2, 1, 1]);
        let r = run_layer(
            &layer("ArgMax", 1, 1, "argmax_param { out_max_val: true top_k: 3 }"),
            &[&[2, 10, 1, 1]],
        );
        assert_eq!(r.top(0), [2, 2, 3, 1]);
        let r = run_layer(&layer("ArgMax", 1, 1, "argmax_param { axis: 1 }"), &[&[1, 2, 8, 8]]);
        assert_eq!(r.top(0), [1, 1, 8, 8]);
        let r = run_layer(
            &layer("ArgMax", 1, 1, "argmax_param { axis: 1 top_k: 3 }"),
            &[&[1, 2, 8, 8]],
        );
        assert_eq!(r.codes(), ["lvc::param::range"]);
        let r = run_layer(&layer("Tile", 1, 1, "tile_param { tiles: 3 }"), &[&[1, 2, 4]]);
        assert_eq!(r.top(0), [1, 6, 4]);
        let r = run_layer(&layer("Tile", 1, 1, ""), &[&[1]]);
        assert_eq!(r.codes(), ["lvc::param::range"]);
        let r = run_layer(&layer("Reduction", 1, 1, "reduction_param { axis: 1 }"), &[&[2, 3, 4]]);
        assert_eq!(r.top(0), [2]);
        let r = run_layer(&layer("Reduction", 1, 1, ""), &[&[2, 3, 4]]);
        assert_eq!(r.top(0), Vec::<i64>::new());
        for (text, want) in [
            ("", ReductionOp::Sum),
            ("reduction_param { operation: SUMSQ }", ReductionOp::SumSq),
            ("reduction_param { operation: MEAN }", ReductionOp::Mean),
        ] {
            let (_, def) = crate::ops::testing::layer(&layer("Reduction", 1, 1, text));
            let op = super::build(OpKind::Reduction, &def, &mut Vec::new());
            let built = op.as_ref().map(|o| &o.op);
            assert!(
                matches!(built, Some(Combine::Reduction { operation, .. }) if *operation == want),
                "{text}: {built:?}"
            );
        }
        let r = run_layer(
            &layer("Embed", 1, 1, "embed_param { num_output: 8 input_dim: 100 }"),
            &[&[4, 7]],
        );
        assert_eq!(r.top(0), [4, 7, 8]);
        assert_eq!(r.param_dims(), [("weight", vec![100, 8]), ("bias", vec![8])]);
    }

    #[test]
    fn batch_reindex() {
        let body = layer("BatchReindex", 2, 1, "");
        assert_eq!(run_layer(&body, &[&[8, 3, 4], &[5]]).top(0), [5, 3, 4]);
        assert_eq!(run_layer(&body, &[&[8, 3, 4], &[5, 1]]).codes(), ["lvc::shape::mismatch"]);
    }
}
