//! A dataset's `manifest.json` as `Dataset::open` checks it: format,
//! version, types and every name joined into a path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = lvc_data::store::Manifest::from_json(data, Path::new("manifest.json")) {
        // What passed the check is safe to join under an output folder: a
        // refused join here is the bug this target looks for, so it panics
        // for libFuzzer to report.
        for record in &manifest.records {
            let joined = lvc_fsio::join_component(Path::new("out"), &record.case).unwrap();
            assert_eq!(joined.parent(), Some(Path::new("out")));
        }
    }
});
