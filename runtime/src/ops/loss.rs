//! Softmax, SoftmaxWithLoss, Accuracy. Labels are float blobs read with
//! Caffe's `static_cast<int>` (truncation); the class axis is `axis`, and
//! `outer`/`inner` are the products of the axes before and after it.

use tch::{Kind, Tensor};

use lvc_compiler::ops::loss::{Loss, LossOp, Normalization};

use super::{scalar, DeviceConst, LowerCtx, LowerResult, Lowered};

/// `[outer, C, inner]` view of a blob whose class axis is `axis`.
fn class_view(x: &Tensor, axis: usize) -> Tensor {
    let shape = x.size();
    let outer: i64 = shape[..axis].iter().product();
    x.reshape([outer, shape[axis], -1])
}

/// Labels as `[outer, 1, inner]` int64, the mask of labels that count, and
/// the labels with ignored (and out-of-range) entries replaced so that they
/// can index.
struct Labels {
    safe: Tensor,
    valid: Tensor,
}

impl Labels {
    fn new(label: &Tensor, outer: i64, classes: i64, ignore_label: Option<i64>) -> Labels {
        let label = label.reshape([outer, 1, -1]).to_kind(Kind::Int64);
        let valid = match ignore_label {
            Some(ignore) => label.ne(ignore),
            None => label.ones_like().to_kind(Kind::Bool),
        };
        // `check_bottoms` refused out-of-range labels before the op ran;
        // clamping keeps indexing in bounds all the same.
        let safe = label.where_scalarother(&valid, 0).clamp(0, classes - 1);
        Labels { safe, valid }
    }
}

