//! Pictures for the pages: dataset records with their labels, and
//! inference. Inference runs `lvc infer` (the command line's own path, in a
//! child process that loads libtorch) into a folder under
//! `ROOT/.lvc-serve/infer/N/`, then splits its result into layers the page
//! stacks: the windowed image, the predicted classes filled (the opacity
//! slider), their contours and the ground truth's contours (the toggles).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use image::{ImageEncoder, Rgba, RgbaImage};
use lvc_data::store::{Dataset, SplitData};
use lvc_workflow::overlay::{
    contour, overlay, png_bytes, rgb_png, window, CLASS_COLOURS, TRUTH_COLOUR,
};
use lvc_workflow::run_folder::{InferResult, MASK_PNG, RESULT_JSON};
use serde::Serialize;

use crate::jobs::STATE_DIR;

/// The last splits read, by (dataset folder, split name): a page of
/// thumbnails reads the split once.
#[derive(Default)]
pub struct SplitCache {
    entries: Mutex<VecDeque<(SplitKey, Arc<SplitData>)>>,
}

/// (dataset folder, split name).
type SplitKey = (PathBuf, String);

/// Splits kept in memory.
const SPLITS_KEPT: usize = 2;

impl SplitCache {
    pub fn get(&self, dataset: &Path, split: &str) -> Result<Arc<SplitData>, String> {
        let key = (dataset.to_path_buf(), split.to_string());
        let stamp_ok = {
            let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
        };
        if let Some(hit) = stamp_ok {
            return Ok(hit);
        }
        let ds = Dataset::open(dataset).map_err(|e| e.to_string())?;
        let data = Arc::new(ds.split(split).map_err(|e| e.to_string())?);
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.push_front((key, data.clone()));
        entries.truncate(SPLITS_KEPT);
        Ok(data)
    }
}

fn encode_rgba(img: &RgbaImage) -> Result<Vec<u8>, String> {
    png_bytes(|e| {
        e.write_image(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgba8)
    })
}

/// A record with its label filled at 35 % and outlined (the dataset grid).
pub fn record_png(split: &SplitData, index: usize, with_label: bool) -> Result<Vec<u8>, String> {
    if index >= split.len() {
        return Err(format!(
            "no image {index} in the {} split ({} images)",
            split.split.name(),
            split.len()
        ));
    }
    let [_, _, h, w] = split.shape;
    let gray = window(&split.image(index)[..w * h]);
    let label = split.label(index);
    let none = vec![0u8; w * h];
    let picture = overlay(&gray, w, h, if with_label { label } else { &none }, None, 0.35, 1);
    rgb_png(&picture)
}

/// The layers of one inference, as written for the page.
#[derive(Serialize, Debug)]
pub struct InferLayers {
    pub id: u64,
    pub source: String,
    pub dice: Option<f64>,
    pub jaccard: Option<f64>,
    pub predicted_pixels: Vec<u64>,
    pub width: usize,
    pub height: usize,
    /// URLs of the layers.
    pub image: String,
    pub mask: String,
    pub prediction_contour: String,
    pub truth_contour: Option<String>,
    /// `lvc infer`'s own overlay (opacity 0.4).
    pub overlay: String,
}

/// The layer files a request may fetch.
pub const LAYER_FILES: [&str; 6] = [
    "image.png",
    "mask.png",
    "prediction.png",
    "prediction-contour.png",
    "truth-contour.png",
    "overlay.png",
];

/// Numbers the inference folders.
#[derive(Default)]
pub struct InferCache {
    next: AtomicU64,
}

impl InferCache {
    /// A new folder `ROOT/.lvc-serve/infer/N` and its number.
    pub fn new_folder(&self, root: &Path) -> Result<(u64, PathBuf), String> {
        let base = root.join(STATE_DIR).join("infer");
        std::fs::create_dir_all(&base)
            .map_err(|e| format!("cannot create {}: {e}", base.display()))?;
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
            let dir = base.join(n.to_string());
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    forget_old(&base, n);
                    return Ok((n, dir));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
            }
        }
    }
}

/// Inference folders kept (the newest): a page shows one at a time.
pub const INFERENCES_KEPT: u64 = 100;

