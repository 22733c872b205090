//! Reading (and, in [`write`], writing) single DICOM images.
//!
//! Built on dicom-object / dicom-pixeldata 0.10 with the `openjp2` and
//! `charls` codecs. Supported: uncompressed (explicit/implicit VR little
//! endian, explicit VR big endian, deflated), RLE lossless, JPEG lossless
//! (.57/.70), JPEG baseline (8-bit), JPEG 2000 and JPEG-LS. JPEG Extended
//! with 12-bit samples (.51) is refused (no pure decoder for it).
//!
//! The reader never panics on bad input: the header is validated before any
//! codec runs (the codecs index out of bounds on inconsistent headers), and
//! decoding runs inside [`guard::catch_panic`] as a second line of defence.
//! Nor does it crash, block or fill memory on hostile files: only regular
//! files are read (a FIFO would block, a device never ends), a header is
//! read without the pixel data behind it, a whole file only up to
//! [`MAX_FILE_BYTES`], and [`scan`] checks every declared length and the
//! nesting of sequences before dicom-object parses (it recurses per level).

mod error;
pub mod export;
mod guard;
mod scan;
pub mod write;

pub use error::{DicomError, DicomErrorKind};

use dicom_core::value::Value as DicomValue;
use dicom_dictionary_std::{tags, uids};
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions, Tag};
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use serde::Serialize;
use std::io::Read;
use std::path::Path;

/// Refuse images whose first frame would decode to more than this many
/// bytes: no cardiac MR slice comes near it, and a corrupt Rows/Columns pair
/// must not make a codec allocate gigabytes.
const MAX_FRAME_BYTES: u64 = 256 * 1024 * 1024;

/// The largest DICOM file (and inflated deflated data set) read whole:
/// larger ones are refused from their length, before any byte is read.
/// dicom-object holds the whole file in memory even to decode one frame.
/// Real multi-frame files pass: an enhanced cine MR series of 20 slices ×
/// 30 phases × 256 × 256 × 16 bits is 79 MB, a CT-sized multi-frame
/// volume of 1,000 frames of 512 × 512 × 16 bits 524 MB. A sparse
/// multi-GB file or a runaway export does not. Headers alone
/// ([`read_info`]) are read from files of any length.
pub const MAX_FILE_BYTES: u64 = 2 << 30;
const MAX_FILE_BYTES_TEXT: &str = "2 GiB";

/// The first read of a header. Headers of MR slices are 1–10 kB, so one
/// read usually holds the whole header; a larger one is read on in steps
/// that double, up to what the walk says the header needs.
const HEADER_CHUNK: u64 = 64 * 1024;

/// The header of a DICOM image: geometry, pixel format, and the tags a
/// dataset builder needs. Optional tags are `None` when absent or unparseable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DicomInfo {
    pub rows: u32,
    pub columns: u32,
    /// Number of Frames (1 when absent).
    pub frames: u32,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    /// High Bit (Bits Stored − 1 when absent).
    pub high_bit: u16,
    /// Pixel Representation 1 (two's complement).
    pub signed: bool,
    /// Photometric Interpretation, e.g. `MONOCHROME2`.
    pub photometric: String,
    /// Planar Configuration (colour images only).
    pub planar_configuration: Option<u16>,
    pub transfer_syntax_uid: String,
    /// The registry's name for the syntax, or `unknown` for an unknown UID.
    pub transfer_syntax_name: String,
    pub sop_class_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
    pub modality: Option<String>,
    pub patient_id: Option<String>,
    pub study_instance_uid: Option<String>,
    pub series_instance_uid: Option<String>,
    /// Pixel Spacing as (row spacing, column spacing) in mm.
    pub pixel_spacing: Option<[f64; 2]>,
    pub slice_thickness: Option<f64>,
    pub slice_location: Option<f64>,
    pub image_position_patient: Option<[f64; 3]>,
    pub image_orientation_patient: Option<[f64; 6]>,
    pub series_number: Option<i64>,
    pub instance_number: Option<i64>,
    pub series_description: Option<String>,
    /// Trigger Time in ms (cine phase).
    pub trigger_time: Option<f64>,
    pub rescale_slope: Option<f64>,
    pub rescale_intercept: Option<f64>,
    /// First value of Window Center.
    pub window_center: Option<f64>,
    /// First value of Window Width.
    pub window_width: Option<f64>,
}

