//! Test helpers: layers and nets from prototxt text, a minimal file-order
//! shape driver, and rendering of diagnostics for snapshots.

use std::collections::HashMap;

use super::{BlobShape, Op, OpKind, ParamShape, ShapeCtx};
use crate::diag::Diagnostic;
use crate::schema::{load_net, LayerDef, LoadOptions, NetDef, NetState};
use crate::source::SourceFile;

/// A net loaded from text (lenient, so fork params are kept).
pub fn net(name: &str, text: &str) -> (SourceFile, NetDef) {
    let source = SourceFile::new(name, text);
    let (net, diags) = load_net(&source, &LoadOptions { lenient: true });
    match net {
        Some(net) => (source, net),
        None => panic!("test net {name} does not load: {:#?}", diags.items),
    }
}

/// One layer from the text of its body (`name: "x" type: "ReLU" …`).
pub fn layer(body: &str) -> (SourceFile, LayerDef) {
    let (source, net) = net("layer.prototxt", &format!("layer {{\n{body}\n}}\n"));
    let layer = net.layers.into_iter().next().expect("the text holds one layer");
    (source, layer)
}

/// The op of a layer (`None` for an unknown type, or when its parameters
/// were rejected, with the reasons in `diags`).
pub fn build(def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<Op> {
    OpKind::from_name(&def.kind.value)?.build(def, diags)
}

/// What one layer makes of bottoms of the given shapes.
pub struct Outcome {
    pub source: SourceFile,
    pub tops: Option<Vec<BlobShape>>,
    pub params: Vec<ParamShape>,
    pub diags: Vec<Diagnostic>,
}

impl Outcome {
    pub fn top(&self, i: usize) -> Vec<i64> {
        match &self.tops {
            Some(t) => t[i].0.clone(),
            None => panic!("no tops; diagnostics: {:#?}", self.diags),
        }
    }
    pub fn codes(&self) -> Vec<&'static str> {
        self.diags.iter().map(|d| d.code).collect()
    }
    pub fn rendered(&self) -> String {
        render(&self.source, &self.diags)
    }
    pub fn param_dims(&self) -> Vec<(&'static str, Vec<i64>)> {
        self.params.iter().map(|p| (p.role.name(), p.shape.0.clone())).collect()
    }
}

/// Builds the layer and, if that worked, infers its tops from `bottoms`.
pub fn run_layer(body: &str, bottoms: &[&[i64]]) -> Outcome {
    let (source, def) = layer(body);
    outcome(source, &def, bottoms)
}

/// As [`run_layer`], for a forked-Caffe layer whose `*_param` block BVLC's
/// schema does not know: the tree is extracted without validation, as a
/// schema that keeps unknown blocks would hand it over.
pub fn run_fork_layer(body: &str, bottoms: &[&[i64]]) -> Outcome {
    let text = format!("layer {{\n{body}\n}}\n");
    let tree = lvc_grammar::parse(&text).expect("test layer parses");
    let mut diags = crate::diag::Diagnostics::new();
    let net = crate::schema::extract_net(&tree, crate::schema::NetFormat::Current, &mut diags);
    let def = net.layers.into_iter().next().expect("the text holds one layer");
    outcome(SourceFile::new("layer.prototxt", text), &def, bottoms)
}

fn outcome(source: SourceFile, def: &LayerDef, bottoms: &[&[i64]]) -> Outcome {
    let mut diags = Vec::new();
    let Some(kind) = OpKind::from_name(&def.kind.value) else {
        panic!("unknown type {}", def.kind.value)
    };
    let Some(op) = kind.build(def, &mut diags) else {
        return Outcome { source, tops: None, params: Vec::new(), diags };
    };
    let bottoms: Vec<BlobShape> = bottoms.iter().map(|b| BlobShape(b.to_vec())).collect();
    let tops = op.infer_shapes(&mut ShapeCtx { layer: def, bottoms: &bottoms, diags: &mut diags });
    let params = if tops.is_some() { op.param_shapes(&bottoms) } else { Vec::new() };
    // The IR's size check after every rule, as `compile` runs it.
    let sized =
        tops.as_ref().is_none_or(|t| super::common::check_sizes(def, t, &params, &mut diags));
    let (tops, params) = if sized { (tops, params) } else { (None, Vec::new()) };
    Outcome { source, tops, params, diags }
}

/// A net's blob shapes and params after running every layer (included in
/// `state`) in file order; no split insertion, no crop-offset search.
pub struct NetRun {
    pub source: SourceFile,
    pub shapes: HashMap<String, BlobShape>,
    pub params: HashMap<String, Vec<ParamShape>>,
    pub diags: Vec<Diagnostic>,
}

pub fn run_net_file(path: &str, state: &NetState) -> NetRun {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let file = path.rsplit('/').next().unwrap_or(path);
    let (source, net) = net(file, &text);
    let mut shapes = HashMap::new();
    let mut params = HashMap::new();
    let mut diags = Vec::new();
    for def in net.layers.iter().filter(|l| l.is_included_in(state)) {
        let Some(op) = build(def, &mut diags) else { continue };
        let tops = match op.input_shapes() {
            Some(given) => given.into_iter().collect::<Option<Vec<_>>>(),
            None => {
                let Some(bottoms) = def
                    .bottoms
                    .iter()
                    .map(|b| shapes.get(&b.value).cloned())
                    .collect::<Option<Vec<BlobShape>>>()
                else {
                    continue;
                };
                let tops = op.infer_shapes(&mut ShapeCtx {
                    layer: def,
                    bottoms: &bottoms,
                    diags: &mut diags,
                });
                if tops.is_some() {
                    params.insert(def.name.value.clone(), op.param_shapes(&bottoms));
                }
                tops
            }
        };
        for (t, s) in def.tops.iter().zip(tops.unwrap_or_default()) {
            shapes.insert(t.value.clone(), s);
        }
    }
    NetRun { source, shapes, params, diags }
}

/// Diagnostics as miette draws them (unicode, no colour, 100 columns).
pub fn render(source: &SourceFile, diags: &[Diagnostic]) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    let mut out = String::new();
    for d in diags {
        handler.render_report(&mut out, &d.render(source)).expect("rendering into a String");
        out.push('\n');
    }
    out
}
