//! The checked `.npy` reader (dataset tensors, `--input`, `--feed`): from
//! bytes and, through a file, as the commands read it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lvc_data::npy::{parse_npy, parse_npy_f32, read_npy, read_npy_f32};

fuzz_target!(|data: &[u8]| {
    let from_bytes = parse_npy_f32(data);
    if let Ok((shape, values)) = &from_bytes {
        assert_eq!(shape.iter().product::<usize>(), values.len());
    }
    if let Ok(array) = parse_npy(data) {
        assert_eq!(array.shape.iter().product::<usize>(), array.data.len());
    }
    // The file readers check the header against the file's length, not
    // the bytes in memory: both must agree.
    // The harness's own scratch files: only a broken machine fails to write
    // them, and the panic stops the run there.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    std::fs::write(&path, data).unwrap();
    assert_eq!(read_npy_f32(&path).is_ok(), from_bytes.is_ok());
    let _ = read_npy(&path);
});
