//! `lvc evaluate`: scores a trained run on a dataset split with the deploy
//! net — per image, per patient, and mean ± sd.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lvc_data::atomic::write_atomic;
use lvc_data::store::Dataset;
use serde::Serialize;

use super::device_args::DeviceArgs;
use super::segment::{mean, open_run, sd, Overlap, EMPTY_RULE};
use super::train::{fail, report, Failed};

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

#[derive(Debug, Serialize)]
pub struct ImageScore {
    pub index: usize,
    pub case: String,
    pub image: u32,
    pub dice: f64,
    pub jaccard: f64,
    pub accuracy: f64,
}

#[derive(Debug, Serialize)]
pub struct PatientScore {
    pub case: String,
    pub dice: f64,
    pub images: usize,
}

#[derive(Debug, Serialize)]
pub struct Evaluation {
    pub mean_dice: f64,
    pub sd_dice: f64,
    pub mean_jaccard: f64,
    pub pixel_accuracy: f64,
    pub empty_rule: String,
    pub split: String,
    pub images: usize,
    pub weights: String,
    pub per_patient: Vec<PatientScore>,
    pub per_image: Vec<ImageScore>,
}

impl Evaluation {
    /// Aggregates per-image overlaps (with their case and image number).
    pub fn from_overlaps(
        split: &str,
        weights: String,
        scored: &[(String, u32, Overlap)],
    ) -> Evaluation {
        let per_image: Vec<ImageScore> = scored
            .iter()
            .enumerate()
            .map(|(index, (case, image, o))| ImageScore {
                index,
                case: case.clone(),
                image: *image,
                dice: o.foreground_dice(),
                jaccard: o.foreground_jaccard(),
                accuracy: o.accuracy(),
            })
            .collect();
        let mut by_case: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for score in &per_image {
            by_case.entry(score.case.as_str()).or_default().push(score.dice);
        }
        let per_patient = by_case
            .into_iter()
            .map(|(case, dice)| PatientScore {
                case: case.to_string(),
                dice: mean(dice.iter().copied()),
                images: dice.len(),
            })
            .collect();
        let dices: Vec<f64> = per_image.iter().map(|s| s.dice).collect();
        let correct: u64 = scored.iter().map(|(_, _, o)| o.both.iter().sum::<u64>()).sum();
        let pixels: u64 = scored.iter().map(|(_, _, o)| o.pixels).sum();
        Evaluation {
            mean_dice: mean(dices.iter().copied()),
            sd_dice: sd(&dices),
            mean_jaccard: mean(per_image.iter().map(|s| s.jaccard)),
            pixel_accuracy: if pixels == 0 { 1.0 } else { correct as f64 / pixels as f64 },
            empty_rule: EMPTY_RULE.to_string(),
            split: split.to_string(),
            images: per_image.len(),
            weights,
            per_patient,
            per_image,
        }
    }

    pub fn human(&self) -> String {
        let mut out = format!(
            "{} split, {} images ({})\nDice     {:.4} ± {:.4} (mean ± sd over images)\nJaccard  {:.4}\naccuracy {:.4} (all pixels)\nempty masks: {}\n\ncase             images  Dice\n",
            self.split, self.images, self.weights, self.mean_dice, self.sd_dice, self.mean_jaccard, self.pixel_accuracy, self.empty_rule
        );
        for p in &self.per_patient {
            out.push_str(&format!("{:<16} {:>6}  {:.4}\n", p.case, p.images, p.dice));
        }
        out
    }
}

pub fn run(args: EvaluateArgs) -> u8 {
    match evaluate(&args) {
        Ok(()) => 0,
        Err(Failed(code)) => code,
    }
}

fn evaluate(args: &EvaluateArgs) -> Result<(), Failed> {
    let recorded = super::segment::RunConfig::read(&args.run)?;
    // Writing into the run makes this a writer of it (cmd::run_lock);
    // scoring alone reads whole files and waits for no one.
    let _lock = match &args.out {
        Some(out) => super::run_lock::lock_run_if_inside(&args.run, out).map_err(|m| fail(2, m))?,
        None => None,
    };
    let dataset_path = args.dataset.clone().unwrap_or(recorded.dataset);
    let dataset = Dataset::open(&dataset_path).map_err(|e| report(2, e))?;
    let split = dataset.split(&args.split).map_err(|e| report(2, e))?;
    let (_, segmenter) =
        open_run(&args.run, args.weights.as_deref(), dataset.manifest.image_shape, &args.device)?;
    if segmenter.classes != dataset.manifest.classes.len() {
        return Err(fail(
            2,
            format!(
                "the net scores {} classes, {} has {}",
                segmenter.classes,
                dataset_path.display(),
                dataset.manifest.classes.len()
            ),
        ));
    }
    let mut scored = Vec::with_capacity(split.len());
    for (i, record) in split.records.iter().enumerate() {
        let (predicted, _) = segmenter.segment(split.image(i), None).map_err(|e| report(1, e))?;
        scored.push((
            record.case.clone(),
            record.image,
            Overlap::of(&predicted, split.label(i), segmenter.classes),
        ));
    }
    let weights =
        args.weights.clone().unwrap_or_else(|| args.run.join(super::segment::BEST_WEIGHTS));
    let evaluation = Evaluation::from_overlaps(&args.split, weights.display().to_string(), &scored);
    let json = serde_json::to_string_pretty(&evaluation)
        .map_err(|e| fail(1, format!("cannot encode the report: {e}")))?;
    if let Some(out) = &args.out {
        write_atomic(out, json.as_bytes())
            .map_err(|e| fail(1, format!("cannot write {}: {e}", out.display())))?;
    }
    match args.format {
        Format::Json => outln!("{json}"),
        Format::Human => out!("{}", evaluation.human()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patients_average_their_images_and_accuracy_pools_pixels() {
        let hit = Overlap::of(&[1, 1, 0, 0], &[1, 1, 0, 0], 2);
        let miss = Overlap::of(&[0, 0, 0, 0], &[1, 1, 0, 0], 2);
        let empty = Overlap::of(&[0, 0, 0, 0], &[0, 0, 0, 0], 2);
        let scored = vec![
            ("A".to_string(), 1, hit),
            ("A".to_string(), 2, miss),
            ("B".to_string(), 7, empty),
        ];
        let e = Evaluation::from_overlaps("val", "w".into(), &scored);
        assert_eq!(e.per_patient.len(), 2);
        assert_eq!((e.per_patient[0].dice, e.per_patient[0].images), (0.5, 2));
        assert_eq!(e.per_patient[1].dice, 1.0, "both empty scores 1");
        assert!((e.mean_dice - 2.0 / 3.0).abs() < 1e-12);
        assert!((e.pixel_accuracy - 10.0 / 12.0).abs() < 1e-12);
        assert!(e.sd_dice > 0.5);
        let json = serde_json::to_value(&e).unwrap_or_default();
        for key in [
            "mean_dice",
            "sd_dice",
            "mean_jaccard",
            "pixel_accuracy",
            "empty_rule",
            "per_patient",
            "per_image",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["per_image"][1]["image"], 2);
        assert!(e.human().contains("A                     2  0.5000"));
    }
}
