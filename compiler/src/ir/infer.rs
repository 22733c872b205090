//! Shape inference in execution order. Every layer whose bottoms are known
//! runs its op's shape rule; a layer that fails leaves its tops unknown and
//! the layers depending on them are skipped without further messages.

use std::collections::HashMap;

use super::suggest::did_you_mean;
use super::{crop, BlobId, CompileOptions, NetGraph};
use crate::diag::{Diagnostic, Diagnostics};
use crate::ops::common::{check_sizes, check_top};
use crate::ops::{BlobShape, Op, OpKind, ShapeCtx};
use crate::schema::{LayerDef, NetDef};

pub(super) fn infer(
    g: &mut NetGraph,
    net: &NetDef,
    opts: &CompileOptions,
    diags: &mut Diagnostics,
) {
    let supplied: HashMap<&str, BlobShape> = opts
        .input_shapes
        .iter()
        .map(|(name, dims)| (name.as_str(), BlobShape(dims.clone())))
        .collect();
    let order = g.order.clone();
    for index in order {
        let node = &g.graph[index];
        if node.inserted_split {
            let shape =
                node.bottoms.first().copied().flatten().and_then(|b| g.blobs[b].shape.clone());
            let tops = node.tops.clone();
            for t in tops {
                g.blobs[t].shape = shape.clone();
            }
            continue;
        }
        let Some(def) = node.def_index.and_then(|i| net.layers.get(i)) else { continue };
        if node.bottoms.is_empty() {
            infer_source(g, index, def, &supplied, diags);
            continue;
        }
        let Some(bottoms) = g.bottoms_known(node) else { continue };
        let crop = (node.kind == OpKind::Crop.name())
            .then(|| crop::resolve(g, index, def, &bottoms, diags));
        if let Some(c) = &crop {
            g.graph[index].crop_offsets = c.applied.clone();
        }
        let node = &g.graph[index];
        let Some(op) = node.op.as_ref() else { continue };
        let mut found = Vec::new();
        let mut ctx = ShapeCtx { layer: def, bottoms: &bottoms, diags: &mut found };
        // A Crop's out-of-bounds message names the offset the graph implies.
        let tops = match (op, &crop) {
            (Op::Crop(crop_op), Some(c)) => {
                crop_op.infer_with_graph_offset(&mut ctx, c.graph.as_deref())
            }
            _ => op.infer_shapes(&mut ctx),
        };
        let mut params = if tops.is_some() { op.param_shapes(&bottoms) } else { Vec::new() };
        let mut tops = tops.unwrap_or_default();
        // One check after every rule: no shape beyond Caffe's limits gets
        // into the graph, so nothing downstream (rules, parameter counts,
        // the runtime's allocations) sees one.
        if !check_sizes(def, &tops, &params, &mut found) {
            tops.clear();
            params.clear();
        }
        push_layer_diags(diags, found, def);
        let top_ids = node.tops.clone();
        set_tops(g, &top_ids, tops);
        g.graph[index].params = params;
    }
    report_unused_inputs(g, &supplied, diags);
    copy_shapes_to_edges(g);
}

fn push_layer_diags(diags: &mut Diagnostics, found: Vec<Diagnostic>, def: &LayerDef) {
    for d in found {
        diags.push(if d.layer.is_none() { d.in_layer(def.name.value.clone()) } else { d });
    }
}

fn set_tops(g: &mut NetGraph, tops: &[BlobId], shapes: Vec<BlobShape>) {
    for (&t, shape) in tops.iter().zip(shapes) {
        g.blobs[t].shape = Some(shape);
    }
}

