//! Sunnybrook contour files (`x y` per line) as the importer reads them,
//! then rasterised as the importer does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(contour) =
        lvc_data::contour::contour_from_bytes(Path::new("fuzz-icontour-manual.txt"), data)
    {
        let _ = contour.check_inside(256, 256);
        let _ = contour.xy();
    }
});
