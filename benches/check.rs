//! `make bench-check`: how long `lvc check` spends per net. Times `compile`
//! (load + graph + shapes) of FCN-8s and of every corpus net, against the
//! parse-only and load-only stages of the same files in the same run, and
//! prints a table (min and median over repetitions).
//!
//! Goals: FCN-8s compile < 5 ms; the whole corpus < 1 s.
//!
//! Then files with N errors (N convolutions whose group does not divide
//! num_output, 1k to 50k): compile, rendering every diagnostic as `lvc
//! check` does and the JSON report, against rendering with miette's own
//! reader of the whole text (what lvc did before; quadratic, so only up to
//! 4k) in the same run. Goal: linear, 8k errors well under a second.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lvc_compiler::ir::{compile, CompileOptions};
use lvc_compiler::schema::{load_net, LoadOptions};
use lvc_compiler::SourceFile;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

fn read(path: &Path) -> Option<SourceFile> {
    match SourceFile::read(path) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("skipping {}: {e}", path.display());
            None
        }
    }
}

/// Every net of the corpus manifest (solvers and other messages left out).
fn corpus_nets() -> Vec<SourceFile> {
    let corpus = shared().join("corpus");
    let Ok(manifest) = std::fs::read_to_string(corpus.join("manifest.tsv")) else {
        eprintln!("no corpus manifest under {}", corpus.display());
        return Vec::new();
    };
    manifest
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cells = line.split('\t');
            let (path, kind) = (cells.next()?, cells.next()?);
            (kind == "net").then(|| corpus.join(path))
        })
        .filter_map(|p| read(&p))
        .collect()
}

/// Runs `work` `reps` times; (min, median).
fn time(reps: usize, mut work: impl FnMut()) -> (Duration, Duration) {
    let mut samples: Vec<Duration> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect();
    samples.sort();
    (samples[0], samples[reps / 2])
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn row(case: &str, reps: usize, (min, median): (Duration, Duration), goal: &str) {
    println!("{case:<44} {reps:>5} {:>12} {:>12}  {goal}", ms(min), ms(median));
}

/// A net with `n` layers that each have one error.
fn many_errors(n: usize) -> SourceFile {
    let mut text = String::from("layer { name: \"data\" type: \"Input\" top: \"data\" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n");
    for i in 0..n {
        text.push_str(&format!(
            "layer {{ name: \"c{i}\" type: \"Convolution\" bottom: \"data\" top: \"c{i}\" convolution_param {{ num_output: 4 kernel_size: 3 group: 3 }} }}\n"
        ));
    }
    SourceFile::new(format!("errors_{n}.prototxt"), text)
}

fn handler() -> miette::GraphicalReportHandler {
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false)
}

/// A diagnostic rendered from miette's own reader of the whole text.
struct WholeText<'a> {
    diag: lvc_compiler::diag::Rendered<'a>,
    source: miette::NamedSource<std::sync::Arc<str>>,
}

impl std::fmt::Debug for WholeText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.diag, f)
    }
}
impl std::fmt::Display for WholeText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.diag, f)
    }
}
impl std::error::Error for WholeText<'_> {}
impl miette::Diagnostic for WholeText<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.diag.code()
    }
    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        self.diag.help()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.diag.labels()
    }
}

fn error_rows() {
    for n in [1_000, 2_000, 4_000, 8_000, 50_000] {
        let source = many_errors(n);
        let reps = if n > 8_000 { 3 } else { 5 };
        let compiled = compile(&source, &CompileOptions::default());
        assert_eq!(compiled.diags.error_count(), n);
        row(
            &format!("{n} errors: compile"),
            reps,
            time(reps, || {
                black_box(compile(&source, &CompileOptions::default()).diags.len());
            }),
            "",
        );
        let h = handler();
        row(
            &format!("{n} errors: render (human)"),
            reps,
            time(reps, || {
                let mut out = String::new();
                for d in compiled.diags.iter() {
                    // Writing to a String cannot fail; miette fails only on a
                    // span outside the source, a bug in lvc that must stop the bench.
                    h.render_report(&mut out, &d.render(&source)).expect("render");
                }
                black_box(out.len());
            }),
            if n == 8_000 { "< 1 s" } else { "" },
        );
        row(
            &format!("{n} errors: JSON"),
            reps,
            time(reps, || {
                let json: Vec<_> = compiled.diags.iter().map(|d| d.to_json(&source)).collect();
                // JSON values with string keys always serialise.
                black_box(serde_json::to_string_pretty(&json).expect("JSON").len());
            }),
            if n == 8_000 { "< 1 s" } else { "" },
        );
        if n <= 4_000 {
            row(
                &format!("{n} errors: render, miette's whole-text reader (before)"),
                1,
                time(1, || {
                    let mut out = String::new();
                    for d in compiled.diags.iter() {
                        let whole =
                            WholeText { diag: d.render(&source), source: source.named_source() };
                        // As above: only a span outside the source fails.
                        h.render_report(&mut out, &whole).expect("render");
                    }
                    black_box(out.len());
                }),
                "baseline",
            );
        }
    }
}

fn main() {
    let opts = CompileOptions::default();
    let load = LoadOptions { lenient: true };
    println!("{:<44} {:>5} {:>12} {:>12}  goal", "case", "reps", "min", "median");

    let fcn8s_path = shared().join("golden/caffe/prototxt/fcn8s_gray_deploy.prototxt");
    if let Some(fcn8s) = read(&fcn8s_path) {
        let reps = 200;
        row(
            "fcn8s: parse only (baseline)",
            reps,
            time(reps, || {
                black_box(lvc_grammar::parse(&fcn8s.text).is_ok());
            }),
            "",
        );
        row(
            "fcn8s: load_net (parse+validate+upgrade)",
            reps,
            time(reps, || {
                black_box(load_net(&fcn8s, &load).0.is_some());
            }),
            "",
        );
        row(
            "fcn8s: compile (load+graph+shapes)",
            reps,
            time(reps, || {
                black_box(compile(&fcn8s, &opts).graph.is_some());
            }),
            "< 5 ms",
        );
    }

    let nets = corpus_nets();
    let reps = 10;
    let label = |what: &str| format!("corpus ({} nets): {what}", nets.len());
    row(
        &label("parse only (baseline)"),
        reps,
        time(reps, || {
            for n in &nets {
                black_box(lvc_grammar::parse(&n.text).is_ok());
            }
        }),
        "",
    );
    row(
        &label("load_net"),
        reps,
        time(reps, || {
            for n in &nets {
                black_box(load_net(n, &load).0.is_some());
            }
        }),
        "",
    );
    row(
        &label("compile"),
        reps,
        time(reps, || {
            for n in &nets {
                black_box(
                    compile(n, &CompileOptions { lenient: true, ..opts.clone() }).graph.is_some(),
                );
            }
        }),
        "< 1 s",
    );

    error_rows();
}
