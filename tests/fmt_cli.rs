//! `lvc fmt` from the command line: in place, `--check`, stdin, errors that
//! leave files alone, and `--upgrade` of V0/V1 nets to the same graph.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn lvc(args: &[&str], dir: &Path, stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lvc"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const MESSY: &str = "name:'n' # the net\nlayer{name:\"r\";type:\"ReLU\" bottom:\"a\" top:\"a\"}\n\n\nlayer<name:\"s\" type:\"Sigmoid\">\n";
const TIDY: &str = "name: \"n\"  # the net\nlayer {\n  name: \"r\"\n  type: \"ReLU\"\n  bottom: \"a\"\n  top: \"a\"\n}\n\nlayer {\n  name: \"s\"\n  type: \"Sigmoid\"\n}\n";

#[test]
fn check_lists_what_would_change_and_a_run_rewrites_it_in_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("messy.prototxt"), MESSY).unwrap();
    std::fs::write(dir.path().join("tidy.prototxt"), TIDY).unwrap();
    let check = lvc(&["fmt", "--check", "messy.prototxt", "tidy.prototxt"], dir.path(), None);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stderr));
    assert_eq!(text(&check.stdout), "messy.prototxt\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("messy.prototxt")).unwrap(),
        MESSY,
        "--check writes nothing"
    );
    let run = lvc(&["fmt", "messy.prototxt", "tidy.prototxt"], dir.path(), None);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(std::fs::read_to_string(dir.path().join("messy.prototxt")).unwrap(), TIDY);
    let again = lvc(&["fmt", "--check", "messy.prototxt"], dir.path(), None);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(text(&again.stdout), "");
}

#[test]
fn a_dash_reads_stdin_and_writes_stdout_with_the_indent_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = lvc(&["fmt", "-"], dir.path(), Some(MESSY));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), TIDY);
    let four = lvc(&["fmt", "--indent", "4", "-"], dir.path(), Some("a { b: 1 }"));
    assert_eq!(text(&four.stdout), "a {\n    b: 1\n}\n");
    let check = lvc(&["fmt", "--check", "-"], dir.path(), Some(MESSY));
    assert_eq!((check.status.code(), text(&check.stdout)), (Some(1), "<stdin>\n".to_string()));
}

#[test]
fn a_file_that_does_not_parse_is_reported_at_its_place_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let broken = "layer {\n  name: \"a\"\n";
    std::fs::write(dir.path().join("broken.prototxt"), broken).unwrap();
    std::fs::write(dir.path().join("ok.prototxt"), MESSY).unwrap();
    std::fs::write(dir.path().join("latin1.prototxt"), b"name: \"caf\xe9\"\n").unwrap();
    let out = lvc(
        &["fmt", "broken.prototxt", "ok.prototxt", "latin1.prototxt", "missing.prototxt"],
        dir.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("lvc::parse::unclosed") && err.contains("broken.prototxt:1:7"), "{err}");
    assert!(err.contains("lvc::fmt::encoding") && err.contains("latin1.prototxt"), "{err}");
    assert!(err.contains("lvc::io::read") && err.contains("missing.prototxt"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.path().join("broken.prototxt")).unwrap(), broken);
    assert_eq!(std::fs::read(dir.path().join("latin1.prototxt")).unwrap(), b"name: \"caf\xe9\"\n");
    // The others are still formatted.
    assert_eq!(std::fs::read_to_string(dir.path().join("ok.prototxt")).unwrap(), TIDY);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn upgrade_writes_v1_nets_as_layer_blocks_that_compile_to_the_same_graph() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/prototxt/BVLC__caffe@v0.9/examples/lenet/lenet_test.prototxt");
    let original = std::fs::read_to_string(&corpus).unwrap();
    assert!(original.contains("layers {"));
    std::fs::write(dir.path().join("v1.prototxt"), &original).unwrap();
    // Without --upgrade the format stays.
    let plain = lvc(&["fmt", "-"], dir.path(), Some(&original));
    assert!(text(&plain.stdout).contains("layers {"));
    let up = lvc(&["fmt", "--upgrade", "v1.prototxt"], dir.path(), None);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up.stderr));
    let upgraded = std::fs::read_to_string(dir.path().join("v1.prototxt")).unwrap();
    assert!(!upgraded.contains("layers {") && upgraded.contains("layer {"), "{upgraded}");
    assert!(upgraded.contains("type: \"Convolution\""), "{upgraded}");
    std::fs::write(dir.path().join("orig.prototxt"), &original).unwrap();
    // A Data layer says nothing of its shapes: MNIST's are given.
    let shapes = ["--input-shape", "data=100,1,28,28", "--input-shape", "label=100"];
    let before = lvc(&[&["print"][..], &shapes, &["orig.prototxt"]].concat(), dir.path(), None);
    let after = lvc(&[&["print"][..], &shapes, &["v1.prototxt"]].concat(), dir.path(), None);
    assert!(before.status.success(), "{}", text(&before.stderr));
    assert_eq!(
        text(&before.stdout).replace("orig.prototxt", "F"),
        text(&after.stdout).replace("v1.prototxt", "F")
    );
    // A net with errors is not upgraded (its rejected fields would be lost).
    let fork = "layers { name: \"p\" type: POOLING roi_pooling_param { pooled_w: 6 } }\n";
    std::fs::write(dir.path().join("fork.prototxt"), fork).unwrap();
    let refused = lvc(&["fmt", "--upgrade", "fork.prototxt"], dir.path(), None);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("lvc::fmt::upgrade"), "{}", text(&refused.stderr));
    assert_eq!(std::fs::read_to_string(dir.path().join("fork.prototxt")).unwrap(), fork);
}
