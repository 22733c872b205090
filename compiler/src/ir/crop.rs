//! Crop offsets from the graph, as FCN's `coord_map.crop` computes them and
//! as the pre-BVLC Crop (longjon/caffe `future`, HED) did at run time: walk
//! both bottoms back to a common ancestor blob composing each layer's
//! coordinate map; the composite must be a pure integer shift.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use lvc_grammar::Span;
use petgraph::stable_graph::NodeIndex;

use super::{BlobId, NetGraph};
use crate::diag::{Diagnostic, Diagnostics};
use crate::ops::crop::CropOp;
use crate::ops::{AxisMap, BlobShape, Op, OpKind};
use crate::schema::LayerDef;

/// Per-spatial-axis maps: empty = identity on every axis, one entry =
/// the same map on every axis.
type Maps = Vec<AxisMap>;

fn axis(maps: &Maps, i: usize) -> Option<AxisMap> {
    match maps.len() {
        0 => Some(AxisMap::IDENTITY),
        1 => Some(maps[0]),
        _ => maps.get(i).copied(),
    }
}

/// `outer ∘ inner`, axis by axis.
fn compose(outer: &Maps, inner: &Maps) -> Maps {
    let n = outer.len().max(inner.len());
    if n == 0 {
        return Vec::new();
    }
    (0..n)
        .map(|i| {
            let o = axis(outer, i).unwrap_or(AxisMap::IDENTITY);
            let n = axis(inner, i).unwrap_or(AxisMap::IDENTITY);
            o.after(n)
        })
        .collect()
}

/// The crop's `crop_param` as written.
pub(super) struct WrittenCrop {
    /// `None` when the layer has no `crop_param` at all.
    pub block: Option<Span>,
    pub axis: i64,
    pub offsets: Vec<(i64, Span)>,
}

impl WrittenCrop {
    pub fn of(def: &LayerDef, op: &CropOp) -> WrittenCrop {
        WrittenCrop {
            block: def.param_block("crop_param").span(),
            axis: op.params.axis.value,
            offsets: op.written_offsets().iter().map(|o| (o.value, o.span)).collect(),
        }
    }

    /// The offset Caffe applies on cropped axis `k` (0 = the start axis).
    fn offset(&self, k: usize) -> Option<(i64, Option<Span>)> {
        match self.offsets.len() {
            0 => Some((0, None)),
            1 => Some((self.offsets[0].0, Some(self.offsets[0].1))),
            _ => self.offsets.get(k).map(|&(v, s)| (v, Some(s))),
        }
    }
}

/// How a node moves coordinates from its bottoms to its tops, `None` when
/// it has no spatial correspondence (the walk stops there).
fn node_map(g: &NetGraph, index: NodeIndex) -> Option<Maps> {
    let node = g.node(index);
    if node.inserted_split {
        return Some(Vec::new());
    }
    if node.kind == OpKind::Crop.name() {
        let offsets = node.crop_offsets.as_ref()?;
        return Some(
            offsets.iter().skip(2).map(|&o| AxisMap { scale: 1.0, shift: -(o as f64) }).collect(),
        );
    }
    node.op.as_ref()?.coord_map()
}

/// The bottoms a coordinate walk follows: all, except that a Crop's
/// reference bottom carries no coordinates.
fn walk_bottoms(g: &NetGraph, index: NodeIndex) -> Vec<BlobId> {
    let node = g.node(index);
    let take = if node.kind == OpKind::Crop.name() { 1 } else { node.bottoms.len() };
    node.bottoms.iter().take(take).flatten().copied().collect()
}

/// Breadth-first walk backwards from `start` through layers with a
/// coordinate map. `stop(blob, map)` sees each reached blob with the map from
/// its coordinates into `start`'s and ends the walk by returning true.
/// Returns every reached blob's map.
fn walk_back(
    g: &NetGraph,
    start: BlobId,
    mut stop: impl FnMut(BlobId, &Maps) -> bool,
) -> HashMap<BlobId, Maps> {
    let mut maps = HashMap::from([(start, Vec::new())]);
    let mut queue = VecDeque::from([start]);
    while let Some(blob) = queue.pop_front() {
        if stop(blob, &maps[&blob]) {
            break;
        }
        let producer = g.blob(blob).producer;
        let Some(m) = node_map(g, producer) else { continue };
        let into_start = compose(&maps[&blob], &m);
        for b in walk_bottoms(g, producer) {
            if let Entry::Vacant(e) = maps.entry(b) {
                e.insert(into_start.clone());
                queue.push_back(b);
            }
        }
    }
    maps
}

/// The map from `from` coordinates to `to` coordinates through their nearest
/// common ancestor, and that ancestor.
fn map_between(g: &NetGraph, from: BlobId, to: BlobId) -> Option<(Maps, BlobId)> {
    let from_maps = walk_back(g, from, |_, _| false);
    let mut found = None;
    walk_back(g, to, |blob, into_to| {
        let Some(into_from) = from_maps.get(&blob) else { return false };
        let inverse: Maps = into_from.iter().map(|a| a.inverse()).collect();
        found = Some((compose(into_to, &inverse), blob));
        true
    });
    found
}