/// Stored pixel values, exactly as pydicom's `pixel_array` gives them:
/// only the Bits Stored low bits, sign-extended when Pixel Representation
/// is 1. Signed 8-bit images come as `I16` (there is no `I8`).
#[derive(Debug, Clone, PartialEq)]
pub enum StoredPixels {
    U8(Vec<u8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
}

impl StoredPixels {
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::I16(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32 (exact: every u8/u16/i16 fits).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Self::U8(v) => v.iter().map(|&x| f32::from(x)).collect(),
            Self::U16(v) => v.iter().map(|&x| f32::from(x)).collect(),
            Self::I16(v) => v.iter().map(|&x| f32::from(x)).collect(),
        }
    }
}

/// A decoded image: the first frame, and of a colour image the first sample
/// (R of RGB, Y of YBR) — `rows × columns` values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct DicomImage {
    pub info: DicomInfo,
    pub pixels: StoredPixels,
}

impl DicomImage {
    /// The stored values as f32, row-major, no rescale applied.
    pub fn to_f32(&self) -> Vec<f32> {
        self.pixels.to_f32()
    }
}

/// Reads the header only: the file's bytes up to Pixel Data, never the
/// pixel data itself, so it is fast on files of any length and works on
/// files whose pixel data is cut short.
pub fn read_info(path: &Path) -> Result<DicomInfo, DicomError> {
    let header = read_header(path)?;
    let obj = parse(path, &header, OpenFileOptions::new().read_until(tags::PIXEL_DATA))?;
    info_from_object(path, &obj)
}

/// [`read_info`] on the bytes of a file already in memory (the whole file,
/// or at least its header); `path` only names the file in errors. Checks
/// what `read_info` checks: declared lengths against `bytes`, the nesting
/// of sequences.
pub fn info_from_bytes(path: &Path, bytes: &[u8]) -> Result<DicomInfo, DicomError> {
    let end = scan::check_bytes(bytes, true).map_err(|r| refused(path, r))?;
    let obj = parse(path, &bytes[..end], OpenFileOptions::new().read_until(tags::PIXEL_DATA))?;
    info_from_object(path, &obj)
}

/// Reads and decodes the first frame of an image.
pub fn read_image(path: &Path) -> Result<DicomImage, DicomError> {
    decode_image(path, &read_bytes(path)?)
}

/// The bytes of DICOM file `path`, as [`read_image`] reads them: only a
/// regular file (a FIFO, device or folder is refused before it is read),
/// and only up to [`MAX_FILE_BYTES`] (a larger file is refused from its
/// length). For callers that need the bytes too, e.g. to checksum them
/// before [`decode_image`].
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, DicomError> {
    lvc_fsio::read::read_regular(path, MAX_FILE_BYTES).map_err(|e| io_error(path, e))
}

/// Decodes the first frame of an image from the bytes of its file (for
/// callers that also need the bytes, e.g. to checksum them); `path` only
/// names the file in errors. Checks what [`read_image`] checks: at most
/// [`MAX_FILE_BYTES`], declared lengths, the nesting of sequences.
pub fn decode_image(path: &Path, bytes: &[u8]) -> Result<DicomImage, DicomError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(io_error(path, lvc_fsio::read::too_large(bytes.len() as u64, MAX_FILE_BYTES)));
    }
    scan::check_bytes(bytes, false).map_err(|r| refused(path, r))?;
    let obj = parse(path, bytes, OpenFileOptions::new())?;
    let info = info_from_object(path, &obj)?;
    validate_for_decoding(path, &info)?;
    validate_pixel_data(path, &obj, &info)?;
    let decoded = guard::catch_panic(|| obj.decode_pixel_data_frame(0).map(|d| d.into_data()))
        .map_err(|msg| {
            DicomError::new(
                path,
                DicomErrorKind::DecoderPanic,
                format!("the {} decoder crashed: {msg}", info.transfer_syntax_name),
            )
        })?
        .map_err(|e| {
            DicomError::new(
                path,
                DicomErrorKind::Decode,
                format!("cannot decode {} pixel data: {e}", info.transfer_syntax_name),
            )
        })?;
    let pixels = stored_values(path, &info, &decoded, obj_is_encapsulated(&obj))?;
    Ok(DicomImage { info, pixels })
}

