//! Upgraded (current-format) `NetParameter` tree → [`NetDef`].
//!
//! The tree has been validated and upgraded already, so values of the wrong
//! kind cannot occur here; what extraction still checks are the rules Caffe
//! applies while building a net that the schema cannot express (include and
//! exclude in one layer).

use lvc_grammar::{Field, Message};

use super::net::{LayerDef, NetDef, NetFormat, NetState, NetStateRule, ParamSpec, Phase};
use super::view::{ParamView, Spanned};
use crate::diag::{Diagnostic, Diagnostics};

/// Builds the typed net from a current-format tree (`layer { … }` entries).
/// V1 `layers` entries must have been upgraded before; any left are ignored,
/// exactly as Caffe's `Net::Init` iterates only `layer`.
pub fn extract_net(root: &Message, format: NetFormat, diags: &mut Diagnostics) -> NetDef {
    let view = ParamView::of(root);
    let layers = root
        .all("layer")
        .filter_map(|field| field.value.as_message().map(|body| (field, body)))
        .enumerate()
        .map(|(index, (field, body))| extract_layer(index, field, body, diags))
        .collect();
    NetDef {
        name: view.string("name").map(|s| s.value.to_string()),
        format,
        layers,
        force_backward: view.bool("force_backward").is_some_and(|b| b.value),
        state: view.sub("state").message().map(net_state),
    }
}

/// Caffe's `NetState` message with its defaults (phase TEST, level 0).
pub fn net_state(msg: &Message) -> NetState {
    let view = ParamView::of(msg);
    NetState {
        phase: view.ident("phase").and_then(|p| phase(p.value)).unwrap_or(Phase::Test),
        level: view.int("level").map_or(0, |l| l.value),
        stages: view.strings("stage").into_iter().map(|s| s.value.to_string()).collect(),
    }
}

/// `TRAIN` / `TEST`; anything else was reported by the validator.
pub fn phase(name: &str) -> Option<Phase> {
    match name {
        "TRAIN" => Some(Phase::Train),
        "TEST" => Some(Phase::Test),
        _ => None,
    }
}

fn extract_layer(index: usize, field: &Field, body: &Message, diags: &mut Diagnostics) -> LayerDef {
    let view = ParamView::of(body);
    // Caffe leaves an unnamed layer's name empty (`layer_param.name()` is "");
    // the span then points at the `layer` keyword so labels still land.
    let name = view
        .string("name")
        .map_or_else(|| Spanned::new(String::new(), field.name_span), |s| s.map(str::to_string));
    let kind = layer_kind(view, field);
    let include = rules(view, "include");
    let exclude = rules(view, "exclude");
    if !include.is_empty() && !exclude.is_empty() {
        let mut d = Diagnostic::error(
            "lvc::schema::include_exclude",
            "Specify either include rules or exclude rules; not both.",
        )
        .with_label(include[0].span, "include rule")
        .with_label(exclude[0].span, "exclude rule")
        .with_help("Caffe refuses a layer with both; keep the include rules or the exclude rules");
        d = d.in_layer(name.value.clone());
        diags.push(d);
    }
    LayerDef {
        index,
        name,
        kind,
        bottoms: owned_strings(view, "bottom"),
        tops: owned_strings(view, "top"),
        loss_weights: view.floats("loss_weight"),
        params: view.subs("param").into_iter().map(param_spec).collect(),
        include,
        exclude,
        phase: view.ident("phase").and_then(|p| phase(p.value)),
        propagate_down: view.bools("propagate_down"),
        body: body.clone(),
        span: field.span,
    }
}

/// The layer type string. A `Python` layer whose `python_param.layer` is one
/// of lvc's native implementations (`Dice`, `DiceLoss`, from any module) gets
/// that class name as its kind; other Python layers stay `Python`.
fn layer_kind(view: ParamView<'_>, field: &Field) -> Spanned<String> {
    let Some(kind) = view.string("type") else {
        // Caffe's default type is the empty string (it fails later with
        // "Unknown layer type: "); the IR reports that with this span.
        return Spanned::new(String::new(), field.name_span);
    };
    if kind.value == "Python" {
        if let Some(class) = view.sub("python_param").string("layer") {
            if NATIVE_PYTHON_LAYERS.contains(&class.value) {
                return Spanned::new(class.value.to_string(), kind.span);
            }
        }
    }
    kind.map(str::to_string)
}

/// Python layer classes lvc implements natively (DIGITS' Dice metric/loss).
pub const NATIVE_PYTHON_LAYERS: &[&str] = &["Dice", "DiceLoss"];

