//! One module per subcommand.

pub mod check;
pub mod dataset;
pub mod dot;
pub mod forward;
pub mod netargs;
pub mod print;
pub mod weights;
