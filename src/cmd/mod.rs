//! One module per subcommand.

/// `--format` / `--log-format` of the commands that print for people or for tools.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Human,
    Json,
}

pub mod check;
pub mod dataset;
mod dataset_inspect;
pub mod device_args;
pub mod dicom;
pub mod dot;
pub mod evaluate;
pub mod fmt;
pub mod forward;
pub mod infer;
pub mod lsp;
pub mod netargs;
pub mod phantom;
pub mod print;
pub mod report;
pub mod serve;
pub mod set_classes;
pub mod time;
pub mod train;
pub mod train_dataset;
pub mod weights;
mod weights_report;
