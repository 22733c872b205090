//! README "Surprise 1", reproduced from the prototxt fillers: group-less
//! FCN-8s deconvolutions with Caffe's `bilinear` filler write the kernel into
//! every (c_in, c_out) slice, so both class scores are identical and no
//! gradient reaches the layers below. The filled kernels and the forward
//! statistics match Caffe's counter-example run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod golden_common;

use golden_common::*;
use lvc_compiler::schema::Phase;
use lvc_runtime::tch::{Kind, Tensor};

const DECONVS: [&str; 3] = ["upscore2", "upscore_pool4", "upscore8"];

fn stat(t: &Tensor, name: &str) -> f64 {
    let t = t.detach().to_kind(Kind::Double);
    f64::try_from(match name {
        "min" => t.min(),
        "max" => t.max(),
        "mean" => t.mean(Kind::Double),
        "sum" => t.sum(Kind::Double),
        "l2" => t.norm(),
        other => panic!("stat {other}"),
    })
    .unwrap()
}

fn assert_stats(what: &str, t: &Tensor, want: &serde_json::Value) {
    for name in ["min", "max", "mean", "sum", "l2"] {
        let (got, want) = (stat(t, name), want[name].as_f64().unwrap());
        let err = (got - want).abs() / want.abs().max(1e-12);
        assert!(err <= 1e-4, "{what} {name}: {got} vs Caffe {want}");
    }
}

#[test]
fn bilinear_filled_groupless_deconvs_make_identical_class_scores() {
    let net = net_keeping_fillers(
        "fcn8s_slim_gray_bilinearfiller_deploy.prototxt",
        Phase::Test,
        "fcn8s_slim_gray.caffemodel",
        &DECONVS,
    );
    let manifest = manifest("fcn8s_slim_gray_bilinearfiller");
    for entry in manifest["params"].as_array().unwrap() {
        let layer = entry["layer"].as_str().unwrap();
        if DECONVS.contains(&layer) {
            let step = net.plan.steps.iter().position(|s| s.layer == layer).unwrap();
            assert_stats(&format!("filled {layer}"), &net.params[step][0], &entry["stats"]);
        }
    }
    let data = read_f32("inputs/input_gray_256.f32", &[1, 1, 256, 256]);
    let blobs = net.forward(&[("data", data)]).unwrap();
    let score =
        blobs.get(net.plan.final_blobs().iter().find(|(n, _)| n == "score").unwrap().1).unwrap();
    let want =
        manifest["layers"].as_array().unwrap().iter().find(|l| l["layer"] == "score").unwrap();
    assert_stats("score", score, &want["stats"]);
    assert!(score.get(0).get(0).equal(&score.get(0).get(1)), "class scores must be identical");
}

#[test]
fn no_gradient_passes_bilinear_filled_groupless_deconvs() {
    let net = net_keeping_fillers(
        "fcn8s_slim_gray_bilinearfiller_train.prototxt",
        Phase::Train,
        "fcn8s_slim_gray.caffemodel",
        &DECONVS,
    );
    let data = read_f32("inputs/input_gray_256.f32", &[1, 1, 256, 256]);
    let label = read_f32("inputs/label_disc_256.f32", &[1, 1, 256, 256]);
    let blobs = net.forward(&[("data", data), ("label", label)]).unwrap();
    let loss = f64::try_from(blobs.loss.as_ref().unwrap().detach()).unwrap();
    let want = manifest("train_fcn8s_slim_gray_bilinearfiller")["initial_loss_forward_backward"]
        .as_f64()
        .unwrap();
    // Exactly 65536·ln 2 in exact arithmetic; Caffe's float32 running sum
    // reports 45402.93, and lvc reports the loss the same way.
    assert!((loss - 65536.0 * 2f64.ln()).abs() <= 1e-3 * loss, "loss {loss}");
    assert!((loss - want).abs() <= 1e-6 * want, "loss {loss} vs Caffe {want}");
    let grads = net.backward(&blobs);
    for (step, grads) in net.plan.steps.iter().zip(&grads.params) {
        for grad in grads.iter().flatten() {
            let largest = f64::try_from(grad.abs().max()).unwrap();
            assert_eq!(largest, 0.0, "{}: Caffe's gradients are all exactly 0", step.layer);
        }
    }
}
