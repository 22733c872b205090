//! The typed net definition: what a (validated, upgraded) `NetParameter`
//! says, layer by layer, with spans. Per-layer parameter blocks stay as
//! [`ParamView`]s; each op reads its own block with Caffe's defaults.

use lvc_grammar::{Message, Span};
use serde::Serialize;

use super::descriptor::LAYER_PARAMETER;
use super::view::{ParamView, Spanned};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Phase {
    #[serde(rename = "TRAIN")]
    Train,
    #[serde(rename = "TEST")]
    Test,
}

/// The state a net is built for (Caffe's `NetState`): phase, level, stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetState {
    pub phase: Phase,
    pub level: i64,
    pub stages: Vec<String>,
}

impl Default for NetState {
    /// Caffe's default: TEST, level 0, no stages.
    fn default() -> Self {
        NetState { phase: Phase::Test, level: 0, stages: Vec::new() }
    }
}

/// One `include { … }` / `exclude { … }` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct NetStateRule {
    pub phase: Option<Phase>,
    pub min_level: Option<i64>,
    pub max_level: Option<i64>,
    pub stages: Vec<String>,
    pub not_stages: Vec<String>,
    pub span: Span,
}

impl NetStateRule {
    /// Caffe's `StateMeetsRule`.
    pub fn is_met_by(&self, state: &NetState) -> bool {
        self.phase.is_none_or(|p| p == state.phase)
            && self.min_level.is_none_or(|m| state.level >= m)
            && self.max_level.is_none_or(|m| state.level <= m)
            && self.stages.iter().all(|s| state.stages.contains(s))
            && !self.not_stages.iter().any(|s| state.stages.contains(s))
    }
}

/// `param { lr_mult decay_mult name share_mode }`, positional per learnable blob.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: Option<String>,
    /// Default 1.
    pub lr_mult: f64,
    /// Default 1.
    pub decay_mult: f64,
    pub span: Span,
}

/// One layer as written (after V0/V1 upgrade), before any filtering.
#[derive(Debug, Clone)]
pub struct LayerDef {
    /// Position in the file's layer list.
    pub index: usize,
    pub name: Spanned<String>,
    /// The layer type string (`"Convolution"`; V1 enums are upgraded).
    pub kind: Spanned<String>,
    pub bottoms: Vec<Spanned<String>>,
    pub tops: Vec<Spanned<String>>,
    pub loss_weights: Vec<Spanned<f64>>,
    pub params: Vec<ParamSpec>,
    pub include: Vec<NetStateRule>,
    pub exclude: Vec<NetStateRule>,
    pub phase: Option<Phase>,
    pub propagate_down: Vec<Spanned<bool>>,
    /// The whole layer message, for the `*_param` blocks.
    pub body: Message,
    /// The layer block (`layer { … }`), for labels on the layer as a whole.
    pub span: Span,
}

impl LayerDef {
    /// A parameter block of this layer, e.g. `layer.param_block("convolution_param")`.
    /// It knows its descriptor (the `LayerParameter` field's message type),
    /// so its `*_or_default` accessors apply caffe.proto's defaults, anchored
    /// on the layer's `type:` value.
    pub fn param_block(&self, field: &str) -> ParamView<'_> {
        self.view().sub(field)
    }
    /// The layer message itself (a `LayerParameter`; V0/V1 are upgraded).
    pub fn view(&self) -> ParamView<'_> {
        ParamView::of(&self.body).described(&LAYER_PARAMETER).anchored(self.kind.span)
    }
    /// Caffe's include/exclude filtering.
    pub fn is_included_in(&self, state: &NetState) -> bool {
        if !self.include.is_empty() {
            self.include.iter().any(|r| r.is_met_by(state))
        } else {
            !self.exclude.iter().any(|r| r.is_met_by(state))
        }
    }
}

/// Which container format a net file used; V0/V1 files are upgraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetFormat {
    Current,
    V1,
    V0,
}

#[derive(Debug, Clone)]
pub struct NetDef {
    pub name: Option<String>,
    pub format: NetFormat,
    pub layers: Vec<LayerDef>,
    pub force_backward: bool,
    /// `state { … }` written in the file, if any.
    pub state: Option<NetState>,
}
