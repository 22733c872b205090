//! Sunnybrook contour tree + DICOM images → labelled slices, split into
//! train/val (the DIGITS `image-sunnybrook` plugin's job).
//!
//! 1. [`scan_contours`] walks the contour tree recursively (spaces in paths,
//!    extra nesting levels and `file-listings/` are fine) for
//!    `IM-<ssss>-<NNNN>-icontour-manual.txt` (and `ocontour` in io mode).
//!    The case is the folder above `contours-manual/` (or the contour's own
//!    folder when there is none), normalised (`SC-HF-I-01` = `SC-HF-I-1`).
//! 2. [`index_images`] finds one folder per case under the image root
//!    (a folder named like the case, or its `DICOM/` subfolder).
//! 3. Each contour is paired with `IM-<series>-<NNNN>.dcm` where the series
//!    comes from `--sax-map`, else the built-in map, else (or when the mapped
//!    series is absent from the folder) the series holding every contoured
//!    image number.
//! 4. The slices are decoded and rasterised on all cores; every problem is
//!    collected (not just the first).
//! 5. The surviving slices are split by patient or by image under a seed.

use super::problem::{PairingIssue, Problem};
use super::sax_map::{builtin_series, normalize_case};
use crate::contour::{read_contour_and_bytes, Contour};
use crate::dicom::StoredPixels;
use crate::parallel::map_on_all_cores;
use crate::raster::{truncate_points, LabelPlane};
use miette::{Diagnostic, NamedSource, SourceSpan};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Which contours make the label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContoursKind {
    /// i-contours only: label 1 = LV blood pool (DIGITS).
    I,
    /// o- and i-contours: 2 = myocardium (o filled, then i filled with 1).
    Io,
}

/// How the single MR plane is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Channels {
    /// One channel, `(1,H,W)`.
    L,
    /// The plane copied into three channels, `(3,H,W)` (for 3-channel
    /// pretrained nets).
    RGB,
}

impl Channels {
    pub fn count(self) -> usize {
        match self {
            Channels::L => 1,
            Channels::RGB => 3,
        }
    }
}

/// How slices are divided between train and val.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    /// Whole patients go to val (no slice of a val patient is trained on).
    Patient,
    /// DIGITS: shuffle all slices, the first floor(N·pct/100) are val.
    Image,
}

/// The two splits of a dataset.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
}

impl Split {
    pub const ALL: [Split; 2] = [Split::Train, Split::Val];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }
}

/// What `lvc dataset create` asks for.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub images: PathBuf,
    pub contours: PathBuf,
    pub sax_map: Option<PathBuf>,
    pub channels: Channels,
    pub kind: ContoursKind,
    /// Percent of the images for val, 0..=100.
    pub val_pct: u32,
    pub split: SplitKind,
    pub seed: u64,
    /// Import what is good and list the rest instead of failing.
    pub skip_bad: bool,
    /// Clip contours with points outside the image (as cv2.fillPoly would)
    /// instead of rejecting them.
    pub allow_outside: bool,
}

/// A decoded image plane, as the importer needs it.
#[derive(Clone, Debug)]
pub struct LoadedImage {
    pub rows: usize,
    pub columns: usize,
    /// Stored pixel values (no rescale), row-major, in their stored type.
    pub pixels: StoredPixels,
}

/// Where decoded images come from: DICOM files in real use
/// ([`DicomLoader`]), stand-in formats in tests.
pub trait ImageLoader: Sync {
    /// Reads image file `path` whole: a regular file only (a FIFO among the
    /// images would block the import, a device never ends), no larger than
    /// the format allows.
    fn read(&self, path: &Path) -> Result<Vec<u8>, Problem> {
        read_source(path)
    }

    /// Decodes the bytes of image file `path` (the importer reads each file
    /// once, for the checksum and for this).
    fn decode(&self, path: &Path, bytes: &[u8]) -> Result<LoadedImage, Problem>;

