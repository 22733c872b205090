//! Import tests on small fixture trees. The `.dcm` files here hold
//! `ROWS COLS VALUE` as text and are decoded by [`TextLoader`], so pairing,
//! splitting and problem collection are tested without DICOM. A negative
//! VALUE makes a signed plane, as signed DICOM would.

use super::*;
use std::fs;

/// Decodes the test stand-in for DICOM: `ROWS COLS VALUE`.
struct TextLoader;

#[derive(Debug, Error, Diagnostic)]
#[error("{}: not a test image", path.display())]
#[diagnostic(code(lvc::test::bad_image))]
struct NotATestImage {
    path: PathBuf,
}

impl ImageLoader for TextLoader {
    fn decode(&self, path: &Path, bytes: &[u8]) -> Result<LoadedImage, Problem> {
        let bad = || Problem::new(path, NotATestImage { path: path.to_path_buf() });
        let text = std::str::from_utf8(bytes).map_err(|_| bad())?;
        let v: Vec<i64> = text
            .split_whitespace()
            .map(|t| t.parse().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        let &[rows, columns, value] = v.as_slice() else { return Err(bad()) };
        let (Ok(rows), Ok(columns)) = (usize::try_from(rows), usize::try_from(columns)) else {
            return Err(bad());
        };
        let pixels = match (u16::try_from(value), i16::try_from(value)) {
            (Ok(v), _) => StoredPixels::U16(vec![v; rows * columns]),
            (_, Ok(v)) => StoredPixels::I16(vec![v; rows * columns]),
            _ => return Err(bad()),
        };
        Ok(LoadedImage { rows, columns, pixels })
    }
}

/// A 16x16 square contour from (4,4) to (8,8): 25 pixels of label.
const SQUARE: &str = "4.5 4.0\n8.0 4.0\n8.0 8.5\n4.0 8.0\n";
/// A bigger square (2,2)-(10,10) for o-contours.
const OUTER: &str = "2 2\n10 2\n10 10\n2 10\n";

struct Tree {
    _dir: tempfile::TempDir,
    images: PathBuf,
    contours: PathBuf,
}

impl Tree {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("challenge training");
        let contours = dir
            .path()
            .join("Sunnybrook Cardiac MR Database ContoursPart3")
            .join("TrainingDataContours");
        fs::create_dir_all(&images).unwrap();
        fs::create_dir_all(contours.join("file-listings")).unwrap();
        fs::write(contours.join("file-listings").join("IM-0001-0001-icontour-manual.txt"), "junk")
            .unwrap();
        Tree { _dir: dir, images, contours }
    }

    fn image(&self, case: &str, series: u32, image: u32, content: &str) {
        let dir = self.images.join(case);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("IM-{series:04}-{image:04}.dcm")), content).unwrap();
    }

    fn contour(&self, case: &str, image: u32, kind: &str, content: &str) -> PathBuf {
        let dir = self.contours.join(case).join("contours-manual").join("IRCCI-expert");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("IM-0001-{image:04}-{kind}contour-manual.txt"));
        fs::write(&path, content).unwrap();
        path
    }

    /// `case` (unpadded image folder, padded contour folder) with `n`
    /// contoured slices in `series`.
    fn case(&self, case: &str, padded: &str, series: u32, n: u32) {
        for image in 1..=n {
            self.image(case, series, image * 10, "16 16 7");
            self.contour(padded, image * 10, "i", SQUARE);
        }
    }

    fn options(&self) -> ImportOptions {
        ImportOptions {
            images: self.images.clone(),
            contours: self.contours.parent().unwrap().to_path_buf(),
            sax_map: None,
            channels: Channels::L,
            kind: ContoursKind::I,
            val_pct: 10,
            split: SplitKind::Patient,
            seed: 1,
            skip_bad: false,
            allow_outside: false,
        }
    }
}

