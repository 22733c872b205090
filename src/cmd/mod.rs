//! One module per subcommand.

pub mod check;
pub mod dataset;
pub mod dicom;
pub mod dot;
pub mod evaluate;
pub mod forward;
pub mod infer;
pub mod phantom;
pub mod netargs;
pub mod print;
pub mod report;
pub mod segment;
pub mod set_classes;
pub mod time;
pub mod train;
pub mod train_dataset;
pub mod weights;
