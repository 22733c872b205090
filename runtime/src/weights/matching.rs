//! Caffe's `Net::CopyTrainedLayersFrom`, as a report instead of a crash.
//!
//! Caffe matches by layer name only: each source layer goes into the first
//! net layer with the same name; source layers without a match are ignored,
//! net layers absent from the file keep their filler values; the blob count
//! and every blob's shape (legacy 4-D blobs right-aligned) must match. Caffe
//! stops at the first mismatch; this lists all of them, with the fix that
//! applies to each.

use lvc_compiler::ir::NetGraph;
use lvc_compiler::ops::{OpKind, ParamShape};
use lvc_compiler::schema::NetDef;
use lvc_grammar::Span;
use serde::Serialize;

use super::{CaffeShape, WeightBlob, WeightsFile, WeightsLayer};

/// A learnable layer of the net being loaded.
#[derive(Debug, Clone)]
pub struct TargetLayer {
    pub name: String,
    /// The layer type string (`"Convolution"`).
    pub kind: String,
    /// The layer's name in the prototxt, for labels.
    pub span: Option<Span>,
    /// Blobs in Caffe's order, with the filler each is initialised from.
    pub params: Vec<ParamShape>,
}

/// The net's layers in execution order, as weight targets (Caffe's inserted
/// Split layers have no blobs and are left out). Labels point at each
/// layer's `name` in the prototxt.
pub fn targets_from_graph(net: &NetDef, graph: &NetGraph) -> Vec<TargetLayer> {
    graph
        .nodes()
        .map(|(_, node)| node)
        .filter(|node| !node.inserted_split)
        .map(|node| TargetLayer {
            name: node.name.clone(),
            kind: node.kind.clone(),
            span: Some(
                node.def_index
                    .and_then(|i| net.layers.get(i))
                    .map_or(node.span, |def| def.name.span),
            ),
            params: node.params.clone(),
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerStatus {
    Ok,
    ShapeMismatch,
    BlobCountMismatch,
    /// The net has the layer, the file does not: it keeps its filler values.
    MissingInFile,
    /// The file has weights for a layer the net does not have: ignored.
    UnusedInFile,
}

impl LayerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LayerStatus::Ok => "ok",
            LayerStatus::ShapeMismatch => "shape-mismatch",
            LayerStatus::BlobCountMismatch => "blob-count-mismatch",
            LayerStatus::MissingInFile => "missing-in-file",
            LayerStatus::UnusedInFile => "unused-in-file",
        }
    }
    /// Whether Caffe would refuse to load the file because of this layer.
    pub fn is_fatal(self) -> bool {
        matches!(self, LayerStatus::ShapeMismatch | LayerStatus::BlobCountMismatch)
    }
}

/// One blob position of a layer: the net's shape and the file's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamReport {
    pub index: usize,
    pub expected: Option<Vec<i64>>,
    pub found: Option<Vec<i64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub layer: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: LayerStatus,
    /// The blobs that differ (all of them for missing/unused layers).
    pub params: Vec<ParamReport>,
    #[serde(skip)]
    pub span: Option<Span>,
    /// What to do about it (a `--adapt` flag, or a likely rename).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// What `--adapt` did to this layer's blobs before matching.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapted: Option<String>,
    /// Index of the file layer that supplies this net layer's blobs.
    #[serde(skip)]
    pub source: Option<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WeightsReport {
    pub layers: Vec<LayerReport>,
}

impl WeightsReport {
    /// True when Caffe would load the file into the net without an error.
    pub fn loads(&self) -> bool {
        !self.layers.iter().any(|l| l.status.is_fatal())
    }
    pub fn count(&self, status: LayerStatus) -> usize {
        self.layers.iter().filter(|l| l.status == status).count()
    }
}

/// Caffe's `Blob::ShapeEquals`: a blob stored with legacy 4-D dims matches an
/// N-D (N ≤ 4) shape right-aligned, the missing leading axes being 1.
pub fn shape_equals(found: &WeightBlob, expected: &[i64]) -> bool {
    if !found.legacy_4d {
        return found.shape == expected;
    }
    if expected.len() > 4 || found.shape.len() != 4 {
        return false;
    }
    let padded = std::iter::repeat_n(1, 4 - expected.len()).chain(expected.iter().copied());
    padded.eq(found.shape.iter().copied())
}

