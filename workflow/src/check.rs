//! `lvc check`'s report as a library: one net source compiled with the
//! options given, its diagnostics with their spans as line/column, the
//! inputs and outputs with their shapes and, on request, the memory each
//! phase needs. A solver file ([`check_path`]) is an entry of its own (its
//! settings) followed by one entry per net it names, each checked in the
//! state the solver builds it in. `lvc check --format json` prints a [`CheckReport`] of these;
//! `lvc serve`'s `POST /api/check` answers with the same document for the
//! text in its editor. Compiling only: nothing here runs a net.

use std::path::Path;

use lvc_compiler::diag::{Diagnostics, JsonDiagnostic};
use lvc_compiler::ir::{compile, CompileOptions, Compiled, NetGraph};
use lvc_compiler::memory::{self, MemoryEstimate, Mode};
use lvc_compiler::schema::kind::{classify_text, DocumentKind};
use lvc_compiler::schema::solver::{NetSource, SolverNet, SolverType};
use lvc_compiler::schema::{load_solver_nets, LoadOptions, NetState, Phase};
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
    /// `"solver"` for a solver file (its `summary` counts no layers);
    /// absent for a net.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// For a net checked because a solver names it: which solver, field and
    /// state; absent for a file given directly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_for: Option<NetUse>,
}

/// The solver that names a net, and the state it builds the net in.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct NetUse {
    pub solver: String,
    /// `net`, `train_net`, `test_net`, `net_param`, …
    pub field: &'static str,
    /// `TRAIN` or `TEST`.
    pub phase: &'static str,
    pub stages: Vec<String>,
    pub level: i64,
}

impl NetUse {
    fn of(solver: &str, net: &SolverNet) -> Self {
        NetUse {
            solver: solver.to_string(),
            field: net.field,
            phase: match net.state.phase {
                Phase::Train => "TRAIN",
                Phase::Test => "TEST",
            },
            stages: net.state.stages.clone(),
            level: net.state.level,
        }
    }
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
        kind: None,
        checked_for: None,
    }
}

/// One report entry with what rendering it for people needs: the text its
/// spans point into and its diagnostics.
#[derive(Debug)]
pub struct FileCheck {
    pub source: SourceFile,
    pub diags: Diagnostics,
    pub entry: CheckedFile,
}

/// Checks the file at `path`: a net as [`check_compiled`] reports it; a
/// solver as its own entry (settings, and a missing net file at the span
/// naming it) then one entry per net it names, resolved as `lvc train`
/// resolves them and compiled in the solver's state for it (phase, stages,
/// level; `opts` gives the input shapes and leniency), each distinct net
/// and state once. `Err` when the file itself cannot be read.
pub fn check_path(
    path: &Path,
    opts: &CompileOptions,
    with_memory: bool,
) -> Result<Vec<FileCheck>, String> {
    let source =
        SourceFile::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let shown = path.display().to_string();
    if classify_text(&source.text) != Some(DocumentKind::Solver) {
        let compiled = compile(&source, opts);
        let entry = check_compiled(&shown, &source, &compiled, opts, with_memory);
        return Ok(vec![FileCheck { source, diags: compiled.diags, entry }]);
    }
    Ok(check_solver(&shown, source, opts, with_memory))
}

fn check_solver(
    shown: &str,
    source: SourceFile,
    opts: &CompileOptions,
    with_memory: bool,
) -> Vec<FileCheck> {
    let (_, nets, mut diags) = load_solver_nets(&source, &LoadOptions { lenient: opts.lenient });
    let mut checked = Vec::new();
    let mut seen: Vec<(String, NetState)> = Vec::new();
    let mut missing = Vec::new();
    for net in &nets {
        let net_opts = CompileOptions {
            phase: net.state.phase,
            stages: net.state.stages.clone(),
            level: net.state.level,
            ..opts.clone()
        };
        let key = match &net.source {
            NetSource::File(file) => match file.found() {
                Some(found) => found.display().to_string(),
                None => {
                    if !missing.contains(&file.written.span) {
                        missing.push(file.written.span);
                        diags.push(file.not_found(net.field));
                    }
                    continue;
                }
            },
            NetSource::Inline(_) => format!("inline {}", net.field),
        };
        if seen.iter().any(|(k, s)| *k == key && *s == net.state) {
            continue;
        }
        seen.push((key.clone(), net.state.clone()));
        let mut done = match &net.source {
            NetSource::File(file) => {
                let Ok(net_source) = SourceFile::read(Path::new(&key)) else {
                    diags.push(
                        Diagnostic::error("lvc::io::read", format!("cannot read net file {key}"))
                            .with_label(file.written.span, "named here")
                            .with_help("check the file's permissions"),
                    );
                    continue;
                };
                let compiled = compile(&net_source, &net_opts);
                let entry = check_compiled(&key, &net_source, &compiled, &net_opts, with_memory);
                FileCheck { source: net_source, diags: compiled.diags, entry }
            }
            NetSource::Inline(def) => {
                // Its spans are the solver's; the schema was checked with it.
                let mut net_diags = Diagnostics::new();
                let graph = NetGraph::build(def, &net_opts, &mut net_diags);
                let compiled =
                    Compiled { net: Some((**def).clone()), graph: Some(graph), diags: net_diags };
                let entry = check_compiled(shown, &source, &compiled, &net_opts, false);
                FileCheck { source: source.clone(), diags: compiled.diags, entry }
            }
        };
        done.entry.checked_for = Some(NetUse::of(shown, net));
        checked.push(done);
    }
    let entry = CheckedFile {
        path: shown.to_string(),
        ok: !diags.has_errors(),
        diagnostics: diags.iter().map(|d| d.to_json(&source)).collect(),
        summary: Summary {
            errors: diags.error_count(),
            warnings: diags.warning_count(),
            layers: 0,
            inputs: Vec::new(),
            outputs: Vec::new(),
        },
        memory: None,
        kind: Some("solver"),
        checked_for: None,
    };
    let mut all = vec![FileCheck { source, diags, entry }];
    all.extend(checked);
    all
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
        kind: None,
        checked_for: None,
    }
}
