//! Reader tests on files built at test time with the writer (and, for the
//! compressed syntaxes, re-encoded here or by the crates' encoders).

use super::write::{
    mr_dataset, uid_2_25, with_file_meta, write_file_object, write_mr_slice, MrSlice, WriteSyntax,
};
use super::*;
use dicom_core::value::{PixelFragmentSequence, PrimitiveValue};
use dicom_core::{DataElement, VR};
use dicom_object::InMemDicomObject;
use dicom_pixeldata::Transcode;
use proptest::prelude::*;
use std::path::PathBuf;

const ROWS: u16 = 24;

/// Corrupts an encoded frame.
type FrameEdit = fn(&mut Vec<u8>);
/// Changes a data set before it is written.
type HeaderEdit = Box<dyn FnOnce(&mut InMemDicomObject)>;
type HeaderFix = fn(&mut InMemDicomObject);
const COLS: u16 = 20;

/// A gradient with a bright disc, so that every byte value class occurs.
fn pattern(bits: u32, signed: bool) -> Vec<i32> {
    let (lo, hi) = if signed {
        (-(1i32 << (bits - 1)), (1i32 << (bits - 1)) - 1)
    } else {
        (0, (1i32 << bits) - 1)
    };
    (0..i32::from(ROWS) * i32::from(COLS))
        .map(|i| {
            let (r, c) = (i / i32::from(COLS), i % i32::from(COLS));
            let disc = (r - 12).pow(2) + (c - 10).pow(2) < 30;
            let v = if disc { hi } else { lo + (i * 9973) % (hi - lo + 1) };
            v.clamp(lo, hi)
        })
        .collect()
}

fn pixels(kind: &str, bits: u16) -> StoredPixels {
    let b = u32::from(bits);
    match kind {
        "u8" => StoredPixels::U8(pattern(b, false).into_iter().map(|v| v as u8).collect()),
        "u16" => StoredPixels::U16(pattern(b, false).into_iter().map(|v| v as u16).collect()),
        "i16" => StoredPixels::I16(pattern(b, true).into_iter().map(|v| v as i16).collect()),
        other => unreachable!("test pixel kind {other}"),
    }
}

fn slice(pixels: StoredPixels, bits_stored: u16) -> MrSlice {
    MrSlice {
        patient_name: "Phantom^Test".into(),
        patient_id: "LVC-TEST".into(),
        study_instance_uid: uid_2_25(1),
        study_description: "test".into(),
        series_instance_uid: uid_2_25(2),
        series_description: "CINE SAX".into(),
        series_number: 4,
        sop_instance_uid: uid_2_25(3),
        frame_of_reference_uid: uid_2_25(4),
        instance_number: 21,
        rows: ROWS,
        columns: COLS,
        pixel_spacing: [1.40625, 1.25],
        slice_thickness: 8.0,
        slice_location: -12.5,
        image_position_patient: [-150.0, -140.5, 30.25],
        image_orientation_patient: [0.8, 0.6, 0.0, -0.1, 0.1, -0.98],
        trigger_time: 45.5,
        bits_stored,
        rescale_slope: 1.0,
        rescale_intercept: 0.0,
        window_center: 120.0,
        window_width: 300.0,
        pixels,
    }
}

fn temp_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn uncompressed_syntaxes_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let syntaxes = [
        WriteSyntax::ExplicitVrLittleEndian,
        WriteSyntax::ImplicitVrLittleEndian,
        WriteSyntax::ExplicitVrBigEndian,
    ];
    let formats = [("u16", 16), ("u16", 12), ("i16", 16), ("i16", 12), ("u8", 8), ("u8", 6)];
    for syntax in syntaxes {
        for (kind, bits) in formats {
            let path = temp_path(&dir, &format!("{syntax:?}-{kind}-{bits}.dcm"));
            let s = slice(pixels(kind, bits), bits);
            write_mr_slice(&path, &s, syntax).unwrap();
            let image =
                read_image(&path).unwrap_or_else(|e| panic!("{syntax:?} {kind} {bits}: {e}"));
            assert_eq!(image.pixels, s.pixels, "{syntax:?} {kind} {bits}");
            let info = &image.info;
            assert_eq!(info.transfer_syntax_uid, syntax.uid());
            assert_eq!((info.rows, info.columns, info.frames), (24, 20, 1));
            assert_eq!(
                (info.bits_stored, info.high_bit, info.signed),
                (bits, bits - 1, kind == "i16")
            );
            assert_eq!(info.pixel_spacing, Some([1.40625, 1.25]));
            assert_eq!(info.image_position_patient, Some([-150.0, -140.5, 30.25]));
            assert_eq!(info.image_orientation_patient, Some([0.8, 0.6, 0.0, -0.1, 0.1, -0.98]));
            assert_eq!((info.series_number, info.instance_number), (Some(4), Some(21)));
            assert_eq!(info.slice_thickness, Some(8.0));
            assert_eq!(info.slice_location, Some(-12.5));
            assert_eq!(info.trigger_time, Some(45.5));
            assert_eq!(info.series_description.as_deref(), Some("CINE SAX"));
            assert_eq!(info.sop_class_uid.as_deref(), Some(uids::MR_IMAGE_STORAGE));
            assert_eq!(info.modality.as_deref(), Some("MR"));
            assert_eq!(info.photometric, "MONOCHROME2");
            assert_eq!((info.window_center, info.window_width), (Some(120.0), Some(300.0)));
            assert_eq!(read_info(&path).unwrap(), image.info);
        }
    }
}

#[test]
fn to_f32_is_exact() {
    let image = DicomImage {
        info: header_only_info(),
        pixels: StoredPixels::I16(vec![-32768, -1, 0, 32767]),
    };
    assert_eq!(image.to_f32(), vec![-32768.0, -1.0, 0.0, 32767.0]);
}