    /// Reads and decodes image file `path`.
    fn load(&self, path: &Path) -> Result<LoadedImage, Problem> {
        self.decode(path, &self.read(path)?)
    }
}

/// Decodes images with [`crate::dicom::decode_image`]: stored values, one
/// grayscale frame.
pub struct DicomLoader;

impl ImageLoader for DicomLoader {
    /// [`crate::dicom::read_bytes`]: what `lvc dicom export` reads, with its
    /// diagnostics (`lvc::dicom::not_a_file`, `too_large`).
    fn read(&self, path: &Path) -> Result<Vec<u8>, Problem> {
        crate::dicom::read_bytes(path).map_err(|e| Problem::new(path, e))
    }

    fn decode(&self, path: &Path, bytes: &[u8]) -> Result<LoadedImage, Problem> {
        let image = crate::dicom::decode_image(path, bytes).map_err(|e| Problem::new(path, e))?;
        let info = &image.info;
        if info.frames != 1 || info.samples_per_pixel != 1 {
            return Err(Problem::new(
                path,
                PairingIssue::NotSingleGrayscale {
                    path: path.to_path_buf(),
                    frames: info.frames,
                    samples: info.samples_per_pixel,
                },
            ));
        }
        Ok(LoadedImage {
            rows: info.rows as usize,
            columns: info.columns as usize,
            pixels: image.pixels,
        })
    }
}

/// A source file of a slice and its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceFile {
    /// Path relative to the `--images` / `--contours` root.
    pub path: String,
    pub sha256: String,
}

/// One imported slice.
#[derive(Clone, Debug)]
pub struct ImportedSlice {
    /// Normalised case name (`SC-HF-I-1`).
    pub case: String,
    pub image: u32,
    pub series: u32,
    pub dicom: SourceFile,
    /// i-contour, then o-contour in io mode.
    pub contours: Vec<SourceFile>,
    pub split: Split,
    /// The `rows*columns` stored values of the plane (the store writes it
    /// once per channel).
    pub pixels: StoredPixels,
    /// `rows*columns` labels.
    pub label: Vec<u8>,
}

/// A source file left out, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// The result of an import, ready for [`crate::store::write_dataset`].
#[derive(Debug)]
pub struct Imported {
    pub options: ImportOptions,
    pub rows: usize,
    pub columns: usize,
    /// Sorted by (split, case, image).
    pub slices: Vec<ImportedSlice>,
    /// Problems skipped under `--skip-bad`, as diagnostics.
    pub problems: Vec<Problem>,
    /// The same, as manifest entries.
    pub skipped: Vec<Skipped>,
    /// Things the user should know (auto-chosen series, …).
    pub warnings: Vec<String>,
    /// Things loaders do silently (io slices without an o-contour, …).
    pub notes: Vec<String>,
}

#[derive(Debug, Error, Diagnostic)]
pub enum ImportError {
    #[error("{} is not a folder", path.display())]
    #[diagnostic(
        code(lvc::data::import::not_a_folder),
        help(
            "pass the folder itself (--images challenge_training, --contours the contour download)"
        )
    )]
    NotAFolder { path: PathBuf },

    #[error("no *-icontour-manual.txt files under {}", path.display())]
    #[diagnostic(
        code(lvc::data::import::no_contours),
        help("--contours must be the contour download, e.g. `Sunnybrook Cardiac MR Database ContoursPart3` (searched recursively)")
    )]
    NoContours { path: PathBuf },

    #[error(transparent)]
    #[diagnostic(transparent)]
    SaxMap(#[from] SaxMapError),

    #[error("the import found {} problem(s); nothing was written", problems.len())]
    #[diagnostic(
        code(lvc::data::import::problems),
        help("fix the files named below, or pass --skip-bad to import the rest and list these in the manifest")
    )]
    Problems {
        #[related]
        problems: Vec<Problem>,
    },

    #[error("every slice was skipped ({} problem(s)); nothing to write", problems.len())]
    #[diagnostic(
        code(lvc::data::import::nothing_left),
        help("the problems below affect every slice; fix them first")
    )]
    NothingLeft {
        #[related]
        problems: Vec<Problem>,
    },
}

