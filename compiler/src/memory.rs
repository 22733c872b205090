//! How much memory a compiled net needs: parameters, activations, gradients,
//! solver history and the largest convolution workspace, in bytes of
//! float32, at the shapes the graph was compiled for (so at the batch size
//! of its inputs).
//!
//! This is a model, not a profiler. It is meant to refuse the impossible (a
//! net that needs terabytes) before anything is allocated, and to say where
//! the memory goes; it is close to a lower bound of what the runtime keeps
//! alive, so a net it accepts may still need more:
//!
//! * **activations**: one float32 tensor per blob *name*, as Caffe allocates
//!   (an in-place layer writes its bottom's; inserted Splits' tops are views
//!   of their bottom). What a lean forward pass (`Net::forward_lean`:
//!   training, timing, inference) keeps until its end. Not counted: the
//!   extra versions `lvc forward` keeps to write every blob, the tensors
//!   autograd saves beyond these (an in-place layer's input, dropout masks,
//!   pooling indices) and libtorch's allocator slack.
//! * **gradients** (training): one per learnable parameter (not frozen by
//!   `lr_mult: 0`, not a BatchNorm statistic; every one with
//!   `force_backward`), plus the gradient of the largest blob, the least
//!   autograd holds at its peak (it frees blob gradients as it goes).
//! * **history** (training with a solver): the solver's per-parameter state,
//!   as lvc's update keeps it (`runtime/src/solver/update.rs`): one blob per
//!   learnable parameter for SGD, Nesterov, AdaGrad and RMSProp, two for
//!   AdaDelta and Adam.
//! * **workspace**: the largest im2col column matrix of a (De)Convolution
//!   (lvc's own GEMM convolution builds it for the whole batch; libtorch's
//!   CPU convolutions need one of that order too), twice in training (its
//!   backward rebuilds the columns and makes their gradient). The scratch of
//!   other kernels (cuDNN workspaces, LRN and pooling buffers) is not
//!   counted.
//!
//! Every sum saturates, so an estimate never wraps, whatever the graph.

use std::fmt;

use serde::Serialize;

use crate::ir::NetGraph;
use crate::ops::common::bytes_text;
use crate::ops::Op;
use crate::schema::solver::SolverType;
use crate::schema::NetDef;

/// Bytes per element: every blob and parameter is float32.
const FLOAT: u64 = 4;

/// What the net is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "mode")]
pub enum Mode {
    /// Forward only, no gradients (`lvc forward`, `lvc infer`, test nets).
    Inference,
    /// Forward and backward; `history_blobs` solver blobs per learnable parameter
    /// (0 without a solver, as `lvc time`; see [`Mode::training_with`]).
    Training { history_blobs: u32 },
}

impl Mode {
    /// Training with the history lvc's update keeps for `solver`.
    pub fn training_with(solver: SolverType) -> Mode {
        let history_blobs = match solver {
            SolverType::AdaDelta | SolverType::Adam => 2,
            SolverType::Sgd | SolverType::Nesterov | SolverType::AdaGrad | SolverType::RmsProp => 1,
        };
        Mode::Training { history_blobs }
    }
}

/// The estimate of one net in one mode, in bytes. [`fmt::Display`] gives
/// `154 GB (parameters 120 GB, activations 30 GB, …)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryEstimate {
    #[serde(flatten)]
    pub mode: Mode,
    pub parameters: u64,
    pub activations: u64,
    pub gradients: u64,
    pub history: u64,
    pub workspace: u64,
    /// Σ of the above.
    pub total: u64,
}

impl MemoryEstimate {
    pub fn total(&self) -> u64 {
        self.total
    }
}

impl fmt::Display for MemoryEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = |n: u64| bytes_text(u128::from(n));
        write!(
            f,
            "{} (parameters {}, activations {}",
            b(self.total),
            b(self.parameters),
            b(self.activations)
        )?;
        if let Mode::Training { history_blobs } = self.mode {
            write!(f, ", gradients {}", b(self.gradients))?;
            if history_blobs > 0 {
                write!(f, ", solver history {}", b(self.history))?;
            }
        }
        write!(f, ", workspace {})", b(self.workspace))
    }
}

