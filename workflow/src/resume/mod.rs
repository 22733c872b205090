//! What `lvc train --dataset DS --resume RUN` may change, and how a change
//! is kept in run.json.
//!
//! A divergence stops with "lower base_lr …, then --resume RUN", so a
//! resume must take an edited solver. It compares the solver field by field
//! with the one run.json recorded (`solver_text`), and every field of
//! Caffe's `SolverParameter` is in one class ([`class_of`]):
//!
//! - **Tunable** — the learning-rate schedule (`base_lr`, `lr_policy`,
//!   `gamma`, `power`, `stepsize`, `stepvalue`), the optimizer's
//!   hyperparameters (`momentum`, `momentum2`, `delta`, `rms_decay`,
//!   `weight_decay`, `regularization_type`) and `clip_gradients`. None of
//!   them changes what the snapshots hold (weights and history blobs of the
//!   same shapes, for the same solver type), and Caffe itself takes them
//!   from the solver when it restores a `.solverstate`. The resumed epochs
//!   use the new values; run.json's `changes` records each one with the
//!   first epoch trained with it.
//! - **Output** — `display`: what is printed, taken and not recorded.
//! - **Unused** — fields `train --dataset` does not read (snapshot and test
//!   intervals, device fields, start weights, `max_iter` once run.json has
//!   the epochs): accepted, with a note saying why they do nothing.
//! - **Breaking** — the net (its file's contents, an inline net, the train
//!   state, the val net and its state), the solver type, `iter_size` and
//!   `random_seed`, and outside the solver the dataset and the batch size.
//!   Each would make the snapshots or the metrics history belong to another
//!   run; a resume that changes one is refused, naming the field, its old
//!   and new value and why.

mod check;
mod fields;

pub use check::{check_resume, record_change, Accepted};
pub use fields::{class_of, solver_changes, Change, FieldClass};

#[cfg(test)]
mod tests;
