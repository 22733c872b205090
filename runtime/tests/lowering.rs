//! Every layer type the runtime supports, lowered from a compiled prototxt:
//! each top's runtime shape equals the shape the compiler inferred, the
//! forward is finite, and backward reaches the parameters. Unsupported
//! types are reported at lowering with their layer and span.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

use lvc_compiler::ir::{compile, CompileOptions};
use lvc_compiler::schema::Phase;
use lvc_compiler::SourceFile;
use lvc_runtime::exec::{Net, Plan};
use lvc_runtime::tch::{Device, Kind, Tensor};

mod test_device;
use test_device::test_device;

const EVERY_TYPE: &str = r#"
name: "every_type"
force_backward: true
layer { name: "data" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 2 dim: 3 dim: 9 dim: 8 } shape { dim: 2 dim: 1 dim: 9 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 pad: 2 dilation: 2 weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" relu_param { negative_slope: 0.1 } }
layer { name: "drop" type: "Dropout" bottom: "conv" top: "conv" dropout_param { dropout_ratio: 0.3 } }
layer { name: "sig" type: "Sigmoid" bottom: "conv" top: "sig" }
layer { name: "tanh" type: "TanH" bottom: "conv" top: "tanh" }
layer { name: "prod" type: "Eltwise" bottom: "sig" bottom: "tanh" top: "prod" eltwise_param { operation: PROD } }
layer { name: "max" type: "Eltwise" bottom: "sig" bottom: "tanh" top: "max" eltwise_param { operation: MAX } }
layer { name: "sum" type: "Eltwise" bottom: "prod" bottom: "max" top: "sum" eltwise_param { coeff: 0.5 coeff: -2 } }
layer { name: "cat" type: "Concat" bottom: "sum" bottom: "conv" top: "cat" }
layer { name: "lrn" type: "LRN" bottom: "cat" top: "lrn" lrn_param { local_size: 3 norm_region: WITHIN_CHANNEL } }
layer { name: "pool" type: "Pooling" bottom: "lrn" top: "pool" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "slice" type: "Slice" bottom: "pool" top: "s1" top: "s2" slice_param { axis: 1 slice_point: 2 } }
layer { name: "silence" type: "Silence" bottom: "s2" }
layer { name: "pow" type: "Power" bottom: "s1" top: "pow" power_param { power: 2 scale: 0.5 shift: 1 } }
layer { name: "deconv" type: "Deconvolution" bottom: "pow" top: "up"
  convolution_param { num_output: 3 kernel_size: 4 stride: 2 group: 1 weight_filler { type: "bilinear" } } }
layer { name: "crop" type: "Crop" bottom: "up" bottom: "label" top: "score" crop_param { axis: 2 offset: 0 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" loss_param { ignore_label: 255 class_weight: 1 class_weight: 2 class_weight: 3 } }
layer { name: "acc" type: "Accuracy" bottom: "score" bottom: "label" top: "acc" top: "per_class" }
layer { name: "dice" type: "Dice" bottom: "score" bottom: "label" top: "dice" }
layer { name: "dice_loss" type: "DiceLoss" bottom: "score" bottom: "label" top: "dice_loss" loss_weight: 0.5 }
layer { name: "prob" type: "Softmax" bottom: "score" top: "prob" }
layer { name: "flat" type: "Flatten" bottom: "prob" top: "flat" }
layer { name: "ip" type: "InnerProduct" bottom: "flat" top: "ip" inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "reshape" type: "Reshape" bottom: "ip" top: "reshaped" loss_weight: 0.01 reshape_param { shape { dim: 0 dim: -1 dim: 1 } } }
layer { name: "prelu" type: "PReLU" bottom: "conv" top: "prelu" }
layer { name: "elu" type: "ELU" bottom: "prelu" top: "elu" elu_param { alpha: 0.5 } }
layer { name: "abs" type: "AbsVal" bottom: "elu" top: "abs" }
layer { name: "bnll" type: "BNLL" bottom: "abs" top: "bnll" }
layer { name: "exp" type: "Exp" bottom: "bnll" top: "exp" exp_param { base: 2 scale: 0.1 } }
layer { name: "log" type: "Log" bottom: "exp" top: "log" log_param { base: 10 shift: 1 } }
layer { name: "swish" type: "Swish" bottom: "log" top: "swish" }
layer { name: "clip" type: "Clip" bottom: "swish" top: "clip" clip_param { min: -1 max: 1 } }
layer { name: "bias" type: "Bias" bottom: "clip" top: "biased" bias_param { filler { type: "constant" value: 0.5 } } }
layer { name: "mvn" type: "MVN" bottom: "biased" top: "mvn" }
layer { name: "tile" type: "Tile" bottom: "mvn" top: "tiled" tile_param { axis: 1 tiles: 2 } }
layer { name: "reduce" type: "Reduction" bottom: "tiled" top: "reduced" loss_weight: 0.001 reduction_param { operation: SUMSQ axis: 1 } }
layer { name: "thresh" type: "Threshold" bottom: "mvn" top: "thresh" threshold_param { threshold: 0.2 } }
layer { name: "argmax" type: "ArgMax" bottom: "mvn" top: "argmax" argmax_param { axis: 1 out_max_val: true } }
layer { name: "sce" type: "SigmoidCrossEntropyLoss" bottom: "mvn" bottom: "thresh" top: "sce" loss_weight: 0.1 }
layer { name: "euclid" type: "EuclideanLoss" bottom: "mvn" bottom: "thresh" top: "euclid" loss_weight: 0.1 }
"#;

fn plan_of(text: &str, phase: Phase) -> (SourceFile, Result<Plan, Vec<lvc_compiler::Diagnostic>>) {
    let source = SourceFile::new("every_type.prototxt", text);
    let compiled = compile(&source, &CompileOptions { phase, ..CompileOptions::default() });
    assert!(compiled.is_ok(), "{:#?}", compiled.diags);
    let plan = Plan::from_graph(compiled.graph.as_ref().unwrap(), compiled.net.as_ref().unwrap());
    (source, plan)
}

fn inputs() -> Vec<(&'static str, Tensor)> {
    let data =
        Tensor::arange(2 * 3 * 9 * 8, (Kind::Float, Device::Cpu)).reshape([2, 3, 9, 8]).sin();
    let label = (Tensor::arange(2 * 9 * 8, (Kind::Float, Device::Cpu)).reshape([2, 1, 9, 8]) * 7.0)
        .remainder(3.0);
    vec![("data", data), ("label", label)]
}

#[test]
fn every_supported_type_runs_with_the_compilers_shapes() {
    for phase in [Phase::Train, Phase::Test] {
        let (_, plan) = plan_of(EVERY_TYPE, phase);
        let net = Net::new(plan.unwrap(), test_device(), 5).unwrap();
        let blobs = net.forward(&inputs()).unwrap();
        for step in &net.plan.steps {
            for &top in &step.tops {
                let got = blobs.get(top).unwrap_or_else(|| panic!("{}: no top", step.layer));
                assert_eq!(
                    got.size(),
                    net.plan.blob_shapes[top],
                    "{} top {}",
                    step.layer,
                    net.plan.blob_names[top]
                );
                let finite = bool::try_from(got.isfinite().all()).unwrap();
                assert!(finite, "{}: non-finite values", step.layer);
            }
        }
        let loss = f64::try_from(blobs.loss.as_ref().unwrap().detach()).unwrap();
        assert!(loss.is_finite() && loss > 0.0, "{phase:?}: loss {loss}");
        let grads = net.backward(&blobs);
        for (step, params) in net.plan.steps.iter().zip(&grads.params) {
            for (info, grad) in step.params.iter().zip(params) {
                if info.is_statistic() {
                    assert!(grad.is_none(), "{}: statistics are not learnt", step.layer);
                } else {
                    assert!(grad.is_some(), "{} {}: no gradient", step.layer, info.role);
                }
            }
        }
    }
}

#[test]
fn batch_norm_statistics_move_only_in_train() {
    for (phase, moves) in [(Phase::Train, true), (Phase::Test, false)] {
        let (_, plan) = plan_of(EVERY_TYPE, phase);
        let net = Net::new(plan.unwrap(), test_device(), 5).unwrap();
        let bn = net.plan.steps.iter().position(|s| s.layer == "bn").unwrap();
        let factor = || f64::try_from(net.params[bn][2].detach().sum(Kind::Double)).unwrap();
        let before = factor();
        net.forward(&inputs()).unwrap();
        assert_eq!(factor() != before, moves, "{phase:?}");
    }
}

#[test]
fn unsupported_types_are_reported_with_the_layer_and_its_type_span() {
    let text = r#"
name: "unsupported"
layer { name: "data" type: "Input" top: "ids" top: "score" top: "label"
  input_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 5 } shape { dim: 2 } } }
layer { name: "embed" type: "Embed" bottom: "ids" top: "emb" embed_param { num_output: 4 input_dim: 10 } }
layer { name: "hinge" type: "HingeLoss" bottom: "score" bottom: "label" top: "hinge" }
"#;
    let (source, plan) = plan_of(text, Phase::Test);
    let errors = plan.expect_err("unsupported layers");
    assert_eq!(errors.len(), 2, "{errors:#?}");
    for (d, (layer, kind)) in errors.iter().zip([("embed", "Embed"), ("hinge", "HingeLoss")]) {
        assert_eq!(d.code, "lvc::runtime::unsupported");
        assert_eq!(d.layer.as_deref(), Some(layer));
        assert_eq!(source.snippet(d.primary_span().unwrap()), format!("\"{kind}\""));
    }
}
