//! Caffe's `caffe train --solver` on fed tensors: the same input tensors
//! feed every iteration (and every test pass); snapshots go into the run
//! folder when one is given, and a solver state (lvc's or Caffe's binary
//! one) resumes as `caffe train --snapshot` does.

use std::path::{Path, PathBuf};

use lvc_compiler::memory::Mode;
use lvc_compiler::schema::solver::SolverDef;
use lvc_compiler::SourceFile;
use lvc_runtime::solver::{
    caffe_learned_net, is_caffe_state, read_caffe_state, read_state, solver_seed, CaffeSolverState,
    Event, FedTensors, SolverState, TestNet, Trainer,
};
use lvc_runtime::tch;

use crate::failure::{fail, report, Failed};
use crate::feeds::{read_input, InputArg};
use crate::net::{build_net, build_train_net, read_weights_checked};
use crate::run_lock::lock_run;

/// What to train: a checked solver (its `max_iter` as the caller wants it)
/// and the tensors to feed it.
#[derive(Debug, Clone)]
pub struct FedTraining {
    pub solver: SourceFile,
    pub def: SolverDef,
    pub device: tch::Device,
    /// The net inputs given to every pass.
    pub feeds: Vec<InputArg>,
    /// The folder for snapshots (replaces the folder of `snapshot_prefix`).
    pub out: Option<PathBuf>,
    /// A solver state to resume from.
    pub snapshot: Option<PathBuf>,
    /// Start weights, overriding the solver's `weights`.
    pub weights: Option<PathBuf>,
}

/// What a fed training reports.
#[derive(Debug)]
pub enum FedEvent<'a> {
    /// Training continues from a solver state at iteration `iter`.
    Resumed { state: &'a Path, weights: &'a Path, iter: i64 },
    /// The solver loop's own events (iterations, tests, snapshots).
    Solver(&'a Event),
}

/// Trains until the solver's max_iter, reporting progress to `on_event`.
pub fn train_on_feeds(
    request: &FedTraining,
    on_event: &mut dyn FnMut(FedEvent),
) -> Result<(), Failed> {
    let (source, device) = (&request.solver, request.device);
    let mut def = request.def.clone();
    // --out is a run folder with one writer (run_lock), held to the end.
    let _lock = match &request.out {
        Some(out) => {
            std::fs::create_dir_all(out)
                .map_err(|e| fail(2, format!("cannot create {}: {e}", out.display())))?;
            let lock = lock_run(out).map_err(|m| fail(2, m))?;
            let name = Path::new(&def.snapshot_prefix)
                .file_name()
                .map_or_else(|| "snapshot".into(), |n| n.to_os_string());
            def.snapshot_prefix = out.join(name).to_string_lossy().into_owned();
            Some(lock)
        }
        None => None,
    };

    let mut feeds = Vec::new();
    for feed in &request.feeds {
        let tensor = read_input(feed).map_err(|m| fail(2, format!("feed '{}': {m}", feed.name)))?;
        feeds.push((feed.name.clone(), tensor));
    }
    let resume = match &request.snapshot {
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
    let mut net = build_train_net(&def, source, &shapes, device, seed)?;
    let weights: Vec<PathBuf> = match (&resume, &request.weights) {
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
            build_net(&test.source, &test.state, source, &shapes, device, seed, Mode::Inference)?;
        test_nets.push(TestNet { net, test_iter: test.test_iter });
    }

    let mut trainer = Trainer::new(&def, seed, net, test_nets);
    if let Some((path, state)) = &resume {
        let restored = match state {
            Resume::Lvc(state) => trainer.restore(state, path),
            Resume::Caffe(state) => trainer.restore_caffe(state, path),
        };
        restored.map_err(|e| report(2, e))?;
        on_event(FedEvent::Resumed { state: path, weights: &weights[0], iter: trainer.iter });
    }
    let mut data = FedTensors { tensors: feeds };
    trainer
        .solve(&mut data, &mut |event| on_event(FedEvent::Solver(event)))
        .map_err(|e| report(1, e))
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
