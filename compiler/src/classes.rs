//! Changing a segmentation net's class count, the edit DIGITS users made by
//! hand: every `num_output` of the layers that produce class scores, and the
//! `group` of the per-class (bilinear) Deconvolutions, must change together.
//!
//! The coupled fields are found from the graph, not from layer names: start at
//! the score bottom of every class-axis consumer (SoftmaxWithLoss, Softmax,
//! Accuracy, Dice, DiceLoss, ArgMax) and walk back through layers that keep
//! the channel axis (Crop, Eltwise, activations, splits, per-class
//! Deconvolutions) to the layers that choose it (Convolution, Deconvolution,
//! InnerProduct). Every stage and phase the file mentions is searched, so a
//! deploy-only or train-only branch is not missed. The result is a list of
//! text edits on the values' spans, so comments and formatting are kept.

use std::collections::{BTreeMap, BTreeSet};

use lvc_grammar::Span;

use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::{compile, BlobId, CompileOptions, LayerNode, NetGraph};
use crate::ops::{ClassRole, OpKind, MAX_BLOB_COUNT};
use crate::schema::{LayerDef, NetDef, Phase};
use crate::source::SourceFile;

/// One replacement in the file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TextEdit {
    pub span: Span,
    pub replacement: String,
    /// What changes, for the report (`score_fr: num_output 2 → 3`).
    pub description: String,
}

/// The planned change; apply it with [`apply_edits`].
#[derive(Debug, Default)]
pub struct ClassChange {
    pub edits: Vec<TextEdit>,
    /// Class counts found in the file before the change.
    pub old_counts: BTreeSet<i64>,
    pub diags: Diagnostics,
}

/// The most classes a net can have: `num_output` and `group` are uint32 in
/// caffe.proto, but every class is a channel of a blob, and Caffe's blob
/// dimensions are C++ `int`s (the IR's [`MAX_BLOB_COUNT`]).
pub const MAX_CLASSES: i64 = MAX_BLOB_COUNT;

/// `lvc::classes::count` when `classes` is not a class count a net can have
/// (1 to [`MAX_CLASSES`]).
pub fn check_class_count(classes: i64) -> Result<(), Diagnostic> {
    if classes < 1 {
        return Err(Diagnostic::error("lvc::classes::count", format!("a net needs at least 1 class, not {classes}"))
            .with_help("give the number of classes including background, e.g. 2 for background + left ventricle"));
    }
    if classes > MAX_CLASSES {
        return Err(Diagnostic::error(
            "lvc::classes::count",
            format!("{classes} classes is more than num_output can hold"),
        )
        .with_help(format!(
            "use at most {MAX_CLASSES}: num_output and group are uint32 in caffe.proto, but each class is a channel of a \
             Caffe blob, whose dimensions are C++ ints"
        )));
    }
    Ok(())
}

/// Plans rewriting `source` to `classes` classes.
pub fn plan_class_change(source: &SourceFile, classes: i64) -> ClassChange {
    let mut change = ClassChange::default();
    if let Err(d) = check_class_count(classes) {
        change.diags.push(d);
        return change;
    }
    // Which layers (by file index) choose the class axis, and whether their
    // `group` follows the class count.
    let mut producers: BTreeMap<usize, bool> = BTreeMap::new();
    let mut net_seen: Option<NetDef> = None;
    for opts in states_mentioned(source) {
        let compiled = compile(source, &opts);
        if let (Some(net), Some(graph)) = (compiled.net, compiled.graph) {
            find_class_producers(&graph, &net, &mut producers);
            net_seen.get_or_insert(net);
        } else {
            change.diags.extend(compiled.diags);
            return change;
        }
    }
    let Some(net) = net_seen else { return change };
    if producers.is_empty() {
        change.diags.push(
            Diagnostic::error("lvc::classes::none", "no layer produces class scores in this net")
                .with_help("set-classes looks for the score bottom of a SoftmaxWithLoss, Softmax, Accuracy, Dice, DiceLoss or ArgMax layer and follows it back to the Convolution/Deconvolution/InnerProduct that sets num_output"),
        );
        return change;
    }
    for (&index, &per_class_groups) in &producers {
        plan_layer_edits(&net.layers[index], classes, per_class_groups, &mut change);
    }
    change.edits.sort();
    change.edits.dedup_by(|a, b| a.span == b.span);
    change
}