/// Refuses labels that would index outside the `classes` scores: after
/// Caffe's truncation to int, every label but `ignore_label` must lie in
/// `0..classes` (NaN truncates far outside).
fn labels_in_range(label: &Tensor, classes: i64, ignore_label: Option<i64>) -> Result<(), String> {
    let label = label.detach().to_kind(Kind::Int64);
    let outside = label.lt(0).logical_or(&label.ge(classes));
    let outside = match ignore_label {
        Some(ignore) => outside.logical_and(&label.ne(ignore)),
        None => outside,
    };
    let count = outside.sum(Kind::Int64).int64_value(&[]);
    if count == 0 {
        return Ok(());
    }
    let first = label.masked_select(&outside).int64_value(&[0]);
    let ignore = ignore_label.map_or_else(String::new, |i| format!(" or the ignore_label {i}"));
    Err(format!(
        "{count} label value(s) lie outside the {classes} classes (0..={}{ignore}), e.g. {first}",
        classes - 1
    ))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Softmax {
    pub axis: i64,
}

impl Lowered for Softmax {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        vec![bottoms[0].softmax(self.axis, Kind::Float)]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SoftmaxWithLoss {
    pub axis: usize,
    pub ignore_label: Option<i64>,
    pub normalization: Normalization,
    /// lvc extension: per-class weights on each pixel's loss and gradient.
    pub class_weights: Option<DeviceConst>,
    /// 2 when the probabilities are requested as a second top.
    pub tops: usize,
}

impl Lowered for SoftmaxWithLoss {
    fn check_bottoms(&self, bottoms: &[Tensor]) -> Result<(), String> {
        labels_in_range(&bottoms[1], bottoms[0].size()[self.axis], self.ignore_label)
    }

    /// The gradient is Caffe's `(p − onehot)·w/normaliser` (0 at ignored
    /// pixels), attached to the loss value with a zero-valued surrogate so
    /// that autograd returns exactly it: d/dx of log(max(p, FLT_MIN)) would
    /// differ where the clamp bites.
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let scores = class_view(&bottoms[0], self.axis);
        let [outer, classes, inner] = [0, 1, 2].map(|i| scores.size()[i]);
        let prob = scores.softmax(1, Kind::Float);
        let labels = Labels::new(&bottoms[1], outer, classes, self.ignore_label);
        let valid = labels.valid.to_kind(Kind::Float);
        let weight = match &self.class_weights {
            Some(w) => {
                valid
                    * w.on(scores.device())
                        .index_select(0, &labels.safe.flatten(0, -1))
                        .reshape(labels.safe.size())
            }
            None => valid,
        };
        let log_p = prob.gather(1, &labels.safe, false).clamp_min(f32::MIN_POSITIVE as f64).log();
        let normaliser = normaliser(self.normalization, outer * inner, outer, &labels.valid);
        let loss = caffe_reported_loss(&(&log_p * &weight).detach(), &normaliser);
        let onehot = prob.zeros_like().scatter_value(1, &labels.safe, 1.0);
        let grad = (&prob - onehot) * weight / &normaliser;
        let mut tops = vec![with_gradient(loss, &scores, grad)];
        if self.tops > 1 {
            tops.push(prob.detach().reshape(bottoms[0].size()));
        }
        tops
    }
}

/// Caffe's `get_normalizer`: what a loss layer divides its sum by — all
/// `total` elements, the `valid` ones (a mask), the `batch` size, or 1 —
/// never less than 1.
fn normaliser(normalization: Normalization, total: i64, batch: i64, valid: &Tensor) -> Tensor {
    let device = valid.device();
    match normalization {
        Normalization::Full => scalar(total as f64, device),
        Normalization::Valid => valid.sum(Kind::Float),
        Normalization::BatchSize => scalar(batch as f64, device),
        Normalization::None => scalar(1.0, device),
    }
    .clamp_min(1.0)
}

/// The loss `value` (no graph) with `grad` attached as its gradient with
/// respect to `input`: `Σ grad·input` minus its detached self is exactly 0,
/// so the value stays as Caffe computes it while autograd returns Caffe's
/// gradient rather than the derivative of the value's own formula.
fn with_gradient(value: Tensor, input: &Tensor, grad: Tensor) -> Tensor {
    let surrogate = (grad.detach() * input).sum(Kind::Float);
    value + (&surrogate - surrogate.detach())
}

/// The loss value as Caffe's CPU loss layers compute and print it:
/// `loss -= term` element by element (image, then position) in a float32
/// accumulator, then one float32 division by the normaliser (`term` is
/// log p for SoftmaxWithLoss). A pairwise sum is closer to the true value,
/// but on an unnormalised 256² map it differs from what Caffe prints by
/// ~5e-4 relative (golden README, surprise 2), and users compare logs. The
/// terms are copied to the host once per loss layer (65 536 floats per 256²
/// image); the gradient does not depend on this value.
fn caffe_reported_loss(terms: &Tensor, normaliser: &Tensor) -> Tensor {
    match Vec::<f32>::try_from(terms.to_device(tch::Device::Cpu).flatten(0, -1)) {
        // The float32 division happens on the device: the same IEEE
        // single-precision quotient, without copying the normaliser too.
        Ok(values) => {
            scalar(f64::from(values.iter().fold(0f32, |loss, &term| loss - term)), terms.device())
                / normaliser
        }
        // A float tensor on a live device, so the copy only fails if the
        // device itself failed; libtorch's sum then keeps the run's loss
        // defined and the next op reports the device error.
        Err(_) => -terms.sum(Kind::Float) / normaliser,
    }
}

/// Caffe's SigmoidCrossEntropyLoss: per element, the logistic loss of the
/// score against a target in [0, 1], computed stably as Caffe does
/// (`x·(t − [x ≥ 0]) − log(1 + exp(x − 2x·[x ≥ 0]))`), skipping targets equal
/// to `ignore_label`; the gradient is `(σ(x) − t) / normaliser` (none to the
/// targets, as in Caffe). Default normalisation BATCH_SIZE (the compiler's).
#[derive(Debug, Clone, PartialEq)]
pub struct SigmoidCrossEntropyLoss {
    pub ignore_label: Option<i64>,
    pub normalization: Normalization,
}

impl Lowered for SigmoidCrossEntropyLoss {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let x = &bottoms[0];
        let target = bottoms[1].detach().to_kind(Kind::Float).reshape(x.size());
        let valid = match self.ignore_label {
            Some(ignore) => target.ne(ignore as f64).to_kind(Kind::Float),
            None => target.ones_like(),
        };
        let batch = x.size().first().copied().unwrap_or(1);
        let normaliser = normaliser(self.normalization, x.numel() as i64, batch, &valid);
        let xd = x.detach();
        let positive = xd.ge(0.0).to_kind(Kind::Float);
        let terms =
            (&xd * (&target - &positive) - (&xd - &xd * &positive * 2.0).exp().log1p()) * &valid;
        let loss = caffe_reported_loss(&terms, &normaliser);
        let grad = (xd.sigmoid() - &target) * valid / &normaliser;
        vec![with_gradient(loss, x, grad)]
    }
}

