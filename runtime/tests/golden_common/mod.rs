//! Shared by the golden tests: the Caffe goldens in /work/shared, a net
//! built from a golden prototxt and caffemodel, raw f32 blobs, and the
//! relative error the tests bound.

#![allow(dead_code)] // each golden test binary uses part of this module

use std::path::PathBuf;

#[path = "../test_device/mod.rs"]
mod test_device;
pub use test_device::test_device;

use lvc_compiler::ir::{compile, CompileOptions};
use lvc_compiler::schema::Phase;
use lvc_compiler::SourceFile;
use lvc_runtime::exec::{Net, Plan};
use lvc_runtime::tch::{Device, Kind, Tensor};
use lvc_runtime::weights::read_caffemodel;

pub fn golden(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden/caffe")).join(rel)
}

pub fn manifest(case: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(golden(&format!("{case}/manifest.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A raw little-endian float32 file as a tensor of `shape`.
pub fn read_f32(rel: &str, shape: &[i64]) -> Tensor {
    let bytes = std::fs::read(golden(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let values: Vec<f32> =
        bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    assert_eq!(values.len() as i64, shape.iter().product::<i64>(), "{rel}: size");
    Tensor::from_slice(&values).reshape(shape)
}

pub fn shape_of(entry: &serde_json::Value) -> Vec<i64> {
    entry["shape"].as_array().unwrap().iter().map(|d| d.as_i64().unwrap()).collect()
}

/// The net of a golden prototxt, with the golden caffemodel loaded.
pub fn net(prototxt: &str, phase: Phase, model: &str) -> Net {
    net_keeping_fillers(prototxt, phase, model, &[])
}

/// As [`net`], but the layers in `keep` keep their prototxt fillers (they
/// are left out of the weights file, as Caffe does for renamed layers).
pub fn net_keeping_fillers(prototxt: &str, phase: Phase, model: &str, keep: &[&str]) -> Net {
    let source = SourceFile::read(&golden(&format!("prototxt/{prototxt}"))).unwrap();
    let compiled = compile(&source, &CompileOptions { phase, ..CompileOptions::default() });
    assert!(compiled.is_ok(), "{prototxt}: {:#?}", compiled.diags);
    let plan = Plan::from_graph(compiled.graph.as_ref().unwrap(), compiled.net.as_ref().unwrap())
        .unwrap_or_else(|e| panic!("{prototxt}: {e:#?}"));
    let mut net = Net::new(plan, test_device(), 1234).unwrap();
    let mut weights = read_caffemodel(&golden(&format!("models/{model}"))).unwrap();
    weights.layers.retain(|l| !keep.contains(&l.name.as_str()));
    let report = net.load_weights(&weights).unwrap();
    assert!(report.loads(), "{model}: {report:#?}");
    net
}

/// max|a − b| / max|b|.
pub fn relative_error(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.size(), want.size(), "shape");
    let got = got.detach().to_device(Device::Cpu).to_kind(Kind::Double);
    let want = want.to_kind(Kind::Double);
    let diff = f64::try_from((&got - &want).abs().max()).unwrap();
    let scale = f64::try_from(want.abs().max()).unwrap();
    if scale == 0.0 {
        diff
    } else {
        diff / scale
    }
}

/// The blob id that layer `layer` wrote as top `top`.
pub fn top_of(net: &Net, layer: &str, top: &str) -> usize {
    let step = net.plan.steps.iter().find(|s| s.layer == layer);
    match step {
        Some(step) => *step.tops.iter().find(|&&t| net.plan.blob_names[t] == top).unwrap(),
        None => *net.plan.inputs.iter().find(|&&t| net.plan.blob_names[t] == top).unwrap(),
    }
}