/// An I/O error reading `path`, with the kind that says what to change:
/// not a regular file, too large, or unreadable.
fn io_error(path: &Path, e: std::io::Error) -> DicomError {
    let kind = if lvc_fsio::read::not_regular_in(&e).is_some() {
        DicomErrorKind::NotAFile
    } else if lvc_fsio::read::too_large_in(&e).is_some() {
        DicomErrorKind::TooLarge
    } else {
        DicomErrorKind::Io
    };
    DicomError::new(path, kind, format!("cannot read file: {e}"))
}

fn refused(path: &Path, refused: scan::Refused) -> DicomError {
    DicomError::new(path, refused.kind, refused.message)
}

/// The bytes of `path` up to the end of its header, checked: read from the
/// start in growing steps until [`scan`] has walked to Pixel Data (or the
/// end of the file), never further.
fn read_header(path: &Path) -> Result<Vec<u8>, DicomError> {
    let (mut file, mut len) = lvc_fsio::read::open_regular(path).map_err(|e| io_error(path, e))?;
    let mut bytes = Vec::new();
    let mut want = HEADER_CHUNK.min(len);
    loop {
        if want > MAX_FILE_BYTES {
            return Err(DicomError::new(
                path,
                DicomErrorKind::TooLarge,
                format!("its header (everything before Pixel Data) runs past {MAX_FILE_BYTES_TEXT}, the most lvc reads of one DICOM file"),
            ));
        }
        let missing = want - bytes.len() as u64;
        // Exactly what is wanted: `read_to_end` alone would double the buffer.
        bytes.reserve_exact(missing as usize);
        (&mut file).take(missing).read_to_end(&mut bytes).map_err(|e| io_error(path, e))?;
        if (bytes.len() as u64) < want {
            // The file shrank since it was opened: walk what there is.
            len = bytes.len() as u64;
        }
        match scan::walk_file(&bytes, len, true).map_err(|r| refused(path, r))? {
            scan::Walked::Done { end } => {
                bytes.truncate(end);
                return Ok(bytes);
            }
            // At least double (up to the bound), so that a header of many
            // small steps is read in few reads.
            scan::Walked::NeedMore { want: need } => {
                want = need.max((2 * bytes.len() as u64).min(MAX_FILE_BYTES)).min(len)
            }
        }
    }
}

/// Parses the bytes of file `path`, which [`scan`] has checked.
fn parse(
    path: &Path,
    bytes: &[u8],
    options: OpenFileOptions,
) -> Result<DefaultDicomObject, DicomError> {
    // What `open_file` does for a path: the 128-byte preamble is skipped
    // when `DICM` follows it, absent when the bytes start with `DICM`, and
    // assumed when neither is found.
    let preamble = if bytes.get(128..132) == Some(b"DICM") || bytes.get(..4) != Some(b"DICM") {
        ReadPreamble::Always
    } else {
        ReadPreamble::Never
    };
    guard::catch_panic(|| options.read_preamble(preamble).from_reader(bytes))
        .map_err(|msg| {
            DicomError::new(
                path,
                DicomErrorKind::DecoderPanic,
                format!("the DICOM parser crashed: {msg}"),
            )
        })?
        .map_err(|e| {
            use dicom_object::ReadError as R;
            match e {
                R::ReadUnrecognizedTransferSyntax { .. }
                | R::ReadUnsupportedTransferSyntax { .. }
                | R::ReadUnsupportedTransferSyntaxWithSuggestion { .. } => {
                    DicomError::new(path, DicomErrorKind::UnsupportedSyntax, e.to_string())
                }
                _ => DicomError::new(
                    path,
                    DicomErrorKind::Parse,
                    format!("not a readable DICOM file: {}", error_chain(&e)),
                ),
            }
        })
}