/// The states to search: TRAIN and TEST, each with no stage and with every
/// stage that an include/exclude rule of the file names.
fn states_mentioned(source: &SourceFile) -> Vec<CompileOptions> {
    let (net, _) = crate::schema::load_net(source, &crate::schema::LoadOptions { lenient: true });
    let mut stages: BTreeSet<String> = BTreeSet::new();
    for layer in net.iter().flat_map(|n| &n.layers) {
        for rule in layer.include.iter().chain(&layer.exclude) {
            stages.extend(rule.stages.iter().cloned());
            stages.extend(rule.not_stages.iter().cloned());
        }
    }
    let stage_sets = std::iter::once(Vec::new()).chain(stages.into_iter().map(|s| vec![s]));
    stage_sets
        .flat_map(|stages| {
            [Phase::Train, Phase::Test].map(|phase| CompileOptions {
                phase,
                stages: stages.clone(),
                ..Default::default()
            })
        })
        .collect()
}

fn find_class_producers(graph: &NetGraph, net: &NetDef, producers: &mut BTreeMap<usize, bool>) {
    let mut stack: Vec<BlobId> = graph
        .nodes()
        .filter(|(_, node)| role(node) == ClassRole::Consumes)
        .filter_map(|(_, node)| node.bottoms.first().copied().flatten())
        .collect();
    let mut visited: BTreeSet<BlobId> = BTreeSet::new();
    while let Some(blob) = stack.pop() {
        if !visited.insert(blob) {
            continue;
        }
        let node = graph.node(graph.blob(blob).producer);
        let def = node.def_index.map(|i| &net.layers[i]);
        match role(node) {
            ClassRole::Chooses => {
                if let Some(i) = node.def_index {
                    producers.entry(i).or_insert(false);
                }
            }
            ClassRole::ChoosesOrKeepsPerGroup => {
                let Some(def) = def else { continue };
                let conv = def.param_block("convolution_param");
                let num_output = conv.int("num_output").map(|s| s.value);
                let group = conv.int("group").map_or(1, |s| s.value);
                // A per-class Deconvolution (group == num_output, FCN's
                // bilinear upsampling) keeps the class axis of its bottom.
                let per_class = group > 1 && Some(group) == num_output;
                producers.insert(def.index, per_class);
                if per_class {
                    stack.extend(node.bottoms.first().copied().flatten());
                }
            }
            ClassRole::Joins => stack.extend(node.bottoms.iter().copied().flatten()),
            ClassRole::Keeps => stack.extend(node.bottoms.first().copied().flatten()),
            ClassRole::Consumes | ClassRole::Unrelated => {}
        }
    }
}

/// A node's class role: its type's (the table in [`crate::ops`]), `Keeps`
/// for an inserted split, `Unrelated` for a type lvc does not know.
fn role(node: &LayerNode) -> ClassRole {
    match &node.op {
        _ if node.inserted_split => ClassRole::Keeps,
        Some(op) => op.kind().class_role(),
        None => OpKind::from_name(&node.kind).map_or(ClassRole::Unrelated, OpKind::class_role),
    }
}

fn plan_layer_edits(
    layer: &LayerDef,
    classes: i64,
    per_class_groups: bool,
    change: &mut ClassChange,
) {
    let block = if layer.kind.value == OpKind::InnerProduct.name() {
        "inner_product_param"
    } else {
        "convolution_param"
    };
    let params = layer.param_block(block);
    let name = &layer.name.value;
    match params.int("num_output") {
        Some(n) => {
            change.old_counts.insert(n.value);
            if n.value != classes {
                change.edits.push(TextEdit {
                    span: n.span,
                    replacement: classes.to_string(),
                    description: format!("{name}: num_output {} → {classes}", n.value),
                });
            }
        }
        None => change.diags.push(
            Diagnostic::error("lvc::classes::unset", format!("layer '{name}' produces class scores but has no num_output"))
                .in_layer(name.clone())
                .with_label(layer.name.span, "score layer")
                .with_help(format!("add `num_output: {classes}` to its {block} (DIGITS fills it in at job time; lvc needs it written)")),
        ),
    }
    if per_class_groups {
        if let Some(g) = params.int("group").filter(|g| g.value != classes) {
            change.edits.push(TextEdit {
                span: g.span,
                replacement: classes.to_string(),
                description: format!("{name}: group {} → {classes}", g.value),
            });
        }
    }
}

/// The errors `change` would bring into `source`: the edited text compiled
/// in every state the file mentions, for the states that then have more
/// errors than before (a count that makes a score blob larger than Caffe
/// allows, say). Empty when the change is safe to write. The diagnostics'
/// spans are in the edited text, returned with them.
pub fn errors_after_change(source: &SourceFile, change: &ClassChange) -> (SourceFile, Diagnostics) {
    let edited = SourceFile::new(source.path.clone(), apply_edits(&source.text, &change.edits));
    let mut found = Diagnostics::new();
    for opts in states_mentioned(source) {
        let before = compile(source, &opts).diags.error_count();
        let after = compile(&edited, &opts).diags;
        if after.error_count() > before {
            for d in after.into_iter().filter(Diagnostic::is_error) {
                if !found.iter().any(|f| {
                    f.code == d.code
                        && f.primary_span() == d.primary_span()
                        && f.message == d.message
                }) {
                    found.push(d);
                }
            }
        }
    }
    (edited, found)
}

