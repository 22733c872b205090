//! `lvc dataset create|inspect|export` end to end on small DICOM trees
//! written with lvc-data's DICOM writer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use lvc_data::dicom::write::{write_mr_slice, MrSlice, WriteSyntax};
use lvc_data::dicom::StoredPixels;
use lvc_data::store::Dataset;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

mod common;

const LVC: &str = env!("CARGO_BIN_EXE_lvc");
const SIZE: u16 = 32;

fn slice(series: i64, image: i64, pixels: StoredPixels) -> MrSlice {
    MrSlice {
        patient_name: "Test^Case".into(),
        patient_id: "T1".into(),
        study_instance_uid: "2.25.1".into(),
        study_description: "test".into(),
        series_instance_uid: format!("2.25.2{series}"),
        series_description: "CINESAX".into(),
        series_number: series,
        sop_instance_uid: format!("2.25.3{series}{image}"),
        frame_of_reference_uid: "2.25.4".into(),
        instance_number: image,
        rows: SIZE,
        columns: SIZE,
        pixel_spacing: [1.25, 1.25],
        slice_thickness: 8.0,
        slice_location: 0.0,
        image_position_patient: [0.0; 3],
        image_orientation_patient: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        trigger_time: 0.0,
        bits_stored: 16,
        rescale_slope: 1.0,
        rescale_intercept: 0.0,
        window_center: 100.0,
        window_width: 200.0,
        pixels,
    }
}

/// A layout-A tree: `images/<case>/IM-<series>-<NNNN>.dcm`, contours under
/// `Contours Part3/TrainingDataContours/<padded case>/contours-manual/IRCCI-expert/`.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Self {
        Tree { dir: tempfile::tempdir().unwrap() }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn images(&self) -> PathBuf {
        self.path("challenge_training")
    }
    fn contours(&self) -> PathBuf {
        self.path("Contours Part3")
    }
    fn image(&self, case: &str, series: u32, image: u32, pixels: StoredPixels) {
        let dir = self.images().join(case);
        fs::create_dir_all(&dir).unwrap();
        write_mr_slice(
            &dir.join(format!("IM-{series:04}-{image:04}.dcm")),
            &slice(i64::from(series), i64::from(image), pixels),
            WriteSyntax::default(),
        )
        .unwrap();
    }
    fn contour(&self, case: &str, image: u32, kind: &str, text: &str) -> PathBuf {
        let dir = self
            .contours()
            .join("TrainingDataContours")
            .join(case)
            .join("contours-manual")
            .join("IRCCI-expert");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("IM-0001-{image:04}-{kind}contour-manual.txt"));
        fs::write(&path, text).unwrap();
        path
    }
    /// `n` slices of a case; pixel (r,c) = base + r*SIZE + c.
    fn case(&self, case: &str, padded: &str, series: u32, n: u32, base: u16) {
        for image in 1..=n {
            let pixels = (0..SIZE * SIZE).map(|i| base + i).collect();
            self.image(case, series, image, StoredPixels::U16(pixels));
            self.contour(padded, image, "i", "10.5 10.0\n20.0 10.0\n20.0 20.5\n10.0 20.0\n");
        }
    }
    fn create_args(&self, out: &str, extra: &[&str]) -> Vec<String> {
        let mut args = vec!["dataset".to_string(), "create".into(), "--images".into()];
        args.push(self.images().display().to_string());
        args.push("--contours".into());
        args.push(self.contours().display().to_string());
        args.push("--out".into());
        args.push(self.path(out).display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }
    fn create(&self, out: &str, extra: &[&str]) -> Output {
        Command::new(LVC).args(self.create_args(out, extra)).output().unwrap()
    }
    /// `create`, failing the test if it runs longer than 30 s (blocked on a FIFO).
    fn create_within(&self, out: &str, extra: &[&str]) -> Output {
        let args = self.create_args(out, extra);
        common::lvc_within(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            self.dir.path(),
            30,
        )
    }
}

