//! Filtering, wiring and Split insertion: Caffe's `FilterNet`,
//! `InsertSplits` and `AppendBottom`/`AppendTop`, reporting every problem
//! instead of stopping at the first.

use std::collections::{BTreeMap, HashMap};

use petgraph::stable_graph::{NodeIndex, StableDiGraph};

use super::suggest::{did_you_mean, name_list, name_list_of};
use super::{Blob, BlobEdge, BlobId, CompileOptions, LayerNode, NetGraph};
use crate::diag::{Diagnostic, Diagnostics};
use crate::ops::{self, Op, OpKind};
use crate::schema::{LayerDef, NetDef, NetState, NetStateRule, Phase};

/// A filtered layer with its blobs resolved, before splits are inserted.
struct Draft<'a> {
    def: &'a LayerDef,
    op: Option<Op>,
    bottoms: Vec<Option<BlobId>>,
    tops: Vec<BlobId>,
    /// Written `loss_weight`s, when there is one per top.
    explicit_loss: Option<Vec<f64>>,
}

/// Wires the layers of `net` that `opts` selects into a graph (shapes still
/// unknown).
pub(super) fn wire(net: &NetDef, opts: &CompileOptions, diags: &mut Diagnostics) -> NetGraph {
    let state = opts.state();
    let mut blobs: Vec<Blob> = Vec::new();
    let drafts = resolve_blobs(net, &state, &mut blobs, diags);
    let mut consumers = vec![0usize; blobs.len()];
    for d in &drafts {
        for &b in d.bottoms.iter().flatten() {
            consumers[b] += 1;
        }
        for (j, &t) in d.tops.iter().enumerate() {
            if explicit_loss(d, j) != 0.0 {
                consumers[t] += 1;
            }
        }
    }

    let mut graph = StableDiGraph::new();
    let mut order = Vec::new();
    // For each blob that gets a split: its split tops, and the next one to hand out.
    let mut split_tops: HashMap<BlobId, (Vec<BlobId>, usize)> = HashMap::new();
    for d in drafts {
        let bottoms = d
            .bottoms
            .iter()
            .map(|b| {
                b.map(|b| match split_tops.get_mut(&b) {
                    Some((tops, next)) => {
                        let id = tops.get(*next).copied().unwrap_or(b);
                        *next += 1;
                        id
                    }
                    None => b,
                })
            })
            .collect();
        let split_loss: Vec<(usize, f64)> = d
            .tops
            .iter()
            .enumerate()
            .filter(|&(_, &t)| consumers[t] > 1)
            .map(|(j, _)| (j, explicit_loss(&d, j)))
            .collect();
        // Caffe clears the producer's loss_weight when a split takes it over.
        let explicit =
            if split_loss.iter().any(|&(_, w)| w != 0.0) { None } else { d.explicit_loss };
        let loss_weights = (0..d.tops.len())
            .map(|j| match &explicit {
                Some(w) => w[j],
                None => d.op.as_ref().map_or(0.0, |op| op.default_loss_weight(j)),
            })
            .collect();
        let node = LayerNode {
            name: d.def.name.value.clone(),
            kind: d.def.kind.value.clone(),
            op: d.op,
            def_index: Some(d.def.index),
            span: d.def.span,
            phase: d.def.phase.unwrap_or(state.phase),
            bottoms,
            tops: d.tops.clone(),
            loss_weights,
            params: Vec::new(),
            inserted_split: false,
            crop_offsets: None,
        };
        let index = graph.add_node(node);
        order.push(index);
        for &t in &d.tops {
            blobs[t].producer = index;
        }
        for (j, loss) in split_loss {
            let source = d.tops[j];
            let (split, tops) =
                split_node(d.def, j, source, consumers[source], loss, state.phase, &mut blobs);
            let split_index = graph.add_node(split);
            order.push(split_index);
            for &t in &tops {
                blobs[t].producer = split_index;
            }
            // With a loss weight, split top 0 is the loss; consumers start at 1.
            split_tops.insert(source, (tops, usize::from(loss != 0.0)));
        }
    }

    let mut by_name = HashMap::new();
    for (id, blob) in blobs.iter().enumerate() {
        by_name.insert(blob.name.clone(), id);
    }
    let mut net_graph =
        NetGraph { state, graph, order, blobs, inputs: Vec::new(), outputs: Vec::new(), by_name };
    connect_edges(&mut net_graph);
    net_graph.inputs = net_graph
        .nodes()
        .filter(|(_, n)| n.bottoms.is_empty())
        .flat_map(|(_, n)| n.tops.iter().copied())
        .collect();
    net_graph.outputs = outputs(&net_graph);
    net_graph
}

