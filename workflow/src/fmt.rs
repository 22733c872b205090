//! `lvc fmt`'s work on one file, for the command line and the editor server:
//! the canonical layout (`lvc_grammar::format`), or with `upgrade` the
//! V0/V1 net Caffe's upgrade makes of it, written in that layout.

use lvc_compiler::diag::{Diagnostic, Diagnostics};
use lvc_compiler::schema::{load_net_tree, parse_error_diagnostics, LoadOptions};
use lvc_compiler::SourceFile;
use lvc_grammar::FormatOptions;

/// How to write a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    pub options: FormatOptions,
    /// Rewrite V0/V1 nets (`layers {}`, `input_dim`) in the current form.
    pub upgrade: bool,
}

/// `source` as `layout` writes it, or the diagnostics that prevent it: a
/// parse error, or (with `upgrade`) a net with errors, whose rejected fields
/// an upgrade would drop. Files that are not nets (solvers, label maps) are
/// only laid out.
pub fn format_source(source: &SourceFile, layout: &Layout) -> Result<String, Diagnostics> {
    let formatted = lvc_grammar::format(&source.text, &layout.options)
        .map_err(|e| parse_error_diagnostics(&e))?;
    if !layout.upgrade {
        return Ok(formatted);
    }
    let (upgraded, mut diags) = load_net_tree(source, &LoadOptions::default());
    if diags.iter().any(|d| d.code == "lvc::schema::not_a_net") {
        return Ok(formatted);
    }
    let Some((tree, what)) = upgraded else {
        diags.push(
            Diagnostic::error(
                "lvc::fmt::upgrade",
                format!("{} has the errors above, so it was not upgraded", source.name()),
            )
            .with_help("fix them (a field of a forked Caffe would be lost), or format the file without --upgrade"),
        );
        return Err(diags);
    };
    if !what.changed_anything() {
        return Ok(formatted);
    }
    Ok(lvc_grammar::format_tree(&source.text, &tree, &layout.options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvc_compiler::ir::{compile, CompileOptions};
    use lvc_compiler::schema::Phase;

    fn corpus_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                corpus_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "prototxt") {
                out.push(path);
            }
        }
    }

    fn printed(source: &SourceFile, phase: Phase) -> Option<String> {
        let compiled = compile(source, &CompileOptions { phase, ..Default::default() });
        compiled.graph.map(|g| g.to_text())
    }

    /// Every corpus net, formatted and upgraded, compiles to the same graph
    /// in both phases (where the original compiles at all); nets with errors
    /// are refused, never half-upgraded.
    #[test]
    fn formatted_and_upgraded_corpus_nets_compile_to_the_same_graphs() {
        let mut files = Vec::new();
        corpus_files(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/prototxt"),
            &mut files,
        );
        files.sort();
        let (mut compared, mut upgraded, mut refused) = (0, 0, 0);
        let mut failures = Vec::new();
        for path in &files {
            let source = SourceFile::read(path).unwrap();
            for upgrade in [false, true] {
                let layout = Layout { upgrade, ..Default::default() };
                let out = match format_source(&source, &layout) {
                    Ok(out) => out,
                    Err(diags) => {
                        assert!(upgrade, "{}: plain formatting failed", path.display());
                        assert!(diags.iter().any(|d| d.code == "lvc::fmt::upgrade"));
                        refused += 1;
                        continue;
                    }
                };
                if upgrade && !out.contains("layers {") && source.text.contains("layers {") {
                    upgraded += 1;
                }
                let after = SourceFile::new(path, out);
                for phase in [Phase::Test, Phase::Train] {
                    let before = printed(&source, phase);
                    if before.is_some() {
                        compared += 1;
                    }
                    if before != printed(&after, phase) {
                        failures.push(format!("{} (upgrade {upgrade}, {phase:?})", path.display()));
                    }
                }
            }
        }
        assert!(failures.is_empty(), "graphs changed:\n{}", failures.join("\n"));
        eprintln!("{compared} graphs compared; {upgraded} V0/V1 files upgraded, {refused} refused");
        assert!(compared > 300 && upgraded >= 10, "{compared} compared, {upgraded} upgraded");
    }
}
