//! How `lvc weights check` shows its report: for people (a table and a
//! diagnostic per problem) and as JSON.

use std::path::Path;

use lvc_compiler::{Diagnostic, SourceFile};
use lvc_runtime::weights::{CaffeShape, LayerReport, LayerStatus, WeightsReport};
use serde::Serialize;

use super::netargs::render;

fn shape_text(shape: &Option<Vec<i64>>) -> String {
    shape.as_deref().map_or_else(|| "-".to_string(), |s| CaffeShape(s).to_string())
}

fn line_of(layer: &LayerReport, source: &SourceFile) -> Option<usize> {
    layer.span.map(|s| source.line_col(s.start).0)
}

/// The table of every layer, then one diagnostic (with the prototxt line)
/// per layer that needs attention, then a summary.
/// The check as `lvc weights check` prints it for people: a table of every
/// layer, then each problem as a diagnostic pointing at its layer.
pub(super) fn human_report(report: &WeightsReport, source: &SourceFile, weights: &Path) -> String {
    let mut rows = vec![[
        "layer".to_string(),
        "type".into(),
        "status".into(),
        "param".into(),
        "expected (net)".into(),
        "found (file)".into(),
        "line".into(),
    ]];
    for layer in &report.layers {
        let line = line_of(layer, source).map_or_else(String::new, |l| l.to_string());
        let status = layer.status.as_str().to_string();
        if layer.status == LayerStatus::Ok || layer.params.is_empty() {
            rows.push([
                layer.layer.clone(),
                layer.kind.clone(),
                status,
                String::new(),
                String::new(),
                String::new(),
                line,
            ]);
            continue;
        }
        for (i, p) in layer.params.iter().enumerate() {
            let (name, kind, status, line) = if i == 0 {
                (layer.layer.clone(), layer.kind.clone(), status.clone(), line.clone())
            } else {
                Default::default()
            };
            rows.push([
                name,
                kind,
                status,
                p.index.to_string(),
                shape_text(&p.expected),
                shape_text(&p.found),
                line,
            ]);
        }
    }
    let widths: Vec<usize> =
        (0..7).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> =
            row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    for layer in &report.layers {
        if let Some(adapted) = &layer.adapted {
            out.push_str(&format!("adapted {}: {adapted}\n", layer.layer));
        }
    }
    for layer in report.layers.iter().filter(|l| l.status != LayerStatus::Ok) {
        out.push('\n');
        out.push_str(&render(&layer_diagnostic(layer), source));
    }
    let count = |s| report.count(s);
    out.push_str(&format!(
        "\n{}: {} ok, {} shape-mismatch, {} blob-count-mismatch, {} missing-in-file, {} unused-in-file — {}\n",
        weights.display(),
        count(LayerStatus::Ok),
        count(LayerStatus::ShapeMismatch),
        count(LayerStatus::BlobCountMismatch),
        count(LayerStatus::MissingInFile),
        count(LayerStatus::UnusedInFile),
        if report.loads() { "loads" } else { "does NOT load (Caffe would abort)" }
    ));
    out
}

fn layer_diagnostic(layer: &LayerReport) -> Diagnostic {
    let (code, message, severity_error) = match layer.status {
        LayerStatus::ShapeMismatch => {
            let params: Vec<String> = layer
                .params
                .iter()
                .map(|p| {
                    format!(
                        "param {}: file {} vs net {}",
                        p.index,
                        shape_text(&p.found),
                        shape_text(&p.expected)
                    )
                })
                .collect();
            (
                "lvc::weights::shape_mismatch",
                format!("cannot copy weights: {}", params.join("; ")),
                true,
            )
        }
        LayerStatus::BlobCountMismatch => {
            let count = |f: fn(&lvc_runtime::weights::ParamReport) -> bool| {
                layer.params.iter().filter(|p| f(p)).count()
            };
            (
                "lvc::weights::blob_count",
                format!(
                    "the file has {} blob(s), the net expects {}",
                    count(|p| p.found.is_some()),
                    count(|p| p.expected.is_some())
                ),
                true,
            )
        }
        LayerStatus::MissingInFile => (
            "lvc::weights::missing",
            "not in the weights file: keeps its filler values".to_string(),
            false,
        ),
        LayerStatus::UnusedInFile => (
            "lvc::weights::unused",
            "in the weights file but not in the net: ignored".to_string(),
            false,
        ),
        LayerStatus::Ok => ("lvc::weights::ok", String::new(), false),
    };
    let mut diag = if severity_error {
        Diagnostic::error(code, message)
    } else {
        Diagnostic::warning(code, message)
    };
    diag = diag.in_layer(layer.layer.clone());
    if let Some(span) = layer.span {
        diag = diag.with_label(span, layer.status.as_str());
    }
    if let Some(fix) = &layer.fix {
        diag = diag.with_help(fix.clone());
    }
    diag
}

/// What `lvc weights check --format json` prints.
#[derive(Serialize)]
pub(super) struct JsonReport<'a> {
    model: String,
    weights: String,
    loads: bool,
    layers: Vec<JsonLayer<'a>>,
}

#[derive(Serialize)]
struct JsonLayer<'a> {
    #[serde(flatten)]
    report: &'a LayerReport,
    /// 1-based prototxt line of the layer's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
}

impl<'a> JsonReport<'a> {
    pub(super) fn new(
        report: &'a WeightsReport,
        source: &SourceFile,
        model: &Path,
        weights: &Path,
    ) -> Self {
        JsonReport {
            model: model.display().to_string(),
            weights: weights.display().to_string(),
            loads: report.loads(),
            layers: report
                .layers
                .iter()
                .map(|l| JsonLayer { report: l, line: line_of(l, source) })
                .collect(),
        }
    }
}
