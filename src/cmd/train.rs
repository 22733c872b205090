//! `lvc train`: Caffe's `caffe train --solver` on fed tensors
//! (`lvc_workflow::train::fed`), or on a dataset with `--dataset`
//! (`super::train_dataset`). This file holds the arguments and prints the
//! solver loop's events, for people or as JSON lines.

use std::path::{Path, PathBuf};

use lvc_runtime::solver::Event;
use lvc_workflow::failure::{report, Failed};
use lvc_workflow::solver::read_solver;
use lvc_workflow::train::fed::{train_on_feeds, FedEvent, FedTraining};

use super::device_args::DeviceArgs;
use super::forward::{parse_input, InputArg};
use super::train_dataset::{DatasetArgs, Solver};

pub use super::OutputFormat as LogFormat;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  lvc train --solver solver.prototxt --feed data=slice.npy --feed label=mask.npy
  lvc train --solver fcn_alexnet_slim_gray_solver.prototxt \\
      --weights fcn_alexnet_slim_gray.caffemodel \\
      --feed data=input_gray_256.f32:1x1x256x256 --feed label=label_disc_256.f32:1x1x256x256 \\
      --out runs/fixed --log-format json --max-iter 20
  lvc train --solver solver.prototxt --feed data=slice.npy --feed label=mask.npy \\
      --snapshot snapshots/tiny_iter_2.solverstate.safetensors

