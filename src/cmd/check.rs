//! `lvc check`: parse, validate, wire and shape-check nets; report every
//! problem at once. Exit 0 clean (warnings allowed), 1 model errors, 2 could
//! not run.

use std::path::PathBuf;

use lvc_compiler::memory::MemoryEstimate;
use lvc_workflow::check::{check_compiled, unreadable_file, CheckReport, PhaseMemory, Summary};

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
    let mut report = CheckReport { files: Vec::new() };
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
        let checked = check_compiled(&shown, &source, &compiled, &opts, args.memory);
        match args.format {
            Format::Human => {
                let mut text: String = compiled.diags.iter().map(|d| render(d, &source)).collect();
                text.push_str(&summary_line(&shown, &checked.summary));
                text.push('\n');
                if let Some(m) = &checked.memory {
                    text.push_str(&memory_lines(m));
                }
                if !write_stdout(&text) {
                    return 2;
                }
            }
            Format::Json => report.files.push(checked),
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
