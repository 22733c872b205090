//! Dice and DiceLoss through the whole path (prototxt → compiler → executor
//! → autograd): DiceLoss values against a float64 reference, its gradient
//! against central finite differences, smoothing, class weights, ignored
//! pixels, DiceLoss + SoftmaxWithLoss summed through loss_weight, and the
//! Dice metric on empty masks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use lvc_compiler::ir::{compile, CompileOptions};
use lvc_compiler::schema::Phase;
use lvc_compiler::SourceFile;
use lvc_runtime::exec::{Net, Plan};
use lvc_runtime::tch::{Kind, Tensor};

mod test_device;
use test_device::test_device;

const N: usize = 2;
const C: usize = 3;
const S: usize = 12; // 3 x 4 pixels

fn net(layers: &str) -> Net {
    let text = format!(
        "force_backward: true\n\
         layer {{ name: \"score\" type: \"Input\" top: \"score\" input_param {{ shape {{ dim: {N} dim: {C} dim: 3 dim: 4 }} }} }}\n\
         layer {{ name: \"label\" type: \"Input\" top: \"label\" input_param {{ shape {{ dim: {N} dim: 1 dim: 3 dim: 4 }} }} }}\n\
         {layers}"
    );
    let source = SourceFile::new("dice_test.prototxt", text);
    let compiled =
        compile(&source, &CompileOptions { phase: Phase::Train, ..CompileOptions::default() });
    assert!(compiled.is_ok(), "{:#?}", compiled.diags);
    let plan =
        Plan::from_graph(compiled.graph.as_ref().unwrap(), compiled.net.as_ref().unwrap()).unwrap();
    Net::new(plan, test_device(), 1).unwrap()
}

/// Deterministic scores in about [-2, 2].
fn scores() -> Vec<f32> {
    (0..N * C * S).map(|i| (i as f32 * 0.73).sin() * 2.0).collect()
}

/// Labels in {0, 1, 2}; pixel 5 of image 1 ignored (255).
fn labels() -> Vec<f32> {
    (0..N * S).map(|i| if i == S + 5 { 255.0 } else { ((i * 7 / 3) % C) as f32 }).collect()
}

fn tensor(values: &[f32], shape: &[i64]) -> Tensor {
    Tensor::from_slice(values).reshape(shape)
}

/// Loss and d loss / d score of the net at `scores`.
fn run(net: &Net, scores: &[f32], labels: &[f32]) -> (f64, Vec<f64>) {
    let inputs = [
        ("score", tensor(scores, &[N as i64, C as i64, 3, 4])),
        ("label", tensor(labels, &[N as i64, 1, 3, 4])),
    ];
    let blobs = net.forward(&inputs).unwrap();
    let loss = f64::try_from(blobs.loss.as_ref().unwrap().detach().to_kind(Kind::Double)).unwrap();
    let grads = net.backward(&blobs);
    let id = net.plan.blob_id("score").unwrap();
    let grad = Vec::<f32>::try_from(grads.blobs[id].as_ref().unwrap().flatten(0, -1)).unwrap();
    (loss, grad.into_iter().map(f64::from).collect())
}

/// float64 reference: 1 − Σ_c w_c·mean_n d_nc / Σ_c w_c with
/// d_nc = (2 Σ p·l + smooth) / (Σ p + Σ l + smooth) over valid pixels.
fn reference_loss(
    scores: &[f32],
    labels: &[f32],
    smooth: f64,
    weights: &[f64],
    ignore: f64,
) -> f64 {
    let mut per_class = [0.0f64; C];
    for n in 0..N {
        for (c, total) in per_class.iter_mut().enumerate() {
            let (mut overlap, mut p_sum, mut l_sum) = (0.0, 0.0, 0.0);
            for s in 0..S {
                let label = f64::from(labels[n * S + s]);
                if label == ignore {
                    continue;
                }
                let z: Vec<f64> = (0..C).map(|k| f64::from(scores[(n * C + k) * S + s])).collect();
                let max = z.iter().cloned().fold(f64::MIN, f64::max);
                let denom: f64 = z.iter().map(|v| (v - max).exp()).sum();
                let p = (z[c] - max).exp() / denom;
                let l = if label as usize == c { 1.0 } else { 0.0 };
                overlap += p * l;
                p_sum += p;
                l_sum += l;
            }
            *total += (2.0 * overlap + smooth) / (p_sum + l_sum + smooth) / N as f64;
        }
    }
    let wsum: f64 = weights.iter().sum();
    1.0 - per_class.iter().zip(weights).map(|(d, w)| d * w).sum::<f64>() / wsum
}

/// Central differences of the net's loss, compared with backward within
/// 1e-3 of max|gradient|.
fn check_gradient(net: &Net, scores: &[f32], labels: &[f32]) {
    let (_, grad) = run(net, scores, labels);
    let eps = 1e-2f32;
    let scale = grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    assert!(scale > 1e-4, "the gradient is not trivially zero: {scale}");
    for i in 0..scores.len() {
        let mut plus = scores.to_vec();
        plus[i] += eps;
        let mut minus = scores.to_vec();
        minus[i] -= eps;
        let numeric =
            (run(net, &plus, labels).0 - run(net, &minus, labels).0) / (2.0 * f64::from(eps));
        assert!(
            (numeric - grad[i]).abs() <= 1e-3 * scale,
            "element {i}: backward {} vs finite difference {numeric}",
            grad[i]
        );
    }
}

const DICE_LOSS: &str =
    "layer { name: \"loss\" type: \"DiceLoss\" bottom: \"score\" bottom: \"label\" top: \"loss\" \
                         dice_param { smooth: 1 ignore_label: 255 } }";

