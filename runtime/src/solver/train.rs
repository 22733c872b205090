//! The training loop of Caffe's `Solver::Step`/`Solve`: per iteration
//! optional testing, `iter_size` forward-backward passes, the smoothed loss
//! for display, the update, and snapshots (weights and solver state); after
//! the last update one more forward to report the final loss, and a last
//! test.
//!
//! Dropout draws from libtorch's global generator, whose state libtorch does
//! not let us save; so the trainer seeds it before every training pass from
//! (run seed, passes so far). A mask then depends only on the seed and the
//! pass, and a resumed run (which restores the pass counter) draws the masks
//! the uninterrupted run would have drawn.

use std::path::{Path, PathBuf};
use std::time::Instant;

use lvc_compiler::schema::solver::SolverDef;
use lvc_compiler::schema::Phase;
use tch::{Kind, Tensor};

use super::lr::LrSchedule;
use super::smoothed::SmoothedLoss;
use super::state::{state_path_for, write_state, StateError};
use super::update::{Optimizer, ParamGrads, UpdateSettings};
use crate::error::RuntimeError;
use crate::exec::Net;
use crate::ops::{accumulate, host_f32};
use crate::weights::safetensors::ParamRoles;
use crate::weights::{write_weights, WeightBlob, WeightsError, WeightsFile, WeightsLayer};

/// Why training stopped.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TrainError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("cannot write the snapshot")]
    #[diagnostic(
        code(lvc::train::snapshot),
        help("check that the folder of `snapshot_prefix` exists and is writable")
    )]
    Snapshot(#[source] WeightsError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
}

/// Where the net inputs of each pass come from. Fed tensors give the same
/// batch every time; a dataset reader gives the next batch.
pub trait DataSource {
    /// The inputs for one forward pass of a net in `phase`, as (input blob
    /// name, tensor) pairs.
    fn next_batch(&mut self, phase: Phase) -> Result<Vec<(String, Tensor)>, RuntimeError>;
}

/// The same tensors for every pass and phase (`lvc train --feed`).
pub struct FedTensors {
    pub tensors: Vec<(String, Tensor)>,
}

impl DataSource for FedTensors {
    fn next_batch(&mut self, _phase: Phase) -> Result<Vec<(String, Tensor)>, RuntimeError> {
        Ok(self.tensors.iter().map(|(n, t)| (n.clone(), t.shallow_clone())).collect())
    }
}

/// The loop settings of a solver (everything but the update rule).
#[derive(Debug, Clone, PartialEq)]
pub struct LoopSettings {
    pub max_iter: i64,
    pub display: i64,
    pub average_loss: i64,
    pub test_interval: i64,
    pub test_initialization: bool,
    pub snapshot: i64,
    pub snapshot_prefix: String,
    pub snapshot_after_train: bool,
}

impl LoopSettings {
    pub fn from_def(def: &SolverDef) -> Self {
        LoopSettings {
            max_iter: def.max_iter,
            display: def.display,
            average_loss: def.average_loss.max(1),
            test_interval: def.test_interval,
            test_initialization: def.test_initialization,
            snapshot: def.snapshot,
            snapshot_prefix: def.snapshot_prefix.clone(),
            snapshot_after_train: def.snapshot_after_train,
        }
    }
}

/// The seed for fillers and dropout: `random_seed`, or the clock when it is
/// negative (Caffe's default -1).
pub fn solver_seed(def: &SolverDef) -> u64 {
    match u64::try_from(def.random_seed) {
        Ok(seed) => seed,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    }
}

/// A test net sharing the train net's weights, run `test_iter` times.
pub struct TestNet {
    pub net: Net,
    pub test_iter: i64,
}

/// What the loop reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Iteration `iter` ran its forward-backward passes and its update.
    /// `loss` is the forward loss of this iteration (mean over iter_size),
    /// `smoothed_loss` Caffe's displayed value (mean over `average_loss`).
    Iteration { iter: i64, loss: f64, smoothed_loss: f64, lr: f64, ms: f64, display: bool },
    /// The extra forward after the last update (Caffe prints it when
    /// `display` divides max_iter).
    Final { iter: i64, loss: f64, smoothed_loss: f64 },
    /// Test net `net` at iteration `iter`: mean loss (Σ loss_weight · top)
    /// and the mean of every small output blob over `test_iter` passes.
    Test { iter: i64, net: usize, loss: f64, outputs: Vec<(String, Vec<f64>)> },
    /// Weights written to `path`, the solver state to `state`.
    Snapshot { iter: i64, path: PathBuf, state: PathBuf },
}

