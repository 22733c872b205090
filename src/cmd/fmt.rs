//! `lvc fmt`: rewrite prototxt files in the canonical layout
//! (`lvc_grammar::format`); `--check` only lists the files it would change.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use lvc_compiler::source::MAX_SOURCE_BYTES;
use lvc_compiler::SourceFile;
use lvc_grammar::FormatOptions;
use lvc_workflow::fmt::{format_source, Layout};

use super::netargs::render;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc fmt models/fcn8s.prototxt                # rewrite in place
  lvc fmt --check models/*.prototxt            # list what would change, exit 1 if any
  cat net.prototxt | lvc fmt - > tidy.prototxt

The layout: one field per line, nested messages as `name {` … `}` indented by --indent spaces,
`name: value` for scalars, strings in double quotes, no `,`/`;` separators, list literals
(`dim: [1, 2]`) as one field per element. Numbers, identifiers and escapes stay as written.
Every comment is kept: one on the line of the token before it stays at that line's end, any
other goes on its own line before what follows it; one blank line is kept wherever there was
at least one. The net never changes: the output parses to the same tree, so it compiles to
the same graph. V0/V1 files (`layers {}`) stay in their format unless --upgrade, which writes
what Caffe's upgrade makes of them (`layer {}` with string types, `param {}` multipliers, an
Input layer for `input_dim`), comments kept near what they annotated. A file is replaced
atomically, and only when it changes.

Exit status: 0 done (with --check: nothing would change), 1 with --check: files would change,
2 a file could not be read, parsed or written (the others are still formatted).")]
pub struct FmtArgs {
    /// Only list the files that are not formatted; write nothing.
    #[arg(long)]
    pub check: bool,
    /// Also rewrite V0/V1 nets (`layers {}`, `input_dim`) in the current
    /// `layer {}` form, as Caffe's upgrade does (refused when the net has errors).
    #[arg(long)]
    pub upgrade: bool,
    /// Spaces per nesting level.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=16))]
    pub indent: u8,
    /// Prototxt files, or `-` to read stdin and write stdout.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(args: FmtArgs) -> u8 {
    let options = Layout {
        options: FormatOptions { indent: usize::from(args.indent) },
        upgrade: args.upgrade,
    };
    if args.files.iter().any(|f| f == Path::new("-")) {
        if args.files.len() > 1 {
            errln!("error[lvc::fmt::stdin]: `-` (stdin) cannot be combined with files");
            return 2;
        }
        return format_stdin(&options, args.check);
    }
    let mut failed = false;
    let mut would_change = 0;
    for path in &args.files {
        match format_file(path, &options, args.check) {
            Ok(true) if args.check => {
                outln!("{}", path.display());
                would_change += 1;
            }
            Ok(_) => {}
            Err(()) => failed = true,
        }
    }
    if failed {
        2
    } else if would_change > 0 {
        errln!(
            "{would_change} of {} files would be reformatted (run `lvc fmt` on them)",
            args.files.len()
        );
        1
    } else {
        0
    }
}

/// Formats one file; `Ok(true)` when its layout changes (and, unless
/// `check_only`, it was rewritten). Errors are reported here.
fn format_file(path: &Path, options: &Layout, check_only: bool) -> Result<bool, ()> {
    let bytes = lvc_fsio::read_regular(path, MAX_SOURCE_BYTES).map_err(|e| {
        errln!("error[lvc::io::read]: cannot read {}: {e}", path.display());
    })?;
    let source = utf8_source(path.display().to_string(), bytes)?;
    let formatted = formatted_or_report(&source, options)?;
    if formatted == *source.text {
        return Ok(false);
    }
    if !check_only {
        lvc_fsio::write_atomic(path, formatted.as_bytes()).map_err(|e| {
            errln!(
                "error[lvc::io::write]: cannot write {}: {e} (the file was left as it was)",
                path.display()
            );
        })?;
    }
    Ok(true)
}

fn formatted_or_report(source: &SourceFile, layout: &Layout) -> Result<String, ()> {
    format_source(source, layout).map_err(|diags| {
        for d in diags.iter() {
            err!("{}", render(d, source));
        }
    })
}

fn format_stdin(options: &Layout, check_only: bool) -> u8 {
    let mut bytes = Vec::new();
    let read = std::io::stdin().lock().take(MAX_SOURCE_BYTES + 1).read_to_end(&mut bytes);
    if let Err(e) = read {
        errln!("error[lvc::io::read]: cannot read stdin: {e}");
        return 2;
    }
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        errln!(
            "error[lvc::io::read]: stdin is larger than {}",
            lvc_fsio::read::human_bytes(MAX_SOURCE_BYTES)
        );
        return 2;
    }
    let Ok(source) = utf8_source("<stdin>".into(), bytes) else { return 2 };
    let Ok(formatted) = formatted_or_report(&source, options) else { return 2 };
    if check_only {
        if formatted == *source.text {
            return 0;
        }
        outln!("<stdin>");
        return 1;
    }
    // The file's bytes, not a terminal rendering of them.
    let mut out = std::io::stdout().lock();
    match out.write_all(formatted.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            errln!("error[lvc::io::write]: cannot write stdout: {e}");
            2
        }
    }
}

/// The text of a file to rewrite: it must be UTF-8, since replacing what is
/// not (as a lossy read would) changes bytes of its strings.
fn utf8_source(name: String, bytes: Vec<u8>) -> Result<SourceFile, ()> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(name, text)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            errln!("error[lvc::fmt::encoding]: {name}: byte {at} is not UTF-8; lvc fmt rewrites only UTF-8 text (nothing was written)");
            Err(())
        }
    }
}
