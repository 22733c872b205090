//! lvc-runtime: lowering of the lvc IR to libtorch.

pub mod device;
pub mod error;
pub mod exec;
pub mod fill;
pub mod gemm;
pub mod guard;
mod host;
pub mod memory;
pub mod ops;
mod parallel;
pub mod solver;

pub use tch;

pub mod weights;