/// The largest `--sax-map` file read: a line per case is some 15 bytes, so
/// even a map of every Sunnybrook case is under 2 kB.
const MAX_SAX_MAP_BYTES: u64 = 1 << 20;

/// A bad line in a `--sax-map` file.
#[derive(Debug, Error, Diagnostic)]
#[error("{}:{line}: {problem}", path.display())]
#[diagnostic(
    code(lvc::data::sax_map),
    help("each line is `CASE SERIES`, e.g. `SC-N-6 984`; `#` starts a comment")
)]
pub struct SaxMapError {
    pub path: PathBuf,
    pub line: usize,
    pub problem: String,
    #[source_code]
    src: Option<Arc<NamedSource<String>>>,
    #[label("here")]
    span: Option<SourceSpan>,
}

/// Reads a `--sax-map` file: `CASE SERIES` per line, `#` comments, blank
/// lines ignored. Keys are normalised case names.
pub fn read_sax_map(path: &Path) -> Result<BTreeMap<String, u32>, SaxMapError> {
    let text = lvc_fsio::read::read_regular_to_string(path, MAX_SAX_MAP_BYTES).map_err(|e| {
        SaxMapError {
            path: path.to_path_buf(),
            line: 0,
            problem: format!("cannot read: {e}"),
            src: None,
            span: None,
        }
    })?;
    let mut map = BTreeMap::new();
    let mut offset = 0;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += raw.len();
        let content = raw.split('#').next().unwrap_or("").trim_end_matches(['\n', '\r']);
        let fields: Vec<&str> = content.split_whitespace().collect();
        let bad = |problem: String| SaxMapError {
            path: path.to_path_buf(),
            line: index + 1,
            problem,
            src: Some(Arc::new(NamedSource::new(path.display().to_string(), text.clone()))),
            span: Some((start, raw.trim_end().len()).into()),
        };
        match fields.as_slice() {
            [] => {}
            [case, series] => {
                let series: u32 = series
                    .parse()
                    .map_err(|_| bad(format!("`{series}` is not a series number")))?;
                map.insert(normalize_case(case), series);
            }
            _ => {
                return Err(bad(format!("expected `CASE SERIES`, found {} field(s)", fields.len())))
            }
        }
    }
    Ok(map)
}

/// A contour file found in the tree.
#[derive(Clone, Debug)]
pub struct ContourFile {
    /// Normalised case name.
    pub case: String,
    pub image: u32,
    /// `i` or `o`.
    pub kind: char,
    pub path: PathBuf,
}

/// Parses `IM-<ssss>-<NNNN>-<k>contour-manual.txt` → (image number, kind).
fn contour_file_name(name: &str) -> Option<(u32, char)> {
    let rest = name.strip_prefix("IM-")?.strip_suffix("contour-manual.txt")?;
    let (series, rest) = rest.split_once('-')?;
    let (image, kind) = rest.split_once('-')?;
    let four_digits = |s: &str| s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit());
    if !four_digits(series) || !four_digits(image) {
        return None;
    }
    let kind = match kind {
        "i" => 'i',
        "o" => 'o',
        _ => return None,
    };
    Some((image.parse().ok()?, kind))
}

/// Parses `IM-<ssss>-<NNNN>.dcm` → (series, image number).
fn image_file_name(name: &str) -> Option<(u32, u32)> {
    let stem = name.strip_suffix(".dcm")?.strip_prefix("IM-")?;
    let (series, image) = stem.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(series) || !digits(image) {
        return None;
    }
    Some((series.parse().ok()?, image.parse().ok()?))
}

