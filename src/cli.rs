//! The clap definition of `lvc` and the dispatch of its subcommands, split by
//! whether they need libtorch: `run_light` runs those that don't (in `lvc`
//! itself), `run_torch` the rest (in `lvc-torch`, which `lvc` execs). Each
//! subcommand lives in `src/cmd/<name>.rs` with its clap arguments and its
//! `run`, which returns the process exit code.

use clap::{Parser, Subcommand};

use crate::cmd;

/// Caffe-style segmentation networks, checked, run and trained in Rust.
#[derive(Parser)]
#[command(name = "lvc", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    // Subcommands are added here, one line each, in pipeline order.
    /// Write a synthetic cardiac cine-MRI phantom in the Sunnybrook challenge layout.
    Phantom(cmd::phantom::PhantomArgs),
    /// Inspect a DICOM file or export its stored pixel values (.npy / PNG).
    Dicom(cmd::dicom::DicomArgs),
    /// Import Sunnybrook images + contours into a dataset; inspect or export it.
    Dataset(cmd::dataset::DatasetArgs),
    /// Check nets: parse, validate, wire and shape-check; report every problem at once.
    Check(cmd::check::CheckArgs),
    /// Rewrite prototxt files in the canonical layout, keeping every comment (--check: only list them).
    Fmt(cmd::fmt::FmtArgs),
    /// A language server over stdio: diagnostics, shapes on hover, navigation, rename, formatting.
    Lsp(cmd::lsp::LspArgs),
    /// Print a net's checked graph: every layer with blob and parameter shapes.
    Print(cmd::print::PrintArgs),
    /// Write a net's checked graph as Graphviz dot.
    Dot(cmd::dot::DotArgs),
    /// Change a segmentation net's class count: every coupled num_output and group.
    SetClasses(cmd::set_classes::SetClassesArgs),
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
    /// Serve the workflow in the browser: datasets, runs, live training, the net editor, inference.
    Serve(cmd::serve::ServeArgs),
}

/// Runs `command` if it needs no libtorch (nothing it calls reaches
/// `lvc_runtime` or `tch`, so `lvc` links without libtorch); hands back the
/// commands that do. A new subcommand goes into one of the two lists.
#[allow(clippy::result_large_err)] // the command itself, handed back once
pub fn run_light(command: Command) -> Result<u8, Command> {
    Ok(match command {
        Command::Phantom(a) => cmd::phantom::run(a),
        Command::Dicom(a) => cmd::dicom::run(a),
        Command::Dataset(a) => cmd::dataset::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Fmt(a) => cmd::fmt::run(a),
        Command::Lsp(a) => cmd::lsp::run(a),
        Command::Print(a) => cmd::print::run(a),
        Command::Dot(a) => cmd::dot::run(a),
        Command::SetClasses(a) => cmd::set_classes::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        torch @ (Command::Weights(_)
        | Command::Forward(_)
        | Command::Train(_)
        | Command::Evaluate(_)
        | Command::Infer(_)
        | Command::Time(_)) => return Err(torch),
    })
}

/// Runs any command; those that need libtorch here, the rest through
/// `run_light`. Only `lvc-torch` calls it (it links libtorch).
pub fn run_torch(command: Command) -> u8 {
    match run_light(command) {
        Ok(code) => code,
        Err(Command::Weights(a)) => cmd::weights::run(a),
        Err(Command::Forward(a)) => cmd::forward::run(a),
        Err(Command::Train(a)) => cmd::train::run(a),
        Err(Command::Evaluate(a)) => cmd::evaluate::run(a),
        Err(Command::Infer(a)) => cmd::infer::run(a),
        Err(Command::Time(a)) => cmd::time::run(a),
        Err(_) => unreachable!("run_light hands back only the commands matched above"),
    }
}
