//! `lvc forward`: blobs written as .npy, checked against Caffe's golden
//! FCN-AlexNet run; input, device and unsupported-layer errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod common;

use std::path::{Path, PathBuf};

use common::{golden, lvc, text};
use lvc_runtime::tch::{Kind, Tensor};

fn read_f32(path: &str, shape: &[i64]) -> Tensor {
    let bytes = std::fs::read(path).unwrap();
    let values: Vec<f32> =
        bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Tensor::from_slice(&values).reshape(shape)
}

fn relative_error(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.size(), want.size());
    let diff = f64::try_from((got.to_kind(Kind::Double) - want.to_kind(Kind::Double)).abs().max())
        .unwrap();
    diff / f64::try_from(want.abs().max().to_kind(Kind::Double)).unwrap()
}

fn npy(dir: &Path, blob: &str) -> Tensor {
    Tensor::read_npy(dir.join(format!("{blob}.npy"))).unwrap()
}

#[test]
fn fcn_alexnet_blobs_match_caffe_after_the_whole_forward() {
    let out = tempfile::tempdir().unwrap();
    let input = format!("data={}:1x1x256x256", golden("inputs/input_gray_256.f32"));
    let o = lvc(&[
        "forward",
        "--model",
        &golden("prototxt/fcn_alexnet_slim_gray_deploy.prototxt"),
        "--weights",
        &golden("models/fcn_alexnet_slim_gray.caffemodel"),
        "--input",
        &input,
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let score = npy(out.path(), "score");
    assert!(
        relative_error(
            &score,
            &read_f32(&golden("fcn_alexnet_slim_gray/score.f32"), &[1, 2, 256, 256])
        ) <= 1e-4
    );
    // conv1 is written as it stands after the whole pass: after the in-place relu1.
    let conv1 = npy(out.path(), "conv1");
    let pre_relu = read_f32(&golden("fcn_alexnet_slim_gray/conv1.f32"), &[1, 96, 112, 112]);
    assert!(relative_error(&conv1, &pre_relu.relu()) <= 1e-4);
    assert!(out.path().join("data.npy").exists());
    assert!(out.path().join("data_data_0_split_0.npy").exists());
}

#[test]
fn npy_inputs_and_filler_weights() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.npy");
    Tensor::arange(16, (Kind::Float, lvc_runtime::tch::Device::Cpu))
        .reshape([1, 1, 4, 4])
        .write_npy(&input)
        .unwrap();
    let out: PathBuf = dir.path().join("blobs");
    let o = lvc(&[
        "forward",
        "--model",
        "tests/fixtures/forward/tiny.prototxt",
        "--input",
        &format!("data={}", input.display()),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // conv: 3x3 sums of 0..15 minus 4, relu'd in place; pool 2x2 → the max (sum at (1,1)).
    let pool = Vec::<f32>::try_from(npy(&out, "pool").flatten(0, -1)).unwrap();
    let best = (5 + 6 + 7 + 9 + 10 + 11 + 13 + 14 + 15) as f32 - 4.0;
    assert_eq!(pool, vec![best, best]);
}

#[test]
fn bad_inputs_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let run = |input: &str| {
        lvc(&[
            "forward",
            "--model",
            "tests/fixtures/forward/tiny.prototxt",
            "--input",
            input,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let missing = run("data=/nonexistent/x.npy");
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("/nonexistent/x.npy"), "{}", text(&missing.stderr));
    let raw = dir.path().join("x.f32");
    std::fs::write(&raw, vec![0u8; 4 * 9]).unwrap();
    let wrong_shape = run(&format!("data={}:1x1x3x3", raw.display()));
    assert_eq!(wrong_shape.status.code(), Some(2));
    assert!(text(&wrong_shape.stderr).contains("does not match"), "{}", text(&wrong_shape.stderr));
    let wrong_name = run(&format!("label={}:1x1x3x3", raw.display()));
    assert_eq!(wrong_name.status.code(), Some(2));
}

#[test]
fn unsupported_layers_are_rejected_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = lvc(&[
        "forward",
        "--model",
        "tests/fixtures/forward/unsupported.prototxt",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("lvc::runtime::unsupported"), "{err}");
    assert!(err.contains("Embed"), "{err}");
    assert!(err.contains("unsupported.prototxt:10"), "{err}");
}

#[test]
fn cuda_on_a_machine_without_it_is_a_clear_error() {
    if lvc_runtime::device::CudaProbe::current().device_count > 0 {
        return; // a GPU machine runs the cuda path for real
    }
    let dir = tempfile::tempdir().unwrap();
    let o = lvc(&[
        "forward",
        "--model",
        "tests/fixtures/forward/tiny.prototxt",
        "--out",
        dir.path().to_str().unwrap(),
        "--device",
        "cuda",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("lvc::runtime::no_cuda"), "{err}");
    assert!(err.contains("CUDA was requested"), "{err}");
}

/// Issue 13, class 4: a net whose every blob fits Caffe's limit but which
/// needs terabytes in all is refused before anything is allocated: exit 2,
/// `lvc::runtime::memory` with the estimate and what the machine has, the
/// file named; no abort, no panic, no OOM kill. (`lvc time` and `lvc train`
/// go through the same check.)
#[test]
fn a_net_needing_terabytes_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    // 1000 ReLUs of a 1×1×46000×46000 input: 8.5 TB of activations.
    let mut net = String::from("layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 1 dim: 1 dim: 46000 dim: 46000 } } }\n");
    for i in 0..1000 {
        net.push_str(&format!(
            "layer {{ name: 'r{i}' type: 'ReLU' bottom: 'data' top: 'r{i}' }}\n"
        ));
    }
    let model = dir.path().join("huge.prototxt");
    std::fs::write(&model, net).unwrap();
    let model = model.to_str().unwrap();
    let input = dir.path().join("x.f32");
    std::fs::write(&input, [0u8; 4]).unwrap();
    let feed = format!("data={}:1x1x1x1", input.display());
    let out_dir = dir.path().join("blobs");
    let runs = [
        vec!["forward", "--model", model, "--input", &feed, "--out", out_dir.to_str().unwrap()],
        vec!["time", "--model", model, "--iterations", "1"],
    ];
    for args in runs {
        let o = lvc(&args);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("lvc::runtime::memory"), "{stderr}");
        assert!(
            stderr.contains("this net needs 8.5 TB (parameters 0 B, activations 8.5 TB"),
            "{stderr}"
        );
        assert!(stderr.contains(" available ("), "{stderr}");
        assert!(
            stderr.contains("huge.prototxt does not fit in memory; nothing was allocated"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked") && !stderr.contains("memory allocation"), "{stderr}");
    }
    assert!(!out_dir.exists(), "nothing written");
}
