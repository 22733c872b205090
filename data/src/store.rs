//! The dataset folder: `manifest.json` plus, per split, `images.npy`
//! (N,C,H,W) and `labels.npy` (N,1,H,W) u8.
//!
//! Images hold the DICOM stored values exactly, in the narrowest type that
//! holds all of them ([`ImageDtype`]: u16 or i16 for 16-bit DICOM, f32 only
//! when a dataset mixes values no 16-bit type holds); [`Dataset::split`]
//! hands them to a trainer as f32. Datasets are written in
//! `.<name>.tmp-<pid>` next to the target and renamed into place, so the
//! target is either absent, the old dataset, or the complete new one; every
//! file is synced before the rename.

use crate::dicom::StoredPixels;
use crate::npy::{read_npy, NpyArray, NpyData, NpyDtype, NpyError};
use crate::sunnybrook::import::{
    Channels, ContoursKind, Imported, ImportedSlice, Skipped, SourceFile, Split, SplitKind,
};
use lvc_fsio::WritebackFile;
use miette::Diagnostic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Bumped when the layout or a manifest field changes meaning.
/// 2: images in their stored integer type (`image_dtype`), not always f32.
pub const FORMAT_VERSION: u32 = 2;
/// Version 1 datasets (f32 images) read as before.
const OLDEST_READABLE_VERSION: u32 = 1;
const FORMAT_NAME: &str = "lvc-dataset";
const MANIFEST: &str = "manifest.json";

/// Class names by label value.
pub fn class_names(kind: ContoursKind) -> Vec<String> {
    let mut names = vec!["background".to_string(), "left ventricle".to_string()];
    if kind == ContoursKind::Io {
        names.push("myocardium".to_string());
    }
    names
}

/// RGB colour per label value: 0 black, 1 white (DIGITS' palette), 2 red.
pub fn palette(kind: ContoursKind) -> Vec<[u8; 3]> {
    let colours = [[0, 0, 0], [255, 255, 255], [255, 0, 0]];
    colours[..class_names(kind).len()].to_vec()
}

/// Where the slices came from and how they were read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub images: String,
    pub contours: String,
    pub sax_map: Option<String>,
    pub contours_kind: ContoursKind,
    pub allow_outside: bool,
    /// Checksum algorithm of the per-file checksums in `records`.
    pub checksum: String,
}

/// How train/val were chosen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitRule {
    pub kind: SplitKind,
    pub seed: u64,
    pub val_pct: u32,
}

/// Per-split counts and class balance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitSummary {
    pub count: usize,
    pub cases: Vec<String>,
    pub images_file: String,
    pub labels_file: String,
    /// Pixel count per label value.
    pub class_pixels: Vec<u64>,
    /// Fraction of pixels per label value (sums to 1 when count > 0).
    pub class_fraction: Vec<f64>,
}

/// One slice of the dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub split: Split,
    /// Position in the split's tensors.
    pub index: usize,
    pub case: String,
    pub image: u32,
    pub series: u32,
    pub dicom: SourceFile,
    pub contours: Vec<SourceFile>,
}

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub created_by: String,
    pub source: SourceInfo,
    pub channels: Channels,
    /// (C, H, W) of one image.
    pub image_shape: [usize; 3],
    pub image_dtype: String,
    pub label_dtype: String,
    pub classes: Vec<String>,
    pub palette: Vec<[u8; 3]>,
    pub split: SplitRule,
    pub splits: BTreeMap<Split, SplitSummary>,
    pub records: Vec<Record>,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Error, Diagnostic)]