/// The offsets (one per cropped axis, from `start_axis` to `rank`) that align
/// bottom 0 with bottom 1, with the common ancestor's name; `None` when the
/// graph does not determine them.
fn graph_offsets(
    g: &NetGraph,
    from: BlobId,
    to: BlobId,
    start_axis: usize,
    rank: usize,
) -> Option<(Vec<i64>, String)> {
    // Coordinate maps describe spatial axes, which start after (N, C).
    if start_axis < 2 {
        return None;
    }
    let (maps, ancestor) = map_between(g, from, to)?;
    let offsets = (start_axis..rank)
        .map(|i| {
            let m = axis(&maps, i - 2)?;
            let shift = -m.shift;
            let integral = (shift - shift.round()).abs() < 1e-6;
            ((m.scale - 1.0).abs() < 1e-9 && integral && shift.round() >= 0.0)
                .then_some(shift.round() as i64)
        })
        .collect::<Option<Vec<i64>>>()?;
    Some((offsets, g.blob(ancestor).name.clone()))
}

/// What the IR knows about one Crop's offsets.
#[derive(Debug, Default)]
pub(super) struct CropOffsets {
    /// What the layer applies on every axis of bottom 0 (0 before the start
    /// axis): the written offsets, or for a Crop without `crop_param` the
    /// graph's.
    pub applied: Option<Vec<i64>>,
    /// What the graph's coordinate maps imply per cropped axis (from the
    /// start axis on), when they determine it.
    pub graph: Option<Vec<i64>>,
}

/// Decides the offsets a Crop node applies and reports written offsets that
/// disagree with the graph. `bottoms` are the known bottom shapes.
pub(super) fn resolve(
    g: &NetGraph,
    index: NodeIndex,
    def: &LayerDef,
    bottoms: &[BlobShape],
    diags: &mut Diagnostics,
) -> CropOffsets {
    let node = g.node(index);
    let (Some(Some(from)), Some(Some(to)), Some(shape)) =
        (node.bottoms.first(), node.bottoms.get(1), bottoms.first())
    else {
        return CropOffsets::default();
    };
    // Without an op the parameters were rejected (and reported).
    let Some(Op::Crop(op)) = &node.op else {
        return CropOffsets::default();
    };
    let written = WrittenCrop::of(def, op);
    let Some(start_axis) = shape.canonical_axis(written.axis) else {
        return CropOffsets::default();
    };
    let computed = graph_offsets(g, *from, *to, start_axis, shape.rank());
    let graph = computed.as_ref().map(|(o, _)| o.clone());
    let applied =
        applied_offsets(def, &written, computed, start_axis, shape.rank(), bottoms, diags)
            .map(|cropped| [vec![0; start_axis], cropped].concat());
    CropOffsets { applied, graph }
}

fn applied_offsets(
    def: &LayerDef,
    written: &WrittenCrop,
    computed: Option<(Vec<i64>, String)>,
    start_axis: usize,
    rank: usize,
    bottoms: &[BlobShape],
    diags: &mut Diagnostics,
) -> Option<Vec<i64>> {
    let layer = def.name.value.clone();
    // The names as written (not the inserted splits' copies).
    let written_name = |k: usize| def.bottoms.get(k).map_or("?", |b| b.value.as_str());
    let blob_names = (written_name(0), written_name(1));

    let Some(block) = written.block else {
        return Some(auto_offsets(
            def,
            computed,
            blob_names,
            rank - start_axis,
            bottoms,
            start_axis,
            diags,
        ));
    };
    let applied: Vec<(i64, Option<Span>)> =
        (0..rank - start_axis).map(|k| written.offset(k)).collect::<Option<_>>()?;
    // An out-of-bounds crop is an error of the op, whose help names the
    // graph's offset; a second finding about the same offset would be noise.
    let out_of_bounds = match (bottoms.first(), bottoms.get(1)) {
        (Some(data), Some(reference)) => applied.iter().enumerate().any(|(k, &(off, _))| {
            let i = start_axis + k;
            matches!((data.dims().get(i), reference.dims().get(i)), (Some(&size), Some(&want)) if size - off < want)
        }),
        _ => false,
    };
    if let Some((computed, ancestor)) = computed.filter(|_| !out_of_bounds) {
        let wrong: Vec<usize> =
            (0..applied.len()).filter(|&k| applied[k].0 != computed[k]).collect();
        if let Some(&first) = wrong.first() {
            let span = applied[first].1.unwrap_or(block);
            let same = wrong
                .iter()
                .all(|&k| (applied[k].0, computed[k]) == (applied[first].0, computed[first]));
            let what = if same {
                format!("the graph gives {}", computed[first])
            } else {
                let axes: Vec<String> = wrong
                    .iter()
                    .map(|&k| {
                        format!(
                            "axis {}: written {}, graph {}",
                            start_axis + k,
                            applied[k].0,
                            computed[k]
                        )
                    })
                    .collect();
                axes.join("; ")
            };
            let (from, to) = blob_names;
            diags.push(
                Diagnostic::warning(
                    "lvc::crop::offset",
                    format!("crop offset {} does not align '{from}' with '{to}': {what}", applied[first].0),
                )
                .in_layer(layer)
                .with_label(span, format!("the graph gives {}", computed[first]))
                .with_help(format!(
                    "composing the coordinate maps of the layers from the common blob '{ancestor}' (as FCN's coord_map.crop does) gives {}; a different offset shifts the output against its reference",
                    offset_text(&computed)
                )),
            );
        }
    }
    Some(applied.into_iter().map(|(v, _)| v).collect())
}

