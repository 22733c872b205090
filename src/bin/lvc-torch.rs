//! `lvc-torch`: the `lvc` command line linked with libtorch. `lvc` execs it
//! (same arguments) for the commands that run nets; it runs every command.

use clap::Parser;
use std::process::ExitCode;

use lvc::cli::{run_torch, Cli};

fn main() -> ExitCode {
    ExitCode::from(run_torch(Cli::parse().command))
}
