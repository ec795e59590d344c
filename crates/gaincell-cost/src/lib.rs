//! Latency, energy and area of a gain-cell attention chip, from the same [`ChipConfig`] that drives the simulator,
//! and the GPU measurements to compare them with.
//!
//! Every figure is built from first-principles terms whose constants are fields of the chip's `[cost]` section
//! (cell read energy = I_cell · V_read · pulse width per MAC, DAC energy per written value, charge-to-pulse and
//! counter energy per readout, digital control per sub-tile, input pulse timing, the adder tree over sub-tiles,
//! area per cell and per periphery block). The paper presets reproduce the paper's published figures;
//! docs/cost-model.md explains the model and every constant.
//!
//! Pure maths: this crate reads no files and prints nothing. The CLI reads measurement files and model configs
//! and hands their text here.
//!
//! [`ChipConfig`]: gaincell_chip::ChipConfig

mod area;
mod counts;
mod energy;
mod error;
mod explain;
mod gpu;
mod latency;
mod model;
mod report;
mod retention;

pub use area::AreaBreakdown;
pub use counts::Counts;
pub use energy::EnergyBreakdown;
pub use error::CostError;
pub use explain::explain;
pub use gpu::{
    published_baselines, Comparison, GpuBaseline, GpuWorkload, COMPARISON_DEFINITION,
    MEASUREMENT_FORMAT,
};
pub use latency::Latency;
pub use model::{ModelShape, BUILTIN_MODELS};
pub use report::{evaluate, ArrayChoice, CostReport, SharedArrays, Totals};
pub use retention::{Retention, SILICON_RETENTION_S};
