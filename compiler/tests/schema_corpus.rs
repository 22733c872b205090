//! Every corpus file loads: nets with `load_net`, solvers with `load_solver`
//! (by the manifest's kind). Lenient mode accepts all of them; strict mode
//! rejects exactly the files protobuf's strict parse rejected (forked-Caffe
//! fields, the SSD label map).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod common;

use common::{codes, corpus_manifest, read_corpus_file, CorpusEntry};
use lvc_compiler::schema::solver::NetSource;
use lvc_compiler::schema::{load_net, load_solver, load_solver_nets, LoadOptions, NetFormat};

fn nets() -> Vec<CorpusEntry> {
    corpus_manifest().into_iter().filter(|e| e.kind == "net").collect()
}

/// Loads a corpus file as what the manifest says it is (solvers as
/// solvers, everything else as a net); `Ok` when no error was reported.
fn load_entry(entry: &CorpusEntry, lenient: bool) -> Result<(), Vec<String>> {
    let source = read_corpus_file(&entry.path);
    let opts = LoadOptions { lenient };
    let (loaded, diags) = if entry.kind == "solver" {
        let (solver, diags) = load_solver(&source, &opts);
        (solver.is_some(), diags)
    } else {
        let (net, diags) = load_net(&source, &opts);
        (net.is_some(), diags)
    };
    if loaded && !diags.has_errors() {
        Ok(())
    } else {
        Err(codes(&diags))
    }
}

