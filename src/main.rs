//! `lvc`: the command line (defined in `src/cli.rs`, subcommands in
//! `src/cmd/<name>.rs`). This binary does not link libtorch, whose start-up
//! alone costs ~0.8 s and ~470 MB: it parses (so `--help` and argument errors
//! come from here), runs the commands that need no libtorch, and execs the
//! sibling `lvc-torch` with the same arguments for the others, so their exit
//! code, output and signals are that process's own.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use miette::Diagnostic;

use lvc::cli::{run_light, Cli};

/// The binary that runs the commands needing libtorch, next to `lvc`.
const TORCH_BINARY: &str = "lvc-torch";

#[derive(Debug, thiserror::Error, Diagnostic)]
enum ExecError {
    #[error("cannot find where `lvc` runs from, to start `{TORCH_BINARY}` next to it")]
    #[diagnostic(
        code(lvc::torch_binary),
        help("run `{TORCH_BINARY}` with the same arguments instead")
    )]
    CurrentExe(#[source] std::io::Error),
    #[error("this command needs libtorch, which `lvc` runs through `{}`, and starting it failed", path.display())]
    #[diagnostic(
        code(lvc::torch_binary),
        help("install both binaries side by side: `make build` (cargo build --release --bins) builds target/release/lvc and target/release/{TORCH_BINARY}")
    )]
    Exec {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn main() -> ExitCode {
    match run_light(Cli::parse().command) {
        Ok(code) => ExitCode::from(code),
        Err(_needs_torch) => {
            let err = exec_torch_binary();
            lvc::errln!("{:?}", miette::Report::new(err));
            ExitCode::from(2)
        }
    }
}

/// How the two CPU thread pools of `lvc-torch` wait between jobs: libtorch's
/// OpenMP (libgomp) and OpenBLAS (the GEMMs of layers with their own
/// backward) both spin after each job by default, and with as many threads as
/// cores the spinning pool takes the cores from the one that has work.
/// Sleeping at once instead measured FCN-AlexNet's training step (2 cores)
/// at 358 ms against 537 ms with both defaults. Both libraries read these
/// when they load, hence here, before the exec; a value the user set is kept.
const THREAD_POOL_ENV: [(&str, &str); 2] =
    [("GOMP_SPINCOUNT", "0"), ("OPENBLAS_THREAD_TIMEOUT", "4")];

/// Replaces this process with `lvc-torch`, same argv; returns only on failure.
fn exec_torch_binary() -> ExecError {
    let path = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(TORCH_BINARY),
        Err(err) => return ExecError::CurrentExe(err),
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| OsString::from("lvc"));
    let mut command = std::process::Command::new(&path);
    for (name, value) in THREAD_POOL_ENV.iter().filter(|(name, _)| std::env::var_os(name).is_none())
    {
        command.env(name, value);
    }
    let source = command.arg0(arg0).args(args).exec();
    ExecError::Exec { path, source }
}
