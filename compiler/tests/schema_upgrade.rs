//! V0 and V1 nets upgrade the way Caffe's `UpgradeNetAsNeeded` does: the
//! upgraded trees of a V0 and a V1 corpus net are snapshotted in text format
//! (hand-checked against upgrade_proto.cpp), and every corpus net yields the
//! layer count its manifest implies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed expectation panics

mod common;

use common::{codes, corpus_manifest, read_corpus_file};
use lvc_compiler::schema::print::to_prototxt;
use lvc_compiler::schema::{load_net, load_net_tree, LayerDef, LoadOptions, NetFormat};

const STRICT: LoadOptions = LoadOptions { lenient: false };

fn summary(layers: &[LayerDef]) -> String {
    layers
        .iter()
        .map(|l| {
            let names = |v: &[lvc_compiler::schema::Spanned<String>]| {
                v.iter().map(|s| s.value.as_str()).collect::<Vec<_>>().join(",")
            };
            let params: Vec<String> =
                l.params.iter().map(|p| format!("{}/{}", p.lr_mult, p.decay_mult)).collect();
            format!(
                "{:>2} {:<8} {:<16} [{}] -> [{}] params [{}]",
                l.index,
                l.name.value,
                l.kind.value,
                names(&l.bottoms),
                names(&l.tops),
                params.join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn v0_imagenet_upgrades_like_caffe() {
    let source = read_corpus_file("prototxt/BVLC__caffe@v0.9/models/imagenet.prototxt");
    let (tree, diags) = load_net_tree(&source, &STRICT);
    assert!(diags.is_empty(), "{:?}", codes(&diags));
    let (tree, report) = tree.expect("the V0 net upgrades");
    assert_eq!(report.format, NetFormat::V0);
    assert!(report.input_upgraded);
    insta::assert_snapshot!("v0_imagenet_upgraded", to_prototxt(&tree));

    let (net, _) = load_net(&source, &STRICT);
    let net = net.expect("the V0 net loads");
    insta::assert_snapshot!("v0_imagenet_layers", summary(&net.layers));
    // Padding layers are folded: conv2 reads norm1 directly and has pad 2.
    let conv2 = net.layers.iter().find(|l| l.name.value == "conv2").expect("conv2 exists");
    assert_eq!(conv2.bottoms[0].value, "norm1");
    let pad = conv2.param_block("convolution_param").ints("pad");
    assert_eq!(pad.iter().map(|p| p.value).collect::<Vec<_>>(), vec![2]);
    // …and the span of that pad points at the padding layer's `pad: 2`.
    assert_eq!(source.snippet(pad[0].span), "2");
    let pad2_layer = source.text.find("name: \"pad2\"").expect("the file has a pad2 layer");
    let conv2_layer = source.text.find("name: \"conv2\"").expect("the file has a conv2 layer");
    assert!((pad2_layer..conv2_layer).contains(&pad[0].span.start));
    // The Input layer's shape values point at the input_dim tokens.
    let input = &net.layers[0];
    assert_eq!((input.name.value.as_str(), input.kind.value.as_str()), ("input", "Input"));
    let dims = input.param_block("input_param").subs("shape")[0].ints("dim");
    assert_eq!(dims.iter().map(|d| d.value).collect::<Vec<_>>(), vec![10, 3, 227, 227]);
    assert_eq!(source.line_col(dims[0].span.start), (3, 12));
}

#[test]
fn v1_rcnn_upgrades_like_caffe() {
    let source = read_corpus_file(
        "prototxt/rbgirshick__rcnn/finetuning/voc_2007_prototxt/pascal_finetune_train.prototxt",
    );
    let (tree, diags) = load_net_tree(&source, &STRICT);
    assert!(diags.is_empty(), "{:?}", codes(&diags));
    let (tree, report) = tree.expect("the V1 net upgrades");
    assert_eq!(report.format, NetFormat::V1);
    insta::assert_snapshot!("v1_rcnn_upgraded", to_prototxt(&tree));

    let (net, _) = load_net(&source, &STRICT);
    let net = net.expect("the V1 net loads");
    insta::assert_snapshot!("v1_rcnn_layers", summary(&net.layers));
    // WINDOW_DATA's mean_file/crop_size/mirror moved into transform_param.
    let data = &net.layers[0];
    assert_eq!(data.kind.value, "WindowData");
    let transform = data.param_block("transform_param");
    assert_eq!(transform.int("crop_size").map(|c| c.value), Some(227));
    assert!(!data.param_block("window_data_param").has("crop_size"));
    // blobs_lr / weight_decay became param specs, spans on the original tokens.
    let conv1 = &net.layers[1];
    assert_eq!(conv1.params.len(), 2);
    assert_eq!((conv1.params[1].lr_mult, conv1.params[1].decay_mult), (2.0, 0.0));
    assert_eq!(source.snippet(conv1.kind.span), "CONVOLUTION");
}

/// Layer counts after upgrade: the manifest counts written layer entries;
/// deploy nets with `input:` gain an `Input` layer; V0 padding layers fold.
#[test]
fn upgraded_layer_counts_match_the_manifest() {
    let mut mismatches = Vec::new();
    for entry in corpus_manifest().into_iter().filter(|e| e.kind == "net") {
        let source = read_corpus_file(&entry.path);
        let (net, diags) = load_net(&source, &LoadOptions { lenient: true });
        let Some(net) = net else {
            mismatches.push(format!("{}: {:?}", entry.path, codes(&diags)));
            continue;
        };
        let padding = source.text.matches("type: \"padding\"").count();
        let input_layer =
            usize::from(matches!(entry.input_style.as_str(), "input_dim" | "input_shape"));
        let expected = entry.n_layers + input_layer - padding;
        if net.layers.len() != expected {
            mismatches.push(format!(
                "{}: {} layers, expected {expected}",
                entry.path,
                net.layers.len()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}