fn owned_strings(view: ParamView<'_>, name: &'static str) -> Vec<Spanned<String>> {
    view.strings(name).into_iter().map(|s| s.map(str::to_string)).collect()
}

fn rules(view: ParamView<'_>, name: &'static str) -> Vec<NetStateRule> {
    view.subs(name)
        .into_iter()
        .filter_map(|rule| {
            let span = rule.span()?;
            Some(NetStateRule {
                phase: rule.ident("phase").and_then(|p| phase(p.value)),
                min_level: rule.int("min_level").map(|l| l.value),
                max_level: rule.int("max_level").map(|l| l.value),
                stages: rule.strings("stage").into_iter().map(|s| s.value.to_string()).collect(),
                not_stages: rule
                    .strings("not_stage")
                    .into_iter()
                    .map(|s| s.value.to_string())
                    .collect(),
                span,
            })
        })
        .collect()
}

fn param_spec(spec: ParamView<'_>) -> ParamSpec {
    ParamSpec {
        name: spec.string("name").map(|s| s.value.to_string()),
        lr_mult: spec.float("lr_mult").map_or(1.0, |v| v.value),
        decay_mult: spec.float("decay_mult").map_or(1.0, |v| v.value),
        span: spec.span().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> (NetDef, Diagnostics) {
        let tree = lvc_grammar::parse(text).expect("test input parses");
        let mut diags = Diagnostics::new();
        (extract_net(&tree, NetFormat::Current, &mut diags), diags)
    }

    #[test]
    fn python_dice_layers_get_native_kinds() {
        let (net, diags) = net(concat!(
            "layer { name: \"d\" type: \"Python\" python_param { module: \"digits_python_layers\" layer: \"Dice\" } }\n",
            "layer { name: \"l\" type: \"Python\" python_param { module: \"my.losses\" layer: \"DiceLoss\" } }\n",
            "layer { name: \"v\" type: \"Python\" python_param { module: \"voc_layers\" layer: \"VOCSegDataLayer\" } }\n",
            "layer { name: \"x\" type: \"Python\" }\n",
        ));
        assert!(diags.is_empty());
        let kinds: Vec<&str> = net.layers.iter().map(|l| l.kind.value.as_str()).collect();
        assert_eq!(kinds, ["Dice", "DiceLoss", "Python", "Python"]);
    }

    #[test]
    fn fields_and_caffe_defaults() {
        let text = concat!(
            "name: \"n\"\nforce_backward: true\nstate { stage: \"deploy\" }\n",
            "layer {\n  type: \"Convolution\"\n  bottom: \"a\" bottom: \"b\"\n  top: \"c\"\n  loss_weight: 0.5\n",
            "  param { lr_mult: 2 } param { name: \"shared\" decay_mult: 0 }\n  phase: TEST\n  propagate_down: false propagate_down: 1\n",
            "  include { phase: TRAIN min_level: 1 stage: \"s\" not_stage: \"t\" }\n}\n",
        );
        let (net, diags) = net(text);
        assert!(diags.is_empty());
        assert_eq!(net.name.as_deref(), Some("n"));
        assert!(net.force_backward);
        assert_eq!(
            net.state,
            Some(NetState { phase: Phase::Test, level: 0, stages: vec!["deploy".into()] })
        );
        let l = &net.layers[0];
        // No name: Caffe's empty name, labelled at the `layer` keyword.
        assert_eq!(l.name.value, "");
        assert_eq!(&text[l.name.span.start..l.name.span.end], "layer");
        assert_eq!(l.bottoms.iter().map(|b| b.value.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(l.loss_weights[0].value, 0.5);
        assert_eq!(
            (l.params[0].lr_mult, l.params[0].decay_mult, l.params[0].name.clone()),
            (2.0, 1.0, None)
        );
        assert_eq!((l.params[1].lr_mult, l.params[1].decay_mult), (1.0, 0.0));
        assert_eq!(l.params[1].name.as_deref(), Some("shared"));
        assert_eq!(l.phase, Some(Phase::Test));
        assert_eq!(l.propagate_down.iter().map(|p| p.value).collect::<Vec<_>>(), [false, true]);
        let rule = &l.include[0];
        assert_eq!(
            (rule.phase, rule.min_level, rule.max_level),
            (Some(Phase::Train), Some(1), None)
        );
        assert_eq!(
            (rule.stages.clone(), rule.not_stages.clone()),
            (vec!["s".to_string()], vec!["t".to_string()])
        );
        assert!(&text[l.span.start..l.span.end].starts_with("layer {"));
    }

    #[test]
    fn a_layer_without_type_has_the_empty_type() {
        let (net, _) = net("layer { name: \"a\" }");
        assert_eq!(net.layers[0].kind.value, "");
    }
}
