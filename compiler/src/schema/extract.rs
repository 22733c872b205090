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