fn lvc(args: &[&str]) -> Output {
    Command::new(LVC).args(args).output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn create_inspect_export_round_trip() {
    let t = Tree::new();
    t.case("SC-HF-I-1", "SC-HF-I-01", 4, 6, 100);
    t.case("SC-N-2", "SC-N-02", 898, 4, 200);
    let o = t.create("ds", &["--val-pct", "40", "--seed", "3"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("wrote") && out.contains("10 images"), "{out}");

    let ds = Dataset::open(&t.path("ds")).unwrap();
    let m = &ds.manifest;
    assert_eq!(m.image_shape, [1, 32, 32]);
    let train = ds.split("train").unwrap();
    let val = ds.split("val").unwrap();
    assert_eq!(train.len() + val.len(), 10);
    assert_eq!(
        val.records
            .iter()
            .map(|r| r.case.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        1,
        "patient split"
    );
    // stored values survive: pixel (r,c) = base + r*32 + c
    let r = &train.records[0];
    let base = if r.case == "SC-HF-I-1" { 100.0 } else { 200.0 };
    assert_eq!(train.image(0)[33], base + 33.0);
    // the square (10,10)-(20,20) after truncation: 11x11 pixels
    assert_eq!(train.label(0).iter().filter(|&&v| v == 1).count(), 121);

    let o = lvc(&["dataset", "inspect", t.path("ds").to_str().unwrap()]);
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(out.contains("1x32x32 u16"), "16-bit unsigned DICOM is stored as u16: {out}");
    assert!(out.contains("left ventricle"), "{out}");
    assert!(out.contains("train cases:") && out.contains("val cases:"), "{out}");
    assert!(!out.contains("warning: train: foreground"), "11.8% foreground must not warn: {out}");
    let o = lvc(&["dataset", "inspect", t.path("ds").to_str().unwrap(), "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        json["splits"]["train"]["count"].as_u64().unwrap()
            + json["splits"]["val"]["count"].as_u64().unwrap(),
        10
    );
    assert_eq!(json["classes"][1], "left ventricle");

    let png = t.path("png");
    let o = lvc(&["dataset", "export", t.path("ds").to_str().unwrap(), png.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    let split = r.split.name();
    let img = image::open(png.join(split).join(&r.case).join(format!("IM-{:04}.png", r.image)))
        .unwrap()
        .into_luma16();
    assert_eq!(img.get_pixel(1, 1).0[0], base as u16 + 33);
    let label =
        image::open(png.join(split).join(&r.case).join(format!("IM-{:04}_label.png", r.image)))
            .unwrap()
            .into_luma8();
    assert_eq!(label.iter().filter(|&&v| v == 1).count(), 121);

    // existing dataset: refused without --force, replaced with it
    let o = t.create("ds", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("already exists"), "{:?}", text(&o));
    let o = t.create("ds", &["--force", "--split", "image", "--channels", "RGB"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert_eq!(Dataset::open(&t.path("ds")).unwrap().manifest.image_shape, [3, 32, 32]);
}

#[test]
fn broken_tree_lists_every_problem_and_writes_nothing_then_skip_bad_imports_the_rest() {
    let t = Tree::new();
    t.case("SC-HF-I-1", "SC-HF-I-01", 4, 3, 0);
    let junk = t.contour("SC-HF-I-01", 2, "i", "1 1\n2 2 junk\n3 3\n");
    let outside = t.contour("SC-HF-I-01", 3, "i", "1 1\n99 2\n3 3\n");
    // truncated DICOM
    let good = t.images().join("SC-HF-I-1").join("IM-0004-0001.dcm");
    let bytes = fs::read(&good).unwrap();
    t.contour("SC-HF-I-01", 4, "i", "1 1\n5 1\n5 5\n");
    let truncated = t.images().join("SC-HF-I-1").join("IM-0004-0004.dcm");
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    // missing image
    t.contour("SC-HF-I-01", 5, "i", "1 1\n5 1\n5 5\n");
    // case without images, and an empty case folder
    t.contour("SC-N-3", 1, "i", "1 1\n5 1\n5 5\n");
    t.contour("SC-N-40", 1, "i", "1 1\n5 1\n5 5\n");
    fs::create_dir_all(t.images().join("SC-N-40")).unwrap();

    let o = t.create("ds", &[]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("6 problem(s)"), "{err}");
    for needle in [
        junk.file_name().unwrap().to_str().unwrap(),
        outside.file_name().unwrap().to_str().unwrap(),
        "IM-0004-0004.dcm",
        "IM-0004-0005.dcm",
        "SC-N-3",
        "SC-N-40",
    ] {
        assert!(err.contains(needle), "missing {needle} in\n{err}");
    }
    assert!(!t.path("ds").exists());
    assert_eq!(fs::read_dir(t.dir.path()).unwrap().count(), 2, "no temp folder left behind");

    let o = t.create("ds", &["--skip-bad"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(err.contains("skipped:"), "{err}");
    let ds = Dataset::open(&t.path("ds")).unwrap();
    assert_eq!(ds.manifest.records.len(), 1);
    assert_eq!(ds.manifest.skipped.len(), 6);
    assert!(ds.manifest.skipped.iter().any(|s| s.path.ends_with("IM-0004-0004.dcm")));
}

#[test]
fn fifos_devices_and_deeply_nested_files_are_problems_named_and_skipped_with_skip_bad() {
    let t = Tree::new();
    t.case("SC-HF-I-1", "SC-HF-I-01", 4, 6, 100);
    let case = t.images().join("SC-HF-I-1");
    let fifo_image = case.join("IM-0004-0002.dcm");
    fs::remove_file(&fifo_image).unwrap();
    common::make_fifo(&fifo_image);
    let deep_image = case.join("IM-0004-0003.dcm");
    fs::write(
        &deep_image,
        common::with_nested_sequences(&fs::read(case.join("IM-0004-0001.dcm")).unwrap(), 10_000),
    )
    .unwrap();
    let fifo_contour = t.contour("SC-HF-I-01", 4, "i", "");
    fs::remove_file(&fifo_contour).unwrap();
    common::make_fifo(&fifo_contour);
    let device_contour = t.contour("SC-HF-I-01", 5, "i", "");
    fs::remove_file(&device_contour).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &device_contour).unwrap();
    let folder_contour = t.contour("SC-HF-I-01", 6, "i", "");
    fs::remove_file(&folder_contour).unwrap();
    fs::create_dir(&folder_contour).unwrap();

    let o = t.create_within("ds", &[]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("4 problem(s)"), "{err}");
    for needle in [
        format!(
            "{}: cannot read file: it is a FIFO (named pipe), not a regular file",
            fifo_image.display()
        ),
        "lvc::dicom::not_a_file".to_string(),
        format!("{}: (0008,1115) at byte", deep_image.display()),
        "opens nesting level 65".to_string(),
        "lvc::dicom::nesting".to_string(),
        format!(
            "cannot read contour file {}: it is a FIFO (named pipe), not a regular file",
            fifo_contour.display()
        ),
        format!(
            "cannot read contour file {}: it is a character device, not a regular file",
            device_contour.display()
        ),
        "lvc::data::contour::not_a_file".to_string(),
    ] {
        assert!(common::says(&err, &needle), "missing {needle:?} in\n{err}");
    }
    assert!(!t.path("ds").exists());

    let o = t.create_within("ds", &["--skip-bad"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("1 images") && out.contains("4 skipped"), "{out}");
    let warning = format!(
        "warning: {} is a folder, not a contour file; it is not read as a contour\n",
        folder_contour.display()
    );
    assert!(err.contains(&warning), "{err}");
    let m = Dataset::open(&t.path("ds")).unwrap().manifest;
    assert_eq!(m.records.iter().map(|r| r.image).collect::<Vec<_>>(), [1]);
    let mut skipped: Vec<&str> = m.skipped.iter().map(|s| s.path.as_str()).collect();
    skipped.sort();
    let mut expected = [&fifo_image, &deep_image, &fifo_contour, &device_contour]
        .map(|p| p.to_str().unwrap())
        .to_vec();
    expected.sort();
    assert_eq!(skipped, expected);
    assert!(
        m.warnings.iter().any(|w| w.contains("is a folder, not a contour file")),
        "{:?}",
        m.warnings
    );
}

#[test]
fn inspect_warns_on_low_foreground_and_errors_name_the_path() {
    let t = Tree::new();
    for image in 1..=2 {
        t.image(
            "SC-N-2",
            898,
            image,
            StoredPixels::I16(vec![-3; usize::from(SIZE) * usize::from(SIZE)]),
        );
        t.contour("SC-N-02", image, "i", "1 1\n2 1\n2 2\n");
    }
    let o = t.create("ds", &["--val-pct", "0"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&lvc(&["dataset", "inspect", t.path("ds").to_str().unwrap()]));
    // 3 of 32x32 pixels: the triangle's outline
    assert!(out.contains("warning: train: foreground is 0.29%"), "{out}");
    insta::assert_snapshot!(out.replace(&t.dir.path().display().to_string(), "[TMP]"));
    let png = t.path("png");
    let o = lvc(&["dataset", "export", t.path("ds").to_str().unwrap(), png.to_str().unwrap()]);
    assert!(text(&o).0.contains("shifted by +3"), "{:?}", text(&o));
    assert!(fs::read_to_string(png.join("README.txt")).unwrap().contains("SHIFTED by +3"));

    let o = lvc(&["dataset", "inspect", "/nonexistent/ds"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("/nonexistent/ds/manifest.json"), "{:?}", text(&o));
}

#[test]
fn help_has_examples() {
    let (out, _) = text(&lvc(&["dataset", "create", "--help"]));
    assert!(out.contains("Examples:") && out.contains("--contours-kind"), "{out}");
}

#[test]
fn phantom_tree_imports_without_problems() {
    let dir = tempfile::tempdir().unwrap();
    let ph = dir.path().join("phantom");
    let o = lvc(&["phantom", "--out", ph.to_str().unwrap(), "--cases", "2", "--seed", "3"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let contours = ph.join("Sunnybrook Cardiac MR Database ContoursPart3");
    let out = dir.path().join("ds");
    let o = lvc(&[
        "dataset",
        "create",
        "--images",
        ph.join("challenge_training").to_str().unwrap(),
        "--contours",
        contours.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--val-pct",
        "50",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.contains("warning"), "built-in SAX map must pair the phantom: {stderr}");
    let ds = Dataset::open(&out).unwrap();
    let m = &ds.manifest;
    let contour_files = walk(&contours)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("-icontour-manual.txt"))
        .count();
    assert_eq!(m.records.len(), contour_files);
    assert_eq!(m.image_shape, [1, 256, 256]);
    assert_eq!(m.splits[&lvc_data::sunnybrook::import::Split::Val].cases.len(), 1);
    for s in m.splits.values() {
        assert!(
            s.class_fraction[1] > 0.0 && s.class_fraction[1] < 0.05,
            "LV fraction {:?}",
            s.class_fraction
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .flat_map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p)
            } else {
                vec![p]
            }
        })
        .collect()
}
