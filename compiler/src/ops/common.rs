//! Pieces every op family needs: the layer's identity for diagnostics,
//! bottom/top arity checks, axis canonicalisation, filler parsing and
//! spanned parameters with defaults.

use lvc_grammar::Span;

use super::{BlobShape, FillerDef, ShapeCtx, MAX_BLOB_COUNT};
use crate::diag::Diagnostic;
use crate::schema::descriptor::FILLER_PARAMETER;
use crate::schema::{LayerDef, ParamView, Spanned};

/// Who a diagnostic is about: the layer's name and the span of its `type:`
/// value (the label of last resort when the offending field is not written).
#[derive(Debug, Clone)]
pub struct LayerRef {
    pub name: String,
    pub type_span: Span,
}

impl LayerRef {
    pub fn of(layer: &LayerDef) -> Self {
        LayerRef { name: layer.name.value.clone(), type_span: layer.kind.span }
    }
    pub fn error(&self, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(code, message).in_layer(self.name.clone())
    }
    pub fn warning(&self, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(code, message).in_layer(self.name.clone())
    }
    /// A written value, or the layer type's default with the `type:` span.
    pub fn or_default<T>(&self, value: Option<Spanned<T>>, default: T) -> Spanned<T> {
        value.unwrap_or_else(|| Spanned::new(default, self.type_span))
    }
    /// The span of a field's value when written, else of the layer type.
    pub fn anchor(&self, view: ParamView<'_>, field: &str) -> Span {
        view.value_span(field).unwrap_or(self.type_span)
    }
}

/// How many bottoms and tops a layer type takes (Caffe's `ExactNumBottomBlobs`,
/// `MinTopBlobs`, …). `None` as a maximum means unbounded.
#[derive(Debug, Clone, Copy)]
pub struct Arity {
    pub min_bottoms: usize,
    pub max_bottoms: Option<usize>,
    pub min_tops: usize,
    pub max_tops: Option<usize>,
    /// Loss layers: missing tops up to `min_tops` are created anonymously
    /// (Caffe's `AutoTopBlobs`), so too few listed tops is not an error.
    pub auto_tops: bool,
}

impl Arity {
    pub const fn exact(bottoms: usize, tops: usize) -> Self {
        Arity {
            min_bottoms: bottoms,
            max_bottoms: Some(bottoms),
            min_tops: tops,
            max_tops: Some(tops),
            auto_tops: false,
        }
    }
    pub const fn new(bottoms: (usize, Option<usize>), tops: (usize, Option<usize>)) -> Self {
        Arity {
            min_bottoms: bottoms.0,
            max_bottoms: bottoms.1,
            min_tops: tops.0,
            max_tops: tops.1,
            auto_tops: false,
        }
    }
    pub const fn auto_tops(mut self) -> Self {
        self.auto_tops = true;
        self
    }

    /// How many top shapes the layer produces: the listed tops, or `min_tops`
    /// when Caffe creates the missing ones.
    pub fn top_count(&self, listed: usize) -> usize {
        if self.auto_tops {
            listed.max(self.min_tops)
        } else {
            listed
        }
    }

    /// Reports wrong bottom/top counts; `true` when both are fine.
    /// Bottoms are counted as given (`ctx.bottoms`, what rules index), tops
    /// as listed.
    pub fn check(&self, op: &LayerRef, type_name: &str, ctx: &mut ShapeCtx<'_>) -> bool {
        let bottoms = (0..ctx.bottoms.len()).map(|i| ctx.bottom_span(i)).collect::<Vec<_>>();
        let tops = ctx.layer.tops.iter().map(|t| t.span).collect::<Vec<_>>();
        let min_tops = if self.auto_tops { 0 } else { self.min_tops };
        let ok_b =
            count_ok(op, type_name, "bottom", &bottoms, self.min_bottoms, self.max_bottoms, ctx);
        let ok_t = count_ok(op, type_name, "top", &tops, min_tops, self.max_tops, ctx);
        ok_b && ok_t
    }
}

