//! The Sunnybrook LV challenge layout: case names, SAX series, import.

pub mod sax_map;
pub mod import;
pub mod problem;