/// `e` and its sources, joined: dicom-rs puts the useful part in the sources.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn obj_is_encapsulated(obj: &DefaultDicomObject) -> bool {
    matches!(obj.get(tags::PIXEL_DATA).map(|e| e.value()), Some(DicomValue::PixelSequence(_)))
}

fn tag_name(tag: Tag) -> &'static str {
    match tag {
        tags::ROWS => "Rows (0028,0010)",
        tags::COLUMNS => "Columns (0028,0011)",
        tags::BITS_ALLOCATED => "Bits Allocated (0028,0100)",
        tags::BITS_STORED => "Bits Stored (0028,0101)",
        tags::PIXEL_REPRESENTATION => "Pixel Representation (0028,0103)",
        tags::SAMPLES_PER_PIXEL => "Samples per Pixel (0028,0002)",
        tags::PHOTOMETRIC_INTERPRETATION => "Photometric Interpretation (0028,0004)",
        tags::PIXEL_DATA => "Pixel Data (7FE0,0010)",
        _ => "tag",
    }
}

/// A required integer tag: missing → `MissingTag`, unparseable or out of
/// range for `T` → `InvalidHeader`.
fn required_int<T>(path: &Path, obj: &DefaultDicomObject, tag: Tag) -> Result<T, DicomError>
where
    T: TryFrom<i64>,
{
    let elem = obj.get(tag).ok_or_else(|| {
        DicomError::new(path, DicomErrorKind::MissingTag, format!("{} is missing", tag_name(tag)))
    })?;
    let value: i64 = elem.to_int::<i64>().map_err(|e| {
        DicomError::new(
            path,
            DicomErrorKind::InvalidHeader,
            format!("{} is not an integer: {e}", tag_name(tag)),
        )
    })?;
    T::try_from(value).map_err(|_| {
        DicomError::new(
            path,
            DicomErrorKind::InvalidHeader,
            format!("{} = {value} is out of range", tag_name(tag)),
        )
    })
}

fn optional_int(obj: &DefaultDicomObject, tag: Tag) -> Option<i64> {
    obj.get(tag).and_then(|e| e.to_int::<i64>().ok())
}

fn optional_floats(obj: &DefaultDicomObject, tag: Tag) -> Option<Vec<f64>> {
    obj.get(tag).and_then(|e| e.to_multi_float64().ok()).filter(|v| !v.is_empty())
}

fn optional_float(obj: &DefaultDicomObject, tag: Tag) -> Option<f64> {
    optional_floats(obj, tag).map(|v| v[0])
}

fn optional_array<const N: usize>(obj: &DefaultDicomObject, tag: Tag) -> Option<[f64; N]> {
    optional_floats(obj, tag).and_then(|v| <[f64; N]>::try_from(v.get(..N)?).ok())
}

fn optional_str(obj: &DefaultDicomObject, tag: Tag) -> Option<String> {
    obj.get(tag).and_then(|e| e.to_str().ok()).map(|s| s.trim_end_matches(['\0', ' ']).to_string())
}

