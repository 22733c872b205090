//! The `lvc` command line as a library, shared by its two binaries: `lvc`
//! (`src/main.rs`), which runs every command that needs no libtorch itself and
//! execs `lvc-torch` (`src/bin/lvc-torch.rs`) for the rest, so that checking,
//! printing and importing do not pay libtorch's start-up (~0.8 s, ~470 MB).

#[macro_use]
extern crate lvc_workflow;

pub mod cli;
pub mod cmd;
pub mod report;

/// Printing through `term::shown` (the workflow's, shared with the CLI).
pub use lvc_workflow::term;
pub use lvc_workflow::{err, errln, out, outln};
