//! lvc-data: Sunnybrook DICOM + contour import, the dataset store, and a
//! cardiac MRI phantom written in the same layout.

pub mod contour;
pub mod raster;
pub mod sunnybrook;