pub enum StoreError {
    #[error("{} already exists", path.display())]
    #[diagnostic(
        code(lvc::data::store::exists),
        help("pass --force to replace it (atomically), or choose another output folder")
    )]
    Exists { path: PathBuf },

    #[error("{} exists and is not an lvc dataset (no manifest.json); refusing to replace it", path.display())]
    #[diagnostic(
        code(lvc::data::store::not_a_dataset),
        help("choose an output folder that does not exist yet")
    )]
    NotReplaceable { path: PathBuf },

    #[error("cannot write {}: {source}", path.display())]
    #[diagnostic(
        code(lvc::data::store::io),
        help("check free space and permissions of the output folder")
    )]
    Write { path: PathBuf, source: std::io::Error },

    #[error("cannot read {}: {reason}", path.display())]
    #[diagnostic(
        code(lvc::data::store::read),
        help("the dataset is incomplete or damaged; re-create it with `lvc dataset create`")
    )]
    Read { path: PathBuf, reason: String },

    #[error("{}: format {format} version {version} is not supported (this lvc reads {FORMAT_NAME} versions {OLDEST_READABLE_VERSION} to {FORMAT_VERSION})", path.display())]
    #[diagnostic(code(lvc::data::store::version), help("re-create the dataset with this lvc"))]
    Version { path: PathBuf, format: String, version: u32 },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Npy(#[from] crate::npy::NpyError),

    #[error("{}: {what}: {source}", path.display())]
    #[diagnostic(
        code(lvc::data::store::name),
        help("every case and file name in a dataset must be one plain path component (no `/`, `\\`, `..` or control characters); this manifest was edited or not written by lvc: re-create the dataset with `lvc dataset create`")
    )]
    UnsafeName { path: PathBuf, what: String, source: lvc_fsio::NameError },

    #[error("{}: {what} holds label {value}, but the dataset has {classes} classes (0..={})", path.display(), classes.saturating_sub(1))]
    #[diagnostic(
        code(lvc::data::store::label),
        help("label values are class indices (0 = background); re-create the dataset with `lvc dataset create`, or fix the labels that wrote it")
    )]
    Label { path: PathBuf, what: String, value: u8, classes: usize },

    #[error("{} is being written by another lvc process: {source}", path.display())]
    #[diagnostic(
        code(lvc::data::store::locked),
        help("wait for that command to finish (or stop it), then run this one again")
    )]
    Locked { path: PathBuf, source: lvc_fsio::LockError },

    #[error("{}: no split named `{name}` (have: train, val)", path.display())]
    #[diagnostic(code(lvc::data::store::split), help("use `train` or `val`"))]
    NoSplit { path: PathBuf, name: String },
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Write { path: path.to_path_buf(), source }
}

/// The element type of `images.npy`: the narrowest that holds every stored
/// value of the dataset exactly, keeping the source's signedness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageDtype {
    U16,
    I16,
    F32,
}

impl ImageDtype {
    const ALL: [ImageDtype; 3] = [ImageDtype::U16, ImageDtype::I16, ImageDtype::F32];