/// Caffe's EuclideanLoss: `Σ (a − b)² / (2N)` with N the batch size; both
/// bottoms get a gradient (±(a − b)/N).
#[derive(Debug, Clone, PartialEq)]
pub struct EuclideanLoss;

impl Lowered for EuclideanLoss {
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let diff = &bottoms[0] - bottoms[1].reshape(bottoms[0].size());
        let batch = bottoms[0].size().first().copied().unwrap_or(1).max(1);
        vec![(&diff * &diff).sum(Kind::Float) / (2 * batch) as f64]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Accuracy {
    pub axis: usize,
    pub top_k: i64,
    pub ignore_label: Option<i64>,
    /// 2 when per-class accuracies are requested as a second top.
    pub tops: usize,
}

impl Lowered for Accuracy {
    fn check_bottoms(&self, bottoms: &[Tensor]) -> Result<(), String> {
        labels_in_range(&bottoms[1], bottoms[0].size()[self.axis], self.ignore_label)
    }

    /// A pixel is correct when fewer than `top_k` scores are ≥ the true
    /// class's other than itself: ties count against. No gradient.
    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let scores = class_view(&bottoms[0].detach(), self.axis);
        let [outer, classes] = [0, 1].map(|i| scores.size()[i]);
        let labels = Labels::new(&bottoms[1], outer, classes, self.ignore_label);
        let true_score = scores.gather(1, &labels.safe, false);
        let at_least_as_good = scores.ge_tensor(&true_score).sum_dim_intlist(1, true, Kind::Int64);
        let correct = at_least_as_good.le(self.top_k).logical_and(&labels.valid);
        let accuracy = correct.sum(Kind::Float) / labels.valid.sum(Kind::Float).clamp_min(1.0);
        let mut tops = vec![accuracy];
        if self.tops > 1 {
            let per_class = |mask: &Tensor| {
                scores.zeros_like().scatter_value(1, &labels.safe, 1.0) * mask.to_kind(Kind::Float)
            };
            let seen =
                per_class(&labels.valid).sum_dim_intlist([0i64, 2].as_slice(), false, Kind::Float);
            let hits =
                per_class(&correct).sum_dim_intlist([0i64, 2].as_slice(), false, Kind::Float);
            tops.push(hits / seen.clamp_min(1.0));
        }
        tops
    }
}

/// Dice per (image, class) from soft or hard memberships `[N, C, S]` and
/// the one-hot label `[N, C, S]`, both already masked by the valid pixels.
fn dice_per_image(pred: &Tensor, truth: &Tensor, smooth: f64) -> (Tensor, Tensor) {
    let overlap = (pred * truth).sum_dim_intlist(2, false, Kind::Float);
    let total =
        pred.sum_dim_intlist(2, false, Kind::Float) + truth.sum_dim_intlist(2, false, Kind::Float);
    ((overlap * 2.0 + smooth) / (&total + smooth), total)
}

/// The weights that average per-class Dice into the scalar: `class_weight`
/// when given (class 0 included), else 1 for every class but the background
/// class 0 (whose Dice says nothing about a segmentation), or 1 for a
/// single class.
fn averaging_weights(class_weight: &[f64], classes: i64) -> DeviceConst {
    DeviceConst::new(
        (0..classes)
            .map(|c| match class_weight.get(c as usize) {
                Some(&w) => w as f32,
                None if classes > 1 && c == 0 => 0.0,
                None => 1.0,
            })
            .collect(),
    )
}

/// Σ w_c·d_c / Σ w_c (0 when every weight is 0).
fn weighted_mean(per_class: &Tensor, weights: &DeviceConst) -> Tensor {
    let w = weights.on(per_class.device());
    (per_class * &w).sum(Kind::Float) / w.sum(Kind::Float).clamp_min(f32::MIN_POSITIVE as f64)
}

