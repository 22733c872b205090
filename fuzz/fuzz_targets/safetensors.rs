//! lvc's safetensors snapshots as `--weights` reads them, and the same
//! bytes as an lvc solver state (`--resume`, `train --snapshot`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) =
        lvc_runtime::weights::read_safetensors_bytes(data, Path::new("fuzz.safetensors"))
    {
        let _ = file.weights.non_finite();
    }
    // The harness's own scratch files: only a broken machine fails to write
    // them, and the panic stops the run there.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzz.state.safetensors");
    std::fs::write(&path, data).unwrap();
    let _ = lvc_runtime::solver::read_state(&path);
});