    /// The name in `manifest.json` (`image_dtype`).
    pub fn name(self) -> &'static str {
        match self {
            ImageDtype::U16 => "u16",
            ImageDtype::I16 => "i16",
            ImageDtype::F32 => "f32",
        }
    }

    /// The element type of `images.npy`.
    pub fn npy_dtype(self) -> NpyDtype {
        match self {
            ImageDtype::U16 => NpyDtype::U16,
            ImageDtype::I16 => NpyDtype::I16,
            ImageDtype::F32 => NpyDtype::F32,
        }
    }

    pub fn from_name(name: &str) -> Option<ImageDtype> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// u16 when no plane is signed (u8 and u16 planes), i16 when every value
    /// fits it (signed planes, and unsigned ones up to 32767), u16 again
    /// when the signed planes hold no negative value, f32 otherwise (only a
    /// mix of unsigned values over 32767 and negative ones gets there).
    pub fn for_planes<'a>(planes: impl Iterator<Item = &'a StoredPixels> + Clone) -> ImageDtype {
        let mut signed = planes.clone().filter_map(|p| match p {
            StoredPixels::I16(v) => Some(v),
            _ => None,
        });
        if signed.clone().next().is_none() {
            return ImageDtype::U16;
        }
        let over_i16 = |p: &StoredPixels| matches!(p, StoredPixels::U16(v) if v.iter().any(|&x| x > i16::MAX as u16));
        if !planes.clone().any(over_i16) {
            ImageDtype::I16
        } else if signed.all(|v| v.iter().all(|&x| x >= 0)) {
            ImageDtype::U16
        } else {
            ImageDtype::F32
        }
    }

    /// `plane` as little-endian values of this type, into `out` (replacing
    /// its content). The dtype must come from [`for_planes`](Self::for_planes)
    /// over a set holding `plane`: then every conversion below is exact.
    fn encode(self, plane: &StoredPixels, out: &mut Vec<u8>) {
        fn put<const N: usize, T: Copy>(
            out: &mut Vec<u8>,
            values: &[T],
            to_bytes: impl Fn(T) -> [u8; N],
        ) {
            out.clear();
            out.resize(values.len() * N, 0);
            for (bytes, &v) in out.chunks_exact_mut(N).zip(values) {
                bytes.copy_from_slice(&to_bytes(v));
            }
        }
        match (self, plane) {
            (ImageDtype::U16, StoredPixels::U8(v)) => put(out, v, |x| u16::from(x).to_le_bytes()),
            (ImageDtype::U16, StoredPixels::U16(v)) => put(out, v, u16::to_le_bytes),
            // Chosen only when no value is negative.
            (ImageDtype::U16, StoredPixels::I16(v)) => put(out, v, |x| (x as u16).to_le_bytes()),
            (ImageDtype::I16, StoredPixels::U8(v)) => put(out, v, |x| i16::from(x).to_le_bytes()),
            // Chosen only when no value is over 32767.
            (ImageDtype::I16, StoredPixels::U16(v)) => put(out, v, |x| (x as i16).to_le_bytes()),
            (ImageDtype::I16, StoredPixels::I16(v)) => put(out, v, i16::to_le_bytes),
            (ImageDtype::F32, StoredPixels::U8(v)) => put(out, v, |x| f32::from(x).to_le_bytes()),
            (ImageDtype::F32, StoredPixels::U16(v)) => put(out, v, |x| f32::from(x).to_le_bytes()),
            (ImageDtype::F32, StoredPixels::I16(v)) => put(out, v, |x| f32::from(x).to_le_bytes()),
        }
    }
}

