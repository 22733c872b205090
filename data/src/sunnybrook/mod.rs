//! The Sunnybrook LV challenge layout: case names, SAX series, import.

pub mod import;
pub mod problem;
pub mod sax_map;
