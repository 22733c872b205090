//! Writing single-frame MR images (the phantom's output, and test fixtures).
//!
//! The data set carries the MR Image IOD attributes a reader looks at:
//! SOP common, patient, study, series, frame of reference, image plane,
//! image pixel, MR image (trigger time), modality LUT (rescale) and VOI LUT
//! (window). dicom-object fills the file meta group from the SOP UIDs.

use super::{DicomError, DicomErrorKind, StoredPixels};
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileDicomObject, FileMetaTableBuilder, InMemDicomObject, Tag};
use lvc_fsio::write_atomic;
use std::path::Path;

/// The transfer syntaxes the writer produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteSyntax {
    #[default]
    ExplicitVrLittleEndian,
    ImplicitVrLittleEndian,
    ExplicitVrBigEndian,
}

impl WriteSyntax {
    pub fn uid(self) -> &'static str {
        match self {
            Self::ExplicitVrLittleEndian => uids::EXPLICIT_VR_LITTLE_ENDIAN,
            Self::ImplicitVrLittleEndian => uids::IMPLICIT_VR_LITTLE_ENDIAN,
            // Retired from the standard, still met in old archives.
            Self::ExplicitVrBigEndian => "1.2.840.10008.1.2.2",
        }
    }
}

/// One MR slice with everything the header needs. Pixels are row-major
/// `rows × columns` stored values; they must fit in `bits_stored` bits
/// (unsigned, or two's complement for `I16`).
#[derive(Debug, Clone)]
pub struct MrSlice {
    pub patient_name: String,
    pub patient_id: String,
    pub study_instance_uid: String,
    pub study_description: String,
    pub series_instance_uid: String,
    pub series_description: String,
    pub series_number: i64,
    pub sop_instance_uid: String,
    pub frame_of_reference_uid: String,
    pub instance_number: i64,
    pub rows: u16,
    pub columns: u16,
    /// (row spacing, column spacing) in mm.
    pub pixel_spacing: [f64; 2],
    pub slice_thickness: f64,
    pub slice_location: f64,
    pub image_position_patient: [f64; 3],
    pub image_orientation_patient: [f64; 6],
    /// Cine phase time after the R wave, ms.
    pub trigger_time: f64,
    pub bits_stored: u16,
    pub rescale_slope: f64,
    pub rescale_intercept: f64,
    pub window_center: f64,
    pub window_width: f64,
    pub pixels: StoredPixels,
}

/// A DICOM UID in the UUID-derived `2.25.<decimal>` form (PS3.5 B.2), so
/// callers can make deterministic UIDs from any 128-bit value.
pub fn uid_2_25(value: u128) -> String {
    format!("2.25.{value}")
}

/// DS values are at most 16 characters; `{}` of an f64 can be longer.
fn ds(value: f64) -> String {
    let text = format!("{value}");
    if text.len() <= 16 {
        return text;
    }
    let mut precision = 10usize;
    loop {
        let s = format!("{value:.precision$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        if s.len() <= 16 || precision == 0 {
            return s;
        }
        precision -= 1;
    }
}

fn ds_multi(values: &[f64]) -> String {
    values.iter().map(|&v| ds(v)).collect::<Vec<_>>().join("\\")
}

fn check_pixels(path: &Path, slice: &MrSlice) -> Result<(), DicomError> {
    let invalid = |reason: String| Err(DicomError::new(path, DicomErrorKind::InvalidInput, reason));
    let expected = usize::from(slice.rows) * usize::from(slice.columns);
    if expected == 0 {
        return invalid(format!("image is {} × {}", slice.rows, slice.columns));
    }
    if slice.pixels.len() != expected {
        return invalid(format!(
            "{} pixel values for a {} × {} image",
            slice.pixels.len(),
            slice.rows,
            slice.columns
        ));
    }
    let allocated = match slice.pixels {
        StoredPixels::U8(_) => 8,
        StoredPixels::U16(_) | StoredPixels::I16(_) => 16,
    };
    if slice.bits_stored == 0 || slice.bits_stored > allocated {
        return invalid(format!("Bits Stored = {} with {allocated}-bit pixels", slice.bits_stored));
    }
    let bits = u32::from(slice.bits_stored);
    let fits = match &slice.pixels {
        StoredPixels::U8(v) => v.iter().all(|&x| u32::from(x) < (1 << bits)),
        StoredPixels::U16(v) => v.iter().all(|&x| u32::from(x) < (1 << bits)),
        StoredPixels::I16(v) => {
            let (lo, hi) = (-(1i32 << (bits - 1)), (1i32 << (bits - 1)) - 1);
            v.iter().all(|&x| (lo..=hi).contains(&i32::from(x)))
        }
    };
    if !fits {
        return invalid(format!(
            "a pixel value does not fit in Bits Stored = {}",
            slice.bits_stored
        ));
    }
    Ok(())
}