/// Folders deeper than this below a root are not searched (guards against
/// link loops).
const MAX_DEPTH: usize = 12;

/// Lists a folder's entries sorted by name (walk order must not depend on
/// the file system). An unreadable folder is added to `problems` instead.
fn sorted_entries(dir: &Path, problems: &mut Vec<Problem>) -> Option<Vec<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(read) => {
            let mut entries: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            Some(entries)
        }
        Err(source) => {
            problems.push(Problem::new(dir, FolderUnreadable { path: dir.to_path_buf(), source }));
            None
        }
    }
}

#[derive(Debug, Error, Diagnostic)]
#[error("cannot list folder {}: {source}", path.display())]
#[diagnostic(code(lvc::data::import::io), help("check the folder's permissions"))]
struct FolderUnreadable {
    path: PathBuf,
    source: std::io::Error,
}

/// What [`scan_contours`] finds in a contour tree.
#[derive(Debug, Default)]
pub struct ContourScan {
    /// The contour files of the wanted kinds.
    pub found: Vec<ContourFile>,
    /// Unreadable folders, `contours-manual` folders without i-contours.
    pub problems: Vec<Problem>,
    /// Folders named like contour files (not read as contours).
    pub warnings: Vec<String>,
}

/// Walks the contour tree.
pub fn scan_contours(root: &Path) -> ContourScan {
    let mut scan = ContourScan::default();
    walk_contours(root, 0, &mut scan);
    scan
}

fn walk_contours(dir: &Path, depth: usize, scan: &mut ContourScan) {
    let Some(entries) = sorted_entries(dir, &mut scan.problems) else { return };
    let before = scan.found.iter().filter(|c| c.kind == 'i').count();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if contour_file_name(name).is_some() {
                // Say so: a contour the user expects here is missing
                // (an unpacking accident?), and its slice is left out.
                scan.warnings.push(format!(
                    "{} is a folder, not a contour file; it is not read as a contour",
                    path.display()
                ));
            }
            if name != "file-listings" && depth < MAX_DEPTH {
                walk_contours(&path, depth + 1, scan);
            }
        } else if let Some((image, kind)) = contour_file_name(name) {
            scan.found.push(ContourFile { case: case_of_contour(&path), image, kind, path });
        }
    }
    let is_contours_manual = dir.file_name().is_some_and(|n| n == "contours-manual");
    if is_contours_manual && scan.found.iter().filter(|c| c.kind == 'i').count() == before {
        let case_dir = dir.parent().unwrap_or(dir);
        scan.problems.push(Problem::new(
            case_dir,
            PairingIssue::EmptyContourFolder { folder: dir.to_path_buf(), kind: "i" },
        ));
    }
}

/// The case folder of a contour: the folder above `contours-manual/`, or
/// the contour's own folder in flat trees.
fn case_of_contour(path: &Path) -> String {
    let ancestors: Vec<&Path> = path.ancestors().skip(1).collect();
    let case_dir = ancestors
        .iter()
        .position(|a| a.file_name().is_some_and(|n| n == "contours-manual"))
        .and_then(|i| ancestors.get(i + 1))
        .or_else(|| ancestors.first())
        .copied();
    let name = case_dir
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    normalize_case(&name)
}

/// One case's image folder: series → image numbers present.
#[derive(Clone, Debug, Default)]
pub struct ImageFolder {
    pub path: PathBuf,
    pub series: BTreeMap<u32, BTreeSet<u32>>,
}

impl ImageFolder {
    fn file(&self, series: u32, image: u32) -> PathBuf {
        self.path.join(format!("IM-{series:04}-{image:04}.dcm"))
    }
}

/// Finds the image folder of every case under `root` (searched up to a few
/// levels deep; a `DICOM/` folder counts for its parent, as in the
/// DICOMPart layout). Keyed by normalised case name; the first folder in
/// sorted walk order wins.
pub fn index_images(root: &Path) -> (BTreeMap<String, ImageFolder>, Vec<Problem>) {
    let mut index = BTreeMap::new();
    let mut problems = Vec::new();
    walk_images(root, 0, &mut index, &mut problems);
    (index, problems)
}

