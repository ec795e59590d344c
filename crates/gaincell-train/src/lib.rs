//! Hardware-aware training of GPT-2 on gain-cell chips (surrogate gradients: docs/surrogate-gradient.md; the
//! mapping pipeline: docs/mapping.md).
//!
//! - [`data`]: text → token shards (memory-mapped), and reproducible random windows;
//! - [`optim`]: AdamW (decay on matrices only), gradient clipping, warm-up + cosine schedule, saveable moments;
//! - [`trainer`]: the loop, validation, metrics (JSON lines), atomic checkpoints and bit-for-bit resume;
//! - [`stats`]: per-head statistics of the scaled q, k, v and head outputs (the adaptation's targets);
//! - [`adapt`]: the statistics-matching adaptation of a linear model onto the nonlinear cell;
//! - [`pipeline`]: software → linear → adapt → nonlinear and the two shortcuts, as one resumable job.

pub mod adapt;
pub mod data;
pub mod distill;
mod error;
pub mod generate;
pub mod optim;
pub mod pipeline;
pub mod stats;
pub mod trainer;

pub use error::{Result, TrainError};
