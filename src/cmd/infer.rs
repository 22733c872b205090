//! `lvc infer`: DIGITS' "Image segmentation" view — the predicted mask of one
//! image (a dataset record or a DICOM file, or every val image) and an
//! overlay: the windowed image, the predicted left ventricle filled at the
//! chosen opacity with its contour, and the ground-truth contour when known.

use std::path::{Path, PathBuf};

use image::{GrayImage, ImageEncoder, Rgb, RgbImage};
use lvc_data::atomic::write_atomic;
use lvc_data::store::{Dataset, SplitData};
use lvc_data::sunnybrook::import::{DicomLoader, ImageLoader};

use super::device_args::DeviceArgs;
use super::segment::{open_run, Overlap, RunConfig, Segmenter};
use super::train::{fail, report, Failed};

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

/// Colours of predicted classes 1, 2, … (fill and contour).
const CLASS_COLOURS: [[u8; 3]; 3] = [[235, 45, 45], [45, 130, 255], [235, 60, 235]];
/// Ground-truth contour.
const TRUTH_COLOUR: [u8; 3] = [40, 230, 60];

/// The image's first channel mapped to 8 bits between its 0.5th and 99.5th
/// percentiles (MRI values have a long bright tail).
pub fn window(pixels: &[f32]) -> Vec<u8> {
    let mut sorted: Vec<f32> = pixels.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let at = |q: f64| {
        sorted
            .get(((sorted.len().saturating_sub(1)) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let (low, high) = (at(0.005), at(0.995));
    let span = (high - low).max(f32::EPSILON);
    pixels.iter().map(|&v| ((v - low) / span * 255.0).clamp(0.0, 255.0).round() as u8).collect()
}

/// Pixels of `class` with a 4-neighbour of another class (or the border)
/// when `inside`; pixels of other classes next to `class` otherwise.
pub fn contour(mask: &[u8], width: usize, height: usize, class: u8, inside: bool) -> Vec<bool> {
    let at = |x: isize, y: isize| {
        (x >= 0 && y >= 0 && (x as usize) < width && (y as usize) < height)
            .then(|| mask[y as usize * width + x as usize] == class)
    };
    let mut edge = vec![false; width * height];
    for y in 0..height as isize {
        for x in 0..width as isize {
            let here = at(x, y) == Some(true);
            let neighbours = [at(x - 1, y), at(x + 1, y), at(x, y - 1), at(x, y + 1)];
            edge[y as usize * width + x as usize] = if inside {
                here && neighbours.iter().any(|n| *n != Some(true))
            } else {
                !here && neighbours.contains(&Some(true))
            };
        }
    }
    edge
}

/// The overlay at native size, then upscaled by `scale`.
pub fn overlay(
    gray: &[u8],
    width: usize,
    height: usize,
    predicted: &[u8],
    truth: Option<&[u8]>,
    opacity: f32,
    scale: u32,
) -> RgbImage {
    let mut rgb: Vec<[u8; 3]> = gray.iter().map(|&g| [g, g, g]).collect();
    for (k, colour) in CLASS_COLOURS.iter().enumerate() {
        let class = (k + 1) as u8;
        for (px, _) in rgb.iter_mut().zip(predicted).filter(|(_, &p)| p == class) {
            for c in 0..3 {
                px[c] = (f32::from(px[c]) * (1.0 - opacity) + f32::from(colour[c]) * opacity)
                    .round() as u8;
            }
        }
        for (px, _) in
            rgb.iter_mut().zip(contour(predicted, width, height, class, true)).filter(|(_, e)| *e)
        {
            *px = *colour;
        }
        if let Some(truth) = truth {
            for (px, _) in
                rgb.iter_mut().zip(contour(truth, width, height, class, false)).filter(|(_, e)| *e)
            {
                *px = TRUTH_COLOUR;
            }
        }
    }
    RgbImage::from_fn(width as u32 * scale, height as u32 * scale, |x, y| {
        Rgb(rgb[(y / scale) as usize * width + (x / scale) as usize])
    })
}

fn png_bytes(
    encode: impl FnOnce(image::codecs::png::PngEncoder<&mut Vec<u8>>) -> image::ImageResult<()>,
) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    encode(image::codecs::png::PngEncoder::new(&mut bytes)).map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn write_png(path: &Path, bytes: Result<Vec<u8>, String>) -> Result<(), Failed> {
    let bytes = bytes.map_err(|e| fail(1, format!("cannot encode {}: {e}", path.display())))?;
    write_atomic(path, &bytes).map_err(|e| fail(1, format!("cannot write {}: {e}", path.display())))
}

pub use lvc_workflow::run_folder::InferResult;

/// One image to segment: its values (C·H·W), size and optional ground truth.
struct Subject<'a> {
    source: String,
    pixels: &'a [f32],
    height: usize,
    width: usize,
    truth: Option<&'a [u8]>,
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
        &out.join("mask.png"),
        png_bytes(|e| {
            e.write_image(mask.as_raw(), w as u32, h as u32, image::ExtendedColorType::L8)
        }),
    )?;
    let gray = window(&subject.pixels[..w * h]);
    let picture = overlay(&gray, w, h, &predicted, subject.truth, opacity, scale);
    write_png(
        &out.join("overlay.png"),
        png_bytes(|e| {
            e.write_image(
                picture.as_raw(),
                picture.width(),
                picture.height(),
                image::ExtendedColorType::Rgb8,
            )
        }),
    )?;
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
    let path = out.join("result.json");
    write_atomic(&path, &json)
        .map_err(|e| fail(1, format!("cannot write {}: {e}", path.display())))?;
    match result.dice {
        Some(dice) => outln!("{}: Dice {dice:.4} → {}", subject.source, out.display()),
        None => outln!("{}: no ground truth → {}", subject.source, out.display()),
    }
    Ok(result)
}

pub fn run(args: InferArgs) -> u8 {
    match infer(&args) {
        Ok(()) => 0,
        Err(Failed(code)) => code,
    }
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

fn infer(args: &InferArgs) -> Result<(), Failed> {
    let recorded = RunConfig::read(&args.run)?;
    // Overlays written into the run (RUN/overlays, as `make demo` does)
    // make this a writer of it (cmd::run_lock).
    let _lock =
        super::run_lock::lock_run_if_inside(&args.run, &args.out).map_err(|m| fail(2, m))?;
    if let Some(path) = &args.image {
        let loaded = DicomLoader.load(path).map_err(|e| report(2, e))?;
        let channels = recorded.image_shape[0];
        let pixels = loaded.pixels.to_f32().repeat(channels);
        let (_, segmenter) = open_run(
            &args.run,
            args.weights.as_deref(),
            [channels, loaded.rows, loaded.columns],
            &args.device,
        )?;
        let subject = Subject {
            source: path.display().to_string(),
            pixels: &pixels,
            height: loaded.rows,
            width: loaded.columns,
            truth: None,
        };
        infer_one(&segmenter, &subject, &args.out, args.opacity, args.scale)?;
        return Ok(());
    }
    let dataset_path = args.dataset.clone().unwrap_or(recorded.dataset);
    let dataset = Dataset::open(&dataset_path).map_err(|e| report(2, e))?;
    let (_, segmenter) =
        open_run(&args.run, args.weights.as_deref(), dataset.manifest.image_shape, &args.device)?;
    if let Some(text) = &args.record {
        let (case, number) = parse_record(text)?;
        let record = dataset.manifest.records.iter().find(|r| r.case == case && r.image == number).ok_or_else(|| {
            fail(2, format!("{}: no record {case}/{number:04} (see `lvc dataset inspect` for the cases)", dataset_path.display()))
        })?;
        let split = dataset.split(record.split.name()).map_err(|e| report(2, e))?;
        infer_one(
            &segmenter,
            &dataset_subject(&split, record.index),
            &args.out,
            args.opacity,
            args.scale,
        )?;
        return Ok(());
    }
    let split = dataset.split("val").map_err(|e| report(2, e))?;
    let mut results = Vec::with_capacity(split.len());
    for index in 0..split.len() {
        let record = &split.records[index];
        // `Dataset::open` checked the case; joined as a checked component
        // all the same, so no manifest can reach out of --out.
        let folder =
            lvc_fsio::join_component(&args.out, &format!("{}-{:04}", record.case, record.image))
                .map_err(|e| fail(2, format!("{}: {e}", dataset_path.display())))?;
        results.push(infer_one(
            &segmenter,
            &dataset_subject(&split, index),
            &folder,
            args.opacity,
            args.scale,
        )?);
    }
    let dices: Vec<f64> = results.iter().filter_map(|r| r.dice).collect();
    outln!(
        "{} val images, mean Dice {:.4} → {}",
        results.len(),
        super::segment::mean(dices),
        args.out.display()
    );
    let json = serde_json::to_vec_pretty(&results)
        .map_err(|e| fail(1, format!("cannot encode the index: {e}")))?;
    let path = args.out.join("index.json");
    write_atomic(&path, &json).map_err(|e| fail(1, format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_spreads_the_range_and_clips_outliers() {
        let mut pixels: Vec<f32> = (0..1000).map(|v| v as f32).collect();
        pixels.push(1e6);
        let w = window(&pixels);
        assert_eq!(w[0], 0);
        assert_eq!(*w.last().unwrap_or(&0), 255);
        assert!((120..=135).contains(&w[500]), "mid-grey, got {}", w[500]);
    }

    #[test]
    fn contours_lie_inside_the_prediction_and_outside_the_truth() {
        // 4x4 with a 2x2 square of class 1 in the middle.
        let mut mask = vec![0u8; 16];
        for i in [5, 6, 9, 10] {
            mask[i] = 1;
        }
        let inner = contour(&mask, 4, 4, 1, true);
        assert_eq!(
            inner.iter().filter(|e| **e).count(),
            4,
            "every pixel of a 2x2 square is on its edge"
        );
        let outer = contour(&mask, 4, 4, 1, false);
        assert_eq!(
            outer.iter().enumerate().filter(|(_, e)| **e).map(|(i, _)| i).collect::<Vec<_>>(),
            vec![1, 2, 4, 7, 8, 11, 13, 14]
        );
    }

    #[test]
    fn overlay_blends_the_fill_and_draws_both_contours() {
        let gray = vec![100u8; 25];
        let mut predicted = vec![0u8; 25];
        for i in [6, 7, 8, 11, 12, 13, 16, 17, 18] {
            predicted[i] = 1;
        }
        let picture = overlay(&gray, 5, 5, &predicted, Some(&predicted), 0.5, 2);
        assert_eq!(picture.dimensions(), (10, 10));
        let px = |x: u32, y: u32| picture.get_pixel(x * 2, y * 2).0;
        // 0.5 · 100 + 0.5 · (235, 45, 45), rounded.
        assert_eq!(px(2, 2), [168, 73, 73], "centre: filled, not on the contour");
        assert_eq!(px(1, 1), CLASS_COLOURS[0], "prediction contour");
        assert_eq!(px(0, 2), TRUTH_COLOUR, "truth contour outside the mask");
        assert_eq!(px(0, 0), [100, 100, 100]);
    }

    #[test]
    fn records_parse_as_case_and_number() {
        assert_eq!(parse_record("SC-HYP-1/0048").ok(), Some(("SC-HYP-1", 48)));
        assert!(parse_record("SC-HYP-1").is_err());
        assert!(parse_record("/12").is_err());
        assert!(parse_opacity("1.5").is_err());
        assert_eq!(parse_opacity("0.25"), Ok(0.25));
    }
}