fn header_only_info() -> DicomInfo {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "h.dcm");
    write_mr_slice(&path, &slice(pixels("u16", 12), 12), WriteSyntax::default()).unwrap();
    read_info(&path).unwrap()
}

/// Writes a data set as built by `edit` from the standard test slice.
fn write_edited(path: &Path, ts_uid: &str, edit: impl FnOnce(&mut InMemDicomObject)) {
    let mut dataset = mr_dataset(&slice(pixels("u16", 16), 16));
    edit(&mut dataset);
    let file = with_file_meta(path, dataset, ts_uid).unwrap();
    write_file_object(path, &file).unwrap();
}

fn put_us(obj: &mut InMemDicomObject, tag: Tag, v: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
}

#[test]
fn unused_high_bits_are_masked_and_sign_extended() {
    let dir = tempfile::tempdir().unwrap();
    let words: Vec<u16> = [0xF800, 0x0FFF, 0x1801, 0x0800].repeat(120);
    for (representation, expected) in [
        (0u16, StoredPixels::U16([0x0800u16, 0x0FFF, 0x0801, 0x0800].repeat(120))),
        (1, StoredPixels::I16([-2048i16, -1, -2047, -2048].repeat(120))),
    ] {
        let path = temp_path(&dir, &format!("masked{representation}.dcm"));
        write_edited(&path, uids::EXPLICIT_VR_LITTLE_ENDIAN, |obj| {
            put_us(obj, tags::BITS_STORED, 12);
            put_us(obj, tags::HIGH_BIT, 11);
            put_us(obj, tags::PIXEL_REPRESENTATION, representation);
            obj.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U16(words.iter().copied().collect()),
            ));
        });
        assert_eq!(read_image(&path).unwrap().pixels, expected);
    }
}

#[test]
fn padded_pixel_data_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "padded.dcm");
    let mut words = match pixels("u16", 16) {
        StoredPixels::U16(v) => v,
        _ => unreachable!(),
    };
    let expected = words.clone();
    words.extend([7u16; 33]);
    write_edited(&path, uids::EXPLICIT_VR_LITTLE_ENDIAN, |obj| {
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(words.into_iter().collect()),
        ));
    });
    assert_eq!(read_image(&path).unwrap().pixels, StoredPixels::U16(expected));
}

/// PackBits (DICOM PS3.5 G.3.1): replicate runs of 3+ equal bytes, literals otherwise.
fn packbits(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let run = data[i..].iter().take(128).take_while(|&&b| b == data[i]).count();
        if run >= 3 {
            out.push((1i16 - run as i16) as i8 as u8);
            out.push(data[i]);
            i += run;
            continue;
        }
        let start = i;
        while i < data.len() && i - start < 128 {
            let ahead = data[i..].iter().take(3).take_while(|&&b| b == data[i]).count();
            if ahead >= 3 {
                break;
            }
            i += 1;
        }
        out.push((i - start - 1) as u8);
        out.extend_from_slice(&data[start..i]);
    }
    out
}

/// An RLE Lossless frame of 16-bit samples: high-byte then low-byte segment.
fn rle_frame(values: &[u16]) -> Vec<u8> {
    let mut segments: Vec<Vec<u8>> = [8u32, 0]
        .iter()
        .map(|&shift| packbits(&values.iter().map(|&v| (v >> shift) as u8).collect::<Vec<_>>()))
        .collect();
    for s in &mut segments {
        if s.len() % 2 == 1 {
            s.push(0);
        }
    }
    let mut header = [0u32; 16];
    header[0] = segments.len() as u32;
    let mut offset = 64u32;
    for (k, s) in segments.iter().enumerate() {
        header[k + 1] = offset;
        offset += s.len() as u32;
    }
    let mut out: Vec<u8> = header.iter().flat_map(|w| w.to_le_bytes()).collect();
    for s in segments {
        out.extend(s);
    }
    out
}

fn encapsulate(obj: &mut InMemDicomObject, fragment: Vec<u8>) {
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        dicom_core::value::Value::PixelSequence(PixelFragmentSequence::new(
            vec![0u32],
            vec![fragment],
        )),
    ));
}

fn write_rle(
    path: &Path,
    kind: &str,
    bits: u16,
    corrupt: impl FnOnce(&mut Vec<u8>),
) -> StoredPixels {
    let stored = pixels(kind, bits);
    let words: Vec<u16> = match &stored {
        StoredPixels::U16(v) => v.clone(),
        StoredPixels::I16(v) => v.iter().map(|&x| x as u16).collect(),
        StoredPixels::U8(_) => unreachable!(),
    };
    let mut frame = rle_frame(&words);
    corrupt(&mut frame);
    let mut dataset = mr_dataset(&slice(stored.clone(), bits));
    encapsulate(&mut dataset, frame);
    let file = with_file_meta(path, dataset, uids::RLE_LOSSLESS).unwrap();
    write_file_object(path, &file).unwrap();
    stored
}

#[test]
fn rle_lossless_decodes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, bits) in [("u16", 16), ("u16", 12), ("i16", 16), ("i16", 12)] {
        let path = temp_path(&dir, &format!("rle-{kind}-{bits}.dcm"));
        let expected = write_rle(&path, kind, bits, |_| {});
        let image = read_image(&path).unwrap();
        assert_eq!(image.info.transfer_syntax_name, "RLE Lossless");
        assert_eq!(image.pixels, expected, "{kind} {bits}");
    }
}

/// Writes the test pattern (u16, `bits` stored) as JPEG 2000 in syntax
/// `ts`: a codestream encoded by OpenJPEG through Pillow
/// (`fixtures/make_j2k.py`; dicom-rs has no JPEG 2000 encoder).
fn write_j2k(path: &Path, bits: u16, ts: &str) -> StoredPixels {
    let codestream: &[u8] = match bits {
        16 => include_bytes!("fixtures/pattern_u16_16.j2k"),
        12 => include_bytes!("fixtures/pattern_u16_12.j2k"),
        other => unreachable!("no JPEG 2000 fixture for {other} bits"),
    };
    let stored = pixels("u16", bits);
    let mut dataset = mr_dataset(&slice(stored.clone(), bits));
    let mut fragment = codestream.to_vec();
    if fragment.len() % 2 == 1 {
        fragment.push(0); // fragments have even length; bytes after EOC are ignored
    }
    encapsulate(&mut dataset, fragment);
    write_file_object(path, &with_file_meta(path, dataset, ts).unwrap()).unwrap();
    stored
}

