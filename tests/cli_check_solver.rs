//! `lvc check` on solver files: the SolverParameter's own diagnostics, the
//! nets it names checked as nets (resolved as `lvc train` resolves them,
//! their diagnostics under their own path), the JSON report, and folders.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod common;

use std::path::Path;

use common::{lvc, lvc_in, text};
use serde_json::Value;

const NET: &str = r#"name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 2 kernel_size: 3 } }
"#;

const SOLVER: &str = "net: \"net.prototxt\"\nbase_lr: 0.01\nlr_policy: \"step\"\ngamma: 0.1\nstepsize: 100\ntest_iter: 1\ntest_interval: 10\ntype: \"Adam\"\n";

fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

fn json(args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["check", "--format", "json"];
    all.extend_from_slice(args);
    let out = lvc(&all);
    let report = serde_json::from_str(&text(&out.stdout)).expect("json report");
    (out.status.code(), report)
}

fn codes(entry: &Value) -> Vec<String> {
    entry["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| d["code"].as_str().expect("code").to_string())
        .collect()
}

#[test]
fn a_valid_solver_and_its_nets_check_clean() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "net.prototxt", NET);
    let solver = write(dir.path(), "solver.prototxt", SOLVER);
    // Run from elsewhere: the net is found next to the solver.
    let out = lvc(&["check", &solver]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(!stdout.contains("not_a_net"), "{stdout}");
    let net = dir.path().join("net.prototxt").display().to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{solver}: 0 errors, 0 warnings (solver)"),
            format!("{net}: 0 errors, 0 warnings, 2 layers (`net` of {solver}, TRAIN)"),
            format!("{net}: 0 errors, 0 warnings, 2 layers (`net` of {solver}, TEST)"),
        ]
    );
}

#[test]
fn a_net_path_also_resolves_from_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "models/net.prototxt", NET);
    write(
        dir.path(),
        "solvers/solver.prototxt",
        &SOLVER.replace("net.prototxt", "models/net.prototxt"),
    );
    let out = lvc_in(&["check", "solvers/solver.prototxt"], dir.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("models/net.prototxt: 0 errors, 0 warnings, 2 layers (`net` of solvers/solver.prototxt, TRAIN)"), "{stdout}");
}

#[test]
fn a_net_s_problems_are_reported_against_the_net_file() {
    let dir = tempfile::tempdir().unwrap();
    let net =
        write(dir.path(), "net.prototxt", &NET.replace("bottom: \"data\"", "bottom: \"dta\""));
    let solver = write(dir.path(), "solver.prototxt", SOLVER);
    let out = lvc(&["check", &solver]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("╭─[{net}:3:")), "{stdout}");
    assert!(stdout.contains(&format!("{solver}: 0 errors, 0 warnings (solver)")), "{stdout}");
    let (code, report) = json(&[&solver]);
    assert_eq!(code, Some(1));
    let files = report["files"].as_array().unwrap();
    assert_eq!(files[0]["path"], solver.as_str());
    assert_eq!(files[0]["ok"], true);
    assert_eq!(files[1]["path"], net.as_str());
    assert_eq!(files[1]["ok"], false);
    assert!(
        codes(&files[1]).iter().all(|c| c.starts_with("lvc::graph::")),
        "{:?}",
        codes(&files[1])
    );
    assert_eq!(files[1]["diagnostics"][0]["line"], 3);
}

#[test]
fn a_misspelled_field_gets_a_did_you_mean() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "net.prototxt", NET);
    let solver = write(dir.path(), "solver.prototxt", &SOLVER.replace("base_lr", "base_lrr"));
    let out = lvc(&["check", &solver]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("lvc::schema::unknown_field"), "{stdout}");
    assert!(stdout.contains("SolverParameter has no field named `base_lrr`"), "{stdout}");
    assert!(stdout.contains("unknown field"), "{stdout}");
    assert!(stdout.contains("help: did you mean `base_lr`?"), "{stdout}");
    let (_, report) = json(&[&solver]);
    let d = &report["files"][0]["diagnostics"][0];
    assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(2), Some(1)));
}

#[test]
fn a_bad_lr_policy_and_a_missing_setting() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "net.prototxt", NET);
    let typo = write(dir.path(), "typo.prototxt", &SOLVER.replace("\"step\"", "\"stpe\""));
    let out = lvc(&["check", &typo]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("Unknown learning rate policy: stpe"), "{stdout}");
    assert!(stdout.contains("did you mean `step`?"), "{stdout}");
    // The nets are still checked.
    assert!(stdout.contains("2 layers (`net` of"), "{stdout}");

    let inv = write(dir.path(), "inv.prototxt", &SOLVER.replace("\"step\"", "\"inv\""));
    let (code, report) = json(&[&inv]);
    assert_eq!(code, Some(1));
    let solver = &report["files"][0];
    assert_eq!(codes(solver), ["lvc::schema::lr_policy"]);
    let d = &solver["diagnostics"][0];
    assert_eq!(
        d["message"],
        "lr_policy \"inv\" needs `power`: unset it is 0 and the rate never changes"
    );
    assert_eq!(d["help"], "add `power: 0.75` to the solver");
    assert_eq!(d["line"], 3);

    let step = write(dir.path(), "step.prototxt", &SOLVER.replace("stepsize: 100\n", ""));
    let out = lvc(&["check", &step]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("lr_policy \"step\" needs `stepsize`"), "{stdout}");
    assert!(stdout.contains("this policy"), "{stdout}");
}

