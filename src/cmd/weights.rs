//! `lvc weights`: check a weights file against a net the way Caffe's
//! `CopyTrainedLayersFrom` would load it (listing every mismatch, with the
//! fix for each), and convert between `.caffemodel` and `.safetensors`.

use std::path::{Path, PathBuf};

use lvc_compiler::ir::Compiled;
use lvc_compiler::SourceFile;
use lvc_runtime::weights::safetensors::ParamRoles;
use lvc_runtime::weights::{
    apply_adaptations, match_weights, targets_from_graph, write_weights, Adaptation,
    AppliedAdaptation, TargetLayer, WeightsFile, WeightsReport,
};

use super::netargs::{compile_file, render, NetArgs};
use super::weights_report::{human_report, JsonReport};

pub(crate) use lvc_workflow::net::read_weights_checked;

#[derive(clap::Args, Debug)]
pub struct WeightsArgs {
    #[command(subcommand)]
    pub command: WeightsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum WeightsCommand {
    /// Check that a weights file loads into a net; list every layer's outcome.
    Check(CheckArgs),
    /// Convert between .caffemodel and .safetensors (by extension).
    Convert(ConvertArgs),
}

pub use super::OutputFormat as Format;

/// The net the weights are meant for, and the fixes to apply on loading.
#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// A load-time fix (repeatable): `<layer>=sum|mean|replicate` adapts a
    /// convolution's input channels (3→1 by sum or mean, 1→3 by
    /// replicate÷3), `reinit=<layer>` keeps the layer's prototxt fillers,
    /// `convolutionalize` reshapes InnerProduct weights into convolutions.
    #[arg(long = "adapt", value_name = "FIX", value_parser = parse_adaptation)]
    pub adapt: Vec<Adaptation>,
}

