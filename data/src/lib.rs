//! lvc-data: Sunnybrook DICOM + contour import, the dataset store, and a
//! cardiac MRI phantom written in the same layout.

pub mod atomic;
pub mod contour;
pub mod dicom;
pub mod export;
pub mod npy;
mod parallel;
pub mod phantom;
pub mod raster;
pub mod store;
pub mod sunnybrook;