/// JPEG 2000, lossless and the lossy syntax carrying a reversible
/// codestream, decodes to the stored values exactly, 16 and 12 bits stored.
#[test]
fn jpeg_2000_decodes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for bits in [16, 12] {
        for ts in [uids::JPEG2000_LOSSLESS, uids::JPEG2000] {
            let path = temp_path(&dir, &format!("j2k-{bits}-{ts}.dcm"));
            let stored = write_j2k(&path, bits, ts);
            let image = read_image(&path).unwrap();
            assert!(
                image.info.transfer_syntax_name.contains("JPEG 2000"),
                "{}",
                image.info.transfer_syntax_name
            );
            assert_eq!(image.pixels, stored, "{bits} bits, {ts}");
        }
    }
}

#[test]
fn corrupt_rle_frames_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, FrameEdit); 4] = [
        ("cut", |f| f.truncate(f.len() / 3)),
        ("tiny", |f| f.truncate(40)),
        ("segments", |f| f[0] = 5),
        ("offset", |f| f[8..12].copy_from_slice(&900_000u32.to_le_bytes())),
    ];
    for (name, corrupt) in cases {
        let path = temp_path(&dir, &format!("rle-{name}.dcm"));
        write_rle(&path, "u16", 16, corrupt);
        let err = read_image(&path).expect_err(name);
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        assert!(
            matches!(err.kind, DicomErrorKind::Decode | DicomErrorKind::DecoderPanic),
            "{name}: {err:?}"
        );
    }
}

fn transcoded(
    path: &Path,
    kind: &str,
    bits: u16,
    ts: &dicom_transfer_syntax_registry::TransferSyntax,
) -> StoredPixels {
    let stored = pixels(kind, bits);
    let mut file = with_file_meta(
        path,
        mr_dataset(&slice(stored.clone(), bits)),
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
    )
    .unwrap();
    file.transcode(ts).unwrap();
    write_file_object(path, &file).unwrap();
    stored
}

#[test]
fn jpeg_ls_lossless_decodes_exactly() {
    use dicom_transfer_syntax_registry::entries::JPEG_LS_LOSSLESS_IMAGE_COMPRESSION;
    let dir = tempfile::tempdir().unwrap();
    for (kind, bits) in [("u16", 16), ("u16", 12), ("u8", 8)] {
        let path = temp_path(&dir, &format!("jls-{kind}-{bits}.dcm"));
        let expected = transcoded(&path, kind, bits, &JPEG_LS_LOSSLESS_IMAGE_COMPRESSION.erased());
        let image = read_image(&path).unwrap();
        assert_eq!(image.info.transfer_syntax_uid, "1.2.840.10008.1.2.4.80");
        assert_eq!(image.pixels, expected, "{kind} {bits}");
    }
}

fn assert_error(path: &Path, kind: DicomErrorKind, needle: &str) -> DicomError {
    let err = read_image(path).expect_err("corrupt file must not decode");
    assert_eq!(err.kind, kind, "{err}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "names the file: {text}");
    assert!(text.contains(needle), "{text:?} should mention {needle:?}");
    let code = miette::Diagnostic::code(&err).unwrap().to_string();
    assert_eq!(code, format!("lvc::dicom::{}", kind.as_str()));
    assert!(miette::Diagnostic::help(&err).is_some());
    err
}

#[test]
fn corrupt_headers_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, &str, HeaderEdit, DicomErrorKind, &str)> = vec![
        (
            "bits0",
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            Box::new(|o| put_us(o, tags::BITS_STORED, 0)),
            DicomErrorKind::InvalidHeader,
            "Bits Stored = 0",
        ),
        (
            "bits17",
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            Box::new(|o| put_us(o, tags::BITS_STORED, 17)),
            DicomErrorKind::InvalidHeader,
            "Bits Stored = 17",
        ),
        (
            "rows0",
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            Box::new(|o| put_us(o, tags::ROWS, 0)),
            DicomErrorKind::InvalidHeader,
            "0 × 20",
        ),
        (
            "alloc32",
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            Box::new(|o| put_us(o, tags::BITS_ALLOCATED, 32)),
            DicomErrorKind::UnsupportedFormat,
            "Bits Allocated = 32",
        ),
        (
            "spp2",
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            Box::new(|o| put_us(o, tags::SAMPLES_PER_PIXEL, 2)),
            DicomErrorKind::InvalidHeader,
            "Samples per Pixel = 2",
        ),
        (
            "nopixels",
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            Box::new(|o| {
                o.remove_element(tags::PIXEL_DATA);
            }),
            DicomErrorKind::MissingTag,
            "Pixel Data",
        ),
        (
            "norows",
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            Box::new(|o| {
                o.remove_element(tags::ROWS);
            }),
            DicomErrorKind::MissingTag,
            "Rows",
        ),
        (
            "bigger",
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            Box::new(|o| put_us(o, tags::ROWS, 25)),
            DicomErrorKind::TruncatedPixelData,
            "needs 1000",
        ),
        (
            "jpeg12",
            uids::JPEG_EXTENDED12_BIT,
            Box::new(|o| {
                put_us(o, tags::BITS_STORED, 12);
                encapsulate(o, vec![0xFF, 0xD8, 0xFF, 0xD9])
            }),
            DicomErrorKind::UnsupportedSyntax,
            "JPEG Extended",
        ),
        (
            "j2k-garbage",
            uids::JPEG2000_LOSSLESS,
            Box::new(|o| encapsulate(o, vec![0x42; 64])),
            DicomErrorKind::Decode,
            "JPEG 2000",
        ),
        (
            "jls-garbage",
            "1.2.840.10008.1.2.4.80",
            Box::new(|o| encapsulate(o, vec![0xFF, 0xD8, 0, 1, 2, 3])),
            DicomErrorKind::Decode,
            "JPEG-LS",
        ),
        (
            "jpegll-garbage",
            uids::JPEG_LOSSLESS_SV1,
            Box::new(|o| encapsulate(o, vec![0xFF, 0xD8, 0xFF, 0xC3, 0, 2])),
            DicomErrorKind::Decode,
            "JPEG Lossless",
        ),
    ];
    for (name, ts, edit, kind, needle) in cases {
        let path = temp_path(&dir, &format!("{name}.dcm"));
        write_edited(&path, ts, edit);
        assert_error(&path, kind, needle);
    }
}

