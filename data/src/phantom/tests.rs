//! Layout, determinism and realism checks on a generated phantom.

use super::*;
use crate::dicom::read_image;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// One 3-case phantom shared by the read-only tests.
fn phantom() -> &'static (tempfile::TempDir, PhantomSummary) {
    static PHANTOM: OnceLock<(tempfile::TempDir, PhantomSummary)> = OnceLock::new();
    PHANTOM.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let summary = generate(dir.path(), &PhantomOptions { cases: 3, seed: 11 }).unwrap();
        (dir, summary)
    })
}

fn files_under(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}

fn contour_dir(root: &Path, case: &str) -> PathBuf {
    root.join(CONTOURS_DIR)
        .join(CONTOURS_SPLIT_DIR)
        .join(padded_case(case))
        .join("contours-manual/IRCCI-expert")
}

fn parse_contour(text: &str) -> Vec<(f64, f64)> {
    assert!(text.ends_with('\n'), "trailing newline");
    text.lines()
        .map(|line| {
            let (x, y) = line.split_once(' ').unwrap();
            // Two decimals, on the 0.5 grid.
            for v in [x, y] {
                assert_eq!(v.split_once('.').map(|(_, d)| d.len()), Some(2), "{line:?}");
                assert!(v.ends_with(".00") || v.ends_with(".50"), "{line:?}");
            }
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

#[test]
fn same_seed_same_bytes_other_seed_other_images() {
    let (a, b, c) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(a.path(), &PhantomOptions { cases: 1, seed: 5 }).unwrap();
    generate(b.path(), &PhantomOptions { cases: 1, seed: 5 }).unwrap();
    generate(c.path(), &PhantomOptions { cases: 1, seed: 6 }).unwrap();
    let (fa, fb, fc) = (files_under(a.path()), files_under(b.path()), files_under(c.path()));
    assert!(fa.len() > 30);
    assert_eq!(fa, fb);
    assert_ne!(fa, fc);
}

#[test]
fn layout_matches_the_challenge_download() {
    let (dir, summary) = phantom();
    let root = dir.path();
    assert_eq!(summary.cases, ["SC-HF-I-1", "SC-HF-I-2", "SC-HF-I-4"]);
    for case in &summary.cases {
        let series = crate::sunnybrook::sax_map::builtin_series(case).unwrap();
        let images: Vec<String> = std::fs::read_dir(root.join(IMAGES_DIR).join(case))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let sax: Vec<&String> =
            images.iter().filter(|n| n.starts_with(&format!("IM-{series:04}-"))).collect();
        let localizer = images.iter().filter(|n| n.starts_with("IM-0001-")).count();
        assert_eq!(localizer, LOCALIZER_IMAGES, "{case}");
        assert_eq!(
            sax.len() + localizer,
            images.len(),
            "{case}: only the SAX and localizer series"
        );
        assert!(sax.len() >= 8 * 4, "{case}: {} SAX files", sax.len());
        let cdir = contour_dir(root, case);
        let contours: Vec<String> = std::fs::read_dir(&cdir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let inner: Vec<&String> =
            contours.iter().filter(|n| n.ends_with("-icontour-manual.txt")).collect();
        let outer = contours.iter().filter(|n| n.ends_with("-ocontour-manual.txt")).count();
        assert!(
            outer < inner.len() && outer >= inner.len() / 2,
            "{case}: o on most but not all slices"
        );
        for name in &inner {
            // IM-0001-NNNN-icontour-manual.txt ↔ IM-<series>-NNNN.dcm, ED or ES frame.
            let number: usize = name[8..12].parse().unwrap();
            assert!(name.starts_with("IM-0001-"), "{name}");
            assert!(
                images.contains(&format!("IM-{series:04}-{number:04}.dcm")),
                "{case}: {name} has its image"
            );
            let phase = (number - 1) % PHASES;
            assert!(phase == 0 || (7..=9).contains(&phase), "{name}: phase {phase}");
        }
    }
    assert!(root.join(CONTOURS_DIR).join(CONTOURS_SPLIT_DIR).join("file-listings").is_dir());
    assert!(root.join(CONTOURS_DIR).join(CONTOURS_SPLIT_DIR).join("SC-HF-I-01").is_dir());
}

#[test]
fn dicom_headers_say_what_the_layout_says() {
    let (dir, summary) = phantom();
    let case = &summary.cases[1];
    let series = crate::sunnybrook::sax_map::builtin_series(case).unwrap();
    let image = read_image(
        &dir.path().join(IMAGES_DIR).join(case).join(format!("IM-{series:04}-0021.dcm")),
    )
    .unwrap();
    let info = &image.info;
    assert_eq!(
        (info.rows, info.columns, info.bits_allocated, info.bits_stored, info.signed),
        (256, 256, 16, 12, false)
    );
    assert_eq!(info.series_number, Some(i64::from(series)));
    assert_eq!(info.instance_number, Some(21));
    assert_eq!(info.trigger_time, Some(0.0), "image 21 is slice 1, phase 0");
    assert_eq!(info.slice_thickness, Some(SLICE_THICKNESS_MM));
    assert_eq!(info.patient_id.as_deref(), Some(case.as_str()));
    let spacing = info.pixel_spacing.unwrap();
    assert!(spacing[0] == spacing[1] && (1.25..=1.5).contains(&spacing[0]));
    let crate::dicom::StoredPixels::U16(values) = &image.pixels else {
        panic!("unsigned 16-bit expected")
    };
    let max = *values.iter().max().unwrap();
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
    assert!(max < 4096 && max > 100, "max {max}");
    assert!((10.0..400.0).contains(&mean), "mean {mean}: raw values in the tens to hundreds");
    let localizer =
        crate::dicom::read_info(&dir.path().join(IMAGES_DIR).join(case).join("IM-0001-0001.dcm"))
            .unwrap();
    assert_eq!(localizer.series_number, Some(1));
    assert_ne!(localizer.series_instance_uid, info.series_instance_uid);
    assert_eq!(localizer.study_instance_uid, info.study_instance_uid);
}

#[test]
fn studies_differ_in_scale_spacing_and_size() {
    let (dir, summary) = phantom();
    let mut spacings = Vec::new();
    let mut means = Vec::new();
    for case in &summary.cases {
        let series = crate::sunnybrook::sax_map::builtin_series(case).unwrap();
        let image = read_image(
            &dir.path().join(IMAGES_DIR).join(case).join(format!("IM-{series:04}-0001.dcm")),
        )
        .unwrap();
        spacings.push(image.info.pixel_spacing.unwrap()[0]);
        means.push(image.to_f32().iter().map(|&v| f64::from(v)).sum::<f64>() / 65536.0);
    }
    spacings.dedup();
    assert_eq!(spacings.len(), 3);
    let (lo, hi) = means.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &m| (lo.min(m), hi.max(m)));
    assert!(hi > 1.2 * lo, "intensity scale varies per study: {means:?}");
}

/// Point-in-polygon (even-odd) for the contour checks.
fn inside(poly: &[(f64, f64)], x: f64, y: f64) -> bool {
    let mut hit = false;
    for i in 0..poly.len() {
        let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
        if (a.1 > y) != (b.1 > y) && x < a.0 + (y - a.1) / (b.1 - a.1) * (b.0 - a.0) {
            hit = !hit;
        }
    }
    hit
}

type Polygon = Vec<(f64, f64)>;

/// All (i-contour, o-contour if any, image) triples of the shared phantom.
fn contoured_images() -> Vec<(Polygon, Option<Polygon>, Vec<f32>)> {
    let (dir, summary) = phantom();
    let mut out = Vec::new();
    for case in &summary.cases {
        let series = crate::sunnybrook::sax_map::builtin_series(case).unwrap();
        let cdir = contour_dir(dir.path(), case);
        let mut names: Vec<String> = std::fs::read_dir(&cdir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        for name in names.iter().filter(|n| n.ends_with("-icontour-manual.txt")) {
            let inner = parse_contour(&std::fs::read_to_string(cdir.join(name)).unwrap());
            let outer_path = cdir.join(name.replace("-icontour", "-ocontour"));
            let outer = outer_path
                .exists()
                .then(|| parse_contour(&std::fs::read_to_string(outer_path).unwrap()));
            let image = read_image(
                &dir.path()
                    .join(IMAGES_DIR)
                    .join(case)
                    .join(format!("IM-{series:04}-{}.dcm", &name[8..12])),
            )
            .unwrap();
            out.push((inner, outer, image.to_f32()));
        }
    }
    out
}

#[test]
fn contours_lie_in_the_image_and_nest() {
    for (inner, outer, _) in contoured_images() {
        assert!(inner.len() >= 16);
        for &(x, y) in inner.iter().chain(outer.iter().flatten()) {
            assert!((0.0..255.0).contains(&x) && (0.0..255.0).contains(&y), "({x}, {y})");
        }
        assert_ne!(inner.first(), inner.last(), "implicitly closed");
        if let Some(outer) = outer {
            let (cx, cy) = (
                inner.iter().map(|p| p.0).sum::<f64>() / inner.len() as f64,
                inner.iter().map(|p| p.1).sum::<f64>() / inner.len() as f64,
            );
            assert!(inside(&outer, cx, cy));
            assert!(
                inner.iter().filter(|p| inside(&outer, p.0, p.1)).count() * 10 >= inner.len() * 9,
                "i inside o"
            );
        }
    }
}

#[test]
fn the_i_contour_separates_bright_pool_from_dark_wall() {
    for (inner, outer, pixels) in contoured_images() {
        let Some(outer) = outer else { continue };
        let (mut pool, mut wall) = (Vec::new(), Vec::new());
        for (i, &v) in pixels.iter().enumerate() {
            let (x, y) = ((i % 256) as f64, (i / 256) as f64);
            if inside(&inner, x, y) {
                pool.push(v);
            } else if inside(&outer, x, y) {
                wall.push(v);
            }
        }
        let median = |v: &mut Vec<f32>| {
            v.sort_by(f32::total_cmp);
            v[v.len() / 2]
        };
        let (p, w) = (median(&mut pool), median(&mut wall));
        assert!(p > 2.0 * w, "pool {p} vs wall {w}");
    }
}

/// The LV is not simply "the brightest blob": on a sizeable share of the
/// contoured frames the brightest 5×5 neighbourhood lies outside the LV
/// (RV, aorta, fat near the coil).
#[test]
fn lv_is_often_not_the_brightest_region() {
    let images = contoured_images();
    let outside = images
        .iter()
        .filter(|(inner, _, pixels)| {
            let mut best = (f32::MIN, 0.0, 0.0);
            for y in 2..254 {
                for x in 2..254 {
                    let mut sum = 0.0;
                    for dy in 0..5 {
                        for dx in 0..5 {
                            sum += pixels[(y + dy - 2) * 256 + x + dx - 2];
                        }
                    }
                    if sum > best.0 {
                        best = (sum, x as f64, y as f64);
                    }
                }
            }
            !inside(inner, best.1, best.2)
        })
        .count();
    assert!(
        outside * 4 >= images.len(),
        "{outside} of {} frames have their brightest spot outside the LV",
        images.len()
    );
}

#[test]
fn too_many_cases_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = generate(dir.path(), &PhantomOptions { cases: 46, seed: 1 }).unwrap_err();
    assert!(err.to_string().contains("45"), "{err}");
    assert!(matches!(
        generate(dir.path(), &PhantomOptions { cases: 0, seed: 1 }),
        Err(PhantomError::Cases { .. })
    ));
}

#[test]
fn helpers() {
    assert_eq!(padded_case("SC-HF-I-1"), "SC-HF-I-01");
    assert_eq!(padded_case("SC-HYP-40"), "SC-HYP-40");
    assert_eq!(contour_text(&[(109.5, 146.0), (3.0, 4.5)]), "109.50 146.00\n3.00 4.50\n");
    assert_eq!(written_phases(8), vec![0, 4, 8, 15]);
    assert_ne!(mix(1, &[2, 3]), mix(1, &[3, 2]));
}