fn blobs_match(target: &TargetLayer, source: &WeightsLayer) -> bool {
    source.blobs.len() == target.params.len()
        && source.blobs.iter().zip(&target.params).all(|(b, p)| shape_equals(b, p.shape.dims()))
}

/// Matches a weights file against the net's learnable layers (in net order).
/// Layers without blobs on either side are left out of the report.
pub fn match_weights(targets: &[TargetLayer], file: &WeightsFile) -> WeightsReport {
    let mut used = vec![false; file.layers.len()];
    let mut seen_targets = std::collections::HashSet::new();
    let mut layers = Vec::new();
    for target in targets {
        let first_with_name = seen_targets.insert(target.name.as_str());
        // Every source layer with this name is copied, in file order, into
        // the first net layer with the name.
        let sources: Vec<usize> = if first_with_name {
            file.layers
                .iter()
                .enumerate()
                .filter(|(_, l)| l.name == target.name)
                .map(|(i, _)| i)
                .collect()
        } else {
            Vec::new()
        };
        for &i in &sources {
            used[i] = true;
        }
        if target.params.is_empty() && sources.iter().all(|&i| file.layers[i].blobs.is_empty()) {
            continue;
        }
        let mut report = match sources
            .iter()
            .map(|&i| compare(target, &file.layers[i], i))
            .find(|r| r.status != LayerStatus::Ok)
        {
            Some(bad) => bad,
            None => match sources.last() {
                Some(&i) => compare(target, &file.layers[i], i),
                None => missing(target),
            },
        };
        if !first_with_name && report.status == LayerStatus::MissingInFile {
            report.fix = Some(format!(
                "an earlier net layer is also named '{}' and takes its weights (Caffe copies into the first layer with a name); rename one of them",
                target.name
            ));
        }
        layers.push(report);
    }
    for (i, source) in file.layers.iter().enumerate() {
        if !used[i] && !source.blobs.is_empty() {
            layers.push(LayerReport {
                layer: source.name.clone(),
                kind: source.kind.clone(),
                status: LayerStatus::UnusedInFile,
                params: source
                    .blobs
                    .iter()
                    .enumerate()
                    .map(|(index, b)| ParamReport {
                        index,
                        expected: None,
                        found: Some(b.shape.clone()),
                    })
                    .collect(),
                span: None,
                fix: None,
                adapted: None,
                source: Some(i),
            });
        }
    }
    detect_renames(targets, file, &mut layers);
    WeightsReport { layers }
}

fn missing(target: &TargetLayer) -> LayerReport {
    LayerReport {
        layer: target.name.clone(),
        kind: target.kind.clone(),
        status: LayerStatus::MissingInFile,
        params: target
            .params
            .iter()
            .enumerate()
            .map(|(index, p)| ParamReport { index, expected: Some(p.shape.0.clone()), found: None })
            .collect(),
        span: target.span,
        fix: None,
        adapted: None,
        source: None,
    }
}

fn compare(target: &TargetLayer, source: &WeightsLayer, source_index: usize) -> LayerReport {
    let mut report = LayerReport {
        layer: target.name.clone(),
        kind: target.kind.clone(),
        status: LayerStatus::Ok,
        params: Vec::new(),
        span: target.span,
        fix: None,
        adapted: None,
        source: Some(source_index),
    };
    if source.blobs.len() != target.params.len() {
        report.status = LayerStatus::BlobCountMismatch;
        let n = source.blobs.len().max(target.params.len());
        report.params = (0..n)
            .map(|index| ParamReport {
                index,
                expected: target.params.get(index).map(|p| p.shape.0.clone()),
                found: source.blobs.get(index).map(|b| b.shape.clone()),
            })
            .collect();
        report.fix = Some(format!(
            "the file has {} blob(s), the net expects {} (bias_term changed?): `--adapt reinit={}` initialises the layer from the prototxt fillers",
            source.blobs.len(),
            target.params.len(),
            target.name
        ));
        return report;
    }
    report.params = target
        .params
        .iter()
        .zip(&source.blobs)
        .enumerate()
        .filter(|(_, (p, b))| !shape_equals(b, p.shape.dims()))
        .map(|(index, (p, b))| ParamReport {
            index,
            expected: Some(p.shape.0.clone()),
            found: Some(b.shape.clone()),
        })
        .collect();
    if !report.params.is_empty() {
        report.status = LayerStatus::ShapeMismatch;
        report.fix = Some(suggest_shape_fix(target, source));
    }
    report
}

