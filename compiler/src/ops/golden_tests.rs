//! The ops against real Caffe: every top shape and param shape of the golden
//! nets (manifests written by BVLC Caffe), the crop offsets FCN hard-codes
//! (recomputed from coordinate maps), and the golden error cases.

use serde_json::Value;

use super::testing::{render, run_net_file, NetRun};
use super::{AxisMap, BlobShape};
use crate::schema::{NetDef, NetState, Phase};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden/caffe");

fn manifest(case: &str) -> Value {
    let path = format!("{GOLDEN}/{case}/manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn dims(v: &Value) -> Vec<i64> {
    v.as_array().expect("shape array").iter().map(|d| d.as_i64().expect("integer dim")).collect()
}

fn run_case(case: &str, phase: Phase) -> (Value, NetRun) {
    let m = manifest(case);
    let prototxt = m["prototxt"].as_str().expect("prototxt path");
    let state = NetState { phase, ..NetState::default() };
    let run = run_net_file(&format!("{GOLDEN}/{prototxt}"), &state);
    (m, run)
}

/// Every non-Split top and every param of the manifest, as Caffe logged them.
fn assert_matches_manifest(case: &str, phase: Phase) {
    let (m, run) = run_case(case, phase);
    assert!(run.diags.is_empty(), "{case}: {}", render(&run.source, &run.diags));
    let mut checked = 0;
    for layer in m["layers"].as_array().expect("layers") {
        if layer["type"] == "Split" {
            continue;
        }
        let top = layer["top"].as_str().expect("top name");
        let shape = run.shapes.get(top).unwrap_or_else(|| panic!("{case}: no shape for {top}"));
        assert_eq!(shape.0, dims(&layer["shape"]), "{case}: top {top} of {}", layer["layer"]);
        checked += 1;
    }
    for p in m["params"].as_array().expect("params") {
        let name = p["layer"].as_str().expect("layer name");
        let index = p["index"].as_u64().expect("index") as usize;
        let params = run.params.get(name).unwrap_or_else(|| panic!("{case}: no params for {name}"));
        assert_eq!(params[index].shape.0, dims(&p["shape"]), "{case}: param {index} of {name}");
        checked += 1;
    }
    let expected = m["params"].as_array().map_or(0, Vec::len)
        + m["layers"].as_array().map_or(0, |l| l.iter().filter(|x| x["type"] != "Split").count());
    assert_eq!(checked, expected);
    // No extra learnable blobs either.
    let ours: usize = run.params.values().map(Vec::len).sum();
    assert_eq!(ours, m["params"].as_array().map_or(0, Vec::len), "{case}: param count");
}

#[test]
fn fcn_alexnet_shapes_and_params_match_caffe() {
    for case in
        ["fcn_alexnet_slim_gray", "fcn_alexnet_gray", "fcn_alexnet_rgb", "fcn_alexnet_slim_rgb"]
    {
        assert_matches_manifest(case, Phase::Test);
    }
}

#[test]
fn fcn8s_shapes_and_params_match_caffe() {
    for case in ["fcn8s_slim_gray", "fcn8s_gray"] {
        assert_matches_manifest(case, Phase::Test);
    }
}

#[test]
fn layer_probe_shapes_and_params_match_caffe() {
    assert_matches_manifest("layer_probe", Phase::Train);
}

#[test]
fn fcn_parameter_totals_match_the_readme() {
    for (case, total) in [
        ("fcn_alexnet_gray", 56_861_124),
        ("fcn_alexnet_slim_gray", 7_301_572),
        ("fcn8s_slim_gray", 2_594_230),
    ] {
        let (_, run) = run_case(case, Phase::Test);
        let count: i64 = run.params.values().flatten().map(|p| p.shape.count()).sum();
        assert_eq!(count, total, "{case}");
    }
}

#[test]
fn train_nets_have_a_scalar_loss_with_weight_one() {
    for file in ["fcn_alexnet_slim_gray_train", "fcn8s_slim_gray_train"] {
        let state = NetState { phase: Phase::Train, ..NetState::default() };
        let run = run_net_file(&format!("{GOLDEN}/prototxt/{file}.prototxt"), &state);
        assert!(run.diags.is_empty(), "{file}: {}", render(&run.source, &run.diags));
        assert_eq!(run.shapes["loss"], BlobShape(vec![]), "{file}");
        assert_eq!(run.shapes["score"], BlobShape(vec![1, 2, 256, 256]), "{file}");
    }
}

/// Composite map from the net input to `blob`, through the first bottom of
/// each producer (FCN's `coord_map_from_to` along a chain), one axis.
fn map_from_input(net: &NetDef, blob: &str, before: usize) -> AxisMap {
    let (index, def) = net.layers[..before]
        .iter()
        .enumerate()
        .rev()
        .find(|(_, l)| l.tops.iter().any(|t| t.value == blob))
        .unwrap_or_else(|| panic!("no producer of {blob}"));
    let Some(bottom) = def.bottoms.first() else { return AxisMap::IDENTITY };
    let op = super::testing::build(def, &mut Vec::new()).expect("layer builds");
    let map = op.coord_map().unwrap_or_else(|| panic!("{} has no coord map", def.name.value))[0];
    map.after(map_from_input(net, &bottom.value, index))
}

/// Offset of each Crop implied by the coordinate maps (FCN's `coord_map.crop`).
fn crop_offsets(prototxt: &str) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(format!("{GOLDEN}/prototxt/{prototxt}")).expect("prototxt");
    let (_, net) = super::testing::net(prototxt, &text);
    net.layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.kind.value == "Crop")
        .map(|(i, l)| {
            let data = map_from_input(&net, &l.bottoms[0].value, i);
            let reference = map_from_input(&net, &l.bottoms[1].value, i);
            assert_eq!(data.scale, reference.scale, "{}: scales differ", l.name.value);
            (l.name.value.clone(), data.shift - reference.shift)
        })
        .collect()
}

