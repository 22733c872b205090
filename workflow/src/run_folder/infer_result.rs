//! `result.json` of one inferred image (and each entry of `index.json`).

use serde::{Deserialize, Serialize};

/// What `result.json` (and each entry of index.json) holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InferResult {
    /// The image: `CASE/NNNN (split #index)` or the DICOM file's path.
    pub source: String,
    /// The folder holding mask.png, overlay.png and this result.
    pub folder: String,
    /// Pixels predicted per class, by label value.
    pub predicted_pixels: Vec<u64>,
    /// Foreground Dice and Jaccard, when the ground truth is known.
    pub dice: Option<f64>,
    pub jaccard: Option<f64>,
}
