//! What `lvc check`, `lvc print` and `lvc dot` share: the NetState and
//! input-shape flags, reading and compiling a file, and rendering
//! diagnostics for people.

use std::path::Path;

use lvc_compiler::ir::{compile, CompileOptions, Compiled};
use lvc_compiler::schema::Phase;
use lvc_compiler::SourceFile;

/// `--phase`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhaseArg {
    Train,
    Test,
}

/// `--input-shape NAME=d,d,…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputShape {
    pub name: String,
    pub dims: Vec<i64>,
}

fn parse_input_shape(text: &str) -> Result<InputShape, String> {
    let (name, dims) = text.split_once('=').ok_or_else(|| {
        format!("expected NAME=d,d,… (for example data=1,3,500,500), got '{text}'")
    })?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("no blob name before '=' in '{text}'"));
    }
    let dims = dims
        .split(',')
        .map(|d| match d.trim().parse::<i64>() {
            Ok(v) if v > 0 => Ok(v),
            _ => Err(format!("'{}' is not a positive dimension in '{text}'", d.trim())),
        })
        .collect::<Result<Vec<i64>, String>>()?;
    Ok(InputShape { name: name.to_string(), dims })
}

/// The state a net is built for and the shapes the file does not give.
#[derive(clap::Args, Clone, Debug)]
pub struct NetArgs {
    /// Phase to build the net for; Caffe's default is TEST.
    #[arg(long, value_enum, default_value = "test")]
    pub phase: PhaseArg,
    /// A NetState stage (repeatable), e.g. `--stage deploy` for DIGITS nets.
    #[arg(long = "stage", value_name = "STAGE")]
    pub stages: Vec<String>,
    /// NetState level (for include/exclude `min_level`/`max_level`).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub level: i64,
    /// Shape of a net input, overriding or supplying the file's
    /// (repeatable), e.g. `--input-shape data=1,3,500,500`.
    #[arg(long = "input-shape", value_name = "NAME=D,D,…", value_parser = parse_input_shape)]
    pub input_shapes: Vec<InputShape>,
    /// Accept fields of forked Caffe builds (`roi_pooling_param`, …) with a
    /// warning instead of an error.
    #[arg(long)]
    pub lenient: bool,
}

impl NetArgs {
    pub fn options(&self) -> CompileOptions {
        CompileOptions {
            phase: match self.phase {
                PhaseArg::Train => Phase::Train,
                PhaseArg::Test => Phase::Test,
            },
            stages: self.stages.clone(),
            level: self.level,
            input_shapes: self
                .input_shapes
                .iter()
                .map(|s| (s.name.clone(), s.dims.clone()))
                .collect(),
            lenient: self.lenient,
        }
    }
}

/// Reads and compiles one file; `Err` carries a message when the file cannot
/// be read at all.
pub fn compile_file(path: &Path, opts: &CompileOptions) -> Result<(SourceFile, Compiled), String> {
    let source =
        SourceFile::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let compiled = compile(&source, opts);
    Ok((source, compiled))
}

/// Reads and compiles one file and renders its diagnostics to stderr (what
/// `lvc print` and `lvc dot` do first); `Err` is the exit code when the file
/// cannot be read.
pub fn compile_and_report(path: &Path, opts: &CompileOptions) -> Result<Compiled, u8> {
    let (source, compiled) = compile_file(path, opts).map_err(|message| {
        errln!("error[lvc::io::read]: {message}");
        2
    })?;
    report_to_stderr(&source, &compiled);
    Ok(compiled)
}

pub use lvc_workflow::diagnostics::render;

/// Writes to stdout; `false` when stdout is gone (a closed pipe, as in
/// `lvc print … | head`), so the caller can stop instead of panicking.
pub fn write_stdout(text: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(crate::term::shown(text).as_bytes()).and_then(|()| out.flush()).is_ok()
}

/// Prints every diagnostic of a compile to stderr (for print/dot, whose
/// stdout is the product).
fn report_to_stderr(source: &SourceFile, compiled: &Compiled) {
    use std::io::Write;
    let text: String = compiled.diags.iter().map(|d| render(d, source)).collect();
    // Nothing sensible is left to do when stderr itself is closed.
    let _ = std::io::stderr().lock().write_all(crate::term::shown(&text).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_shapes_parse_and_reject_bad_values() {
        assert_eq!(
            parse_input_shape("data=1,3,500,500"),
            Ok(InputShape { name: "data".into(), dims: vec![1, 3, 500, 500] })
        );
        assert!(parse_input_shape("data").is_err());
        assert!(parse_input_shape("=1,2").is_err());
        assert!(parse_input_shape("data=1,x").is_err());
        assert!(parse_input_shape("data=1,0").is_err());
    }
}