#[test]
fn coordinate_maps_reproduce_fcn_crop_offsets() {
    let alexnet = crop_offsets("fcn_alexnet_slim_gray_deploy.prototxt");
    assert_eq!(alexnet, vec![("score".to_string(), 18.0)]);
    let fcn8s = crop_offsets("fcn8s_slim_gray_deploy.prototxt");
    let names: Vec<(&str, f64)> = fcn8s.iter().map(|(n, o)| (n.as_str(), *o)).collect();
    assert_eq!(names, vec![("score_pool4c", 5.0), ("score_pool3c", 9.0), ("score", 31.0)]);
}

fn error_case(file: &str) -> String {
    let state = NetState::default();
    let run = run_net_file(&format!("{GOLDEN}/prototxt/errors/{file}.prototxt"), &state);
    assert!(!run.diags.is_empty(), "{file}: no diagnostics");
    render(&run.source, &run.diags)
}

#[test]
fn golden_error_conv2_group3() {
    insta::assert_snapshot!(error_case("conv2_group3"));
}

#[test]
fn golden_error_conv1_group2() {
    insta::assert_snapshot!(error_case("conv1_group2"));
}

#[test]
fn golden_error_crop_offset100() {
    insta::assert_snapshot!(error_case("crop_offset100"));
}

#[test]
fn golden_error_fc6_kernel_too_big() {
    insta::assert_snapshot!(error_case("fc6_kernel_too_big"));
}

#[test]
fn golden_error_fcn8s_fuse_uncropped() {
    insta::assert_snapshot!(error_case("fcn8s_fuse_uncropped"));
}

#[test]
fn bilinear_filler_without_groups_is_flagged() {
    let state = NetState::default();
    let path = format!("{GOLDEN}/prototxt/fcn8s_slim_gray_bilinearfiller_deploy.prototxt");
    let run = run_net_file(&path, &state);
    let codes: Vec<&str> = run.diags.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["lvc::init::bilinear_groupless"; 3]);
    insta::assert_snapshot!(render(&run.source, &run.diags[..1]));
}

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus");

/// Every layer of every corpus net (TRAIN and TEST) goes through the
/// builders and shape rules without a panic; the only complaints are the
/// expected ones: DIGITS' blank classifier num_output, Faster R-CNN's Python
/// ops, and ROIPooling whose fork-only `roi_pooling_param` the lenient
/// schema drops.
#[test]
fn corpus_nets_build_and_infer() {
    let manifest =
        std::fs::read_to_string(format!("{CORPUS}/manifest.tsv")).expect("corpus manifest");
    let mut nets = 0;
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.get(1) != Some(&"net") {
            continue;
        }
        nets += 1;
        for phase in [Phase::Train, Phase::Test] {
            let run = run_net_file(
                &format!("{CORPUS}/{}", cols[0]),
                &NetState { phase, ..NetState::default() },
            );
            for d in &run.diags {
                let expected = match d.code {
                    "lvc::param::missing" => {
                        d.message == "num_output is not set"
                            || d.message.starts_with("roi_pooling_param.")
                    }
                    "lvc::python::unsupported" => {
                        cols[0].contains("py-faster-rcnn") || d.message.contains("pyloss")
                    }
                    _ => false,
                };
                assert!(expected, "{}: {}", cols[0], render(&run.source, std::slice::from_ref(d)));
            }
        }
    }
    assert_eq!(nets, 132);
}

#[test]
fn corpus_classifiers_have_their_published_shapes() {
    let cases: [(&str, &str, &[i64]); 7] = [
        ("BVLC__caffe/models/bvlc_alexnet/deploy.prototxt", "pool5", &[10, 256, 6, 6]),
        ("BVLC__caffe/models/bvlc_alexnet/deploy.prototxt", "prob", &[10, 1000]),
        ("BVLC__caffe/models/bvlc_googlenet/deploy.prototxt", "pool5/7x7_s1", &[10, 1024, 1, 1]),
        (
            "BVLC__caffe/examples/net_surgery/bvlc_caffenet_full_conv.prototxt",
            "fc8-conv",
            &[1, 1000, 8, 8],
        ),
        (
            "KaimingHe__deep-residual-networks/prototxt/ResNet-50-deploy.prototxt",
            "pool5",
            &[1, 2048, 1, 1],
        ),
        (
            "KaimingHe__deep-residual-networks/prototxt/ResNet-152-deploy.prototxt",
            "prob",
            &[1, 1000],
        ),
        ("forresti__SqueezeNet/SqueezeNet_v1.1/deploy.prototxt", "pool10", &[10, 1000, 1, 1]),
    ];
    for (file, blob, shape) in cases {
        let run = run_net_file(&format!("{CORPUS}/prototxt/{file}"), &NetState::default());
        assert!(run.diags.is_empty(), "{file}: {}", render(&run.source, &run.diags));
        assert_eq!(run.shapes.get(blob).map(|s| s.0.as_slice()), Some(shape), "{file}: {blob}");
    }
}
