//! Typed Caffe schema: descriptors of caffe.proto messages, validation of a
//! parse tree against them, V0/V1 upgrades and the typed net/solver views.
//!
//! Entry points: [`load_net`] and [`load_solver`]
//! (parse + validate + upgrade + extract); [`load_net_tree`] stops before
//! extraction and gives the upgraded tree ([`print::to_prototxt`] writes it).
//!
//! Diagnostic codes:
//!
//! | code | severity | what |
//! |---|---|---|
//! | `lvc::parse::*` | error | the text is not protobuf text format (from lvc-grammar) |
//! | `lvc::schema::not_a_net` / `not_a_solver` | error | the file holds another message (LabelMap, solver, net) |
//! | `lvc::schema::unknown_field` | error (warning when lenient) | no such field; did-you-mean |
//! | `lvc::schema::type` | error | value of the wrong kind (string for an int, scalar for a message, …) |
//! | `lvc::schema::enum` | error | unknown enum value or number; did-you-mean |
//! | `lvc::schema::range` | error | integer outside int32/uint32/int64/uint64 |
//! | `lvc::schema::duplicate` | error | non-repeated field given twice |
//! | `lvc::schema::required` | error | proto2 required field missing (`ClipParameter`) |
//! | `lvc::schema::mixed_format` | error | both `layer` and `layers` |
//! | `lvc::schema::v0_type` / `v0_padding` | error | V0 upgrade impossible |
//! | `lvc::schema::v0_upgrade` / `v0_leftover` | warning | V0 field dropped by the upgrade |
//! | `lvc::schema::input_shape` | error | an `input` without its dims/shape |
//! | `lvc::schema::input_without_name` | warning | `input_dim`/`input_shape` without `input` |
//! | `lvc::schema::include_exclude` | error | a layer with both include and exclude rules |
//! | `lvc::schema::inline_v1` | warning | solver's inline net needed an upgrade Caffe would not do |
//! | `lvc::schema::solver_type` / `solver_type_conflict` / `lr_policy` / `regularization` | error | solver settings Caffe rejects |
//! | `lvc::schema::solver_net` / `solver_test_nets` | error | train/test net fields as `Solver::Init` checks them |
//! | `lvc::solver::net_not_found` | error | a net file the solver names is not there (from `lvc check`) |

pub mod descriptor;
pub mod extract;
pub mod kind;
pub mod net;
pub mod print;
pub mod solver;
pub mod suggest;
pub mod upgrade;
pub mod validate;
pub mod view;

use lvc_grammar::{Message, ParseError};

pub use extract::extract_net;
pub use net::{LayerDef, NetDef, NetFormat, NetState, NetStateRule, ParamSpec, Phase};
pub use solver::{load_solver, load_solver_nets, SolverDef, SolverNet};
pub use upgrade::UpgradeReport;
pub use view::{ParamView, Spanned};

use crate::diag::{Diagnostic, Diagnostics};
use crate::source::SourceFile;

/// How strictly a file is held to BVLC caffe.proto.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Unknown fields (from forked Caffe builds: `roi_pooling_param`,
    /// `bn_param`, …) become warnings and are dropped instead of errors.
    pub lenient: bool,
}

/// Reads a `.prototxt` net: parse, validate against `NetParameter`, upgrade
/// V0/V1 to the current format, extract the typed layers. Returns `None`
/// when any error was found; warnings come back alongside a net.
pub fn load_net(source: &SourceFile, opts: &LoadOptions) -> (Option<NetDef>, Diagnostics) {
    let (tree, mut diags) = load_net_tree(source, opts);
    let Some((tree, report)) = tree else {
        return (None, diags);
    };
    let net = extract_net(&tree, report.format, &mut diags);
    finish(net, diags)
}

/// Parse, validate and upgrade, stopping before extraction: the upgraded
/// current-format tree (see [`print::to_prototxt`]) and what was upgraded.
pub fn load_net_tree(
    source: &SourceFile,
    opts: &LoadOptions,
) -> (Option<(Message, UpgradeReport)>, Diagnostics) {
    let mut diags = Diagnostics::new();
    let tree = match lvc_grammar::parse(&source.text) {
        Ok(tree) => tree,
        Err(err) => return (None, parse_error_diagnostics(&err)),
    };
    if let Some(diag) = kind::not_a_net(&tree) {
        diags.push(diag);
        return (None, diags);
    }
    match prepare_net_tree(tree, opts, &mut diags) {
        Some(upgraded) if !diags.has_errors() => (Some(upgraded), diags),
        _ => (None, diags),
    }
}

/// Validates and upgrades a `NetParameter` tree (from a file or embedded in
/// a solver). `None` when the upgrade could not be done; validation errors
/// are only reported, the rejected fields having been dropped, so that the
/// later stages still run on a sound tree and every problem shows at once.
pub(crate) fn prepare_net_tree(
    mut tree: Message,
    opts: &LoadOptions,
    diags: &mut Diagnostics,
) -> Option<(Message, UpgradeReport)> {
    validate::validate(&mut tree, &descriptor::NET_PARAMETER, opts, diags);
    let report = upgrade::upgrade_net(&mut tree, diags)?;
    Some((tree, report))
}

/// `Some(value)` only when no error was reported.
fn finish<T>(value: T, diags: Diagnostics) -> (Option<T>, Diagnostics) {
    if diags.has_errors() {
        (None, diags)
    } else {
        (Some(value), diags)
    }
}

/// A parse error as lvc diagnostics (same code, labels and help).
pub fn parse_error_diagnostics(err: &ParseError) -> Diagnostics {
    let mut diag = Diagnostic::error(err.code(), err.message()).with_help(err.help());
    for label in err.labels() {
        diag = diag.with_label(label.span, label.text.clone());
    }
    let mut diags = Diagnostics::new();
    diags.push(diag);
    diags
}
