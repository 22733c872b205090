//! Every prototxt in the shared corpus and the Caffe golden set parses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::path::{Path, PathBuf};

fn prototxt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            prototxt_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn parse_all(dir: &str, keep: impl Fn(&Path) -> bool) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files = Vec::new();
    prototxt_files(&root, &mut files);
    files.retain(|p| keep(p));
    files.sort();
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        match lvc_grammar::parse(&text) {
            Ok(net) => assert!(!net.fields.is_empty(), "{} parsed to nothing", path.display()),
            Err(err) => failures.push(format!("{}: {} at {:?}", path.display(), err, err.span())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    files.len()
}

#[test]
fn whole_corpus_parses() {
    let count = parse_all("../../shared/corpus/prototxt", |_| true);
    eprintln!("parsed {count} corpus files");
    assert_eq!(count, 207, "the corpus should hold 207 files");
}

#[test]
fn caffe_golden_prototxts_parse() {
    // `errors/` holds nets that are wrong for Caffe's net builder (a typo in a
    // field name, an unknown bottom …) but are all valid text format.
    let count = parse_all("../../shared/golden/caffe/prototxt", |p| {
        p.extension().is_some_and(|e| e == "prototxt")
    });
    eprintln!("parsed {count} golden prototxts");
    assert_eq!(count, 24);
}