/// Removes the inference folders numbered `INFERENCES_KEPT` or more before `n`.
fn forget_old(base: &Path, n: u64) {
    let Ok(entries) = std::fs::read_dir(base) else { return };
    for entry in entries.flatten() {
        let old = entry.file_name().to_str().and_then(|s| s.parse::<u64>().ok());
        if old.is_some_and(|old| old + INFERENCES_KEPT <= n)
            && entry.file_type().is_ok_and(|t| t.is_dir())
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// What is inferred.
pub enum Subject<'a> {
    /// A dataset record `CASE/NNNN` with its gray pixels and truth.
    Record { record: &'a str, pixels: &'a [f32], truth: &'a [u8] },
    /// An uploaded DICOM file.
    Dicom(&'a Path),
}

/// Runs `lvc infer` for `subject` into `dir`, then writes the layers.
pub async fn infer(
    lvc: &Path,
    root: &Path,
    run: &Path,
    subject: Subject<'_>,
    n: u64,
    dir: &Path,
) -> Result<InferLayers, String> {
    let mut command = tokio::process::Command::new(lvc);
    command.current_dir(root).arg("infer");
    let mut run_arg = std::ffi::OsString::from("--run=");
    run_arg.push(run.as_os_str());
    let mut out_arg = std::ffi::OsString::from("--out=");
    out_arg.push(dir.as_os_str());
    command.arg(run_arg).arg(out_arg);
    match &subject {
        Subject::Record { record, .. } => {
            command.arg(format!("--record={record}"));
        }
        Subject::Dicom(path) => {
            let mut image = std::ffi::OsString::from("--image=");
            image.push(path.as_os_str());
            command.arg(image);
        }
    }
    let output = command
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot start {}: {e}", lvc.display()))?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        return Err(text.trim().to_string());
    }
    let result: InferResult = lvc_fsio::read_regular(&dir.join(RESULT_JSON), 1 << 20)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("lvc infer wrote no readable result.json")?;
    let mask_img = image::open(dir.join(MASK_PNG))
        .map_err(|e| format!("cannot read the mask: {e}"))?
        .to_luma8();
    let (w, h) = (mask_img.width() as usize, mask_img.height() as usize);
    let mask = mask_img.into_raw();
    let (gray, truth): (Vec<u8>, Option<&[u8]>) = match &subject {
        Subject::Record { pixels, truth, .. } => (window(&pixels[..w * h]), Some(truth)),
        Subject::Dicom(path) => {
            let image = lvc_data::dicom::read_image(path).map_err(|e| e.to_string())?;
            let pixels = image.to_f32();
            if pixels.len() < w * h {
                return Err("the DICOM image is smaller than the mask".into());
            }
            (window(&pixels[..w * h]), None)
        }
    };
    write_layers(dir, &gray, &mask, truth, w, h)?;
    let url = |f: &str| format!("/api/infer/{n}/{f}");
    Ok(InferLayers {
        id: n,
        source: result.source,
        dice: result.dice,
        jaccard: result.jaccard,
        predicted_pixels: result.predicted_pixels,
        width: w,
        height: h,
        image: url("image.png"),
        mask: url("prediction.png"),
        prediction_contour: url("prediction-contour.png"),
        truth_contour: truth.map(|_| url("truth-contour.png")),
        overlay: url("overlay.png"),
    })
}

/// image.png, prediction.png, prediction-contour.png, truth-contour.png.
pub fn write_layers(
    dir: &Path,
    gray: &[u8],
    mask: &[u8],
    truth: Option<&[u8]>,
    w: usize,
    h: usize,
) -> Result<(), String> {
    let (wu, hu) = (w as u32, h as u32);
    let image = RgbaImage::from_fn(wu, hu, |x, y| {
        let g = gray[y as usize * w + x as usize];
        Rgba([g, g, g, 255])
    });
    let colour = |class: u8| CLASS_COLOURS.get(usize::from(class).wrapping_sub(1)).copied();
    let fill = RgbaImage::from_fn(wu, hu, |x, y| match colour(mask[y as usize * w + x as usize]) {
        Some([r, g, b]) => Rgba([r, g, b, 255]),
        None => Rgba([0, 0, 0, 0]),
    });
    let mut edges = RgbaImage::new(wu, hu);
    let mut truth_edges = RgbaImage::new(wu, hu);
    for class in 1..=CLASS_COLOURS.len() as u8 {
        let [r, g, b] = CLASS_COLOURS[usize::from(class) - 1];
        for (i, _) in contour(mask, w, h, class, true).iter().enumerate().filter(|(_, e)| **e) {
            edges.put_pixel((i % w) as u32, (i / w) as u32, Rgba([r, g, b, 255]));
        }
        if let Some(truth) = truth {
            let [r, g, b] = TRUTH_COLOUR;
            for (i, _) in contour(truth, w, h, class, false).iter().enumerate().filter(|(_, e)| **e)
            {
                truth_edges.put_pixel((i % w) as u32, (i / w) as u32, Rgba([r, g, b, 255]));
            }
        }
    }
    let mut layers =
        vec![("image.png", image), ("prediction.png", fill), ("prediction-contour.png", edges)];
    if truth.is_some() {
        layers.push(("truth-contour.png", truth_edges));
    }
    for (name, img) in layers {
        let bytes = encode_rgba(&img)?;
        lvc_fsio::write_atomic(&dir.join(name), &bytes)
            .map_err(|e| format!("cannot write {name}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_inference_folders_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let cache = InferCache::default();
        let first = cache.new_folder(root.path()).unwrap().1;
        for _ in 0..INFERENCES_KEPT {
            cache.new_folder(root.path()).unwrap();
        }
        assert!(!first.exists());
        let kept =
            std::fs::read_dir(root.path().join(STATE_DIR).join("infer")).unwrap().count() as u64;
        assert_eq!(kept, INFERENCES_KEPT);
    }

    #[test]
    fn layers_are_transparent_outside_the_prediction() {
        let dir = tempfile::tempdir().unwrap();
        let (w, h) = (4, 4);
        let gray = vec![128u8; 16];
        let mut mask = vec![0u8; 16];
        mask[5] = 1;
        write_layers(dir.path(), &gray, &mask, Some(&mask), w, h).unwrap();
        let fill = image::open(dir.path().join("prediction.png")).unwrap().to_rgba8();
        assert_eq!(fill.get_pixel(1, 1).0[3], 255);
        assert_eq!(fill.get_pixel(0, 0).0[3], 0);
        let truth = image::open(dir.path().join("truth-contour.png")).unwrap().to_rgba8();
        assert_eq!(
            truth.get_pixel(1, 0).0,
            [TRUTH_COLOUR[0], TRUTH_COLOUR[1], TRUTH_COLOUR[2], 255]
        );
    }
}
