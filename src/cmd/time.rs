//! `lvc time`: Caffe's `caffe time`. Average forward, backward and
//! forward-backward over N iterations after a warm-up, and per layer
//! (`lvc_workflow::timing`; this file builds the net and prints).
//!
//! Backward is libtorch autograd over the whole net, which has no per-layer
//! hooks; so per-layer times come from running each layer on its own (its
//! bottoms taken from a full forward), forward and then backward from a
//! gradient of ones into every input and parameter that needs one. The
//! per-layer sums therefore approximate, not partition, the net totals.

use lvc_compiler::memory::Mode;
use lvc_runtime::exec::{Net, Plan};
use lvc_runtime::tch;

use super::device_args::DeviceArgs;
use super::netargs::{compile_file, render, NetArgs};

pub use super::OutputFormat as TimeFormat;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc time --model fcn_alexnet_gray_train.prototxt --phase train
  lvc time --model fcn8s_train.prototxt --phase train --input-shape data=4,1,256,256 \\
      --input-shape label=4,1,256,256 --iterations 5 --format json

Inputs are random (uniform in [0, 1) for every input; integer class labels are not needed for
timing, but a loss with ignore_label sees no ignored pixels). Parameters come from the fillers.
Per layer, each layer runs alone on the bottoms of a full forward; its backward computes the
gradients of every bottom and parameter the full backward would. `flops` counts multiply-adds
×2 of Convolution, Deconvolution and InnerProduct (backward: input and weight gradients).

Exit status: 0 timed, 1 the run failed, 2 the net could not be read or built.")]
pub struct TimeArgs {
    /// The net prototxt.
    #[arg(long, value_name = "M.prototxt")]
    pub model: std::path::PathBuf,
    #[command(flatten)]
    pub net: NetArgs,
    /// Timed iterations (after one warm-up iteration).
    #[arg(long, default_value_t = 50)]
    pub iterations: u32,
    #[arg(long, value_enum, default_value = "human")]
    pub format: TimeFormat,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Time only the whole net (per-layer timing runs every layer again;
    /// FLOPs are still counted).
    #[arg(long)]
    pub no_layers: bool,
}

pub use lvc_workflow::timing::{time_net, LayerTime, TimeReport};

pub fn run(args: TimeArgs) -> u8 {
    let fail = |code: u8, message: String| {
        errln!("error: {message}");
        code
    };
    let device = match args.device.select() {
        Ok(d) => d,
        Err(e) => {
            errln!("{:?}", miette::Report::new(e));
            return 2;
        }
    };
    if args.iterations == 0 {
        return fail(2, "--iterations must be at least 1".to_string());
    }
    let (source, compiled) = match compile_file(&args.model, &args.net.options()) {
        Ok(c) => c,
        Err(message) => return fail(2, message),
    };
    compiled.diags.iter().for_each(|d| err!("{}", render(d, &source)));
    let (Some(net_def), Some(graph), false) =
        (&compiled.net, &compiled.graph, compiled.diags.has_errors())
    else {
        return fail(
            2,
            format!(
                "{} has errors; fix them before timing it (see `lvc check`)",
                args.model.display()
            ),
        );
    };
    let plan = match Plan::from_graph(graph, net_def) {
        Ok(p) => p,
        Err(errors) => {
            errors.iter().for_each(|d| err!("{}", render(d, &source)));
            return fail(2, format!("{} uses layers the runtime cannot run", args.model.display()));
        }
    };
    tch::manual_seed(1234);
    // With a loss, backward is timed too: the net must fit with its gradients.
    let has_loss = plan.steps.iter().any(|s| s.loss_weights.iter().any(|&w| w != 0.0));
    let mode = if has_loss { Mode::Training { history_blobs: 0 } } else { Mode::Inference };
    let net = match Net::with_mode(plan, device, 1234, mode) {
        Ok(n) => n,
        Err(e) => {
            return lvc_workflow::net::not_instantiated(&args.model.display().to_string(), e).0
        }
    };
    let timed = lvc_runtime::guard::catch_torch(
        || "timing the net".into(),
        || time_net(&net, args.iterations, !args.no_layers),
    )
    .and_then(|r| r);
    match timed {
        Ok(report) => {
            match args.format {
                TimeFormat::Json => match serde_json::to_string_pretty(&report) {
                    Ok(text) => outln!("{text}"),
                    Err(e) => return fail(1, format!("cannot write the report: {e}")),
                },
                TimeFormat::Human => print_human(&report),
            }
            0
        }
        Err(e) => {
            errln!("{:?}", miette::Report::new(e));
            1
        }
    }
}

fn print_human(report: &TimeReport) {
    if report.layers.iter().all(|l| l.forward_ms.is_none()) {
        return print_totals(report);
    }
    outln!(
        "Average time per layer ({} iterations, {}; each layer run alone):",
        report.iterations,
        report.device
    );
    outln!(
        "{:<24} {:<16} {:>12} {:>12} {:>10}",
        "layer",
        "type",
        "forward ms",
        "backward ms",
        "GFLOP f+b"
    );
    for l in &report.layers {
        outln!(
            "{:<24} {:<16} {:>12.3} {:>12.3} {:>10.3}",
            l.name,
            l.kind,
            l.forward_ms.unwrap_or(0.0),
            l.backward_ms.unwrap_or(0.0),
            (l.forward_flops + l.backward_flops) / 1e9
        );
    }
    print_totals(report);
}

fn print_totals(report: &TimeReport) {
    outln!("Average Forward pass: {:.3} ms.", report.forward_ms);
    match (report.backward_ms, report.forward_backward_ms) {
        (Some(b), Some(fb)) => {
            outln!("Average Backward pass: {b:.3} ms.");
            outln!("Average Forward-Backward: {fb:.3} ms.");
        }
        _ => outln!("No backward: the net has no loss."),
    }
    outln!(
        "GFLOP per forward: {:.3}, per backward: {:.3}",
        report.forward_flops / 1e9,
        report.backward_flops / 1e9
    );
    outln!("GEMM of layers with their own backward: {}", report.own_backward_gemm);
}
