//! `lvc train`: Caffe's `caffe train --solver` on fed tensors. The same
//! input tensors feed every iteration (and every test pass); a dataset
//! reader plugs in through `lvc_runtime::solver::DataSource`. `--snapshot`
//! resumes from a solver state as `caffe train --snapshot` does.

use std::path::{Path, PathBuf};

use lvc_compiler::memory::Mode;
use lvc_compiler::schema::{load_solver, LoadOptions};
use lvc_compiler::SourceFile;
use lvc_runtime::solver::{
    caffe_learned_net, is_caffe_state, read_caffe_state, read_state, solver_seed, CaffeSolverState,
    Event, FedTensors, SolverState, TestNet, Trainer,
};
use lvc_runtime::tch;

use super::device_args::DeviceArgs;
use super::forward::{parse_input, read_input, InputArg};
use super::netargs::render;
use super::weights::read_weights_checked;

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
    #[arg(long, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Overrides the solver's max_iter.
    #[arg(long, value_name = "N")]
    pub max_iter: Option<i64>,
    #[command(flatten)]
    pub dataset: super::train_dataset::DatasetArgs,
}

pub(super) use lvc_workflow::failure::{fail, report, Failed};

pub(super) use lvc_workflow::net::{build_net, build_plan, not_instantiated};

pub fn run(args: TrainArgs) -> u8 {
    match train(&args) {
        Ok(()) => 0,
        Err(Failed(code)) => code,
    }
}

fn train(args: &TrainArgs) -> Result<(), Failed> {
    let device = args.device.select().map_err(|e| report(2, e))?;
    let source = SourceFile::read(&args.solver)
        .map_err(|e| fail(2, format!("cannot read {}: {e}", args.solver.display())))?;
    let (def, diags) = load_solver(&source, &LoadOptions::default());
    diags.iter().for_each(|d| err!("{}", render(d, &source)));
    let Some(mut def) = def.filter(|_| !diags.has_errors()) else {
        return Err(fail(
            2,
            format!("{} is not a usable solver (see the errors above)", args.solver.display()),
        ));
    };
    if let Some(n) = args.max_iter {
        def.max_iter = n;
    }
    if let Some(dataset) = &args.dataset.dataset {
        return super::train_dataset::train(args, dataset, &source, def, device);
    }
    // --out is a run folder with one writer (cmd::run_lock), held to the end.
    let _lock = match &args.out {
        Some(out) => {
            std::fs::create_dir_all(out)
                .map_err(|e| fail(2, format!("cannot create {}: {e}", out.display())))?;
            let lock = super::run_lock::lock_run(out).map_err(|m| fail(2, m))?;
            let name = Path::new(&def.snapshot_prefix)
                .file_name()
                .map_or_else(|| "snapshot".into(), |n| n.to_os_string());
            def.snapshot_prefix = out.join(name).to_string_lossy().into_owned();
            Some(lock)
        }
        None => None,
    };

    let mut feeds = Vec::new();
    for feed in &args.feeds {
        let tensor = read_input(feed).map_err(|m| fail(2, format!("feed '{}': {m}", feed.name)))?;
        feeds.push((feed.name.clone(), tensor));
    }
    let resume = match &args.snapshot {
        Some(path) if is_caffe_state(path) => {
            Some((path, Resume::Caffe(read_caffe_state(path).map_err(|e| report(2, e))?)))
        }
        Some(path) => Some((path, Resume::Lvc(read_state(path).map_err(|e| report(2, e))?))),
        None => None,
    };
    // A resumed run keeps the seed it started with (a negative random_seed
    // took the clock's); Caffe's state records none, so its run uses the
    // solver's, as Caffe does.
    let seed = match &resume {
        Some((_, Resume::Lvc(state))) => state.seed,
        _ => solver_seed(&def),
    };
    tch::manual_seed(seed as i64);
    let shapes: Vec<(String, Vec<i64>)> =
        feeds.iter().map(|(n, t)| (n.clone(), t.size())).collect();
    let mut net = build_net(
        &def.train_net,
        &def.train_state,
        &source,
        &shapes,
        device,
        seed,
        Mode::training_with(def.solver_type),
    )?;
    let weights: Vec<PathBuf> = match (&resume, &args.weights) {
        (Some((path, Resume::Lvc(state))), _) => vec![state_weights(path, state)?],
        (Some((path, Resume::Caffe(state))), _) => {
            vec![caffe_learned_net(path, state).map_err(|e| report(2, e))?]
        }
        (None, Some(w)) => vec![w.clone()],
        (None, None) => def.weights.iter().map(PathBuf::from).collect(),
    };
    for path in &weights {
        let file = read_weights_checked(path).map_err(|e| report(2, e))?;
        let loaded = net.load_weights(&file).map_err(|e| report(2, e))?;
        if !loaded.loads() {
            for layer in loaded.layers.iter().filter(|l| l.status.is_fatal()) {
                errln!("error: layer '{}': {}", layer.layer, layer.status.as_str());
            }
            return Err(fail(
                2,
                format!(
                    "{} does not load into the train net (see `lvc weights check`)",
                    path.display()
                ),
            ));
        }
    }
    let mut test_nets = Vec::new();
    for test in &def.test_nets {
        let net =
            build_net(&test.source, &test.state, &source, &shapes, device, seed, Mode::Inference)?;
        test_nets.push(TestNet { net, test_iter: test.test_iter });
    }

    let mut trainer = Trainer::new(&def, seed, net, test_nets);
    let format = args.log_format;
    if let Some((path, state)) = &resume {
        let restored = match state {
            Resume::Lvc(state) => trainer.restore(state, path),
            Resume::Caffe(state) => trainer.restore_caffe(state, path),
        };
        restored.map_err(|e| report(2, e))?;
        print_resume(path, &weights[0], trainer.iter, format);
    }
    let mut data = FedTensors { tensors: feeds };
    trainer.solve(&mut data, &mut |event| print_event(event, format)).map_err(|e| report(1, e))
}

/// The solver state `--snapshot` names: lvc's own, or Caffe's binary one.
enum Resume {
    Lvc(SolverState),
    Caffe(CaffeSolverState),
}

/// The weights snapshot a solver state was written with (Caffe's
/// `learned_net`), in the state's folder.
fn state_weights(path: &Path, state: &SolverState) -> Result<PathBuf, Failed> {
    match &state.weights {
        Some(name) => Ok(path.parent().unwrap_or(Path::new("")).join(name)),
        None => Err(fail(
            2,
            format!(
                "{} names no weights snapshot; resume needs the weights written with it",
                path.display()
            ),
        )),
    }
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
