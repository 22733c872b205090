//! Exporting decoded stored values, exactly: `.npy` (`|u1`, `<u2`, `<i2`,
//! shape (rows, cols)) or grayscale PNG (8-bit for 8-bit images, 16-bit
//! otherwise; signed images only when no value is negative).

use super::{DicomImage, StoredPixels};
use crate::npy::{write_npy, NpyArray, NpyData, NpyError};
use image::{ImageBuffer, Luma};
use lvc_fsio::write_atomic;
use miette::Diagnostic;
use std::path::{Path, PathBuf};

/// What `export_image` wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// `.npy` with this dtype descriptor.
    Npy(&'static str),
    /// PNG with this bit depth.
    Png(u8),
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ExportError {
    #[error("{path}: unknown output format (the extension must be .npy or .png)")]
    #[diagnostic(
        code(lvc::dicom::export_format),
        help("name the output OUT.npy (exact, any values) or OUT.png (16-bit grayscale)")
    )]
    UnknownFormat { path: PathBuf },
    #[error(
        "{path}: the image is signed and has negative values (min {min}); PNG cannot hold them"
    )]
    #[diagnostic(
        code(lvc::dicom::export_negative),
        help("export to .npy instead (dtype <i2 keeps the values exactly)")
    )]
    NegativeForPng { path: PathBuf, min: i16 },
    #[error("{path}: cannot write PNG: {reason}")]
    #[diagnostic(
        code(lvc::dicom::export_io),
        help("check that the output folder exists and is writable")
    )]
    Png { path: PathBuf, reason: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Npy(#[from] NpyError),
}

/// Writes the image's stored values to `out`; the extension picks the format.
pub fn export_image(image: &DicomImage, out: &Path) -> Result<ExportFormat, ExportError> {
    let extension = out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let (rows, cols) = (image.info.rows, image.info.columns);
    match extension.as_deref() {
        Some("npy") => {
            let data = match &image.pixels {
                StoredPixels::U8(v) => NpyData::U8(v.clone()),
                StoredPixels::U16(v) => NpyData::U16(v.clone()),
                StoredPixels::I16(v) => NpyData::I16(v.clone()),
            };
            let descr = data.descr();
            write_npy(out, &NpyArray { shape: vec![rows as usize, cols as usize], data })?;
            Ok(ExportFormat::Npy(descr))
        }
        Some("png") => {
            let png_error = |reason: String| ExportError::Png { path: out.to_path_buf(), reason };
            let (depth, encoded) = match &image.pixels {
                StoredPixels::U8(v) => (8, encode_png(cols, rows, v.clone())),
                StoredPixels::U16(v) => (16, encode_png(cols, rows, v.clone())),
                StoredPixels::I16(v) => {
                    if let Some(&min) = v.iter().min().filter(|&&m| m < 0) {
                        return Err(ExportError::NegativeForPng { path: out.to_path_buf(), min });
                    }
                    (16, encode_png(cols, rows, v.iter().map(|&x| x as u16).collect()))
                }
            };
            let bytes = encoded.map_err(png_error)?;
            write_atomic(out, &bytes).map_err(|e| png_error(e.to_string()))?;
            Ok(ExportFormat::Png(depth))
        }
        _ => Err(ExportError::UnknownFormat { path: out.to_path_buf() }),
    }
}

/// A grayscale PNG of `values` (row-major, `cols × rows`).
fn encode_png<T>(cols: u32, rows: u32, values: Vec<T>) -> Result<Vec<u8>, String>
where
    T: image::Primitive,
    Luma<T>: image::Pixel<Subpixel = T> + image::PixelWithColorType,
    [T]: image::EncodableLayout,
{
    let buffer = ImageBuffer::<Luma<T>, Vec<T>>::from_raw(cols, rows, values)
        .ok_or_else(|| "pixel count does not match the image size".to_string())?;
    let mut bytes = std::io::Cursor::new(Vec::new());
    buffer.write_to(&mut bytes, image::ImageFormat::Png).map_err(|e| e.to_string())?;
    Ok(bytes.into_inner())
}
