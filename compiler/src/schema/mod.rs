//! Typed Caffe schema: descriptors of caffe.proto messages, validation of a
//! parse tree against them, V0/V1 upgrades and the typed net/solver views.

pub mod extract;
pub mod net;
pub mod view;

use lvc_grammar::Message;

pub use extract::extract_net;
pub use net::{LayerDef, NetDef, NetFormat, NetState, NetStateRule, ParamSpec, Phase};
pub use view::{ParamView, Spanned};

use crate::diag::Diagnostics;

/// How strictly a file is held to BVLC caffe.proto.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Unknown fields (from forked Caffe builds: `roi_pooling_param`,
    /// `bn_param`, …) become warnings and are dropped instead of errors.
    pub lenient: bool,
}

/// A parsed `NetParameter` tree → typed net. Returns `None` when any error
/// was found; warnings come back with a net.
pub fn net_from_tree(tree: Message, _opts: &LoadOptions) -> (Option<NetDef>, Diagnostics) {
    let mut diags = Diagnostics::new();
    let net = extract_net(&tree, NetFormat::Current, &mut diags);
    if diags.has_errors() {
        (None, diags)
    } else {
        (Some(net), diags)
    }
}