/// Builds a folder with `build` in a temp folder next to `target` and moves
/// it into place. An existing `target` is refused unless `force`, and even
/// then only when `replaceable` says it is ours to replace. On any error the
/// temp folder is removed and `target` is untouched. Returns what `build`
/// returned.
///
/// One writer at a time: the build holds the lock `.NAME.lock` next to
/// `target` (a second `--force` of the same folder fails at once instead of
/// racing the first), and first removes what writers that died left next
/// to it (`.NAME.tmp-PID`; a `.NAME.old-PID` whose `NAME` is gone is the
/// only copy of the folder being replaced, so it is put back).
pub(crate) fn build_dir_atomically<T, E: From<StoreError>>(
    target: &Path,
    force: bool,
    replaceable: impl Fn(&Path) -> bool,
    build: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<T, E> {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    if !parent.is_dir() {
        std::fs::create_dir_all(&parent).map_err(write_err(&parent))?;
    }
    let _lock = lvc_fsio::FolderLock::acquire(&parent.join(format!(".{name}.lock"))).map_err(
        |e| match e {
            lvc_fsio::LockError::Io { path, source } => StoreError::Write { path, source },
            held => StoreError::Locked { path: target.to_path_buf(), source: held },
        },
    )?;
    lvc_fsio::stale::remove_stale(&parent);
    if target.exists() {
        if !force {
            return Err(StoreError::Exists { path: target.to_path_buf() }.into());
        }
        if !replaceable(target) {
            return Err(StoreError::NotReplaceable { path: target.to_path_buf() }.into());
        }
    }
    let temp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    let result = (|| {
        if temp.exists() {
            std::fs::remove_dir_all(&temp).map_err(write_err(&temp))?;
        }
        std::fs::create_dir_all(&temp).map_err(write_err(&temp))?;
        let built = build(&temp)?;
        if target.exists() {
            // Move the old one aside first: rename cannot replace a
            // non-empty folder. The window without `target` is two renames.
            std::fs::rename(target, &old).map_err(write_err(target))?;
            if let Err(e) = std::fs::rename(&temp, target) {
                let _ = std::fs::rename(&old, target);
                return Err(write_err(target)(e).into());
            }
            std::fs::remove_dir_all(&old).map_err(write_err(&old))?;
        } else {
            std::fs::rename(&temp, target).map_err(write_err(target))?;
        }
        Ok(built)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    result
}

/// Whether `path` holds a dataset (so `--force` may replace it).
pub fn is_dataset(path: &Path) -> bool {
    path.join(MANIFEST).is_file()
}

fn split_dir(split: Split) -> String {
    split.name().to_string()
}

/// Writes `imported` as a dataset at `out` (atomically; see
/// [`build_dir_atomically`]) and returns its manifest.
///
/// Each tensor is written straight from the slices, and its data is handed
/// to the disk while the next one is produced; all files are synced before
/// the folder is renamed into place.
pub fn write_dataset(out: &Path, imported: &Imported, force: bool) -> Result<Manifest, StoreError> {
    let class_count = class_names(imported.options.kind).len();
    for slice in &imported.slices {
        if let Some(&value) = slice.label.iter().find(|&&v| usize::from(v) >= class_count) {
            return Err(StoreError::Label {
                path: out.to_path_buf(),
                what: format!("the label of {}", slice.dicom.path),
                value,
                classes: class_count,
            });
        }
        lvc_fsio::check_component(&slice.case).map_err(|source| StoreError::UnsafeName {
            path: out.to_path_buf(),
            what: format!("the case of image {}", slice.dicom.path),
            source,
        })?;
    }
    let dtype = ImageDtype::for_planes(imported.slices.iter().map(|s| &s.pixels));
    let channels = imported.options.channels.count();
    let (rows, columns) = (imported.rows, imported.columns);
    build_dir_atomically(out, force, is_dataset, |temp| {
        for split in Split::ALL {
            let dir = temp.join(split_dir(split));
            std::fs::create_dir_all(&dir).map_err(write_err(&dir))?;
        }
        let slices_of = |split: Split| -> Vec<&ImportedSlice> {
            imported.slices.iter().filter(|s| s.split == split).collect()
        };
        let write_labels = |split: Split| -> Result<Written, StoreError> {
            let slices = slices_of(split);
            let path = temp.join(split_dir(split)).join("labels.npy");
            let shape = [slices.len(), 1, rows, columns];
            check_planes(&path, &shape, slices.iter().map(|s| s.label.len()))?;
            write_tensor(&path, NpyDtype::U8, &shape, |file| {
                slices.iter().try_for_each(|s| file.write_all_sparse(&s.label))
            })
        };
        let write_images = |split: Split| -> Result<Written, StoreError> {
            let slices = slices_of(split);
            let path = temp.join(split_dir(split)).join("images.npy");
            let shape = [slices.len(), channels, rows, columns];
            check_planes(&path, &shape, slices.iter().map(|s| s.pixels.len()))?;
            write_tensor(&path, dtype.npy_dtype(), &shape, |file| {
                let mut bytes = Vec::new();
                for s in &slices {
                    dtype.encode(&s.pixels, &mut bytes);
                    for _ in 0..channels {
                        file.write_all(&bytes)?;
                    }
                }
                Ok(())
            })
        };
        // Producing the bytes is memory bound: train images (the bulk) on
        // one core, the other three tensors on the other.
        let (bulk, rest) = std::thread::scope(|scope| {
            let rest = scope.spawn(|| {
                [write_labels(Split::Train), write_images(Split::Val), write_labels(Split::Val)]
            });
            (write_images(Split::Train), rest.join())
        });
        let mut written = vec![bulk?];
        for tensor in rest.unwrap_or_else(|e| std::panic::resume_unwind(e)) {
            written.push(tensor?);
        }
        finish_dataset(temp, || manifest_for(imported, dtype), written)
    })
}

/// Waits until the written `tensors` are on disk while it makes and writes
/// the manifest, then syncs that too. The syncs run side by side so the
/// disk's cache flushes overlap, and the manifest is made while they wait.
fn finish_dataset(
    temp: &Path,
    manifest: impl FnOnce() -> Manifest,
    tensors: Vec<Written>,
) -> Result<Manifest, StoreError> {
    let sync = |Written { path, file }: Written| file.sync().map_err(write_err(&path));
    std::thread::scope(|scope| {
        let syncs: Vec<_> =
            tensors.into_iter().map(|tensor| scope.spawn(move || sync(tensor))).collect();
        let manifest = manifest();
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| write_err(temp)(e.into()))?;
        sync(write_file(&temp.join(MANIFEST), |file| file.write_all(&json))?)?;
        for synced in syncs {
            synced.join().unwrap_or_else(|e| std::panic::resume_unwind(e))?;
        }
        Ok(manifest)
    })
}

/// A file whose content is written and on its way to disk, not yet synced.
struct Written {
    path: PathBuf,
    file: WritebackFile,
}

/// Writes `path` with `content` and starts its writeback.
fn write_file(
    path: &Path,
    content: impl FnOnce(&mut WritebackFile) -> std::io::Result<()>,
) -> Result<Written, StoreError> {
    let mut file = WritebackFile::create(path).map_err(write_err(path))?;
    content(&mut file).and_then(|()| file.start_writeback()).map_err(write_err(path))?;
    Ok(Written { path: path.to_path_buf(), file })
}

/// Writes a `.npy` tensor: the header for `dtype` and `shape`, then `body`.
fn write_tensor(
    path: &Path,
    dtype: NpyDtype,
    shape: &[usize],
    body: impl FnOnce(&mut WritebackFile) -> std::io::Result<()>,
) -> Result<Written, StoreError> {
    write_file(path, |file| {
        file.write_all(&crate::npy::header(dtype.descr(), shape))?;
        body(file)
    })
}

/// Checks that every plane of a tensor holds H·W values (`shape` is
/// (N, C, H, W)); the importer guarantees it, other callers may not.
fn check_planes(
    path: &Path,
    shape: &[usize; 4],
    mut lengths: impl Iterator<Item = usize>,
) -> Result<(), StoreError> {
    let plane = shape[2] * shape[3];
    match lengths.find(|&n| n != plane) {
        None => Ok(()),
        Some(actual) => Err(NpyError::Shape {
            path: path.to_path_buf(),
            shape: shape[2..].to_vec(),
            expected: plane,
            actual,
        }
        .into()),
    }
}

fn manifest_for(imported: &Imported, image_dtype: ImageDtype) -> Manifest {
    let opts = &imported.options;
    let classes = class_names(opts.kind);
    let mut splits = BTreeMap::new();
    let mut records = Vec::new();
    for split in Split::ALL {
        let mut class_pixels = vec![0u64; classes.len()];
        let mut cases: Vec<String> = Vec::new();
        let mut count = 0;
        for s in imported.slices.iter().filter(|s| s.split == split) {
            for (value, n) in (0..=u8::MAX).zip(class_pixels.iter_mut()) {
                *n += count_value(&s.label, value);
            }
            if cases.last() != Some(&s.case) {
                cases.push(s.case.clone());
            }
            records.push(Record {
                split,
                index: count,
                case: s.case.clone(),
                image: s.image,
                series: s.series,
                dicom: s.dicom.clone(),
                contours: s.contours.clone(),
            });
            count += 1;
        }
        cases.dedup();
        let total: u64 = class_pixels.iter().sum();
        let class_fraction = class_pixels
            .iter()
            .map(|&n| if total == 0 { 0.0 } else { n as f64 / total as f64 })
            .collect();
        let dir = split_dir(split);
        splits.insert(
            split,
            SplitSummary {
                count,
                cases,
                images_file: format!("{dir}/images.npy"),
                labels_file: format!("{dir}/labels.npy"),
                class_pixels,
                class_fraction,
            },
        );
    }
    let shown = |p: &Path| {
        std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()).to_string_lossy().into_owned()
    };
    Manifest {
        format: FORMAT_NAME.to_string(),
        format_version: FORMAT_VERSION,
        created_by: format!("lvc-data {}", env!("CARGO_PKG_VERSION")),
        source: SourceInfo {
            images: shown(&opts.images),
            contours: shown(&opts.contours),
            sax_map: opts.sax_map.as_deref().map(shown),
            contours_kind: opts.kind,
            allow_outside: opts.allow_outside,
            checksum: "sha256".to_string(),
        },
        channels: opts.channels,
        image_shape: [opts.channels.count(), imported.rows, imported.columns],
        image_dtype: image_dtype.name().to_string(),
        label_dtype: "u8".to_string(),
        palette: palette(opts.kind),
        classes,
        split: SplitRule { kind: opts.split, seed: opts.seed, val_pct: opts.val_pct },
        splits,
        records,
        skipped: imported.skipped.clone(),
        warnings: imported.warnings.clone(),
        notes: imported.notes.clone(),
    }
}

/// An opened dataset: the manifest, tensors loaded per split on demand.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub root: PathBuf,
    pub manifest: Manifest,
}