/// Test-net outputs with at most this many values are reported (Caffe
/// prints every value of every output; a score map would flood the log).
const MAX_REPORTED_OUTPUT: i64 = 64;

pub struct Trainer {
    pub net: Net,
    pub test_nets: Vec<TestNet>,
    pub optimizer: Optimizer,
    pub schedule: LrSchedule,
    pub settings: LoopSettings,
    /// The next iteration to run (Caffe's `iter_`).
    pub iter: i64,
    /// The run's seed: dropout masks are drawn from it and the pass counter.
    pub seed: u64,
    /// Training forward passes run so far (the dropout stream's position).
    pub(super) train_passes: u64,
    pub(super) smoothed: SmoothedLoss,
}

impl Trainer {
    /// A trainer over `net` (built in the solver's train state, with its
    /// start weights, from `seed`: [`solver_seed`]) and its test nets, whose
    /// weights are tied to the train net's by layer name (Caffe's
    /// `ShareTrainedLayersWith`).
    pub fn new(def: &SolverDef, seed: u64, net: Net, test_nets: Vec<TestNet>) -> Self {
        Self::with_settings(
            UpdateSettings::from_def(def),
            LrSchedule::from_def(def),
            LoopSettings::from_def(def),
            seed,
            net,
            test_nets,
        )
    }

    pub fn with_settings(
        update: UpdateSettings,
        schedule: LrSchedule,
        settings: LoopSettings,
        seed: u64,
        net: Net,
        mut test_nets: Vec<TestNet>,
    ) -> Self {
        for test in &mut test_nets {
            share_weights(&net, &mut test.net);
        }
        Trainer {
            optimizer: Optimizer::new(update, &net),
            smoothed: SmoothedLoss::new(settings.average_loss),
            net,
            test_nets,
            schedule,
            settings,
            iter: 0,
            seed,
            train_passes: 0,
        }
    }

    /// Seeds libtorch's generator (dropout) for the next training pass.
    fn seed_next_pass(&mut self) {
        tch::manual_seed(pass_seed(self.seed, self.train_passes));
        self.train_passes += 1;
    }

    /// One forward-backward pass: the loss and the parameter gradients.
    pub fn forward_backward(
        &self,
        data: &mut dyn DataSource,
    ) -> Result<(f64, ParamGrads), RuntimeError> {
        let inputs = data.next_batch(Phase::Train)?;
        let refs: Vec<(&str, Tensor)> =
            inputs.iter().map(|(n, t)| (n.as_str(), t.shallow_clone())).collect();
        let blobs = self.net.forward_lean(&refs)?;
        let loss = scalar(blobs.loss.as_ref());
        let grads = crate::guard::catch_torch(
            || "the backward pass".into(),
            || self.net.param_gradients(&blobs),
        )?;
        Ok((loss, grads.params))
    }

    /// Iteration `self.iter`: iter_size passes, then the update.
    pub fn step(&mut self, data: &mut dyn DataSource) -> Result<Event, TrainError> {
        let started = Instant::now();
        let passes = self.optimizer.settings.iter_size.max(1);
        let mut loss = 0.0;
        let mut summed: Option<ParamGrads> = None;
        for _ in 0..passes {
            self.seed_next_pass();
            let (pass_loss, grads) = self.forward_backward(data)?;
            loss += pass_loss;
            summed = Some(match summed {
                None => grads,
                Some(total) => add_grads(total, grads),
            });
        }
        loss /= passes as f64;
        let smoothed_loss = self.smoothed.push(loss);
        let lr = self.schedule.rate(self.iter);
        let grads = summed.unwrap_or_default();
        let (optimizer, net, iter) = (&mut self.optimizer, &mut self.net, self.iter);
        let spent = crate::guard::catch_torch(
            || "the solver update".into(),
            || optimizer.apply(net, grads, lr, iter),
        )?;
        self.net.recycle(spent);
        let event = Event::Iteration {
            iter: self.iter,
            loss,
            smoothed_loss,
            lr,
            ms: started.elapsed().as_secs_f64() * 1e3,
            display: self.settings.display > 0 && self.iter % self.settings.display == 0,
        };
        self.iter += 1;
        Ok(event)
    }

