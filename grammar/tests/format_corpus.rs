//! `lvc fmt` over every prototxt of the shared corpus, the Caffe golden set
//! and our models: the output parses to the same tree as the input (names
//! and values; spans aside), keeps every comment's text in order, and
//! formatting it again changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::path::{Path, PathBuf};

use lvc_grammar::{format, parse, FormatOptions, Message, ScalarKind, Value};

fn prototxt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
    {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            prototxt_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "prototxt") {
            out.push(path);
        }
    }
}

/// Where two trees differ, as a field path; `None` when they are the same.
fn difference(a: &Message, b: &Message, at: &str) -> Option<String> {
    if a.fields.len() != b.fields.len() {
        return Some(format!("{at}: {} fields against {}", a.fields.len(), b.fields.len()));
    }
    for (i, (fa, fb)) in a.fields.iter().zip(&b.fields).enumerate() {
        let here = format!("{at}/{}[{i}]", fa.name);
        if fa.name != fb.name {
            return Some(format!("{here}: named {} after formatting", fb.name));
        }
        match (&fa.value, &fb.value) {
            (Value::Message(ma), Value::Message(mb)) => {
                if let Some(d) = difference(ma, mb, &here) {
                    return Some(d);
                }
            }
            (Value::Scalar(sa), Value::Scalar(sb)) => {
                let same = match (&sa.kind, &sb.kind) {
                    (ScalarKind::Float(x), ScalarKind::Float(y)) => x.to_bits() == y.to_bits(),
                    (x, y) => x == y,
                };
                if !same {
                    return Some(format!("{here}: {:?} became {:?}", sa.kind, sb.kind));
                }
            }
            _ => return Some(format!("{here}: a message and a scalar")),
        }
    }
    None
}

/// The text of every `#` comment, in order (outside strings).
fn comment_texts(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' | '\'' => {
                while let Some((_, d)) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c || d == '\n' {
                        break;
                    }
                }
            }
            '#' => {
                let end = text[i..].find(['\n', '\r']).map_or(text.len(), |n| i + n);
                found.push(text[i..end].trim_end().to_string());
                while chars.peek().is_some_and(|&(j, _)| j < end) {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    found
}

fn round_trip(dir: &str) -> usize {
    let mut files = Vec::new();
    prototxt_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut files);
    files.sort();
    let options = FormatOptions::default();
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let Ok(before) = parse(&text) else { continue };
        let out = format(&text, &options).unwrap();
        let problem = match parse(&out) {
            Err(e) => Some(format!("the output does not parse: {e}")),
            Ok(after) => difference(&before, &after, ""),
        }
        .or_else(|| {
            (comment_texts(&text) != comment_texts(&out)).then(|| "comments changed".to_string())
        })
        .or_else(|| (format(&out, &options).unwrap() != out).then(|| "not idempotent".to_string()));
        if let Some(p) = problem {
            failures.push(format!("{}: {p}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    files.len()
}

#[test]
fn the_whole_corpus_formats_to_the_same_tree_with_its_comments_and_is_a_fixed_point() {
    assert_eq!(round_trip("../../shared/corpus/prototxt"), 207);
}

#[test]
fn the_golden_nets_and_our_models_format_to_the_same_tree() {
    assert!(round_trip("../../shared/golden/caffe/prototxt") >= 24);
    assert!(round_trip("../models") >= 4);
}
