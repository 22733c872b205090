//! `lvc`: the command line. Each subcommand lives in `src/cmd/<name>.rs` with
//! its clap arguments and its `run`, which returns the process exit code.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod cmd;
mod report;

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
    /// Write a synthetic cardiac cine-MRI phantom in the Sunnybrook challenge layout.
    Phantom(cmd::phantom::PhantomArgs),
    /// Inspect a DICOM file or export its stored pixel values (.npy / PNG).
    Dicom(cmd::dicom::DicomArgs),
    /// Import Sunnybrook images + contours into a dataset; inspect or export it.
    Dataset(cmd::dataset::DatasetArgs),
    /// Check nets: parse, validate, wire and shape-check; report every problem at once.
    Check(cmd::check::CheckArgs),
    /// Print a net's checked graph: every layer with blob and parameter shapes.
    Print(cmd::print::PrintArgs),
    /// Write a net's checked graph as Graphviz dot.
    Dot(cmd::dot::DotArgs),
    /// Check pretrained weights against a net (every mismatch, with fixes); convert caffemodel ↔ safetensors.
    Weights(cmd::weights::WeightsArgs),
    /// Run a net forward on given inputs and write every blob as .npy.
    Forward(cmd::forward::ForwardArgs),
    /// Train a net with a Caffe solver on fed tensors (SGD, Adam, …; Caffe's update rules).
    Train(cmd::train::TrainArgs),
    /// Score a trained run on a dataset split: Dice, Jaccard, accuracy per image and patient.
    Evaluate(cmd::evaluate::EvaluateArgs),
    /// Segment one image (or every val image) with a trained run: mask.png and overlay.png.
    Infer(cmd::infer::InferArgs),
    /// Time forward, backward and each layer of a net, as `caffe time`.
    Time(cmd::time::TimeArgs),
    /// Draw a run's training curves (curves.png) and its self-contained report.html.
    Report(cmd::report::ReportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code: u8 = match cli.command {
        Command::Phantom(a) => cmd::phantom::run(a),
        Command::Dicom(a) => cmd::dicom::run(a),
        Command::Dataset(a) => cmd::dataset::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Print(a) => cmd::print::run(a),
        Command::Dot(a) => cmd::dot::run(a),
        Command::Weights(a) => cmd::weights::run(a),
        Command::Forward(a) => cmd::forward::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Evaluate(a) => cmd::evaluate::run(a),
        Command::Infer(a) => cmd::infer::run(a),
        Command::Time(a) => cmd::time::run(a),
        Command::Report(a) => cmd::report::run(a),
    };
    ExitCode::from(code)
}
