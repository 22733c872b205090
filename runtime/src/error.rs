//! Errors of the runtime that are not tied to a place in a prototxt (those
//! are compiler [`Diagnostic`](lvc_compiler::Diagnostic)s with spans).

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum RuntimeError {
    #[error("CUDA was requested, but {found}")]
    #[diagnostic(
        code(lvc::runtime::no_cuda),
        help("run with `--device cpu`, or on a machine whose libtorch sees an NVIDIA GPU")
    )]
    NoCuda { found: String },

    #[error("unknown device '{0}'")]
    #[diagnostic(code(lvc::runtime::device), help("use `cpu` or `cuda` (optionally `cuda:N`)"))]
    UnknownDevice(String),

    #[error("filler '{kind}' cannot fill a blob of shape {shape:?}: {reason}")]
    #[diagnostic(code(lvc::runtime::filler), help("{help}"))]
    Filler { kind: String, shape: Vec<i64>, reason: String, help: String },

    #[error("input '{name}': {reason}")]
    #[diagnostic(code(lvc::runtime::input), help("{help}"))]
    Input { name: String, reason: String, help: String },

    #[error("layer '{layer}': {reason}")]
    #[diagnostic(
        code(lvc::runtime::labels),
        help("labels are class indices 0..C-1 (C = the score blob's channels) or the layer's ignore_label; check the label data, or change the class count with `lvc set-classes`")
    )]
    Labels { layer: String, reason: String },

    #[error("layer '{layer}' parameter {index}: {reason}")]
    #[diagnostic(code(lvc::runtime::param), help("{help}"))]
    Param { layer: String, index: usize, reason: String, help: String },

    /// The plan's memory estimate exceeds what the device has free
    /// (`crate::memory`); nothing was allocated.
    #[error("{need}, but {available}")]
    #[diagnostic(code(lvc::runtime::memory), help("{help}"))]
    Memory { need: String, available: String, help: String },

    #[error("libtorch failed in {context}: {source}")]
    #[diagnostic(code(lvc::runtime::torch))]
    Torch {
        context: String,
        #[source]
        source: tch::TchError,
    },
}

impl RuntimeError {
    pub fn torch(context: impl Into<String>) -> impl FnOnce(tch::TchError) -> RuntimeError {
        let context = context.into();
        move |source| RuntimeError::Torch { context, source }
    }
}