/// Shared by Dice and DiceLoss: `[N, C, S]` scores, valid mask, one-hot label.
struct DiceInputs {
    scores: Tensor,
    valid: Tensor,
    truth: Tensor,
}

impl DiceInputs {
    fn new(bottoms: &[Tensor], ignore_label: Option<i64>) -> DiceInputs {
        let shape = bottoms[0].size();
        let scores = bottoms[0].reshape([shape[0], shape[1], -1]);
        let labels = Labels::new(&bottoms[1], shape[0], shape[1], ignore_label);
        let valid = labels.valid.to_kind(Kind::Float);
        let truth = scores.zeros_like().scatter_value(1, &labels.safe, 1.0) * &valid;
        DiceInputs { scores, valid, truth }
    }
}

/// lvc's Dice metric: argmax prediction; per image and class
/// `2|P∩L| / (|P|+|L|)` over non-ignored pixels, `empty_score` when both are
/// empty; top 0 the batch mean averaged over classes with
/// `averaging_weights`, top 1 the per-class batch means `[C]`. No gradient.
#[derive(Debug, Clone, PartialEq)]
pub struct Dice {
    pub ignore_label: Option<i64>,
    pub weights: DeviceConst,
    pub empty_score: f64,
    pub tops: usize,
}

impl Lowered for Dice {
    fn check_bottoms(&self, bottoms: &[Tensor]) -> Result<(), String> {
        labels_in_range(&bottoms[1], bottoms[0].size()[1], self.ignore_label)
    }

    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let detached: Vec<Tensor> = bottoms.iter().map(Tensor::detach).collect();
        let d = DiceInputs::new(&detached, self.ignore_label);
        let predicted = d.scores.argmax(1, true);
        let pred = d.scores.zeros_like().scatter_value(1, &predicted, 1.0) * &d.valid;
        let (dice, total) = dice_per_image(&pred, &d.truth, 0.0);
        let dice = dice.where_scalarother(&total.gt(0.0), self.empty_score);
        let per_class = dice.mean_dim(0, false, Kind::Float);
        let mut tops = vec![weighted_mean(&per_class, &self.weights)];
        if self.tops > 1 {
            tops.push(per_class);
        }
        tops
    }
}

/// Soft Dice loss on the softmax probabilities: per image and class
/// `(2 Σ p·l + smooth) / (Σ p + Σ l + smooth)` over non-ignored pixels;
/// top 0 = 1 − the batch mean averaged over classes with
/// `averaging_weights` (differentiable), top 1 the per-class soft Dice `[C]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiceLoss {
    pub smooth: f64,
    pub ignore_label: Option<i64>,
    pub weights: DeviceConst,
    pub tops: usize,
}

impl Lowered for DiceLoss {
    fn check_bottoms(&self, bottoms: &[Tensor]) -> Result<(), String> {
        labels_in_range(&bottoms[1], bottoms[0].size()[1], self.ignore_label)
    }

    fn forward(&self, bottoms: &[Tensor], _params: &[Tensor], _train: bool) -> Vec<Tensor> {
        let d = DiceInputs::new(bottoms, self.ignore_label);
        let prob = d.scores.softmax(1, Kind::Float) * &d.valid;
        let (dice, _) = dice_per_image(&prob, &d.truth, self.smooth);
        let per_class = dice.mean_dim(0, false, Kind::Float);
        let loss = 1.0 - weighted_mean(&per_class, &self.weights);
        let mut tops = vec![loss];
        if self.tops > 1 {
            tops.push(per_class.detach());
        }
        tops
    }
}

