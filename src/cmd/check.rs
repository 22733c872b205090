//! `lvc check`: parse, validate, wire and shape-check nets; report every
//! problem at once. Exit 0 clean (warnings allowed), 1 model errors, 2 could
//! not run.

use std::path::PathBuf;

use lvc_compiler::diag::JsonDiagnostic;
use lvc_compiler::ir::{compile, CompileOptions, Compiled, NetGraph};
use lvc_compiler::memory::{self, MemoryEstimate, Mode};
use lvc_compiler::schema::solver::SolverType;
use lvc_compiler::schema::Phase;
use lvc_compiler::{Diagnostic, SourceFile};
use serde::Serialize;

use super::netargs::{compile_file, render, write_stdout, NetArgs};

pub use super::OutputFormat as Format;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc check models/fcn_alexnet.prototxt
  lvc check --phase train --input-shape data=1,3,500,500 train.prototxt
  lvc check --stage deploy deploy.prototxt
  lvc check --format json nets/*.prototxt
  lvc check --memory --input-shape data=8,1,256,256 \\
      --input-shape label=8,1,256,256 models/demo.prototxt

--memory estimates, for the TRAIN and the TEST phase of each file (at the batch its inputs
have), the bytes of parameters, activations, gradients, solver history and convolution
workspace: TRAIN as trained (with SGD's one history blob per learnable parameter; Adam and
AdaDelta keep two), TEST as run for inference. It is what lvc's runtime checks against the
memory available before it allocates a net: an approximation meant to catch the impossible,
a lower bound rather than a profile.

Exit status: 0 no errors (warnings allowed), 1 a net has errors, 2 a file could not be read or a flag is invalid.")]
pub struct CheckArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Output: miette diagnostics and a summary line per file, or one JSON document.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Also estimate the memory each phase needs (TRAIN training, TEST inference).
    #[arg(long)]
    pub memory: bool,
    /// Net prototxt files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct JsonReport {
    files: Vec<JsonFile>,
}

#[derive(Serialize)]
struct JsonFile {
    path: String,
    ok: bool,
    diagnostics: Vec<JsonDiagnostic>,
    summary: Summary,
    /// With `--memory`: per phase, `null` where that phase has errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    memory: Option<JsonMemory>,
}

#[derive(Serialize)]
struct JsonMemory {
    train: Option<MemoryEstimate>,
    test: Option<MemoryEstimate>,
}

#[derive(Serialize)]
struct Summary {
    errors: usize,
    warnings: usize,
    layers: usize,
    inputs: Vec<JsonBlob>,
    outputs: Vec<JsonBlob>,
}

#[derive(Serialize)]
struct JsonBlob {
    name: String,
    /// `null` when the shape could not be inferred.
    shape: Option<Vec<i64>>,
}

fn blobs(graph: Option<&NetGraph>, pick: fn(&NetGraph) -> &[usize]) -> Vec<JsonBlob> {
    graph.map_or_else(Vec::new, |g| {
        pick(g)
            .iter()
            .map(|&b| {
                let blob = g.blob(b);
                JsonBlob {
                    name: blob.name.clone(),
                    shape: blob.shape.as_ref().map(|s| s.0.clone()),
                }
            })
            .collect()
    })
}

fn summary(compiled: &Compiled) -> Summary {
    let graph = compiled.graph.as_ref();
    Summary {
        errors: compiled.diags.error_count(),
        warnings: compiled.diags.warning_count(),
        layers: graph.map_or(0, NetGraph::file_layer_count),
        inputs: blobs(graph, NetGraph::inputs),
        outputs: blobs(graph, NetGraph::outputs),
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn summary_line(path: &str, s: &Summary) -> String {
    format!(
        "{path}: {}, {}, {}",
        plural(s.errors, "error"),
        plural(s.warnings, "warning"),
        plural(s.layers, "layer")
    )
}

pub fn run(args: CheckArgs) -> u8 {
    let opts = args.net.options();
    let mut unreadable = false;
    let mut errors = false;
    let mut report = JsonReport { files: Vec::new() };
    for path in &args.files {
        let shown = path.display().to_string();
        let (source, compiled) = match compile_file(path, &opts) {
            Ok(done) => done,
            Err(message) => {
                unreadable = true;
                match args.format {
                    Format::Human => errln!("error[lvc::io::read]: {message}"),
                    Format::Json => report.files.push(unreadable_file(&shown, message)),
                }
                continue;
            }
        };
        errors |= !compiled.is_ok();
        let summary = summary(&compiled);
        let memory = args.memory.then(|| phase_memory(&source, &opts));
        match args.format {
            Format::Human => {
                let mut text: String = compiled.diags.iter().map(|d| render(d, &source)).collect();
                text.push_str(&summary_line(&shown, &summary));
                text.push('\n');
                if let Some(m) = &memory {
                    text.push_str(&memory_lines(m));
                }
                if !write_stdout(&text) {
                    return 2;
                }
            }
            Format::Json => report.files.push(JsonFile {
                path: shown,
                ok: compiled.is_ok(),
                diagnostics: compiled.diags.iter().map(|d| d.to_json(&source)).collect(),
                summary,
                memory,
            }),
        }
    }
    if args.format == Format::Json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => {
                if !write_stdout(&format!("{text}\n")) {
                    return 2;
                }
            }
            Err(e) => {
                errln!("error[lvc::io::json]: cannot write the report: {e}");
                return 2;
            }
        }
    }
    if unreadable {
        2
    } else if errors {
        1
    } else {
        0
    }
}

/// The estimate of each phase: TRAIN as trained by SGD (one history blob
/// per learnable parameter, Caffe's default solver), TEST for inference;
/// `None` for a phase whose net has errors.
fn phase_memory(source: &SourceFile, opts: &CompileOptions) -> JsonMemory {
    let estimate = |phase: Phase, mode: Mode| {
        let compiled = compile(source, &CompileOptions { phase, ..opts.clone() });
        match (&compiled.net, &compiled.graph, compiled.is_ok()) {
            (Some(net), Some(graph), true) => Some(memory::estimate(net, graph, mode)),
            _ => None,
        }
    };
    JsonMemory {
        train: estimate(Phase::Train, Mode::training_with(SolverType::Sgd)),
        test: estimate(Phase::Test, Mode::Inference),
    }
}

/// `  memory, TRAIN (training, SGD): 1.2 GB (parameters …)` per phase.
fn memory_lines(m: &JsonMemory) -> String {
    let line = |phase: &str, how: &str, e: &Option<MemoryEstimate>| {
        match e {
        Some(e) => format!("  memory, {phase} ({how}): {e}\n"),
        None => format!("  memory, {phase}: not estimated, the net has errors in this phase (see `lvc check --phase {}`)\n", phase.to_lowercase()),
    }
    };
    line("TRAIN", "training with SGD", &m.train) + &line("TEST", "inference", &m.test)
}

/// A JSON entry for a file that could not be read.
fn unreadable_file(path: &str, message: String) -> JsonFile {
    let diag = Diagnostic::error("lvc::io::read", message)
        .with_help("check the path and the file's permissions");
    let empty = SourceFile::new(path, "");
    JsonFile {
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