/// The `--adapt` fix for a layer whose blob shapes differ.
fn suggest_shape_fix(target: &TargetLayer, source: &WeightsLayer) -> String {
    let expected = target.params.first().map(|p| p.shape.dims()).unwrap_or(&[]);
    let found = source.blobs.first().map(|b| b.shape.as_slice()).unwrap_or(&[]);
    let rest_match = target
        .params
        .iter()
        .zip(&source.blobs)
        .skip(1)
        .all(|(p, b)| shape_equals(b, p.shape.dims()));
    if target.kind == OpKind::Convolution.name() && rest_match {
        if let Some((from, to)) = input_channel_change(found, expected) {
            return if to == 1 {
                format!(
                    "the file's filters take {from} input channels, the net gives {to}: `--adapt {0}=sum` (or `{0}=mean`) folds them over the input channels",
                    target.name
                )
            } else {
                format!(
                    "the file's filters take {from} input channel, the net gives {to}: `--adapt {}=replicate` copies the filter to every channel (divided by {to})",
                    target.name
                )
            };
        }
        if convolutionalizable(target, source) {
            return format!(
                "the file holds InnerProduct weights {} for this convolution {}: `--adapt convolutionalize` reshapes them (DIGITS' net surgery)",
                CaffeShape(found),
                CaffeShape(expected)
            );
        }
    }
    let outputs_differ = matches!(
        OpKind::from_name(&target.kind),
        Some(OpKind::Convolution | OpKind::InnerProduct | OpKind::Deconvolution)
    ) && found.first() != expected.first()
        && found.len() == expected.len();
    let why = if outputs_differ {
        "the output (class) count differs from the file's"
    } else {
        "the layer's shape differs from the file's"
    };
    format!(
        "{why}: `--adapt reinit={}` initialises it from the prototxt fillers instead (in Caffe: rename the layer)",
        target.name
    )
}

/// `Some((file channels, net channels))` when two 4-D conv weights differ
/// only in the input-channel axis and one side has a single channel.
pub(crate) fn input_channel_change(found: &[i64], expected: &[i64]) -> Option<(i64, i64)> {
    if found.len() != 4 || expected.len() != 4 || found[1] == expected[1] {
        return None;
    }
    let same_elsewhere = found[0] == expected[0] && found[2..] == expected[2..];
    (same_elsewhere && (found[1] == 1 || expected[1] == 1)).then_some((found[1], expected[1]))
}

/// InnerProduct weights `[out, in]` (or legacy `1 1 out in`) that fill a
/// convolution `[out, C, kh, kw]` with `in == C·kh·kw`, biases matching.
pub(crate) fn convolutionalizable(target: &TargetLayer, source: &WeightsLayer) -> bool {
    let (Some(weight), Some(blob)) = (target.params.first(), source.blobs.first()) else {
        return false;
    };
    let expected = weight.shape.dims();
    let inner_product_shaped = match blob.shape.as_slice() {
        [_, _] => true,
        [1, 1, _, _] => blob.legacy_4d,
        _ => false,
    };
    let out = blob.shape[blob.shape.len().saturating_sub(2)..].first().copied();
    inner_product_shaped
        && expected.len() == 4
        && out == Some(expected[0])
        && blob.count() as i64 == weight.shape.count()
        && source.blobs.len() == target.params.len()
        && target
            .params
            .iter()
            .zip(&source.blobs)
            .skip(1)
            .all(|(p, b)| b.count() as i64 == p.shape.count())
}

