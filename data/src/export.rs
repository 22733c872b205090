//! Dataset → PNG folder tree for looking at it with any image viewer:
//! `OUT/{train,val}/<case>/IM-<NNNN>.png` (16-bit grayscale, channel 0) and
//! `IM-<NNNN>_label.png` (8-bit, raw label values 0/1/2), plus a README.txt
//! that says how the values map. Written atomically like datasets.

use crate::store::{build_dir_atomically, Dataset, StoreError};
use crate::sunnybrook::import::Split;
use image::{GrayImage, ImageBuffer, Luma};
use miette::Diagnostic;
use std::path::{Path, PathBuf};
use thiserror::Error;

const README: &str = "README.txt";
const README_FIRST_LINE: &str = "Exported by `lvc dataset export`";

#[derive(Debug, Error, Diagnostic)]
pub enum ExportError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),

    #[error("cannot write {}: {reason}", path.display())]
    #[diagnostic(
        code(lvc::data::export::write),
        help("check free space and permissions of the output folder")
    )]
    Write { path: PathBuf, reason: String },

    #[error("{case} image {image}: value {value} does not fit a 16-bit PNG (even after a shift of {shift})")]
    #[diagnostic(
        code(lvc::data::export::range),
        help("PNG export keeps integer values in 0..=65535; this dataset holds other values")
    )]
    Range { case: String, image: u32, value: f32, shift: f32 },
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportSummary {
    pub pairs: usize,
    /// Added to every image value so the minimum is 0 (0 when none was
    /// negative).
    pub shift: f32,
}

fn is_export(path: &Path) -> bool {
    std::fs::read_to_string(path.join(README)).is_ok_and(|t| t.starts_with(README_FIRST_LINE))
}

/// Exports every split of `ds` to `out`.
pub fn export_pngs(ds: &Dataset, out: &Path, force: bool) -> Result<ExportSummary, ExportError> {
    let splits = Split::ALL.iter().map(|s| ds.split(s.name())).collect::<Result<Vec<_>, _>>()?;
    let min = splits.iter().flat_map(|s| s.images.iter().copied()).fold(0.0f32, f32::min);
    let shift = -min;
    let mut pairs = 0;
    build_dir_atomically(out, force, is_export, |temp| -> Result<(), ExportError> {
        for data in &splits {
            let [_, _, rows, columns] = data.shape;
            for (i, record) in data.records.iter().enumerate() {
                // `Dataset::open` checked the case; joined as a checked
                // component all the same, so no manifest can reach out.
                let dir = lvc_fsio::join_component(&temp.join(data.split.name()), &record.case)
                    .map_err(|e| ExportError::Write {
                        path: temp.join(data.split.name()),
                        reason: e.to_string(),
                    })?;
                std::fs::create_dir_all(&dir)
                    .map_err(|e| ExportError::Write { path: dir.clone(), reason: e.to_string() })?;
                // Channel 0 only: RGB datasets hold three identical planes.
                let plane = &data.image(i)[..rows * columns];
                let values = plane
                    .iter()
                    .map(|&v| {
                        let shifted = v + shift;
                        if shifted.fract() == 0.0 && (0.0..=65535.0).contains(&shifted) {
                            Ok(shifted as u16)
                        } else {
                            Err(ExportError::Range {
                                case: record.case.clone(),
                                image: record.image,
                                value: v,
                                shift,
                            })
                        }
                    })
                    .collect::<Result<Vec<u16>, _>>()?;
                let image_path = dir.join(format!("IM-{:04}.png", record.image));
                let label_path = dir.join(format!("IM-{:04}_label.png", record.image));
                let png_err = |path: &Path| {
                    let path = path.to_path_buf();
                    move |e: image::ImageError| ExportError::Write { path, reason: e.to_string() }
                };
                let (w, h) = (columns as u32, rows as u32);
                let gray: Option<ImageBuffer<Luma<u16>, Vec<u16>>> =
                    ImageBuffer::from_raw(w, h, values);
                let label: Option<GrayImage> = ImageBuffer::from_raw(w, h, data.label(i).to_vec());
                match (gray, label) {
                    (Some(gray), Some(label)) => {
                        gray.save_with_format(&image_path, image::ImageFormat::Png)
                            .map_err(png_err(&image_path))?;
                        label
                            .save_with_format(&label_path, image::ImageFormat::Png)
                            .map_err(png_err(&label_path))?;
                    }
                    _ => {
                        return Err(ExportError::Write {
                            path: image_path,
                            reason: "image size does not match the dataset shape".into(),
                        })
                    }
                }
                pairs += 1;
            }
        }
        let readme = readme_text(ds, shift);
        let path = temp.join(README);
        std::fs::write(&path, readme)
            .map_err(|e| ExportError::Write { path, reason: e.to_string() })
    })?;
    Ok(ExportSummary { pairs, shift })
}

