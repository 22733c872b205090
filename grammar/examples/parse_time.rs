//! Prints how long `lvc_grammar::parse` takes on a few real nets.
//!
//! Run: `cargo run --release -p lvc-grammar --example parse_time [FILE…]`
//! (without arguments: FCN-8s and ResNet-152 from the shared corpus).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::time::{Duration, Instant};

const DEFAULT_FILES: [&str; 2] = [
    "shelhamer__fcn.berkeleyvision.org/voc-fcn8s/train.prototxt",
    "KaimingHe__deep-residual-networks/prototxt/ResNet-152-deploy.prototxt",
];

fn main() {
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus/prototxt/");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let files: Vec<String> = if args.is_empty() {
        DEFAULT_FILES.iter().map(|f| format!("{corpus}{f}")).collect()
    } else {
        args
    };
    println!(
        "{:<40} {:>9} {:>7} {:>11} {:>11} {:>9}",
        "file", "bytes", "fields", "min", "median", "MB/s"
    );
    for path in &files {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) => {
                eprintln!("{path}: {err}");
                std::process::exit(1);
            }
        };
        let fields = match lvc_grammar::parse(&text) {
            Ok(tree) => count_fields(&tree),
            Err(err) => {
                eprintln!("{path}: {err} at {:?}", err.span());
                std::process::exit(1);
            }
        };
        let mut times: Vec<Duration> = (0..200)
            .map(|_| {
                let start = Instant::now();
                let parsed = lvc_grammar::parse(std::hint::black_box(&text));
                let elapsed = start.elapsed();
                std::hint::black_box(parsed).ok();
                elapsed
            })
            .collect();
        times.sort();
        let median = times[times.len() / 2];
        let name = path
            .rsplit('/')
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("/");
        println!(
            "{:<40} {:>9} {:>7} {:>11.3?} {:>11.3?} {:>9.1}",
            name,
            text.len(),
            fields,
            times[0],
            median,
            text.len() as f64 / median.as_secs_f64() / 1e6
        );
    }
}

fn count_fields(message: &lvc_grammar::Message) -> usize {
    message.fields.iter().map(|f| 1 + f.value.as_message().map_or(0, count_fields)).sum()
}
