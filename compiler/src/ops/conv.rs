//! Convolution and Deconvolution (`convolution_param`): kernel/stride/pad/
//! dilation resolution (lists broadcast over spatial axes, or the 2-D
//! `_h`/`_w` forms), grouping, weight layouts and the output-size formulas of
//! `conv_layer.cpp` / `deconv_layer.cpp`.

use super::common::{
    axis_name, bottoms_agree, canonical_axis, error_count, filler, overflow, plural,
    report_windows, Arity, LayerRef, Window, WindowIssue,
};
use super::{checked_product, AxisMap, BlobShape, FillerDef, LayerOp, ParamShape, ShapeCtx};
use super::{OpKind, ParamRole};
use crate::diag::Diagnostic;
use crate::schema::{LayerDef, ParamView, Spanned};

/// A per-spatial-axis hyper-parameter as written.
#[derive(Debug, Clone, PartialEq)]
pub enum AxisParam {
    /// `kernel_size: 3` (one value, broadcast to every spatial axis) or one
    /// value per spatial axis; empty means the field's default.
    List(Vec<Spanned<i64>>),
    /// `kernel_h` / `kernel_w` (only for 2 spatial axes).
    HeightWidth(Spanned<i64>, Spanned<i64>),
}

impl AxisParam {
    /// Reads `list` or the `h`/`w` pair. `required`: the pair needs both
    /// halves (kernel, stride); otherwise a missing half is 0 (pad).
    /// `single`: `list` is a non-repeated field (pooling), so the last value wins.
    pub(crate) fn read(
        op: &LayerRef,
        view: ParamView<'_>,
        [list, h, w]: [&'static str; 3],
        single: bool,
        required: bool,
        diags: &mut Vec<Diagnostic>,
    ) -> AxisParam {
        let values: Vec<Spanned<i64>> =
            if single { view.int(list).into_iter().collect() } else { view.ints(list) };
        let (hv, wv) = (view.int(h), view.int(w));
        if hv.is_none() && wv.is_none() {
            return AxisParam::List(values);
        }
        if let Some(first) = values.first() {
            let other = hv.as_ref().or(wv.as_ref()).map_or(op.type_span, |s| s.span);
            diags.push(
                op.error("lvc::param::conflict", format!("both `{list}` and `{h}`/`{w}` are set"))
                    .with_label(first.span, list.to_string())
                    .with_label(other, format!("{h}/{w}"))
                    .with_help(format!("give either `{list}` or `{h}` and `{w}`, not both")),
            );
        }
        let half =
            |v: Option<Spanned<i64>>, name: &str, other: &str, diags: &mut Vec<Diagnostic>| {
                v.unwrap_or_else(|| {
                    if required {
                        diags.push(
                            op.error(
                                "lvc::param::missing",
                                format!("`{other}` is set but `{name}` is not"),
                            )
                            .with_label(op.anchor(view, other), format!("{other} without {name}"))
                            .with_help(format!("set `{name}` too (or use `{list}` for both axes)")),
                        );
                    }
                    // A missing required half has been reported (the build fails),
                    // so its placeholder must not trigger range errors too; an
                    // optional half (pad) is Caffe's default 0.
                    Spanned::new(i64::from(required), op.anchor(view, other))
                })
            };
        let hv2 = half(hv, h, w, diags);
        let wv2 = half(wv, w, h, diags);
        AxisParam::HeightWidth(hv2, wv2)
    }

    /// All written values.
    pub fn written(&self) -> Vec<&Spanned<i64>> {
        match self {
            AxisParam::List(v) => v.iter().collect(),
            AxisParam::HeightWidth(h, w) => vec![h, w],
        }
    }

    /// The number of spatial axes the parameter itself implies, if any.
    fn implied_axes(&self) -> Option<usize> {
        match self {
            AxisParam::List(v) if v.len() > 1 => Some(v.len()),
            AxisParam::List(_) => None,
            AxisParam::HeightWidth(..) => Some(2),
        }
    }

    /// Values for `n` spatial axes (Caffe: 0 entries → default, 1 → broadcast,
    /// else exactly `n`), or `None` with an error.
    pub(crate) fn resolve(
        &self,
        op: &LayerRef,
        name: &str,
        n: usize,
        default: i64,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Vec<i64>> {
        match self {
            AxisParam::HeightWidth(h, w) => {
                if n == 2 {
                    return Some(vec![h.value, w.value]);
                }
                diags.push(
                    op.error(
                        "lvc::param::count",
                        format!("`{name}_h`/`{name}_w` only apply to 2-D inputs, but this bottom has {n} spatial axes"),
                    )
                    .with_label(h.span, "2-D only")
                    .with_help(format!("give `{name}` once, or once per spatial axis ({n} values)")),
                );
                None
            }
            AxisParam::List(v) => {
                match v.len() {
                    0 => Some(vec![default; n]),
                    1 => Some(vec![v[0].value; n]),
                    len if len == n => Some(v.iter().map(|s| s.value).collect()),
                    len => {
                        let mut d = op.error(
                        "lvc::param::count",
                        format!("`{name}` is given {len} times, but the bottom has {n} spatial axes"),
                    );
                        for s in v {
                            d = d.with_label(s.span, "");
                        }
                        diags.push(d.with_help(format!(
                            "give `{name}` once (for all axes) or {n} times (one per axis)"
                        )));
                        None
                    }
                }
            }
        }
    }
}

/// `convolution_param` with Caffe's defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvParams {
    pub num_output: Spanned<i64>,
    /// Default true.
    pub bias_term: bool,
    pub kernel: AxisParam,
    /// Default 1.
    pub stride: AxisParam,
    /// Default 0.
    pub pad: AxisParam,
    /// Default 1 (no `_h`/`_w` form).
    pub dilation: AxisParam,
    /// Default 1.
    pub group: Spanned<i64>,
    /// The channel axis; spatial axes are all after it. Default 1.
    pub axis: Spanned<i64>,
    pub weight_filler: FillerDef,
    pub bias_filler: FillerDef,
}

/// The resolved geometry for a given bottom: one entry per spatial axis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvGeometry {
    /// The channel axis (canonical).
    pub axis: usize,
    pub channels_in: i64,
    pub kernel: Vec<i64>,
    pub stride: Vec<i64>,
    pub pad: Vec<i64>,
    pub dilation: Vec<i64>,
}