/// The offsets as written in a `crop_param`: one when all are equal.
fn distinct_offsets(offsets: &[i64]) -> &[i64] {
    let all_same = offsets.windows(2).all(|w| w[0] == w[1]);
    if all_same {
        &offsets[..offsets.len().min(1)]
    } else {
        offsets
    }
}

/// `offset: 18` or `offset: 1 offset: 2`.
fn offset_text(offsets: &[i64]) -> String {
    distinct_offsets(offsets).iter().map(|o| format!("offset: {o}")).collect::<Vec<_>>().join(" ")
}

/// `18` or `1, 2`.
fn offset_values(offsets: &[i64]) -> String {
    distinct_offsets(offsets).iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// A Crop without `crop_param`: the graph's offsets (what the pre-BVLC forks
/// did), or BVLC's 0 when the graph does not determine them.
fn auto_offsets(
    def: &LayerDef,
    computed: Option<(Vec<i64>, String)>,
    (from, to): (&str, &str),
    axes: usize,
    bottoms: &[BlobShape],
    start_axis: usize,
    diags: &mut Diagnostics,
) -> Vec<i64> {
    let layer = def.name.value.clone();
    let Some((offsets, ancestor)) = computed else {
        diags.push(
            Diagnostic::warning(
                "lvc::crop::auto",
                format!("Crop without crop_param, and the graph does not determine how '{from}' aligns with '{to}': using offset 0 like BVLC Caffe"),
            )
            .in_layer(layer)
            .with_label(def.kind.span, "no crop_param")
            .with_help("write crop_param { axis: 2 offset: N } with the intended offset"),
        );
        return vec![0; axes];
    };
    diags.push(
        Diagnostic::advice(
            "lvc::crop::auto",
            format!(
                "Crop without crop_param: using offset {} computed from the graph (common blob '{ancestor}')",
                offset_values(&offsets)
            ),
        )
        .in_layer(layer.clone())
        .with_label(def.kind.span, "no crop_param")
        .with_help(format!(
            "BVLC Caffe would crop at offset 0 here; the Caffe forks this layout comes from (longjon/caffe future, HED) computed the offset from the graph, as lvc does. Write crop_param {{ axis: 2 {} }} to make it explicit",
            offset_text(&offsets)
        )),
    );
    if let (Some(data), Some(reference)) = (bottoms.first(), bottoms.get(1)) {
        let problems: Vec<String> = offsets
            .iter()
            .enumerate()
            .filter_map(|(k, &off)| {
                let i = start_axis + k;
                let (&size, &want) = (data.dims().get(i)?, reference.dims().get(i)?);
                (size - off < want).then(|| {
                    format!("axis {i}: offset {off} + size {want} = {} > {size}", off + want)
                })
            })
            .collect();
        if !problems.is_empty() {
            diags.push(
                Diagnostic::error(
                    "lvc::crop::bounds",
                    format!("the graph's crop offset does not fit in '{from}' ({})", problems.join("; ")),
                )
                .in_layer(layer)
                .with_label(def.kind.span, "offset computed from the graph")
                .with_help(format!(
                    "'{from}' ({data}) is too small to cut '{to}' ({reference}) out of at the aligned position; check the layers that produce '{from}', or write crop_param {{ axis: 2 offset: N }}"
                )),
            );
        }
    }
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_maps_compose_per_axis() {
        let conv = vec![AxisMap { scale: 0.5, shift: 1.0 }];
        let two = vec![AxisMap::IDENTITY, AxisMap { scale: 1.0, shift: -3.0 }];
        let c = compose(&two, &conv);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0], AxisMap { scale: 0.5, shift: 1.0 });
        assert_eq!(c[1], AxisMap { scale: 0.5, shift: -2.0 });
        assert!(compose(&Vec::new(), &Vec::new()).is_empty());
    }

    #[test]
    fn offsets_are_shown_once_when_equal() {
        assert_eq!(offset_text(&[18, 18]), "offset: 18");
        assert_eq!(offset_text(&[1, 2]), "offset: 1 offset: 2");
        assert_eq!(offset_values(&[9, 9]), "9");
        assert_eq!(offset_values(&[1, 2]), "1, 2");
    }
}
