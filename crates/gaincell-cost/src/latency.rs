//! Time for one token through one layer's attention. All heads run in parallel, so this is also one head's time.
//!
//! The phases run one after the other: query pulses drive the key array (up to T_max), the score charge-to-pulse
//! circuits emit φ pulses that drive the value array (up to their full scale), the sub-tile counters count the
//! signed output pulses, the adder tree sums the sub-tiles, plus a fixed routing/reset overhead. The write of the
//! new k, v column runs beside them when pipelined and only shows if it is the longer of the two.

use gaincell_chip::ChipConfig;
use serde::Serialize;

use crate::Counts;

/// Latency of one layer per token, by phase (ns).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Query pulses on the key array: T_max = (2^query.bits − 1) · pwm_step.
    pub query_pulses_ns: f64,
    /// φ pulses on the value array.
    pub phi_pulses_ns: f64,
    /// Signed output counters: 2^(output.bits − 1) counts.
    pub counters_ns: f64,
    /// Adder tree: depth · stage delay.
    pub adder_tree_ns: f64,
    /// Routing and integrator reset.
    pub overhead_ns: f64,
    /// Sum of the phases above.
    pub compute_ns: f64,
    /// Writing the new k, v column.
    pub write_ns: f64,
    /// Rewriting the columns the refresh makes due, one after another through the same DACs (0 without refresh).
    pub refresh_ns: f64,
    /// Part of the writes (new column and refresh) that adds to the token's time: all of it unpipelined, the
    /// excess over compute pipelined.
    pub write_exposed_ns: f64,
    /// Per token per layer.
    pub total_ns: f64,
}

impl Latency {
    pub fn of(chip: &ChipConfig, counts: &Counts) -> Self {
        let t = &chip.cost.timing;
        let query_pulses_ns = ((1u64 << chip.query.bits) - 1) as f64 * t.pwm_step_ns;
        let counters_ns = (1u64 << (chip.output.bits - 1)) as f64 * t.counter_step_ns;
        let adder_tree_ns = f64::from(counts.adder_depth) * t.adder_stage_ns;
        let compute_ns =
            query_pulses_ns + t.phi_pulse_max_ns + counters_ns + adder_tree_ns + t.overhead_ns;
        let refresh_ns = counts.refresh_columns as f64 * t.write_ns;
        // Refresh writes queue behind the new column's write on the same DACs.
        let writes_ns = t.write_ns + refresh_ns;
        let write_exposed_ns = if t.pipelined_write {
            (writes_ns - compute_ns).max(0.0)
        } else {
            writes_ns
        };
        Latency {
            query_pulses_ns,
            phi_pulses_ns: t.phi_pulse_max_ns,
            counters_ns,
            adder_tree_ns,
            overhead_ns: t.overhead_ns,
            compute_ns,
            write_ns: t.write_ns,
            refresh_ns,
            write_exposed_ns,
            total_ns: compute_ns + write_exposed_ns,
        }
    }
}
