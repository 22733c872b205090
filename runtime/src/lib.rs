//! lvc-runtime: lowering of the lvc IR to libtorch.

pub use tch;