#[test]
fn a_missing_net_file_is_a_diagnostic_at_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let solver =
        write(dir.path(), "solver.prototxt", &SOLVER.replace("net.prototxt", "nowhere.prototxt"));
    let out = lvc(&["check", &solver]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("lvc::solver::net_not_found"), "{stdout}");
    assert!(stdout.contains("net file 'nowhere.prototxt' not found"), "{stdout}");
    assert!(stdout.contains("`net` names no file"), "{stdout}");
    let (code, report) = json(&[&solver]);
    assert_eq!(code, Some(1));
    let files = report["files"].as_array().unwrap();
    // Once, though the net serves as the train and the test net.
    assert_eq!(files.len(), 1);
    assert_eq!(codes(&files[0]), ["lvc::solver::net_not_found"]);
    let d = &files[0]["diagnostics"][0];
    assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(1), Some(6)));
}

#[test]
fn json_report_for_a_solver() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "net.prototxt", NET);
    write(dir.path(), "test.prototxt", NET);
    let solver = write(
        dir.path(),
        "solver.prototxt",
        "train_net: \"net.prototxt\"\ntest_net: \"test.prototxt\"\ntest_iter: 2\ntest_interval: 5\nlr_policy: \"fixed\"\ntest_state { stage: \"val\" level: 2 }\n",
    );
    let (code, report) = json(&[&solver]);
    assert_eq!(code, Some(0), "{report}");
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    assert_eq!(keys(&files[0]), ["diagnostics", "kind", "ok", "path", "summary"]);
    assert_eq!(files[0]["kind"], "solver");
    assert_eq!(files[0]["summary"]["layers"], 0);
    for f in &files[1..] {
        assert_eq!(keys(f), ["checked_for", "diagnostics", "ok", "path", "summary"]);
        assert_eq!(f["summary"]["layers"], 2);
        assert_eq!(f["summary"]["outputs"][0]["shape"], serde_json::json!([1, 2, 6, 6]));
    }
    assert_eq!(
        files[1]["checked_for"],
        serde_json::json!({"solver": solver, "field": "train_net", "phase": "TRAIN", "stages": [], "level": 0})
    );
    assert_eq!(
        files[2]["checked_for"],
        serde_json::json!({"solver": solver, "field": "test_net", "phase": "TEST", "stages": ["val"], "level": 2})
    );
    assert!(files[2]["path"].as_str().unwrap().ends_with("test.prototxt"));
    // A net given directly keeps the documented shape.
    let (_, net_report) = json(&[&dir.path().join("net.prototxt").display().to_string()]);
    assert_eq!(keys(&net_report["files"][0]), ["diagnostics", "ok", "path", "summary"]);
}

#[test]
fn an_inline_net_is_checked_against_the_solver_file() {
    let dir = tempfile::tempdir().unwrap();
    let inline = NET.replace("bottom: \"data\"", "bottom: \"dta\"");
    let solver = write(
        dir.path(),
        "solver.prototxt",
        &format!("lr_policy: \"fixed\"\nnet_param {{\n{inline}}}\n"),
    );
    let (code, report) = json(&[&solver]);
    assert_eq!(code, Some(1));
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[1]["path"], solver.as_str());
    assert_eq!(files[1]["checked_for"]["field"], "net_param");
    assert_eq!(files[1]["ok"], false);
    assert_eq!(files[1]["diagnostics"][0]["line"], 5);
}

#[test]
fn a_folder_checks_every_prototxt_under_it_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("models");
    write(&root, "b/net.prototxt", NET);
    write(&root, "b/solver.prototxt", SOLVER);
    write(&root, "a.prototxt", NET);
    write(&root, "notes.txt", "not a net");
    let elsewhere = tempfile::tempdir().unwrap();
    write(elsewhere.path(), "linked/hidden.prototxt", NET);
    std::os::unix::fs::symlink(elsewhere.path().join("linked"), root.join("link")).unwrap();
    std::os::unix::fs::symlink(
        elsewhere.path().join("linked/hidden.prototxt"),
        root.join("c.prototxt"),
    )
    .unwrap();
    let (code, report) = json(&[&root.display().to_string()]);
    assert_eq!(code, Some(0), "{report}");
    let paths: Vec<String> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let p = f["path"].as_str().unwrap();
            p.strip_prefix(&format!("{}/", root.display())).unwrap_or(p).to_string()
        })
        .collect();
    assert_eq!(
        paths,
        ["a.prototxt", "b/net.prototxt", "b/solver.prototxt", "b/net.prototxt", "b/net.prototxt"]
    );
    let out = lvc(&["check", &root.display().to_string()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!text(&out.stdout).contains("hidden"));
}

/// Every corpus solver is checked as a solver (none is refused as "not a
/// NetParameter"): from the workspace root their nets, named relative to
/// their repository's root, are mostly not found, and that is a diagnostic
/// at the `net:` value, never a crash.
#[test]
fn corpus_solvers_are_checked_as_solvers() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let manifest = std::fs::read_to_string(corpus.join("manifest.tsv")).expect("manifest");
    let solvers: Vec<String> = manifest
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols.get(1) == Some(&"solver")).then(|| corpus.join(cols[0]).display().to_string())
        })
        .collect();
    assert_eq!(solvers.len(), 74);
    let args: Vec<&str> = solvers.iter().map(String::as_str).collect();
    let (code, report) = json(&args);
    assert_eq!(code, Some(1));
    let files = report["files"].as_array().unwrap();
    let entries: Vec<&Value> = files.iter().filter(|f| f["kind"] == "solver").collect();
    assert_eq!(entries.len(), 74);
    for f in files {
        for c in codes(f) {
            assert_ne!(c, "lvc::schema::not_a_net", "{}", f["path"]);
        }
    }
    for f in entries {
        for c in codes(f) {
            assert!(
                c == "lvc::solver::net_not_found" || c == "lvc::schema::inline_v1",
                "{}: {c}",
                f["path"]
            );
        }
    }
}
