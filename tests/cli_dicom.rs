//! `lvc phantom` and `lvc dicom info|export` end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use lvc_data::dicom::{read_image, StoredPixels};
use lvc_data::npy::{read_npy, NpyData};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod common;
use common::{lvc, lvc_within, make_fifo, says, sparse_file, text, with_nested_sequences};

/// A one-case phantom made once through the CLI.
fn phantom() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out =
            lvc(&["phantom", "--out", dir.path().to_str().unwrap(), "--cases", "1", "--seed", "3"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.starts_with("wrote 1 case(s)"), "{stdout}");
        assert!(stdout.contains("i-contours"), "{stdout}");
        dir
    })
    .path()
}

/// SC-HF-I-1's SAX series is 4; image 1 is slice 0, phase 0.
fn first_sax_image() -> PathBuf {
    phantom().join("challenge_training/SC-HF-I-1/IM-0004-0001.dcm")
}

#[test]
fn phantom_writes_the_challenge_layout() {
    let root = phantom();
    assert!(first_sax_image().is_file());
    assert!(
        root.join("challenge_training/SC-HF-I-1/IM-0001-0001.dcm").is_file(),
        "localizer series"
    );
    let contours = root.join("Sunnybrook Cardiac MR Database ContoursPart3/TrainingDataContours/SC-HF-I-01/contours-manual/IRCCI-expert");
    let first = std::fs::read_to_string(contours.join("IM-0001-0001-icontour-manual.txt")).unwrap();
    let line = first.lines().next().unwrap();
    let (x, y) = line.split_once(' ').unwrap();
    assert!(x.parse::<f64>().is_ok() && y.parse::<f64>().is_ok(), "{line}");
}

#[test]
fn info_human_and_json() {
    let file = first_sax_image();
    let out = lvc(&["dicom", "info", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let human = text(&out.stdout);
    for needle in [
        "256 x 256",
        "12 stored",
        "unsigned",
        "Explicit VR Little Endian (1.2.840.10008.1.2.1)",
        "4 CINE SAX",
        "slice thickness      8",
    ] {
        assert!(human.contains(needle), "{needle:?} missing in\n{human}");
    }
    let out = lvc(&["dicom", "info", file.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["rows"], 256);
    assert_eq!(json["bits_stored"], 12);
    assert_eq!(json["signed"], false);
    assert_eq!(json["series_number"], 4);
    assert_eq!(json["instance_number"], 1);
    assert_eq!(json["transfer_syntax_uid"], "1.2.840.10008.1.2.1");
}

#[test]
fn export_npy_is_exact_and_png_is_16_bit() {
    let file = first_sax_image();
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("slice.npy");
    let out = lvc(&["dicom", "export", file.to_str().unwrap(), npy.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("npy <u2"));
    let array = read_npy(&npy).unwrap();
    assert_eq!(array.shape, vec![256, 256]);
    let StoredPixels::U16(expected) = read_image(&file).unwrap().pixels else {
        panic!("phantom images are unsigned")
    };
    assert_eq!(array.data, NpyData::U16(expected));

    let png = dir.path().join("slice.png");
    let out = lvc(&["dicom", "export", file.to_str().unwrap(), png.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!((bytes[24], bytes[25]), (16, 0), "IHDR: 16-bit grayscale");
}

#[test]
fn errors_name_the_file_and_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("notes.dcm");
    std::fs::write(&bogus, "not dicom\n").unwrap();
    let out = lvc(&["dicom", "info", bogus.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("lvc::dicom::parse") && stderr.contains("notes.dcm"), "{stderr}");

    let file = first_sax_image();
    let out = lvc(&[
        "dicom",
        "export",
        file.to_str().unwrap(),
        dir.path().join("x.jpg").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("lvc::dicom::export_format") && stderr.contains(".npy"), "{stderr}");

    let out = lvc(&["phantom", "--out", dir.path().to_str().unwrap(), "--cases", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("lvc::phantom::cases"));
}

#[test]
fn help_has_examples() {
    for args in [
        ["phantom", "--help"].as_slice(),
        &["dicom", "info", "--help"],
        &["dicom", "export", "--help"],
    ] {
        let out = lvc(args);
        assert!(out.status.success());
        assert!(text(&out.stdout).contains("Examples:"), "{args:?}");
    }
}

/// `lvc dicom info|export` on `file`: exit 1 and, on stderr, `code`, the
/// file's name and `needle`. Within 20 s: a reader that blocks on a FIFO
/// or reads a sparse file whole fails the test instead of hanging it.
fn refused(dir: &Path, file: &Path, code: &str, needle: &str) {
    for command in [
        ["dicom", "info", file.to_str().unwrap(), ""],
        ["dicom", "export", file.to_str().unwrap(), "out.npy"],
    ] {
        let args: Vec<&str> = command.into_iter().filter(|a| !a.is_empty()).collect();
        let out = lvc_within(&args, dir, 20);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        for want in [code, &file.display().to_string(), needle] {
            assert!(says(&stderr, want), "{args:?}: {want:?} missing in\n{stderr}");
        }
        assert!(stderr.contains("help:"), "{stderr}");
    }
}

#[test]
fn hostile_inputs_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = std::fs::read(first_sax_image()).unwrap();
    let deep = d.join("deep.dcm");
    std::fs::write(&deep, with_nested_sequences(&good, 10_000)).unwrap();
    // The 65th sequence, after 64 pairs of 12-byte sequence and 8-byte item headers.
    let data_start = 144 + u32::from_le_bytes(good[140..144].try_into().unwrap()) as usize;
    let level_65 = format!("(0008,1115) at byte {} opens nesting level 65", data_start + 64 * 20);
    refused(d, &deep, "lvc::dicom::nesting", &level_65);
    let fifo = d.join("pipe.dcm");
    make_fifo(&fifo);
    refused(d, &fifo, "lvc::dicom::not_a_file", "it is a FIFO (named pipe), not a regular file");
    refused(d, Path::new("/dev/zero"), "lvc::dicom::not_a_file", "it is a character device");
    refused(d, d, "lvc::dicom::not_a_file", "it is a folder");

    // 8 GB of zeros: no DICOM header to read, and too large to read whole.
    let zeros = d.join("zeros.dcm");
    sparse_file(&zeros, &[], 8 << 30);
    let out = lvc_within(&["dicom", "info", zeros.to_str().unwrap()], d, 20);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        says(&text(&out.stderr), "lvc::dicom::parse")
            && says(&text(&out.stderr), "no `DICM` marker"),
        "{}",
        text(&out.stderr)
    );
    let out = lvc_within(&["dicom", "export", zeros.to_str().unwrap(), "out.npy"], d, 20);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        says(&text(&out.stderr), "lvc::dicom::too_large")
            && says(&text(&out.stderr), "it holds 8.6 GB"),
        "{}",
        text(&out.stderr)
    );

    // A real header in front of a 3 GB hole: the header reads at once.
    let holey = d.join("holey.dcm");
    sparse_file(&holey, &good, 3 << 30);
    let out = lvc_within(&["dicom", "info", holey.to_str().unwrap()], d, 20);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("256 x 256"), "{}", text(&out.stdout));
    assert!(!d.join("out.npy").exists(), "nothing refused above was exported");
}
