//! The net as a graph: one node per layer instance of one `NetState`
//! (phase, stages, level), one edge per blob hand-over, with every blob
//! shape inferred and every problem collected.
//!
//! Build steps, in Caffe's order: include/exclude filtering, wiring in file
//! order (unknown bottoms, duplicate tops, positional in-place rule), Caffe's
//! automatic Split insertion with Caffe's names, net inputs (written shapes
//! or `--input-shape`), shape inference layer by layer, Crop offsets checked
//! against the graph's coordinate maps.

mod build;
mod crop;
mod infer;
mod print;
pub mod suggest;

use std::collections::HashMap;

use lvc_grammar::Span;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};

use crate::diag::Diagnostics;
use crate::ops::{BlobShape, Op, ParamShape};
use crate::schema::{self, LoadOptions, NetDef, NetState, Phase};
use crate::source::SourceFile;

/// What to build the net for, and the shapes the file does not give.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileOptions {
    pub phase: Phase,
    pub stages: Vec<String>,
    pub level: i64,
    /// `--input-shape NAME=d,d,…`: overrides or supplies a net input's shape.
    pub input_shapes: Vec<(String, Vec<i64>)>,
    /// Accept fields from forked Caffe builds (warnings instead of errors).
    pub lenient: bool,
}

impl Default for CompileOptions {
    /// Caffe's default `NetState`: TEST, level 0, no stages.
    fn default() -> Self {
        CompileOptions {
            phase: Phase::Test,
            stages: Vec::new(),
            level: 0,
            input_shapes: Vec::new(),
            lenient: false,
        }
    }
}

impl CompileOptions {
    pub fn state(&self) -> NetState {
        NetState { phase: self.phase, level: self.level, stages: self.stages.clone() }
    }
}

/// Everything `compile` learned about one file. `net` is `None` when the
/// file could not be read as a net; `graph` is present whenever `net` is,
/// even when shape checks failed (unknown shapes are then `None`).
#[derive(Debug)]
pub struct Compiled {
    pub net: Option<NetDef>,
    pub graph: Option<NetGraph>,
    pub diags: Diagnostics,
}

impl Compiled {
    pub fn is_ok(&self) -> bool {
        self.graph.is_some() && !self.diags.has_errors()
    }
}

/// Parse, validate and upgrade `source`, then build and shape-check its
/// graph for the state in `opts`.
pub fn compile(source: &SourceFile, opts: &CompileOptions) -> Compiled {
    let (net, mut diags) = schema::load_net(source, &LoadOptions { lenient: opts.lenient });
    let graph = net.as_ref().map(|net| NetGraph::build(net, opts, &mut diags));
    Compiled { net, graph, diags }
}

/// Index of a blob version in [`NetGraph::blobs`].
pub type BlobId = usize;

/// One version of a blob: written by one layer top. An in-place layer makes a
/// new version with the same name; an inserted Split makes renamed copies.
#[derive(Debug, Clone, PartialEq)]
pub struct Blob {
    pub name: String,
    /// `None` when it could not be inferred (an error was reported upstream).
    pub shape: Option<BlobShape>,
    pub producer: NodeIndex,
    pub top_index: usize,
    /// Written in place over the producer's bottom of the same index.
    pub in_place: bool,
}

/// A layer instance.
#[derive(Debug)]
pub struct LayerNode {
    pub name: String,
    /// The Caffe type string (`Convolution`, `Split` for inserted splits).
    pub kind: String,
    /// The typed op; `None` when the type is unknown or its parameters were
    /// rejected (the error is in the diagnostics).
    pub op: Option<Op>,
    /// Index into `NetDef::layers`; `None` for inserted splits.
    pub def_index: Option<usize>,
    /// The layer block (for splits: the producing layer's block).
    pub span: Span,
    /// The layer's own `phase`, else the net's.
    pub phase: Phase,
    /// Bottom blobs in order; `None` where the name was unknown.
    pub bottoms: Vec<Option<BlobId>>,
    pub tops: Vec<BlobId>,
    /// Loss weight per top after Caffe's rules (explicit, else the type's
    /// default, moved onto split top 0 when a split was inserted).
    pub loss_weights: Vec<f64>,
    /// Learnable blobs, when the bottom shapes are known.
    pub params: Vec<ParamShape>,
    /// Inserted by Caffe's split rule (not in the file).
    pub inserted_split: bool,
    /// Crop layers only: the offset applied on every axis of bottom 0 (0 on
    /// the axes before `crop_param.axis`): the written ones, or for a Crop
    /// without `crop_param` the ones computed from the graph.
    pub crop_offsets: Option<Vec<i64>>,
}

