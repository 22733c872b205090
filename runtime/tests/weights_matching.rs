//! Golden caffemodels against golden prototxts compiled by lvc's IR: Caffe's
//! `CopyTrainedLayersFrom` outcome, every mismatch listed, and `--adapt`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use std::path::{Path, PathBuf};

use lvc_compiler::ir::{compile, CompileOptions};
use lvc_compiler::schema::Phase;
use lvc_compiler::SourceFile;
use lvc_runtime::weights::{
    apply_adaptations, match_weights, read_caffemodel, targets_from_graph, Adaptation, LayerStatus,
    ParamReport, TargetLayer, WeightsFile,
};

fn golden(rel: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden/caffe")).join(rel)
}

fn targets(prototxt: &str, phase: Phase) -> (SourceFile, Vec<TargetLayer>) {
    let source = SourceFile::read(&golden(&format!("prototxt/{prototxt}.prototxt"))).unwrap();
    let compiled = compile(&source, &CompileOptions { phase, ..CompileOptions::default() });
    assert!(compiled.is_ok(), "{prototxt}: {:?}", compiled.diags);
    let (Some(net), Some(graph)) = (compiled.net.as_ref(), compiled.graph.as_ref()) else {
        unreachable!()
    };
    let targets = targets_from_graph(net, graph);
    (source, targets)
}

fn weights(model: &str) -> WeightsFile {
    read_caffemodel(&golden(&format!("models/{model}.caffemodel"))).unwrap()
}

fn problems(
    report: &lvc_runtime::weights::WeightsReport,
) -> Vec<(String, LayerStatus, Vec<ParamReport>)> {
    report
        .layers
        .iter()
        .filter(|l| l.status != LayerStatus::Ok)
        .map(|l| (l.layer.clone(), l.status, l.params.clone()))
        .collect()
}

#[test]
fn each_golden_model_loads_into_its_own_net() {
    for (prototxt, phase, model) in [
        ("fcn_alexnet_slim_gray_deploy", Phase::Test, "fcn_alexnet_slim_gray"),
        ("fcn_alexnet_slim_rgb_deploy", Phase::Test, "fcn_alexnet_slim_rgb"),
        ("fcn_alexnet_slim_gray_train", Phase::Train, "fcn_alexnet_slim_gray_trained5"),
        ("fcn8s_slim_gray_deploy", Phase::Test, "fcn8s_slim_gray"),
        ("layer_probe", Phase::Train, "layer_probe"),
    ] {
        let (_, targets) = targets(prototxt, phase);
        let report = match_weights(&targets, &weights(model));
        assert_eq!(problems(&report), vec![], "{model} into {prototxt}");
        assert!(report.loads());
        assert!(
            report.count(LayerStatus::Ok) >= 4,
            "{model}: {} ok layers",
            report.count(LayerStatus::Ok)
        );
    }
}

#[test]
fn rgb_weights_into_the_gray_net_name_conv1_param_0_and_nothing_else() {
    let (source, targets) = targets("fcn_alexnet_slim_gray_deploy", Phase::Test);
    let report = match_weights(&targets, &weights("fcn_alexnet_slim_rgb"));
    assert_eq!(
        problems(&report),
        vec![(
            "conv1".to_string(),
            LayerStatus::ShapeMismatch,
            vec![ParamReport {
                index: 0,
                expected: Some(vec![96, 1, 11, 11]),
                found: Some(vec![96, 3, 11, 11])
            }]
        )]
    );
    assert!(!report.loads());
    let conv1 = &report.layers[0];
    assert!(conv1.fix.as_deref().unwrap().contains("--adapt conv1=sum"));
    // The label sits on the layer's name in the prototxt.
    let span = conv1.span.unwrap();
    assert_eq!(&source.text[span.start..span.end], "\"conv1\"");
}

#[test]
fn gray_weights_into_the_rgb_net_suggest_replicate() {
    let (_, targets) = targets("fcn_alexnet_slim_rgb_deploy", Phase::Test);
    let report = match_weights(&targets, &weights("fcn_alexnet_slim_gray"));
    let bad = problems(&report);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].2[0].found, Some(vec![96, 1, 11, 11]));
    assert!(report.layers[0].fix.as_deref().unwrap().contains("--adapt conv1=replicate"));
}

#[test]
fn adapting_conv1_makes_the_rgb_model_load_into_the_gray_net() {
    let (_, targets) = targets("fcn_alexnet_slim_gray_deploy", Phase::Test);
    let rgb = weights("fcn_alexnet_slim_rgb");
    let gray = weights("fcn_alexnet_slim_gray");
    for (flag, scale) in [("conv1=sum", 1.0f64), ("conv1=mean", 1.0 / 3.0)] {
        let mut file = rgb.clone();
        let applied =
            apply_adaptations(&mut file, &targets, &[flag.parse::<Adaptation>().unwrap()]).unwrap();
        assert_eq!(applied.len(), 1);
        assert!(match_weights(&targets, &file).loads(), "{flag}");
        // Filter 0, pixel 0: the channel sum (or mean) of the RGB file.
        let src = &rgb.layer("conv1").unwrap().blobs[0].data;
        let expected = (src[0] as f64 + src[121] as f64 + src[242] as f64) * scale;
        let got = file.layer("conv1").unwrap().blobs[0].data[0] as f64;
        assert!((got - expected).abs() < 1e-7, "{flag}: {got} vs {expected}");
        // Every other layer is untouched.
        assert_eq!(file.layer("fc6"), gray.layer("fc6"));
    }
}

#[test]
fn slim_weights_into_the_full_net_list_every_mismatch() {
    // Caffe stops at fc6 param 0; all of fc6, fc7 and score_fr differ.
    let (_, targets) = targets("fcn_alexnet_gray_deploy", Phase::Test);
    let report = match_weights(&targets, &weights("fcn_alexnet_slim_gray"));
    let bad = problems(&report);
    let names: Vec<(&str, Vec<usize>)> =
        bad.iter().map(|(l, _, p)| (l.as_str(), p.iter().map(|p| p.index).collect())).collect();
    assert_eq!(names, vec![("fc6", vec![0, 1]), ("fc7", vec![0, 1]), ("score_fr", vec![0])]);
    assert_eq!(
        bad[0].2[0],
        ParamReport {
            index: 0,
            expected: Some(vec![4096, 256, 6, 6]),
            found: Some(vec![512, 256, 6, 6])
        }
    );
    let fc6 = report.layers.iter().find(|l| l.layer == "fc6").unwrap();
    assert!(fc6.fix.as_deref().unwrap().contains("--adapt reinit=fc6"), "{:?}", fc6.fix);
}

#[test]
fn reinit_of_the_mismatching_layers_makes_the_file_load() {
    let (_, targets) = targets("fcn_alexnet_gray_deploy", Phase::Test);
    let mut file = weights("fcn_alexnet_slim_gray");
    let flags: Vec<Adaptation> = ["reinit=fc6", "reinit=fc7", "reinit=score_fr"]
        .iter()
        .map(|f| f.parse().unwrap())
        .collect();
    let applied = apply_adaptations(&mut file, &targets, &flags).unwrap();
    assert_eq!(applied[0].what, "re-initialised from the prototxt fillers (gaussian, constant)");
    let report = match_weights(&targets, &file);
    assert!(report.loads());
    assert_eq!(report.count(LayerStatus::MissingInFile), 3);
}
