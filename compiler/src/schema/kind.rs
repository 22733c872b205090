//! Which message a file holds: a net, a solver, or something else (an SSD
//! `LabelMap`, …), judged from its top-level fields.

use lvc_grammar::Message;

use super::descriptor::{MessageDesc, NET_PARAMETER, SOLVER_PARAMETER};
use crate::diag::Diagnostic;

/// What a document's top-level fields look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    Net,
    Solver,
    /// Repeated `item { … }`, as in SSD's `labelmap_voc.prototxt`.
    LabelMap,
    Unknown,
}

/// Classifies a parsed document. Layer containers make it a net; fields that
/// only `SolverParameter` has make it a solver; otherwise the message whose
/// fields cover more of the top level wins.
pub fn classify(root: &Message) -> DocumentKind {
    let has = |name: &str| root.fields.iter().any(|f| f.name == name);
    if has("layer") || has("layers") {
        return DocumentKind::Net;
    }
    let count_in =
        |desc: &MessageDesc| root.fields.iter().filter(|f| desc.field(&f.name).is_some()).count();
    let solver_only = root
        .fields
        .iter()
        .filter(|f| {
            SOLVER_PARAMETER.field(&f.name).is_some() && NET_PARAMETER.field(&f.name).is_none()
        })
        .count();
    let net = count_in(&NET_PARAMETER);
    if solver_only > 0 && solver_only >= net {
        return DocumentKind::Solver;
    }
    if net > 0 || root.fields.is_empty() {
        return DocumentKind::Net;
    }
    if has("item") {
        DocumentKind::LabelMap
    } else {
        DocumentKind::Unknown
    }
}

/// What `text` holds; `None` when it is not protobuf text format at all.
pub fn classify_text(text: &str) -> Option<DocumentKind> {
    lvc_grammar::parse(text).ok().map(|root| classify(&root))
}

/// `lvc::schema::not_a_net` when the document is clearly not a net.
pub fn not_a_net(root: &Message) -> Option<Diagnostic> {
    let (what, help) = match classify(root) {
        DocumentKind::Net => return None,
        DocumentKind::Solver => (
            "a SolverParameter (solver settings)",
            "give the net file instead (the solver names it in `net:` or `train_net:`), or load this file as a solver",
        ),
        DocumentKind::LabelMap => (
            "a LabelMap (`item { name label display_name }` entries, as SSD uses)",
            "a label map is not a network; give the net's .prototxt",
        ),
        DocumentKind::Unknown => (
            "some other message: none of its top-level fields belong to NetParameter",
            "a net has `layer { … }` (or V1 `layers { … }`) blocks at the top level",
        ),
    };
    Some(not_this_kind(
        root,
        "lvc::schema::not_a_net",
        &format!("this is not a NetParameter: it looks like {what}"),
        help,
    ))
}

/// `lvc::schema::not_a_solver` when the document is clearly not a solver.
pub fn not_a_solver(root: &Message) -> Option<Diagnostic> {
    let (what, help) = match classify(root) {
        DocumentKind::Solver => return None,
        DocumentKind::Net
            if root.fields.iter().all(|f| SOLVER_PARAMETER.field(&f.name).is_some()) =>
        {
            return None
        }
        DocumentKind::Net => (
            "a NetParameter (a network definition)",
            "give the solver file, or load this file as a net",
        ),
        DocumentKind::LabelMap => (
            "a LabelMap (`item { name label display_name }` entries, as SSD uses)",
            "a label map is not a solver; give the solver's .prototxt",
        ),
        DocumentKind::Unknown => (
            "some other message: none of its top-level fields belong to SolverParameter",
            "a solver sets `net:` (or `net_param { … }`), `base_lr:`, `max_iter:` …",
        ),
    };
    Some(not_this_kind(
        root,
        "lvc::schema::not_a_solver",
        &format!("this is not a SolverParameter: it looks like {what}"),
        help,
    ))
}

fn not_this_kind(root: &Message, code: &'static str, message: &str, help: &str) -> Diagnostic {
    let diag = Diagnostic::error(code, message).with_help(help);
    match root.fields.first() {
        Some(first) => diag.with_label(first.name_span, "first top-level field"),
        None => diag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(text: &str) -> DocumentKind {
        classify(&lvc_grammar::parse(text).expect("test input parses"))
    }

    #[test]
    fn classifies_documents() {
        assert_eq!(kind_of("name: \"n\" layer { }"), DocumentKind::Net);
        assert_eq!(kind_of("layers { type: RELU }"), DocumentKind::Net);
        assert_eq!(kind_of("input: \"data\" input_dim: 1"), DocumentKind::Net);
        assert_eq!(kind_of(""), DocumentKind::Net);
        assert_eq!(kind_of("net: \"a\" base_lr: 0.1 debug_info: true"), DocumentKind::Solver);
        assert_eq!(kind_of("item { name: \"a\" label: 0 }"), DocumentKind::LabelMap);
        assert_eq!(kind_of("foo: 1 bar { }"), DocumentKind::Unknown);
    }

    #[test]
    fn an_empty_solver_is_still_a_solver() {
        let empty = lvc_grammar::parse("").expect("parses");
        assert!(not_a_solver(&empty).is_none());
        assert!(not_a_net(&empty).is_none());
    }
}