The solver's net (and test nets) must take their inputs from Input layers; every --feed tensor
is given to every forward pass. Fillers and dropout use the solver's random_seed. Snapshots
(`snapshot`, `snapshot_after_train`) are written as <snapshot_prefix>_iter_<N>.safetensors, in
--out when given, each with its solver state <snapshot_prefix>_iter_<N>.solverstate.safetensors
(iteration, optimizer history, lr-policy step, random streams). --snapshot STATE continues
from such a state (with the weights file it names, next to it) exactly as the uninterrupted
run would have: the same losses and bit-identical weights. Caffe's own <prefix>_iter_<N>.solverstate
(snapshot_format: BINARYPROTO) resumes as Caffe does: its iteration, lr-policy step and
histories (matched to the net's param blobs by position), with the .caffemodel it names
(as written, else next to the state) and the solver's seed. With --log-format json, stdout has
one JSON object per line: \"iteration\" events ({\"event\",\"iter\",\"loss\",\"smoothed_loss\",
\"lr\",\"ms\"}) for every iteration, then \"final\", \"test\" and \"snapshot\" (with \"path\" and
\"state\") events; a resumed run starts with a \"resume\" event.

Exit status: 0 trained, 1 training failed (a runtime error or a snapshot could not be written),
2 the solver, a net, the weights, a feed or a solver state could not be read (or a state does
not fit the solver and net), or the --out/--resume folder is in use by another lvc process.")]
pub struct TrainArgs {
    /// The solver prototxt.
    #[arg(long, value_name = "S.prototxt")]
    pub solver: PathBuf,
    /// Start weights (.caffemodel or .safetensors), matched by layer name;
    /// overrides the solver's `weights`.
    #[arg(long, value_name = "W")]
    pub weights: Option<PathBuf>,
    /// Resume from a solver state (<prefix>_iter_<N>.solverstate.safetensors,
    /// written with every snapshot, or Caffe's <prefix>_iter_<N>.solverstate):
    /// its weights, iteration, optimizer history and random streams. Not
    /// with --weights (Caffe's rule).
    #[arg(long, value_name = "STATE", conflicts_with_all = ["weights", "dataset"])]
    pub snapshot: Option<PathBuf>,
    /// A net input for every pass (repeatable): NAME=FILE.npy or NAME=FILE.f32:DxDx…
    #[arg(long = "feed", value_name = "NAME=FILE", value_parser = parse_input)]
    pub feeds: Vec<InputArg>,
    /// Folder for snapshots (created if missing); replaces the folder of `snapshot_prefix`.
    #[arg(long, value_name = "RUN")]
    pub out: Option<PathBuf>,
    /// Progress for people, or `json`: one JSON object per line on stdout
    /// (with --dataset: one per training event, as `lvc serve` reads it).
    #[arg(long, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Overrides the solver's max_iter.
    #[arg(long, value_name = "N")]
    pub max_iter: Option<i64>,
    #[command(flatten)]
    pub dataset: DatasetArgs,
}

pub fn run(args: TrainArgs) -> u8 {
    match train(&args) {
        Ok(()) => 0,
        Err(Failed(code)) => code,
    }
}

fn train(args: &TrainArgs) -> Result<(), Failed> {
    let device = args.device.select().map_err(|e| report(2, e))?;
    let (source, mut def) = read_solver(&args.solver)?;
    if let Some(n) = args.max_iter {
        def.max_iter = n;
    }
    if let Some(dataset) = &args.dataset.dataset {
        let solver = Solver {
            path: args.solver.clone(),
            source,
            def,
            device,
            device_label: args.device.describe(),
            out: args.out.clone(),
            weights: args.weights.clone(),
            json: args.log_format == LogFormat::Json,
        };
        return super::train_dataset::train(solver, dataset, &args.dataset);
    }
    let request = FedTraining {
        solver: source,
        def,
        device,
        feeds: args.feeds.clone(),
        out: args.out.clone(),
        snapshot: args.snapshot.clone(),
        weights: args.weights.clone(),
    };
    let format = args.log_format;
    train_on_feeds(&request, &mut |event| match event {
        FedEvent::Resumed { state, weights, iter } => print_resume(state, weights, iter, format),
        FedEvent::Solver(event) => print_event(event, format),
    })
}

fn print_resume(state: &Path, weights: &Path, iter: i64, format: LogFormat) {
    match format {
        LogFormat::Json => outln!(
            "{}",
            serde_json::json!({"event": "resume", "iter": iter, "state": state.display().to_string(), "weights": weights.display().to_string()})
        ),
        LogFormat::Human => {
            outln!(
                "Restoring previous solver status from {} (weights {}), iteration {iter}",
                state.display(),
                weights.display()
            );
        }
    }
}

fn print_event(event: &Event, format: LogFormat) {
    match format {
        LogFormat::Json => outln!("{}", event_json(event)),
        LogFormat::Human => match event {
            Event::Iteration { iter, smoothed_loss, lr, ms, display, .. } if *display => {
                outln!("Iteration {iter}, loss = {smoothed_loss:.6}, lr = {lr} ({ms:.1} ms)");
            }
            Event::Iteration { .. } => {}
            Event::Final { iter, smoothed_loss, .. } => {
                outln!("Iteration {iter}, loss = {smoothed_loss:.6}")
            }
            Event::Test { iter, net, loss, outputs } => {
                outln!("Iteration {iter}, Testing net (#{net}): loss = {loss:.6}");
                for (name, values) in outputs {
                    let shown: Vec<String> = values.iter().map(|v| format!("{v:.6}")).collect();
                    outln!("    Test net output {name} = {}", shown.join(" "));
                }
            }
            Event::Snapshot { iter, path, state } => {
                outln!(
                    "Iteration {iter}, snapshot written to {}, solver state to {}",
                    path.display(),
                    state.display()
                );
            }
        },
    }
}

fn event_json(event: &Event) -> serde_json::Value {
    use serde_json::json;
    match event {
        Event::Iteration { iter, loss, smoothed_loss, lr, ms, .. } => {
            json!({"event": "iteration", "iter": iter, "loss": loss, "smoothed_loss": smoothed_loss, "lr": lr, "ms": ms})
        }
        Event::Final { iter, loss, smoothed_loss } => {
            json!({"event": "final", "iter": iter, "loss": loss, "smoothed_loss": smoothed_loss})
        }
        Event::Test { iter, net, loss, outputs } => {
            let outputs: serde_json::Map<String, serde_json::Value> =
                outputs.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
            json!({"event": "test", "iter": iter, "net": net, "loss": loss, "outputs": outputs})
        }
        Event::Snapshot { iter, path, state } => {
            json!({"event": "snapshot", "iter": iter, "path": path.display().to_string(), "state": state.display().to_string()})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_events_have_the_documented_keys() {
        let it = event_json(&Event::Iteration {
            iter: 3,
            loss: 0.5,
            smoothed_loss: 0.6,
            lr: 0.01,
            ms: 2.0,
            display: false,
        });
        assert_eq!(it["event"], "iteration");
        assert_eq!(
            (it["iter"].as_i64(), it["loss"].as_f64(), it["lr"].as_f64()),
            (Some(3), Some(0.5), Some(0.01))
        );
        let test = event_json(&Event::Test {
            iter: 0,
            net: 1,
            loss: 2.0,
            outputs: vec![("accuracy".into(), vec![0.75])],
        });
        assert_eq!(test["outputs"]["accuracy"][0].as_f64(), Some(0.75));
        let snap = event_json(&Event::Snapshot {
            iter: 5,
            path: PathBuf::from("run/s_iter_5.safetensors"),
            state: PathBuf::from("run/s_iter_5.solverstate.safetensors"),
        });
        assert_eq!(snap["path"], "run/s_iter_5.safetensors");
        assert_eq!(snap["state"], "run/s_iter_5.solverstate.safetensors");
    }
}
