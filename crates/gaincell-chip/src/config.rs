//! `ChipConfig`: the one serialisable description of the hardware, its TOML form, loading and validation.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::noise::is_default;
use crate::{
    merge, presets, CellCurve, ChipError, CostParams, Noise, Quantizer, Refresh, Variation,
};

/// Which attention the chip computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionKind {
    /// Ordinary softmax attention (the software model); only `geometry.window` applies.
    Softmax,
    /// Analog gain-cell attention (docs/chip-model.md).
    GainCell,
}

/// Longest gain-cell window accepted (tokens).
pub const MAX_WINDOW: u64 = 1 << 32;
/// The largest array height (`geometry.head_dim`): real heads have 64 to 256 dims.
pub const MAX_HEAD_DIM: usize = 1 << 16;

/// Array geometry and the attention window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Geometry {
    /// Rows of an array: the head dimension D it holds (64 for GPT-2).
    pub head_dim: usize,
    /// Sliding-window length W in tokens (one array column per token, a ring buffer); 0 means unlimited,
    /// which only softmax attention accepts.
    pub window: usize,
    /// Tokens per sub-tile R: each sub-tile of the value array is read out (clamped, counted) on its own.
    pub tile_rows: usize,
    /// When false, the whole window is read out at once (one clamp and quantisation), as an idealised study.
    pub tiling: bool,
}

/// One clamp-and-quantise stage: a DAC, the PWM input or a pulse counter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantizerConfig {
    /// Resolution in bits: `2^bits` levels on `[min, max]`.
    pub bits: u32,
    pub min: f64,
    pub max: f64,
    /// When false only the clamp to `[min, max]` applies.
    pub quantize: bool,
}

impl QuantizerConfig {
    pub fn levels(&self) -> u64 {
        1u64 << self.bits
    }

    pub fn quantizer(&self) -> Quantizer {
        Quantizer::new(self.min, self.max, self.levels(), self.quantize)
    }

    fn validate(&self, name: &str) -> Result<(), ChipError> {
        if !(1..=24).contains(&self.bits) {
            return Err(ChipError::invalid(
                format!("{name}.bits"),
                format!("is {}: give 1 to 24 bits", self.bits),
            ));
        }
        for (f, v) in [("min", self.min), ("max", self.max)] {
            if !v.is_finite() {
                return Err(ChipError::invalid(
                    format!("{name}.{f}"),
                    format!("is {v}: it must be a finite number"),
                ));
            }
        }
        if self.min >= self.max {
            return Err(ChipError::invalid(
                format!("{name}.min"),
                format!("({}) must be below {name}.max ({})", self.min, self.max),
            ));
        }
        Ok(())
    }
}

/// The charge-to-pulse circuits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readout {
    /// Score charge that saturates the first charge-to-pulse circuit: φ = clamp(S / s_sat, 0, 1).
    pub s_sat: f64,
    /// Charge that saturates a sub-tile's signed output counter: A = clamp(Σ / a_sat, −1, 1).
    pub a_sat: f64,
}

/// Charge leakage of the stored K and V: a value written Δ tokens ago has decayed by exp(−λΔ).
///
/// Give either `lambda_per_token`, or `retention_s` and `token_period_s` (then λ = token_period / retention).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leakage {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_per_token: Option<f64>,
    /// Time constant of the cell's charge decay, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_s: Option<f64>,
    /// Time between two tokens reaching this layer, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_period_s: Option<f64>,
}

impl Leakage {
    /// λ per token in force (0 when leakage is disabled).
    pub fn lambda(&self) -> f64 {
        if !self.enabled {
            return 0.0;
        }
        match (self.lambda_per_token, self.retention_s, self.token_period_s) {
            (Some(l), _, _) => l,
            (None, Some(r), Some(p)) => p / r,
            _ => 0.0,
        }
    }

    fn validate(&self) -> Result<(), ChipError> {
        match (self.lambda_per_token, self.retention_s, self.token_period_s) {
            (Some(l), None, None) => {
                if !l.is_finite() || l < 0.0 {
                    return Err(ChipError::invalid(
                        "leakage.lambda_per_token",
                        format!("is {l}: it must be a finite number ≥ 0"),
                    ));
                }
            }
            (None, Some(r), Some(p)) => {
                for (f, v) in [("retention_s", r), ("token_period_s", p)] {
                    if !v.is_finite() || v <= 0.0 {
                        return Err(ChipError::invalid(
                            format!("leakage.{f}"),
                            format!("is {v}: it must be a positive number of seconds"),
                        ));
                    }
                }
            }
            (Some(_), _, _) => {
                return Err(ChipError::invalid(
                    "leakage.lambda_per_token",
                    "is given together with retention_s/token_period_s: give one or the other",
                ))
            }
            _ => {
                return Err(ChipError::invalid(
                    "leakage",
                    "needs either lambda_per_token, or both retention_s and token_period_s",
                ))
            }
        }
        Ok(())
    }
}

