//! A run folder's files as `lvc evaluate`, `lvc infer` and `lvc report` read
//! them: the input is split at NUL bytes into run.json, metrics.json,
//! evaluation.json and one overlay's result.json, written into a run
//! folder, which is then parsed and reported (curves drawn, HTML written).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |&b| b == 0);
    let run_json = parts.next().unwrap_or_default();
    let metrics = parts.next().unwrap_or_default();
    let evaluation = parts.next().unwrap_or_default();
    let result = parts.next().unwrap_or_default();
    let _ = lvc::cmd::segment::RunConfig::from_json(run_json, Path::new("run.json"));
    // The harness's own scratch files: only a broken machine fails to write
    // them, and the panic stops the run there.
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    std::fs::write(run.join("run.json"), run_json).unwrap();
    std::fs::write(run.join("metrics.json"), metrics).unwrap();
    std::fs::write(run.join("evaluation.json"), evaluation).unwrap();
    let overlay = run.join("overlays/SC-N-03-0007");
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(overlay.join("result.json"), result).unwrap();
    // A 1×1 PNG, so that a parsed result is shown.
    std::fs::write(overlay.join("overlay.png"), b"\x89PNG\r\n\x1a\n").unwrap();
    let _ = lvc::report::write_run_report(run, None, None);
});
