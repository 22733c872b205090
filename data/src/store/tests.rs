use super::*;
use crate::sunnybrook::import::{ImportOptions, ImportedSlice};

fn slice(case: &str, image: u32, split: Split, value: f32, fg: usize) -> ImportedSlice {
    let mut label = vec![0u8; 12];
    label[..fg].fill(1);
    ImportedSlice {
        case: case.to_string(),
        image,
        series: 4,
        dicom: SourceFile { path: format!("{case}/IM-0004-{image:04}.dcm"), sha256: "ab".repeat(32) },
        contours: vec![SourceFile { path: format!("{case}/IM-0001-{image:04}-icontour-manual.txt"), sha256: "cd".repeat(32) }],
        split,
        pixels: (0..12).map(|i| value + i as f32).collect(),
        label,
    }
}

fn imported(dir: &Path) -> Imported {
    Imported {
        options: ImportOptions {
            images: dir.join("images"),
            contours: dir.join("contours"),
            sax_map: None,
            channels: Channels::L,
            kind: ContoursKind::I,
            val_pct: 30,
            split: SplitKind::Patient,
            seed: 5,
            skip_bad: true,
            allow_outside: false,
        },
        rows: 3,
        columns: 4,
        slices: vec![
            slice("SC-A-1", 10, Split::Train, 100.0, 3),
            slice("SC-A-1", 20, Split::Train, -5.0, 0),
            slice("SC-B-2", 10, Split::Val, 65535.0 - 11.0, 6),
        ],
        problems: vec![],
        skipped: vec![Skipped { path: "x.txt".into(), reason: "x.txt:2: bad".into() }],
        warnings: vec![],
        notes: vec![],
    }
}

#[test]
fn round_trip_through_open_and_split() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let manifest = write_dataset(&out, &imported(dir.path()), false).unwrap();
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.manifest, manifest);
    assert_eq!(ds.manifest.image_shape, [1, 3, 4]);
    assert_eq!(ds.manifest.classes, vec!["background", "left ventricle"]);
    let train = &ds.manifest.splits[&Split::Train];
    assert_eq!((train.count, train.cases.clone()), (2, vec!["SC-A-1".to_string()]));
    assert_eq!(train.class_pixels, vec![21, 3]);
    assert!((train.class_fraction[1] - 3.0 / 24.0).abs() < 1e-12);
    assert_eq!(ds.manifest.skipped.len(), 1);

    let t = ds.split("train").unwrap();
    assert_eq!(t.shape, [2, 1, 3, 4]);
    assert_eq!(t.image(1)[0], -5.0);
    assert_eq!(t.label(0).iter().filter(|&&v| v == 1).count(), 3);
    assert_eq!(t.records[1].image, 20);
    let v = ds.split("val").unwrap();
    assert_eq!(v.image(0)[11], 65535.0, "stored values survive exactly");
    assert_eq!(v.records[0].index, 0);
    assert!(matches!(ds.split("test"), Err(StoreError::NoSplit { .. })));
    // nothing but the dataset next to it
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("ds")]);
}

#[test]
fn existing_dataset_is_kept_without_force_and_replaced_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let mut data = imported(dir.path());
    write_dataset(&out, &data, false).unwrap();
    assert!(matches!(write_dataset(&out, &data, false), Err(StoreError::Exists { .. })));
    data.slices.truncate(1);
    write_dataset(&out, &data, true).unwrap();
    assert_eq!(Dataset::open(&out).unwrap().manifest.records.len(), 1);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn force_does_not_replace_a_folder_that_is_not_a_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("precious");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "keep me").unwrap();
    assert!(matches!(write_dataset(&out, &imported(dir.path()), true), Err(StoreError::NotReplaceable { .. })));
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "keep me");
}

#[test]
fn a_failed_build_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let result: Result<(), StoreError> = build_dir_atomically(&out, false, is_dataset, |temp| {
        std::fs::write(temp.join("half.npy"), b"...").unwrap();
        Err(StoreError::Read { path: temp.to_path_buf(), reason: "interrupted".into() })
    });
    assert!(result.is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn open_rejects_missing_damaged_and_future_datasets() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(Dataset::open(dir.path()), Err(StoreError::Read { .. })));
    std::fs::write(dir.path().join("manifest.json"), "{ not json").unwrap();
    assert!(matches!(Dataset::open(dir.path()), Err(StoreError::Read { .. })));
    std::fs::write(dir.path().join("manifest.json"), r#"{"format":"lvc-dataset","format_version":99}"#).unwrap();
    assert!(matches!(Dataset::open(dir.path()), Err(StoreError::Version { version: 99, .. })));

    let out = dir.path().join("ds");
    write_dataset(&out, &imported(dir.path()), false).unwrap();
    std::fs::write(out.join("val").join("labels.npy"), b"garbage").unwrap();
    let ds = Dataset::open(&out).unwrap();
    let err = ds.split("val").unwrap_err();
    assert!(err.to_string().contains("labels.npy"), "{err}");
}
