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