/// One split's tensors and records.
#[derive(Clone, Debug)]
pub struct SplitData {
    pub split: Split,
    /// (N, C, H, W) of `images`; labels are (N, 1, H, W).
    pub shape: [usize; 4],
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
    /// Record `i` describes image `i`.
    pub records: Vec<Record>,
}

impl SplitData {
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    /// Image `i`, C·H·W values.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.shape[1] * self.shape[2] * self.shape[3];
        &self.images[i * n..(i + 1) * n]
    }

    /// Label `i`, H·W values.
    pub fn label(&self, i: usize) -> &[u8] {
        let n = self.shape[2] * self.shape[3];
        &self.labels[i * n..(i + 1) * n]
    }
}

impl Manifest {
    /// Parses and checks the bytes of a `manifest.json` (`path` names it in
    /// errors): its format and version, the image type, and every name
    /// that is joined into a path.
    pub fn from_json(text: &[u8], path: &Path) -> Result<Manifest, StoreError> {
        let read_err = |reason: String| StoreError::Read { path: path.to_path_buf(), reason };
        let head: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| read_err(e.to_string()))?;
        let format = head.get("format").and_then(|v| v.as_str()).unwrap_or("").to_string();
        let version = head.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0);
        if format != FORMAT_NAME
            || !(u64::from(OLDEST_READABLE_VERSION)..=u64::from(FORMAT_VERSION)).contains(&version)
        {
            return Err(StoreError::Version {
                path: path.to_path_buf(),
                format,
                version: u32::try_from(version).unwrap_or(u32::MAX),
            });
        }
        let manifest: Manifest =
            serde_json::from_value(head).map_err(|e| read_err(e.to_string()))?;
        if ImageDtype::from_name(&manifest.image_dtype).is_none() {
            let names: Vec<&str> = ImageDtype::ALL.iter().map(|d| d.name()).collect();
            return Err(read_err(format!(
                "image_dtype `{}` is not one of {}",
                manifest.image_dtype,
                names.join(", ")
            )));
        }
        check_names(path, &manifest)?;
        Ok(manifest)
    }
}

