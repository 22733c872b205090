//! Crop (`crop_param`, `crop_layer.cpp`): bottom[0] cropped to bottom[1]'s
//! shape on every axis from `axis` on, at the written offsets.
//!
//! A Crop without offsets crops at 0 in BVLC Caffe, whereas the older Crop
//! of longjon/caffe (Sunnybrook FCN tutorial, HED) derived the offset from
//! the graph. The IR computes that graph offset from the layers'
//! [`LayerOp::coord_map`]s and passes it to
//! [`CropOp::infer_with_graph_offset`] so diagnostics can name it.

use lvc_grammar::Span;

use super::common::{axis_name, canonical_axis, Arity, LayerRef};
use super::{AxisMap, BlobShape, LayerOp, ShapeCtx};
use crate::diag::Diagnostic;
use crate::schema::{LayerDef, Spanned};

/// One cropped axis that runs past the end of bottom[0].
struct OutOfBounds {
    axis: usize,
    size: i64,
    want: i64,
    offset: i64,
    /// The offset token (or the layer type when none is written).
    span: Span,
}

impl OutOfBounds {
    fn same_numbers(&self, other: &OutOfBounds) -> bool {
        (self.size, self.want, self.offset, self.span)
            == (other.size, other.want, other.offset, other.span)
    }
}

/// `crop_param` with Caffe's defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct CropParams {
    /// First cropped axis; default 2; negative counts from the end.
    pub axis: Spanned<i64>,
    /// Empty: 0 everywhere; one value: broadcast; else one per cropped axis.
    pub offsets: Vec<Spanned<i64>>,
}

#[derive(Debug, Clone)]
pub struct CropOp {
    pub layer: LayerRef,
    pub params: CropParams,
}

