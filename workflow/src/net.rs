//! Building the nets of a solver for the workflow: compiled for a state
//! and input shapes, refused before allocation when they do not fit, and
//! loaded with checked weights.

use std::path::Path;

use lvc_compiler::ir::{compile, CompileOptions, NetGraph};
use lvc_compiler::memory::Mode;
use lvc_compiler::schema::solver::{NetSource, SolverDef};
use lvc_compiler::schema::{NetState, Phase};
use lvc_compiler::SourceFile;
use lvc_runtime::error::RuntimeError;
use lvc_runtime::exec::{Net, Plan};
use lvc_runtime::solver::net_weights;
use lvc_runtime::tch;
use lvc_runtime::weights::{read_weights, write_weights, WeightsError, WeightsFile};

use crate::diagnostics::render;
use crate::failure::{fail, report, Failed};

/// Reads a weights file as `read_weights` does, and warns (naming the
/// layer) about blobs holding NaN or ±inf: they load, but every output
/// through that layer is NaN. Every command that reads weights reads them
/// through here.
pub fn read_weights_checked(path: &Path) -> Result<WeightsFile, WeightsError> {
    let file = read_weights(path)?;
    for bad in file.non_finite() {
        errln!("warning: {}: {bad}; outputs through this layer will be NaN", path.display());
    }
    Ok(file)
}

/// Writes the learned weights of `net` to `path` (safetensors, exit code 1 on failure).
pub fn save_weights(net: &Net, path: &Path) -> Result<(), Failed> {
    let (weights, roles) = net_weights(net);
    write_weights(path, &weights, &roles).map_err(|e| report(1, e))
}

/// Reports why the net of `file` was not instantiated; a memory refusal
/// also names the file (the estimate is about the net as a whole).
pub fn not_instantiated(file: &str, err: RuntimeError) -> Failed {
    let refused = matches!(err, RuntimeError::Memory { .. });
    let failed = report(2, err);
    if refused {
        errln!("error: {file} does not fit in memory; nothing was allocated (see `lvc check --memory {file}`)");
    }
    failed
}

/// The solver's train net (its TRAIN state) for inputs of `input_shapes`,
/// instantiated for training with the solver's update rule.
pub fn build_train_net(
    def: &SolverDef,
    solver_source: &SourceFile,
    input_shapes: &[(String, Vec<i64>)],
    device: tch::Device,
    seed: u64,
) -> Result<Net, Failed> {
    let mode = Mode::training_with(def.solver_type);
    build_net(&def.train_net, &def.train_state, solver_source, input_shapes, device, seed, mode)
}

/// Compiles a solver's net for `state`, with `input_shapes` overriding the
/// Input layers' shapes, and instantiates it for `mode` (fillers seeded with
/// `seed`; a net the device cannot hold for that use is refused before
/// anything is allocated).
pub fn build_net(
    net_source: &NetSource,
    state: &NetState,
    solver_source: &SourceFile,
    input_shapes: &[(String, Vec<i64>)],
    device: tch::Device,
    seed: u64,
    mode: Mode,
) -> Result<Net, Failed> {
    let plan = build_plan(net_source, state, solver_source, input_shapes)?;
    Net::with_mode(plan, device, seed, mode)
        .map_err(|e| not_instantiated(&net_file_name(net_source, solver_source), e))
}

/// The file a solver's net comes from, for messages.
fn net_file_name(net_source: &NetSource, solver_source: &SourceFile) -> String {
    match net_source {
        NetSource::File(file) => {
            file.found().map_or_else(|| file.written.value.clone(), |p| p.display().to_string())
        }
        NetSource::Inline(_) => solver_source.name(),
    }
}

/// [`build_net`] up to the plan: nothing allocated.
pub fn build_plan(
    net_source: &NetSource,
    state: &NetState,
    solver_source: &SourceFile,
    input_shapes: &[(String, Vec<i64>)],
) -> Result<Plan, Failed> {
    let opts = CompileOptions {
        phase: state.phase,
        stages: state.stages.clone(),
        level: state.level,
        input_shapes: input_shapes.to_vec(),
        lenient: false,
    };
    let (file_source, net_def, graph, diags) = match net_source {
        NetSource::File(file) => {
            let Some(path) = file.found() else {
                return Err(fail(2, file.not_found("net").message));
            };
            let net_source = SourceFile::read(path)
                .map_err(|e| fail(2, format!("cannot read {}: {e}", path.display())))?;
            let compiled = compile(&net_source, &opts);
            (net_source, compiled.net, compiled.graph, compiled.diags)
        }
        NetSource::Inline(net) => {
            let mut diags = lvc_compiler::diag::Diagnostics::new();
            let graph = NetGraph::build(net, &opts, &mut diags);
            (solver_source.clone(), Some((**net).clone()), Some(graph), diags)
        }
    };
    let shown = file_source.name();
    diags.iter().for_each(|d| err!("{}", render(d, &file_source)));
    let (Some(net_def), Some(graph)) = (net_def, graph) else {
        return Err(fail(2, format!("{shown} could not be read as a net")));
    };
    if diags.has_errors() {
        return Err(fail(
            2,
            format!("{shown} has errors; fix them before training (see `lvc check`)"),
        ));
    }
    Plan::from_graph(&graph, &net_def).map_err(|errors| {
        errors.iter().for_each(|d| err!("{}", render(d, &file_source)));
        fail(2, format!("{shown} uses layers the runtime cannot run"))
    })
}

/// The solver's net in the deploy stage (TEST phase), for one image of
/// `image_shape` (C, H, W).
pub fn deploy_net(
    solver: &SourceFile,
    def: &SolverDef,
    image_shape: [usize; 3],
    device: tch::Device,
) -> Result<Net, Failed> {
    let state = NetState { phase: Phase::Test, level: 0, stages: vec!["deploy".to_string()] };
    build_net(
        &def.train_net,
        &state,
        solver,
        &[("data".to_string(), one_image_shape(image_shape))],
        device,
        0,
        Mode::Inference,
    )
}

/// (1, C, H, W).
pub fn one_image_shape([c, h, w]: [usize; 3]) -> Vec<i64> {
    vec![1, c as i64, h as i64, w as i64]
}