impl Dataset {
    /// Reads and checks `manifest.json`.
    pub fn open(root: &Path) -> Result<Dataset, StoreError> {
        let path = root.join(MANIFEST);
        let read_err = |reason: String| StoreError::Read { path: path.clone(), reason };
        let text = lvc_fsio::read_regular(&path, MAX_MANIFEST_BYTES)
            .map_err(|e| read_err(e.to_string()))?;
        let manifest = Manifest::from_json(&text, &path)?;
        Ok(Dataset { root: root.to_path_buf(), manifest })
    }

    /// Loads a split by name (`train` or `val`), checking the tensor shapes
    /// and types against the manifest; images come as f32 whatever their
    /// stored type.
    pub fn split(&self, name: &str) -> Result<SplitData, StoreError> {
        let split = Split::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| {
            StoreError::NoSplit { path: self.root.clone(), name: name.to_string() }
        })?;
        let summary = self.manifest.splits.get(&split).ok_or_else(|| StoreError::NoSplit {
            path: self.root.clone(),
            name: name.to_string(),
        })?;
        let [c, h, w] = self.manifest.image_shape;
        let want_images = [summary.count, c, h, w];
        let want_labels = [summary.count, 1, h, w];
        let images_path = self.root.join(&summary.images_file);
        let labels_path = self.root.join(&summary.labels_file);
        // `open` checked the name.
        let dtype = ImageDtype::from_name(&self.manifest.image_dtype).unwrap_or(ImageDtype::F32);
        let images = match read_npy(&images_path)? {
            NpyArray { shape, data }
                if shape == want_images && data.dtype() == dtype.npy_dtype() =>
            {
                data.into_f32()
            }
            other => {
                return Err(unexpected_tensor(
                    &images_path,
                    &other,
                    dtype.npy_dtype(),
                    &want_images,
                ))
            }
        };
        let labels = match read_npy(&labels_path)? {
            NpyArray { shape, data: NpyData::U8(v) } if shape == want_labels => v,
            other => {
                return Err(unexpected_tensor(&labels_path, &other, NpyDtype::U8, &want_labels))
            }
        };
        let records: Vec<Record> =
            self.manifest.records.iter().filter(|r| r.split == split).cloned().collect();
        // Record i describes image i: callers index the tensors by record.
        if records.len() != summary.count || records.iter().enumerate().any(|(i, r)| r.index != i) {
            return Err(StoreError::Read {
                path: self.root.join(MANIFEST),
                reason: format!(
                    "split {name} holds {} images, but its records are not exactly one per image in order (indices 0..{})",
                    summary.count, summary.count
                ),
            });
        }
        let classes = self.manifest.classes.len();
        if let Some(at) = labels.iter().position(|&v| usize::from(v) >= classes) {
            let image = at / (h * w).max(1);
            let what = match records.iter().find(|r| r.index == image) {
                Some(r) => format!("image {image} ({} IM {:04})", r.case, r.image),
                None => format!("image {image}"),
            };
            return Err(StoreError::Label { path: labels_path, what, value: labels[at], classes });
        }
        Ok(SplitData { split, shape: want_images, images, labels, records })
    }
}