impl ConvGeometry {
    /// `D·(K−1)+1` per axis, saturating (a dilated kernel beyond `i64` is
    /// larger than any input; [`ConvGeometry::checked_extent`] tells).
    pub fn extent(&self, i: usize) -> i64 {
        self.checked_extent(i).unwrap_or(i64::MAX)
    }

    /// `D·(K−1)+1`; `None` when it overflows `i64` (both are uint32 in
    /// caffe.proto, so their product can).
    pub fn checked_extent(&self, i: usize) -> Option<i64> {
        self.dilation[i].checked_mul(self.kernel[i] - 1)?.checked_add(1)
    }
}

/// A Convolution (`transposed == false`) or Deconvolution layer.
#[derive(Debug, Clone)]
pub struct ConvOp {
    pub layer: LayerRef,
    pub transposed: bool,
    pub params: ConvParams,
}

/// Builds a Convolution or (for `OpKind::Deconvolution`) a Deconvolution.
pub fn build(kind: OpKind, def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<ConvOp> {
    let transposed = kind == OpKind::Deconvolution;
    let op = LayerRef::of(def);
    let view = def.param_block("convolution_param");
    let errors_before = error_count(diags);
    let num_output = match view.int("num_output") {
        Some(n) if n.value > 0 => Some(n),
        Some(n) => {
            diags.push(
                op.error(
                    "lvc::param::range",
                    format!("num_output must be positive, got {}", n.value),
                )
                .with_label(n.span, "must be > 0")
                .with_help("set num_output to the number of output channels"),
            );
            None
        }
        None => {
            diags.push(
                op.error("lvc::param::missing", "num_output is not set")
                    .with_label(op.type_span, format!("{} without num_output", def.kind.value))
                    .with_help(
                        "set `convolution_param { num_output: N }`; DIGITS nets leave the last \
                         layer's num_output empty for DIGITS to fill in with the number of classes \
                         (2 for left-ventricle segmentation), so write that number in",
                    ),
            );
            None
        }
    };
    let [kernel, stride, pad, dilation] = read_window(&op, view, diags);
    let group = view.int_or_default("group");
    if group.value < 1 {
        diags.push(
            op.error("lvc::param::range", format!("group must be at least 1, got {}", group.value))
                .with_label(group.span, "must be ≥ 1")
                .with_help("use group: 1 for an ungrouped convolution"),
        );
    }
    let weight_filler = filler(&op, view.sub("weight_filler"), diags);
    let bias_filler = filler(&op, view.sub("bias_filler"), diags);
    let params = ConvParams {
        num_output: num_output?,
        bias_term: view.bool_or_default("bias_term").value,
        kernel,
        stride,
        pad,
        dilation,
        group,
        axis: view.int_or_default("axis"),
        weight_filler,
        bias_filler,
    };
    if transposed {
        warn_groupless_bilinear(&op, view, &params, diags);
    }
    let errors_after = error_count(diags);
    (errors_after == errors_before).then_some(ConvOp { layer: op, transposed, params })
}

/// kernel, stride, pad and dilation of a `convolution_param`, checked.
fn read_window(op: &LayerRef, view: ParamView<'_>, diags: &mut Vec<Diagnostic>) -> [AxisParam; 4] {
    let kernel =
        AxisParam::read(op, view, ["kernel_size", "kernel_h", "kernel_w"], false, true, diags);
    if kernel == AxisParam::List(Vec::new()) {
        diags.push(
            op.error(
                "lvc::param::missing",
                "no kernel size: set `kernel_size` or `kernel_h` and `kernel_w`",
            )
            .with_label(op.type_span, "kernel size missing")
            .with_help("add `kernel_size: K` to convolution_param"),
        );
    }
    let stride = AxisParam::read(op, view, ["stride", "stride_h", "stride_w"], false, true, diags);
    let pad = AxisParam::read(op, view, ["pad", "pad_h", "pad_w"], false, false, diags);
    let dilation = AxisParam::List(view.ints("dilation"));
    for (name, p, min) in [
        ("kernel_size", &kernel, 1),
        ("stride", &stride, 1),
        ("pad", &pad, 0),
        ("dilation", &dilation, 1),
    ] {
        for v in p.written().into_iter().filter(|v| v.value < min) {
            diags.push(
                op.error(
                    "lvc::param::range",
                    format!("{name} must be at least {min}, got {}", v.value),
                )
                .with_label(v.span, format!("must be ≥ {min}"))
                .with_help(format!("use a {name} of {min} or more")),
            );
        }
    }
    [kernel, stride, pad, dilation]
}

/// The geometry of `window` (kernel, stride, pad, dilation) for `bottom`.
fn resolve_geometry(
    op: &LayerRef,
    axis: &Spanned<i64>,
    [kernel, stride, pad, dilation]: [&AxisParam; 4],
    bottom: &BlobShape,
    diags: &mut Vec<Diagnostic>,
) -> Option<ConvGeometry> {
    let axis = canonical_axis(op, axis, bottom, "axis", diags)?;
    let n = bottom.rank() - axis - 1;
    // Not descriptor defaults: these fields are repeated (no `[default]`);
    // 1/0/1 are base_conv_layer.cpp's kDefaultStride/kDefaultPad/kDefaultDilation.
    let kernel = kernel.resolve(op, "kernel_size", n, 1, diags);
    let stride = stride.resolve(op, "stride", n, 1, diags);
    let pad = pad.resolve(op, "pad", n, 0, diags);
    let dilation = dilation.resolve(op, "dilation", n, 1, diags);
    Some(ConvGeometry {
        axis,
        channels_in: bottom.dims()[axis],
        kernel: kernel?,
        stride: stride?,
        pad: pad?,
        dilation: dilation?,
    })
}

/// FCN's coordinate maps of a convolution (or, `transposed`, a
/// deconvolution) window, one per spatial axis.
fn window_maps(op: &LayerRef, window: [&AxisParam; 4], transposed: bool) -> Option<Vec<AxisMap>> {
    // The parameters alone may not fix the number of spatial axes: then 2 (N×C×H×W).
    let n = window.iter().filter_map(|a| a.implied_axes()).max().unwrap_or(2);
    let mut sink = Vec::new();
    let [kernel, stride, pad, dilation] = window;
    // Repeated fields: Caffe's code defaults, as in `resolve_geometry`.
    let kernel = kernel.resolve(op, "kernel_size", n, 1, &mut sink)?;
    let stride = stride.resolve(op, "stride", n, 1, &mut sink)?;
    let pad = pad.resolve(op, "pad", n, 0, &mut sink)?;
    let dilation = dilation.resolve(op, "dilation", n, 1, &mut sink)?;
    Some(
        (0..n)
            .map(|i| {
                // In f64: the product of two uint32 may not fit i64.
                let extent = dilation[i] as f64 * (kernel[i] - 1) as f64 + 1.0;
                let (s, p) = (stride[i] as f64, pad[i] as f64);
                let centre = (extent - 1.0) / 2.0 - p;
                if transposed {
                    AxisMap { scale: s, shift: centre }
                } else {
                    AxisMap { scale: 1.0 / s, shift: -centre / s }
                }
            })
            .collect(),
    )
}

/// Caffe's bilinear filler writes the same kernel into every (in, out) slice,
/// so without `group: num_output` every class gets the sum of all input
/// channels: identical scores and an exactly zero gradient.
fn warn_groupless_bilinear(
    op: &LayerRef,
    view: ParamView<'_>,
    p: &ConvParams,
    diags: &mut Vec<Diagnostic>,
) {
    let n = p.num_output.value;
    if p.weight_filler.kind != "bilinear" || n <= 1 || p.group.value == n {
        return;
    }
    let filler_span = view.sub("weight_filler").value_span("type").unwrap_or(op.type_span);
    let mut d = op
        .warning(
            "lvc::init::bilinear_groupless",
            format!(
                "bilinear Deconvolution with num_output {n} and group {}: every output channel gets \
                 the upsampled sum of all input channels",
                p.group.value
            ),
        )
        .with_label(filler_span, "bilinear filler fills every (input, output) pair");
    if p.group.span != op.type_span {
        d = d.with_label(p.group.span, format!("group {}", p.group.value));
    }
    diags.push(d.with_help(format!(
        "set group: {n} so each class is upsampled on its own (as DIGITS' FCN-AlexNet does); as \
         written, all {n} class scores are identical and the gradient through this layer is exactly zero"
    )));
}

impl ConvOp {
    /// The kernel/stride/pad/dilation for a bottom of this shape, without
    /// diagnostics (`None` when the parameters don't fit the bottom).
    pub fn geometry(&self, bottom: &BlobShape) -> Option<ConvGeometry> {
        self.resolve(bottom, &mut Vec::new())
    }

    fn resolve(&self, bottom: &BlobShape, diags: &mut Vec<Diagnostic>) -> Option<ConvGeometry> {
        resolve_geometry(&self.layer, &self.params.axis, self.window(), bottom, diags)
    }

    fn window(&self) -> [&AxisParam; 4] {
        let p = &self.params;
        [&p.kernel, &p.stride, &p.pad, &p.dilation]
    }

    fn check_groups(&self, ctx: &mut ShapeCtx<'_>, channels_in: i64) -> bool {
        let p = &self.params;
        let (g, n) = (p.group.value, p.num_output.value);
        let mut ok = true;
        if channels_in % g != 0 {
            ok = false;
            ctx.diags.push(
                self.layer
                    .error(
                        "lvc::shape::group",
                        format!(
                            "group {g} does not divide the {}",
                            plural(channels_in as usize, "input channel")
                        ),
                    )
                    .with_label(p.group.span, format!("group {g}"))
                    .with_help(format!(
                        "the bottom has {}, which is not a multiple of group {g}; {}",
                        plural(channels_in as usize, "channel"),
                        group_suggestion(
                            g,
                            channels_in,
                            n,
                            "or feed a bottom whose channel count is a multiple of the group"
                        )
                    )),
            );
        }
        if n % g != 0 {
            ok = false;
            ctx.diags.push(
                self.layer
                    .error("lvc::shape::group", format!("group {g} does not divide num_output {n}"))
                    .with_label(p.group.span, format!("group {g}"))
                    .with_label(p.num_output.span, format!("num_output {n}"))
                    .with_help(format!(
                        "num_output {n} is not a multiple of group {g}; {}",
                        group_suggestion(g, channels_in, n, "or change num_output")
                    )),
            );
        }
        ok
    }

    /// Output size along spatial axis `i`; a convolution window that does
    /// not fit goes to `issues`, a deconvolution pad too large is reported.
    fn output_size(
        &self,
        ctx: &mut ShapeCtx<'_>,
        geo: &ConvGeometry,
        bottom: &BlobShape,
        i: usize,
        issues: &mut Vec<WindowIssue>,
    ) -> Option<i64> {
        let dim = geo.axis + 1 + i;
        let input = bottom.dims()[dim];
        // `extents_fit` was checked before: the extent is exact.
        let k = geo.extent(i);
        let (s, p) = (geo.stride[i], geo.pad[i]);
        if self.transposed {
            // In i128: stride and kernel are uint32, the input up to INT_MAX.
            let wide = i128::from(s) * (i128::from(input) - 1) + i128::from(k) - 2 * i128::from(p);
            let Ok(out) = i64::try_from(wide) else {
                ctx.diags.push(overflow(
                    &self.layer,
                    axis_span(&self.params.stride, i).unwrap_or(self.layer.type_span),
                    &format!(
                        "the deconvolution output along {} ({s}·({input}−1) + {k} − 2·{p})",
                        axis_name(dim, bottom.rank())
                    ),
                    "use a smaller stride or kernel_size",
                ));
                return None;
            };
            if out <= 0 {
                ctx.diags.push(
                    self.layer
                        .error(
                            "lvc::shape::kernel",
                            format!(
                                "deconvolution output along {} would be {out} ({s}·({input}−1) + {k} − 2·{p})",
                                axis_name(dim, bottom.rank())
                            ),
                        )
                        .with_label(self.pad_span(i), format!("pad {p}"))
                        .with_help(format!("use a pad below {}", (s * (input - 1) + k + 1) / 2)),
                );
                return None;
            }
            return Some(out);
        }
        forward_window(geo, bottom, i, self.kernel_span(i), issues)
    }

    fn kernel_span(&self, i: usize) -> lvc_grammar::Span {
        axis_span(&self.params.kernel, i).unwrap_or(self.layer.type_span)
    }
    fn pad_span(&self, i: usize) -> lvc_grammar::Span {
        axis_span(&self.params.pad, i).unwrap_or(self.layer.type_span)
    }

    fn check_bilinear(&self, ctx: &mut ShapeCtx<'_>, geo: &ConvGeometry) -> bool {
        if self.params.weight_filler.kind != "bilinear" {
            return true;
        }
        let square_2d = geo.kernel.len() == 2 && geo.kernel[0] == geo.kernel[1];
        if !square_2d {
            let k: Vec<String> = geo.kernel.iter().map(i64::to_string).collect();
            ctx.diags.push(
                self.layer
                    .error(
                        "lvc::init::bilinear_shape",
                        format!(
                            "the bilinear filler needs a square 2-D kernel, got {}",
                            k.join("×")
                        ),
                    )
                    .with_label(self.kernel_span(0), "kernel")
                    .with_help("use a single kernel_size on a 4-D (N, C, H, W) bottom"),
            );
        }
        square_2d
    }
}

/// Whether every dilated kernel `D·(K−1)+1` fits `i64`; otherwise one
/// `lvc::shape::too_large` on the kernel, naming the axes.
fn extents_fit(
    op: &LayerRef,
    geo: &ConvGeometry,
    rank: usize,
    kernel: &AxisParam,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let bad: Vec<usize> =
        (0..geo.kernel.len()).filter(|&i| geo.checked_extent(i).is_none()).collect();
    let Some(&first) = bad.first() else { return true };
    let axes =
        bad.iter().map(|&i| axis_name(geo.axis + 1 + i, rank)).collect::<Vec<_>>().join(" and ");
    diags.push(overflow(
        op,
        axis_span(kernel, first).unwrap_or(op.type_span),
        &format!(
            "the dilated kernel along {axes} (dilation {} · (kernel_size {} − 1) + 1)",
            geo.dilation[first], geo.kernel[first]
        ),
        "use a smaller kernel_size or dilation",
    ));
    false
}

/// The convolution output size along spatial axis `i` (`None` when empty);
/// a window that does not fit goes to `issues`. The extents were checked
/// ([`extents_fit`]).
fn forward_window(
    geo: &ConvGeometry,
    bottom: &BlobShape,
    i: usize,
    kernel_span: lvc_grammar::Span,
    issues: &mut Vec<WindowIssue>,
) -> Option<i64> {
    let dim = geo.axis + 1 + i;
    let (input, k, s, p) = (bottom.dims()[dim], geo.extent(i), geo.stride[i], geo.pad[i]);
    // C++ integer division truncates toward zero, as Rust's does. The input
    // is at most INT_MAX and pad a uint32, so `input + 2·pad` fits.
    let out = (input + 2 * p - k) / s + 1;
    let window = Window {
        input,
        pad: p,
        extent: k,
        out,
        kernel: geo.kernel[i],
        dilated: geo.dilation[i] != 1,
    };
    if !window.fits() {
        issues.push(WindowIssue { axis: axis_name(dim, bottom.rank()), window, span: kernel_span });
    }
    (out > 0).then_some(out)
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    i64::try_from(a).unwrap_or(i64::MAX)
}

fn axis_span(p: &AxisParam, i: usize) -> Option<lvc_grammar::Span> {
    match p {
        AxisParam::List(v) => v.get(i).or(v.first()).map(|s| s.span),
        AxisParam::HeightWidth(h, w) => Some(if i == 0 { h.span } else { w.span }),
    }
}

/// "use group: 2 or 4": the nearest groups below and above `group` that
/// divide both the input channels and num_output.
fn group_suggestion(group: i64, channels_in: i64, num_output: i64, otherwise: &str) -> String {
    // The groups that fit are the divisors of gcd(channels, num_output):
    // found in √gcd steps, where counting up to the channel count could take
    // billions for a hostile net.
    let common = gcd(channels_in, num_output);
    let (mut below, mut above): (Option<i64>, Option<i64>) = (None, None);
    let mut d = 1i64;
    while common > 0 && d <= common / d {
        if common % d == 0 {
            for g in [d, common / d] {
                if g < group {
                    below = below.max(Some(g));
                } else if g > group && g <= channels_in.min(num_output) {
                    above = Some(above.map_or(g, |a| a.min(g)));
                }
            }
        }
        d += 1;
    }
    match (below, above) {
        (Some(b), Some(a)) => format!("use group: {b} or {a}, {otherwise}"),
        (Some(b), None) => format!("use group: {b}, {otherwise}"),
        (None, Some(a)) => format!("use group: {a}, {otherwise}"),
        (None, None) => otherwise.to_string(),
    }
}

impl LayerOp for ConvOp {
    /// Each output value of a convolution is a dot product over
    /// C_in/g·∏k weights; each input value of a deconvolution is scattered
    /// through C_out/g·∏k weights (the weight's per-row size either way).
    fn forward_flops(
        &self,
        bottoms: &[BlobShape],
        tops: &[BlobShape],
        params: &[ParamShape],
    ) -> f64 {
        let Some(weight) = params.first() else { return 0.0 };
        let per_row = match weight.shape.dims().first() {
            Some(&rows) if rows > 0 => weight.shape.count() as f64 / rows as f64,
            _ => return 0.0,
        };
        let slid = if self.transposed { bottoms.first() } else { tops.first() };
        2.0 * slid.map_or(0.0, |s| s.count() as f64) * per_row
    }

    fn type_name(&self) -> &'static str {
        if self.transposed {
            "Deconvolution"
        } else {
            "Convolution"
        }
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        let arity = Arity::new((1, None), (1, None));
        if !arity.check(&self.layer, self.type_name(), ctx) {
            return None;
        }
        if ctx.layer.tops.len() != ctx.bottoms.len() {
            ctx.diags.push(
                self.layer
                    .error(
                        "lvc::shape::arity",
                        format!(
                            "{} pairs tops with bottoms one to one, but the layer lists {} bottoms and {} tops",
                            self.type_name(),
                            ctx.bottoms.len(),
                            ctx.layer.tops.len()
                        ),
                    )
                    .with_label(self.layer.type_span, "")
                    .with_help("list one top per bottom"),
            );
            return None;
        }
        if !bottoms_agree(
            &self.layer,
            ctx,
            "lvc::shape::mismatch",
            "all bottoms of a convolution must have the same shape",
            "the bottoms share one set of weights; feed blobs of one shape",
        ) {
            return None;
        }
        let bottom = ctx.bottoms[0].clone();
        let geo = self.resolve(&bottom, ctx.diags)?;
        if !extents_fit(&self.layer, &geo, bottom.rank(), &self.params.kernel, ctx.diags) {
            return None;
        }
        let groups_ok = self.check_groups(ctx, geo.channels_in);
        let bilinear_ok = self.check_bilinear(ctx, &geo);
        let mut issues = Vec::new();
        let spatial: Vec<Option<i64>> = (0..geo.kernel.len())
            .map(|i| self.output_size(ctx, &geo, &bottom, i, &mut issues))
            .collect();
        report_windows(&self.layer, ctx.diags, &issues);
        if !groups_ok || !bilinear_ok {
            return None;
        }
        let mut dims = bottom.dims()[..geo.axis].to_vec();
        dims.push(self.params.num_output.value);
        for s in spatial {
            dims.push(s?);
        }
        Some(vec![BlobShape(dims); ctx.bottoms.len()])
    }

    fn param_shapes(&self, bottoms: &[BlobShape]) -> Vec<ParamShape> {
        let Some(geo) = bottoms.first().and_then(|b| self.geometry(b)) else { return Vec::new() };
        let p = &self.params;
        let (g, n) = (p.group.value.max(1), p.num_output.value);
        let mut weight = if self.transposed {
            vec![geo.channels_in, n / g]
        } else {
            vec![n, geo.channels_in / g]
        };
        weight.extend(&geo.kernel);
        let mut blobs = vec![ParamShape {
            role: ParamRole::Weight,
            shape: BlobShape(weight),
            filler: Some(p.weight_filler.clone()),
        }];
        if p.bias_term {
            blobs.push(ParamShape {
                role: ParamRole::Bias,
                shape: BlobShape(vec![n]),
                filler: Some(p.bias_filler.clone()),
            });
        }
        blobs
    }

    fn coord_map(&self) -> Option<Vec<AxisMap>> {
        window_maps(&self.layer, self.window(), self.transposed)
    }
}

