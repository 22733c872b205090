//! `lvc infer`: DIGITS' "Image segmentation" view — the predicted mask of one
//! image (a dataset record or a DICOM file, or every val image) and an
//! overlay: the windowed image, the predicted left ventricle filled at the
//! chosen opacity with its contour, and the ground-truth contour when known
//! (`lvc_workflow::infer`; this file parses the arguments and prints).

use std::path::PathBuf;

use lvc_workflow::failure::Failed;
use lvc_workflow::infer::{infer, InferEvent, InferRequest, InferTarget};

use super::device_args::DeviceArgs;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["record", "image", "all_val"])))]
#[command(after_help = "Examples:
  lvc infer --run runs/demo --record SC-HYP-1/0048 --out runs/demo/one
  lvc infer --run runs/demo --image challenge_training/SC-HYP-1/IM-0001-0048.dcm --out out --opacity 0.6
  lvc infer --run runs/demo --all-val --out runs/demo/overlays

Writes mask.png (8-bit label values: 0 background, 1 left ventricle, …), overlay.png (the image
windowed to its 0.5–99.5 percentile range, the prediction filled in red at --opacity with a red
contour, the ground-truth contour in green just outside the true mask) and result.json (Dice and
Jaccard of the foreground when the ground truth is known). --all-val writes one folder
<CASE>-<NNNN> per val image and index.json.

Exit status: 0 written, 1 the net failed or a file could not be written, 2 an input could not be
read (or --out lies in the run while another lvc process writes into it).")]
pub struct InferArgs {
    /// Run folder written by `lvc train --dataset … --out RUN`.
    #[arg(long, value_name = "RUN")]
    pub run: PathBuf,
    /// Dataset folder (default: the one recorded in RUN/run.json).
    #[arg(long, value_name = "DS")]
    pub dataset: Option<PathBuf>,
    /// A dataset image by case and image number, e.g. SC-HYP-1/0048.
    #[arg(long, value_name = "CASE/NNNN")]
    pub record: Option<String>,
    /// A DICOM file (no ground truth).
    #[arg(long, value_name = "FILE.dcm")]
    pub image: Option<PathBuf>,
    /// Every image of the dataset's val split.
    #[arg(long)]
    pub all_val: bool,
    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Opacity of the predicted mask's fill, 0 (contour only) to 1.
    #[arg(long, default_value_t = 0.4, value_parser = parse_opacity)]
    pub opacity: f32,
    /// Integer upscaling of overlay.png (nearest neighbour), for viewing.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub scale: u32,
    /// Weights (default: RUN/best.safetensors).
    #[arg(long, value_name = "W")]
    pub weights: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

fn parse_opacity(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(a) if (0.0..=1.0).contains(&a) => Ok(a),
        _ => Err(format!("`{s}`: expected a number from 0 to 1")),
    }
}

pub use lvc_workflow::overlay::{contour, overlay, window};
pub use lvc_workflow::run_folder::InferResult;

pub fn run(args: InferArgs) -> u8 {
    let target = match (&args.record, &args.image) {
        (_, Some(image)) => InferTarget::Image(image.clone()),
        (Some(record), None) => InferTarget::Record(record.clone()),
        (None, None) => InferTarget::AllVal,
    };
    let request = InferRequest {
        run: args.run,
        dataset: args.dataset,
        target,
        out: args.out,
        opacity: args.opacity,
        scale: args.scale,
        weights: args.weights,
        device: args.device.spec(),
    };
    match infer(&request, &mut print_event) {
        Ok(()) => 0,
        Err(Failed(code)) => code,
    }
}

fn print_event(event: &InferEvent) {
    match event {
        InferEvent::Image(result) => match result.dice {
            Some(dice) => outln!("{}: Dice {dice:.4} → {}", result.source, result.folder),
            None => outln!("{}: no ground truth → {}", result.source, result.folder),
        },
        InferEvent::AllVal { images, mean_dice, out } => {
            outln!("{images} val images, mean Dice {mean_dice:.4} → {}", out.display())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opacities_lie_between_0_and_1() {
        assert!(parse_opacity("1.5").is_err());
        assert_eq!(parse_opacity("0.25"), Ok(0.25));
    }
}
