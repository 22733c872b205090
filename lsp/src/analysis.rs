//! What the server knows about one document: the compiler's diagnostics
//! and, for every `top:`/`bottom:` of the file, the blob it names in the
//! checked graph (shape, producer, consumers). Built off the message loop;
//! requests read it.

use std::collections::HashMap;

use lvc_compiler::diag::{Diagnostic, Severity};
use lvc_compiler::ir::{compile, BlobId, CompileOptions};
use lvc_compiler::SourceFile;
use lvc_grammar::Span;

use crate::text::LineIndex;

/// Texts larger than this are not compiled: the editor gets one diagnostic
/// saying so (a 50 MB paste must not stall the server).
pub const MAX_ANALYSED_BYTES: usize = 8 << 20;

/// A blob name written in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    /// The string value, quotes included.
    pub span: Span,
    pub name: String,
    pub role: Role,
    /// The layer whose field this is.
    pub layer: String,
    /// The blob version in the checked graph; `None` for a layer the
    /// phase leaves out, or a bottom nothing produces.
    pub blob: Option<BlobId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Top,
    Bottom,
}

/// A blob version of the checked graph, as hovers show it.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobFacts {
    pub shape: Option<String>,
    /// The file layer writing it (through inserted splits) and where its
    /// `top:` is.
    pub producer: Option<(String, Span)>,
    /// Layers reading it, in execution order.
    pub consumers: Vec<String>,
}

/// A layer of the checked graph, as hovers show it.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerFacts {
    pub name_span: Span,
    pub name: String,
    pub kind: String,
    pub params: Vec<String>,
    pub outputs: Vec<String>,
}

#[derive(Debug)]
pub struct Analysis {
    pub version: i32,
    pub text: String,
    pub lines: LineIndex,
    pub diagnostics: Vec<Diagnostic>,
    pub occurrences: Vec<Occurrence>,
    pub blobs: HashMap<BlobId, BlobFacts>,
    pub layers: Vec<LayerFacts>,
}

impl Analysis {
    pub fn of(path: &str, text: String, version: i32, options: &CompileOptions) -> Analysis {
        let lines = LineIndex::new(&text);
        let mut analysis = Analysis {
            version,
            text,
            lines,
            diagnostics: Vec::new(),
            occurrences: Vec::new(),
            blobs: HashMap::new(),
            layers: Vec::new(),
        };
        if analysis.text.len() > MAX_ANALYSED_BYTES {
            analysis.diagnostics.push(
                Diagnostic::warning(
                    "lvc::lsp::too_large",
                    format!(
                        "this file is {} MB; files over {} MB are not checked in the editor",
                        analysis.text.len() >> 20,
                        MAX_ANALYSED_BYTES >> 20
                    ),
                )
                .with_label(Span::new(0, 0), "not checked")
                .with_help("run `lvc check` on it from the command line"),
            );
            return analysis;
        }
        let source = SourceFile::new(path, analysis.text.as_str());
        let compiled = compile(&source, options);
        analysis.diagnostics = compiled.diags.iter().cloned().collect();
        let Some(net) = &compiled.net else { return analysis };
        // Every written top and bottom, in file order, phase or not.
        let mut slot: HashMap<(usize, Role, usize), usize> = HashMap::new();
        for layer in &net.layers {
            for (role, names) in [(Role::Bottom, &layer.bottoms), (Role::Top, &layer.tops)] {
                for (k, name) in names.iter().enumerate() {
                    slot.insert((layer.index, role, k), analysis.occurrences.len());
                    analysis.occurrences.push(Occurrence {
                        span: name.span,
                        name: name.value.clone(),
                        role,
                        layer: layer.name.value.clone(),
                        blob: None,
                    });
                }
            }
        }
        let Some(graph) = &compiled.graph else { return analysis };
        let file_layer = |mut blob: BlobId| -> BlobId {
            // An inserted split hands its bottom on unchanged.
            loop {
                let producer = graph.node(graph.blob(blob).producer);
                match (producer.inserted_split, producer.bottoms.first().copied().flatten()) {
                    (true, Some(up)) => blob = up,
                    _ => return blob,
                }
            }
        };
        for (_, node) in graph.nodes() {
            if let Some(i) = node.def_index {
                let def = &net.layers[i];
                for (k, &top) in node.tops.iter().enumerate() {
                    if let Some(&o) = slot.get(&(def.index, Role::Top, k)) {
                        analysis.occurrences[o].blob = Some(top);
                    }
                }
                for (k, bottom) in node.bottoms.iter().enumerate() {
                    if let (Some(&o), Some(b)) = (slot.get(&(def.index, Role::Bottom, k)), bottom) {
                        analysis.occurrences[o].blob = Some(file_layer(*b));
                    }
                }
                let shapes = |ids: &[BlobId]| -> Vec<String> {
                    ids.iter()
                        .map(|&id| {
                            let blob = graph.blob(id);
                            format!("{}: {}", blob.name, shape_text(blob.shape.as_ref()))
                        })
                        .collect()
                };
                analysis.layers.push(LayerFacts {
                    name_span: def.name.span,
                    name: node.name.clone(),
                    kind: node.kind.clone(),
                    params: node
                        .params
                        .iter()
                        .map(|p| format!("{:?} {}", p.role, p.shape).to_lowercase())
                        .collect(),
                    outputs: shapes(&node.tops),
                });
            }
        }
        // Facts per blob named in the file.
        let top_spans: HashMap<BlobId, Span> = analysis
            .occurrences
            .iter()
            .filter(|o| o.role == Role::Top)
            .filter_map(|o| o.blob.map(|b| (b, o.span)))
            .collect();
        // Readers of each file blob, in execution order, in one pass.
        let mut consumers_of: HashMap<BlobId, Vec<String>> = HashMap::new();
        for (_, n) in graph.nodes().filter(|(_, n)| !n.inserted_split) {
            for &b in n.bottoms.iter().flatten() {
                let readers = consumers_of.entry(file_layer(b)).or_default();
                if readers.last() != Some(&n.name) {
                    readers.push(n.name.clone());
                }
            }
        }
        for o in &analysis.occurrences {
            let Some(id) = o.blob else { continue };
            if analysis.blobs.contains_key(&id) {
                continue;
            }
            let blob = graph.blob(id);
            let producer = graph.node(blob.producer);
            let consumers = consumers_of.get(&id).cloned().unwrap_or_default();
            analysis.blobs.insert(
                id,
                BlobFacts {
                    shape: blob.shape.as_ref().map(|s| s.to_string()),
                    producer: top_spans.get(&id).map(|&span| (producer.name.clone(), span)),
                    consumers,
                },
            );
        }
        analysis
    }