fn count_ok(
    op: &LayerRef,
    type_name: &str,
    what: &str,
    spans: &[Span],
    min: usize,
    max: Option<usize>,
    ctx: &mut ShapeCtx<'_>,
) -> bool {
    let n = spans.len();
    if n >= min && max.is_none_or(|m| n <= m) {
        return true;
    }
    let wanted = match max {
        Some(m) if m == min => format!("exactly {}", plural(m, what)),
        Some(m) if n > m => format!("at most {}", plural(m, what)),
        _ => format!("at least {}", plural(min, what)),
    };
    let mut d = op
        .error("lvc::shape::arity", format!("{type_name} takes {wanted}, but the layer lists {n}"));
    d = match max.filter(|&m| n > m) {
        Some(m) => spans[m..].iter().fold(d, |d, s| d.with_label(*s, format!("extra {what}"))),
        None => d.with_label(op.type_span, format!("needs {wanted}")),
    };
    let help = match max.filter(|&m| n > m) {
        Some(_) => format!("remove the extra `{what}:` lines"),
        None => format!("add the missing `{what}:` lines"),
    };
    ctx.diags.push(d.with_help(help));
    false
}

pub fn plural(n: usize, what: &str) -> String {
    match (n, what.ends_with('s')) {
        (1, _) => format!("1 {what}"),
        (_, true) => format!("{n} {what}es"),
        (_, false) => format!("{n} {what}s"),
    }
}