fn walk_images(
    dir: &Path,
    depth: usize,
    index: &mut BTreeMap<String, ImageFolder>,
    problems: &mut Vec<Problem>,
) {
    let Some(entries) = sorted_entries(dir, problems) else { return };
    let mut folder = ImageFolder { path: dir.to_path_buf(), series: BTreeMap::new() };
    let mut subdirs = Vec::new();
    for path in entries {
        if path.is_dir() {
            subdirs.push(path);
        } else if let Some((series, image)) =
            path.file_name().and_then(|n| n.to_str()).and_then(image_file_name)
        {
            folder.series.entry(series).or_default().insert(image);
        }
    }
    let name_of =
        |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let case_name = if name_of(dir) == "DICOM" {
        dir.parent().map(name_of).unwrap_or_default()
    } else {
        name_of(dir)
    };
    if depth > 0 {
        let key = normalize_case(&case_name);
        let replace = index
            .get(&key)
            .is_none_or(|old: &ImageFolder| old.series.is_empty() && !folder.series.is_empty());
        if replace {
            index.insert(key, folder);
        }
    }
    if depth < MAX_DEPTH {
        for sub in subdirs {
            walk_images(&sub, depth + 1, index, problems);
        }
    }
}

/// A contour paired with its image, before decoding.
#[derive(Clone, Debug)]
struct PlannedSlice {
    case: String,
    image: u32,
    series: u32,
    dicom: PathBuf,
    /// i-contour, then o-contour in io mode.
    contours: Vec<PathBuf>,
}