    /// The blob name written at `offset`, if any.
    pub fn occurrence_at(&self, offset: usize) -> Option<&Occurrence> {
        self.occurrences.iter().find(|o| o.span.start <= offset && offset <= o.span.end)
    }

    /// The layer whose `name:` value is at `offset`.
    pub fn layer_at(&self, offset: usize) -> Option<&LayerFacts> {
        self.layers.iter().find(|l| l.name_span.start <= offset && offset <= l.name_span.end)
    }

    /// Markdown for a hover at `offset`.
    pub fn hover(&self, offset: usize) -> Option<(Span, String)> {
        if let Some(o) = self.occurrence_at(offset) {
            let Some(facts) = o.blob.and_then(|b| self.blobs.get(&b)) else {
                let why = match o.role {
                    Role::Bottom => "no layer before it produces it in this phase",
                    Role::Top => "its layer is not in the net in this phase",
                };
                return Some((o.span, format!("`{}`: {why}", o.name)));
            };
            let mut text =
                format!("`{}`: {}", o.name, facts.shape.as_deref().unwrap_or("shape unknown"));
            if let Some((producer, _)) = &facts.producer {
                text.push_str(&format!("\n\nproduced by `{producer}`"));
            }
            if !facts.consumers.is_empty() {
                let names: Vec<String> = facts.consumers.iter().map(|c| format!("`{c}`")).collect();
                text.push_str(&format!("\n\nconsumed by {}", names.join(", ")));
            }
            return Some((o.span, text));
        }
        let layer = self.layer_at(offset)?;
        let mut text = format!("`{}` ({})", layer.name, layer.kind);
        if !layer.params.is_empty() {
            text.push_str("\n\nparameters: ");
            text.push_str(&layer.params.join(", "));
        }
        if !layer.outputs.is_empty() {
            text.push_str("\n\noutput: ");
            text.push_str(&layer.outputs.join(", "));
        }
        Some((layer.name_span, text))
    }

    /// Where the blob read at `offset` is written: its producer's `top:`.
    pub fn definition(&self, offset: usize) -> Option<Span> {
        let o = self.occurrence_at(offset)?;
        match o.role {
            Role::Top => Some(o.span),
            Role::Bottom => self.blobs.get(&o.blob?)?.producer.as_ref().map(|(_, span)| *span),
        }
    }

    /// Every `top:` and `bottom:` in the file writing the name at `offset`.
    pub fn references(&self, offset: usize) -> Vec<Span> {
        let Some(o) = self.occurrence_at(offset) else { return Vec::new() };
        self.occurrences
            .iter()
            .filter(|other| other.name == o.name)
            .map(|other| other.span)
            .collect()
    }
}

fn shape_text(shape: Option<&lvc_compiler::ops::BlobShape>) -> String {
    shape.map_or_else(|| "shape unknown".to_string(), |s| s.to_string())
}

/// The LSP severity of a compiler finding.
pub fn severity(s: Severity) -> lsp_types::DiagnosticSeverity {
    match s {
        Severity::Error => lsp_types::DiagnosticSeverity::ERROR,
        Severity::Warning => lsp_types::DiagnosticSeverity::WARNING,
        Severity::Advice => lsp_types::DiagnosticSeverity::HINT,
    }
}