/// A missing net layer and an unused file layer of the same type with the
/// same blob shapes were probably renamed. Reported, never used silently.
fn detect_renames(targets: &[TargetLayer], file: &WeightsFile, layers: &mut [LayerReport]) {
    let mut taken = vec![false; layers.len()];
    for t in 0..layers.len() {
        if layers[t].status != LayerStatus::MissingInFile || layers[t].fix.is_some() {
            continue;
        }
        let Some(target) = targets.iter().find(|x| x.name == layers[t].layer) else { continue };
        let candidate = (0..layers.len()).find(|&u| {
            let report = &layers[u];
            report.status == LayerStatus::UnusedInFile
                && !taken[u]
                && report.source.is_some_and(|s| {
                    let source = &file.layers[s];
                    (source.kind == target.kind || source.kind.is_empty())
                        && blobs_match(target, source)
                })
        });
        if let Some(u) = candidate {
            taken[u] = true;
            let (old, new) = (layers[u].layer.clone(), layers[t].layer.clone());
            layers[t].fix = Some(format!(
                "looks renamed from '{old}' (same type and blob shapes in the file); name it '{old}' in the prototxt to load those weights, or keep the new name to train it from the fillers"
            ));
            layers[u].fix = Some(format!("looks renamed to '{new}' in the net"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lvc_compiler::ops::{BlobShape, ParamRole};

    fn param(role: ParamRole, dims: &[i64]) -> ParamShape {
        ParamShape { role, shape: BlobShape(dims.to_vec()), filler: None }
    }
    fn target(name: &str, kind: &str, shapes: &[&[i64]]) -> TargetLayer {
        let roles = [ParamRole::Weight, ParamRole::Bias];
        TargetLayer {
            name: name.into(),
            kind: kind.into(),
            span: None,
            params: shapes.iter().enumerate().map(|(i, s)| param(roles[i.min(1)], s)).collect(),
        }
    }
    fn source(name: &str, kind: &str, shapes: &[&[i64]]) -> WeightsLayer {
        WeightsLayer {
            name: name.into(),
            kind: kind.into(),
            blobs: shapes
                .iter()
                .map(|s| WeightBlob::new(s.to_vec(), vec![0.0; s.iter().product::<i64>() as usize]))
                .collect(),
        }
    }
    fn legacy(mut layer: WeightsLayer) -> WeightsLayer {
        for b in &mut layer.blobs {
            b.legacy_4d = true;
        }
        layer
    }

    #[test]
    fn legacy_shapes_compare_right_aligned() {
        let blob = WeightBlob { shape: vec![1, 1, 1000, 4096], legacy_4d: true, data: vec![] };
        assert!(shape_equals(&blob, &[1000, 4096]));
        assert!(!shape_equals(&blob, &[4096, 1000]));
        assert!(!shape_equals(&WeightBlob { legacy_4d: false, ..blob.clone() }, &[1000, 4096]));
        let bias = WeightBlob { shape: vec![1, 1, 1, 10], legacy_4d: true, data: vec![] };
        assert!(shape_equals(&bias, &[10]));
        assert!(!shape_equals(&bias, &[1, 1, 1, 1, 10]));
    }

    #[test]
    fn lists_every_mismatch_not_only_the_first() {
        let targets = vec![
            target("conv1", "Convolution", &[&[96, 1, 11, 11], &[96]]),
            target("fc6", "Convolution", &[&[512, 256, 6, 6], &[512]]),
            target("upscore", "Deconvolution", &[&[2, 1, 63, 63], &[2]]),
            target("new", "Convolution", &[&[2, 4, 1, 1], &[2]]),
        ];
        let file = WeightsFile {
            name: None,
            layers: vec![
                source("conv1", "Convolution", &[&[96, 3, 11, 11], &[96]]),
                source("fc6", "Convolution", &[&[4096, 256, 6, 6], &[4096]]),
                source("upscore", "Deconvolution", &[&[2, 1, 63, 63]]),
                source("relu1", "ReLU", &[]),
                source("old", "InnerProduct", &[&[7, 7]]),
            ],
        };
        let report = match_weights(&targets, &file);
        let statuses: Vec<_> = report.layers.iter().map(|l| (l.layer.as_str(), l.status)).collect();
        assert_eq!(
            statuses,
            vec![
                ("conv1", LayerStatus::ShapeMismatch),
                ("fc6", LayerStatus::ShapeMismatch),
                ("upscore", LayerStatus::BlobCountMismatch),
                ("new", LayerStatus::MissingInFile),
                ("old", LayerStatus::UnusedInFile),
            ]
        );
        assert!(!report.loads());
        let fc6 = &report.layers[1];
        assert_eq!(fc6.params.len(), 2, "both the weight and the bias differ");
        assert!(fc6.fix.as_deref().unwrap().contains("--adapt reinit=fc6"));
        assert!(fc6.fix.as_deref().unwrap().contains("class) count"));
        assert!(report.layers[0].fix.as_deref().unwrap().contains("--adapt conv1=sum"));
        assert!(report.layers[2].fix.as_deref().unwrap().contains("--adapt reinit=upscore"));
        assert_eq!(
            report.layers[2].params[1],
            ParamReport { index: 1, expected: Some(vec![2]), found: None }
        );
        assert!(report.layers[3].fix.is_none(), "a different type with other shapes is no rename");
    }

    #[test]
    fn gray_filters_into_rgb_net_suggest_replicate() {
        let targets = vec![target("conv1", "Convolution", &[&[96, 3, 11, 11], &[96]])];
        let file = WeightsFile {
            name: None,
            layers: vec![source("conv1", "Convolution", &[&[96, 1, 11, 11], &[96]])],
        };
        let fix = match_weights(&targets, &file).layers[0].fix.clone().unwrap();
        assert!(fix.contains("--adapt conv1=replicate"), "{fix}");
    }

    #[test]
    fn renamed_layer_is_reported_not_used() {
        let targets = vec![target("score_fr_2classes", "Convolution", &[&[2, 512, 1, 1], &[2]])];
        let file = WeightsFile {
            name: None,
            layers: vec![source("score_fr", "Convolution", &[&[2, 512, 1, 1], &[2]])],
        };
        let report = match_weights(&targets, &file);
        assert_eq!(report.layers[0].status, LayerStatus::MissingInFile);
        assert!(report.layers[0].fix.as_deref().unwrap().contains("looks renamed from 'score_fr'"));
        assert_eq!(report.layers[1].status, LayerStatus::UnusedInFile);
        assert!(report.loads(), "missing and unused layers do not stop Caffe");
    }

    #[test]
    fn inner_product_weights_in_a_convolution_suggest_convolutionalize() {
        let targets = vec![target("fc6", "Convolution", &[&[16, 4, 2, 2], &[16]])];
        let file = WeightsFile {
            name: None,
            layers: vec![legacy(source("fc6", "InnerProduct", &[&[1, 1, 16, 16], &[1, 1, 1, 16]]))],
        };
        let report = match_weights(&targets, &file);
        assert_eq!(report.layers[0].status, LayerStatus::ShapeMismatch);
        assert_eq!(report.layers[0].params.len(), 1, "the legacy bias matches right-aligned");
        assert!(report.layers[0].fix.as_deref().unwrap().contains("--adapt convolutionalize"));
    }

    #[test]
    fn only_the_first_net_layer_with_a_name_gets_weights() {
        let targets = vec![
            target("ip", "InnerProduct", &[&[2, 2]]),
            target("ip", "InnerProduct", &[&[2, 2]]),
        ];
        let file =
            WeightsFile { name: None, layers: vec![source("ip", "InnerProduct", &[&[2, 2]])] };
        let report = match_weights(&targets, &file);
        assert_eq!(report.layers[0].status, LayerStatus::Ok);
        assert_eq!(report.layers[0].source, Some(0));
        assert_eq!(report.layers[1].status, LayerStatus::MissingInFile);
        assert!(report.layers[1].fix.as_deref().unwrap().contains("earlier net layer"));
    }
}