/// The loss weight written for top `j` (0 when not written).
fn explicit_loss(d: &Draft<'_>, j: usize) -> f64 {
    d.explicit_loss.as_ref().and_then(|w| w.get(j)).copied().unwrap_or(0.0)
}

/// Filtering plus Caffe's per-layer blob bookkeeping, in file order.
fn resolve_blobs<'a>(
    net: &'a NetDef,
    state: &NetState,
    blobs: &mut Vec<Blob>,
    diags: &mut Diagnostics,
) -> Vec<Draft<'a>> {
    // Latest version of every name produced so far.
    let mut latest: BTreeMap<&'a str, BlobId> = BTreeMap::new();
    // Where every name was first produced (for the duplicate-top label).
    let mut first_top: HashMap<&'a str, (&'a LayerDef, usize)> = HashMap::new();
    // For unknown-bottom help: every layer producing each name, in file
    // order, so that each message looks up its candidates instead of
    // scanning the net; and a bound on the work spent on "did you mean"
    // over the names produced so far, so that a net with thousands of
    // unknown bottoms is reported in linear time (the first messages get
    // suggestions, the rest the list of available blobs).
    let mut producers: HashMap<&'a str, Vec<&'a LayerDef>> = HashMap::new();
    for def in &net.layers {
        for top in &def.tops {
            producers.entry(top.value.as_str()).or_default().push(def);
        }
    }
    let mut suggestion_budget = SUGGESTION_BUDGET;
    let mut drafts = Vec::new();
    for def in net.layers.iter().filter(|l| l.is_included_in(state)) {
        let op = build_op(def, diags);
        let bottoms = def
            .bottoms
            .iter()
            .map(|b| {
                let found = latest.get(b.value.as_str()).copied();
                if found.is_none() {
                    let producers = producers.get(b.value.as_str()).map_or(&[][..], Vec::as_slice);
                    diags.push(unknown_bottom(
                        state,
                        def,
                        &b.value,
                        b.span,
                        &latest,
                        producers,
                        &mut suggestion_budget,
                    ));
                }
                found
            })
            .collect::<Vec<_>>();
        let mut tops = Vec::with_capacity(def.tops.len());
        for (j, top) in def.tops.iter().enumerate() {
            let in_place = def.bottoms.get(j).is_some_and(|b| b.value == top.value);
            if !in_place {
                if let Some(&(first, first_j)) = first_top.get(top.value.as_str()) {
                    diags.push(duplicate_top(def, j, first, first_j));
                }
            }
            let id = blobs.len();
            blobs.push(Blob {
                name: top.value.clone(),
                shape: None,
                producer: NodeIndex::end(),
                top_index: j,
                in_place: in_place && bottoms.get(j).is_some_and(Option::is_some),
            });
            latest.insert(top.value.as_str(), id);
            first_top.entry(top.value.as_str()).or_insert((def, j));
            tops.push(id);
        }
        let explicit_loss = loss_weights(def, diags);
        drafts.push(Draft { def, op, bottoms, tops, explicit_loss });
    }
    drafts
}

/// The op for a layer, or the reason there is none.
fn build_op(def: &LayerDef, diags: &mut Diagnostics) -> Option<Op> {
    let Some(kind) = OpKind::from_name(&def.kind.value) else {
        diags.push(unknown_type(def));
        return None;
    };
    let mut found = Vec::new();
    let op = kind.build(def, &mut found);
    for d in found {
        diags.push(if d.layer.is_none() { d.in_layer(def.name.value.clone()) } else { d });
    }
    op
}

