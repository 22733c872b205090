//! Typed Caffe schema: descriptors of caffe.proto messages, validation of a
//! parse tree against them, V0/V1 upgrades and the typed net/solver views.

pub mod net;
pub mod view;

pub use net::{LayerDef, NetDef, NetFormat, NetState, NetStateRule, ParamSpec, Phase};
pub use view::{ParamView, Spanned};