fn parse_adaptation(s: &str) -> Result<Adaptation, String> {
    s.parse()
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc weights check --model fcn_alexnet_gray_deploy.prototxt --weights fcn_alexnet_rgb.caffemodel
  lvc weights check --model deploy.prototxt --weights rgb.caffemodel --adapt conv1=sum
  lvc weights check --model deploy.prototxt --weights voc.caffemodel --adapt reinit=score_fr --format json
  lvc weights check --model train.prototxt --phase train --weights snapshot_iter_100.safetensors

Exit status: 0 the weights load (after the --adapt fixes), 1 they do not, 2 a file could not be read,
the net has errors or a fix does not apply.")]
pub struct CheckArgs {
    /// The net prototxt.
    #[arg(long, value_name = "M.prototxt")]
    pub model: PathBuf,
    /// The weights: .caffemodel or .safetensors.
    #[arg(long, value_name = "W.caffemodel|W.safetensors")]
    pub weights: PathBuf,
    #[command(flatten)]
    pub model_args: ModelArgs,
    /// Output: a table plus a diagnostic per problem, or one JSON document.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc weights convert fcn_alexnet.caffemodel fcn_alexnet.safetensors
  lvc weights convert snapshot.safetensors snapshot.caffemodel
  lvc weights convert --model gray_deploy.prototxt --adapt conv1=sum rgb.caffemodel gray.caffemodel

With --model the weights are checked first (and --adapt applied); nothing is written unless they load.
Exit status: 0 written, 1 the weights do not load into --model, 2 a file could not be read or written.")]
pub struct ConvertArgs {
    /// Input weights (.caffemodel or .safetensors).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Output weights (.caffemodel or .safetensors).
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
    /// A net to validate against (also records parameter roles in safetensors).
    #[arg(long, value_name = "M.prototxt")]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub model_args: ModelArgs,
}

pub fn run(args: WeightsArgs) -> u8 {
    match args.command {
        WeightsCommand::Check(a) => check(a),
        WeightsCommand::Convert(a) => convert(a),
    }
}

fn eprint_report(err: impl miette::Diagnostic + Send + Sync + 'static) {
    errln!("{:?}", miette::Report::new(err));
}

/// The net, compiled, as weight targets; `Err(2)` after printing why not.
fn load_targets(model: &Path, args: &NetArgs) -> Result<(SourceFile, Vec<TargetLayer>), u8> {
    let (source, compiled) = match compile_file(model, &args.options()) {
        Ok(c) => c,
        Err(message) => {
            errln!("error: {message}");
            return Err(2);
        }
    };
    let Compiled { net, graph, diags } = &compiled;
    match (net, graph) {
        (Some(net), Some(graph)) if !diags.has_errors() => {
            Ok((source.clone(), targets_from_graph(net, graph)))
        }
        _ => {
            for d in diags.iter() {
                err!("{}", render(d, &source));
            }
            errln!("error: {} has errors; fix them before checking weights against it (see `lvc check`)", model.display());
            Err(2)
        }
    }
}

/// Reads the weights and applies the fixes; `Err(2)` after printing why not.
fn load_adapted(
    path: &Path,
    targets: &[TargetLayer],
    adapt: &[Adaptation],
) -> Result<(WeightsFile, Vec<AppliedAdaptation>), u8> {
    let mut file = read_weights_checked(path).map_err(|e| {
        eprint_report(e);
        2u8
    })?;
    let applied = apply_adaptations(&mut file, targets, adapt).map_err(|e| {
        eprint_report(e);
        2u8
    })?;
    Ok((file, applied))
}

fn annotate(report: &mut WeightsReport, applied: &[AppliedAdaptation]) {
    for a in applied {
        if let Some(layer) = report.layers.iter_mut().find(|l| l.layer == a.layer) {
            layer.adapted = Some(a.what.clone());
        }
    }
}

fn check(args: CheckArgs) -> u8 {
    let (source, targets) = match load_targets(&args.model, &args.model_args.net) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let (file, applied) = match load_adapted(&args.weights, &targets, &args.model_args.adapt) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let mut report = match_weights(&targets, &file);
    annotate(&mut report, &applied);
    match args.format {
        Format::Human => out!("{}", human_report(&report, &source, &args.weights)),
        Format::Json => {
            match serde_json::to_string_pretty(&JsonReport::new(
                &report,
                &source,
                &args.model,
                &args.weights,
            )) {
                Ok(text) => outln!("{text}"),
                Err(e) => {
                    errln!("error: cannot encode the report as JSON: {e}");
                    return 2;
                }
            }
        }
    }
    u8::from(!report.loads())
}

fn convert(args: ConvertArgs) -> u8 {
    let mut roles = ParamRoles::new();
    let file = match &args.model {
        Some(model) => {
            let (source, targets) = match load_targets(model, &args.model_args.net) {
                Ok(t) => t,
                Err(code) => return code,
            };
            let (file, applied) = match load_adapted(&args.input, &targets, &args.model_args.adapt)
            {
                Ok(f) => f,
                Err(code) => return code,
            };
            let mut report = match_weights(&targets, &file);
            annotate(&mut report, &applied);
            if !report.loads() {
                err!("{}", human_report(&report, &source, &args.input));
                errln!(
                    "error: not written: {} does not load into {}",
                    args.input.display(),
                    model.display()
                );
                return 1;
            }
            for t in &targets {
                if !t.params.is_empty() {
                    roles
                        .entry(t.name.clone())
                        .or_insert_with(|| t.params.iter().map(|p| p.role.to_string()).collect());
                }
            }
            file
        }
        None if !args.model_args.adapt.is_empty() => {
            errln!("error: --adapt needs --model (the fixes are computed from the net's shapes)");
            return 2;
        }
        None => match read_weights_checked(&args.input) {
            Ok(f) => f,
            Err(e) => {
                eprint_report(e);
                return 2;
            }
        },
    };
    match write_weights(&args.output, &file, &roles) {
        Ok(()) => {
            let layers = file.layers.iter().filter(|l| !l.blobs.is_empty()).count();
            outln!(
                "wrote {} ({layers} layers with weights, {} values)",
                args.output.display(),
                file.param_count()
            );
            0
        }
        Err(e) => {
            eprint_report(e);
            2
        }
    }
}
