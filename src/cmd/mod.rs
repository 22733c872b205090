//! One module per subcommand.

pub mod check;
pub mod dataset;
pub mod dicom;
pub mod dot;
pub mod forward;
pub mod phantom;
pub mod netargs;
pub mod print;
pub mod time;
pub mod train;
pub mod weights;
