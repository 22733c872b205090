//! The Sunnybrook LV workflow of lvc as a library: the run folder and its
//! files ([`run_folder`]), training a solver on a dataset ([`train`]), scoring
//! a trained run ([`evaluate`]) and segmenting images with overlays
//! ([`infer`]). The `lvc` command line is one user: it parses arguments,
//! calls these functions and prints what they report; progress comes as
//! events ([`train::TrainEvent`]), so a terminal, a log and a server can each
//! show the same run.
//!
//! The modules split by whether they touch libtorch. [`run_folder`],
//! [`scores`], [`overlay`], [`resume`], [`run_lock`], [`solver`],
//! [`diagnostics`], [`failure`] and [`term`] do not: the light `lvc` binary
//! (which must not load libtorch) reads run folders through them. [`device`],
//! [`net`], [`segmenter`], [`feeds`], [`evaluate`], [`infer`], [`train`] and
//! [`timing`] run nets. Dependencies point one way, from the steps
//! ([`train`], [`evaluate`], [`infer`]) down to the nets and the run folder.
//!
//! Errors follow the command line's contract: a [`failure::Failed`] has
//! already been reported on stderr (with miette for diagnostics) and carries
//! the exit code; warnings are printed on stderr where they arise.

#[macro_use]
pub mod term;
pub mod check;
pub mod diagnostics;
pub mod failure;
pub mod fmt;
pub mod html;
pub mod inspect;
pub mod overlay;
pub mod resume;
pub mod run_folder;
pub mod run_lock;
pub mod scores;
pub mod solver;

pub mod device;
pub mod evaluate;
pub mod feeds;
pub mod infer;
pub mod net;
pub mod segmenter;
pub mod timing;
pub mod train;
