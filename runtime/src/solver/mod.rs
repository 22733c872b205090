//! Training: Caffe's solvers. [`lr`] has the learning-rate policies,
//! [`update`] the update rules (SGD, Nesterov, AdaGrad, RMSProp, AdaDelta,
//! Adam) with weight decay, `iter_size` and gradient clipping, and
//! [`train`] the loop (`Solver::Solve`) over a [`train::DataSource`], and
//! [`state`] the solver-state snapshots that let a run resume exactly
//! ([`caffe_state`]: Caffe's binary ones, resumed as Caffe does).

pub mod caffe_state;
pub mod lr;
mod resume;
mod smoothed;
pub mod state;
pub mod train;
pub mod update;

pub use caffe_state::{caffe_learned_net, is_caffe_state, read_caffe_state, CaffeSolverState};
pub use lr::LrSchedule;
pub use smoothed::SmoothedLoss;
pub use state::{read_state, state_path_for, write_state, ParamHistory, SolverState, StateError};
pub use train::{
    net_weights, share_weights, solver_seed, DataSource, Event, FedTensors, LoopSettings, TestNet,
    TrainError, Trainer,
};
pub use update::{Optimizer, ParamGrads, UpdateSettings};