/// Im2col: every convolution window unfolded into channels, top
/// `[…, C·∏K, O…]` with the convolution's output size (`convolution_param`
/// without num_output; Caffe uses it inside its own convolution).
#[derive(Debug, Clone)]
pub struct Im2colOp {
    pub layer: LayerRef,
    pub kernel: AxisParam,
    pub stride: AxisParam,
    pub pad: AxisParam,
    pub dilation: AxisParam,
    pub axis: Spanned<i64>,
}

pub fn build_im2col(def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<Im2colOp> {
    let layer = LayerRef::of(def);
    let view = def.param_block("convolution_param");
    let errors_before = error_count(diags);
    let [kernel, stride, pad, dilation] = read_window(&layer, view, diags);
    let axis = view.int_or_default("axis");
    (error_count(diags) == errors_before).then_some(Im2colOp {
        layer,
        kernel,
        stride,
        pad,
        dilation,
        axis,
    })
}

impl Im2colOp {
    fn window(&self) -> [&AxisParam; 4] {
        [&self.kernel, &self.stride, &self.pad, &self.dilation]
    }
}

impl LayerOp for Im2colOp {
    fn type_name(&self) -> &'static str {
        "Im2col"
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        if !Arity::exact(1, 1).check(&self.layer, "Im2col", ctx) {
            return None;
        }
        let bottom = ctx.bottoms[0].clone();
        let geo = resolve_geometry(&self.layer, &self.axis, self.window(), &bottom, ctx.diags)?;
        if !extents_fit(&self.layer, &geo, bottom.rank(), &self.kernel, ctx.diags) {
            return None;
        }
        let mut issues = Vec::new();
        let spatial: Vec<Option<i64>> = (0..geo.kernel.len())
            .map(|i| {
                let span = axis_span(&self.kernel, i).unwrap_or(self.layer.type_span);
                forward_window(&geo, &bottom, i, span, &mut issues)
            })
            .collect();
        report_windows(&self.layer, ctx.diags, &issues);
        let mut dims = bottom.dims()[..geo.axis].to_vec();
        let Some(channels) =
            checked_product(&geo.kernel).and_then(|k| k.checked_mul(geo.channels_in))
        else {
            ctx.diags.push(overflow(
                &self.layer,
                axis_span(&self.kernel, 0).unwrap_or(self.layer.type_span),
                &format!(
                    "the unfolded channel count {} · {}",
                    geo.channels_in,
                    geo.kernel.iter().map(i64::to_string).collect::<Vec<_>>().join("·")
                ),
                "use a smaller kernel_size",
            ));
            return None;
        };
        dims.push(channels);
        for s in spatial {
            dims.push(s?);
        }
        Some(vec![BlobShape(dims)])
    }

    fn coord_map(&self) -> Option<Vec<AxisMap>> {
        window_maps(&self.layer, self.window(), false)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::run_layer;

    fn conv(params: &str) -> String {
        format!("name: \"conv\" type: \"Convolution\" bottom: \"x\" top: \"y\"\nconvolution_param {{ {params} }}")
    }
    fn deconv(params: &str) -> String {
        format!("name: \"up\" type: \"Deconvolution\" bottom: \"x\" top: \"y\"\nconvolution_param {{ {params} }}")
    }

    #[test]
    fn convolution_uses_the_floor_formula() {
        // FCN-AlexNet conv1 and the Sunnybrook tutorial's logged Caffe shapes.
        let cases: [(&str, i64, i64); 4] = [
            ("num_output: 96 kernel_size: 11 stride: 4 pad: 100", 256, 112),
            ("num_output: 100 kernel_size: 5 stride: 2 pad: 50", 256, 176),
            ("num_output: 200 kernel_size: 5 stride: 2", 88, 42),
            ("num_output: 300 kernel_size: 3", 21, 19),
        ];
        for (params, input, out) in cases {
            let r = run_layer(&conv(params), &[&[1, 1, input, input]]);
            assert_eq!(r.top(0)[2..], [out, out], "{params} on {input}");
        }
    }

    #[test]
    fn deconvolution_upsamples() {
        let r = run_layer(
            &deconv("num_output: 2 kernel_size: 63 stride: 32 bias_term: false group: 2"),
            &[&[1, 2, 9, 9]],
        );
        assert_eq!(r.top(0), [1, 2, 319, 319]);
        assert_eq!(r.param_dims(), [("weight", vec![2, 1, 63, 63])]);
        let r = run_layer(
            &deconv("num_output: 2 kernel_size: 31 stride: 16 pad: 8"),
            &[&[1, 2, 17, 17]],
        );
        assert_eq!(r.top(0), [1, 2, 271, 271]);
    }

    #[test]
    fn weight_layouts_differ_between_conv_and_deconv() {
        let r = run_layer(
            &conv("num_output: 6 kernel_size: 3 stride: 2 pad: 1 group: 2"),
            &[&[1, 4, 14, 11]],
        );
        assert_eq!(r.top(0), [1, 6, 7, 6]);
        assert_eq!(r.param_dims(), [("weight", vec![6, 2, 3, 3]), ("bias", vec![6])]);
        // Deconvolution: (C_in, C_out/group, k, k), as in the layer probe.
        let r =
            run_layer(&deconv("num_output: 3 kernel_size: 4 stride: 2 pad: 1"), &[&[1, 6, 7, 6]]);
        assert_eq!(r.top(0), [1, 3, 14, 12]);
        assert_eq!(r.param_dims(), [("weight", vec![6, 3, 4, 4]), ("bias", vec![3])]);
        let r =
            run_layer(&deconv("num_output: 4 kernel_size: 3 stride: 2 group: 2"), &[&[1, 6, 7, 6]]);
        assert_eq!(r.top(0), [1, 4, 15, 13]);
        assert_eq!(r.param_dims()[0], ("weight", vec![6, 2, 3, 3]));
    }

    #[test]
    fn fillers_get_caffe_defaults() {
        let r = run_layer(
            &conv("num_output: 2 kernel_size: 1 weight_filler { type: \"gaussian\" std: 0.01 }"),
            &[&[1, 3, 4, 4]],
        );
        let w = r.params[0].filler.as_ref().expect("weight filler");
        assert_eq!((w.kind.as_str(), w.std, w.mean), ("gaussian", 0.01, 0.0));
        let b = r.params[1].filler.as_ref().expect("bias filler");
        assert_eq!((b.kind.as_str(), b.value), ("constant", 0.0));
    }

    #[test]
    fn height_width_forms_and_broadcasting() {
        let r = run_layer(
            &conv("num_output: 8 kernel_h: 3 kernel_w: 5 stride_h: 1 stride_w: 2 pad_h: 1"),
            &[&[2, 3, 10, 10]],
        );
        assert_eq!(r.top(0), [2, 8, 10, 3]);
        assert_eq!(r.param_dims()[0], ("weight", vec![8, 3, 3, 5]));
        // Per-axis lists.
        let r = run_layer(
            &conv("num_output: 8 kernel_size: 3 kernel_size: 1 pad: 1 pad: 0"),
            &[&[1, 1, 10, 10]],
        );
        assert_eq!(r.top(0), [1, 8, 10, 10]);
    }

    #[test]
    fn n_d_convolution_dilation_and_axis() {
        let r = run_layer(&conv("num_output: 4 kernel_size: 3"), &[&[1, 2, 8, 9, 10]]);
        assert_eq!(r.top(0), [1, 4, 6, 7, 8]);
        assert_eq!(r.param_dims()[0], ("weight", vec![4, 2, 3, 3, 3]));
        let r = run_layer(&conv("num_output: 4 kernel_size: 3 dilation: 2"), &[&[1, 2, 9, 9]]);
        assert_eq!(r.top(0), [1, 4, 5, 5]);
        // Channel axis 2 of a 4-D blob: one spatial axis.
        let r = run_layer(&conv("num_output: 5 kernel_size: 3 axis: 2"), &[&[2, 3, 4, 9]]);
        assert_eq!(r.top(0), [2, 3, 5, 7]);
    }

    #[test]
    fn several_bottoms_share_weights() {
        let body =
            "name: \"c\" type: \"Convolution\" bottom: \"a\" bottom: \"b\" top: \"p\" top: \"q\"\n\
                    convolution_param { num_output: 2 kernel_size: 3 }";
        let r = run_layer(body, &[&[1, 1, 5, 5], &[1, 1, 5, 5]]);
        assert_eq!(r.tops.as_ref().map(Vec::len), Some(2));
        let r = run_layer(body, &[&[1, 1, 5, 5], &[1, 1, 6, 5]]);
        assert_eq!(r.codes(), ["lvc::shape::mismatch"]);
    }

    #[test]
    fn coord_maps_follow_fcn() {
        use crate::ops::{AxisMap, LayerOp, OpKind};
        let (_, def) =
            crate::ops::testing::layer(&conv("num_output: 1 kernel_size: 11 stride: 4 pad: 100"));
        let op = super::build(OpKind::Convolution, &def, &mut Vec::new()).expect("builds");
        assert_eq!(op.coord_map(), Some(vec![AxisMap { scale: 0.25, shift: 23.75 }; 2]));
        let (_, def) =
            crate::ops::testing::layer(&deconv("num_output: 1 kernel_size: 63 stride: 32"));
        let op = super::build(OpKind::Deconvolution, &def, &mut Vec::new()).expect("builds");
        assert_eq!(op.coord_map(), Some(vec![AxisMap { scale: 32.0, shift: 31.0 }; 2]));
    }

    #[test]
    fn group_must_divide_input_and_output() {
        let r =
            run_layer(&conv("num_output: 256 kernel_size: 5 pad: 2 group: 3"), &[&[1, 97, 56, 56]]);
        assert_eq!(r.codes(), ["lvc::shape::group", "lvc::shape::group"]);
        insta::assert_snapshot!(r.rendered());
    }

    #[test]
    fn missing_num_output_mentions_digits() {
        let r = run_layer(&conv("kernel_size: 1"), &[&[1, 4096, 9, 9]]);
        assert_eq!(r.codes(), ["lvc::param::missing"]);
        insta::assert_snapshot!(r.rendered());
    }

    #[test]
    fn bad_parameter_combinations_are_all_reported() {
        let r = run_layer(
            &conv("num_output: 0 kernel_size: 3 kernel_h: 3 stride: 0"),
            &[&[1, 1, 8, 8]],
        );
        assert_eq!(
            r.codes(),
            [
                "lvc::param::range",
                "lvc::param::conflict",
                "lvc::param::missing",
                "lvc::param::range"
            ]
        );
        insta::assert_snapshot!(r.rendered());
    }

    #[test]
    fn parameter_counts_must_fit_the_bottom() {
        let r = run_layer(
            &conv("num_output: 1 kernel_size: 3 kernel_size: 3 kernel_size: 3"),
            &[&[1, 1, 8, 8]],
        );
        assert_eq!(r.codes(), ["lvc::param::count"]);
        let r = run_layer(&conv("num_output: 1 kernel_h: 3 kernel_w: 3"), &[&[1, 1, 8, 8, 8]]);
        assert_eq!(r.codes(), ["lvc::param::count"]);
        let r = run_layer(&conv("num_output: 1 kernel_size: 3 axis: 4"), &[&[1, 1, 8, 8]]);
        assert_eq!(r.codes(), ["lvc::shape::axis"]);
    }

    #[test]
    fn kernel_larger_than_padded_input() {
        // Empty output: an error (Caffe: `Check failed: data_`).
        let r = run_layer(&conv("num_output: 512 kernel_size: 15"), &[&[1, 256, 14, 14]]);
        assert_eq!(r.codes(), ["lvc::shape::kernel"]);
        assert!(r.tops.is_none());
        // Truncating division still gives 1: a warning, with Caffe's size.
        let r = run_layer(&conv("num_output: 1 kernel_size: 4 stride: 2"), &[&[1, 1, 3, 8]]);
        assert_eq!(r.codes(), ["lvc::shape::kernel"]);
        assert!(!r.diags[0].is_error());
        assert_eq!(r.top(0), [1, 1, 1, 3]);
    }

    #[test]
    fn bilinear_deconvolution_needs_groups() {
        let r = run_layer(
            &deconv("num_output: 2 kernel_size: 4 stride: 2 bias_term: false weight_filler { type: \"bilinear\" }"),
            &[&[1, 2, 9, 9]],
        );
        assert_eq!(r.codes(), ["lvc::init::bilinear_groupless"]);
        assert_eq!(r.top(0), [1, 2, 20, 20]);
        let r = run_layer(
            &deconv("num_output: 2 group: 2 kernel_size: 4 stride: 2 weight_filler { type: \"bilinear\" }"),
            &[&[1, 2, 9, 9]],
        );
        assert!(r.diags.is_empty());
        let r = run_layer(
            &deconv("num_output: 1 kernel_h: 4 kernel_w: 2 stride: 2 weight_filler { type: \"bilinear\" }"),
            &[&[1, 1, 9, 9]],
        );
        assert_eq!(r.codes(), ["lvc::init::bilinear_shape"]);
    }

    #[test]
    fn unknown_filler_is_an_error() {
        let r = run_layer(
            &conv("num_output: 1 kernel_size: 1 weight_filler { type: \"gausian\" }"),
            &[&[1, 1, 2, 2]],
        );
        assert_eq!(r.codes(), ["lvc::param::filler"]);
    }

    #[test]
    fn im2col_unfolds_windows_into_channels() {
        let body =
            "name: \"i\" type: \"Im2col\" bottom: \"x\" top: \"y\" convolution_param { kernel_size: 3 stride: 2 }";
        assert_eq!(run_layer(body, &[&[2, 4, 9, 9]]).top(0), [2, 36, 4, 4]);
        let r =
            run_layer("name: \"i\" type: \"Im2col\" bottom: \"x\" top: \"y\"", &[&[2, 4, 9, 9]]);
        assert_eq!(r.codes(), ["lvc::param::missing"]);
    }
}