/// `loss_weight` must be absent or given once per top.
fn loss_weights(def: &LayerDef, diags: &mut Diagnostics) -> Option<Vec<f64>> {
    if def.loss_weights.is_empty() {
        return None;
    }
    if def.loss_weights.len() != def.tops.len() {
        let mut d = Diagnostic::error(
            "lvc::graph::loss_weight",
            format!(
                "{} loss_weight values for {} tops: loss_weight must be unspecified or specified once per top blob",
                def.loss_weights.len(),
                def.tops.len()
            ),
        )
        .in_layer(def.name.value.clone());
        for w in &def.loss_weights {
            d = d.with_label(w.span, "");
        }
        diags.push(d.with_help(
            "write one loss_weight per top, in top order (0 for tops that are not losses)",
        ));
        return None;
    }
    Some(def.loss_weights.iter().map(|w| w.value).collect())
}

fn unknown_type(def: &LayerDef) -> Diagnostic {
    let kind = &def.kind.value;
    let known: Vec<&str> = ops::known_types().collect();
    let message = if kind.is_empty() {
        "layer has no type".to_string()
    } else {
        format!("unknown layer type '{kind}'")
    };
    let help = match did_you_mean(kind, known.iter().copied()) {
        Some(s) => format!("did you mean '{s}'? Layer types are case-sensitive Caffe type names"),
        None => format!("known types: {}", name_list(known.iter().copied(), known.len())),
    };
    Diagnostic::error("lvc::graph::unknown_type", message)
        .in_layer(def.name.value.clone())
        .with_label(def.kind.span, "not a layer type lvc knows")
        .with_help(help)
}

/// Blob names compared by "did you mean" over all unknown bottoms of a net
/// (each comparison is a short edit distance): far more than a real net
/// needs, small enough that 50,000 unknown bottoms stay fast.
const SUGGESTION_BUDGET: usize = 200_000;

/// `producers`: the layers of the whole file that produce `name`, in file
/// order; `budget`: what is left of [`SUGGESTION_BUDGET`].
fn unknown_bottom(
    state: &NetState,
    def: &LayerDef,
    name: &str,
    span: lvc_grammar::Span,
    available: &BTreeMap<&str, BlobId>,
    producers: &[&LayerDef],
    budget: &mut usize,
) -> Diagnostic {
    let mut d =
        Diagnostic::error("lvc::graph::unknown_bottom", format!("unknown bottom blob '{name}'"))
            .in_layer(def.name.value.clone())
            .with_label(span, "no layer above produces this blob");
    let producer = |pred: &dyn Fn(&LayerDef) -> bool| producers.iter().copied().find(|l| pred(l));
    let help = if let Some(later) = producer(&|l| l.index > def.index && l.is_included_in(state)) {
        if near(later.name.span, span) {
            d = d.with_label(later.name.span, "produced here, later in the file");
        }
        format!(
            "'{name}' is produced by layer '{}' further down; Caffe wires layers in file order, so move that layer above '{}'",
            later.name.value, def.name.value
        )
    } else if let Some(excluded) = producer(&|l| !l.is_included_in(state)) {
        if near(excluded.name.span, span) {
            d = d.with_label(excluded.name.span, "produced by this layer, which is filtered out");
        }
        let how =
            excluded.include.first().map(rule_flags).filter(|flags| !flags.is_empty()).map_or_else(
                || "choose another --phase/--stage/--level".to_string(),
                |flags| format!("its include rule holds with {flags}"),
            );
        format!(
            "'{name}' comes from layer '{}', whose include/exclude rules leave it out of the net for {}; {how}",
            excluded.name.value,
            describe_state(state)
        )
    } else {
        let names = available.keys().copied();
        let listed = if available.is_empty() {
            "no blob exists yet at this point".to_string()
        } else {
            format!("blobs available here: {}", name_list_of(names.clone(), available.len(), 12))
        };
        let suggestion = if *budget >= available.len() {
            *budget -= available.len();
            did_you_mean(name, names)
        } else {
            None
        };
        match suggestion {
            Some(s) => format!("did you mean '{s}'? {listed}"),
            None => listed,
        }
    };
    d.with_help(help)
}

fn duplicate_top(def: &LayerDef, j: usize, first: &LayerDef, first_j: usize) -> Diagnostic {
    let name = &def.tops[j].value;
    let mut d = Diagnostic::error(
        "lvc::graph::duplicate_top",
        format!("top blob '{name}' produced by multiple sources"),
    )
    .in_layer(def.name.value.clone())
    .with_label(def.tops[j].span, "produced again here");
    if let Some(t) = first.tops.get(first_j).filter(|t| near(t.span, def.tops[j].span)) {
        d = d.with_label(t.span, format!("first produced by layer '{}'", first.name.value));
    } else {
        d.message.push_str(&format!(" (first by layer '{}')", first.name.value));
    }
    d.with_help(format!(
        "give this top another name; a layer may reuse '{name}' only in place (as its top {j} and bottom {j}), or when include/exclude rules keep just one of the two producers"
    ))
}

