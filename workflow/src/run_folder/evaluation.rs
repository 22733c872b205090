//! `lvc evaluate`'s report: per image, per patient, and mean ± sd.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::json::{figure, no_figure};
use crate::scores::{mean, sd, Overlap, EMPTY_RULE};

/// One image's scores in `evaluation.json` (`per_image`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageScore {
    /// The image's position in the split.
    pub index: usize,
    pub case: String,
    /// The image number within its case.
    pub image: u32,
    /// Foreground Dice.
    #[serde(deserialize_with = "figure")]
    pub dice: f64,
    /// Foreground Jaccard.
    #[serde(deserialize_with = "figure")]
    pub jaccard: f64,
    #[serde(deserialize_with = "figure")]
    pub accuracy: f64,
}

/// One patient's Dice in `evaluation.json` (`per_patient`): the mean
/// over its images.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PatientScore {
    pub case: String,
    #[serde(deserialize_with = "figure")]
    pub dice: f64,
    pub images: usize,
}

/// `lvc evaluate`'s report (`--out FILE.json`, `RUN/evaluation.json` for
/// `lvc report`): a run's weights scored on a dataset split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Evaluation {
    /// Mean foreground Dice over the images.
    #[serde(deserialize_with = "figure")]
    pub mean_dice: f64,
    /// Sample standard deviation of the images' Dice.
    #[serde(deserialize_with = "figure")]
    pub sd_dice: f64,
    #[serde(deserialize_with = "figure")]
    pub mean_jaccard: f64,
    /// Pooled over every scored pixel.
    #[serde(deserialize_with = "figure")]
    pub pixel_accuracy: f64,
    pub empty_rule: String,
    pub split: String,
    pub images: usize,
    pub weights: String,
    pub per_patient: Vec<PatientScore>,
    pub per_image: Vec<ImageScore>,
}

impl Default for Evaluation {
    /// An evaluation with no figures (what a missing field reads as).
    fn default() -> Evaluation {
        Evaluation {
            mean_dice: no_figure(),
            sd_dice: no_figure(),
            mean_jaccard: no_figure(),
            pixel_accuracy: no_figure(),
            empty_rule: String::new(),
            split: String::new(),
            images: 0,
            weights: String::new(),
            per_patient: Vec::new(),
            per_image: Vec::new(),
        }
    }
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

    /// The report as `lvc evaluate` prints it for people.
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