fn info_from_object(path: &Path, obj: &DefaultDicomObject) -> Result<DicomInfo, DicomError> {
    let transfer_syntax_uid = obj.meta().transfer_syntax().to_string();
    let transfer_syntax_name = TransferSyntaxRegistry
        .get(&transfer_syntax_uid)
        .map_or("unknown", |ts| ts.name())
        .to_string();
    let rows: u32 = required_int(path, obj, tags::ROWS)?;
    let columns: u32 = required_int(path, obj, tags::COLUMNS)?;
    let bits_allocated: u16 = required_int(path, obj, tags::BITS_ALLOCATED)?;
    let bits_stored: u16 = required_int(path, obj, tags::BITS_STORED)?;
    let pixel_representation: u16 = required_int(path, obj, tags::PIXEL_REPRESENTATION)?;
    let samples_per_pixel: u16 = required_int(path, obj, tags::SAMPLES_PER_PIXEL)?;
    let photometric = optional_str(obj, tags::PHOTOMETRIC_INTERPRETATION)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            DicomError::new(
                path,
                DicomErrorKind::MissingTag,
                format!("{} is missing", tag_name(tags::PHOTOMETRIC_INTERPRETATION)),
            )
        })?;
    let frames = match optional_int(obj, tags::NUMBER_OF_FRAMES) {
        None => 1,
        Some(n) => u32::try_from(n).map_err(|_| {
            DicomError::new(
                path,
                DicomErrorKind::InvalidHeader,
                format!("Number of Frames = {n} is out of range"),
            )
        })?,
    };
    let high_bit = match optional_int(obj, tags::HIGH_BIT) {
        None => bits_stored.saturating_sub(1),
        Some(h) => u16::try_from(h).map_err(|_| {
            DicomError::new(
                path,
                DicomErrorKind::InvalidHeader,
                format!("High Bit = {h} is out of range"),
            )
        })?,
    };
    Ok(DicomInfo {
        rows,
        columns,
        frames,
        samples_per_pixel,
        bits_allocated,
        bits_stored,
        high_bit,
        signed: pixel_representation == 1,
        photometric,
        planar_configuration: optional_int(obj, tags::PLANAR_CONFIGURATION)
            .and_then(|v| u16::try_from(v).ok()),
        transfer_syntax_uid,
        transfer_syntax_name,
        sop_class_uid: optional_str(obj, tags::SOP_CLASS_UID),
        sop_instance_uid: optional_str(obj, tags::SOP_INSTANCE_UID),
        modality: optional_str(obj, tags::MODALITY),
        patient_id: optional_str(obj, tags::PATIENT_ID),
        study_instance_uid: optional_str(obj, tags::STUDY_INSTANCE_UID),
        series_instance_uid: optional_str(obj, tags::SERIES_INSTANCE_UID),
        pixel_spacing: optional_array::<2>(obj, tags::PIXEL_SPACING),
        slice_thickness: optional_float(obj, tags::SLICE_THICKNESS),
        slice_location: optional_float(obj, tags::SLICE_LOCATION),
        image_position_patient: optional_array::<3>(obj, tags::IMAGE_POSITION_PATIENT),
        image_orientation_patient: optional_array::<6>(obj, tags::IMAGE_ORIENTATION_PATIENT),
        series_number: optional_int(obj, tags::SERIES_NUMBER),
        instance_number: optional_int(obj, tags::INSTANCE_NUMBER),
        series_description: optional_str(obj, tags::SERIES_DESCRIPTION),
        trigger_time: optional_float(obj, tags::TRIGGER_TIME),
        rescale_slope: optional_float(obj, tags::RESCALE_SLOPE),
        rescale_intercept: optional_float(obj, tags::RESCALE_INTERCEPT),
        window_center: optional_float(obj, tags::WINDOW_CENTER),
        window_width: optional_float(obj, tags::WINDOW_WIDTH),
    })
}

/// Bytes of one decoded frame (all samples).
fn frame_bytes(info: &DicomInfo) -> u64 {
    u64::from(info.rows)
        * u64::from(info.columns)
        * u64::from(info.samples_per_pixel)
        * u64::from(info.bits_allocated / 8)
}

