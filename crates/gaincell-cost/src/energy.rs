//! Energy of one head per token, in the four parts the paper publishes: Φ(Q·Kᵀ) arrays, Φ(S)·V arrays, digital
//! control and routing, DACs (docs/cost-model.md#energy); plus the DACs' refresh rewrites when the chip refreshes.
//!
//! A cell read costs I_cell · V_read · t_pulse, with t_pulse the mean pulse width (activity × full scale); every
//! other event (conversion, readout, written value, addition, sub-tile control, moved value) costs a fixed energy.

use gaincell_chip::ChipConfig;
use serde::Serialize;

use crate::{Counts, Latency};

/// µA · V · ns = 1e-15 J = 1e-3 pJ.
const PJ_PER_UA_V_NS: f64 = 1e-3;

/// Energy of one head per token (pJ), with the terms behind each published part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnergyBreakdown {
    /// Cell reads of the key array: head_dim · window MACs at the mean query pulse width.
    pub qk_cells_pj: f64,
    /// Score charge-to-pulse conversions, one per key column.
    pub qk_conversions_pj: f64,
    /// Φ(Q·Kᵀ) arrays: cells plus conversions.
    pub qk_pj: f64,
    /// Cell reads of the value array at the mean φ pulse width.
    pub pv_cells_pj: f64,
    /// Signed charge-to-pulse readouts and counts, one per output dim per sub-tile.
    pub pv_readouts_pj: f64,
    /// Φ(S)·V arrays: cells plus readouts.
    pub pv_pj: f64,
    /// Control and local routing of every sub-tile.
    pub digital_control_pj: f64,
    /// Additions of the tree over sub-tiles.
    pub digital_adders_pj: f64,
    /// Moving q in and the head output out.
    pub digital_io_pj: f64,
    /// Digital control, routing and adders.
    pub digital_pj: f64,
    /// DACs writing the new k and v column.
    pub dac_pj: f64,
    /// DACs rewriting the columns the refresh policy makes due (0 without refresh).
    pub refresh_pj: f64,
    pub total_pj: f64,
}

impl EnergyBreakdown {
    pub fn of(chip: &ChipConfig, counts: &Counts, latency: &Latency) -> Self {
        let e = &chip.cost.energy;
        let t = &chip.cost.timing;
        let macs = counts.macs_per_array as f64;
        let mac_pj =
            |pulse_ns: f64| e.cell_current_ua * e.read_voltage_v * pulse_ns * PJ_PER_UA_V_NS;

        let qk_cells_pj = macs * mac_pj(e.query_activity * latency.query_pulses_ns);
        let qk_conversions_pj = counts.score_conversions as f64 * e.score_c2p_pj;
        let pv_cells_pj = macs * mac_pj(e.phi_activity * t.phi_pulse_max_ns);
        let pv_readouts_pj = counts.readouts as f64 * e.readout_pj;
        let digital_control_pj = counts.sub_tiles as f64 * e.tile_control_pj;
        let digital_adders_pj = counts.additions as f64 * e.adder_pj;
        // q comes in and the head's output goes out: head_dim values each.
        let digital_io_pj = 2.0 * counts.head_dim as f64 * e.io_pj;
        let dac_pj = counts.written_values as f64 * e.dac_pj;
        let refresh_pj = counts.refresh_values as f64 * e.dac_pj;

        let qk_pj = qk_cells_pj + qk_conversions_pj;
        let pv_pj = pv_cells_pj + pv_readouts_pj;
        let digital_pj = digital_control_pj + digital_adders_pj + digital_io_pj;
        EnergyBreakdown {
            qk_cells_pj,
            qk_conversions_pj,
            qk_pj,
            pv_cells_pj,
            pv_readouts_pj,
            pv_pj,
            digital_control_pj,
            digital_adders_pj,
            digital_io_pj,
            digital_pj,
            dac_pj,
            refresh_pj,
            total_pj: qk_pj + pv_pj + digital_pj + dac_pj + refresh_pj,
        }
    }
}