#[test]
fn dice_loss_matches_a_float64_reference_and_finite_differences() {
    let net = net(DICE_LOSS);
    let (loss, grad) = run(&net, &scores(), &labels());
    // Default averaging: the background class 0 has weight 0.
    let want = reference_loss(&scores(), &labels(), 1.0, &[0.0, 1.0, 1.0], 255.0);
    assert!((loss - want).abs() <= 1e-6, "loss {loss} vs reference {want}");
    check_gradient(&net, &scores(), &labels());
    // The ignored pixel gets exactly no gradient in any class.
    for c in 0..C {
        assert_eq!(grad[(C + c) * S + 5], 0.0, "class {c} at the ignored pixel");
    }
}

#[test]
fn smoothing_and_class_weights_change_the_loss_as_defined() {
    let unsmoothed = net(&DICE_LOSS.replace("smooth: 1", "smooth: 0"));
    let (loss, _) = run(&unsmoothed, &scores(), &labels());
    let want = reference_loss(&scores(), &labels(), 0.0, &[0.0, 1.0, 1.0], 255.0);
    assert!((loss - want).abs() <= 1e-6, "smooth 0: {loss} vs {want}");
    check_gradient(&unsmoothed, &scores(), &labels());

    let weighted = net(&DICE_LOSS
        .replace("smooth: 1", "smooth: 1 class_weight: 0.5 class_weight: 1 class_weight: 2"));
    let (loss, _) = run(&weighted, &scores(), &labels());
    let want = reference_loss(&scores(), &labels(), 1.0, &[0.5, 1.0, 2.0], 255.0);
    assert!((loss - want).abs() <= 1e-6, "class weights: {loss} vs {want}");
    check_gradient(&weighted, &scores(), &labels());

    // With smoothing, a class absent from both label and prediction scores
    // (0 + 1)/(0 + 1) = 1: confident background everywhere on an all-0 label
    // gives a loss near 0 even with foreground classes weighted.
    let background: Vec<f32> =
        (0..N * C * S).map(|i| if (i / S).is_multiple_of(C) { 20.0 } else { -20.0 }).collect();
    let (loss, _) = run(&net(DICE_LOSS), &background, &[0.0; N * S]);
    assert!(loss.abs() < 1e-6, "empty classes with smoothing: {loss}");
}

#[test]
fn dice_loss_and_softmax_loss_sum_through_loss_weight() {
    let softmax = "layer { name: \"ce\" type: \"SoftmaxWithLoss\" bottom: \"score\" bottom: \"label\" top: \"ce\" \
                   loss_param { ignore_label: 255 } }";
    let dice_only = net(DICE_LOSS);
    let ce_only = net(softmax);
    let both = net(&format!(
        "{}\n{}",
        DICE_LOSS.replace("top: \"loss\"", "top: \"loss\" loss_weight: 0.25"),
        softmax.replace("top: \"ce\"", "top: \"ce\" loss_weight: 2")
    ));
    let (d, gd) = run(&dice_only, &scores(), &labels());
    let (c, gc) = run(&ce_only, &scores(), &labels());
    let (total, g) = run(&both, &scores(), &labels());
    assert!((total - (0.25 * d + 2.0 * c)).abs() <= 1e-5, "{total} vs 0.25·{d} + 2·{c}");
    for i in 0..g.len() {
        let want = 0.25 * gd[i] + 2.0 * gc[i];
        assert!((g[i] - want).abs() <= 1e-6, "element {i}: {} vs {want}", g[i]);
    }
}

#[test]
fn dice_metric_scores_empty_masks_with_empty_score() {
    let metric = "layer { name: \"dice\" type: \"Dice\" bottom: \"score\" bottom: \"label\" top: \"dice\" top: \"per_class\" }";
    let value = |layers: &str, scores: &[f32], labels: &[f32]| -> (f64, Vec<f64>) {
        let net = net(layers);
        let inputs = [
            ("score", tensor(scores, &[N as i64, C as i64, 3, 4])),
            ("label", tensor(labels, &[N as i64, 1, 3, 4])),
        ];
        let blobs = net.forward(&inputs).unwrap();
        assert!(blobs.loss.is_none(), "Dice is a metric, not a loss");
        let get =
            |name: &str| blobs.get(net.plan.blob_id(name).unwrap()).unwrap().to_kind(Kind::Double);
        (f64::try_from(get("dice")).unwrap(), Vec::<f64>::try_from(get("per_class")).unwrap())
    };
    // Everything predicted and labelled background: classes 1 and 2 are
    // empty in both, so they score empty_score (default 1).
    let background: Vec<f32> =
        (0..N * C * S).map(|i| if (i / S).is_multiple_of(C) { 1.0 } else { 0.0 }).collect();
    let zeros = vec![0.0; N * S];
    assert_eq!(value(metric, &background, &zeros), (1.0, vec![1.0, 1.0, 1.0]));
    let strict =
        metric.replace("top: \"per_class\"", "top: \"per_class\" dice_param { empty_score: 0 }");
    assert_eq!(value(&strict, &background, &zeros), (0.0, vec![1.0, 0.0, 0.0]));
    // A perfect prediction scores 1 in every class that occurs.
    let perfect: Vec<f32> = (0..N * C * S)
        .map(|i| {
            let (n, c, s) = (i / (C * S), (i / S) % C, i % S);
            if labels()[n * S + s] as usize == c {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let ignoring =
        metric.replace("top: \"per_class\"", "top: \"per_class\" dice_param { ignore_label: 255 }");
    let (dice, per_class) = value(&ignoring, &perfect, &labels());
    assert_eq!(dice, 1.0);
    assert_eq!(per_class, vec![1.0; C]);
}
