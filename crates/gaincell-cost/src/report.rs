//! The whole cost of a chip running a model: counts, latency, energy, area, retention, and the GPU comparisons.

use gaincell_chip::ChipConfig;
use serde::Serialize;

use crate::{
    AreaBreakdown, Comparison, CostError, Counts, EnergyBreakdown, GpuBaseline, Latency,
    ModelShape, Retention,
};

/// One quantity per head, per layer (all heads) and per model (all layers).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    pub per_head: f64,
    pub per_layer: f64,
    pub per_model: f64,
}

impl Totals {
    fn scale(per_head: f64, model: &ModelShape) -> Self {
        let per_layer = per_head * model.n_head as f64;
        Totals {
            per_head,
            per_layer,
            per_model: per_layer * model.n_layer as f64,
        }
    }
}

/// Everything `gaincell cost` reports. Energies in pJ, times in ns, areas in µm² unless the name says otherwise.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    pub chip: String,
    pub model: ModelShape,
    /// Per head.
    pub counts: Counts,
    /// Gain cells per head / layer / model.
    pub cells: Totals,
    /// Arrays (key and value) per head / layer / model.
    pub arrays: Totals,
    /// Sub-tiles (of both arrays) per head / layer / model.
    pub sub_tiles: Totals,
    /// One layer, per token.
    pub latency: Latency,
    /// All layers one after another, per token (attention only).
    pub model_latency_ns: f64,
    /// One head, per token, by part.
    pub energy: EnergyBreakdown,
    /// Total energy per token (pJ) per head / layer / model.
    pub energy_pj: Totals,
    /// One head, by block.
    pub area: AreaBreakdown,
    /// Total area (mm²) per head / layer / model.
    pub area_mm2: Totals,
    pub retention: Retention,
    pub comparisons: Vec<Comparison>,
    /// Grouped-query attention (fewer key/value heads than query heads): the two ways a layer's query heads can
    /// read the key/value arrays they share, costed side by side. The totals above are the replicated choice.
    pub shared_arrays: Option<SharedArrays>,
}

/// One way to lay out the arrays of a layer with grouped-query attention, per layer and token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArrayChoice {
    /// Key/value array pairs in the layer.
    pub array_pairs: usize,
    pub cells: f64,
    pub latency_ns: f64,
    pub energy_pj: f64,
    pub area_mm2: f64,
}

/// Grouped-query attention on the chip: `group` query heads per key/value head.
///
/// - **replicated**: every query head owns a copy of its group's K and V arrays, written by its own DACs with the
///   same column; all heads read in parallel (the latency of multi-head attention; area and DAC energy × group).
/// - **time-multiplexed**: one pair of arrays per key/value head; the group's query pulses are applied one after
///   another, each a full read (Φ(Q·Kᵀ), φ·V, readout, adder tree); the column is written once. Area and DAC
///   energy ÷ group, latency × group (the write still overlaps the reads when pipelined).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharedArrays {
    pub group: usize,
    pub replicated: ArrayChoice,
    pub time_multiplexed: ArrayChoice,
}

impl SharedArrays {
    fn of(
        chip: &ChipConfig,
        model: &ModelShape,
        counts: &Counts,
        latency: &Latency,
        energy: &EnergyBreakdown,
        area: &AreaBreakdown,
    ) -> Option<Self> {
        if model.n_kv_head >= model.n_head {
            return None;
        }
        let (h, kv, group) = (model.n_head, model.n_kv_head, model.group());
        let replicated = ArrayChoice {
            array_pairs: h,
            cells: (h * counts.cells) as f64,
            latency_ns: latency.total_ns,
            energy_pj: h as f64 * energy.total_pj,
            area_mm2: h as f64 * area.total_um2 * 1e-6,
        };
        let t = &chip.cost.timing;
        let compute = group as f64 * latency.compute_ns;
        let writes = t.write_ns + latency.refresh_ns;
        let write_exposed = if t.pipelined_write {
            (writes - compute).max(0.0)
        } else {
            writes
        };
        let time_multiplexed = ArrayChoice {
            array_pairs: kv,
            cells: (kv * counts.cells) as f64,
            latency_ns: compute + write_exposed,
            energy_pj: h as f64 * (energy.total_pj - energy.dac_pj - energy.refresh_pj)
                + kv as f64 * (energy.dac_pj + energy.refresh_pj),
            area_mm2: kv as f64 * area.total_um2 * 1e-6,
        };
        Some(SharedArrays {
            group,
            replicated,
            time_multiplexed,
        })
    }
}

/// Cost of `model`'s attention on `chip`, compared with each of `baselines`.
pub fn evaluate(
    chip: &ChipConfig,
    model: &ModelShape,
    baselines: &[GpuBaseline],
) -> Result<CostReport, CostError> {
    chip.validate()?;
    if !chip.is_gain_cell() {
        return Err(CostError::NotGainCell(chip.name.clone()));
    }
    if model.head_dim != chip.geometry.head_dim {
        return Err(CostError::HeadDimMismatch {
            model: model.name.clone(),
            model_dim: model.head_dim,
            chip: chip.name.clone(),
            chip_dim: chip.geometry.head_dim,
        });
    }
    let counts = Counts::of(chip);
    let latency = Latency::of(chip, &counts);
    let energy = EnergyBreakdown::of(chip, &counts, &latency);
    let area = AreaBreakdown::of(chip, &counts);
    let retention = Retention::of(chip, latency.total_ns, model.n_layer);
    let comparisons = baselines
        .iter()
        .map(|b| {
            Comparison::new(
                b,
                latency.total_ns,
                energy.total_pj,
                counts.head_dim,
                counts.window,
            )
        })
        .collect();
    let shared_arrays = SharedArrays::of(chip, model, &counts, &latency, &energy, &area);
    Ok(CostReport {
        shared_arrays,
        chip: chip.name.clone(),
        model: model.clone(),
        cells: Totals::scale(counts.cells as f64, model),
        arrays: Totals::scale(counts.arrays as f64, model),
        sub_tiles: Totals::scale((counts.arrays * counts.sub_tiles) as f64, model),
        model_latency_ns: latency.total_ns * model.n_layer as f64,
        energy_pj: Totals::scale(energy.total_pj, model),
        area_mm2: Totals::scale(area.total_um2 * 1e-6, model),
        counts,
        latency,
        energy,
        area,
        retention,
        comparisons,
    })
}