pub(crate) fn lower(op: &LossOp, ctx: &LowerCtx<'_>) -> LowerResult {
    let tops = ctx.node.tops.len();
    let axis = |a: i64| {
        ctx.bottoms
            .first()
            .and_then(|b| b.canonical_axis(a))
            .ok_or_else(|| format!("axis {a} out of range"))
    };
    let ignore = |l: &Option<lvc_compiler::schema::Spanned<i64>>| l.as_ref().map(|l| l.value);
    let weights =
        |w: &[lvc_compiler::schema::Spanned<f64>]| w.iter().map(|w| w.value).collect::<Vec<_>>();
    let classes = ctx.bottoms.first().and_then(|b| b.dims().get(1).copied()).unwrap_or(1);
    match &op.loss {
        Loss::Softmax { axis: a } => {
            axis(a.value).map(|a| Box::new(Softmax { axis: a as i64 }) as Box<dyn Lowered>)
        }
        Loss::SoftmaxWithLoss { axis: a, loss } => axis(a.value).map(|a| {
            Box::new(SoftmaxWithLoss {
                axis: a,
                ignore_label: ignore(&loss.ignore_label),
                normalization: loss.normalization,
                class_weights: (!loss.class_weight.is_empty()).then(|| {
                    DeviceConst::new(loss.class_weight.iter().map(|w| w.value as f32).collect())
                }),
                tops,
            }) as Box<dyn Lowered>
        }),
        Loss::Accuracy { top_k, axis: a, ignore_label } => axis(a.value).map(|a| {
            Box::new(Accuracy {
                axis: a,
                top_k: top_k.value,
                ignore_label: ignore(ignore_label),
                tops,
            }) as Box<dyn Lowered>
        }),
        Loss::Dice(p) => Ok(Box::new(Dice {
            ignore_label: ignore(&p.ignore_label),
            weights: averaging_weights(&weights(&p.class_weight), classes),
            empty_score: p.empty_score,
            tops,
        })),
        Loss::DiceLoss(p) => Ok(Box::new(DiceLoss {
            smooth: p.smooth,
            ignore_label: ignore(&p.ignore_label),
            weights: averaging_weights(&weights(&p.class_weight), classes),
            tops,
        })),
        Loss::SigmoidCrossEntropyLoss { loss } => Ok(Box::new(SigmoidCrossEntropyLoss {
            ignore_label: ignore(&loss.ignore_label),
            normalization: loss.normalization,
        })),
        Loss::EuclideanLoss => Ok(Box::new(EuclideanLoss)),
        _ => Err(super::not_run(op.type_name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::*;

    fn loss(normalization: Normalization, ignore_label: Option<i64>) -> SoftmaxWithLoss {
        SoftmaxWithLoss { axis: 1, ignore_label, normalization, class_weights: None, tops: 1 }
    }

    #[test]
    fn softmax_with_loss_normalisations_and_ignore() {
        // 2 classes × 3 pixels; pixel 2 ignored.
        let scores = t(&[0., 1., 2., 0., 0., 0.], &[1, 2, 1, 3]);
        let label = t(&[0., 1., 255.], &[1, 1, 1, 3]);
        let p0 = |s: f32| 1.0 / (1.0 + (-s).exp()); // P(class 0) when the other score is 0
        let nll = -(p0(0.0).ln()) - (1.0 - p0(1.0)).ln();
        let run = |l: &SoftmaxWithLoss| {
            vals(&l.forward(&[scores.shallow_clone(), label.shallow_clone()], &[], false)[0])[0]
        };
        assert!((run(&loss(Normalization::Valid, Some(255))) - nll / 2.0).abs() < 1e-6);
        assert!((run(&loss(Normalization::Full, Some(255))) - nll / 3.0).abs() < 1e-6);
        assert!((run(&loss(Normalization::BatchSize, Some(255))) - nll).abs() < 1e-6);
        assert!((run(&loss(Normalization::None, Some(255))) - nll).abs() < 1e-6);
        // Everything ignored: normaliser max(1, 0) → loss 0, not NaN.
        let all_ignored = t(&[255.; 3], &[1, 1, 1, 3]);
        let l = loss(Normalization::Valid, Some(255));
        assert_eq!(vals(&l.forward(&[scores.shallow_clone(), all_ignored], &[], false)[0])[0], 0.0);
    }

    #[test]
    fn softmax_with_loss_gradient_is_caffes() {
        let scores = t(&[0., 1., 2., 0., 0., 0.], &[1, 2, 1, 3]);
        let label = t(&[0., 1., 255.], &[1, 1, 1, 3]);
        let l = loss(Normalization::Valid, Some(255));
        let x = scores.set_requires_grad(true);
        l.forward(&[x.shallow_clone(), label], &[], false)[0].backward();
        let p = vals(&x.detach().softmax(1, Kind::Float));
        // (p − onehot)/2, zero at the ignored pixel.
        let want = [(p[0] - 1.0) / 2.0, p[1] / 2.0, 0.0, p[3] / 2.0, (p[4] - 1.0) / 2.0, 0.0];
        assert_close(&x.grad(), &want, 1e-6);
    }

    #[test]
    fn class_weights_scale_loss_and_gradient() {
        let scores = t(&[0., 0.], &[1, 2, 1, 1]);
        let label = t(&[1.], &[1, 1, 1, 1]);
        let l = SoftmaxWithLoss {
            class_weights: Some(DeviceConst::new(vec![1.0, 3.0])),
            ..loss(Normalization::Valid, None)
        };
        let x = scores.set_requires_grad(true);
        let top = l.forward(&[x.shallow_clone(), label], &[], false).remove(0);
        assert!((vals(&top)[0] - 3.0 * 2f32.ln()).abs() < 1e-6);
        top.backward();
        assert_close(&x.grad(), &[1.5, -1.5], 1e-6);
    }

    #[test]
    fn sigmoid_cross_entropy_value_gradient_and_ignore() {
        let x = t(&[0., 2., -3., 1.], &[2, 2]);
        let target = t(&[1., 0., 0., 255.], &[2, 2]);
        let l = SigmoidCrossEntropyLoss {
            ignore_label: Some(255),
            normalization: Normalization::BatchSize,
        };
        let run = |x: &Tensor| {
            l.forward(&[x.shallow_clone(), target.shallow_clone()], &[], true).remove(0)
        };
        let bce = |x: f64, t: f64| {
            -(t * (1.0 / (1.0 + (-x).exp())).ln() + (1.0 - t) * (1.0 / (1.0 + x.exp())).ln())
        };
        let want = (bce(0.0, 1.0) + bce(2.0, 0.0) + bce(-3.0, 0.0)) / 2.0;
        assert!((vals(&run(&x))[0] as f64 - want).abs() < 1e-6, "{} vs {want}", vals(&run(&x))[0]);
        // d/dx = (σ(x) − t) / N, 0 where ignored; the kink-free σ(0) = ½ at 0.
        let x = x.set_requires_grad(true);
        run(&x).backward();
        let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
        assert_close(
            &x.grad(),
            &[(0.5 - 1.0) / 2.0, sigmoid(2.0) / 2.0, sigmoid(-3.0) / 2.0, 0.0],
            1e-6,
        );
    }

    #[test]
    fn euclidean_loss_halves_the_squared_distance_per_image() {
        let a = t(&[1., 2., 3., 4.], &[2, 2]).set_requires_grad(true);
        let b = t(&[0., 2., 5., 4.], &[2, 2]).set_requires_grad(true);
        let loss =
            EuclideanLoss.forward(&[a.shallow_clone(), b.shallow_clone()], &[], true).remove(0);
        assert_close(&loss, &[(1.0 + 4.0) / 4.0], 0.0);
        loss.backward();
        assert_close(&a.grad(), &[0.5, 0., -1., 0.], 0.0);
        assert_close(&b.grad(), &[-0.5, 0., 1., 0.], 0.0);
    }

    #[test]
    fn tiny_probabilities_clamp_at_flt_min() {
        let scores = t(&[0., 200.], &[1, 2]);
        let label = t(&[0.], &[1]);
        let l = loss(Normalization::Valid, None);
        let v = vals(&l.forward(&[scores, label], &[], false)[0])[0];
        assert!((v + f32::MIN_POSITIVE.ln()).abs() < 1e-3, "{v}");
    }

    #[test]
    fn accuracy_ties_count_against_and_per_class() {
        // Pixels: correct, tie (wrong), wrong, ignored.
        let scores = t(&[2., 1., 0., 9., 1., 1., 1., 0.], &[1, 2, 4]);
        let label = t(&[0., 0., 0., 255.], &[1, 4]);
        let acc = Accuracy { axis: 1, top_k: 1, ignore_label: Some(255), tops: 2 };
        let tops = acc.forward(&[scores.shallow_clone(), label.shallow_clone()], &[], false);
        assert_close(&tops[0], &[1.0 / 3.0], 1e-6);
        assert_close(&tops[1], &[1.0 / 3.0, 0.0], 1e-6);
        let top2 = Accuracy { top_k: 2, ..acc };
        assert_close(&top2.forward(&[scores, label], &[], false)[0], &[1.0], 0.0);
    }

    #[test]
    fn dice_metric_per_image_with_empty_score_and_ignore() {
        // Two images, 2 classes, 4 pixels. Image 0: predicted fg {0,1}, label fg {1,2}
        // → 2·1/(2+2) = 0.5. Image 1: nothing predicted, nothing labelled → empty_score.
        let fg = [1., 1., -1., -1., -1., -1., -1., -1.];
        let mut s = vec![0f32; 16];
        for n in 0..2 {
            for p in 0..4 {
                s[n * 8 + 4 + p] = fg[n * 4 + p]; // class 1 score; class 0 stays 0
            }
        }
        let scores = t(&s, &[2, 2, 1, 4]);
        let label = t(&[0., 1., 1., 0., 0., 0., 0., 0.], &[2, 1, 1, 4]);
        let dice = Dice {
            ignore_label: None,
            weights: averaging_weights(&[], 2),
            empty_score: 1.0,
            tops: 2,
        };
        let tops = dice.forward(&[scores.shallow_clone(), label.shallow_clone()], &[], false);
        assert_close(&tops[0], &[0.75], 1e-6);
        // Background: image 0 pred {2,3} vs label {0,3} → 0.5; image 1 all 4 vs all 4 → 1.
        assert_close(&tops[1], &[0.75, 0.75], 1e-6);
        let zero_if_empty = Dice { empty_score: 0.0, ..dice.clone() };
        assert_close(
            &zero_if_empty.forward(&[scores.shallow_clone(), label.shallow_clone()], &[], false)[0],
            &[0.25],
            1e-6,
        );
        // Ignoring pixel 0 of image 0 removes the false positive there: 2/(1+2).
        let ignored = t(&[255., 1., 1., 0., 0., 0., 0., 0.], &[2, 1, 1, 4]);
        let dice = Dice { ignore_label: Some(255), ..dice };
        assert_close(
            &dice.forward(&[scores.shallow_clone(), ignored.shallow_clone()], &[], false)[0],
            &[(2.0 / 3.0 + 1.0) / 2.0],
            1e-6,
        );
        // Explicit class weights include the background. Background with pixel 0
        // ignored: image 0 pred {2,3} vs label {3} → 2/3; image 1 → 1.
        let weighted = Dice { weights: averaging_weights(&[1.0, 3.0], 2), ..dice };
        let background = (2.0f32 / 3.0 + 1.0) / 2.0;
        let want = (background + 3.0 * (2.0 / 3.0 + 1.0) / 2.0) / 4.0;
        assert_close(&weighted.forward(&[scores, ignored], &[], false)[0], &[want], 1e-6);
    }

    #[test]
    fn dice_loss_is_soft_smoothed_and_differentiable() {
        let scores = t(&[0., 0., 0., 0.], &[1, 2, 1, 2]);
        let label = t(&[1., 0.], &[1, 1, 1, 2]);
        let loss = DiceLoss {
            smooth: 1.0,
            ignore_label: None,
            weights: averaging_weights(&[], 2),
            tops: 1,
        };
        let x = scores.set_requires_grad(true);
        let top = loss.forward(&[x.shallow_clone(), label], &[], false).remove(0);
        // p = 0.5 everywhere; fg: (2·0.5 + 1) / (1 + 1 + 1) = 2/3.
        assert_close(&top, &[1.0 / 3.0], 1e-6);
        top.backward();
        let g = vals(&x.grad());
        // Raising the fg score on the fg pixel lowers the loss; on the bg pixel raises it.
        assert!(g[2] < 0.0 && g[3] > 0.0, "{g:?}");
    }
}