/// Pairs contours with images. Problems for whole cases and single slices
/// are collected; the slices that could be planned are returned.
fn plan(
    opts: &ImportOptions,
    contours: &[ContourFile],
    images: &BTreeMap<String, ImageFolder>,
    sax_map: &BTreeMap<String, u32>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Vec<PlannedSlice> {
    // case -> image -> (i path, o path)
    let mut by_case: BTreeMap<&str, BTreeMap<u32, [Option<&Path>; 2]>> = BTreeMap::new();
    for c in contours {
        if c.kind == 'o' && opts.kind == ContoursKind::I {
            continue;
        }
        let slot = usize::from(c.kind == 'o');
        let entry = by_case.entry(&c.case).or_default().entry(c.image).or_default();
        match entry[slot] {
            Some(first) => problems.push(Problem::new(
                &c.path,
                PairingIssue::DuplicateContour {
                    case: c.case.clone(),
                    image: c.image,
                    first: first.to_path_buf(),
                    duplicate: c.path.clone(),
                },
            )),
            None => entry[slot] = Some(&c.path),
        }
    }
    let mut planned = Vec::new();
    for (case, slices) in by_case {
        let mut slices: Vec<(u32, &Path, Option<&Path>)> =
            slices.into_iter().filter_map(|(image, [i, o])| i.map(|i| (image, i, o))).collect();
        if opts.kind == ContoursKind::Io {
            let without_o: Vec<u32> =
                slices.iter().filter(|s| s.2.is_none()).map(|s| s.0).collect();
            if !without_o.is_empty() {
                notes.push(format!(
                    "{case}: {} slice(s) without an o-contour skipped (io mode): {without_o:?}",
                    without_o.len()
                ));
            }
            slices.retain(|s| s.2.is_some());
        }
        let Some(&(_, first_contour, _)) = slices.first() else { continue };
        let Some(folder) = images.get(case) else {
            let contour_dir = first_contour.parent().unwrap_or(first_contour).to_path_buf();
            problems.push(Problem::new(
                &contour_dir,
                PairingIssue::NoCaseFolder {
                    case: case.to_string(),
                    contours: contour_dir.clone(),
                    images: opts.images.clone(),
                },
            ));
            continue;
        };
        if folder.series.is_empty() {
            problems.push(Problem::new(
                &folder.path,
                PairingIssue::EmptyImageFolder { folder: folder.path.clone() },
            ));
            continue;
        }
        let wanted: BTreeSet<u32> = slices.iter().map(|s| s.0).collect();
        let mapped = sax_map.get(case).copied().or_else(|| builtin_series(case));
        let series = match mapped {
            Some(s) if folder.series.contains_key(&s) => s,
            _ => {
                let Some(s) = detect_series(case, folder, &wanted, mapped, warnings) else {
                    problems.push(Problem::new(
                        &folder.path,
                        PairingIssue::NoSeries {
                            case: case.to_string(),
                            folder: folder.path.clone(),
                            wanted: format!("{wanted:?}"),
                        },
                    ));
                    continue;
                };
                s
            }
        };
        for (image, i, o) in slices {
            let dicom = folder.file(series, image);
            let present = folder.series.get(&series).is_some_and(|imgs| imgs.contains(&image));
            if !present {
                problems.push(Problem::new(
                    i,
                    PairingIssue::MissingImage { contour: i.to_path_buf(), image: dicom },
                ));
                continue;
            }
            let contours = std::iter::once(i).chain(o).map(Path::to_path_buf).collect();
            planned.push(PlannedSlice { case: case.to_string(), image, series, dicom, contours });
        }
    }
    planned
}

/// The series of `folder` holding every wanted image number; on a tie the
/// one with the most images. Warns which one was chosen.
fn detect_series(
    case: &str,
    folder: &ImageFolder,
    wanted: &BTreeSet<u32>,
    mapped: Option<u32>,
    warnings: &mut Vec<String>,
) -> Option<u32> {
    let candidates: Vec<(u32, usize)> = folder
        .series
        .iter()
        .filter(|(_, imgs)| wanted.is_subset(imgs))
        .map(|(&s, imgs)| (s, imgs.len()))
        .collect();
    // Most images first; among equals the lowest series number.
    let &(best, count) = candidates.iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))?;
    let why = match mapped {
        Some(m) => format!("mapped series {m:04} is not in {}", folder.path.display()),
        None => "not in the SAX map".to_string(),
    };
    if candidates.len() == 1 {
        warnings.push(format!(
            "{case}: {why}; using series {best:04}, the only one holding all contoured images"
        ));
    } else {
        let all: Vec<String> =
            candidates.iter().map(|(s, n)| format!("{s:04} ({n} images)")).collect();
        warnings.push(format!(
            "{case}: {why}; series {} all hold the contoured images, using {best:04} ({count} images) — pin it with --sax-map",
            all.join(", ")
        ));
    }
    Some(best)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a source image whole (its checksum and its decoding both use
/// these bytes), for loaders of formats without their own reader: a
/// regular file of at most the size of the largest DICOM file.
fn read_source(path: &Path) -> Result<Vec<u8>, Problem> {
    lvc_fsio::read::read_regular(path, crate::dicom::MAX_FILE_BYTES)
        .map_err(|source| Problem::new(path, FileUnreadable { path: path.to_path_buf(), source }))
}

#[derive(Debug, Error, Diagnostic)]
#[error("cannot read {}: {source}", path.display())]
#[diagnostic(code(lvc::data::import::io), help("check that the file exists and is readable"))]
struct FileUnreadable {
    path: PathBuf,
    source: std::io::Error,
}

fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().into_owned()
}

/// A decoded, rasterised slice before size checks and splitting.
struct LoadedSlice {
    plan: PlannedSlice,
    image: LoadedImage,
    label: Vec<u8>,
    dicom_sha: String,
    contour_shas: Vec<String>,
}

