//! The `[cost]` section of a chip: the timing, energy and area constants the cost model (`gaincell-cost`) reads,
//! with the provenance of every paper value (published by the paper, derived from it, or assumed): see
//! docs/cost-model.md.
//!
//! The paper publishes totals (65 ns per token, 1,120 / 700 / 4,000 / 330 pJ per head per token), not the
//! constants behind them. Each published total pins exactly one "derived" constant here, calibrated so the paper
//! presets reproduce it; every other constant is either published or an assumption with its reasoning.

use serde::{Deserialize, Serialize};

use crate::ChipError;

/// Cost constants of the chip. Absent from a file, it takes the paper's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostParams {
    pub timing: CostTiming,
    pub energy: CostEnergy,
    pub area: CostArea,
}

/// Timing of one token through one layer (all heads run in parallel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostTiming {
    /// ns. Width of one PWM level of the query pulses; T_max = (2^query.bits − 1) · step. Published.
    pub pwm_step_ns: f64,
    /// ns. Full-scale width of a φ pulse driving the value array. Assumed (same full scale as the query).
    pub phi_pulse_max_ns: f64,
    /// ns. One count of a sub-tile's output counter; a readout takes 2^(output.bits − 1) counts. Assumed.
    pub counter_step_ns: f64,
    /// ns. One level of the digital adder tree that sums the sub-tiles. Assumed.
    pub adder_stage_ns: f64,
    /// ns. Input and output routing, integrator reset. Derived (calibrated to the paper's 65 ns).
    pub overhead_ns: f64,
    /// ns. Writing the new k and v column (DAC settling and write pulse). Assumed.
    pub write_ns: f64,
    /// Whether the write overlaps the MACs of the current step. Published.
    pub pipelined_write: bool,
}

/// Energy constants, per event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostEnergy {
    /// V. Read (input pulse) amplitude on a cell. Published (the cell curve is given at 0.9 V).
    pub read_voltage_v: f64,
    /// µA. Mean magnitude of a cell's read current while its pulse is on. Derived (calibrated to 1,120 pJ).
    pub cell_current_ua: f64,
    /// Fraction of T_max. Mean query pulse width. Assumed.
    pub query_activity: f64,
    /// Fraction of the φ full scale. Mean φ pulse width. Derived (calibrated to 700 pJ).
    pub phi_activity: f64,
    /// pJ. One score charge-to-pulse conversion (one per key column per token). Assumed.
    pub score_c2p_pj: f64,
    /// pJ. One signed charge-to-pulse conversion plus count (per output dim per sub-tile per token). Assumed.
    pub readout_pj: f64,
    /// pJ. One value written by a DAC (2 · head_dim per token). Derived (330 pJ / 128 values).
    pub dac_pj: f64,
    /// pJ. One addition in the adder tree over sub-tiles. Assumed.
    pub adder_pj: f64,
    /// pJ. Moving one value into (q) or out of (o) a head. Assumed.
    pub io_pj: f64,
    /// pJ. Control and local routing of one sub-tile per token. Derived (calibrated to 4,000 pJ).
    pub tile_control_pj: f64,
}

/// Area of each block; the reference publishes none, so every value is assumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostArea {
    /// µm². One gain cell. Assumed.
    pub cell_um2: f64,
    /// µm². One score charge-to-pulse circuit (one per key column). Assumed.
    pub score_c2p_um2: f64,
    /// µm². One signed charge-to-pulse circuit with its counter (per output dim per sub-tile). Assumed.
    pub readout_um2: f64,
    /// µm². One write DAC (one per array row). Assumed.
    pub dac_um2: f64,
    /// µm². One query PWM pulse generator (one per query row). Assumed.
    pub pwm_driver_um2: f64,
    /// µm². One adder of the tree over sub-tiles (one per output dim per merge). Assumed.
    pub adder_um2: f64,
    /// µm². Control logic of one sub-tile. Assumed.
    pub tile_control_um2: f64,
}

impl Default for CostParams {
    fn default() -> Self {
        Self::paper()
    }
}

/// Where a constant's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provenance {
    /// A figure the paper publishes (docs/cost-model.md#provenance).
    Published,
    /// Computed from published figures (e.g. calibrated so a preset reproduces one).
    Derived,
    /// Not published: our assumption, with its reasoning.
    Assumed,
}

impl Provenance {
    pub fn label(self) -> &'static str {
        match self {
            Provenance::Published => "published",
            Provenance::Derived => "derived",
            Provenance::Assumed => "assumed",
        }
    }
}