#[test]
fn unknown_transfer_syntax_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "unknown-ts.dcm");
    write_mr_slice(&path, &slice(pixels("u16", 16), 16), WriteSyntax::default()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    // Same length as "1.2.840.10008.1.2.1\0", so the meta group stays consistent.
    let (from, to) = (b"1.2.840.10008.1.2.1\0".as_slice(), b"1.2.3.4.5.6.7.8.9.10".as_slice());
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    let mut patched = bytes.clone();
    patched[at..at + from.len()].copy_from_slice(to);
    std::fs::write(&path, patched).unwrap();
    assert_error(&path, DicomErrorKind::UnsupportedSyntax, "1.2.3.4.5.6.7.8.9.10");
}

#[test]
fn truncated_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = temp_path(&dir, "good.dcm");
    write_mr_slice(&good, &slice(pixels("u16", 12), 12), WriteSyntax::default()).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    // Cut inside the pixel data: the header still reads, the image does not.
    let cut_pixels = temp_path(&dir, "cut-pixels.dcm");
    std::fs::write(&cut_pixels, &bytes[..bytes.len() - 100]).unwrap();
    assert_eq!(read_info(&cut_pixels).unwrap().rows, 24);
    assert_error(&cut_pixels, DicomErrorKind::TruncatedPixelData, "declares 960 bytes");
    // Cut inside the header.
    let cut_header = temp_path(&dir, "cut-header.dcm");
    std::fs::write(&cut_header, &bytes[..300]).unwrap();
    assert!(read_info(&cut_header).is_err());
    assert_error(&cut_header, DicomErrorKind::Parse, "past the end of the 300-byte file");
    // A huge length in a header element: refused before any allocation.
    let huge = temp_path(&dir, "huge-length.dcm");
    let mut patched = bytes.clone();
    let at = patched.windows(4).position(|w| w == [0x08, 0x00, 0x3E, 0x10]).unwrap(); // (0008,103E) LO
    patched[at + 6..at + 8].copy_from_slice(&0xFFF0u16.to_le_bytes());
    std::fs::write(&huge, &patched).unwrap();
    assert_error(&huge, DicomErrorKind::Parse, "(0008,103E) declares 65520 bytes");
    let not_dicom = temp_path(&dir, "text.dcm");
    std::fs::write(&not_dicom, "x y\n1 2\n").unwrap();
    assert_error(&not_dicom, DicomErrorKind::Parse, "not a readable DICOM file");
    assert_error(&temp_path(&dir, "absent.dcm"), DicomErrorKind::Io, "cannot read file");
}

/// Byte mutations of a valid file: the reader returns, it never panics.
fn mutated_files_never_panic(name: &str, original: Vec<u8>, cases: u32) {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, name);
    let len = original.len();
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(edits in prop::collection::vec((0..len, any::<u8>()), 1..8), cut in prop::option::of(0..len))| {
        let mut bytes = original.clone();
        for (at, value) in edits {
            bytes[at] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.max(132));
        }
        std::fs::write(&path, &bytes).unwrap();
        let _ = read_info(&path);
        let _ = read_image(&path);
    });
}

#[test]
fn fuzz_uncompressed_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "seed.dcm");
    write_mr_slice(&path, &slice(pixels("i16", 12), 12), WriteSyntax::ExplicitVrBigEndian).unwrap();
    mutated_files_never_panic("be.dcm", std::fs::read(&path).unwrap(), 200);
}

#[test]
fn fuzz_rle_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "seed.dcm");
    write_rle(&path, "u16", 16, |_| {});
    mutated_files_never_panic("rle.dcm", std::fs::read(&path).unwrap(), 200);
}

#[test]
fn fuzz_jpeg_ls_never_panics() {
    use dicom_transfer_syntax_registry::entries::JPEG_LS_LOSSLESS_IMAGE_COMPRESSION;
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "seed.dcm");
    transcoded(&path, "u16", 12, &JPEG_LS_LOSSLESS_IMAGE_COMPRESSION.erased());
    mutated_files_never_panic("jls.dcm", std::fs::read(&path).unwrap(), 150);
}

#[test]
fn fuzz_jpeg_2000_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "seed.dcm");
    write_j2k(&path, 12, uids::JPEG2000_LOSSLESS);
    mutated_files_never_panic("j2k.dcm", std::fs::read(&path).unwrap(), 150);
}

