//! Helpers shared by the compiler's integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;

use lvc_compiler::{Diagnostics, SourceFile};

/// `/work/shared` (the read-only corpus and golden files).
pub fn shared_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared"))
}

/// The Caffe prototxt corpus root (`corpus/prototxt`).
pub fn corpus_dir() -> PathBuf {
    shared_dir().join("corpus")
}

/// One corpus file as listed in `manifest.tsv`.
#[derive(Debug, Clone)]
pub struct CorpusEntry {
    /// Path relative to `corpus/`.
    pub path: String,
    /// `net`, `solver` or `other`.
    pub kind: String,
    /// `current`, `V1`, `V0`, `-`.
    pub format: String,
    /// Layer entries written in the file (before any upgrade).
    pub n_layers: usize,
    /// `-`, `input_dim`, `input_shape`, `Input` …
    pub input_style: String,
    /// `ok` or the reason protobuf's strict parse failed.
    pub strict_bvlc_parse: String,
}

pub fn corpus_manifest() -> Vec<CorpusEntry> {
    let text = std::fs::read_to_string(corpus_dir().join("manifest.tsv"))
        .expect("corpus manifest is readable");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("manifest has a header").split('\t').collect();
    let col = |name: &str| {
        header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("manifest column {name}"))
    };
    let (path, kind, format, strict) =
        (col("path"), col("kind"), col("format"), col("strict_bvlc_parse"));
    let (n_layers, input_style) = (col("n_layers"), col("input_style"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            CorpusEntry {
                path: cells[path].to_string(),
                kind: cells[kind].to_string(),
                format: cells[format].to_string(),
                n_layers: cells[n_layers].parse().unwrap_or_else(|_| panic!("n_layers in {l}")),
                input_style: cells[input_style].to_string(),
                strict_bvlc_parse: cells[strict].to_string(),
            }
        })
        .collect()
}

pub fn read_corpus_file(rel: &str) -> SourceFile {
    let path = corpus_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Show the corpus-relative path in rendered diagnostics so snapshots do
    // not depend on where the checkout lives.
    SourceFile::new(rel, text)
}

/// Renders diagnostics the way snapshots record them: miette's graphical
/// report, unicode, no colour, one report after another.
pub fn render(diags: &Diagnostics, source: &SourceFile) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    let mut out = String::new();
    for diag in diags.iter() {
        let rendered = diag.render(source);
        handler.render_report(&mut out, &rendered).expect("rendering into a String cannot fail");
        out.push('\n');
    }
    out
}

/// `code: message` per diagnostic, for compact assertions.
pub fn codes(diags: &Diagnostics) -> Vec<String> {
    diags.iter().map(|d| format!("{}: {}", d.code, d.message)).collect()
}
