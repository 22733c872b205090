use super::*;
use crate::sunnybrook::import::{ImportOptions, ImportedSlice};

/// 12 values counting up from `first` (3×4 planes).
fn u16s(first: u16) -> StoredPixels {
    StoredPixels::U16((0..12).map(|i| first + i).collect())
}

fn i16s(first: i16) -> StoredPixels {
    StoredPixels::I16((0..12).map(|i| first + i).collect())
}

fn slice(case: &str, image: u32, split: Split, pixels: StoredPixels, fg: usize) -> ImportedSlice {
    let mut label = vec![0u8; 12];
    label[..fg].fill(1);
    ImportedSlice {
        case: case.to_string(),
        image,
        series: 4,
        dicom: SourceFile {
            path: format!("{case}/IM-0004-{image:04}.dcm"),
            sha256: "ab".repeat(32),
        },
        contours: vec![SourceFile {
            path: format!("{case}/IM-0001-{image:04}-icontour-manual.txt"),
            sha256: "cd".repeat(32),
        }],
        split,
        pixels,
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
        // Negative values and values over 32767: only f32 holds both.
        slices: vec![
            slice("SC-A-1", 10, Split::Train, u16s(100), 3),
            slice("SC-A-1", 20, Split::Train, i16s(-5), 0),
            slice("SC-B-2", 10, Split::Val, u16s(65535 - 11), 6),
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

    assert_eq!(ds.manifest.image_dtype, "f32");
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
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
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
    assert!(matches!(
        write_dataset(&out, &imported(dir.path()), true),
        Err(StoreError::NotReplaceable { .. })
    ));
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
    std::fs::write(
        dir.path().join("manifest.json"),
        r#"{"format":"lvc-dataset","format_version":99}"#,
    )
    .unwrap();
    assert!(matches!(Dataset::open(dir.path()), Err(StoreError::Version { version: 99, .. })));

    let out = dir.path().join("ds");
    write_dataset(&out, &imported(dir.path()), false).unwrap();
    std::fs::write(out.join("val").join("labels.npy"), b"garbage").unwrap();
    let ds = Dataset::open(&out).unwrap();
    let err = ds.split("val").unwrap_err();
    assert!(err.to_string().contains("labels.npy"), "{err}");
}

#[test]
fn image_dtype_is_the_narrowest_that_holds_every_value() {
    let dtype = |planes: &[StoredPixels]| ImageDtype::for_planes(planes.iter());
    let u8s = StoredPixels::U8(vec![0, 255]);
    assert_eq!(dtype(&[u16s(65524), u8s.clone()]), ImageDtype::U16);
    assert_eq!(dtype(&[]), ImageDtype::U16);
    assert_eq!(dtype(&[i16s(-5), i16s(32755)]), ImageDtype::I16);
    assert_eq!(
        dtype(&[i16s(-5), u16s(32755), u8s]),
        ImageDtype::I16,
        "unsigned values up to 32767 fit i16"
    );
    assert_eq!(
        dtype(&[i16s(0), u16s(32757)]),
        ImageDtype::U16,
        "no negative value: u16 holds both"
    );
    assert_eq!(
        dtype(&[i16s(-1), u16s(32757)]),
        ImageDtype::F32,
        "-1 and 32767 + 1: no 16-bit type holds both"
    );
}

/// Writes `slices` (3×4 planes) as a dataset and returns it opened.
fn written(dir: &Path, name: &str, slices: Vec<ImportedSlice>) -> Dataset {
    let mut data = imported(dir);
    data.slices = slices;
    let out = dir.join(name);
    write_dataset(&out, &data, false).unwrap();
    Dataset::open(&out).unwrap()
}

#[test]
fn integer_images_are_stored_in_their_type_and_read_back_as_the_same_f32_values() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<StoredPixels>, &str, &str); 3] = [
        ("u16", vec![u16s(65524), StoredPixels::U8((0..12).collect())], "u16", "<u2"),
        ("i16", vec![i16s(-32768), u16s(32755)], "i16", "<i2"),
        ("f32", vec![i16s(-32768), u16s(65524)], "f32", "<f4"),
    ];
    for (name, planes, manifest_dtype, descr) in cases {
        let expected: Vec<Vec<f32>> = planes.iter().map(StoredPixels::to_f32).collect();
        let slices = planes
            .into_iter()
            .zip([10, 20])
            .map(|(p, image)| slice("SC-A-1", image, Split::Train, p, 1))
            .collect();
        let ds = written(dir.path(), name, slices);
        assert_eq!(ds.manifest.image_dtype, manifest_dtype);
        let on_disk = read_npy(&ds.root.join("train/images.npy")).unwrap();
        assert_eq!((on_disk.data.descr(), on_disk.shape), (descr, vec![2, 1, 3, 4]), "{name}");
        let train = ds.split("train").unwrap();
        assert_eq!(
            [train.image(0), train.image(1)],
            [&expected[0][..], &expected[1][..]],
            "{name}"
        );
        let val = ds.split("val").unwrap();
        assert_eq!(
            (val.shape, val.images.len()),
            ([0, 1, 3, 4], 0),
            "{name}: an empty split is still a tensor"
        );
    }
}

