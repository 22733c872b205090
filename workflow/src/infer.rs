//! DIGITS' "Image segmentation" view: the predicted mask of one image (a
//! dataset record or a DICOM file, or every val image) and an overlay (see
//! [`crate::overlay`]), with an [`InferResult`] beside each.

use std::path::{Path, PathBuf};

use image::{GrayImage, ImageEncoder};
use lvc_data::atomic::write_atomic;
use lvc_data::store::{Dataset, SplitData};
use lvc_data::sunnybrook::import::{DicomLoader, ImageLoader};

use crate::device::DeviceSpec;
use crate::failure::{fail, report, Failed};
use crate::overlay::{overlay, png_bytes, rgb_png, window, write_png};
use crate::run_folder::{InferResult, RunConfig, INDEX_JSON, MASK_PNG, OVERLAY_PNG, RESULT_JSON};
use crate::run_lock::lock_run_if_inside;
use crate::scores::{mean, Overlap};
use crate::segmenter::{open_run, Segmenter};

/// Which images to segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InferTarget {
    /// A dataset image by case and image number, `CASE/NNNN`.
    Record(String),
    /// A DICOM file (no ground truth).
    Image(PathBuf),
    /// Every image of the dataset's val split.
    AllVal,
}

/// What to segment, where to, and how to draw it.
#[derive(Debug, Clone)]
pub struct InferRequest {
    pub run: PathBuf,
    /// The dataset (default: the one run.json records).
    pub dataset: Option<PathBuf>,
    pub target: InferTarget,
    /// The output folder (created if missing); `--all-val` writes one
    /// folder per image in it.
    pub out: PathBuf,
    /// Opacity of the predicted mask's fill, 0 to 1.
    pub opacity: f32,
    /// Integer upscaling of overlay.png.
    pub scale: u32,
    /// The weights (default: `RUN/best.safetensors`).
    pub weights: Option<PathBuf>,
    pub device: DeviceSpec,
}

/// What inference reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum InferEvent {
    /// One image's files are written.
    Image(InferResult),
    /// Every val image is done (before index.json is written).
    AllVal { images: usize, mean_dice: f64, out: PathBuf },
}

/// One image to segment: its values (C·H·W), size and optional ground truth.
struct Subject<'a> {
    source: String,
    pixels: &'a [f32],
    height: usize,
    width: usize,
    truth: Option<&'a [u8]>,
}

/// Segments the request's images, writing mask.png, overlay.png and
/// result.json for each (and index.json for every val image).
pub fn infer(request: &InferRequest, on_event: &mut dyn FnMut(&InferEvent)) -> Result<(), Failed> {
    let recorded = RunConfig::read(&request.run)?;
    // Overlays written into the run (RUN/overlays, as `make demo` does)
    // make this a writer of it (run_lock).
    let _lock = lock_run_if_inside(&request.run, &request.out).map_err(|m| fail(2, m))?;
    let draw = |segmenter: &Segmenter, subject: &Subject, out: &Path| {
        infer_one(segmenter, subject, out, request.opacity, request.scale)
    };
    if let InferTarget::Image(path) = &request.target {
        let loaded = DicomLoader.load(path).map_err(|e| report(2, e))?;
        let channels = recorded.image_shape[0];
        let pixels = loaded.pixels.to_f32().repeat(channels);
        let segmenter = open_run(
            &request.run,
            &recorded,
            request.weights.as_deref(),
            [channels, loaded.rows, loaded.columns],
            &request.device,
        )?;
        let subject = Subject {
            source: path.display().to_string(),
            pixels: &pixels,
            height: loaded.rows,
            width: loaded.columns,
            truth: None,
        };
        on_event(&InferEvent::Image(draw(&segmenter, &subject, &request.out)?));
        return Ok(());
    }
    let dataset_path = request.dataset.clone().unwrap_or_else(|| recorded.dataset.clone());
    let dataset = Dataset::open(&dataset_path).map_err(|e| report(2, e))?;
    let segmenter = open_run(
        &request.run,
        &recorded,
        request.weights.as_deref(),
        dataset.manifest.image_shape,
        &request.device,
    )?;
    if let InferTarget::Record(text) = &request.target {
        let (case, number) = parse_record(text)?;
        let record = dataset.manifest.records.iter().find(|r| r.case == case && r.image == number).ok_or_else(|| {
            fail(2, format!("{}: no record {case}/{number:04} (see `lvc dataset inspect` for the cases)", dataset_path.display()))
        })?;
        let split = dataset.split(record.split.name()).map_err(|e| report(2, e))?;
        let result = draw(&segmenter, &dataset_subject(&split, record.index), &request.out)?;
        on_event(&InferEvent::Image(result));
        return Ok(());
    }
    let split = dataset.split("val").map_err(|e| report(2, e))?;
    let mut results = Vec::with_capacity(split.len());
    for index in 0..split.len() {
        let record = &split.records[index];
        // `Dataset::open` checked the case; joined as a checked component
        // all the same, so no manifest can reach out of --out.
        let folder =
            lvc_fsio::join_component(&request.out, &format!("{}-{:04}", record.case, record.image))
                .map_err(|e| fail(2, format!("{}: {e}", dataset_path.display())))?;
        let result = draw(&segmenter, &dataset_subject(&split, index), &folder)?;
        on_event(&InferEvent::Image(result.clone()));
        results.push(result);
    }
    let dices: Vec<f64> = results.iter().filter_map(|r| r.dice).collect();
    on_event(&InferEvent::AllVal {
        images: results.len(),
        mean_dice: mean(dices),
        out: request.out.clone(),
    });
    let json = serde_json::to_vec_pretty(&results)
        .map_err(|e| fail(1, format!("cannot encode the index: {e}")))?;
    let path = request.out.join(INDEX_JSON);
    write_atomic(&path, &json).map_err(|e| fail(1, format!("cannot write {}: {e}", path.display())))
}