/// Reads a contour once for its checksum and its points.
fn read_contour_and_sha(path: &Path) -> Result<(Contour, String), Problem> {
    let (contour, bytes) = read_contour_and_bytes(path).map_err(|e| Problem::new(path, e))?;
    Ok((contour, sha256_hex(&bytes)))
}

fn load_slice(
    opts: &ImportOptions,
    loader: &dyn ImageLoader,
    plan: PlannedSlice,
) -> Result<LoadedSlice, Vec<Problem>> {
    let image = loader
        .read(&plan.dicom)
        .and_then(|bytes| Ok((loader.decode(&plan.dicom, &bytes)?, sha256_hex(&bytes))));
    let contours: Vec<Result<(Contour, String), Problem>> =
        plan.contours.iter().map(|p| read_contour_and_sha(p)).collect();
    let mut problems = Vec::new();
    let image = image.map_err(|p| problems.push(p)).ok();
    let (contours, contour_shas): (Vec<Contour>, Vec<String>) =
        contours.into_iter().filter_map(|c| c.map_err(|p| problems.push(p)).ok()).unzip();
    let Some((image, dicom_sha)) = image else { return Err(problems) };
    if !opts.allow_outside {
        for c in &contours {
            if let Err(e) = c.check_inside(image.columns, image.rows) {
                problems.push(Problem::new(&c.path, e));
            }
        }
    }
    if !problems.is_empty() || contours.len() != plan.contours.len() {
        return Err(problems);
    }
    let mut plane = LabelPlane::new(image.columns, image.rows);
    // io: o filled with 2 first, then i with 1 on top (i is contours[0]).
    for (contour, value) in contours.iter().zip([1u8, 2]).rev() {
        plane.fill_polygon(&truncate_points(&contour.xy()), value);
    }
    Ok(LoadedSlice { plan, image, label: plane.data, dicom_sha, contour_shas })
}