/// Initial value of one per-head affine scaler x' = a·x + b (docs/chip-model.md#per-head-scalers).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalerInit {
    pub a: f64,
    pub b: f64,
}

/// Initial values of the trainable per-head scalers of q, k, v and the head output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalerInits {
    pub q: ScalerInit,
    pub k: ScalerInit,
    pub v: ScalerInit,
    pub o: ScalerInit,
}

/// The hardware, all of it. Every constant of the functional model (docs/chip-model.md) is a field; defaults are the
/// paper's. docs/chip-toml.md lists every key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChipConfig {
    /// Preset or user-given name, shown in reports.
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub attention: AttentionKind,
    pub geometry: Geometry,
    /// Query pulse widths, as a fraction of T_max.
    pub query: QuantizerConfig,
    /// Key voltages written by the DACs of the first array.
    pub key: QuantizerConfig,
    /// Value voltages written by the DACs of the second array.
    pub value: QuantizerConfig,
    /// Sub-tile output counters.
    pub output: QuantizerConfig,
    /// Mid-rail voltage subtracted from stored values to make signed weights (w = k' − offset).
    pub weight_offset: f64,
    pub readout: Readout,
    pub leakage: Leakage,
    pub cell: CellCurve,
    pub scalers: ScalerInits,
    /// Timing, energy and area constants of the cost model; the paper's when the file has no `[cost]`.
    #[serde(default)]
    pub cost: CostParams,
    /// Static device variation of this chip instance; none when absent.
    #[serde(default, skip_serializing_if = "is_default")]
    pub variation: Variation,
    /// Write and read noise; none when absent.
    #[serde(default, skip_serializing_if = "is_default")]
    pub noise: Noise,
    /// Rewriting stored columns against leakage; never when absent.
    #[serde(default, skip_serializing_if = "is_default")]
    pub refresh: Refresh,
}

impl ChipConfig {
    /// A preset by name, or a TOML file by path (which may start from a preset with `base = "NAME"`).
    pub fn load(spec: &str) -> Result<Self, ChipError> {
        let path = Path::new(spec);
        if path.is_file() {
            return Self::from_file(path);
        }
        match presets::preset(spec) {
            Some(c) => Ok(c),
            // A directory or a FIFO: read it, so the error (or the data) says what the path is.
            None if path.exists() => Self::from_file(path),
            None => Err(ChipError::Unknown {
                name: spec.to_string(),
                known: presets::PRESET_NAMES.join(", "),
            }),
        }
    }