#[test]
fn export_keeps_stored_values_exactly() {
    use super::export::{export_image, ExportError, ExportFormat};
    use crate::npy::{read_npy, NpyData};
    let dir = tempfile::tempdir().unwrap();
    let image_of = |kind: &str, bits: u16| {
        let path = temp_path(&dir, &format!("src-{kind}-{bits}.dcm"));
        write_mr_slice(&path, &slice(pixels(kind, bits), bits), WriteSyntax::default()).unwrap();
        read_image(&path).unwrap()
    };
    let u16_image = image_of("u16", 16);
    let npy = temp_path(&dir, "u16.npy");
    assert_eq!(export_image(&u16_image, &npy).unwrap(), ExportFormat::Npy("<u2"));
    let array = read_npy(&npy).unwrap();
    assert_eq!(array.shape, vec![24, 20]);
    assert_eq!(
        StoredPixels::U16(match array.data {
            NpyData::U16(v) => v,
            other => panic!("{other:?}"),
        }),
        u16_image.pixels
    );

    let png = temp_path(&dir, "u16.png");
    assert_eq!(export_image(&u16_image, &png).unwrap(), ExportFormat::Png(16));
    let decoded = image::open(&png).unwrap().into_luma16();
    assert_eq!(decoded.dimensions(), (20, 24));
    assert_eq!(StoredPixels::U16(decoded.into_raw()), u16_image.pixels);

    let signed = image_of("i16", 12);
    assert_eq!(
        export_image(&signed, &temp_path(&dir, "i16.npy")).unwrap(),
        ExportFormat::Npy("<i2")
    );
    let err = export_image(&signed, &temp_path(&dir, "i16.png")).unwrap_err();
    assert!(matches!(err, ExportError::NegativeForPng { min: -2048, .. }), "{err}");
    assert!(miette::Diagnostic::help(&err).unwrap().to_string().contains(".npy"));

    let small = image_of("u8", 8);
    assert_eq!(export_image(&small, &temp_path(&dir, "u8.png")).unwrap(), ExportFormat::Png(8));
    assert_eq!(
        StoredPixels::U8(image::open(temp_path(&dir, "u8.png")).unwrap().into_luma8().into_raw()),
        small.pixels
    );

    assert!(matches!(
        export_image(&small, &temp_path(&dir, "x.jpg")),
        Err(ExportError::UnknownFormat { .. })
    ));
}

/// Appends bits MSB-first, with JPEG's 0xFF byte stuffing.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u32,
    count: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, bits: u32) {
        for k in (0..bits).rev() {
            self.acc = (self.acc << 1) | ((value >> k) & 1);
            self.count += 1;
            if self.count == 8 {
                self.out.push(self.acc as u8);
                if self.acc == 0xFF {
                    self.out.push(0);
                }
                self.acc = 0;
                self.count = 0;
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.count > 0 {
            let pad = 8 - self.count;
            self.put((1 << pad) - 1, pad);
        }
        self.out
    }
}

/// A JPEG Lossless (process 14, selection value 1) codestream of one
/// grayscale frame: every difference category 0..=16 gets a 5-bit code.
fn jpeg_lossless(values: &[u16], rows: u16, cols: u16, precision: u8) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    // DHT: table class 0, id 0; 17 codes of length 5, symbols 0..=16.
    out.extend([0xFF, 0xC4, 0, 2 + 1 + 16 + 17, 0x00]);
    out.extend([0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend(0..=16u8);
    // SOF3: precision, rows, cols, one component (id 1, 1×1 sampling).
    out.extend([0xFF, 0xC3, 0, 11, precision]);
    out.extend(rows.to_be_bytes());
    out.extend(cols.to_be_bytes());
    out.extend([1, 1, 0x11, 0]);
    // SOS: one component with table 0, predictor 1, point transform 0.
    out.extend([0xFF, 0xDA, 0, 8, 1, 1, 0x00, 1, 0, 0]);
    let mut bits = BitWriter::default();
    let (rows, cols) = (usize::from(rows), usize::from(cols));
    for r in 0..rows {
        for c in 0..cols {
            let x = i32::from(values[r * cols + c]);
            let prediction = match (r, c) {
                (0, 0) => 1 << (precision - 1),
                (_, 0) => i32::from(values[(r - 1) * cols]),
                _ => i32::from(values[r * cols + c - 1]),
            };
            let diff = i32::from((x - prediction) as i16);
            let category = if diff == 0 { 0 } else { 32 - diff.unsigned_abs().leading_zeros() };
            bits.put(category, 5);
            if category > 0 && category < 16 {
                let extra = if diff > 0 { diff } else { diff - 1 };
                bits.put((extra as u32) & ((1 << category) - 1), category);
            }
        }
    }
    out.extend(bits.finish());
    out.extend([0xFF, 0xD9]);
    out
}

/// Writes the test slice as JPEG Lossless SV1; `edit` may then change the header.
fn write_jpeg_lossless(
    path: &Path,
    kind: &str,
    bits: u16,
    edit: impl FnOnce(&mut InMemDicomObject),
) -> StoredPixels {
    let stored = pixels(kind, bits);
    let words: Vec<u16> = match &stored {
        StoredPixels::U16(v) => v.clone(),
        StoredPixels::I16(v) => v.iter().map(|&x| x as u16 & ((1 << bits) - 1)).collect(),
        StoredPixels::U8(_) => unreachable!("16-bit test kinds only"),
    };
    let mut dataset = mr_dataset(&slice(stored.clone(), bits));
    let mut codestream = jpeg_lossless(&words, ROWS, COLS, bits as u8);
    if codestream.len() % 2 == 1 {
        codestream.push(0);
    }
    encapsulate(&mut dataset, codestream);
    edit(&mut dataset);
    write_file_object(path, &with_file_meta(path, dataset, uids::JPEG_LOSSLESS_SV1).unwrap())
        .unwrap();
    stored
}

#[test]
fn jpeg_lossless_decodes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, bits) in [("u16", 12), ("u16", 16), ("i16", 12)] {
        let path = temp_path(&dir, &format!("jpegll-{kind}-{bits}.dcm"));
        let stored = write_jpeg_lossless(&path, kind, bits, |_| {});
        let image = read_image(&path).unwrap_or_else(|e| panic!("{kind} {bits}: {e}"));
        assert_eq!(image.info.transfer_syntax_uid, uids::JPEG_LOSSLESS_SV1);
        assert_eq!(image.pixels, stored, "{kind} {bits}");
    }
}