#[test]
fn a_version_1_dataset_with_f32_images_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let ds = written(dir.path(), "old", vec![slice("SC-A-1", 10, Split::Train, u16s(7), 2)]);
    // What lvc wrote before version 2: f32 images, version 1.
    let images = NpyArray {
        shape: vec![1, 1, 3, 4],
        data: NpyData::F32((7..19).map(|v| v as f32).collect()),
    };
    crate::npy::write_npy(&ds.root.join("train/images.npy"), &images).unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ds.root.join(MANIFEST)).unwrap()).unwrap();
    manifest["format_version"] = 1.into();
    manifest["image_dtype"] = "f32".into();
    std::fs::write(ds.root.join(MANIFEST), serde_json::to_vec(&manifest).unwrap()).unwrap();

    let old = Dataset::open(&ds.root).unwrap();
    assert_eq!((old.manifest.format_version, old.manifest.image_dtype.as_str()), (1, "f32"));
    assert_eq!(old.split("train").unwrap().image(0), images.data.into_f32());
}

#[test]
fn images_whose_type_disagrees_with_the_manifest_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ds = written(dir.path(), "ds", vec![slice("SC-A-1", 10, Split::Train, u16s(7), 2)]);
    let signed = NpyArray { shape: vec![1, 1, 3, 4], data: NpyData::I16((7..19).collect()) };
    crate::npy::write_npy(&ds.root.join("train/images.npy"), &signed).unwrap();
    let err = ds.split("train").unwrap_err().to_string();
    assert!(
        err.contains("images.npy") && err.contains("<i2") && err.contains("manifest says <u2"),
        "{err}"
    );

    let path = ds.root.join(MANIFEST);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(r#""image_dtype": "u16""#, r#""image_dtype": "f64""#);
    std::fs::write(&path, text).unwrap();
    let err = Dataset::open(&ds.root).unwrap_err().to_string();
    assert!(err.contains("image_dtype `f64` is not one of u16, i16, f32"), "{err}");
}

