//! Atomic file writes come from `lvc-fsio`, the one implementation every
//! crate shares; re-exported here for callers that reach it through lvc-data.

pub use lvc_fsio::write_atomic;