/// Header and codestream disagree: an error naming the file, not a panic.
#[test]
fn jpeg_lossless_header_mismatch_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let edits: [(&str, HeaderFix); 3] = [
        ("rows", |o| put_us(o, tags::ROWS, 200)),
        ("columns", |o| put_us(o, tags::COLUMNS, 7)),
        ("bits", |o| {
            put_us(o, tags::BITS_ALLOCATED, 8);
            put_us(o, tags::BITS_STORED, 8);
            put_us(o, tags::HIGH_BIT, 7);
        }),
    ];
    for (name, edit) in edits {
        let path = temp_path(&dir, &format!("jpegll-{name}.dcm"));
        write_jpeg_lossless(&path, "u16", 12, edit);
        let result = read_image(&path);
        if let Err(err) = &result {
            assert!(err.to_string().contains(&path.display().to_string()), "{err}");
        } else {
            // A decoder may accept a smaller header and crop; never a wrong size.
            let image = result.unwrap();
            assert_eq!(
                image.pixels.len(),
                image.info.rows as usize * image.info.columns as usize,
                "{name}"
            );
        }
    }
}

#[test]
fn fuzz_jpeg_lossless_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "seed.dcm");
    write_jpeg_lossless(&path, "u16", 16, |_| {});
    mutated_files_never_panic("jpegll.dcm", std::fs::read(&path).unwrap(), 150);
}

// Hostile files: deep nesting, files that are not files, huge and sparse
// files. Built by hand, byte by byte: dicom-object would recurse writing
// (and dropping) a deeply nested object just as it does reading one.

/// How the nested sequences are encoded (the data set's syntax).
#[derive(Clone, Copy, Debug)]
enum Encoding {
    ExplicitLe,
    ImplicitLe,
    ExplicitBe,
}

impl Encoding {
    fn u16(self, v: u16) -> [u8; 2] {
        match self {
            Encoding::ExplicitBe => v.to_be_bytes(),
            _ => v.to_le_bytes(),
        }
    }

    fn u32(self, v: u32) -> [u8; 4] {
        match self {
            Encoding::ExplicitBe => v.to_be_bytes(),
            _ => v.to_le_bytes(),
        }
    }

    fn tag(self, group: u16, element: u16) -> Vec<u8> {
        [self.u16(group), self.u16(element)].concat()
    }

    /// (0008,1115) Referenced Series Sequence with length `len`.
    fn sequence_header(self, len: u32) -> Vec<u8> {
        let mut out = self.tag(0x0008, 0x1115);
        if !matches!(self, Encoding::ImplicitLe) {
            out.extend_from_slice(b"SQ\0\0");
        }
        out.extend_from_slice(&self.u32(len));
        out
    }

    fn item_header(self, element: u16, len: u32) -> Vec<u8> {
        [self.tag(0xFFFE, element), self.u32(len).to_vec()].concat()
    }

    /// `depth` sequences, each the only element of the one item of the
    /// sequence around it, with undefined (delimited) or defined lengths.
    fn nested(self, depth: usize, undefined: bool) -> Vec<u8> {
        if undefined {
            let open =
                [self.sequence_header(u32::MAX), self.item_header(0xE000, u32::MAX)].concat();
            let close = [self.item_header(0xE00D, 0), self.item_header(0xE0DD, 0)].concat();
            return [open.repeat(depth), close.repeat(depth)].concat();
        }
        let mut inner = Vec::new();
        for _ in 0..depth {
            let item = [self.item_header(0xE000, inner.len() as u32), inner].concat();
            inner = [self.sequence_header(item.len() as u32), item].concat();
        }
        inner
    }

    fn write_syntax(self) -> WriteSyntax {
        match self {
            Encoding::ExplicitLe => WriteSyntax::ExplicitVrLittleEndian,
            Encoding::ImplicitLe => WriteSyntax::ImplicitVrLittleEndian,
            Encoding::ExplicitBe => WriteSyntax::ExplicitVrBigEndian,
        }
    }
}

/// The data set of a Part 10 file: after the preamble, `DICM` and the
/// meta group of (0002,0000) Group Length bytes.
fn data_set_of(file: &[u8]) -> &[u8] {
    let group_length = u32::from_le_bytes(file[140..144].try_into().unwrap()) as usize;
    &file[144 + group_length..]
}

/// A Part 10 file of `data_set` in transfer syntax `ts_uid`.
fn part10(ts_uid: &str, data_set: &[u8]) -> Vec<u8> {
    let ui = |element: u16, value: &str| {
        let mut v = value.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(0);
        }
        [
            vec![0x02, 0x00],
            element.to_le_bytes().to_vec(),
            b"UI".to_vec(),
            (v.len() as u16).to_le_bytes().to_vec(),
            v,
        ]
        .concat()
    };
    let meta = [
        vec![0x02, 0x00, 0x01, 0x00, b'O', b'B', 0, 0, 2, 0, 0, 0, 0, 1],
        ui(0x0002, uids::MR_IMAGE_STORAGE),
        ui(0x0003, &uid_2_25(3)),
        ui(0x0010, ts_uid),
        ui(0x0012, "2.25.42"),
    ]
    .concat();
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    out.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(data_set);
    out
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The standard test slice in `encoding` with `depth` nested sequences in
/// front of its data set (or, `deflated`, explicit VR little endian with
/// the data set deflated); also its stored pixels.
fn nested_file(
    encoding: Encoding,
    depth: usize,
    undefined: bool,
    deflated: bool,
) -> (Vec<u8>, StoredPixels) {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "base.dcm");
    let s = slice(pixels("u16", 12), 12);
    write_mr_slice(&path, &s, encoding.write_syntax()).unwrap();
    let base = std::fs::read(&path).unwrap();
    let data_set = [encoding.nested(depth, undefined), data_set_of(&base).to_vec()].concat();
    let file = if deflated {
        part10(uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, &deflate(&data_set))
    } else {
        part10(encoding.write_syntax().uid(), &data_set)
    };
    (file, s.pixels)
}