/// Strict mode fails exactly where protobuf's strict parse failed: 15
/// `roi_pooling_param` and 5 `smooth_l1_loss_param` py-faster-rcnn files
/// and the SSD label map.
#[test]
fn strict_mode_fails_exactly_the_files_protobuf_rejects() {
    let entries = corpus_manifest();
    assert_eq!(entries.len(), 207);
    let mut mismatches = Vec::new();
    let mut failed = 0;
    for entry in &entries {
        let expect_ok = entry.strict_bvlc_parse == "ok";
        match (load_entry(entry, false), expect_ok) {
            (Ok(()), true) => {}
            (Err(diags), false) => {
                failed += 1;
                let field = entry
                    .strict_bvlc_parse
                    .split("no field named ")
                    .nth(1)
                    .unwrap_or("")
                    .trim_end_matches('.');
                let wanted = if field == "\"item\"" {
                    "lvc::schema::not_a_net"
                } else {
                    "lvc::schema::unknown_field"
                };
                if !diags.iter().any(|d| {
                    d.starts_with(wanted)
                        && (wanted.ends_with("not_a_net") || d.contains(field.trim_matches('"')))
                }) {
                    mismatches.push(format!(
                        "{}: wanted {wanted} for {field}, got {diags:?}",
                        entry.path
                    ));
                }
            }
            (result, _) => mismatches.push(format!(
                "{} (protobuf: {}): {result:?}",
                entry.path, entry.strict_bvlc_parse
            )),
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert_eq!(failed, 21);
}

/// Lenient mode loads every net and solver; only the label map (not a net
/// at all) is still refused.
#[test]
fn lenient_mode_loads_every_net_and_solver() {
    let mut failures = Vec::new();
    for entry in corpus_manifest() {
        match (load_entry(&entry, true), entry.kind.as_str()) {
            (Ok(()), "net" | "solver") => {}
            (Err(diags), kind) if kind.starts_with("other") && diags.iter().all(|d| d.starts_with("lvc::schema::not_a_net: this is not a NetParameter: it looks like a LabelMap")) => {}
            (result, kind) => failures.push(format!("{} ({kind}): {result:?}", entry.path)),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn all_nets_load_leniently_with_layers() {
    let mut failures = Vec::new();
    for entry in nets() {
        let source = read_corpus_file(&entry.path);
        let (net, diags) = load_net(&source, &LoadOptions { lenient: true });
        match net {
            Some(net) if !net.layers.is_empty() && diags.error_count() == 0 => {
                let expected = match entry.format.as_str() {
                    "V0" => NetFormat::V0,
                    "V1" => NetFormat::V1,
                    _ => NetFormat::Current,
                };
                if net.format != expected {
                    failures.push(format!(
                        "{}: format {:?}, manifest says {}",
                        entry.path, net.format, entry.format
                    ));
                }
            }
            _ => failures.push(format!("{}: {:?}", entry.path, codes(&diags))),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Lenient mode warns only about forked-Caffe fields: the two the README
/// lists, plus caffe-fast-rcnn's `DropoutParameter.scale_train` in the ZF
/// nets (protobuf stops at the first unknown field, so the README's strict
/// run never reached it).
#[test]
fn lenient_warnings_are_the_fork_fields() {
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for entry in nets() {
        let source = read_corpus_file(&entry.path);
        let (_, diags) = load_net(&source, &LoadOptions { lenient: true });
        for d in diags.iter() {
            assert_eq!(d.code, "lvc::schema::unknown_field", "{}: {}", entry.path, d.message);
            *seen.entry(d.message.clone()).or_default() += 1;
        }
    }
    let expected: std::collections::BTreeMap<String, usize> = [
        (
            "LayerParameter has no field named `roi_pooling_param`; keeping it unchecked"
                .to_string(),
            20,
        ),
        (
            "LayerParameter has no field named `smooth_l1_loss_param`; keeping it unchecked"
                .to_string(),
            5,
        ),
        ("DropoutParameter has no field named `scale_train`; keeping it unchecked".to_string(), 8),
    ]
    .into();
    assert_eq!(seen, expected);
}

/// Solvers load in both modes; every file-named net resolves to an existing
/// corpus file next to the solver, and the BVLC consolidated solver's inline
/// V1 net is upgraded with the `inline_v1` warning.
#[test]
fn all_solvers_load() {
    let mut failures = Vec::new();
    let solvers: Vec<CorpusEntry> =
        corpus_manifest().into_iter().filter(|e| e.kind == "solver").collect();
    assert!(solvers.len() > 70);
    let mut inline_warnings = 0;
    for entry in &solvers {
        let source = read_corpus_file(&entry.path);
        for lenient in [false, true] {
            let (solver, diags) = load_solver(&source, &LoadOptions { lenient });
            let unexpected: Vec<String> = diags
                .iter()
                .filter(|d| d.is_error() || d.code != "lvc::schema::inline_v1")
                .map(|d| format!("{}: {}", d.code, d.message))
                .collect();
            if solver.is_none() || !unexpected.is_empty() {
                failures.push(format!("{} (lenient {lenient}): {unexpected:?}", entry.path));
                continue;
            }
            inline_warnings += diags.iter().filter(|d| d.code == "lvc::schema::inline_v1").count();
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Two copies of lenet_consolidated_solver (HEAD and rc), each loaded twice.
    assert_eq!(inline_warnings, 4);
}

/// `load_solver_nets` (what `lvc check` checks a solver's nets from) gives
/// every solver's train net first, in TRAIN, then its test-net instances in
/// TEST (unless a `test_state` says otherwise).
#[test]
fn every_solver_names_its_nets() {
    let mut test_instances = 0;
    for entry in corpus_manifest().into_iter().filter(|e| e.kind == "solver") {
        let source = read_corpus_file(&entry.path);
        let (solver, nets, _) = load_solver_nets(&source, &LoadOptions::default());
        let solver = solver.expect("every corpus solver loads");
        let (train, tests) =
            nets.split_first().unwrap_or_else(|| panic!("{}: no nets", entry.path));
        assert!(
            ["net", "net_param", "train_net", "train_net_param"].contains(&train.field),
            "{}: {}",
            entry.path,
            train.field
        );
        assert_eq!(train.state, solver.train_state, "{}", entry.path);
        assert_eq!(tests.len(), solver.test_nets.len(), "{}", entry.path);
        test_instances += tests.len();
    }
    assert!(test_instances > 40, "{test_instances} test-net instances");
}

#[test]
fn consolidated_solver_upgrades_its_inline_v1_net() {
    let source =
        read_corpus_file("prototxt/BVLC__caffe/examples/mnist/lenet_consolidated_solver.prototxt");
    let (solver, diags) = load_solver(&source, &LoadOptions::default());
    let solver = solver.expect("the consolidated solver loads");
    assert_eq!(codes(&diags).len(), 1, "{:?}", codes(&diags));
    let NetSource::Inline(net) = &solver.train_net else { panic!("net_param is inline") };
    assert_eq!(net.format, NetFormat::V1);
    let kinds: Vec<&str> = net.layers.iter().map(|l| l.kind.value.as_str()).collect();
    assert!(kinds.contains(&"Convolution") && kinds.contains(&"SoftmaxWithLoss"), "{kinds:?}");
    // test_iter ×2 with test_state { stage: 'test-on-test' / 'test-on-train' }.
    let stages: Vec<Vec<String>> =
        solver.test_nets.iter().map(|t| t.state.stages.clone()).collect();
    assert_eq!(stages.len(), 2);
    assert!(stages.iter().all(|s| s.len() == 1), "{stages:?}");
}