    /// Caffe's `Solve`: runs until `max_iter`, reporting every event.
    pub fn solve(
        &mut self,
        data: &mut dyn DataSource,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<(), TrainError> {
        let s = self.settings.clone();
        while self.iter < s.max_iter {
            if s.test_interval > 0
                && self.iter % s.test_interval == 0
                && (self.iter > 0 || s.test_initialization)
            {
                self.test_all(data, on_event)?;
            }
            let event = self.step(data)?;
            on_event(&event);
            if s.snapshot > 0 && self.iter % s.snapshot == 0 {
                on_event(&self.snapshot()?);
            }
        }
        if s.snapshot_after_train && (s.snapshot <= 0 || self.iter % s.snapshot != 0) {
            on_event(&self.snapshot()?);
        }
        if s.display > 0 && self.iter % s.display == 0 {
            self.seed_next_pass();
            let inputs = data.next_batch(Phase::Train)?;
            let refs: Vec<(&str, Tensor)> =
                inputs.iter().map(|(n, t)| (n.as_str(), t.shallow_clone())).collect();
            let loss =
                tch::no_grad(|| self.net.forward_lean(&refs)).map(|b| scalar(b.loss.as_ref()))?;
            let smoothed_loss = self.smoothed.push(loss);
            on_event(&Event::Final { iter: self.iter, loss, smoothed_loss });
        }
        if s.test_interval > 0 && self.iter % s.test_interval == 0 {
            self.test_all(data, on_event)?;
        }
        Ok(())
    }

    /// Runs every test net `test_iter` times on the current weights.
    pub fn test_all(
        &mut self,
        data: &mut dyn DataSource,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<(), TrainError> {
        for (index, test) in self.test_nets.iter().enumerate() {
            let outputs = output_blobs(&test.net);
            let mut loss = 0.0;
            let mut sums: Vec<Option<Tensor>> = outputs.iter().map(|_| None).collect();
            for _ in 0..test.test_iter {
                let inputs = data.next_batch(Phase::Test)?;
                let refs: Vec<(&str, Tensor)> =
                    inputs.iter().map(|(n, t)| (n.as_str(), t.shallow_clone())).collect();
                let blobs = tch::no_grad(|| test.net.forward_lean(&refs))?;
                loss += scalar(blobs.loss.as_ref());
                for (sum, &(_, id)) in sums.iter_mut().zip(&outputs) {
                    if let Some(value) = blobs.get(id) {
                        accumulate(sum, value.detach().to_kind(Kind::Double));
                    }
                }
            }
            let n = test.test_iter.max(1) as f64;
            let outputs = outputs
                .iter()
                .zip(sums)
                .filter_map(|((name, _), sum)| {
                    let mean = sum? / n;
                    let values =
                        Vec::<f64>::try_from(mean.to_device(tch::Device::Cpu).flatten(0, -1))
                            .ok()?;
                    Some((name.clone(), values))
                })
                .collect();
            on_event(&Event::Test { iter: self.iter, net: index, loss: loss / n, outputs });
        }
        Ok(())
    }

    /// Writes `<snapshot_prefix>_iter_<iter>.safetensors` and its solver
    /// state, `<snapshot_prefix>_iter_<iter>.solverstate.safetensors`.
    pub fn snapshot(&self) -> Result<Event, TrainError> {
        let path = PathBuf::from(format!(
            "{}_iter_{}.safetensors",
            self.settings.snapshot_prefix, self.iter
        ));
        let state = self.write_snapshot(&path)?;
        Ok(Event::Snapshot { iter: self.iter, path, state })
    }

    /// Writes the weights to `weights` and then the solver state next to it
    /// ([`state_path_for`]), each atomically; returns the state's path. The
    /// state goes last because it names the weights file: a state on disk
    /// always has its complete weights beside it.
    pub fn write_snapshot(&self, weights: &Path) -> Result<PathBuf, TrainError> {
        let (file, roles) = net_weights(&self.net);
        write_weights(weights, &file, &roles).map_err(TrainError::Snapshot)?;
        let path = state_path_for(weights);
        let mut state = self.state();
        state.weights = weights.file_name().map(|n| n.to_string_lossy().into_owned());
        write_state(&path, &state)?;
        Ok(path)
    }
}

/// The libtorch seed of training pass `pass` (splitmix64 of both, so that
/// neighbouring passes and seeds give unrelated streams).
fn pass_seed(seed: u64, pass: u64) -> i64 {
    let mut z = seed ^ pass.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as i64
}

/// The value of a scalar loss tensor (0 when the net has no loss).
fn scalar(loss: Option<&Tensor>) -> f64 {
    loss.and_then(|l| f64::try_from(l.detach()).ok()).unwrap_or(0.0)
}

fn add_grads(mut total: ParamGrads, more: ParamGrads) -> ParamGrads {
    for (sums, terms) in total.iter_mut().zip(more) {
        for (sum, term) in sums.iter_mut().zip(terms) {
            if let Some(term) = term {
                accumulate(sum, term);
            }
        }
    }
    total
}

/// Ties `test`'s parameters to `train`'s: every test layer whose name and
/// blob shapes match a train layer uses the train layer's tensors (updates
/// are in place, so the test net always sees the current weights).
pub fn share_weights(train: &Net, test: &mut Net) {
    for (step, params) in test.plan.steps.iter().zip(test.params.iter_mut()) {
        let Some(source) = train.plan.steps.iter().position(|s| s.layer == step.layer) else {
            continue;
        };
        let source = &train.params[source];
        if source.len() == params.len()
            && source.iter().zip(params.iter()).all(|(a, b)| a.size() == b.size())
        {
            *params = source.iter().map(Tensor::shallow_clone).collect();
        }
    }
}

/// The net's outputs (blobs no step reads) with at most
/// `MAX_REPORTED_OUTPUT` values: (name, blob id).
fn output_blobs(net: &Net) -> Vec<(String, usize)> {
    net.plan
        .final_blobs()
        .into_iter()
        .filter(|&(_, id)| !net.plan.steps.iter().any(|s| s.bottoms.contains(&id)))
        .filter(|&(_, id)| {
            net.plan
                .blob_shapes
                .get(id)
                .is_some_and(|s| s.iter().product::<i64>() <= MAX_REPORTED_OUTPUT)
        })
        .collect()
}

/// Every layer's blobs as a weights file (all steps, blob-less ones
/// included, as Caffe's `Net::ToProto`), with each blob's role.
pub fn net_weights(net: &Net) -> (WeightsFile, ParamRoles) {
    let mut roles = ParamRoles::new();
    let layers = net
        .plan
        .steps
        .iter()
        .zip(&net.params)
        .map(|(step, params)| {
            if !params.is_empty() {
                roles.insert(
                    step.layer.clone(),
                    step.params.iter().map(|p| p.role.to_string()).collect(),
                );
            }
            WeightsLayer {
                name: step.layer.clone(),
                kind: step.kind.clone(),
                blobs: params.iter().map(|p| WeightBlob::new(p.size(), host_f32(p))).collect(),
            }
        })
        .collect();
    (WeightsFile { name: None, layers }, roles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Plan;
    use lvc_compiler::ir::{compile, CompileOptions};
    use lvc_compiler::schema::solver::LrPolicy;
    use lvc_compiler::SourceFile;
    use tch::Device;

    const NET: &str = r#"
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } } }
        layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 1 dim: 1 dim: 2 dim: 2 } } }
        layer { name: "score" type: "Convolution" bottom: "data" top: "score"
          convolution_param { num_output: 2 kernel_size: 1 weight_filler { type: "gaussian" std: 0.5 } } }
        layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
    "#;

    fn net(phase: Phase) -> Net {
        let compiled = compile(
            &SourceFile::new("t.prototxt", NET),
            &CompileOptions { phase, ..CompileOptions::default() },
        );
        let plan =
            Plan::from_graph(compiled.graph.as_ref().unwrap(), compiled.net.as_ref().unwrap())
                .unwrap();
        Net::new(plan, Device::Cpu, 3).unwrap()
    }

    fn data() -> FedTensors {
        FedTensors {
            tensors: vec![
                (
                    "data".into(),
                    Tensor::from_slice(&[1.0f32, -1.0, 2.0, -2.0]).reshape([1, 1, 2, 2]),
                ),
                (
                    "label".into(),
                    Tensor::from_slice(&[1.0f32, 0.0, 1.0, 0.0]).reshape([1, 1, 2, 2]),
                ),
            ],
        }
    }

    fn settings(max_iter: i64) -> LoopSettings {
        LoopSettings {
            max_iter,
            display: 1,
            average_loss: 1,
            test_interval: 0,
            test_initialization: false,
            snapshot: 0,
            snapshot_prefix: String::new(),
            snapshot_after_train: false,
        }
    }

    fn trainer(iter_size: i64, test_nets: Vec<TestNet>) -> Trainer {
        let mut update = UpdateSettings::sgd(0.9, 0.01);
        update.iter_size = iter_size;
        Trainer::with_settings(
            update,
            LrSchedule::new(0.5, LrPolicy::Fixed),
            settings(3),
            3,
            net(Phase::Train),
            test_nets,
        )
    }

    fn losses(t: &mut Trainer) -> Vec<f64> {
        let mut out = Vec::new();
        t.solve(&mut data(), &mut |e| {
            if let Event::Iteration { loss, .. } | Event::Final { loss, .. } = e {
                out.push(*loss);
            }
        })
        .unwrap();
        out
    }

    #[test]
    fn iter_size_averages_the_passes() {
        let _generator = crate::ops::testing::global_generator();
        // The same batch twice, summed and scaled by 1/2: the same run as one pass.
        let one = losses(&mut trainer(1, Vec::new()));
        let two = losses(&mut trainer(2, Vec::new()));
        assert_eq!(one.len(), 4, "three iterations and the final forward");
        for (a, b) in one.iter().zip(&two) {
            assert!((a - b).abs() < 1e-6, "{one:?} vs {two:?}");
        }
        assert!(one[3] < one[0], "the loss goes down: {one:?}");
    }

    #[test]
    fn smoothed_loss_is_the_mean_of_the_window() {
        let mut s = SmoothedLoss::new(2);
        assert_eq!(s.push(4.0), 4.0);
        assert_eq!(s.push(2.0), 3.0);
        assert_eq!(s.push(0.0), 1.0);
        assert_eq!(s.push(6.0), 3.0);
    }

    #[test]
    fn test_nets_share_the_train_weights() {
        let _generator = crate::ops::testing::global_generator();
        let test = TestNet { net: net(Phase::Test), test_iter: 2 };
        let mut t = trainer(1, vec![test]);
        t.settings.test_interval = 2;
        t.settings.test_initialization = true;
        let mut tests = Vec::new();
        let mut trained = Vec::new();
        t.solve(&mut data(), &mut |e| match e {
            Event::Test { iter, loss, .. } => tests.push((*iter, *loss)),
            Event::Iteration { iter, loss, .. } => trained.push((*iter, *loss)),
            _ => {}
        })
        .unwrap();
        // Tests at 0 and 2 and after the last update (3 is not a multiple of 2: none).
        assert_eq!(tests.iter().map(|t| t.0).collect::<Vec<_>>(), [0, 2]);
        // The test loss is the train forward loss at the same weights.
        assert!((tests[0].1 - trained[0].1).abs() < 1e-6, "{tests:?} {trained:?}");
        assert!((tests[1].1 - trained[2].1).abs() < 1e-6, "{tests:?} {trained:?}");
    }

    #[test]
    fn snapshots_are_weights_files_with_roles() {
        let _generator = crate::ops::testing::global_generator();
        let dir = tempfile::tempdir().unwrap();
        let mut t = trainer(1, Vec::new());
        t.settings.snapshot = 2;
        t.settings.snapshot_after_train = true;
        t.settings.snapshot_prefix = dir.path().join("run").to_string_lossy().into_owned();
        let mut paths = Vec::new();
        t.solve(&mut data(), &mut |e| {
            if let Event::Snapshot { path, state, .. } = e {
                paths.push(path.clone());
                assert_eq!(state, &crate::solver::state::state_path_for(path));
            }
        })
        .unwrap();
        assert_eq!(
            paths,
            [dir.path().join("run_iter_2.safetensors"), dir.path().join("run_iter_3.safetensors")]
        );
        let read = crate::weights::read_safetensors(&paths[1]).unwrap();
        let score = read.weights.layer("score").unwrap();
        let want = Vec::<f32>::try_from(t.net.params[0][0].detach().flatten(0, -1)).unwrap();
        assert_eq!(score.blobs[0].data, want);
        assert_eq!(read.roles["score"], ["weight", "bias"]);

        t.settings.snapshot_prefix = dir.path().join("missing/run").to_string_lossy().into_owned();
        let err = t.snapshot().unwrap_err();
        assert!(matches!(err, TrainError::Snapshot(_)), "{err:?}");
    }
}
