//! A short-axis cine-MRI phantom written in the Sunnybrook challenge layout
//! (layout A of shared/notes/sunnybrook_facts.md), with expert-style
//! contours as ground truth. See docs/phantom.md for what it models.
//!
//! ```text
//! OUT/challenge_training/<case>/IM-<sax 4d>-<image 4d>.dcm   SAX cine frames
//! OUT/challenge_training/<case>/IM-<loc 4d>-000<k>.dcm       a localizer series
//! OUT/Sunnybrook Cardiac MR Database ContoursPart3/TrainingDataContours/
//!     <case, 2-digit>/contours-manual/IRCCI-expert/IM-0001-<image 4d>-{i,o}contour-manual.txt
//!     file-listings/
//! ```

mod anatomy;

use crate::dicom::write::{uid_2_25, write_mr_slice, MrSlice, WriteSyntax};
use crate::dicom::{DicomError, StoredPixels};
use crate::parallel::map_on_all_cores;
use crate::sunnybrook::sax_map::BUILTIN_SAX_MAP;
use anatomy::{Group, Heart, Patient, PHASES, SIZE};
use lvc_fsio::write_atomic;
use miette::Diagnostic;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The image folder, as in the challenge download.
pub const IMAGES_DIR: &str = "challenge_training";
/// The contour part folder (note the spaces).
pub const CONTOURS_DIR: &str = "Sunnybrook Cardiac MR Database ContoursPart3";
/// The contour split folder inside [`CONTOURS_DIR`].
pub const CONTOURS_SPLIT_DIR: &str = "TrainingDataContours";
/// Slice thickness, mm (the challenge protocol's 8 mm).
pub const SLICE_THICKNESS_MM: f64 = 8.0;
/// Distance between slice centres, mm (8 mm slices with a 2 mm gap).
pub const SLICE_SPACING_MM: f64 = 10.0;
/// Bits Stored of every phantom image.
pub const BITS_STORED: u16 = 12;
/// Frames in the localizer series.
const LOCALIZER_IMAGES: usize = 3;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct PhantomOptions {
    /// Number of patients, 1..=45, taken from the SAX map in order.
    pub cases: usize,
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct PhantomSummary {
    pub cases: Vec<String>,
    pub dicom_files: usize,
    pub icontour_files: usize,
    pub ocontour_files: usize,
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum PhantomError {
    #[error("--cases {requested}: the phantom has {available} case ids (those of the Sunnybrook SAX map)")]
    #[diagnostic(code(lvc::phantom::cases), help("ask for 1 to {available} cases"))]
    Cases { requested: usize, available: usize },
    #[error("{path}: cannot {action}: {source}")]
    #[diagnostic(
        code(lvc::phantom::io),
        help("check that the output folder is writable and the disk is not full")
    )]
    Io { path: PathBuf, action: &'static str, source: std::io::Error },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Dicom(#[from] DicomError),
}

/// The phases written for each slice: ED, ES, and one mid-systolic and one
/// mid-diastolic frame (the real series have all 20; instance numbers keep
/// the real `slice * 20 + phase + 1` so the gaps are visible).
pub fn written_phases(es_phase: usize) -> Vec<usize> {
    let mut phases = vec![0, es_phase / 2, es_phase, (es_phase + PHASES) / 2 + 1];
    phases.sort_unstable();
    phases.dedup();
    phases
}

/// The case id with every number padded to 2 digits (`SC-HF-I-1` →
/// `SC-HF-I-01`), as the contour folders name cases.
pub fn padded_case(case: &str) -> String {
    case.split('-')
        .map(|t| {
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                format!("{t:0>2}")
            } else {
                t.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The challenge's contour text: `x y` per line, two decimals, newline-terminated.
pub fn contour_text(points: &[(f64, f64)]) -> String {
    let mut text = String::with_capacity(points.len() * 14);
    for (x, y) in points {
        let _ = writeln!(text, "{x:.2} {y:.2}");
    }
    text
}

/// A 128-bit value from the seed and a path of indices (SplitMix64 steps),
/// so each UID and noise stream depends only on what it belongs to.
fn mix(seed: u64, parts: &[u64]) -> u128 {
    let step = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut hi = step(seed);
    let mut lo = step(seed ^ 0xA5A5_A5A5_A5A5_A5A5);
    for &p in parts {
        hi = step(hi ^ p);
        lo = step(lo.wrapping_add(p).rotate_left(17));
    }
    (u128::from(hi) << 64) | u128::from(lo)
}

fn rng_for(seed: u64, parts: &[u64]) -> ChaCha8Rng {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&mix(seed, parts).to_le_bytes());
    bytes[16..].copy_from_slice(&mix(!seed, parts).to_le_bytes());
    ChaCha8Rng::from_seed(bytes)
}

fn create_dir(path: &Path) -> Result<(), PhantomError> {
    std::fs::create_dir_all(path).map_err(|source| PhantomError::Io {
        path: path.into(),
        action: "create folder",
        source,
    })
}

fn write_text(path: &Path, text: &str) -> Result<(), PhantomError> {
    write_atomic(path, text.as_bytes()).map_err(|source| PhantomError::Io {
        path: path.into(),
        action: "write",
        source,
    })
}

/// Study-level identity shared by all images of a case.
struct Study {
    case: String,
    index: u64,
    study_uid: String,
    frame_of_reference_uid: String,
}

impl Study {
    fn slice(
        &self,
        p: &Patient,
        series: u32,
        description: &str,
        seed: u64,
        instance: usize,
    ) -> MrSlice {
        MrSlice {
            patient_name: format!("Phantom^{}", self.case),
            patient_id: self.case.clone(),
            study_instance_uid: self.study_uid.clone(),
            study_description: "lvc cardiac phantom".into(),
            series_instance_uid: uid_2_25(mix(seed, &[self.index, 2, u64::from(series)])),
            series_description: description.into(),
            series_number: i64::from(series),
            sop_instance_uid: uid_2_25(mix(
                seed,
                &[self.index, 3, u64::from(series), instance as u64],
            )),
            frame_of_reference_uid: self.frame_of_reference_uid.clone(),
            instance_number: instance as i64,
            rows: SIZE as u16,
            columns: SIZE as u16,
            pixel_spacing: [p.spacing, p.spacing],
            slice_thickness: SLICE_THICKNESS_MM,
            slice_location: 0.0,
            image_position_patient: [0.0; 3],
            image_orientation_patient: p.orientation,
            trigger_time: 0.0,
            bits_stored: BITS_STORED,
            rescale_slope: 1.0,
            rescale_intercept: 0.0,
            window_center: (0.45 * p.blood_raw).round(),
            window_width: (1.1 * p.blood_raw).round(),
            pixels: StoredPixels::U16(Vec::new()),
        }
    }
}

/// Image Position (Patient) of the top-left pixel of SAX slice `slice`: the
/// image centre moves along the plane normal by the slice spacing.
fn image_position(p: &Patient, slice: usize) -> ([f64; 3], f64) {
    let o = p.orientation;
    let (row, col) = ([o[0], o[1], o[2]], [o[3], o[4], o[5]]);
    let normal = [
        row[1] * col[2] - row[2] * col[1],
        row[2] * col[0] - row[0] * col[2],
        row[0] * col[1] - row[1] * col[0],
    ];
    let location = -20.0 - SLICE_SPACING_MM * slice as f64;
    let half = SIZE as f64 / 2.0 * p.spacing;
    let position = [0, 1, 2].map(|k| normal[k] * location - row[k] * half - col[k] * half);
    (position, location)
}

/// What one case wrote.
struct CaseOutput {
    dicom_files: usize,
    icontour_files: usize,
    ocontour_files: usize,
    /// Lines for file-listings/, relative to the contour split folder.
    listing: String,
}

/// Writes the phantom into `out` (created if needed). Cases are generated
/// on all cores; each depends only on (seed, case index), so the bytes do
/// not depend on the thread count.
pub fn generate(out: &Path, options: &PhantomOptions) -> Result<PhantomSummary, PhantomError> {
    if options.cases == 0 || options.cases > BUILTIN_SAX_MAP.len() {
        return Err(PhantomError::Cases {
            requested: options.cases,
            available: BUILTIN_SAX_MAP.len(),
        });
    }
    let contours_root = out.join(CONTOURS_DIR).join(CONTOURS_SPLIT_DIR);
    create_dir(&out.join(IMAGES_DIR))?;
    create_dir(&contours_root.join("file-listings"))?;
    let cases = &BUILTIN_SAX_MAP[..options.cases];
    let results = map_on_all_cores(cases, |index, &(case, series)| {
        generate_case(out, options.seed, index as u64, case, series)
    })
    .map_err(|_| PhantomError::Io {
        path: out.to_path_buf(),
        action: "generate every case",
        source: std::io::Error::other("a worker thread stopped early"),
    })?;
    let mut summary =
        PhantomSummary { cases: Vec::new(), dicom_files: 0, icontour_files: 0, ocontour_files: 0 };
    let mut listing = String::new();
    for (result, &(case, _)) in results.into_iter().zip(cases) {
        let output = result?;
        summary.cases.push(case.to_string());
        summary.dicom_files += output.dicom_files;
        summary.icontour_files += output.icontour_files;
        summary.ocontour_files += output.ocontour_files;
        listing.push_str(&output.listing);
    }
    write_text(&contours_root.join("file-listings").join("icontour-files.txt"), &listing)?;
    Ok(summary)
}

/// Writes one patient: the SAX frames, the localizer and the contours.
fn generate_case(
    out: &Path,
    seed: u64,
    index: u64,
    case: &str,
    sax_series: u32,
) -> Result<CaseOutput, PhantomError> {
    let patient = Patient::draw(Group::of_case(case), &mut rng_for(seed, &[index, 0]));
    let study = Study {
        case: case.to_string(),
        index,
        study_uid: uid_2_25(mix(seed, &[index, 1])),
        frame_of_reference_uid: uid_2_25(mix(seed, &[index, 4])),
    };
    let coil_field = patient.coil_field();
    let image_dir = out.join(IMAGES_DIR).join(case);
    let contour_dir = out
        .join(CONTOURS_DIR)
        .join(CONTOURS_SPLIT_DIR)
        .join(padded_case(case))
        .join("contours-manual")
        .join("IRCCI-expert");
    create_dir(&image_dir)?;
    create_dir(&contour_dir)?;
    let mut output =
        CaseOutput { dicom_files: 0, icontour_files: 0, ocontour_files: 0, listing: String::new() };

    // The o-contour is missing on the most basal slice and, by chance, one more.
    let mut contour_rng = rng_for(seed, &[index, 5]);
    let skipped_o = rand::Rng::gen_range(&mut contour_rng, 1..patient.slices + 3);
    for slice in 0..patient.slices {
        let background = patient.background(slice);
        let (position, location) = image_position(&patient, slice);
        for phase in written_phases(patient.es_phase) {
            let image_number = slice * PHASES + phase + 1;
            let heart = patient.heart(slice, phase);
            let mut image = background.clone();
            patient.paint_heart(&heart, &mut image);
            let raw = patient.acquire(
                image,
                &coil_field,
                &mut rng_for(seed, &[index, 6, slice as u64, phase as u64]),
            );
            let mut dicom =
                study.slice(&patient, sax_series, "CINE SAX FIESTA", seed, image_number);
            dicom.slice_location = location;
            dicom.image_position_patient = position;
            dicom.trigger_time = (phase as f64 * patient.rr_ms / PHASES as f64).round();
            dicom.pixels = StoredPixels::U16(raw);
            let name = format!("IM-{sax_series:04}-{image_number:04}.dcm");
            write_mr_slice(&image_dir.join(name), &dicom, WriteSyntax::ExplicitVrLittleEndian)?;
            output.dicom_files += 1;
            if phase == 0 || phase == patient.es_phase {
                let counts = write_contours(
                    &contour_dir,
                    image_number,
                    &heart,
                    slice != 0 && slice != skipped_o,
                )?;
                output.icontour_files += counts.0;
                output.ocontour_files += counts.1;
                let _ = writeln!(
                    output.listing,
                    "{}/contours-manual/IRCCI-expert/IM-0001-{image_number:04}-icontour-manual.txt",
                    padded_case(case)
                );
            }
        }
    }
    let localizer_series = if sax_series == 1 { 2 } else { 1 };
    for k in 0..LOCALIZER_IMAGES {
        let raw = patient.acquire(
            patient.localizer(k),
            &coil_field,
            &mut rng_for(seed, &[index, 7, k as u64]),
        );
        let mut dicom = study.slice(&patient, localizer_series, "3-PLANE LOC", seed, k + 1);
        dicom.slice_thickness = 10.0;
        dicom.image_orientation_patient = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0];
        dicom.image_position_patient = [-160.0, -20.0 + 10.0 * k as f64, 160.0];
        dicom.pixels = StoredPixels::U16(raw);
        let name = format!("IM-{localizer_series:04}-{:04}.dcm", k + 1);
        write_mr_slice(&image_dir.join(name), &dicom, WriteSyntax::ExplicitVrLittleEndian)?;
        output.dicom_files += 1;
    }
    Ok(output)
}

/// Writes the i-contour (always) and o-contour (when `with_outer`) of one
/// frame; returns how many of each were written.
fn write_contours(
    dir: &Path,
    image_number: usize,
    heart: &Heart,
    with_outer: bool,
) -> Result<(usize, usize), PhantomError> {
    let name = |kind: &str| dir.join(format!("IM-0001-{image_number:04}-{kind}contour-manual.txt"));
    write_text(&name("i"), &contour_text(&heart.contour(|t| heart.r_endo(t))))?;
    if with_outer {
        write_text(&name("o"), &contour_text(&heart.contour(|t| heart.r_epi(t))))?;
    }
    Ok((1, usize::from(with_outer)))
}

#[cfg(test)]
mod tests;