/// A layer without bottoms: its tops are net inputs. `--input-shape` wins;
/// otherwise the shape the prototxt fixes (the op's `input_shapes`), and a
/// top with neither is reported with the flag to add.
fn infer_source(
    g: &mut NetGraph,
    index: petgraph::stable_graph::NodeIndex,
    def: &LayerDef,
    supplied: &HashMap<&str, BlobShape>,
    diags: &mut Diagnostics,
) {
    let node = &g.graph[index];
    let Some(op) = node.op.as_ref() else { return };
    let given: Vec<Option<BlobShape>> =
        node.tops.iter().map(|&t| supplied.get(g.blobs[t].name.as_str()).cloned()).collect();
    let shapes: Vec<Option<BlobShape>> = match op.input_shapes() {
        Some(written) => {
            let shapes: Vec<Option<BlobShape>> = given
                .into_iter()
                .enumerate()
                .map(|(j, s)| s.or_else(|| written.get(j).cloned().flatten()))
                .collect();
            for (j, shape) in shapes.iter().enumerate() {
                if shape.is_none() {
                    diags.push(missing_input_shape(def, j, &g.blobs[node.tops[j]].name));
                }
            }
            shapes
        }
        // A bottomless layer that is not an input source (e.g. a constant
        // generator): its own rule decides, with overrides on top.
        None => {
            let mut found = Vec::new();
            let derived = op
                .infer_shapes(&mut ShapeCtx { layer: def, bottoms: &[], diags: &mut found })
                .unwrap_or_default();
            push_layer_diags(diags, found, def);
            given
                .into_iter()
                .enumerate()
                .map(|(j, s)| s.or_else(|| derived.get(j).cloned()))
                .collect()
        }
    };
    let mut params = op.param_shapes(&[]);
    let mut found = Vec::new();
    // Net inputs go through the same size check as every layer's tops; an
    // impossible input stays unknown (and so does everything after it).
    let shapes: Vec<Option<BlobShape>> = shapes
        .into_iter()
        .enumerate()
        .map(|(j, s)| s.filter(|s| check_top(def, j, s, &mut found)))
        .collect();
    if !check_sizes(def, &[], &params, &mut found) {
        params.clear();
    }
    push_layer_diags(diags, found, def);
    let tops = node.tops.clone();
    for (t, shape) in tops.into_iter().zip(shapes) {
        g.blobs[t].shape = shape;
    }
    g.graph[index].params = params;
}

fn missing_input_shape(def: &LayerDef, j: usize, name: &str) -> Diagnostic {
    let mut d =
        Diagnostic::error("lvc::graph::input_shape", format!("net input '{name}' has no shape"))
            .in_layer(def.name.value.clone());
    if let Some(top) = def.tops.get(j) {
        d = d.with_label(
            top.span,
            format!("the {} layer does not say how big '{name}' is", def.kind.value),
        );
    }
    d.with_help(format!(
        "add --input-shape {name}=N,C,H,W with the real sizes (for example --input-shape {name}=1,3,500,500), or give the net an Input layer with input_param {{ shape {{ dim: … }} }}"
    ))
}

/// `--input-shape` for a name that is not an input of this net.
fn report_unused_inputs(
    g: &NetGraph,
    supplied: &HashMap<&str, BlobShape>,
    diags: &mut Diagnostics,
) {
    let inputs: Vec<&str> = g.inputs.iter().map(|&b| g.blobs[b].name.as_str()).collect();
    let mut unused: Vec<&str> = supplied.keys().copied().filter(|n| !inputs.contains(n)).collect();
    unused.sort_unstable();
    for name in unused {
        let help = match did_you_mean(name, inputs.iter().copied()) {
            Some(s) => format!("did you mean '{s}'? The net inputs are: {}", inputs.join(", ")),
            None if inputs.is_empty() => "this net has no input blobs in this state".to_string(),
            None => format!("the net inputs are: {}", inputs.join(", ")),
        };
        diags.push(
            Diagnostic::warning(
                "lvc::graph::unused_input_shape",
                format!("--input-shape {name}=… names no input of this net"),
            )
            .with_help(help),
        );
    }
}

fn copy_shapes_to_edges(g: &mut NetGraph) {
    let edges: Vec<_> = g.graph.edge_indices().collect();
    for e in edges {
        let blob = g.graph[e].blob;
        g.graph[e].shape = g.blobs[blob].shape.clone();
    }
}
