//! `lvc evaluate`: scores a trained run on a dataset split with the deploy
//! net — per image, per patient, and mean ± sd (`lvc_workflow::evaluate`;
//! this file parses the arguments and prints).

use std::path::PathBuf;

use lvc_workflow::evaluate::{evaluate_run, write_evaluation, EvaluateRequest, Evaluated};
use lvc_workflow::failure::{fail, Failed};

use super::device_args::DeviceArgs;

pub use super::OutputFormat as Format;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc evaluate --run runs/demo --dataset runs/demo/dataset
  lvc evaluate --run runs/demo --dataset runs/demo/dataset --format json --out runs/demo/evaluation.json
  lvc evaluate --run runs/demo --dataset lv-ds --split train --weights runs/demo/snapshots/epoch-3.safetensors

Uses RUN/best.safetensors (or --weights) in the deploy stage of the net recorded in RUN/run.json.
Dice and Jaccard are of the foreground classes (the left ventricle), per image; a patient's figure
is the mean over its images. Empty masks: a class absent from both the prediction and the ground
truth scores Dice 1 (and Jaccard 1) on that image. Pixel accuracy is pooled over all pixels.

JSON: {\"mean_dice\",\"sd_dice\",\"mean_jaccard\",\"pixel_accuracy\",\"empty_rule\",\"split\",\"images\",
\"weights\",\"per_patient\":[{\"case\",\"dice\",\"images\"}],
\"per_image\":[{\"index\",\"case\",\"image\",\"dice\",\"jaccard\",\"accuracy\"}]}

Exit status: 0 evaluated, 1 the net failed to run, 2 the run, dataset or weights could not be read
(or --out lies in the run while another lvc process writes into it).")]
pub struct EvaluateArgs {
    /// Run folder written by `lvc train --dataset … --out RUN`.
    #[arg(long, value_name = "RUN")]
    pub run: PathBuf,
    /// Dataset folder (default: the one recorded in RUN/run.json).
    #[arg(long, value_name = "DS")]
    pub dataset: Option<PathBuf>,
    #[arg(long, default_value = "val", value_parser = ["train", "val"])]
    pub split: String,
    /// Weights to evaluate (default: RUN/best.safetensors).
    #[arg(long, value_name = "W")]
    pub weights: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Also write the JSON report to this file (atomically).
    #[arg(long, value_name = "FILE.json")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub use lvc_workflow::run_folder::{Evaluation, ImageScore, PatientScore};

pub fn run(args: EvaluateArgs) -> u8 {
    match evaluate(args) {
        Ok(()) => 0,
        Err(Failed(code)) => code,
    }
}

fn evaluate(args: EvaluateArgs) -> Result<(), Failed> {
    let request = EvaluateRequest {
        run: args.run,
        dataset: args.dataset,
        split: args.split,
        weights: args.weights,
        out: args.out,
        device: args.device.spec(),
    };
    // The lock (when --out lies in the run) is held until the file is written.
    let Evaluated { evaluation, lock: _lock } = evaluate_run(&request)?;
    let json = serde_json::to_string_pretty(&evaluation)
        .map_err(|e| fail(1, format!("cannot encode the report: {e}")))?;
    if let Some(out) = &request.out {
        write_evaluation(out, &json)?;
    }
    match args.format {
        Format::Json => outln!("{json}"),
        Format::Human => out!("{}", evaluation.human()),
    }
    Ok(())
}