/// Header checks that keep the codecs away from the inputs they crash on.
fn validate_for_decoding(path: &Path, info: &DicomInfo) -> Result<(), DicomError> {
    let invalid =
        |reason: String| Err(DicomError::new(path, DicomErrorKind::InvalidHeader, reason));
    let unsupported = |kind, reason: String| Err(DicomError::new(path, kind, reason));
    if info.rows == 0 || info.columns == 0 {
        return invalid(format!(
            "image is {} × {} (Rows and Columns must be > 0)",
            info.rows, info.columns
        ));
    }
    if info.frames == 0 {
        return invalid("Number of Frames is 0".to_string());
    }
    if !matches!(info.bits_allocated, 8 | 16) {
        return unsupported(
            DicomErrorKind::UnsupportedFormat,
            format!("Bits Allocated = {} (only 8 and 16 are supported)", info.bits_allocated),
        );
    }
    if info.bits_stored == 0 || info.bits_stored > info.bits_allocated {
        return invalid(format!(
            "Bits Stored = {} must be between 1 and Bits Allocated = {}",
            info.bits_stored, info.bits_allocated
        ));
    }
    if info.high_bit >= info.bits_allocated {
        return invalid(format!(
            "High Bit = {} is not below Bits Allocated = {}",
            info.high_bit, info.bits_allocated
        ));
    }
    match (info.samples_per_pixel, info.photometric.as_str()) {
        (1, "MONOCHROME1" | "MONOCHROME2") => {}
        (3, "RGB" | "YBR_FULL" | "YBR_FULL_422" | "YBR_ICT" | "YBR_RCT") => {}
        (1 | 3, other) => {
            return unsupported(
                DicomErrorKind::UnsupportedFormat,
                format!(
                    "Photometric Interpretation {other} with {} sample(s) per pixel",
                    info.samples_per_pixel
                ),
            )
        }
        (n, _) => return invalid(format!("Samples per Pixel = {n} (must be 1 or 3)")),
    }
    if frame_bytes(info) > MAX_FRAME_BYTES {
        return unsupported(
            DicomErrorKind::UnsupportedFormat,
            format!(
                "a {} × {} frame is larger than {MAX_FRAME_BYTES} bytes",
                info.rows, info.columns
            ),
        );
    }
    let uid = info.transfer_syntax_uid.as_str();
    if uid == uids::JPEG_EXTENDED12_BIT && info.bits_stored > 8 {
        return unsupported(
            DicomErrorKind::UnsupportedSyntax,
            format!(
                "JPEG Extended with {}-bit samples ({uid}) has no decoder here",
                info.bits_stored
            ),
        );
    }
    match TransferSyntaxRegistry.get(uid) {
        None => unsupported(
            DicomErrorKind::UnsupportedSyntax,
            format!("unknown transfer syntax UID {uid}"),
        ),
        Some(ts) if !ts.can_decode_all() => unsupported(
            DicomErrorKind::UnsupportedSyntax,
            format!("transfer syntax {} ({uid}) has no pixel decoder here", ts.name()),
        ),
        Some(_) => Ok(()),
    }
}

/// Checks the Pixel Data element against the header: enough native bytes, or
/// well-formed fragments (an RLE header that points inside its fragment).
fn validate_pixel_data(
    path: &Path,
    obj: &DefaultDicomObject,
    info: &DicomInfo,
) -> Result<(), DicomError> {
    let elem = obj.get(tags::PIXEL_DATA).ok_or_else(|| {
        DicomError::new(
            path,
            DicomErrorKind::MissingTag,
            format!("{} is missing", tag_name(tags::PIXEL_DATA)),
        )
    })?;
    let expected = frame_bytes(info);
    match elem.value() {
        DicomValue::Primitive(p) => {
            let have = p.to_bytes().len() as u64;
            if have < expected {
                return Err(DicomError::new(
                    path,
                    DicomErrorKind::TruncatedPixelData,
                    format!(
                        "Pixel Data holds {have} bytes but {} × {} × {} sample(s) × {} bits needs {expected}",
                        info.rows, info.columns, info.samples_per_pixel, info.bits_allocated
                    ),
                ));
            }
            Ok(())
        }
        DicomValue::PixelSequence(seq) => {
            let first = seq.fragments().first().filter(|f| !f.is_empty()).ok_or_else(|| {
                DicomError::new(
                    path,
                    DicomErrorKind::TruncatedPixelData,
                    "encapsulated Pixel Data has no fragment",
                )
            })?;
            if info.transfer_syntax_uid == uids::RLE_LOSSLESS {
                validate_rle_header(path, first, info)?;
            }
            Ok(())
        }
        DicomValue::Sequence(_) => Err(DicomError::new(
            path,
            DicomErrorKind::InvalidHeader,
            "Pixel Data is a sequence of items, not pixel values",
        )),
    }
}

