//! No import cycles between modules: within each crate of the workspace,
//! the modules (to two levels: `weights`, `ops::conv`, `cmd::train`) and
//! the `use crate::…` / `super::…` paths between them form a DAG. A module
//! and its own ancestors are not counted as a cycle (a parent declares its
//! children; children use the parent's shared items). Test code (`mod
//! tests`, `testing`, `tests.rs`) is left out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: &[&str] =
    &["grammar/src", "compiler/src", "runtime/src", "data/src", "fsio/src", "workflow/src", "src"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file (`ops/conv.rs` → [ops, conv]; `lib.rs` → []).
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap();
    let mut parts: Vec<String> =
        rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    if parts.first().is_some_and(|p| p == "bin") {
        parts.clear();
    }
    parts
}

/// The code before the file's test module, without comments (doc
/// comments name modules they do not import).
fn non_test_code(text: &str) -> String {
    // The first `#[cfg(test)]` on a module (`mod tests`, `pub(super) mod testing`, …).
    let end = text
        .match_indices("#[cfg(test)]\n")
        .map(|(at, m)| at + m.len())
        .find(|&after| text[after..].lines().next().is_some_and(|l| l.contains("mod ")))
        .map_or(text.len(), |after| after - "#[cfg(test)]\n".len());
    text[..end]
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .map(|line| line.split(" // ").next().unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Module paths named after `crate::` or `super::` in `code`, resolved.
fn references(module: &[String], is_mod_file: bool, code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let words: Vec<&str> =
        code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).collect();
    for word in words {
        let (mut base, rest): (Vec<String>, &str) = if let Some(rest) = word.strip_prefix("crate::")
        {
            (Vec::new(), rest)
        } else if word.starts_with("super::") {
            // `super` of a `mod.rs` file is its module's parent; of `x.rs`, x's parent.
            let mut base = module.to_vec();
            let mut rest = word;
            if !is_mod_file || !base.is_empty() {
                base.pop();
            }
            rest = rest.strip_prefix("super::").unwrap();
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
            (base, rest)
        } else {
            continue;
        };
        // Only lower-case path segments name modules.
        for seg in rest.split("::") {
            if seg.is_empty() || !seg.chars().next().unwrap().is_lowercase() {
                break;
            }
            base.push(seg.to_string());
        }
        found.push(base);
    }
    found
}

fn depth2(path: &[String]) -> Vec<String> {
    path.iter().take(2).cloned().collect()
}

fn is_prefix(a: &[String], b: &[String]) -> bool {
    a.len() <= b.len() && b[..a.len()] == *a
}

#[test]
fn no_import_cycles_between_modules() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cycles = Vec::new();
    for krate in CRATES {
        let root = workspace.join(krate);
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        let mut modules: BTreeSet<Vec<String>> = BTreeSet::new();
        let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for file in &files {
            let name = file.file_name().unwrap().to_string_lossy();
            if name == "tests.rs" || name == "testing.rs" || name.ends_with("_tests.rs") {
                continue;
            }
            let module = module_of(&root, file);
            let is_mod_file = matches!(name.as_ref(), "mod.rs" | "lib.rs" | "main.rs");
            let text = std::fs::read_to_string(file).unwrap();
            let from = depth2(&module);
            modules.insert(from.clone());
            for to in references(&module, is_mod_file, &non_test_code(&text)) {
                let to = depth2(&to);
                if to.is_empty() || is_prefix(&to, &from) || is_prefix(&from, &to) {
                    continue;
                }
                edges.entry(from.clone()).or_default().insert(to);
            }
        }
        // Edges only between modules that exist (a path may end in a fn).
        let known: BTreeSet<Vec<String>> = modules.clone();
        let resolve = |m: &Vec<String>| -> Option<Vec<String>> {
            (1..=m.len()).rev().map(|n| m[..n].to_vec()).find(|p| known.contains(p))
        };
        let graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = edges
            .iter()
            .map(|(f, ts)| {
                (
                    f.clone(),
                    ts.iter()
                        .filter_map(resolve)
                        .filter(|t| !is_prefix(t, f) && !is_prefix(f, t))
                        .collect(),
                )
            })
            .collect();
        // Depth-first search for a back edge.
        fn visit(
            node: &Vec<String>,
            graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
            stack: &mut Vec<Vec<String>>,
            done: &mut BTreeSet<Vec<String>>,
            cycles: &mut Vec<String>,
            krate: &str,
        ) {
            if done.contains(node) {
                return;
            }
            if let Some(at) = stack.iter().position(|n| n == node) {
                let names: Vec<String> =
                    stack[at..].iter().chain([node]).map(|m| m.join("::")).collect();
                cycles.push(format!("{krate}: {}", names.join(" → ")));
                return;
            }
            stack.push(node.clone());
            for next in graph.get(node).into_iter().flatten() {
                visit(next, graph, stack, done, cycles, krate);
            }
            stack.pop();
            done.insert(node.clone());
        }
        let mut done = BTreeSet::new();
        for node in graph.keys() {
            visit(node, &graph, &mut Vec::new(), &mut done, &mut cycles, krate);
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}