fn problems_of(err: ImportError) -> Vec<String> {
    match err {
        ImportError::Problems { problems } | ImportError::NothingLeft { problems } => {
            problems.iter().map(|p| format!("{} | {}", p.file().display(), p)).collect()
        }
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn file_names() {
    assert_eq!(contour_file_name("IM-0001-0048-icontour-manual.txt"), Some((48, 'i')));
    assert_eq!(contour_file_name("IM-0001-0048-ocontour-manual.txt"), Some((48, 'o')));
    assert_eq!(contour_file_name("IM-0001-0048-p1contour-manual.txt"), None);
    assert_eq!(contour_file_name("IM-0001-48-icontour-manual.txt"), None);
    assert_eq!(image_file_name("IM-0004-0048.dcm"), Some((4, 48)));
    assert_eq!(image_file_name("IM-0004-0048.txt"), None);
}

#[test]
fn pairs_padded_contours_with_unpadded_image_folders_via_the_builtin_map() {
    let t = Tree::new();
    t.case("SC-HF-I-1", "SC-HF-I-01", 4, 3);
    // A decoy series holding the same image numbers must not be used.
    t.image("SC-HF-I-1", 5, 10, "16 16 99");
    let got = import(&t.options(), &TextLoader).unwrap();
    assert_eq!(got.slices.len(), 3);
    assert_eq!((got.rows, got.columns), (16, 16));
    for s in &got.slices {
        assert_eq!(s.case, "SC-HF-I-1");
        assert_eq!(s.series, 4);
        assert_eq!(
            s.pixels,
            StoredPixels::U16(vec![7; 16 * 16]),
            "stored values in their stored type"
        );
        assert_eq!(s.label.iter().filter(|&&v| v == 1).count(), 25);
        assert_eq!(s.dicom.sha256.len(), 64);
    }
    assert_eq!(got.slices[0].dicom.path, "SC-HF-I-1/IM-0004-0010.dcm");
    assert_eq!(got.slices[0].contours[0].path, "TrainingDataContours/SC-HF-I-01/contours-manual/IRCCI-expert/IM-0001-0010-icontour-manual.txt");
    assert!(got.warnings.is_empty(), "{:?}", got.warnings);
}

#[test]
fn unknown_case_gets_the_series_holding_all_contoured_images_with_a_warning() {
    let t = Tree::new();
    t.case("SC-X-7", "SC-X-07", 12, 2);
    t.image("SC-X-7", 13, 10, "16 16 1"); // holds only one of the two images
    let got = import(&t.options(), &TextLoader).unwrap();
    assert!(got.slices.iter().all(|s| s.series == 12));
    assert_eq!(got.warnings.len(), 1);
    assert!(got.warnings[0].contains("using series 0012"), "{:?}", got.warnings);
}

#[test]
fn ambiguous_series_picks_the_largest_and_warns() {
    let t = Tree::new();
    t.case("SC-X-7", "SC-X-7", 12, 2);
    for image in [10, 20, 30, 40] {
        t.image("SC-X-7", 14, image, "16 16 3");
    }
    let got = import(&t.options(), &TextLoader).unwrap();
    assert!(got.slices.iter().all(|s| s.series == 14));
    assert!(got.warnings[0].contains("0012 (2 images), 0014 (4 images)"), "{:?}", got.warnings);
}

#[test]
fn sax_map_file_overrides_the_builtin_map() {
    let t = Tree::new();
    t.case("SC-N-6", "SC-N-06", 981, 2);
    t.image("SC-N-6", 984, 10, "16 16 1");
    let map = t.images.parent().unwrap().join("sax map.txt");
    fs::write(&map, "# case series\nSC-N-06 0981  # one DSB script's value\n\n").unwrap();
    let mut opts = t.options();
    opts.sax_map = Some(map.clone());
    let got = import(&opts, &TextLoader).unwrap();
    assert_eq!(got.slices.len(), 2);
    assert!(got.slices.iter().all(|s| s.series == 981));

    fs::write(&map, "SC-N-6 98x\n").unwrap();
    let err = import(&opts, &TextLoader).unwrap_err();
    assert!(matches!(&err, ImportError::SaxMap(SaxMapError { line: 1, .. })), "{err:?}");
    assert!(err.to_string().contains("sax map.txt:1"));
}

#[test]
fn io_mode_labels_myocardium_and_notes_slices_without_o_contour() {
    let t = Tree::new();
    t.case("SC-HYP-1", "SC-HYP-01", 550, 3);
    t.contour("SC-HYP-01", 10, "o", OUTER);
    t.contour("SC-HYP-01", 20, "o", OUTER);
    let mut opts = t.options();
    opts.kind = ContoursKind::Io;
    let got = import(&opts, &TextLoader).unwrap();
    assert_eq!(got.slices.len(), 2);
    for s in &got.slices {
        assert_eq!(s.label.iter().filter(|&&v| v == 1).count(), 25);
        assert_eq!(s.label.iter().filter(|&&v| v == 2).count(), 81 - 25);
        assert_eq!(s.contours.len(), 2);
    }
    assert_eq!(got.notes.len(), 1);
    assert!(got.notes[0].contains("[30]"), "{:?}", got.notes);
}

#[test]
fn rgb_keeps_one_plane_per_slice_and_the_dataset_has_three_equal_channels() {
    let t = Tree::new();
    t.case("SC-N-2", "SC-N-02", 898, 1);
    let mut opts = t.options();
    opts.channels = Channels::RGB;
    opts.val_pct = 0;
    let got = import(&opts, &TextLoader).unwrap();
    assert_eq!(
        got.slices[0].pixels.len(),
        16 * 16,
        "the store repeats the plane, the import does not"
    );
    let out = t.images.parent().unwrap().join("rgb-ds");
    crate::store::write_dataset(&out, &got, false).unwrap();
    let ds = crate::store::Dataset::open(&out).unwrap();
    assert_eq!(ds.manifest.image_shape, [3, 16, 16]);
    let train = ds.split("train").unwrap();
    assert_eq!(train.shape, [1, 3, 16, 16]);
    assert!(train.image(0).iter().all(|&v| v == 7.0), "every channel holds the plane");
}

#[test]
fn source_files_are_checksummed_from_the_bytes_that_were_decoded() {
    let t = Tree::new();
    t.case("SC-N-2", "SC-N-02", 898, 1);
    let got = import(&t.options(), &TextLoader).unwrap();
    assert_eq!(got.slices[0].dicom.sha256, sha256_hex(b"16 16 7"));
    assert_eq!(got.slices[0].contours[0].sha256, sha256_hex(SQUARE.as_bytes()));
}

#[test]
fn sha256_hex_is_the_lowercase_hex_digest() {
    // FIPS 180-2's "abc" example.
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn broken_tree_reports_every_problem_and_skip_bad_keeps_the_rest() {
    let t = Tree::new();
    t.case("SC-HF-I-1", "SC-HF-I-01", 4, 4);
    // junk line in a contour
    let junk = t.contour("SC-HF-I-01", 20, "i", "1 1\nnot a point\n3 3\n");
    // point outside the 16x16 image
    let outside = t.contour("SC-HF-I-01", 30, "i", "1 1\n40 2\n3 3\n");
    // truncated image
    t.image("SC-HF-I-1", 4, 40, "16 16");
    // contour whose image is missing
    t.contour("SC-HF-I-01", 50, "i", SQUARE);
    // case without an image folder
    t.contour("SC-N-3", 10, "i", SQUARE);
    // case with an empty image folder
    t.contour("SC-N-40", 10, "i", SQUARE);
    fs::create_dir_all(t.images.join("SC-N-40")).unwrap();
    // case folder with no i-contours
    fs::create_dir_all(t.contours.join("SC-HYP-3").join("contours-manual").join("IRCCI-expert"))
        .unwrap();
    // unknown case whose folder has no series with its images
    t.contour("SC-Q-1", 10, "i", SQUARE);
    t.image("SC-Q-1", 2, 11, "16 16 1");

    let err = import(&t.options(), &TextLoader).unwrap_err();
    let problems = problems_of(err);
    let joined = problems.join("\n");
    assert_eq!(problems.len(), 8, "{joined}");
    for needle in [
        format!("{}:2", junk.display()),
        format!("{}:2: point (40, 2) lies outside the 16x16 image", outside.display()),
        "IM-0004-0040.dcm: not a test image".to_string(),
        "IM-0004-0050.dcm for this contour does not exist".to_string(),
        "no image folder for case SC-N-3".to_string(),
        "SC-N-40 holds no IM-<series>-<image>.dcm files".to_string(),
        "SC-HYP-3/contours-manual holds no i-contour files".to_string(),
        "case SC-Q-1: no series".to_string(),
    ] {
        assert!(joined.contains(&needle), "missing {needle:?} in\n{joined}");
    }

    let mut opts = t.options();
    opts.skip_bad = true;
    let got = import(&opts, &TextLoader).unwrap();
    assert_eq!(got.slices.len(), 1);
    assert_eq!(got.slices[0].image, 10);
    assert_eq!(got.skipped.len(), 8);
    assert!(got
        .skipped
        .iter()
        .any(|s| s.path == junk.to_string_lossy() && s.reason.contains("expected 2 numbers")));
}

#[test]
fn allow_outside_clips_like_fillpoly() {
    let t = Tree::new();
    t.image("SC-N-2", 898, 10, "16 16 1");
    t.contour("SC-N-02", 10, "i", "10 10\n20 10\n20 20\n10 20\n");
    let mut opts = t.options();
    assert!(import(&opts, &TextLoader).is_err());
    opts.allow_outside = true;
    let got = import(&opts, &TextLoader).unwrap();
    assert_eq!(got.slices[0].label.iter().filter(|&&v| v == 1).count(), 36);
}

#[test]
fn odd_sized_images_are_named() {
    let t = Tree::new();
    t.case("SC-N-2", "SC-N-02", 898, 3);
    t.image("SC-N-2", 898, 20, "12 16 7");
    let problems = problems_of(import(&t.options(), &TextLoader).unwrap_err());
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains("IM-0898-0020.dcm: image is 12x16, the dataset's images are 16x16"),
        "{problems:?}"
    );
}

#[test]
fn duplicate_contours_for_one_slice_are_a_problem() {
    let t = Tree::new();
    t.case("SC-N-2", "SC-N-02", 898, 1);
    t.contour("SC-N-2", 10, "i", SQUARE);
    let problems = problems_of(import(&t.options(), &TextLoader).unwrap_err());
    assert!(problems[0].contains("also found at"), "{problems:?}");
}

#[test]
fn extra_nesting_and_flat_contour_folders_work() {
    let t = Tree::new();
    t.image("SC-N-2", 898, 10, "16 16 1");
    // contours directly in the case folder, two extra levels down
    let flat = t.contours.join("extra").join("level").join("SC-N-02");
    fs::create_dir_all(&flat).unwrap();
    fs::write(flat.join("IM-0001-0010-icontour-manual.txt"), SQUARE).unwrap();
    let got = import(&t.options(), &TextLoader).unwrap();
    assert_eq!(got.slices.len(), 1);
}

#[test]
fn empty_contour_tree_is_an_error() {
    let t = Tree::new();
    fs::remove_dir_all(t.contours.join("file-listings")).unwrap();
    assert!(matches!(import(&t.options(), &TextLoader), Err(ImportError::NoContours { .. })));
    let mut opts = t.options();
    opts.images = t.images.join("missing");
    assert!(matches!(import(&opts, &TextLoader), Err(ImportError::NotAFolder { .. })));
}

fn slices(cases: &[(&str, u32)]) -> Vec<ImportedSlice> {
    cases
        .iter()
        .flat_map(|&(case, n)| {
            (1..=n).map(move |image| ImportedSlice {
                case: case.to_string(),
                image,
                series: 1,
                dicom: SourceFile { path: String::new(), sha256: String::new() },
                contours: vec![],
                split: Split::Train,
                pixels: StoredPixels::U16(vec![]),
                label: vec![],
            })
        })
        .collect()
}

fn val_cases(s: &[ImportedSlice]) -> BTreeSet<String> {
    s.iter().filter(|s| s.split == Split::Val).map(|s| s.case.clone()).collect()
}

#[test]
fn image_split_takes_floor_of_pct_and_is_seeded() {
    let mut a = slices(&[("A", 130), ("B", 130)]);
    assign_splits(&mut a, SplitKind::Image, 10, 7);
    assert_eq!(a.iter().filter(|s| s.split == Split::Val).count(), 26);
    let mut b = slices(&[("B", 130), ("A", 130)]);
    assign_splits(&mut b, SplitKind::Image, 10, 7);
    let key = |s: &[ImportedSlice]| {
        s.iter().map(|s| (s.case.clone(), s.image, s.split)).collect::<Vec<_>>()
    };
    assert_eq!(key(&a), key(&b), "input order must not matter");
    let mut c = slices(&[("A", 130), ("B", 130)]);
    assign_splits(&mut c, SplitKind::Image, 10, 8);
    assert_ne!(key(&a), key(&c), "another seed, another split");
    let mut none = slices(&[("A", 5)]);
    assign_splits(&mut none, SplitKind::Image, 0, 1);
    assert!(none.iter().all(|s| s.split == Split::Train));
}

#[test]
fn patient_split_keeps_cases_whole_and_near_the_target() {
    let cases: Vec<(String, u32)> = (0..15).map(|i| (format!("SC-{i}"), 15 + i % 5)).collect();
    let refs: Vec<(&str, u32)> = cases.iter().map(|(c, n)| (c.as_str(), *n)).collect();
    let total: u32 = refs.iter().map(|c| c.1).sum();
    let mut s = slices(&refs);
    assign_splits(&mut s, SplitKind::Patient, 10, 3);
    let val = val_cases(&s);
    assert!(!val.is_empty());
    for case in &val {
        assert!(s.iter().filter(|x| &x.case == case).all(|x| x.split == Split::Val));
    }
    let n_val = s.iter().filter(|x| x.split == Split::Val).count() as f64;
    assert!((n_val - total as f64 * 0.1).abs() <= 10.0, "{n_val} of {total}");
    // tiny pct still gives one patient
    let mut s = slices(&refs);
    assign_splits(&mut s, SplitKind::Patient, 1, 3);
    assert_eq!(val_cases(&s).len(), 1);
    let mut s = slices(&refs);
    assign_splits(&mut s, SplitKind::Patient, 0, 3);
    assert!(val_cases(&s).is_empty());
}

#[cfg(unix)]
fn make_fifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// Imports on another thread and fails the test when that has not returned
/// within 10 s (a FIFO opened for reading blocks until a writer comes); the
/// `fifos` then get a writer each, which lets it return.
#[cfg(unix)]
#[allow(clippy::result_large_err)] // the importer's own result, passed through
fn import_within_10_s(opts: ImportOptions, fifos: &[PathBuf]) -> Result<Imported, ImportError> {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || send.send(import(&opts, &TextLoader)));
    match receive.recv_timeout(std::time::Duration::from_secs(10)) {
        Ok(result) => result,
        Err(_) => {
            use std::os::unix::fs::OpenOptionsExt;
            for fifo in fifos {
                let _writer =
                    fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(fifo);
            }
            panic!("the import blocked for 10 s on {fifos:?}");
        }
    }
}

#[cfg(unix)]
#[test]
fn fifos_among_the_sources_are_problems_and_contour_named_folders_are_warned_about() {
    let t = Tree::new();
    t.case("SC-HF-I-1", "SC-HF-I-01", 4, 4);
    let image = t.images.join("SC-HF-I-1").join("IM-0004-0020.dcm");
    fs::remove_file(&image).unwrap();
    make_fifo(&image);
    let contour = t.contour("SC-HF-I-01", 30, "i", SQUARE);
    fs::remove_file(&contour).unwrap();
    make_fifo(&contour);
    let folder = t.contour("SC-HF-I-01", 40, "i", SQUARE);
    fs::remove_file(&folder).unwrap();
    fs::create_dir(&folder).unwrap();
    let fifos = [image.clone(), contour.clone()];

    let problems = problems_of(import_within_10_s(t.options(), &fifos).unwrap_err());
    let joined = problems.join("\n");
    assert_eq!(problems.len(), 2, "{joined}");
    assert!(
        joined.contains(&format!(
            "cannot read {}: it is a FIFO (named pipe), not a regular file",
            image.display()
        )),
        "{joined}"
    );
    assert!(
        joined.contains(&format!(
            "cannot read contour file {}: it is a FIFO (named pipe)",
            contour.display()
        )),
        "{joined}"
    );

    let mut opts = t.options();
    opts.skip_bad = true;
    let got = import_within_10_s(opts, &fifos).unwrap();
    assert_eq!(got.slices.iter().map(|s| s.image).collect::<Vec<_>>(), [10]);
    let skipped: Vec<&str> = got.skipped.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(skipped, [image.to_str().unwrap(), contour.to_str().unwrap()]);
    assert_eq!(
        got.warnings,
        [format!(
            "{} is a folder, not a contour file; it is not read as a contour",
            folder.display()
        )]
    );
}