pub fn build(def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<CropOp> {
    let op = LayerRef::of(def);
    let v = def.param_block("crop_param");
    let offsets = v.ints("offset");
    let negative: Vec<&Spanned<i64>> = offsets.iter().filter(|o| o.value < 0).collect();
    for o in &negative {
        diags.push(super::common::range_error(
            &op,
            o.span,
            format!("crop offsets cannot be negative, got {}", o.value),
            "use an offset of 0 or more",
        ));
    }
    if !negative.is_empty() {
        return None;
    }
    let params = CropParams { axis: v.int_or_default("axis"), offsets };
    Some(CropOp { layer: op, params })
}

impl CropOp {
    /// The offsets as written (empty when the layer gives none).
    pub fn written_offsets(&self) -> &[Spanned<i64>] {
        &self.params.offsets
    }

    /// Offset per axis of a `rank`-axis bottom cropped from `start` (0 before it).
    pub fn offsets_for(&self, rank: usize, start: usize) -> Vec<i64> {
        let o = &self.params.offsets;
        (0..rank)
            .map(|i| match (i < start, o.len()) {
                (true, _) | (false, 0) => 0,
                (false, 1) => o[0].value,
                (false, _) => o.get(i - start).map_or(0, |x| x.value),
            })
            .collect()
    }

    fn offset_span(&self, i: usize, start: usize) -> Span {
        let o = &self.params.offsets;
        match o.len() {
            0 => self.layer.type_span,
            1 => o[0].span,
            _ => o.get(i - start).map_or(self.layer.type_span, |x| x.span),
        }
    }

    /// The shape rule, with the offset the IR found by composing coordinate
    /// maps (one per cropped axis, from `axis` on) when it found one: an
    /// out-of-bounds crop then says which offset the graph implies.
    pub fn infer_with_graph_offset(
        &self,
        ctx: &mut ShapeCtx<'_>,
        graph_offset: Option<&[i64]>,
    ) -> Option<Vec<BlobShape>> {
        if !Arity::exact(2, 1).check(&self.layer, "Crop", ctx) {
            return None;
        }
        let (data, reference) = (ctx.bottoms[0].clone(), ctx.bottoms[1].clone());
        let start = canonical_axis(&self.layer, &self.params.axis, &data, "axis", ctx.diags)?;
        let rank = data.rank();
        let o = &self.params.offsets;
        if o.len() > 1 && start + o.len() != rank {
            let mut d = self.layer.error(
                "lvc::param::count",
                format!(
                    "{} offsets for {} cropped axes (axes {start}..{} of {data})",
                    o.len(),
                    rank - start,
                    rank - 1
                ),
            );
            for x in o {
                d = d.with_label(x.span, "");
            }
            ctx.diags.push(d.with_help(format!(
                "give one offset (used for every cropped axis) or exactly {} (one per axis from axis {start})",
                rank - start
            )));
            return None;
        }
        if reference.rank() != rank {
            let mut d = self.layer.error(
                "lvc::shape::crop",
                format!(
                    "Crop needs bottoms with the same number of axes, got {data} and {reference}"
                ),
            );
            for (b, s) in ctx.layer.bottoms.iter().zip([&data, &reference]) {
                d = d.with_label(b.span, format!("{s}"));
            }
            ctx.diags.push(d.with_help("crop against a reference blob of the same rank (N×C×H×W)"));
            return None;
        }
        let offsets = self.offsets_for(rank, start);
        let problems: Vec<OutOfBounds> = (start..rank)
            .map(|axis| OutOfBounds {
                axis,
                size: data.dims()[axis],
                want: reference.dims()[axis],
                offset: offsets[axis],
                span: self.offset_span(axis, start),
            })
            .filter(|p| p.size - p.offset < p.want)
            .collect();
        if problems.is_empty() {
            let dims = (0..rank)
                .map(|i| if i < start { data.dims()[i] } else { reference.dims()[i] })
                .collect();
            return Some(vec![BlobShape(dims)]);
        }
        ctx.diags.push(self.bounds_error(ctx, &problems, rank, graph_offset));
        None
    }

    fn bounds_error(
        &self,
        ctx: &ShapeCtx<'_>,
        problems: &[OutOfBounds],
        rank: usize,
        graph_offset: Option<&[i64]>,
    ) -> Diagnostic {
        // Axes with the same numbers and offset token are reported together.
        let mut groups: Vec<(&OutOfBounds, Vec<String>)> = Vec::new();
        for p in problems {
            match groups.iter_mut().find(|(g, _)| g.same_numbers(p)) {
                Some((_, axes)) => axes.push(axis_name(p.axis, rank)),
                None => groups.push((p, vec![axis_name(p.axis, rank)])),
            }
        }
        let what: Vec<String> = groups
            .iter()
            .map(|(p, axes)| {
                let (off, want) = (p.offset, p.want);
                format!(
                    "along {}: offset {off} + size {want} = {} > {}",
                    axes.join(" and "),
                    off + want,
                    p.size
                )
            })
            .collect();
        let mut d = self
            .layer
            .error("lvc::shape::crop", format!("the crop is out of bounds {}", what.join("; ")));
        for (p, _) in &groups {
            let text = if self.params.offsets.is_empty() {
                "no offset given: 0".to_string()
            } else {
                format!("offset {}", p.offset)
            };
            d = d.with_label(p.span, text);
        }
        if let Some(b) = ctx.layer.bottoms.get(1) {
            d = d.with_label(b.span, format!("reference {}", ctx.bottoms[1]));
        }
        let ranges: Vec<String> = groups
            .iter()
            .map(|(p, axes)| {
                let (size, want) = (p.size, p.want);
                let axes = axes.join(" and ");
                if size >= want {
                    format!("along {axes} the offset must be in 0..={}", size - want)
                } else {
                    format!("along {axes} the reference ({want}) is larger than the input ({size}), so no offset fits")
                }
            })
            .collect();
        let mut help = ranges.join("; ");
        if let Some(g) = graph_offset {
            let shown = match g {
                [first, rest @ ..] if rest.iter().all(|x| x == first) => format!("offset: {first}"),
                _ => g.iter().map(|x| format!("offset: {x}")).collect::<Vec<_>>().join(" "),
            };
            help.push_str(&format!(
                "; the layers' coordinate maps align the two bottoms at `{shown}`"
            ));
        }
        d.with_help(help)
    }
}

impl LayerOp for CropOp {
    fn type_name(&self) -> &'static str {
        "Crop"
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        self.infer_with_graph_offset(ctx, None)
    }

    /// `x ↦ x − offset` on the H and W axes (assuming N×C×H×W).
    fn coord_map(&self) -> Option<Vec<AxisMap>> {
        let rank = 4;
        let start = BlobShape(vec![0; rank]).canonical_axis(self.params.axis.value)?;
        let offsets = self.offsets_for(rank, start);
        Some(offsets[2..].iter().map(|&o| AxisMap { scale: 1.0, shift: -(o as f64) }).collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{layer, run_layer};
    use crate::ops::LayerOp;
    use crate::ops::{AxisMap, BlobShape, ShapeCtx};

    fn crop(params: &str) -> String {
        format!(
            "name: \"score\" type: \"Crop\" bottom: \"up\" bottom: \"ref\" top: \"score\" {params}"
        )
    }

    #[test]
    fn crops_to_the_reference_from_axis_2() {
        let r = run_layer(
            &crop("crop_param { axis: 2 offset: 18 }"),
            &[&[1, 2, 319, 319], &[1, 1, 256, 256]],
        );
        assert_eq!(r.top(0), [1, 2, 256, 256]);
        // No crop_param: offset 0 (BVLC).
        let r = run_layer(&crop(""), &[&[1, 2, 271, 271], &[1, 1, 256, 256]]);
        assert_eq!(r.top(0), [1, 2, 256, 256]);
        // Layer probe: axis 1, one offset per axis.
        let r = run_layer(
            &crop("crop_param { axis: 1 offset: 1 offset: 0 offset: 1 }"),
            &[&[1, 4, 15, 13], &[1, 3, 14, 12]],
        );
        assert_eq!(r.top(0), [1, 3, 14, 12]);
    }

    #[test]
    fn offset_count_and_bounds() {
        let r = run_layer(
            &crop("crop_param { offset: 1 offset: 2 offset: 3 }"),
            &[&[1, 2, 9, 9], &[1, 1, 4, 4]],
        );
        assert_eq!(r.codes(), ["lvc::param::count"]);
        let r =
            run_layer(&crop("crop_param { offset: 1 offset: 6 }"), &[&[1, 2, 9, 9], &[1, 1, 4, 4]]);
        assert_eq!(r.codes(), ["lvc::shape::crop"]);
        let r = run_layer(&crop(""), &[&[1, 2, 9, 9], &[1, 1, 12, 4]]);
        assert_eq!(r.codes(), ["lvc::shape::crop"]);
        insta::assert_snapshot!(r.rendered());
        let r = run_layer(&crop(""), &[&[1, 2, 9, 9], &[1, 4]]);
        assert_eq!(r.codes(), ["lvc::shape::crop"]);
    }

    #[test]
    fn out_of_bounds_help_names_the_graph_offset() {
        let (source, def) = layer(&crop("crop_param { axis: 2 offset: 100 }"));
        let crop = super::build(&def, &mut Vec::new()).expect("builds");
        assert_eq!(crop.written_offsets().iter().map(|o| o.value).collect::<Vec<_>>(), [100]);
        let bottoms = [BlobShape(vec![1, 2, 319, 319]), BlobShape(vec![1, 1, 256, 256])];
        let mut diags = Vec::new();
        let tops = crop.infer_with_graph_offset(
            &mut ShapeCtx { layer: &def, bottoms: &bottoms, diags: &mut diags },
            Some(&[18, 18]),
        );
        assert!(tops.is_none());
        insta::assert_snapshot!(crate::ops::testing::render(&source, &diags));
    }

    #[test]
    fn coord_map_shifts_by_the_offset() {
        let (_, def) = layer(&crop("crop_param { axis: 2 offset: 18 }"));
        let op = super::build(&def, &mut Vec::new()).expect("builds");
        assert_eq!(op.coord_map(), Some(vec![AxisMap { scale: 1.0, shift: -18.0 }; 2]));
        let (_, def) = layer(&crop("crop_param { axis: 1 offset: 0 offset: 3 offset: 5 }"));
        let op = super::build(&def, &mut Vec::new()).expect("builds");
        assert_eq!(
            op.coord_map(),
            Some(vec![AxisMap { scale: 1.0, shift: -3.0 }, AxisMap { scale: 1.0, shift: -5.0 }])
        );
    }
}
