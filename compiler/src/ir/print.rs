//! The two views of a graph: `lvc print` text and Graphviz `lvc dot`.

use std::fmt::Write;

use super::{BlobId, LayerNode, NetGraph};
use crate::ops::ParamShape;

impl NetGraph {
    /// `name[1×96×112×112]`, or `name[?]` when the shape is unknown.
    fn blob_text(&self, id: BlobId) -> String {
        let blob = self.blob(id);
        match &blob.shape {
            Some(s) => format!("{}[{s}]", blob.name),
            None => format!("{}[?]", blob.name),
        }
    }

    fn bottoms_text(&self, node: &LayerNode) -> String {
        let bottoms: Vec<String> = node
            .bottoms
            .iter()
            .map(|b| b.map_or_else(|| "<unknown>".to_string(), |id| self.blob_text(id)))
            .collect();
        if bottoms.is_empty() {
            "∅".to_string()
        } else {
            bottoms.join(", ")
        }
    }

    fn tops_text(&self, node: &LayerNode) -> String {
        let tops: Vec<String> = node
            .tops
            .iter()
            .enumerate()
            .map(|(j, &t)| {
                let mut s = self.blob_text(t);
                if self.blob(t).in_place {
                    s.push_str(" (in-place)");
                }
                if let Some(&w) = node.loss_weights.get(j).filter(|w| **w != 0.0) {
                    s.push_str(&format!(" (loss ×{w})"));
                }
                s
            })
            .collect();
        tops.join(", ")
    }

    /// One line per layer in execution order, then inputs, outputs and the
    /// parameter count.
    pub fn to_text(&self) -> String {
        let rows: Vec<(String, String, String)> = self
            .nodes()
            .map(|(_, n)| {
                let kind = if n.inserted_split {
                    format!("{} (inserted)", n.kind)
                } else {
                    n.kind.clone()
                };
                let mut body = format!("{} → {}", self.bottoms_text(n), self.tops_text(n));
                if !n.params.is_empty() {
                    body.push_str(&format!("  params: {}", params_text(&n.params)));
                }
                if let Some(offsets) = &n.crop_offsets {
                    let list: Vec<String> = offsets.iter().map(i64::to_string).collect();
                    body.push_str(&format!("  offsets: {}", list.join(",")));
                }
                (n.name.clone(), kind, body)
            })
            .collect();
        let name_width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
        let kind_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
        let mut out = String::new();
        for (name, kind, body) in rows {
            let _ = writeln!(out, "{}  {}  {body}", pad(&name, name_width), pad(&kind, kind_width));
        }
        let list = |ids: &[BlobId]| {
            if ids.is_empty() {
                "none".to_string()
            } else {
                ids.iter().map(|&b| self.blob_text(b)).collect::<Vec<_>>().join(", ")
            }
        };
        let _ = writeln!(out, "inputs: {}", list(self.inputs()));
        let _ = writeln!(out, "outputs: {}", list(self.outputs()));
        let _ = writeln!(out, "parameters: {}", thousands(self.param_count()));
        out
    }

    /// Graphviz: layers as boxes, blobs as labelled edges; net outputs as
    /// ellipses.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph net {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n");
        for (index, n) in self.nodes() {
            let style = if n.inserted_split { ", style=dashed" } else { "" };
            let _ = writeln!(
                out,
                "  n{} [label=\"{}\\n{}\"{style}];",
                index.index(),
                escape(&n.name),
                escape(&n.kind)
            );
        }
        for e in self.graph().edge_indices() {
            let Some((from, to)) = self.graph().edge_endpoints(e) else { continue };
            let edge = &self.graph()[e];
            let shape = edge.shape.as_ref().map_or_else(|| "?".to_string(), ToString::to_string);
            let style = if edge.in_place { ", style=bold" } else { "" };
            let _ = writeln!(
                out,
                "  n{} -> n{} [label=\"{}\\n{}\"{style}];",
                from.index(),
                to.index(),
                escape(&edge.name),
                escape(&shape)
            );
        }
        for (k, &b) in self.outputs().iter().enumerate() {
            let blob = self.blob(b);
            let shape = blob.shape.as_ref().map_or_else(|| "?".to_string(), ToString::to_string);
            let _ = writeln!(out, "  out{k} [shape=ellipse, label=\"{}\"];", escape(&blob.name));
            let _ = writeln!(
                out,
                "  n{} -> out{k} [label=\"{}\"];",
                blob.producer.index(),
                escape(&shape)
            );
        }
        out.push_str("}\n");
        out
    }
}

/// `weight 96×1×11×11, bias 96`.
fn params_text(params: &[ParamShape]) -> String {
    params.iter().map(|p| format!("{} {}", p.role, p.shape)).collect::<Vec<_>>().join(", ")
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(width.saturating_sub(n)))
}

/// `56,861,124`.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(56_861_124), "56,861,124");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(-1000), "-1,000");
    }

    #[test]
    fn dot_labels_are_escaped() {
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
