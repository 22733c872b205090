//! FCN goldens: the blobs Caffe wrote during a deploy forward of
//! FCN-AlexNet (slim, gray and rgb) and FCN-8s (slim), reproduced from the
//! golden caffemodels within max|Δ|/max|ref| ≤ 1e-4.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod golden_common;

use golden_common::*;
use lvc_compiler::schema::Phase;

const TOLERANCE: f64 = 1e-4;

fn check_case(case: &str, prototxt: &str, model: &str, input: &str, input_shape: &[i64]) {
    let net = net(prototxt, Phase::Test, model);
    let data = read_f32(&format!("inputs/{input}"), input_shape);
    let blobs = net.forward(&[("data", data)]).unwrap();
    let manifest = manifest(case);
    let mut worst = (0.0f64, String::new());
    let mut compared = 0;
    for entry in manifest["layers"].as_array().unwrap() {
        let (Some(file), false) = (entry["file"].as_str(), entry["in_place"].as_bool().unwrap())
        else {
            continue;
        };
        let layer = entry["layer"].as_str().unwrap();
        let top = entry["top"].as_str().unwrap();
        let want = read_f32(&format!("{case}/{file}"), &shape_of(entry));
        let got = blobs.get(top_of(&net, layer, top)).unwrap();
        let err = relative_error(got, &want);
        println!("{case}: {layer:<14} {:>12?} rel err {err:.3e}", got.size());
        if err > worst.0 {
            worst = (err, layer.to_string());
        }
        assert!(err <= TOLERANCE, "{case}/{layer}: relative error {err:.3e}");
        compared += 1;
    }
    println!("{case}: worst {:.3e} at {} over {compared} blobs", worst.0, worst.1);
    assert!(compared > 0);
}

#[test]
fn fcn_alexnet_slim_gray_matches_caffe() {
    check_case(
        "fcn_alexnet_slim_gray",
        "fcn_alexnet_slim_gray_deploy.prototxt",
        "fcn_alexnet_slim_gray.caffemodel",
        "input_gray_256.f32",
        &[1, 1, 256, 256],
    );
}

#[test]
fn fcn_alexnet_slim_rgb_matches_caffe() {
    check_case(
        "fcn_alexnet_slim_rgb",
        "fcn_alexnet_slim_rgb_deploy.prototxt",
        "fcn_alexnet_slim_rgb.caffemodel",
        "input_rgb_256.f32",
        &[1, 3, 256, 256],
    );
}

#[test]
fn fcn8s_slim_gray_matches_caffe() {
    check_case(
        "fcn8s_slim_gray",
        "fcn8s_slim_gray_deploy.prototxt",
        "fcn8s_slim_gray.caffemodel",
        "input_gray_256.f32",
        &[1, 1, 256, 256],
    );
}