fn readme_text(ds: &Dataset, shift: f32) -> String {
    let m = &ds.manifest;
    let classes: Vec<String> =
        m.classes.iter().enumerate().map(|(v, c)| format!("{v} = {c}")).collect();
    let values = if shift > 0.0 {
        format!(
            "Image values were SHIFTED by +{shift}: the dataset holds negative values, PNG cannot.\n\
             Subtract {shift} from a PNG value to get the stored DICOM value.\n"
        )
    } else {
        "Image values are the stored DICOM values, unchanged.\n".to_string()
    };
    format!(
        "{README_FIRST_LINE} from {}.\n\n\
         <split>/<case>/IM-<NNNN>.png        16-bit grayscale, channel 0 of the dataset image\n\
         <split>/<case>/IM-<NNNN>_label.png  8-bit labels, raw values: {}\n\n{values}",
        ds.root.display(),
        classes.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dicom::StoredPixels;
    use crate::store::write_dataset;
    use crate::sunnybrook::import::{
        Channels, ContoursKind, ImportOptions, Imported, ImportedSlice, SourceFile, SplitKind,
    };

    /// A 2×3 plane counting up from `first`.
    fn unsigned(first: u16) -> StoredPixels {
        StoredPixels::U16((first..first + 6).collect())
    }

    fn signed(first: i16) -> StoredPixels {
        StoredPixels::I16((first..first + 6).collect())
    }

    /// An RGB dataset of a train and a val slice with these planes.
    fn dataset(dir: &Path, planes: [StoredPixels; 2]) -> Dataset {
        let [train, val] = planes;
        let slice = |case: &str, image: u32, split: Split, pixels: StoredPixels| ImportedSlice {
            case: case.into(),
            image,
            series: 1,
            dicom: SourceFile { path: String::new(), sha256: String::new() },
            contours: vec![],
            split,
            pixels,
            label: vec![0, 1, 1, 0, 2, 0],
        };
        let imported = Imported {
            options: ImportOptions {
                images: dir.into(),
                contours: dir.into(),
                sax_map: None,
                channels: Channels::RGB,
                kind: ContoursKind::Io,
                val_pct: 50,
                split: SplitKind::Image,
                seed: 1,
                skip_bad: false,
                allow_outside: false,
            },
            rows: 2,
            columns: 3,
            slices: vec![
                slice("SC-A-1", 48, Split::Train, train),
                slice("SC-B-2", 7, Split::Val, val),
            ],
            problems: vec![],
            skipped: vec![],
            warnings: vec![],
            notes: vec![],
        };
        let out = dir.join("ds");
        write_dataset(&out, &imported, false).unwrap();
        Dataset::open(&out).unwrap()
    }

    #[test]
    fn writes_16_bit_images_and_raw_labels() {
        let dir = tempfile::tempdir().unwrap();
        let ds = dataset(dir.path(), [unsigned(100), unsigned(60000)]);
        let out = dir.path().join("png");
        let summary = export_pngs(&ds, &out, false).unwrap();
        assert_eq!(summary, ExportSummary { pairs: 2, shift: 0.0 });
        let img = image::open(out.join("train/SC-A-1/IM-0048.png")).unwrap().into_luma16();
        assert_eq!(img.dimensions(), (3, 2));
        assert_eq!(img.into_raw(), vec![100, 101, 102, 103, 104, 105]);
        let label = image::open(out.join("val/SC-B-2/IM-0007_label.png")).unwrap();
        assert!(matches!(label, image::DynamicImage::ImageLuma8(_)));
        assert_eq!(label.into_luma8().into_raw(), vec![0, 1, 1, 0, 2, 0]);
        assert!(std::fs::read_to_string(out.join(README)).unwrap().contains("unchanged"));
        assert!(matches!(
            export_pngs(&ds, &out, false),
            Err(ExportError::Store(StoreError::Exists { .. }))
        ));
        export_pngs(&ds, &out, true).unwrap();
    }

    #[test]
    fn negative_values_are_shifted_and_explained() {
        let dir = tempfile::tempdir().unwrap();
        let ds = dataset(dir.path(), [signed(-10), signed(5)]);
        let out = dir.path().join("png");
        assert_eq!(export_pngs(&ds, &out, false).unwrap().shift, 10.0);
        let img = image::open(out.join("train/SC-A-1/IM-0048.png")).unwrap().into_luma16();
        assert_eq!(img.into_raw()[0], 0);
        assert!(std::fs::read_to_string(out.join(README)).unwrap().contains("SHIFTED by +10"));
    }

    #[test]
    fn values_beyond_16_bits_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        // Shifted by 2 for the -2, 65534 would become 65536.
        let ds = dataset(dir.path(), [signed(-2), unsigned(65529)]);
        let err = export_pngs(&ds, &dir.path().join("png"), false).unwrap_err();
        assert!(matches!(err, ExportError::Range { image: 7, .. }), "{err:?}");
        assert!(!dir.path().join("png").exists());
    }
}
