//! Pooling (`pooling_param`): MAX / AVE / STOCHASTIC, global pooling, CEIL
//! rounding with Caffe's pad-clipping rule, FLOOR rounding
//! (`pooling_layer.cpp`).

use super::common::{
    axis_name, check_rank4, error_count, overflow, report_windows, Arity, LayerRef, Window,
    WindowIssue,
};
use super::conv::AxisParam;
use super::{AxisMap, BlobShape, LayerOp, ShapeCtx};
use crate::diag::Diagnostic;
use crate::schema::{LayerDef, Spanned};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMethod {
    Max,
    Ave,
    /// GPU-only in Caffe; test-time it is a probability-weighted average.
    Stochastic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundMode {
    /// Caffe's default: `ceil((I + 2P − K) / S) + 1`, then the pad-clipping rule.
    Ceil,
    /// `floor((I + 2P − K) / S) + 1` (the convolution formula).
    Floor,
}

/// `pooling_param` with Caffe's defaults applied; `[height, width]` pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolParams {
    /// Default MAX.
    pub method: PoolMethod,
    pub global: bool,
    /// `None` with global pooling (the kernel is the whole H×W).
    pub kernel: Option<[Spanned<i64>; 2]>,
    /// Default 1.
    pub stride: [Spanned<i64>; 2],
    /// Default 0.
    pub pad: [Spanned<i64>; 2],
    /// Default CEIL.
    pub round_mode: RoundMode,
}

#[derive(Debug, Clone)]
pub struct PoolOp {
    pub layer: LayerRef,
    pub params: PoolParams,
}

/// A pair from a single value (broadcast), the `_h`/`_w` form, or a default.
fn pair(p: AxisParam, default: Spanned<i64>) -> [Spanned<i64>; 2] {
    match p {
        AxisParam::HeightWidth(h, w) => [h, w],
        AxisParam::List(v) => match v.last() {
            Some(x) => [x.clone(), x.clone()],
            None => [default.clone(), default],
        },
    }
}

