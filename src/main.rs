//! `lvc`: the command line. Each subcommand lives in `src/cmd/<name>.rs` with
//! its clap arguments and its `run`, which returns the process exit code.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod cmd;

/// Caffe-style segmentation networks, checked, run and trained in Rust.
#[derive(Parser)]
#[command(name = "lvc", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    // Subcommands are added here, one line each, in pipeline order.
    /// Import Sunnybrook images + contours into a dataset; inspect or export it.
    Dataset(cmd::dataset::DatasetArgs),
    /// Check pretrained weights against a net (every mismatch, with fixes); convert caffemodel ↔ safetensors.
    Weights(cmd::weights::WeightsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code: u8 = match cli.command {
        Command::Dataset(a) => cmd::dataset::run(a),
        Command::Weights(a) => cmd::weights::run(a),
    };
    ExitCode::from(code)
}