/// One constant as `gaincell cost --explain` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamInfo {
    /// Dotted path in the chip TOML, e.g. `cost.energy.dac_pj`.
    pub field: String,
    /// The value in force, as TOML writes it.
    pub value: String,
    pub unit: &'static str,
    /// Provenance of the paper value.
    pub provenance: Provenance,
    /// The reference or reasoning behind the paper value.
    pub source: &'static str,
    /// False when this chip overrides the paper value (then `provenance` and `source` describe the paper's).
    pub is_paper_value: bool,
}

/// What a value must satisfy; the variant also picks the wording of the error.
#[derive(Clone, Copy)]
enum Rule {
    Energy,
    Duration,
    DurationOrZero,
    Area,
    Positive,
    Fraction,
    Flag,
}

/// One row of the table that drives both validation and `describe`.
struct Field {
    path: &'static str,
    value: Value,
    unit: &'static str,
    rule: Rule,
    provenance: Provenance,
    source: &'static str,
}

#[derive(Clone, Copy)]
enum Value {
    Num(f64),
    Flag(bool),
}

impl CostParams {
    /// The paper's constants (see `describe` for where each comes from).
    pub fn paper() -> Self {
        CostParams {
            timing: CostTiming {
                pwm_step_ns: 1.0,
                phi_pulse_max_ns: 15.0,
                counter_step_ns: 1.0,
                adder_stage_ns: 1.0,
                overhead_ns: 15.0,
                write_ns: 10.0,
                pipelined_write: true,
            },
            energy: CostEnergy {
                read_voltage_v: 0.9,
                cell_current_ua: 2.3,
                query_activity: 0.5,
                phi_activity: 0.2434,
                score_c2p_pj: 0.1,
                readout_pj: 0.2,
                dac_pj: 2.578125,
                adder_pj: 0.05,
                io_pj: 1.0,
                tile_control_pj: 239.0,
            },
            area: CostArea {
                cell_um2: 0.5,
                score_c2p_um2: 25.0,
                readout_um2: 50.0,
                dac_um2: 40.0,
                pwm_driver_um2: 10.0,
                adder_um2: 20.0,
                tile_control_um2: 100.0,
            },
        }
    }

    /// Check every constant; the error names the field (`cost.energy.dac_pj`) and says what it must be.
    pub fn validate(&self) -> Result<(), ChipError> {
        for f in self.fields() {
            let Value::Num(v) = f.value else { continue };
            let why = if !v.is_finite() {
                "it must be a finite number"
            } else {
                match f.rule {
                    Rule::Energy if v <= 0.0 => "energies must be positive",
                    Rule::Duration if v <= 0.0 => "durations must be positive",
                    Rule::DurationOrZero if v < 0.0 => "durations must be zero or positive",
                    Rule::Area if v <= 0.0 => "areas must be positive",
                    Rule::Positive if v <= 0.0 => "it must be positive",
                    Rule::Fraction if v <= 0.0 || v > 1.0 => {
                        "a mean pulse fraction must lie in (0, 1]"
                    }
                    _ => continue,
                }
            };
            return Err(ChipError::invalid(f.path, format!("is {v}: {why}")));
        }
        Ok(())
    }

    /// Every constant with its value, unit and provenance, in TOML order.
    pub fn describe(&self) -> Vec<ParamInfo> {
        let paper = Self::paper().fields();
        self.fields()
            .into_iter()
            .zip(paper)
            .map(|(f, p)| ParamInfo {
                field: f.path.to_string(),
                value: f.value.to_string(),
                unit: f.unit,
                provenance: f.provenance,
                source: f.source,
                is_paper_value: f.value.to_string() == p.value.to_string(),
            })
            .collect()
    }