/// Whether a second label is close enough to the first to render as one
/// snippet; miette prints every line between two labels.
fn near(a: lvc_grammar::Span, b: lvc_grammar::Span) -> bool {
    a.start.abs_diff(b.start) < 600
}

/// The `lvc` flags under which an include rule holds (`--phase train --stage val`).
fn rule_flags(rule: &NetStateRule) -> String {
    let mut flags = Vec::new();
    match rule.phase {
        Some(Phase::Train) => flags.push("--phase train".to_string()),
        Some(Phase::Test) => flags.push("--phase test".to_string()),
        None => {}
    }
    flags.extend(rule.stages.iter().map(|s| format!("--stage {s}")));
    if let Some(level) = rule.min_level.or(rule.max_level) {
        flags.push(format!("--level {level}"));
    }
    flags.join(" ")
}

/// `phase TEST, stages [deploy], level 0`.
pub(super) fn describe_state(state: &NetState) -> String {
    let phase = match state.phase {
        Phase::Train => "TRAIN",
        Phase::Test => "TEST",
    };
    let mut s = format!("phase {phase}");
    if !state.stages.is_empty() {
        s.push_str(&format!(", stages [{}]", state.stages.join(", ")));
    }
    if state.level != 0 {
        s.push_str(&format!(", level {}", state.level));
    }
    s
}

/// Caffe's `Split` layer for production `source` (top `j` of `def`) with
/// `count` consumers: `{blob}_{layer}_{j}_split`, tops `…_split_{k}`.
fn split_node(
    def: &LayerDef,
    j: usize,
    source: BlobId,
    count: usize,
    loss: f64,
    phase: Phase,
    blobs: &mut Vec<Blob>,
) -> (LayerNode, Vec<BlobId>) {
    let blob_name = blobs[source].name.clone();
    let name = format!("{blob_name}_{}_{j}_split", def.name.value);
    let tops: Vec<BlobId> = (0..count)
        .map(|k| {
            blobs.push(Blob {
                name: format!("{name}_{k}"),
                shape: None,
                producer: NodeIndex::end(),
                top_index: k,
                in_place: false,
            });
            blobs.len() - 1
        })
        .collect();
    let loss_weights = (0..count).map(|k| if k == 0 { loss } else { 0.0 }).collect();
    let node = LayerNode {
        name,
        kind: OpKind::Split.name().to_string(),
        op: None,
        def_index: None,
        span: def.span,
        phase,
        bottoms: vec![Some(source)],
        tops: tops.clone(),
        loss_weights,
        params: Vec::new(),
        inserted_split: true,
        crop_offsets: None,
    };
    (node, tops)
}

fn connect_edges(g: &mut NetGraph) {
    let mut edges = Vec::new();
    for (index, node) in g.nodes() {
        for (j, b) in node.bottoms.iter().enumerate() {
            let Some(b) = *b else { continue };
            let blob = &g.blobs[b];
            let in_place = node.tops.get(j).is_some_and(|&t| g.blobs[t].in_place);
            edges.push((
                blob.producer,
                index,
                BlobEdge {
                    blob: b,
                    name: blob.name.clone(),
                    shape: None,
                    top_index: blob.top_index,
                    bottom_index: j,
                    in_place,
                },
            ));
        }
    }
    for (from, to, edge) in edges {
        g.graph.add_edge(from, to, edge);
    }
}

/// Caffe's net outputs: names still "available" after the last layer (made
/// and not consumed later), in Caffe's (alphabetical) order.
fn outputs(g: &NetGraph) -> Vec<BlobId> {
    let mut available: BTreeMap<&str, BlobId> = BTreeMap::new();
    for (_, node) in g.nodes() {
        for &b in node.bottoms.iter().flatten() {
            available.remove(g.blobs[b].name.as_str());
        }
        for &t in &node.tops {
            available.insert(g.blobs[t].name.as_str(), t);
        }
    }
    available.into_values().collect()
}
