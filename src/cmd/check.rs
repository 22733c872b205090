//! `lvc check`: parse, validate, wire and shape-check nets, and check
//! solvers with the nets they name; report every problem at once. Exit 0 clean (warnings allowed), 1 model errors, 2 could
//! not run.

use std::path::{Path, PathBuf};

use lvc_compiler::memory::MemoryEstimate;
use lvc_workflow::check::{
    check_path, unreadable_file, CheckReport, CheckedFile, FileCheck, PhaseMemory,
};

use super::netargs::{render, write_stdout, NetArgs};

pub use super::OutputFormat as Format;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc check models/fcn_alexnet.prototxt
  lvc check --phase train --input-shape data=1,3,500,500 train.prototxt
  lvc check --stage deploy deploy.prototxt
  lvc check --format json nets/*.prototxt
  lvc check models/demo_solver.prototxt      (the solver, then each net it names)
  lvc check models/                          (every .prototxt under the folder)
  lvc check --memory --input-shape data=8,1,256,256 \\
      --input-shape label=8,1,256,256 models/demo.prototxt

--memory estimates, for the TRAIN and the TEST phase of each file (at the batch its inputs
have), the bytes of parameters, activations, gradients, solver history and convolution
workspace: TRAIN as trained (with SGD's one history blob per learnable parameter; Adam and
AdaDelta keep two), TEST as run for inference. It is what lvc's runtime checks against the
memory available before it allocates a net: an approximation meant to catch the impossible,
a lower bound rather than a profile.

A solver file is checked as a SolverParameter (fields, type, lr_policy and the settings the
policy needs), then each net it names is checked in the state the solver builds it in (the
train net in TRAIN with train_state, each test net in TEST with its test_state; --phase,
--stage and --level do not apply to them). Net paths resolve as `lvc train` resolves them:
next to the solver file first, then from the current directory.

Exit status: 0 no errors (warnings allowed), 1 a net or solver has errors, 2 a file could not be read or a flag is invalid.")]
pub struct CheckArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Output: miette diagnostics and a summary line per file, or one JSON document.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Also estimate the memory each phase needs (TRAIN training, TEST inference).
    #[arg(long)]
    pub memory: bool,
    /// Net or solver prototxt files, or folders (every `.prototxt` under
    /// them, sorted; symbolic links are not followed).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `net.prototxt: 0 errors, 1 warning, 12 layers`; a solver says so, and a
/// net checked for a solver says for which and in what state.
fn summary_line(entry: &CheckedFile) -> String {
    let s = &entry.summary;
    let counts = format!("{}, {}", plural(s.errors, "error"), plural(s.warnings, "warning"));
    let path = &entry.path;
    if entry.kind == Some("solver") {
        return format!("{path}: {counts} (solver)");
    }
    let layers = plural(s.layers, "layer");
    match &entry.checked_for {
        None => format!("{path}: {counts}, {layers}"),
        Some(u) => {
            let stages: String = u.stages.iter().map(|st| format!(", stage {st}")).collect();
            let level = if u.level == 0 { String::new() } else { format!(", level {}", u.level) };
            format!(
                "{path}: {counts}, {layers} (`{}` of {}, {}{stages}{level})",
                u.field, u.solver, u.phase
            )
        }
    }
}

pub fn run(args: CheckArgs) -> u8 {
    let opts = args.net.options();
    let mut unreadable = false;
    let mut errors = false;
    let mut report = CheckReport { files: Vec::new() };
    for path in expand(&args.files) {
        let checked = path.and_then(|p| {
            check_path(&p, &opts, args.memory).map_err(|m| (p.display().to_string(), m))
        });
        let checks = match checked {
            Ok(checks) => checks,
            Err((shown, message)) => {
                unreadable = true;
                match args.format {
                    Format::Human => errln!("error[lvc::io::read]: {message}"),
                    Format::Json => report.files.push(unreadable_file(&shown, message)),
                }
                continue;
            }
        };
        for FileCheck { source, diags, entry } in checks {
            errors |= !entry.ok;
            match args.format {
                Format::Human => {
                    let mut text: String = diags.iter().map(|d| render(d, &source)).collect();
                    text.push_str(&summary_line(&entry));
                    text.push('\n');
                    if let Some(m) = &entry.memory {
                        text.push_str(&memory_lines(m));
                    }
                    if !write_stdout(&text) {
                        return 2;
                    }
                }
                Format::Json => report.files.push(entry),
            }
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

/// The files to check, in order: each file argument as given, each folder
/// as every `.prototxt` under it (recursively, sorted by path, symbolic
/// links not followed). `Err` for a folder that cannot be listed.
fn expand(args: &[PathBuf]) -> Vec<Listed> {
    let mut out = Vec::new();
    for arg in args {
        if arg.is_dir() {
            let mut found = Vec::new();
            walk(arg, &mut found, &mut out);
            found.sort();
            out.extend(found.into_iter().map(Ok));
        } else {
            out.push(Ok(arg.clone()));
        }
    }
    out
}

/// A file to check, or a folder that could not be listed (shown, why).
type Listed = Result<PathBuf, (String, String)>;

fn walk(dir: &Path, found: &mut Vec<PathBuf>, errors: &mut Vec<Listed>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            let shown = dir.display().to_string();
            errors.push(Err((shown.clone(), format!("cannot list {shown}: {e}"))));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // `file_type` does not follow symbolic links: a link is skipped.
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, found, errors),
            Ok(t) if t.is_file() && path.extension().is_some_and(|e| e == "prototxt") => {
                found.push(path);
            }
            _ => {}
        }
    }
}
/// `  memory, TRAIN (training, SGD): 1.2 GB (parameters …)` per phase.
fn memory_lines(m: &PhaseMemory) -> String {
    let line = |phase: &str, how: &str, e: &Option<MemoryEstimate>| {
        match e {
        Some(e) => format!("  memory, {phase} ({how}): {e}\n"),
        None => format!("  memory, {phase}: not estimated, the net has errors in this phase (see `lvc check --phase {}`)\n", phase.to_lowercase()),
    }
    };
    line("TRAIN", "training with SGD", &m.train) + &line("TEST", "inference", &m.test)
}