/// An RLE frame starts with a 64-byte header: segment count, then 15 offsets.
/// The RLE decoder trusts it blindly, so check it here.
fn validate_rle_header(path: &Path, fragment: &[u8], info: &DicomInfo) -> Result<(), DicomError> {
    let bad = |reason: String| {
        Err(DicomError::new(path, DicomErrorKind::Decode, format!("corrupt RLE frame: {reason}")))
    };
    if fragment.len() < 64 {
        return bad(format!(
            "fragment of {} bytes is shorter than the 64-byte RLE header",
            fragment.len()
        ));
    }
    let word = |i: usize| {
        u32::from_le_bytes([
            fragment[4 * i],
            fragment[4 * i + 1],
            fragment[4 * i + 2],
            fragment[4 * i + 3],
        ])
    };
    let segments = word(0) as usize;
    let expected = usize::from(info.samples_per_pixel) * usize::from(info.bits_allocated / 8);
    if segments != expected {
        return bad(format!("{segments} segments, the header implies {expected}"));
    }
    let mut previous = 63u32;
    for i in 1..=segments {
        let offset = word(i);
        if offset <= previous || offset as usize >= fragment.len() {
            return bad(format!(
                "segment {i} offset {offset} is outside the {}-byte fragment",
                fragment.len()
            ));
        }
        previous = offset;
    }
    Ok(())
}

/// Turns the decoder's native-endian bytes into stored values: first frame,
/// first sample, Bits Stored low bits, sign-extended when signed.
fn stored_values(
    path: &Path,
    info: &DicomInfo,
    data: &[u8],
    encapsulated: bool,
) -> Result<StoredPixels, DicomError> {
    let pixels = info.rows as usize * info.columns as usize;
    let samples = usize::from(info.samples_per_pixel);
    let bytes_per_sample = usize::from(info.bits_allocated / 8);
    let needed = pixels * samples * bytes_per_sample;
    if data.len() < needed {
        return Err(DicomError::new(
            path,
            DicomErrorKind::Decode,
            format!("the decoder produced {} bytes, the header implies {needed}", data.len()),
        ));
    }
    // Decoders return interleaved samples; native data follows Planar
    // Configuration. The first sample of pixel i starts at i·stride bytes.
    let planar = !encapsulated && samples > 1 && info.planar_configuration == Some(1);
    // Never 0: `validate_for_decoding` allows 8 or 16 bits and 1 or 3
    // samples; `max` keeps a zero stride from panicking regardless.
    let stride = (bytes_per_sample * if planar { 1 } else { samples }).max(1);
    // `data` holds at least `pixels` whole strides (checked above), so the
    // loops below see exactly `pixels` chunks, without index checks.
    let first_samples = data.chunks_exact(stride).take(pixels);
    let unused = u32::from(info.bits_allocated - info.bits_stored);
    Ok(if bytes_per_sample == 1 {
        let raw = first_samples.map(|c| c[0]);
        if info.signed {
            StoredPixels::I16(raw.map(|v| i16::from(((v << unused) as i8) >> unused)).collect())
        } else {
            let mask = u8::MAX >> unused;
            StoredPixels::U8(raw.map(|v| v & mask).collect())
        }
    } else {
        let raw = first_samples.map(|c| u16::from_ne_bytes([c[0], c[1]]));
        if info.signed {
            StoredPixels::I16(raw.map(|v| ((v << unused) as i16) >> unused).collect())
        } else {
            let mask = u16::MAX >> unused;
            StoredPixels::U16(raw.map(|v| v & mask).collect())
        }
    })
}

#[cfg(test)]
mod tests;