#[test]
fn a_plane_of_the_wrong_size_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = imported(dir.path());
    data.slices[1].pixels = StoredPixels::U16(vec![1; 11]);
    let err = write_dataset(&dir.path().join("ds"), &data, false).unwrap_err();
    assert!(
        matches!(&err, StoreError::Npy(NpyError::Shape { expected: 12, actual: 11, .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("images.npy"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn label_values_are_counted_across_runs_of_255() {
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 3) as u8).collect();
    assert_eq!([0, 1, 2, 3].map(|v| count_value(&bytes, v)), [334, 333, 333, 0]);
    assert_eq!(count_value(&[1; 600], 1), 600, "a run of 255 equal bytes fills a u8 lane exactly");
    assert_eq!(count_value(&[], 0), 0);
}

#[test]
fn mostly_background_labels_are_stored_sparse_and_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = imported(dir.path());
    (data.rows, data.columns) = (64, 128);
    let planes: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let mut label = vec![0u8; 64 * 128];
            label[1000 * (i + 1)..1000 * (i + 1) + 50].fill(1);
            label
        })
        .collect();
    for (slice, label) in data.slices.iter_mut().zip(&planes) {
        slice.label = label.clone();
        slice.pixels = StoredPixels::U16(vec![3; 64 * 128]);
    }
    let out = dir.path().join("ds");
    write_dataset(&out, &data, false).unwrap();
    let ds = Dataset::open(&out).unwrap();
    let train = ds.split("train").unwrap();
    assert_eq!([train.label(0), train.label(1)], [&planes[0][..], &planes[1][..]]);
    assert_eq!(ds.split("val").unwrap().label(0), &planes[2][..]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let labels = std::fs::metadata(out.join("train/labels.npy")).unwrap();
        assert!(
            labels.blocks() * 512 < labels.len(),
            "zero pages are holes: {} of {} bytes allocated",
            labels.blocks() * 512,
            labels.len()
        );
    }
}

#[test]
fn label_values_outside_the_classes_are_refused_at_import_and_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = slice("SC-A-1", 10, Split::Train, u16s(7), 2);
    bad.label[5] = 7;
    let mut import = imported(dir.path());
    import.slices = vec![bad, slice("SC-B-2", 10, Split::Val, u16s(7), 2)];
    let err = write_dataset(&dir.path().join("ds"), &import, false).unwrap_err().to_string();
    assert!(
        err.contains("SC-A-1/IM-0004-0010.dcm holds label 7, but the dataset has 2 classes"),
        "{err}"
    );
    assert!(!dir.path().join("ds").exists());

    // A dataset whose labels.npy was replaced afterwards.
    let ds = written(
        dir.path(),
        "ok",
        vec![
            slice("SC-A-1", 10, Split::Train, u16s(7), 2),
            slice("SC-A-1", 11, Split::Train, u16s(7), 2),
        ],
    );
    let mut labels = vec![0u8; 24];
    labels[12 + 4] = 200;
    let array = NpyArray { shape: vec![2, 1, 3, 4], data: NpyData::U8(labels) };
    crate::npy::write_npy(&ds.root.join("train/labels.npy"), &array).unwrap();
    let err = ds.split("train").unwrap_err().to_string();
    assert!(err.contains("labels.npy: image 1 (SC-A-1 IM 0011) holds label 200, but the dataset has 2 classes (0..=1)"), "{err}");
}

#[test]
fn case_names_that_are_not_plain_components_are_refused_at_import() {
    let dir = tempfile::tempdir().unwrap();
    let mut import = imported(dir.path());
    import.slices[0].case = "../up".into();
    let err = write_dataset(&dir.path().join("ds"), &import, false).unwrap_err().to_string();
    assert!(err.contains("not a plain file name"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn records_that_do_not_describe_the_images_one_to_one_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ds = written(
        dir.path(),
        "ds",
        vec![
            slice("SC-A-1", 10, Split::Train, u16s(7), 2),
            slice("SC-A-1", 11, Split::Train, u16s(7), 2),
        ],
    );
    let path = ds.root.join(MANIFEST);
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for edit in [
        |m: &mut serde_json::Value| {
            m["records"].as_array_mut().unwrap().pop();
        },
        |m: &mut serde_json::Value| m["records"][1]["index"] = 7.into(),
    ] {
        let mut manifest = original.clone();
        edit(&mut manifest);
        std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
        let err = Dataset::open(&ds.root).unwrap().split("train").unwrap_err().to_string();
        assert!(err.contains("not exactly one per image"), "{err}");
    }
}