pub fn build(def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<PoolOp> {
    let op = LayerRef::of(def);
    let view = def.param_block("pooling_param");
    let errors_before = error_count(diags);
    let method = match view.ident_or_default("pool").value {
        "MAX" => PoolMethod::Max,
        "AVE" => PoolMethod::Ave,
        _ => PoolMethod::Stochastic,
    };
    let global = view.bool_or_default("global_pooling").value;
    let kernel =
        AxisParam::read(&op, view, ["kernel_size", "kernel_h", "kernel_w"], true, true, diags);
    let stride = AxisParam::read(&op, view, ["stride", "stride_h", "stride_w"], true, true, diags);
    // Unlike Convolution, Pooling wants both halves of a `_h`/`_w` pad
    // ("pad is pad OR pad_h and pad_w are required").
    let pad = AxisParam::read(&op, view, ["pad", "pad_h", "pad_w"], true, true, diags);
    let kernel_written = kernel != AxisParam::List(Vec::new());
    for (name, p, min) in [("kernel_size", &kernel, 1), ("stride", &stride, 1), ("pad", &pad, 0)] {
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
    // The descriptor's stride 1 / pad 0, for an axis left unwritten.
    let stride = pair(stride, Spanned::new(1, op.type_span));
    let pad = pair(pad, Spanned::new(0, op.type_span));
    let kernel = if global {
        if kernel_written {
            let span = kernel.written().first().map_or(op.type_span, |s| s.span);
            diags.push(
                op.error(
                    "lvc::param::conflict",
                    "global_pooling sets the kernel to the whole input; a kernel size is also given",
                )
                .with_label(span, "kernel size")
                .with_label(op.anchor(view, "global_pooling"), "global_pooling")
                .with_help("remove the kernel size, or drop `global_pooling: true`"),
            );
        }
        for (v, name, want) in [
            (&stride[0], "stride", 1),
            (&stride[1], "stride", 1),
            (&pad[0], "pad", 0),
            (&pad[1], "pad", 0),
        ] {
            if v.value != want {
                diags.push(
                    op.error(
                        "lvc::param::conflict",
                        format!("global_pooling needs {name} {want}, got {}", v.value),
                    )
                    .with_label(v.span, format!("{name} {}", v.value))
                    .with_help(format!(
                        "remove the {name} (global pooling uses pad 0 and stride 1)"
                    )),
                );
            }
        }
        None
    } else if kernel_written {
        Some(pair(kernel, Spanned::new(1, op.type_span)))
    } else {
        diags.push(
            op.error(
                "lvc::param::missing",
                "no kernel size: set `kernel_size`, `kernel_h` and `kernel_w`, or `global_pooling: true`",
            )
            .with_label(op.type_span, "kernel size missing")
            .with_help("add `kernel_size: K` to pooling_param"),
        );
        None
    };
    if let Some(k) = &kernel {
        for i in 0..2 {
            // A single `pad`/`kernel_size` covers both axes: report it once.
            let repeats_h = i == 1 && pad[1].span == pad[0].span && k[1].span == k[0].span;
            if pad[i].value == 0 || repeats_h {
                continue;
            }
            if method == PoolMethod::Stochastic {
                diags.push(
                    op.error(
                        "lvc::param::conflict",
                        "padding is implemented only for MAX and AVE pooling",
                    )
                    .with_label(pad[i].span, format!("pad {}", pad[i].value))
                    .with_label(op.anchor(view, "pool"), "STOCHASTIC")
                    .with_help("remove the pad, or use pool: MAX or AVE"),
                );
                break;
            }
            if pad[i].value >= k[i].value {
                diags.push(
                    op.error(
                        "lvc::param::range",
                        format!(
                            "pad {} is not smaller than the kernel {}",
                            pad[i].value, k[i].value
                        ),
                    )
                    .with_label(pad[i].span, format!("pad {}", pad[i].value))
                    .with_label(k[i].span, format!("kernel {}", k[i].value))
                    .with_help(format!(
                        "Caffe requires pad < kernel; use pad ≤ {}",
                        k[i].value - 1
                    )),
                );
            }
        }
    }
    let round_mode = match view.ident_or_default("round_mode").value {
        "FLOOR" => RoundMode::Floor,
        _ => RoundMode::Ceil,
    };
    let errors_after = error_count(diags);
    if errors_after != errors_before {
        return None;
    }
    let params = PoolParams { method, global, kernel, stride, pad, round_mode };
    Some(PoolOp { layer: op, params })
}

/// Caffe's pooled size along one axis (`stride` ≥ 1), before the
/// kernel-fit check; `any_pad`: a pad is set on some axis (Caffe applies
/// its clipping rule to both axes then). The one definition: the compiler's
/// shape rule and the runtime's kernels both use it. Integer maths, exact
/// for every size a blob can have (Caffe divides in `float`, which agrees
/// below 2^24).
pub fn pooled_size(
    input: i64,
    kernel: i64,
    stride: i64,
    pad: i64,
    any_pad: bool,
    round_mode: RoundMode,
) -> i64 {
    let span = input + 2 * pad - kernel;
    let steps = match round_mode {
        RoundMode::Ceil => -(-span).div_euclid(stride),
        RoundMode::Floor => span.div_euclid(stride),
    };
    let mut out = steps + 1;
    // The last window must start strictly inside the image plus the
    // leading pad; Caffe checks this whenever either axis is padded.
    if any_pad && (out - 1) * stride >= input + pad {
        out -= 1;
    }
    out
}

impl PoolOp {
    /// Kernel `[h, w]` for a bottom of this shape (the whole H×W when global).
    pub fn kernel_for(&self, bottom: &BlobShape) -> Option<[i64; 2]> {
        match (&self.params.kernel, bottom.dims()) {
            (Some([h, w]), _) => Some([h.value, w.value]),
            (None, [_, _, h, w]) => Some([*h, *w]),
            _ => None,
        }
    }
}

impl LayerOp for PoolOp {
    fn type_name(&self) -> &'static str {
        "Pooling"
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        let max_tops = if self.params.method == PoolMethod::Max { 2 } else { 1 };
        if !Arity::new((1, Some(1)), (1, Some(max_tops))).check(&self.layer, "Pooling", ctx) {
            return None;
        }
        let bottom = ctx.bottoms[0].clone();
        if !check_rank4(&self.layer, "Pooling", ctx, 0) {
            return None;
        }
        let kernel = self.kernel_for(&bottom)?;
        let p = &self.params;
        let any_pad = p.pad.iter().any(|x| x.value != 0);
        let mut dims = bottom.dims()[..2].to_vec();
        let mut issues = Vec::new();
        for i in 0..2 {
            let input = bottom.dims()[2 + i];
            let (s, pad) = (p.stride[i].value, p.pad[i].value);
            let out = pooled_size(input, kernel[i], s, pad, any_pad, self.params.round_mode);
            let window =
                Window { input, pad, extent: kernel[i], out, kernel: kernel[i], dilated: false };
            if !window.fits() {
                let span = p.kernel.as_ref().map_or(self.layer.type_span, |k| k[i].span);
                issues.push(WindowIssue { axis: axis_name(2 + i, 4), window, span });
            }
            dims.push(out);
        }
        report_windows(&self.layer, ctx.diags, &issues);
        let ok = dims[2..].iter().all(|&d| d > 0);
        ok.then(|| vec![BlobShape(dims); ctx.layer.tops.len()])
    }

    fn coord_map(&self) -> Option<Vec<AxisMap>> {
        let kernel = self.params.kernel.as_ref()?;
        Some(
            (0..2)
                .map(|i| {
                    let (k, s, p) = (
                        kernel[i].value as f64,
                        self.params.stride[i].value as f64,
                        self.params.pad[i].value as f64,
                    );
                    AxisMap { scale: 1.0 / s, shift: -((k - 1.0) / 2.0 - p) / s }
                })
                .collect(),
        )
    }
}

/// `roi_pooling_param` of the Faster R-CNN fork (`caffe-fast-rcnn`).
#[derive(Debug, Clone, PartialEq)]
pub struct RoiPoolParams {
    pub pooled_h: i64,
    pub pooled_w: i64,
    /// Image → feature-map coordinates; default 1.
    pub spatial_scale: f64,
}

/// ROIPooling: max-pools each region of interest (bottom 1, R×5 rows
/// `batch index, x1, y1, x2, y2`) of the feature map (bottom 0) to a fixed grid.
#[derive(Debug, Clone)]
pub struct RoiPoolOp {
    pub layer: LayerRef,
    pub params: RoiPoolParams,
}

pub fn build_roi(def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<RoiPoolOp> {
    let op = LayerRef::of(def);
    let v = def.param_block("roi_pooling_param");
    let mut size = |name: &str| match v.int(name) {
        Some(x) if x.value > 0 => Some(x.value),
        other => {
            diags.push(
                op.error("lvc::param::missing", format!("roi_pooling_param.{name} must be set to a positive size"))
                    .with_label(other.map_or(op.type_span, |x| x.span), name.to_string())
                    .with_help(format!(
                        "set `roi_pooling_param {{ {name}: 7 }}` (py-faster-rcnn uses 7 for VGG16, 6 for ZF)"
                    )),
            );
            None
        }
    };
    let (pooled_h, pooled_w) = (size("pooled_h"), size("pooled_w"));
    let params = RoiPoolParams {
        pooled_h: pooled_h?,
        pooled_w: pooled_w?,
        // Not in the descriptor: `roi_pooling_param` is the Fast R-CNN fork's
        // (its caffe.proto declares spatial_scale [default = 1]).
        spatial_scale: v.float("spatial_scale").map_or(1.0, |s| s.value),
    };
    Some(RoiPoolOp { layer: op, params })
}

impl LayerOp for RoiPoolOp {
    fn type_name(&self) -> &'static str {
        "ROIPooling"
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        if !Arity::exact(2, 1).check(&self.layer, "ROIPooling", ctx)
            || !check_rank4(&self.layer, "ROIPooling", ctx, 0)
        {
            return None;
        }
        let rois = ctx.bottoms[1].clone();
        let regions = rois.dims().first().copied().unwrap_or(0);
        if regions == 0 || rois.count() != regions * 5 {
            ctx.diags.push(
                self.layer
                    .error(
                        "lvc::shape::mismatch",
                        format!("ROIPooling needs regions of 5 values each (R×5), got {rois}"),
                    )
                    .with_label(ctx.bottom_span(1), format!("{rois}"))
                    .with_help("bottom 1 must hold rows (batch index, x1, y1, x2, y2), e.g. from a proposal layer"),
            );
            return None;
        }
        let channels = ctx.bottoms[0].dims()[1];
        Some(vec![BlobShape(vec![regions, channels, self.params.pooled_h, self.params.pooled_w])])
    }
}

/// SPP (`spp_param`): spatial pyramid pooling of an N×C×H×W blob into
/// `pyramid_height` levels of 1, 2×2, 4×4, … bins, flattened and joined.
#[derive(Debug, Clone)]
pub struct SppOp {
    pub layer: LayerRef,
    pub pyramid_height: Spanned<i64>,
    /// Default MAX.
    pub method: PoolMethod,
}

pub fn build_spp(def: &LayerDef, diags: &mut Vec<Diagnostic>) -> Option<SppOp> {
    let op = LayerRef::of(def);
    let v = def.param_block("spp_param");
    let pyramid_height = match v.int("pyramid_height") {
        Some(h) if h.value >= 1 => h,
        other => {
            diags.push(
                op.error(
                    "lvc::param::missing",
                    "spp_param.pyramid_height must be set to 1 or more",
                )
                .with_label(other.map_or(op.type_span, |h| h.span), "pyramid_height")
                .with_help("set `spp_param { pyramid_height: 3 }` (levels of 1, 2×2 and 4×4 bins)"),
            );
            return None;
        }
    };
    let method = match v.ident_or_default("pool").value {
        "AVE" => PoolMethod::Ave,
        "STOCHASTIC" => PoolMethod::Stochastic,
        _ => PoolMethod::Max,
    };
    Some(SppOp { layer: op, pyramid_height, method })
}

impl LayerOp for SppOp {
    fn type_name(&self) -> &'static str {
        "SPP"
    }

    fn infer_shapes(&self, ctx: &mut ShapeCtx<'_>) -> Option<Vec<BlobShape>> {
        if !Arity::exact(1, 1).check(&self.layer, "SPP", ctx)
            || !check_rank4(&self.layer, "SPP", ctx, 0)
        {
            return None;
        }
        let d = ctx.bottoms[0].dims();
        // Level l has 2^l × 2^l bins: (4^h − 1) / 3 in all. Beyond h = 31 that
        // overflows i64 (and a loop over h levels could run for billions).
        let h = self.pyramid_height.value;
        let channels = u32::try_from(h)
            .ok()
            .filter(|&h| h <= 31)
            .map(|h| ((1i64 << (2 * h)) - 1) / 3)
            .and_then(|bins| bins.checked_mul(d[1]));
        let Some(channels) = channels else {
            ctx.diags.push(overflow(
                &self.layer,
                self.pyramid_height.span,
                &format!("the output channels of {} pyramid levels", h),
                "use a pyramid_height of a few levels (3 gives 1 + 4 + 16 bins)",
            ));
            return None;
        };
        Some(vec![BlobShape(vec![d[0], channels])])
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::testing::{run_fork_layer, run_layer};

    fn pool(params: &str) -> String {
        format!("name: \"pool\" type: \"Pooling\" bottom: \"x\" top: \"y\"\npooling_param {{ {params} }}")
    }
    fn out(params: &str, h: i64, w: i64) -> [i64; 2] {
        let r = run_layer(&pool(params), &[&[1, 3, h, w]]);
        let t = r.top(0);
        [t[2], t[3]]
    }

    #[test]
    fn ceil_rounding_by_default() {
        assert_eq!(out("pool: MAX kernel_size: 3 stride: 2", 55, 55), [27, 27]); // AlexNet
        assert_eq!(out("pool: MAX kernel_size: 3 stride: 2", 112, 112), [56, 56]); // GoogLeNet
        assert_eq!(out("kernel_size: 2 stride: 2", 176, 42), [88, 21]); // Sunnybrook tutorial
        assert_eq!(out("kernel_size: 3 stride: 2 round_mode: FLOOR", 112, 112), [55, 55]);
        // FCN-8s at 256 (conv1 454): 227, 114, 57, 29, 15.
        let mut size = 454;
        for expected in [227, 114, 57, 29, 15] {
            size = out("pool: MAX kernel_size: 2 stride: 2", size, size)[0];
            assert_eq!(size, expected);
        }
    }

    #[test]
    fn pad_clipping_rule() {
        // Layer probe: k2 s2 p1 on 14×11 → 8×6 (width clipped from 7),
        // AVE k3 s2 p1 → 8×6, and without pad a hanging last window stays.
        assert_eq!(out("pool: MAX kernel_size: 2 stride: 2 pad: 1", 14, 11), [8, 6]);
        assert_eq!(out("pool: AVE kernel_size: 3 stride: 2 pad: 1", 14, 11), [8, 6]);
        assert_eq!(out("pool: MAX kernel_size: 3 stride: 2", 14, 11), [7, 5]);
        // A pad on one axis clips the other axis too (Caffe checks
        // `pad_h || pad_w`); unpadded, a window starting past the end stays.
        assert_eq!(out("kernel_h: 2 kernel_w: 1 stride: 2 pad_h: 1 pad_w: 0", 14, 4), [8, 2]);
        assert_eq!(out("kernel_h: 2 kernel_w: 1 stride: 2", 14, 4), [7, 3]);
    }

    #[test]
    fn global_pooling_and_rectangles() {
        assert_eq!(out("pool: AVE global_pooling: true", 7, 5), [1, 1]);
        assert_eq!(out("kernel_h: 3 kernel_w: 1 stride_h: 2 stride_w: 1", 9, 4), [4, 4]);
    }

    #[test]
    fn max_pooling_may_output_the_argmax_mask() {
        let body = "name: \"p\" type: \"Pooling\" bottom: \"x\" top: \"y\" top: \"mask\" pooling_param { kernel_size: 2 stride: 2 }";
        let r = run_layer(body, &[&[1, 1, 4, 4]]);
        assert_eq!(r.tops.as_ref().map(Vec::len), Some(2));
        let r = run_layer(&body.replace("kernel_size", "pool: AVE kernel_size"), &[&[1, 1, 4, 4]]);
        assert_eq!(r.codes(), ["lvc::shape::arity"]);
    }

    #[test]
    fn parameter_errors() {
        let cases: [(&str, &[&str]); 5] = [
            ("pool: MAX kernel_size: 2 pad: 2", &["lvc::param::range"]),
            ("pool: STOCHASTIC kernel_size: 3 pad: 1", &["lvc::param::conflict"]),
            ("stride: 2", &["lvc::param::missing"]),
            (
                "global_pooling: true kernel_size: 3 stride: 2",
                &["lvc::param::conflict", "lvc::param::conflict", "lvc::param::conflict"],
            ),
            ("kernel_h: 3", &["lvc::param::missing"]),
        ];
        let r = run_layer(&pool("kernel_size: 3 pad_h: 1"), &[&[1, 1, 8, 8]]);
        assert_eq!(r.codes(), ["lvc::param::missing"]);
        for (params, codes) in cases {
            assert_eq!(run_layer(&pool(params), &[&[1, 1, 8, 8]]).codes(), codes, "{params}");
        }
        let r = run_layer(&pool("pool: MAX kernel_size: 2 pad: 2"), &[&[1, 1, 8, 8]]);
        insta::assert_snapshot!(r.rendered());
    }

    #[test]
    fn needs_four_axes_and_a_fitting_kernel() {
        let r = run_layer(&pool("kernel_size: 2"), &[&[1, 3, 8]]);
        assert_eq!(r.codes(), ["lvc::shape::rank"]);
        // ceil((3 − 5)/1) + 1 = −1: empty.
        let r = run_layer(&pool("kernel_size: 5"), &[&[1, 3, 3, 8]]);
        assert_eq!(r.codes(), ["lvc::shape::kernel"]);
        assert!(r.tops.is_none());
    }

    #[test]
    fn roi_pooling() {
        let body = "name: \"roi_pool5\" type: \"ROIPooling\" bottom: \"conv5_3\" bottom: \"rois\" top: \"pool5\"\n\
                    roi_pooling_param { pooled_w: 7 pooled_h: 7 spatial_scale: 0.0625 }";
        let r = run_fork_layer(body, &[&[1, 512, 38, 50], &[128, 5]]);
        assert_eq!(r.top(0), [128, 512, 7, 7]);
        let r = run_fork_layer(body, &[&[1, 512, 38, 50], &[128, 4]]);
        assert_eq!(r.codes(), ["lvc::shape::mismatch"]);
        let r = run_fork_layer(&body.replace("pooled_w: 7", ""), &[&[1, 512, 38, 50], &[128, 5]]);
        assert_eq!(r.codes(), ["lvc::param::missing"]);
    }

    #[test]
    fn spatial_pyramid_pooling() {
        let body =
            "name: \"spp\" type: \"SPP\" bottom: \"x\" top: \"y\" spp_param { pyramid_height: 3 }";
        assert_eq!(run_layer(body, &[&[2, 256, 13, 13]]).top(0), [2, 256 * 21]);
        let r =
            run_layer("name: \"spp\" type: \"SPP\" bottom: \"x\" top: \"y\"", &[&[2, 256, 13, 13]]);
        assert_eq!(r.codes(), ["lvc::param::missing"]);
    }
}