/// Decodes and rasterises all planned slices on all cores, in order.
fn load_all(
    opts: &ImportOptions,
    loader: &dyn ImageLoader,
    plans: Vec<PlannedSlice>,
) -> Vec<Result<LoadedSlice, Vec<Problem>>> {
    // A worker only panics on a bug; re-raise it rather than lose slices.
    map_on_all_cores(&plans, |_, plan| load_slice(opts, loader, plan.clone()))
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Runs the whole import. Without `skip_bad`, any problem fails the import
/// with all problems listed; with it, the good slices are kept.
pub fn import(opts: &ImportOptions, loader: &dyn ImageLoader) -> Result<Imported, ImportError> {
    for dir in [&opts.images, &opts.contours] {
        if !dir.is_dir() {
            return Err(ImportError::NotAFolder { path: dir.clone() });
        }
    }
    let sax_map = match &opts.sax_map {
        Some(path) => read_sax_map(path)?,
        None => BTreeMap::new(),
    };
    let ContourScan { found: contours, mut problems, mut warnings } = scan_contours(&opts.contours);
    if !contours.iter().any(|c| c.kind == 'i') {
        return Err(ImportError::NoContours { path: opts.contours.clone() });
    }
    let (images, image_problems) = index_images(&opts.images);
    problems.extend(image_problems);
    let mut notes = Vec::new();
    let plans = plan(opts, &contours, &images, &sax_map, &mut problems, &mut warnings, &mut notes);

    let mut loaded = Vec::new();
    for result in load_all(opts, loader, plans) {
        match result {
            Ok(slice) => loaded.push(slice),
            Err(p) => problems.extend(p),
        }
    }
    let (rows, columns) = most_common_size(&loaded);
    loaded.retain(|s| {
        let fits = (s.image.rows, s.image.columns) == (rows, columns);
        if !fits {
            problems.push(Problem::new(
                &s.plan.dicom,
                PairingIssue::SizeMismatch {
                    path: s.plan.dicom.clone(),
                    got_h: s.image.rows,
                    got_w: s.image.columns,
                    want_h: rows,
                    want_w: columns,
                },
            ));
        }
        fits
    });
    if !problems.is_empty() && !opts.skip_bad {
        return Err(ImportError::Problems { problems });
    }
    if loaded.is_empty() {
        return Err(ImportError::NothingLeft { problems });
    }
    let skipped = problems
        .iter()
        .map(|p| Skipped { path: p.file().to_string_lossy().into_owned(), reason: p.to_string() })
        .collect();

    let mut slices: Vec<ImportedSlice> = loaded
        .into_iter()
        .map(|s| ImportedSlice {
            case: s.plan.case,
            image: s.plan.image,
            series: s.plan.series,
            dicom: SourceFile { path: relative(&s.plan.dicom, &opts.images), sha256: s.dicom_sha },
            contours: s
                .plan
                .contours
                .iter()
                .zip(s.contour_shas)
                .map(|(p, sha256)| SourceFile { path: relative(p, &opts.contours), sha256 })
                .collect(),
            split: Split::Train,
            pixels: s.image.pixels,
            label: s.label,
        })
        .collect();
    assign_splits(&mut slices, opts.split, opts.val_pct, opts.seed);
    slices.sort_by(|a, b| (a.split, &a.case, a.image).cmp(&(b.split, &b.case, b.image)));
    Ok(Imported {
        options: opts.clone(),
        rows,
        columns,
        slices,
        problems,
        skipped,
        warnings,
        notes,
    })
}

/// The (rows, columns) most slices have; ties go to the larger count of
/// pixels, then the smaller size, so the choice is deterministic.
fn most_common_size(slices: &[LoadedSlice]) -> (usize, usize) {
    let mut counts: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for s in slices {
        *counts.entry((s.image.rows, s.image.columns)).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(size, n)| (n, std::cmp::Reverse(size)))
        .map_or((0, 0), |(size, _)| size)
}

/// Assigns `split` to each slice. The slices are first put in (case,
/// image) order so the result depends only on the data and the seed.
///
/// - `Image` (DIGITS): shuffle all slices, the first floor(N·pct/100) are
///   val.
/// - `Patient`: shuffle the case list; walk it and move a case to val when
///   that brings the val image count closer to N·pct/100 (the first case
///   always goes when pct > 0, so val has at least one patient).
pub fn assign_splits(slices: &mut [ImportedSlice], kind: SplitKind, val_pct: u32, seed: u64) {
    slices.sort_by(|a, b| (&a.case, a.image).cmp(&(&b.case, b.image)));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let total = slices.len();
    let pct = val_pct.min(100) as usize;
    match kind {
        SplitKind::Image => {
            let mut order: Vec<usize> = (0..total).collect();
            order.shuffle(&mut rng);
            let n_val = total * pct / 100;
            for (rank, &i) in order.iter().enumerate() {
                slices[i].split = if rank < n_val { Split::Val } else { Split::Train };
            }
        }
        SplitKind::Patient => {
            let mut cases: Vec<(String, usize)> = Vec::new();
            for s in slices.iter() {
                match cases.last_mut() {
                    Some((c, n)) if *c == s.case => *n += 1,
                    _ => cases.push((s.case.clone(), 1)),
                }
            }
            cases.shuffle(&mut rng);
            // Work in hundredths of an image to stay in integers.
            let target = total * pct;
            let mut val_images = 0usize;
            let mut val_cases = BTreeSet::new();
            for (case, n) in &cases {
                let closer = (val_images + n) * 100;
                let gets_closer = closer.abs_diff(target) < (val_images * 100).abs_diff(target);
                if pct > 0 && (val_cases.is_empty() || gets_closer) {
                    val_images += n;
                    val_cases.insert(case.clone());
                }
            }
            for s in slices.iter_mut() {
                s.split = if val_cases.contains(&s.case) { Split::Val } else { Split::Train };
            }
        }
    }
}

#[cfg(test)]
mod tests;
