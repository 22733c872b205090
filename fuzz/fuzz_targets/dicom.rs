//! DICOM files as `lvc dicom info`, `dataset create` and `infer --image`
//! read them: the header alone, then the first frame decoded (every codec
//! lvc links: RLE, JPEG, JPEG-LS, JPEG 2000, deflate).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.dcm");
    let info = lvc_data::dicom::info_from_bytes(path, data);
    if let Ok(image) = lvc_data::dicom::decode_image(path, data) {
        assert!(info.is_ok(), "decoded what the header reader refused");
        assert_eq!(
            image.pixels.len() as u64,
            u64::from(image.info.rows) * u64::from(image.info.columns)
        );
    }
});
