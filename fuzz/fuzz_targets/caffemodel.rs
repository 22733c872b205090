//! `.caffemodel` (binary NetParameter, V0/V1/V2) as `--weights` reads it,
//! and the same bytes as a Caffe `.solverstate` (`train --snapshot`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) =
        lvc_runtime::weights::read_caffemodel_bytes(data, Path::new("fuzz.caffemodel"))
    {
        let _ = file.non_finite();
        let _ = file.param_count();
    }
    // The harness's own scratch files: only a broken machine fails to write
    // them, and the panic stops the run there.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.solverstate");
    std::fs::write(&path, data).unwrap();
    let _ = lvc_runtime::solver::read_caffe_state(&path);
});