/// The largest `manifest.json` read: about a million records.
const MAX_MANIFEST_BYTES: u64 = 1 << 30;

/// Checks every name in a manifest that lvc joins into a path: cases
/// (output folders of `dataset export` and `infer --all-val`) as single
/// components, tensor files as relative paths below the dataset. A dataset
/// from someone else must not be able to name a place outside the folders
/// the user gave. (The records' source files are provenance, never joined
/// into a path; printed, they go through the CLI's escaping.)
fn check_names(path: &Path, manifest: &Manifest) -> Result<(), StoreError> {
    let unsafe_name = |what: String| {
        move |source| StoreError::UnsafeName { path: path.to_path_buf(), what, source }
    };
    for (split, summary) in &manifest.splits {
        for (field, file) in
            [("images_file", &summary.images_file), ("labels_file", &summary.labels_file)]
        {
            lvc_fsio::name::check_relative(file)
                .map_err(unsafe_name(format!("split {}'s {field}", split.name())))?;
        }
    }
    for (i, record) in manifest.records.iter().enumerate() {
        let which = || format!("record {i} ({} #{})", record.split.name(), record.index);
        lvc_fsio::check_component(&record.case)
            .map_err(unsafe_name(format!("{}'s case", which())))?;
    }
    Ok(())
}

/// How many of `bytes` equal `value`. Counted in u8 lanes over runs of 255
/// bytes (so no lane overflows), which vectorises; a histogram indexed by
/// the byte does not, and this runs over every label pixel.
fn count_value(bytes: &[u8], value: u8) -> u64 {
    bytes
        .chunks(255)
        .map(|run| u64::from(run.iter().fold(0u8, |n, &v| n + u8::from(v == value))))
        .sum()
}

fn unexpected_tensor(path: &Path, got: &NpyArray, dtype: NpyDtype, shape: &[usize]) -> StoreError {
    StoreError::Read {
        path: path.to_path_buf(),
        reason: format!(
            "holds {} {:?}, the manifest says {} {shape:?}",
            got.data.descr(),
            got.shape,
            dtype.descr()
        ),
    }
}

#[cfg(test)]
mod tests;