/// Python-style axis → index into `shape`, or an `lvc::shape::axis` error
/// labelled on the axis value.
pub fn canonical_axis(
    op: &LayerRef,
    axis: &Spanned<i64>,
    shape: &BlobShape,
    field: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<usize> {
    let idx = shape.canonical_axis(axis.value);
    if idx.is_none() {
        let rank = shape.rank();
        diags.push(
            op.error(
                "lvc::shape::axis",
                format!(
                    "{field} {} is out of range for a {rank}-axis bottom ({shape})",
                    axis.value
                ),
            )
            .with_label(axis.span, format!("{field} {}", axis.value))
            .with_help(format!(
                "use a {field} in {}..{} (negative values count from the end)",
                -(rank as i64),
                rank as i64 - 1
            )),
        );
    }
    idx
}

pub const FILLER_TYPES: &[&str] =
    &["constant", "gaussian", "positive_unitball", "uniform", "xavier", "msra", "bilinear"];

/// A `FillerParameter` block with Caffe's defaults (an absent block is
/// Caffe's default filler: constant 0). An unknown type is reported
/// (Caffe dies with "Unknown filler name").
pub fn filler(op: &LayerRef, view: ParamView<'_>, diags: &mut Vec<Diagnostic>) -> FillerDef {
    let kind = view.string("type");
    if let Some(k) = &kind {
        if !FILLER_TYPES.contains(&k.value) {
            diags.push(
                op.error("lvc::param::filler", format!("unknown filler type `{}`", k.value))
                    .with_label(k.span, "not a Caffe filler")
                    .with_help(format!("use one of: {}", FILLER_TYPES.join(", "))),
            );
        }
    }
    filler_fields(view)
}

/// A filler's fields, each the written value or else caffe.proto's default.
fn filler_fields(view: ParamView<'_>) -> FillerDef {
    let view = view.described(&FILLER_PARAMETER);
    let num = |name: &str| view.float_or_default(name).value;
    FillerDef {
        kind: view.string_or_default("type").value.to_string(),
        value: num("value"),
        min: num("min"),
        max: num("max"),
        mean: num("mean"),
        std: num("std"),
        sparse: view.int_or_default("sparse").value,
        variance_norm: view.ident_or_default("variance_norm").value.to_string(),
    }
}

/// A constant filler (for blobs Caffe initialises to a fixed value).
pub fn constant_filler(value: f64) -> FillerDef {
    FillerDef { value, ..filler_fields(ParamView::new(None)) }
}

/// Reports a value outside an allowed range (`lvc::param::range`).
pub fn range_error(
    op: &LayerRef,
    span: Span,
    message: impl Into<String>,
    help: impl Into<String>,
) -> Diagnostic {
    op.error("lvc::param::range", message).with_label(span, "out of range").with_help(help)
}

/// `true` when every bottom has the same shape as bottom 0; otherwise one
/// `code` error labelling every disagreeing bottom.
pub fn bottoms_agree(
    op: &LayerRef,
    ctx: &mut ShapeCtx<'_>,
    code: &'static str,
    what: &str,
    help: &str,
) -> bool {
    let Some(first) = ctx.bottoms.first() else { return true };
    let differing: Vec<usize> =
        (1..ctx.bottoms.len()).filter(|&i| ctx.bottoms[i] != *first).collect();
    if differing.is_empty() {
        return true;
    }
    let list = ctx
        .bottoms
        .iter()
        .enumerate()
        .map(|(i, s)| format!("bottom[{i}] {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut d = op
        .error(code, format!("{what}: {list}"))
        .with_label(ctx.bottom_span(0), format!("{first}"));
    for i in differing {
        d = d.with_label(ctx.bottom_span(i), format!("{}", ctx.bottoms[i]));
    }
    ctx.diags.push(d.with_help(help));
    false
}

/// Name of a spatial axis for messages: `height (axis 2)`.
pub fn axis_name(axis: usize, rank: usize) -> String {
    let spatial_from_end = rank.saturating_sub(axis + 1);
    match (rank, spatial_from_end) {
        (4, 1) => format!("height (axis {axis})"),
        (4, 0) => format!("width (axis {axis})"),
        _ => format!("axis {axis}"),
    }
}

/// One sliding window (convolution or pooling) along one axis, for the
/// "kernel larger than the padded input" check.
pub struct Window {
    pub input: i64,
    pub pad: i64,
    /// Effective extent `D·(K−1)+1`.
    pub extent: i64,
    /// The output size Caffe's formula gives.
    pub out: i64,
    /// The kernel as written (before dilation).
    pub kernel: i64,
    pub dilated: bool,
}

impl Window {
    /// Whether the window fits the padded input (and the output is non-empty).
    pub fn fits(&self) -> bool {
        self.input + 2 * self.pad >= self.extent && self.out > 0
    }
}

/// One axis whose window does not fit, for [`report_windows`].
pub struct WindowIssue {
    /// `height (axis 2)`.
    pub axis: String,
    pub window: Window,
    /// The kernel value to label.
    pub span: Span,
}

/// Reports windows larger than the padded input, one diagnostic per group of
/// axes with the same numbers. An empty output is an error (Caffe dies with
/// an opaque `Check failed: data_`); otherwise a warning, since Caffe's
/// rounding still yields an output and the missing cells read as zeros.
pub fn report_windows(op: &LayerRef, diags: &mut Vec<Diagnostic>, issues: &[WindowIssue]) {
    let mut groups: Vec<(&WindowIssue, Vec<&str>)> = Vec::new();
    for issue in issues {
        let same = |(g, _): &&mut (&WindowIssue, Vec<&str>)| {
            let (a, b) = (&g.window, &issue.window);
            (a.input, a.pad, a.extent, a.out, g.span)
                == (b.input, b.pad, b.extent, b.out, issue.span)
        };
        match groups.iter_mut().find(same) {
            Some((_, axes)) => axes.push(&issue.axis),
            None => groups.push((issue, vec![&issue.axis])),
        }
    }
    for (issue, axes) in groups {
        let where_ = axes.join(" and ");
        let Window { input, pad, extent, out, kernel, dilated } = issue.window;
        // In i128: a dilated extent may be close to i64::MAX.
        let (input, pad, extent) = (i128::from(input), i128::from(pad), i128::from(extent));
        let padded = input + 2 * pad;
        let shown = if dilated { format!("{extent} (dilated)") } else { format!("{extent}") };
        let message =
            format!("kernel {shown} is larger than the padded input along {where_}: {input} + 2·{pad} = {padded}");
        let help = format!(
            "use kernel_size ≤ {padded}, pad ≥ {}, or a larger input (this layer needs at least {} pixels along {where_})",
            (extent - input + 1) / 2,
            extent - 2 * pad
        );
        let d = if out <= 0 {
            op.error("lvc::shape::kernel", format!("{message}; the output would be empty"))
        } else {
            op.warning(
                "lvc::shape::kernel",
                format!("{message}; Caffe reads the missing cells as zeros and outputs {out}"),
            )
        };
        diags.push(d.with_label(issue.span, format!("kernel {kernel}")).with_help(help));
    }
}

/// The rule of every one-bottom, one-top elementwise layer: the top has the
/// bottom's shape.
pub fn same_shape(
    op: &LayerRef,
    type_name: &str,
    ctx: &mut ShapeCtx<'_>,
) -> Option<Vec<BlobShape>> {
    Arity::exact(1, 1).check(op, type_name, ctx).then(|| vec![ctx.bottoms[0].clone()])
}

/// An identity coordinate map over `n` spatial axes.
pub fn identity_map(n: usize) -> Vec<super::AxisMap> {
    vec![super::AxisMap::IDENTITY; n]
}

/// Number of errors in `diags` (builders compare before/after to decide
/// whether their parameters were usable).
pub fn error_count(diags: &[Diagnostic]) -> usize {
    diags.iter().filter(|d| d.is_error()).count()
}

/// Layers built on 2-D windows (Pooling, LRN, ROIPooling) need N×C×H×W.
pub fn check_rank4(op: &LayerRef, type_name: &str, ctx: &mut ShapeCtx<'_>, bottom: usize) -> bool {
    let shape = &ctx.bottoms[bottom];
    if shape.rank() == 4 {
        return true;
    }
    let d = op
        .error(
            "lvc::shape::rank",
            format!(
                "{type_name} needs a 4-axis (N, C, H, W) bottom, got {} axes ({shape})",
                shape.rank()
            ),
        )
        .with_label(ctx.bottom_span(bottom), format!("{shape}"))
        .with_help(format!("reshape the bottom to N×C×H×W before {type_name}"));
    ctx.diags.push(d);
    false
}

/// An element count for messages: exact where it fits `u128`, else a power
/// of ten (a product of many huge dimensions).
pub fn describe_count(dims: &[i64]) -> String {
    let exact = dims.iter().try_fold(1u128, |acc, &d| acc.checked_mul(u128::try_from(d).ok()?));
    match exact {
        Some(n) => {
            format!("{} elements ({} as float32)", thousands(n), bytes_text(n.saturating_mul(4)))
        }
        None => {
            let log10: f64 = dims.iter().map(|&d| (d.unsigned_abs() as f64).log10()).sum();
            format!("about 10^{} elements", log10.floor())
        }
    }
}

/// `1,234,567`.
pub fn thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in decimal units, as memory is sold and `free -h` … prints it
/// (`154 GB`, `1.2 TB`).
pub fn bytes_text(bytes: u128) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// Why a shape cannot exist in Caffe: a negative dimension, one beyond
/// `INT_MAX`, or more than [`MAX_BLOB_COUNT`] elements. `None` when fine.
pub fn size_problem(shape: &BlobShape) -> Option<String> {
    let limit = format!("Caffe's INT_MAX ({})", thousands(MAX_BLOB_COUNT as u128));
    if let Some(d) = shape.dims().iter().find(|&&d| d < 0) {
        return Some(format!("{shape} has a negative dimension ({d})"));
    }
    if let Some(d) = shape.dims().iter().find(|&&d| d > MAX_BLOB_COUNT) {
        return Some(format!(
            "{shape} has a dimension of {}, more than {limit}",
            thousands(*d as u128)
        ));
    }
    match shape.checked_count() {
        Some(n) if n <= MAX_BLOB_COUNT => None,
        _ => Some(format!(
            "{shape} would hold {}, more than {limit} per blob",
            describe_count(shape.dims())
        )),
    }
}

/// What to change to make a layer's blobs smaller.
fn shrink_hint(kind: &str, input: bool) -> &'static str {
    match kind {
        _ if input => "give the input a smaller shape (its dims, or --input-shape)",
        "Convolution" | "Deconvolution" | "Im2col" => {
            "use a smaller num_output or kernel_size, a larger stride or a smaller input (or batch)"
        }
        "InnerProduct" | "Embed" => "use a smaller num_output, or feed a smaller bottom",
        "Tile" => "use fewer tiles",
        "Concat" => "join fewer or smaller bottoms",
        "SPP" => "use a smaller pyramid_height",
        _ => "feed a smaller input (or batch)",
    }
}

/// The check every layer's rule goes through (in the IR, after the rule):
/// no top and no parameter blob may have a negative dimension or more
/// elements than Caffe allows ([`MAX_BLOB_COUNT`]). One
/// `lvc::shape::too_large` per layer, on the tops too large and on the
/// `num_output` or `type:` for parameters; `false` when anything failed. The
/// IR then leaves the tops unknown, so nothing downstream is checked against
/// (or allocates) an impossible shape.
pub fn check_sizes(
    layer: &LayerDef,
    tops: &[BlobShape],
    params: &[super::ParamShape],
    diags: &mut Vec<Diagnostic>,
) -> bool {
    check_blobs(layer, tops.iter().enumerate(), params, diags)
}

/// [`check_sizes`] of the tops given with their indices.
fn check_blobs<'a>(
    layer: &LayerDef,
    tops: impl Iterator<Item = (usize, &'a BlobShape)>,
    params: &[super::ParamShape],
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let op = LayerRef::of(layer);
    let mut problems: Vec<String> = Vec::new();
    let mut labels: Vec<(Span, String)> = Vec::new();
    for (j, top) in tops {
        let Some(problem) = size_problem(top) else { continue };
        let (name, span) = layer.tops.get(j).map_or_else(
            || (format!("top {j}"), op.type_span),
            |t| (format!("top '{}'", t.value), t.span),
        );
        problems.push(format!("{name} {problem}"));
        labels.push((span, format!("{top}")));
    }
    let mut params_too_large = false;
    for p in params {
        let Some(problem) = size_problem(&p.shape) else { continue };
        problems.push(format!("the {} {problem}", p.role));
        params_too_large = true;
    }
    let Some(first) = problems.first() else { return true };
    let mut message = first.clone();
    match problems.len() {
        1 => {}
        2 => message.push_str("; one more blob of this layer is too large"),
        n => message.push_str(&format!("; {} more blobs of this layer are too large", n - 1)),
    }
    let mut d = op.error("lvc::shape::too_large", message);
    for (span, text) in labels {
        d = d.with_label(span, text);
    }
    if params_too_large {
        let num_output = ["convolution_param", "inner_product_param", "embed_param"]
            .iter()
            .find_map(|block| layer.param_block(block).int("num_output"));
        d = match num_output {
            Some(n) => d.with_label(n.span, format!("num_output {}", n.value)),
            None => d.with_label(op.type_span, "its parameters are too large"),
        };
    }
    let help = shrink_hint(&layer.kind.value, layer.bottoms.is_empty());
    diags.push(d.with_help(format!(
        "{help}: no blob can hold more than {} elements",
        thousands(MAX_BLOB_COUNT as u128)
    )));
    false
}

/// [`check_sizes`] for top `j` alone (net inputs, one top at a time).
pub fn check_top(layer: &LayerDef, j: usize, top: &BlobShape, diags: &mut Vec<Diagnostic>) -> bool {
    check_blobs(layer, std::iter::once((j, top)), &[], diags)
}

/// An intermediate size of a shape rule overflowed `i64`
/// (`lvc::shape::too_large`, on `span`): `what` names it, e.g. "the
/// deconvolution output along height (axis 2)".
pub fn overflow(op: &LayerRef, span: Span, what: &str, help: &str) -> Diagnostic {
    op.error("lvc::shape::too_large", format!("{what} overflows 64-bit integers"))
        .with_label(span, "too large")
        .with_help(format!(
            "{help}: no blob can hold more than {} elements",
            thousands(MAX_BLOB_COUNT as u128)
        ))
}
