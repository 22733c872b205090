//! Every corpus file loads: nets with `load_net`, solvers with `load_solver`
//! (by the manifest's kind). Lenient mode accepts all of them; strict mode
//! rejects exactly the files protobuf's strict parse rejected (forked-Caffe
//! fields, the SSD label map).

mod common;

use common::{codes, corpus_manifest, read_corpus_file, CorpusEntry};
use lvc_compiler::schema::{load_net, LoadOptions, NetFormat};

fn nets() -> Vec<CorpusEntry> {
    corpus_manifest().into_iter().filter(|e| e.kind == "net").collect()
}

#[test]
fn current_format_nets_load_strictly() {
    let mut failures = Vec::new();
    let entries: Vec<CorpusEntry> = nets().into_iter().filter(|e| e.format == "current").collect();
    assert!(entries.len() > 90, "manifest lists the current-format nets");
    for entry in &entries {
        let source = read_corpus_file(&entry.path);
        let (net, diags) = load_net(&source, &LoadOptions { lenient: false });
        let expect_ok = entry.strict_bvlc_parse == "ok";
        match (&net, expect_ok) {
            (Some(net), true) => {
                assert_eq!(net.format, NetFormat::Current, "{}", entry.path);
                assert!(!net.layers.is_empty(), "{} has layers", entry.path);
            }
            (None, false) => {
                assert!(
                    diags.iter().any(|d| d.code == "lvc::schema::unknown_field"),
                    "{}: {:?}",
                    entry.path,
                    codes(&diags)
                );
            }
            _ => failures.push(format!("{} (expected ok: {expect_ok}): {:?}", entry.path, codes(&diags))),
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
                    failures.push(format!("{}: format {:?}, manifest says {}", entry.path, net.format, entry.format));
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
        ("LayerParameter has no field named `roi_pooling_param`; ignoring it".to_string(), 20),
        ("LayerParameter has no field named `smooth_l1_loss_param`; ignoring it".to_string(), 5),
        ("DropoutParameter has no field named `scale_train`; ignoring it".to_string(), 8),
    ]
    .into();
    assert_eq!(seen, expected);
}
