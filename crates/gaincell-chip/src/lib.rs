//! The description of a gain-cell attention chip, and the pure maths that goes with it.
//!
//! One [`ChipConfig`] (TOML on disk) describes the hardware: array geometry, the window, bit widths and voltage
//! ranges of the query pulses, the stored keys and values and the output counters, the mid-rail offset, the
//! saturation constants of the charge-to-pulse circuits, leakage, the cell's current-vs-voltage curve, and the
//! timing, energy and area constants of the cost model. Named presets reproduce the paper; a user's file overrides
//! any field of a preset.
//!
//! This crate owns no tensors and runs no kernels: the attention kernels (`gaincell-attn`) and the cost model read
//! a validated config and take what they need from it.

mod aes;
mod config;
mod cost;
mod curve;
pub mod draw;
mod error;
mod merge;
mod noise;
mod presets;
mod quant;

pub use config::{
    AttentionKind, ChipConfig, Geometry, Leakage, QuantizerConfig, Readout, ScalerInit, ScalerInits,
};
pub use cost::{CostArea, CostEnergy, CostParams, CostTiming, ParamInfo, Provenance};
pub use curve::CellCurve;
pub use error::ChipError;
pub use noise::{Noise, Refresh, Variation};
pub use presets::{preset, PRESET_NAMES};
pub use quant::{round_half_even, Quantizer};