    /// Read and validate a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ChipError> {
        let text = std::fs::read_to_string(path).map_err(|source| ChipError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parse and validate TOML text; `origin` names it in error messages. A top-level `base = "PRESET"` starts from
    /// that preset and overrides only the fields the text gives; without it, every field must be present.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, ChipError> {
        let parse_err = |e: toml::de::Error| ChipError::Parse {
            origin: origin.to_string(),
            message: one_line_toml_error(&e, text),
        };
        let mut user: toml::Table = toml::from_str(text).map_err(parse_err)?;
        let table = match user.remove("base") {
            Some(toml::Value::String(base)) => {
                let base_cfg = presets::preset(&base).ok_or_else(|| {
                    ChipError::invalid(
                        "base",
                        format!(
                            "names `{base}`, which is not a preset ({})",
                            presets::PRESET_NAMES.join(", ")
                        ),
                    )
                })?;
                let mut t = toml::Table::try_from(&base_cfg).expect("presets serialise");
                merge::merge_into(&mut t, user);
                t
            }
            Some(other) => {
                return Err(ChipError::invalid(
                    "base",
                    format!("is {other}: it must be a preset name in quotes"),
                ))
            }
            None => user,
        };
        // Deserialise through serde_path_to_error so a wrong value is reported with its field path.
        let cfg: ChipConfig = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(
            |e: serde_path_to_error::Error<toml::de::Error>| {
                let msg = e.inner().message().trim().replace('\n', " ");
                let path = e.path().to_string();
                let at = if path == "." {
                    String::new()
                } else {
                    format!("field `{path}`: ")
                };
                ChipError::Parse {
                    origin: origin.to_string(),
                    message: format!("{at}{msg}{}", hint_for_missing(&msg)),
                }
            },
        )?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The full TOML text of this config (what `gaincell chip show` prints).
    pub fn to_toml_string(&self) -> String {
        toml::to_string(self).expect("chip config serialises")
    }

    /// Check every field; the error names the first wrong one and says why.
    pub fn validate(&self) -> Result<(), ChipError> {
        let g = &self.geometry;
        if g.head_dim == 0 {
            return Err(ChipError::invalid(
                "geometry.head_dim",
                "is 0: an array needs at least one row",
            ));
        }
        // Bounded so that every count the cost model multiplies (cells = 2 · head_dim · window per head, times
        // heads and layers) stays far inside 64 bits.
        if g.head_dim > MAX_HEAD_DIM {
            return Err(ChipError::invalid(
                "geometry.head_dim",
                format!("is {}: give at most 2^16 = {MAX_HEAD_DIM} rows", g.head_dim),
            ));
        }
        if self.attention == AttentionKind::GainCell {
            if g.window == 0 {
                return Err(ChipError::invalid(
                    "geometry.window",
                    "is 0: a gain-cell array has a finite number of columns",
                ));
            }
            // A window longer than the sequence costs nothing (the arrays grow with the tokens written), so any
            // length is legal; the bound only keeps the kernels' index arithmetic (t + W) far from overflow.
            if g.window as u64 > MAX_WINDOW {
                return Err(ChipError::invalid(
                    "geometry.window",
                    format!("is {}: give at most 2^32 = {MAX_WINDOW} tokens", g.window),
                ));
            }
            if g.tile_rows == 0 {
                return Err(ChipError::invalid(
                    "geometry.tile_rows",
                    "is 0: a sub-tile needs at least one token",
                ));
            }
            if !g.window.is_multiple_of(g.tile_rows) {
                return Err(ChipError::invalid(
                    "geometry.window",
                    format!("({}) is not a multiple of geometry.tile_rows ({}): the window must be a whole number of sub-tiles", g.window, g.tile_rows),
                ));
            }
        }
        self.query.validate("query")?;
        self.key.validate("key")?;
        self.value.validate("value")?;
        self.output.validate("output")?;
        if !self.weight_offset.is_finite() {
            return Err(ChipError::invalid(
                "weight_offset",
                "must be a finite number of volts",
            ));
        }
        for (f, v) in [
            ("readout.s_sat", self.readout.s_sat),
            ("readout.a_sat", self.readout.a_sat),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return Err(ChipError::invalid(
                    f,
                    format!("is {v}: a saturation charge must be positive"),
                ));
            }
        }
        self.leakage.validate()?;
        self.cell.validate()?;
        for (name, s) in [
            ("q", self.scalers.q),
            ("k", self.scalers.k),
            ("v", self.scalers.v),
            ("o", self.scalers.o),
        ] {
            if !s.a.is_finite() || !s.b.is_finite() {
                return Err(ChipError::invalid(
                    format!("scalers.{name}"),
                    "must have finite a and b",
                ));
            }
        }
        self.cost.validate()?;
        self.variation.validate()?;
        self.noise.validate()?;
        self.refresh.validate(g.window, self.is_gain_cell())?;
        Ok(())
    }

    /// Tokens between two writes of a stored column under the refresh policy (`None`: never rewritten).
    pub fn refresh_period(&self) -> Option<usize> {
        self.refresh.period(self.lambda(), self.geometry.window)
    }

    /// λ per token in force (0 with leakage off).
    pub fn lambda(&self) -> f64 {
        self.leakage.lambda()
    }

    pub fn is_gain_cell(&self) -> bool {
        self.attention == AttentionKind::GainCell
    }
}

/// A toml error on one line: message plus line and column.
fn one_line_toml_error(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {msg}")
        }
        None => msg,
    }
}

fn hint_for_missing(msg: &str) -> &'static str {
    if msg.contains("missing field") {
        " (start the file with `base = \"paper-nonlinear\"` or another preset to inherit the fields you leave out)"
    } else {
        ""
    }
}
