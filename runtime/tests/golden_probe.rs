//! The layer probe: one of every layer kind at odd sizes, forward and
//! backward against Caffe (force_backward, 0.5·Σx² losses on every branch
//! plus SoftmaxWithLoss; total loss 4812.17627).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod golden_common;

use golden_common::*;
use lvc_compiler::schema::Phase;
use lvc_runtime::tch::{Kind, Tensor};

const TOLERANCE: f64 = 1e-4;

#[test]
fn layer_probe_forward_and_gradients_match_caffe() {
    let net = net("layer_probe.prototxt", Phase::Train, "layer_probe.caffemodel");
    let data = read_f32("inputs/probe_data.f32", &[1, 4, 14, 11]);
    let label = read_f32("inputs/probe_label.f32", &[1, 1, 14, 11]);
    let blobs = net.forward(&[("data", data), ("label", label)]).unwrap();
    let manifest = manifest("layer_probe");

    let mut worst = (0.0f64, String::new());
    let mut track = |what: String, err: f64| {
        println!("{what:<40} rel err {err:.3e}");
        assert!(err <= TOLERANCE, "{what}: relative error {err:.3e}");
        if err > worst.0 {
            worst = (err, what);
        }
    };
    for entry in manifest["layers"].as_array().unwrap() {
        let Some(file) = entry["file"].as_str() else { continue };
        let (layer, top) = (entry["layer"].as_str().unwrap(), entry["top"].as_str().unwrap());
        let want = read_f32(&format!("layer_probe/{file}"), &shape_of(entry));
        track(
            format!("forward {layer}"),
            relative_error(blobs.get(top_of(&net, layer, top)).unwrap(), &want),
        );
    }

    let loss = f64::try_from(blobs.loss.as_ref().unwrap().detach()).unwrap();
    let want_loss = manifest["loss"].as_f64().unwrap();
    println!("total loss {loss} (Caffe {want_loss})");
    assert!((loss - want_loss).abs() <= 1e-5 * want_loss, "loss {loss} vs {want_loss}");

    let grads = net.backward(&blobs);
    for entry in manifest["blob_diffs"].as_array().unwrap() {
        let Some(file) = entry["diff_file"].as_str() else { continue };
        let blob = entry["blob"].as_str().unwrap();
        let shape = shape_of(entry);
        let want = read_f32(&format!("layer_probe/{file}"), &shape);
        let id = net.plan.final_blobs().into_iter().find(|(n, _)| n == blob).unwrap().1;
        let got = grads.blobs[id].as_ref().map_or_else(
            || Tensor::zeros(shape.as_slice(), (Kind::Float, net.device)),
            |g| g.shallow_clone(),
        );
        track(format!("diff {blob}"), relative_error(&got, &want));
    }
    for entry in manifest["param_diffs"].as_array().unwrap() {
        let layer = entry["layer"].as_str().unwrap();
        let index = entry["index"].as_u64().unwrap() as usize;
        let shape = shape_of(entry);
        let step = net.plan.steps.iter().position(|s| s.layer == layer).unwrap();
        let value = read_f32(&format!("layer_probe/param.{layer}.{index}.f32"), &shape);
        track(format!("param {layer}.{index}"), relative_error(&net.params[step][index], &value));
        let want = read_f32(&format!("layer_probe/param.{layer}.{index}.diff.f32"), &shape);
        let got = grads.params[step][index].as_ref().unwrap();
        track(format!("param diff {layer}.{index}"), relative_error(got, &want));
    }
    println!("layer probe: worst {:.3e} at {}", worst.0, worst.1);
}