/// Applies non-overlapping edits (sorted by position) to `text`.
pub fn apply_edits(text: &str, edits: &[TextEdit]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for edit in edits {
        out.push_str(&text[at..edit.span.start]);
        out.push_str(&edit.replacement);
        at = edit.span.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models(name: &str) -> SourceFile {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models").join(name);
        SourceFile::read(&path).expect("models/ file")
    }

    #[test]
    fn fcn_alexnet_changes_score_and_per_class_upsampling() {
        let source = models("fcn_alexnet.prototxt");
        let change = plan_class_change(&source, 3);
        assert!(!change.diags.has_errors(), "{:?}", change.diags);
        assert_eq!(change.old_counts, BTreeSet::from([2]));
        let described: Vec<&str> = change.edits.iter().map(|e| e.description.as_str()).collect();
        assert_eq!(
            described,
            ["score_fr: num_output 2 → 3", "upscore: num_output 2 → 3", "upscore: group 2 → 3"]
        );
        let rewritten =
            SourceFile::new("rewritten.prototxt", apply_edits(&source.text, &change.edits));
        // The rewritten net has 3 classes everywhere and plans no further edit.
        let again = plan_class_change(&rewritten, 3);
        assert!(again.edits.is_empty(), "{:?}", again.edits);
        assert_eq!(again.old_counts, BTreeSet::from([3]));
        // Everything else, comments included, is untouched.
        assert_eq!(rewritten.text.len(), source.text.len());
        assert!(rewritten.text.starts_with("# FCN-AlexNet"));
    }

    #[test]
    fn fcn8s_follows_the_skip_branches_through_crop_and_eltwise() {
        let source = models("fcn8s.prototxt");
        let change = plan_class_change(&source, 4);
        assert!(!change.diags.has_errors(), "{:?}", change.diags);
        let layers: BTreeSet<&str> =
            change.edits.iter().map(|e| e.description.split(':').next().unwrap_or("")).collect();
        assert_eq!(
            layers,
            BTreeSet::from([
                "score_fr",
                "score_pool3",
                "score_pool4",
                "upscore2",
                "upscore8",
                "upscore_pool4"
            ])
        );
        // num_output of six layers, group of the three deconvolutions
        assert_eq!(change.edits.len(), 9);
    }

    #[test]
    fn zero_classes_is_refused() {
        let change = plan_class_change(&models("fcn8s.prototxt"), 0);
        assert!(change.diags.has_errors());
        assert!(change.edits.is_empty());
    }

    #[test]
    fn counts_beyond_a_blob_dimension_are_refused() {
        for classes in [-3, MAX_CLASSES + 1, 99_999_999_999] {
            let change = plan_class_change(&models("fcn8s.prototxt"), classes);
            assert_eq!(
                change.diags.iter().map(|d| d.code).collect::<Vec<_>>(),
                ["lvc::classes::count"],
                "{classes}"
            );
            assert!(change.edits.is_empty());
        }
    }

    #[test]
    fn a_count_that_makes_the_scores_too_large_is_caught_before_writing() {
        // 10^9 classes fit num_output, but FCN-8s's score blobs would hold
        // 10^9 × 256 × 256 values, far more than a Caffe blob can.
        let source = models("fcn8s.prototxt");
        let change = plan_class_change(&source, 1_000_000_000);
        assert!(!change.diags.has_errors(), "{:?}", change.diags);
        let (_, errors) = errors_after_change(&source, &change);
        assert!(!errors.is_empty());
        assert!(errors.iter().all(|d| d.code == "lvc::shape::too_large"), "{errors:?}");
        let (_, none) = errors_after_change(&source, &plan_class_change(&source, 3));
        assert!(none.is_empty(), "{none:?}");
    }

    #[test]
    fn a_net_without_a_classifier_says_so() {
        let source = SourceFile::new(
            "plain.prototxt",
            "layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n\
             layer { name: 'conv' type: 'Convolution' bottom: 'data' top: 'conv' convolution_param { num_output: 4 kernel_size: 3 } }\n",
        );
        let change = plan_class_change(&source, 3);
        assert_eq!(change.diags.iter().map(|d| d.code).collect::<Vec<_>>(), ["lvc::classes::none"]);
    }
}
