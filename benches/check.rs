//! `make bench-check`: how long `lvc check` spends per net. Times `compile`
//! (load + graph + shapes) of FCN-8s and of every corpus net, against the
//! parse-only and load-only stages of the same files in the same run, and
//! prints a table (min and median over repetitions).
//!
//! Goals: FCN-8s compile < 5 ms; the whole corpus < 1 s.

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

fn main() {
    let opts = CompileOptions::default();
    let load = LoadOptions { lenient: true };
    println!("{:<44} {:>5} {:>12} {:>12}  goal", "case", "reps", "min", "median");

    let fcn8s_path = shared().join("golden/caffe/prototxt/fcn8s_gray_deploy.prototxt");
    if let Some(fcn8s) = read(&fcn8s_path) {
        let reps = 200;
        row("fcn8s: parse only (baseline)", reps, time(reps, || {
            black_box(lvc_grammar::parse(&fcn8s.text).is_ok());
        }), "");
        row("fcn8s: load_net (parse+validate+upgrade)", reps, time(reps, || {
            black_box(load_net(&fcn8s, &load).0.is_some());
        }), "");
        row("fcn8s: compile (load+graph+shapes)", reps, time(reps, || {
            black_box(compile(&fcn8s, &opts).graph.is_some());
        }), "< 5 ms");
    }

    let nets = corpus_nets();
    let reps = 10;
    let label = |what: &str| format!("corpus ({} nets): {what}", nets.len());
    row(&label("parse only (baseline)"), reps, time(reps, || {
        for n in &nets {
            black_box(lvc_grammar::parse(&n.text).is_ok());
        }
    }), "");
    row(&label("load_net"), reps, time(reps, || {
        for n in &nets {
            black_box(load_net(n, &load).0.is_some());
        }
    }), "");
    row(&label("compile"), reps, time(reps, || {
        for n in &nets {
            black_box(compile(n, &CompileOptions { lenient: true, ..opts.clone() }).graph.is_some());
        }
    }), "< 1 s");
}
