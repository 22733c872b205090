//! `lvc check`'s report as a library: one net source compiled with the
//! options given, its diagnostics with their spans as line/column, the
//! inputs and outputs with their shapes and, on request, the memory each
//! phase needs. `lvc check --format json` prints a [`CheckReport`] of these;
//! `lvc serve`'s `POST /api/check` answers with the same document for the
//! text in its editor. Compiling only: nothing here runs a net.

use lvc_compiler::diag::JsonDiagnostic;
use lvc_compiler::ir::{compile, CompileOptions, Compiled, NetGraph};
use lvc_compiler::memory::{self, MemoryEstimate, Mode};
use lvc_compiler::schema::solver::SolverType;
use lvc_compiler::schema::Phase;
use lvc_compiler::{Diagnostic, SourceFile};
use serde::Serialize;

/// The document `lvc check --format json` prints: one entry per file.
#[derive(Serialize, Debug)]
pub struct CheckReport {
    pub files: Vec<CheckedFile>,
}

/// One file's result.
#[derive(Serialize, Debug)]
pub struct CheckedFile {
    pub path: String,
    pub ok: bool,
    pub diagnostics: Vec<JsonDiagnostic>,
    pub summary: Summary,
    /// With `--memory`: per phase, `null` where that phase has errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<PhaseMemory>,
}

/// The memory estimate of each phase.
#[derive(Serialize, Debug)]
pub struct PhaseMemory {
    pub train: Option<MemoryEstimate>,
    pub test: Option<MemoryEstimate>,
}

/// Counts and the net's interface.
#[derive(Serialize, Debug)]
pub struct Summary {
    pub errors: usize,
    pub warnings: usize,
    pub layers: usize,
    pub inputs: Vec<BlobShape>,
    pub outputs: Vec<BlobShape>,
}

/// A net input or output.
#[derive(Serialize, Debug)]
pub struct BlobShape {
    pub name: String,
    /// `null` when the shape could not be inferred.
    pub shape: Option<Vec<i64>>,
}

fn blobs(graph: Option<&NetGraph>, pick: fn(&NetGraph) -> &[usize]) -> Vec<BlobShape> {
    graph.map_or_else(Vec::new, |g| {
        pick(g)
            .iter()
            .map(|&b| {
                let blob = g.blob(b);
                BlobShape {
                    name: blob.name.clone(),
                    shape: blob.shape.as_ref().map(|s| s.0.clone()),
                }
            })
            .collect()
    })
}

/// The summary of a compiled net.
pub fn summary(compiled: &Compiled) -> Summary {
    let graph = compiled.graph.as_ref();
    Summary {
        errors: compiled.diags.error_count(),
        warnings: compiled.diags.warning_count(),
        layers: graph.map_or(0, NetGraph::file_layer_count),
        inputs: blobs(graph, NetGraph::inputs),
        outputs: blobs(graph, NetGraph::outputs),
    }
}

/// The report entry of `source` compiled under `opts`, shown as `path`.
pub fn check_compiled(
    path: &str,
    source: &SourceFile,
    compiled: &Compiled,
    opts: &CompileOptions,
    with_memory: bool,
) -> CheckedFile {
    CheckedFile {
        path: path.to_string(),
        ok: compiled.is_ok(),
        diagnostics: compiled.diags.iter().map(|d| d.to_json(source)).collect(),
        summary: summary(compiled),
        memory: with_memory.then(|| phase_memory(source, opts)),
    }
}

/// Compiles `source` and reports on it (what `POST /api/check` answers).
pub fn check_source(source: &SourceFile, opts: &CompileOptions, with_memory: bool) -> CheckedFile {
    let compiled = compile(source, opts);
    check_compiled(&source.name(), source, &compiled, opts, with_memory)
}

/// The estimate of each phase: TRAIN as trained by SGD (one history blob
/// per learnable parameter, Caffe's default solver), TEST for inference;
/// `None` for a phase whose net has errors.
pub fn phase_memory(source: &SourceFile, opts: &CompileOptions) -> PhaseMemory {
    let estimate = |phase: Phase, mode: Mode| {
        let compiled = compile(source, &CompileOptions { phase, ..opts.clone() });
        match (&compiled.net, &compiled.graph, compiled.is_ok()) {
            (Some(net), Some(graph), true) => Some(memory::estimate(net, graph, mode)),
            _ => None,
        }
    };
    PhaseMemory {
        train: estimate(Phase::Train, Mode::training_with(SolverType::Sgd)),
        test: estimate(Phase::Test, Mode::Inference),
    }
}

/// The entry for a file that could not be read.
pub fn unreadable_file(path: &str, message: String) -> CheckedFile {
    let diag = Diagnostic::error("lvc::io::read", message)
        .with_help("check the path and the file's permissions");
    let empty = SourceFile::new(path, "");
    CheckedFile {
        path: path.to_string(),
        ok: false,
        diagnostics: vec![diag.to_json(&empty)],
        summary: Summary {
            errors: 1,
            warnings: 0,
            layers: 0,
            inputs: Vec::new(),
            outputs: Vec::new(),
        },
        memory: None,
    }
}