/// Every reader, on a file and on its bytes, gives an error of `kind`
/// naming the file and containing `needle`.
fn assert_all_refuse(path: &Path, kind: DicomErrorKind, needle: &str) {
    let bytes = std::fs::read(path).unwrap();
    let errors = [
        read_info(path).unwrap_err(),
        read_image(path).unwrap_err(),
        info_from_bytes(path, &bytes).unwrap_err(),
        decode_image(path, &bytes).unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind, kind, "{err}");
        let text = err.to_string();
        assert!(
            text.starts_with(&path.display().to_string()) && text.contains(needle),
            "{text:?} should name the file and say {needle:?}"
        );
        assert_eq!(
            miette::Diagnostic::code(&err).unwrap().to_string(),
            format!("lvc::dicom::{}", kind.as_str())
        );
    }
}

#[test]
fn deep_nesting_is_refused_in_every_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (Encoding::ExplicitLe, false),
        (Encoding::ImplicitLe, false),
        (Encoding::ExplicitBe, false),
        (Encoding::ExplicitLe, true),
    ];
    for (encoding, deflated) in cases {
        for undefined in [true, false] {
            let name = format!(
                "deep-{encoding:?}-{}-{}.dcm",
                if undefined { "delimited" } else { "lengths" },
                if deflated { "deflated" } else { "plain" }
            );
            let path = temp_path(&dir, &name);
            let (file, _) = nested_file(encoding, 10_000, undefined, deflated);
            std::fs::write(&path, file).unwrap();
            // Sequence 65 opens level 65, after 64 (sequence + item) headers.
            let header = if matches!(encoding, Encoding::ImplicitLe) { 8 } else { 12 };
            let at = format!(
                "(0008,1115) at byte {} opens nesting level 65",
                64 * (header + 8) + if deflated { 0 } else { data_start(&path) }
            );
            assert_all_refuse(&path, DicomErrorKind::Nesting, &at);
        }
    }
}

/// Where the data set of the file at `path` starts.
fn data_start(path: &Path) -> usize {
    let file = std::fs::read(path).unwrap();
    file.len() - data_set_of(&file).len()
}

#[test]
fn nesting_up_to_the_limit_is_read() {
    let dir = tempfile::tempdir().unwrap();
    for encoding in [Encoding::ExplicitLe, Encoding::ImplicitLe, Encoding::ExplicitBe] {
        for undefined in [true, false] {
            let path = temp_path(&dir, &format!("limit-{encoding:?}-{undefined}.dcm"));
            let (file, stored) = nested_file(encoding, scan::MAX_NESTING, undefined, false);
            std::fs::write(&path, file).unwrap();
            let image =
                read_image(&path).unwrap_or_else(|e| panic!("{encoding:?} {undefined}: {e}"));
            assert_eq!(image.pixels, stored);
            assert_eq!(read_info(&path).unwrap(), image.info);
            let (file, _) = nested_file(encoding, scan::MAX_NESTING + 1, undefined, false);
            std::fs::write(&path, file).unwrap();
            assert_eq!(
                read_info(&path).unwrap_err().kind,
                DicomErrorKind::Nesting,
                "{encoding:?} {undefined}"
            );
        }
    }
}

#[test]
fn deflated_data_sets_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "deflated.dcm");
    let (file, stored) = nested_file(Encoding::ExplicitLe, 3, true, true);
    std::fs::write(&path, file).unwrap();
    let image = read_image(&path).unwrap();
    assert_eq!(image.info.transfer_syntax_uid, uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN);
    assert_eq!(image.pixels, stored);
    assert_eq!(read_info(&path).unwrap(), image.info);
}

#[test]
fn millions_of_empty_items_are_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "items.dcm");
    let e = Encoding::ExplicitLe;
    let items = [
        e.sequence_header(u32::MAX),
        e.item_header(0xE000, 0).repeat(scan::MAX_ELEMENTS),
        e.item_header(0xE0DD, 0),
    ]
    .concat();
    let (file, _) = nested_file(e, 0, true, false);
    let data_set = [items, data_set_of(&file).to_vec()].concat();
    std::fs::write(&path, part10(uids::EXPLICIT_VR_LITTLE_ENDIAN, &data_set)).unwrap();
    assert_all_refuse(&path, DicomErrorKind::TooLarge, "more than 2000000 data elements and items");
}

#[cfg(unix)]
fn make_fifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// Runs `read` on another thread and fails the test when it has not
/// returned within 5 s (opening a FIFO for reading blocks until a writer
/// comes); the FIFO at `fifo` then gets a writer, which lets it return.
#[cfg(unix)]
fn within_5_s<T: Send + 'static>(fifo: &Path, read: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || send.send(read()));
    match receive.recv_timeout(std::time::Duration::from_secs(5)) {
        Ok(value) => value,
        Err(_) => {
            use std::os::unix::fs::OpenOptionsExt;
            let _writer =
                std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(fifo);
            panic!("reading {} blocked for 5 s", fifo.display());
        }
    }
}

#[cfg(unix)]
#[test]
fn fifos_devices_and_folders_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = temp_path(&dir, "pipe.dcm");
    make_fifo(&fifo);
    let path = fifo.clone();
    let (info, image, bytes) =
        within_5_s(&fifo, move || (read_info(&path), read_image(&path), read_bytes(&path)));
    for err in [info.unwrap_err(), image.unwrap_err(), bytes.unwrap_err()] {
        assert_eq!(err.kind, DicomErrorKind::NotAFile, "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: cannot read file: it is a FIFO (named pipe), not a regular file",
                fifo.display()
            )
        );
        assert_eq!(miette::Diagnostic::code(&err).unwrap().to_string(), "lvc::dicom::not_a_file");
    }
    for (path, what) in [(Path::new("/dev/zero"), "a character device"), (dir.path(), "a folder")] {
        for err in [read_info(path).unwrap_err(), read_image(path).unwrap_err()] {
            assert_eq!(err.kind, DicomErrorKind::NotAFile, "{err}");
            assert!(
                err.to_string().contains(&format!("it is {what}, not a regular file")),
                "{err}"
            );
        }
    }
}

