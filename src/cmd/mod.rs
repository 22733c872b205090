//! One module per subcommand.

pub mod dataset;
pub mod weights;
