//! Attention kernels for gaincell: what a head computes, on the CPU, in f32, on all cores.
//!
//! - [`softmax`]: the software reference (full causal or causal sliding window), blocked with an online softmax.
//! - [`gain_cell`]: the analog gain-cell attention of docs/chip-model.md in *parallel form* (a whole sequence at
//!   once), with exact per-sub-tile readout, leakage by age and the window's ring-buffer wrap.
//! - [`KvArray`]: the same attention in *incremental form*: one pair of arrays per head, written one column per
//!   token, answering one query at a time (generation).
//! - [`backward`]: the training gradient of the gain-cell attention (the linear surrogate of
//!   docs/surrogate-gradient.md).
//! - [`reference`]: slow, obviously-correct f64 loops that transcribe docs/chip-model.md, used by the tests;
//!   docs/forms.md says why the two forms agree.
//!
//! Kernels take physical quantities (after the per-head affine scaling), never read files and never print.

pub mod backward;
pub mod exp;
pub mod gain_cell;
mod gemm;
mod kv_array;
mod noise;
mod params;
pub mod reference;
pub mod softmax;

pub use backward::{gain_cell_backward, gain_cell_backward_at, Gradients};
pub use gain_cell::{gain_cell_forward, gain_cell_forward_at, Probes};
pub use kv_array::KvArray;
pub use noise::{HeadSite, Site};
pub use params::{GainCellParams, Shape};
pub use softmax::{softmax_backward, softmax_forward};

/// Errors of the kernels' entry points: shapes that do not fit.
#[derive(Debug, thiserror::Error)]
pub enum AttnError {
    #[error("{0}")]
    Shape(String),
    #[error("this chip is not a gain-cell chip (attention = softmax): use softmax_forward")]
    NotGainCell,
}