/// The data set of `slice` (no file meta), for tests that re-encode it.
pub(crate) fn mr_dataset(slice: &MrSlice) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    let mut put_str = |tag: Tag, vr: VR, value: &str| {
        obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
    };
    put_str(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100");
    put_str(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\M\\ND");
    put_str(tags::SOP_CLASS_UID, VR::UI, uids::MR_IMAGE_STORAGE);
    put_str(tags::SOP_INSTANCE_UID, VR::UI, &slice.sop_instance_uid);
    put_str(tags::STUDY_DATE, VR::DA, "20090101");
    put_str(tags::STUDY_TIME, VR::TM, "120000");
    put_str(tags::ACCESSION_NUMBER, VR::SH, "");
    put_str(tags::MODALITY, VR::CS, "MR");
    put_str(tags::MANUFACTURER, VR::LO, "lvc phantom");
    put_str(tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
    put_str(tags::STUDY_DESCRIPTION, VR::LO, &slice.study_description);
    put_str(tags::SERIES_DESCRIPTION, VR::LO, &slice.series_description);
    put_str(tags::PATIENT_NAME, VR::PN, &slice.patient_name);
    put_str(tags::PATIENT_ID, VR::LO, &slice.patient_id);
    put_str(tags::PATIENT_BIRTH_DATE, VR::DA, "");
    put_str(tags::PATIENT_SEX, VR::CS, "O");
    put_str(tags::SCANNING_SEQUENCE, VR::CS, "GR");
    put_str(tags::SEQUENCE_VARIANT, VR::CS, "SS");
    put_str(tags::SCAN_OPTIONS, VR::CS, "CG");
    put_str(tags::MR_ACQUISITION_TYPE, VR::CS, "2D");
    put_str(tags::SLICE_THICKNESS, VR::DS, &ds(slice.slice_thickness));
    put_str(tags::REPETITION_TIME, VR::DS, "3.6");
    put_str(tags::ECHO_TIME, VR::DS, "1.6");
    put_str(tags::ECHO_TRAIN_LENGTH, VR::IS, "1");
    put_str(tags::MAGNETIC_FIELD_STRENGTH, VR::DS, "1.5");
    put_str(tags::TRIGGER_TIME, VR::DS, &ds(slice.trigger_time));
    put_str(tags::CARDIAC_NUMBER_OF_IMAGES, VR::IS, "20");
    put_str(tags::PATIENT_POSITION, VR::CS, "HFS");
    put_str(tags::STUDY_INSTANCE_UID, VR::UI, &slice.study_instance_uid);
    put_str(tags::SERIES_INSTANCE_UID, VR::UI, &slice.series_instance_uid);
    put_str(tags::STUDY_ID, VR::SH, "1");
    put_str(tags::SERIES_NUMBER, VR::IS, &slice.series_number.to_string());
    put_str(tags::INSTANCE_NUMBER, VR::IS, &slice.instance_number.to_string());
    put_str(tags::IMAGE_POSITION_PATIENT, VR::DS, &ds_multi(&slice.image_position_patient));
    put_str(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, &ds_multi(&slice.image_orientation_patient));
    put_str(tags::FRAME_OF_REFERENCE_UID, VR::UI, &slice.frame_of_reference_uid);
    put_str(tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
    put_str(tags::SLICE_LOCATION, VR::DS, &ds(slice.slice_location));
    put_str(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    put_str(tags::PIXEL_SPACING, VR::DS, &ds_multi(&slice.pixel_spacing));
    put_str(tags::WINDOW_CENTER, VR::DS, &ds(slice.window_center));
    put_str(tags::WINDOW_WIDTH, VR::DS, &ds(slice.window_width));
    put_str(tags::RESCALE_INTERCEPT, VR::DS, &ds(slice.rescale_intercept));
    put_str(tags::RESCALE_SLOPE, VR::DS, &ds(slice.rescale_slope));
    put_str(tags::RESCALE_TYPE, VR::LO, "US");
    let mut put_us = |tag: Tag, value: u16| {
        obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
    };
    let (allocated, representation) = match slice.pixels {
        StoredPixels::U8(_) => (8, 0),
        StoredPixels::U16(_) => (16, 0),
        StoredPixels::I16(_) => (16, 1),
    };
    put_us(tags::SAMPLES_PER_PIXEL, 1);
    put_us(tags::ROWS, slice.rows);
    put_us(tags::COLUMNS, slice.columns);
    put_us(tags::BITS_ALLOCATED, allocated);
    put_us(tags::BITS_STORED, slice.bits_stored);
    put_us(tags::HIGH_BIT, slice.bits_stored.saturating_sub(1));
    put_us(tags::PIXEL_REPRESENTATION, representation);
    let pixel_value = match &slice.pixels {
        StoredPixels::U8(v) => (VR::OB, PrimitiveValue::U8(v.iter().copied().collect())),
        StoredPixels::U16(v) => (VR::OW, PrimitiveValue::U16(v.iter().copied().collect())),
        // OW holds 16-bit words; the sign lives in Pixel Representation.
        StoredPixels::I16(v) => {
            (VR::OW, PrimitiveValue::U16(v.iter().map(|&x| x as u16).collect()))
        }
    };
    obj.put(DataElement::new(tags::PIXEL_DATA, pixel_value.0, Value::Primitive(pixel_value.1)));
    obj
}

/// Wraps a data set with a file meta group for `transfer_syntax_uid`.
pub(crate) fn with_file_meta(
    path: &Path,
    dataset: InMemDicomObject,
    transfer_syntax_uid: &str,
) -> Result<FileDicomObject<InMemDicomObject>, DicomError> {
    dataset
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(transfer_syntax_uid)
                .implementation_class_uid("2.25.302290283717447307094626283744373459107")
                .implementation_version_name("LVC_0_1"),
        )
        .map_err(|e| {
            DicomError::new(
                path,
                DicomErrorKind::InvalidInput,
                format!("cannot build the file meta group: {e}"),
            )
        })
}

/// Serialises a file object and writes it atomically (temp file + rename).
pub(crate) fn write_file_object(
    path: &Path,
    file: &FileDicomObject<InMemDicomObject>,
) -> Result<(), DicomError> {
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).map_err(|e| {
        DicomError::new(
            path,
            DicomErrorKind::InvalidInput,
            format!("cannot encode the data set: {e}"),
        )
    })?;
    write_atomic(path, &bytes)
        .map_err(|e| DicomError::new(path, DicomErrorKind::Io, format!("cannot write file: {e}")))
}

/// Writes `slice` to `path` in `syntax`, atomically.
pub fn write_mr_slice(path: &Path, slice: &MrSlice, syntax: WriteSyntax) -> Result<(), DicomError> {
    check_pixels(path, slice)?;
    let file = with_file_meta(path, mr_dataset(slice), syntax.uid())?;
    write_file_object(path, &file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_values_fit_16_characters() {
        assert_eq!(ds(8.0), "8");
        assert_eq!(ds(1.40625), "1.40625");
        let long = ds(-123.45678901234567);
        assert!(long.len() <= 16, "{long}");
        assert!((long.parse::<f64>().unwrap() + 123.456789).abs() < 1e-6);
    }

    #[test]
    fn uid_form() {
        assert_eq!(uid_2_25(12345), "2.25.12345");
        assert!(uid_2_25(u128::MAX).len() <= 64);
    }
}
