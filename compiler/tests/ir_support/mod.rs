//! Shared by the IR tests: paths into /work/shared and compiling with flags.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use lvc_compiler::ir::{compile, CompileOptions, Compiled};
use lvc_compiler::schema::Phase;
use lvc_compiler::SourceFile;

pub fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared").join(rel)
}

pub fn corpus(rel: &str) -> PathBuf {
    shared("corpus/prototxt").join(rel)
}

pub fn read(path: &Path) -> SourceFile {
    SourceFile::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub fn options(phase: Phase, shapes: &[(&str, &[i64])]) -> CompileOptions {
    CompileOptions {
        phase,
        input_shapes: shapes.iter().map(|(n, d)| (n.to_string(), d.to_vec())).collect(),
        ..CompileOptions::default()
    }
}

pub fn compile_text(text: &str, opts: &CompileOptions) -> Compiled {
    compile(&SourceFile::new("test.prototxt", text), opts)
}

/// `code: message` of every diagnostic, for assertions.
pub fn codes(c: &Compiled) -> Vec<&'static str> {
    c.diags.iter().map(|d| d.code).collect()
}

/// Fails with every error's code and message.
pub fn assert_clean(c: &Compiled, what: &str) {
    let errors: Vec<String> = c
        .diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{} [{:?}] {}", d.code, d.layer, d.message))
        .collect();
    assert!(c.graph.is_some() && errors.is_empty(), "{what}:\n{}", errors.join("\n"));
}