/// The mode-independent sizes of a net, from which each mode's estimate
/// follows ([`NetMemory::estimate`]). The runtime keeps one per plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NetMemory {
    /// Every parameter and statistics blob.
    pub parameters: u64,
    /// The parameters that get a gradient and a solver history.
    pub learnable: u64,
    /// One tensor per blob name.
    pub activations: u64,
    /// The largest blob.
    pub largest_blob: u64,
    /// The largest (De)Convolution column matrix.
    pub columns: u64,
}

impl NetMemory {
    /// The sizes of `graph` (compiled from `net`); blobs and parameters whose
    /// shape is unknown (after an error) count 0.
    pub fn of(net: &NetDef, graph: &NetGraph) -> NetMemory {
        let mut m = NetMemory::default();
        let bytes = |count: i64| u64::try_from(count).unwrap_or(0).saturating_mul(FLOAT);
        // The last version of every name, skipping inserted splits' views.
        let mut seen = std::collections::HashSet::new();
        for blob in graph.blobs().iter().rev() {
            let split = graph.graph().node_weight(blob.producer).is_some_and(|n| n.inserted_split);
            if split || !seen.insert(blob.name.as_str()) {
                continue;
            }
            let size = blob.shape.as_ref().map_or(0, |s| bytes(s.count()));
            m.activations = m.activations.saturating_add(size);
            m.largest_blob = m.largest_blob.max(size);
        }
        for (_, node) in graph.nodes() {
            let def = node.def_index.and_then(|i| net.layers.get(i));
            for (i, p) in node.params.iter().enumerate() {
                let size = bytes(p.shape.count());
                m.parameters = m.parameters.saturating_add(size);
                let statistic = p.role.is_statistic();
                let lr_mult = def.and_then(|d| d.params.get(i)).map_or(1.0, |s| s.lr_mult);
                if !statistic && (net.force_backward || lr_mult != 0.0) {
                    m.learnable = m.learnable.saturating_add(size);
                }
            }
            m.columns = m.columns.max(columns(graph, node).map_or(0, bytes));
        }
        m
    }

    pub fn estimate(&self, mode: Mode) -> MemoryEstimate {
        let (gradients, history, workspace) = match mode {
            Mode::Inference => (0, 0, self.columns),
            Mode::Training { history_blobs } => (
                self.learnable.saturating_add(self.largest_blob),
                self.learnable.saturating_mul(u64::from(history_blobs)),
                self.columns.saturating_mul(2),
            ),
        };
        let total = [self.parameters, self.activations, gradients, history, workspace]
            .into_iter()
            .fold(0u64, u64::saturating_add);
        MemoryEstimate {
            mode,
            parameters: self.parameters,
            activations: self.activations,
            gradients,
            history,
            workspace,
            total,
        }
    }
}

/// The estimate of `graph` (compiled from `net`) in `mode`.
pub fn estimate(net: &NetDef, graph: &NetGraph, mode: Mode) -> MemoryEstimate {
    NetMemory::of(net, graph).estimate(mode)
}

/// Elements of a (De)Convolution's im2col matrix for the whole batch:
/// `C·∏k × ∏spatial` per item, with C and the spatial size on the side the
/// kernel slides over (the bottom's channels and the top's positions for a
/// convolution, the other way round for a deconvolution).
fn columns(graph: &NetGraph, node: &crate::ir::LayerNode) -> Option<i64> {
    let Some(Op::Convolution(op) | Op::Deconvolution(op)) = &node.op else { return None };
    let bottom = graph.blob(node.bottoms.first().copied().flatten()?).shape.clone()?;
    let top = graph.blob(*node.tops.first()?).shape.clone()?;
    let geo = op.geometry(&bottom)?;
    let (channels, positions) = if op.transposed { (&top, &bottom) } else { (&bottom, &top) };
    let kernel = crate::ops::checked_product(&geo.kernel)?;
    let outer = crate::ops::checked_product(&bottom.dims()[..geo.axis])?;
    let spatial = crate::ops::checked_product(positions.dims().get(geo.axis + 1..)?)?;
    channels.dims().get(geo.axis)?.checked_mul(kernel)?.checked_mul(spatial)?.checked_mul(outer)
}