fn infer_one(
    segmenter: &Segmenter,
    subject: &Subject,
    out: &Path,
    opacity: f32,
    scale: u32,
) -> Result<InferResult, Failed> {
    std::fs::create_dir_all(out)
        .map_err(|e| fail(1, format!("cannot create {}: {e}", out.display())))?;
    let (predicted, _) = segmenter.segment(subject.pixels, None).map_err(|e| report(1, e))?;
    let (w, h) = (subject.width, subject.height);
    let mask = GrayImage::from_raw(w as u32, h as u32, predicted.clone()).ok_or_else(|| {
        fail(1, format!("the prediction has {} values for a {w}x{h} mask", predicted.len()))
    })?;
    write_png(
        &out.join(MASK_PNG),
        png_bytes(|e| {
            e.write_image(mask.as_raw(), w as u32, h as u32, image::ExtendedColorType::L8)
        }),
    )?;
    let gray = window(&subject.pixels[..w * h]);
    let picture = overlay(&gray, w, h, &predicted, subject.truth, opacity, scale);
    write_png(&out.join(OVERLAY_PNG), rgb_png(&picture))?;
    let overlap = subject.truth.map(|t| Overlap::of(&predicted, t, segmenter.classes));
    let result = InferResult {
        source: subject.source.clone(),
        folder: out.display().to_string(),
        predicted_pixels: Overlap::of(&predicted, &predicted, segmenter.classes).truth,
        dice: overlap.as_ref().map(Overlap::foreground_dice),
        jaccard: overlap.as_ref().map(Overlap::foreground_jaccard),
    };
    let json = serde_json::to_vec_pretty(&result)
        .map_err(|e| fail(1, format!("cannot encode the result: {e}")))?;
    let path = out.join(RESULT_JSON);
    write_atomic(&path, &json)
        .map_err(|e| fail(1, format!("cannot write {}: {e}", path.display())))?;
    Ok(result)
}

/// Parses `CASE/NNNN`.
fn parse_record(text: &str) -> Result<(&str, u32), Failed> {
    text.rsplit_once('/')
        .and_then(|(case, n)| Some((case, n.parse::<u32>().ok()?)))
        .filter(|(case, _)| !case.is_empty())
        .ok_or_else(|| fail(2, format!("--record `{text}`: expected CASE/NNNN, e.g. SC-HYP-1/0048 (see `lvc dataset inspect`)")))
}

fn dataset_subject<'a>(split: &'a SplitData, index: usize) -> Subject<'a> {
    let record = &split.records[index];
    Subject {
        source: format!("{}/{:04} ({} #{index})", record.case, record.image, split.split.name()),
        pixels: split.image(index),
        height: split.shape[2],
        width: split.shape[3],
        truth: Some(split.label(index)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_as_case_and_number() {
        assert_eq!(parse_record("SC-HYP-1/0048").ok(), Some(("SC-HYP-1", 48)));
        assert!(parse_record("SC-HYP-1").is_err());
        assert!(parse_record("/12").is_err());
    }
}