/// A blob handed from one layer top to one layer bottom.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobEdge {
    pub blob: BlobId,
    pub name: String,
    pub shape: Option<BlobShape>,
    pub top_index: usize,
    pub bottom_index: usize,
    /// The consumer writes its top of the same index in place.
    pub in_place: bool,
}

/// The checked net for one state.
#[derive(Debug)]
pub struct NetGraph {
    pub state: NetState,
    graph: StableDiGraph<LayerNode, BlobEdge>,
    /// Execution order (file order, splits right after their producer).
    order: Vec<NodeIndex>,
    blobs: Vec<Blob>,
    inputs: Vec<BlobId>,
    outputs: Vec<BlobId>,
    /// Latest version of each blob name.
    by_name: HashMap<String, BlobId>,
}

impl NetGraph {
    /// Builds the graph of `net` for `opts`, pushing every finding to `diags`.
    pub fn build(net: &NetDef, opts: &CompileOptions, diags: &mut Diagnostics) -> NetGraph {
        let mut found = Diagnostics::new();
        let mut graph = build::wire(net, opts, &mut found);
        infer::infer(&mut graph, net, opts, &mut found);
        // Report in file order, whichever pass found the problem.
        found.items.sort_by_key(|d| d.primary_span().map_or(usize::MAX, |s| s.start));
        diags.extend(found);
        graph
    }

    pub fn graph(&self) -> &StableDiGraph<LayerNode, BlobEdge> {
        &self.graph
    }

    /// Layers in execution order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeIndex, &LayerNode)> + '_ {
        self.order.iter().map(move |&i| (i, &self.graph[i]))
    }

    pub fn node(&self, index: NodeIndex) -> &LayerNode {
        &self.graph[index]
    }

    pub fn layer_count(&self) -> usize {
        self.order.len()
    }

    /// Layers from the file (inserted splits not counted).
    pub fn file_layer_count(&self) -> usize {
        self.nodes().filter(|(_, n)| !n.inserted_split).count()
    }

    pub fn node_by_name(&self, name: &str) -> Option<&LayerNode> {
        self.nodes().map(|(_, n)| n).find(|n| n.name == name)
    }

    pub fn blob(&self, id: BlobId) -> &Blob {
        &self.blobs[id]
    }

    pub fn blobs(&self) -> &[Blob] {
        &self.blobs
    }

    /// Tops of layers without bottoms (Input, data layers), in order.
    pub fn inputs(&self) -> &[BlobId] {
        &self.inputs
    }

    /// Blobs nobody consumes (Caffe's net outputs), in order.
    pub fn outputs(&self) -> &[BlobId] {
        &self.outputs
    }

    /// Shape of the latest version of a blob.
    pub fn blob_shape(&self, name: &str) -> Option<&BlobShape> {
        self.by_name.get(name).and_then(|&id| self.blobs[id].shape.as_ref())
    }

    /// Learnable blobs of a layer.
    pub fn param_shapes(&self, layer: &str) -> Option<&[ParamShape]> {
        self.node_by_name(layer).map(|n| n.params.as_slice())
    }

    /// Total number of learnable values (Caffe's parameter count). Every
    /// parameter blob in the graph passed the size check (at most
    /// `MAX_BLOB_COUNT` values); the sum saturates all the same, so that it
    /// never wraps.
    pub fn param_count(&self) -> i64 {
        self.nodes()
            .flat_map(|(_, n)| &n.params)
            .map(|p| p.shape.count())
            .fold(0, i64::saturating_add)
    }

    /// Whether a layer's inputs all have known shapes.
    fn bottoms_known(&self, node: &LayerNode) -> Option<Vec<BlobShape>> {
        node.bottoms.iter().map(|b| b.and_then(|id| self.blobs[id].shape.clone())).collect()
    }
}