    fn fields(&self) -> Vec<Field> {
        use Provenance::*;
        use Rule::*;
        let (t, e, a) = (&self.timing, &self.energy, &self.area);
        let f = |path, value, unit, rule, provenance, source| Field {
            path,
            value: Value::Num(value),
            unit,
            rule,
            provenance,
            source,
        };
        vec![
            f("cost.timing.pwm_step_ns", t.pwm_step_ns, "ns", Duration, Published,
              "the paper: 16 PWM levels give 1 ns steps; T_max = (2^query.bits − 1) × step = 15 ns"),
            f("cost.timing.phi_pulse_max_ns", t.phi_pulse_max_ns, "ns", Duration, Assumed,
              "the φ pulses that drive the value array share the query pulses' full scale (15 ns); no separate figure is published"),
            f("cost.timing.counter_step_ns", t.counter_step_ns, "ns", Duration, Assumed,
              "output counters clocked at 1 GHz like the PWM inputs: a signed 5-bit readout counts up to 2^4 = 16 steps"),
            f("cost.timing.adder_stage_ns", t.adder_stage_ns, "ns", Duration, Assumed,
              "one ~10-bit addition per level of the adder tree in a 28 nm-class node"),
            f("cost.timing.overhead_ns", t.overhead_ns, "ns", DurationOrZero, Derived,
              "calibrated so the paper presets take the paper's 65 ns per layer: 65 − 15 (query) − 15 (φ) − 16 (counters) − 4 × 1 (adder tree); input/output routing and integrator reset"),
            f("cost.timing.write_ns", t.write_ns, "ns", DurationOrZero, Assumed,
              "DAC settling plus write pulse for one column; hidden behind the MACs when pipelined"),
            Field {
                path: "cost.timing.pipelined_write",
                value: Value::Flag(t.pipelined_write),
                unit: "bool",
                rule: Flag,
                provenance: Published,
                source: "the paper: writing the new k, v column overlaps the MACs of the current step",
            },
            f("cost.energy.read_voltage_v", e.read_voltage_v, "V", Positive, Published,
              "the paper: the cell curve is given at 0.9 V input amplitude"),
            f("cost.energy.cell_current_ua", e.cell_current_ua, "µA", Positive, Derived,
              "calibrated so the Φ(Q·Kᵀ) arrays take the paper's 1,120 pJ/head/token: (1120 − 1024 columns × 0.1 pJ) / (64 × 1024 MACs × 0.9 V × 0.5 × 15 ns) = 2.30 µA; the cubic cell curve spans ±10.3 µA"),
            f("cost.energy.query_activity", e.query_activity, "fraction", Fraction, Assumed,
              "mean query pulse width as a fraction of T_max: q' spread evenly over [0, 1]"),
            f("cost.energy.phi_activity", e.phi_activity, "fraction", Fraction, Derived,
              "calibrated so the Φ(S)·V arrays take the paper's 700 pJ/head/token: (700 − 16 × 64 readouts × 0.2 pJ) / (64 × 1024 MACs × 0.9 V × 2.3 µA × 15 ns) = 0.2434"),
            f("cost.energy.score_c2p_pj", e.score_c2p_pj, "pJ", Energy, Assumed,
              "one charge-to-pulse conversion (integrator and comparator) per key column per token"),
            f("cost.energy.readout_pj", e.readout_pj, "pJ", Energy, Assumed,
              "one signed charge-to-pulse conversion plus 5-bit count per output dim per sub-tile per token"),
            f("cost.energy.dac_pj", e.dac_pj, "pJ", Energy, Derived,
              "the paper's 330 pJ of DACs per head per token over the 2 × 64 values written (one k and one v column)"),
            f("cost.energy.adder_pj", e.adder_pj, "pJ", Energy, Assumed,
              "one ~10-bit digital addition in a 28 nm-class node"),
            f("cost.energy.io_pj", e.io_pj, "pJ", Energy, Assumed,
              "moving one value into (q) or out of (o) a head's arrays"),
            f("cost.energy.tile_control_pj", e.tile_control_pj, "pJ", Energy, Derived,
              "calibrated so digital control and routing take the paper's 4,000 pJ/head/token: (4000 − 15 × 64 adds × 0.05 − 128 values × 1.0) / 16 sub-tiles = 239 pJ"),
            f("cost.area.cell_um2", a.cell_um2, "µm²", Area, Assumed,
              "a 2–3-transistor gain cell with storage capacitor sized for analog read current, 28 nm-class CMOS; the reference publishes no area"),
            f("cost.area.score_c2p_um2", a.score_c2p_um2, "µm²", Area, Assumed,
              "integrating capacitor plus comparator, one per key column"),
            f("cost.area.readout_um2", a.readout_um2, "µm²", Area, Assumed,
              "signed charge-to-pulse circuit plus 5-bit counter, per output dim per sub-tile"),
            f("cost.area.dac_um2", a.dac_um2, "µm²", Area, Assumed,
              "a 3-bit voltage DAC, one per array row (k and v arrays)"),
            f("cost.area.pwm_driver_um2", a.pwm_driver_um2, "µm²", Area, Assumed,
              "a 4-bit pulse-width generator, one per query row"),
            f("cost.area.adder_um2", a.adder_um2, "µm²", Area, Assumed,
              "a ~10-bit adder, one per output dim per merge in the tree over sub-tiles"),
            f("cost.area.tile_control_um2", a.tile_control_um2, "µm²", Area, Assumed,
              "sequencing logic of one sub-tile"),
        ]
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Num(v) => write!(f, "{v}"),
            Value::Flag(b) => write!(f, "{b}"),
        }
    }
}
