//! lvc-compiler: prototxt text → typed layers with Caffe's defaults → petgraph
//! IR → shape facts and diagnostics. Never depends on libtorch.

pub mod classes;
pub mod diag;
pub mod ir;
pub mod memory;
pub mod ops;
pub mod schema;
pub mod source;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use schema::{load_net, load_solver, LoadOptions};
pub use source::SourceFile;
