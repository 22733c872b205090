//! `lvc set-classes`: rewrites only the coupled values, atomically, and is
//! idempotent; `--dry-run` writes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::path::Path;
use std::process::Command;

fn lvc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lvc")).args(args).output().expect("run lvc")
}

fn copy_model(dir: &Path, name: &str) -> String {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(name);
    let to = dir.join(name);
    std::fs::copy(&from, &to).expect("copy model");
    to.to_string_lossy().into_owned()
}

#[test]
fn fcn8s_to_three_classes_then_nothing_left_to_change() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = copy_model(dir.path(), "fcn8s.prototxt");
    let before = std::fs::read_to_string(&model).expect("read");

    let out = lvc(&["set-classes", "3", &model]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(report.lines().count(), 9, "{report}");
    assert!(
        report
            .lines()
            .any(|l| l.contains("fcn8s.prototxt:") && l.ends_with(": score_fr: num_output 2 → 3")),
        "{report}"
    );
    assert!(report.contains("upscore8: group 2 → 3"), "{report}");

    let after = std::fs::read_to_string(&model).expect("read");
    let changed: Vec<(&str, &str)> =
        before.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 9);
    assert!(changed.iter().all(|(a, b)| a.replace('2', "3") == *b), "{changed:?}");

    // The rewritten net checks clean in every stage with 3-class scores.
    for stage in ["train", "val", "deploy"] {
        let check = lvc(&["check", "--stage", stage, &model]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "{stage}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
    let print = lvc(&["print", "--stage", "deploy", &model]);
    assert!(String::from_utf8_lossy(&print.stdout).contains("score[1×3×256×256]"));

    let again = lvc(&["set-classes", "3", &model]);
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("already 3 classes"));
}

#[test]
fn dry_run_writes_nothing_and_bad_counts_fail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = copy_model(dir.path(), "fcn_alexnet.prototxt");
    let before = std::fs::read(&model).expect("read");
    let out = lvc(&["set-classes", "5", "--dry-run", &model]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    assert_eq!(std::fs::read(&model).expect("read"), before);

    // Counts no net can have are bad arguments (exit 2), the file untouched.
    for bad in ["0", "-3", "2147483648", "99999999999"] {
        let out = lvc(&["set-classes", bad, &model]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("lvc::classes::count"), "{bad}: {stderr}");
        assert!(!stderr.contains("panicked"), "{bad}: {stderr}");
        assert_eq!(std::fs::read(&model).expect("read"), before, "{bad}");
    }

    let missing = lvc(&["set-classes", "2", &dir.path().join("nope.prototxt").to_string_lossy()]);
    assert_eq!(missing.status.code(), Some(2));
}

/// A count that fits num_output but makes FCN-AlexNet's score blobs larger
/// than a Caffe blob can be: refused (exit 2) with the errors `lvc check`
/// would report, and the file is left as it was, so that `lvc check` still
/// passes on it.
#[test]
fn a_count_that_would_break_the_net_is_not_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = copy_model(dir.path(), "fcn_alexnet.prototxt");
    let before = std::fs::read(&model).expect("read");
    let out = lvc(&["set-classes", "1000000000", &model]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("lvc::shape::too_large"), "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "no edit is reported as made: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(std::fs::read(&model).expect("read"), before);
    assert_eq!(lvc(&["check", &model]).status.code(), Some(0));
}