/// A file of `len` bytes whose first bytes are `head` and the rest a hole
/// (sparse: it costs the disk nothing).
fn sparse_file(path: &Path, head: &[u8], len: u64) {
    std::fs::write(path, head).unwrap();
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

#[test]
fn a_sparse_file_of_zeros_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "zeros.dcm");
    sparse_file(&path, &[], 8 << 30);
    let err = read_info(&path).unwrap_err();
    assert_eq!(err.kind, DicomErrorKind::Parse);
    assert!(err.to_string().contains("no `DICM` marker"), "{err}");
    let err = read_image(&path).unwrap_err();
    assert_eq!(err.kind, DicomErrorKind::TooLarge);
    assert!(
        err.to_string().contains("it holds 8.6 GB (8589934592 bytes), more than the 2.1 GB"),
        "{err}"
    );
    assert_eq!(miette::Diagnostic::code(&err).unwrap().to_string(), "lvc::dicom::too_large");
}

/// The test slice's header, with a Pixel Data element declaring
/// `pixel_bytes` (and Rows × Columns to match), plus `private` bytes of a
/// private element in front of it.
fn header_before_pixels(pixel_bytes: u32, private: usize) -> Vec<u8> {
    let (file, _) = nested_file(Encoding::ExplicitLe, 0, true, false);
    let data_set = data_set_of(&file);
    let pixel_at = data_set.windows(4).position(|w| w == [0xE0, 0x7F, 0x10, 0x00]).unwrap();
    let mut head = data_set[..pixel_at].to_vec();
    // (0029,1010) OB: a Siemens-like private header block.
    head.extend_from_slice(&[0x29, 0x00, 0x10, 0x10, b'O', b'B', 0, 0]);
    head.extend_from_slice(&(private as u32).to_le_bytes());
    head.extend(std::iter::repeat_n(0x5Au8, private));
    head.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0]);
    head.extend_from_slice(&pixel_bytes.to_le_bytes());
    part10(uids::EXPLICIT_VR_LITTLE_ENDIAN, &head)
}

#[test]
fn a_header_is_read_without_its_pixel_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "huge-pixels.dcm");
    // 4 GB of pixel data, a hole: reading it would take seconds and 4 GB.
    let pixel_bytes = 4_000_000_000u32;
    let head = header_before_pixels(pixel_bytes, 0);
    sparse_file(&path, &head, head.len() as u64 + u64::from(pixel_bytes));
    let read = read_header(&path).unwrap();
    assert_eq!(read, head, "the header through the Pixel Data element header, nothing after it");
    let info = read_info(&path).unwrap();
    assert_eq!((info.rows, info.columns, info.bits_stored), (24, 20, 12));
    let err = read_image(&path).unwrap_err();
    assert_eq!(err.kind, DicomErrorKind::TooLarge, "{err}");
}

#[test]
fn a_large_header_is_read_in_growing_steps_and_no_further() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "large-header.dcm");
    // 300 kB of private data before the pixels: past the first read.
    let head = header_before_pixels(u32::from(ROWS) * u32::from(COLS) * 2, 300_000);
    let mut file = head.clone();
    file.extend(std::iter::repeat_n(1u8, usize::from(ROWS) * usize::from(COLS) * 2));
    std::fs::write(&path, &file).unwrap();
    assert!(head.len() as u64 > HEADER_CHUNK);
    assert_eq!(read_header(&path).unwrap(), head);
    let info = read_info(&path).unwrap();
    assert_eq!(read_image(&path).unwrap().info, info);
    assert_eq!(info_from_bytes(&path, &file).unwrap(), info);
    assert_eq!(info_from_bytes(&path, &head).unwrap(), info, "the header alone is enough");
}

#[test]
fn byte_entry_points_check_what_the_file_readers_check() {
    let path = Path::new("in-memory.dcm");
    let cut = header_before_pixels(1000, 0);
    // The header is whole: info reads, the image is cut short.
    assert_eq!(info_from_bytes(path, &cut).unwrap().rows, 24);
    assert_eq!(decode_image(path, &cut).unwrap_err().kind, DicomErrorKind::TruncatedPixelData);
    assert_eq!(info_from_bytes(path, b"not dicom").unwrap_err().kind, DicomErrorKind::Parse);
    assert_eq!(info_from_bytes(path, &[]).unwrap_err().kind, DicomErrorKind::Parse);
}

/// Found by `make fuzz` (dicom target): a top-level element with a tag past
/// Pixel Data placed before Rows made the header read (which stops at the
/// first tag from Pixel Data on) report Rows missing while the whole-file
/// read decoded the image. Elements out of tag order are now refused by
/// both, so the two readers never disagree.
#[test]
fn elements_out_of_tag_order_are_refused_by_every_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_path(&dir, "ordered.dcm");
    write_mr_slice(&path, &slice(pixels("u16", 12), 12), WriteSyntax::ExplicitVrLittleEndian)
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(info_from_bytes(&path, &bytes).is_ok() && decode_image(&path, &bytes).is_ok());
    // (0008,0060) Modality becomes (FF08,0060), ahead of the image module.
    let at = bytes.windows(6).position(|w| w == [0x08, 0x00, 0x60, 0x00, b'C', b'S']).unwrap();
    bytes[at + 1] = 0xFF;
    let whole = decode_image(&path, &bytes).unwrap_err();
    assert!(whole.to_string().contains("not in ascending tag order"), "{whole}");
    assert!(info_from_bytes(&path, &bytes).is_err());
}
