//! The non-idealities of a chip instance: static device variation (`[variation]`), per-event noise (`[noise]`)
//! and the refresh policy against leakage (`[refresh]`). All off by default: every σ is 0 and nothing refreshes,
//! so a file or preset without these sections computes exactly what an ideal chip computes.

use serde::{Deserialize, Serialize};

use crate::ChipError;

/// Static cell-to-cell variation of one chip instance (docs/chip-toml.md#variation): fixed per physical cell or
/// converter, drawn from `seed`. Every σ is the standard deviation of a Gaussian.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Variation {
    /// Identifies the chip instance: the same seed is the same chip.
    pub seed: u64,
    /// Relative σ of each cell's gain on its stored weight: w ↦ (1 + σ·z)·w.
    pub cell_gain_sigma: f64,
    /// σ in volts of each cell's offset on its stored weight: w ↦ w + σ·z.
    pub cell_offset_sigma_v: f64,
    /// Relative σ of the gain of each key column's charge-to-pulse converter.
    pub c2p_gain_sigma: f64,
    /// σ of each key column converter's threshold, in units of the score S (µA × fraction of T_max).
    pub c2p_threshold_sigma_ua: f64,
    /// Relative σ of the gain of each sub-tile output line's signed converter and counter.
    pub counter_gain_sigma: f64,
    /// σ of each output line's threshold, in units of the sub-tile charge (µA × fraction of φ's full scale).
    pub counter_threshold_sigma_ua: f64,
}

/// Noise drawn afresh at every write or read (docs/chip-toml.md#noise).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Noise {
    /// Seed of the draws: the same seed repeats the same noise; change it for fresh draws.
    pub seed: u64,
    /// σ in volts of the voltage a DAC writes (each write, refreshes included), added after quantisation.
    pub write_sigma_v: f64,
    /// σ of each read of a key column's summed current, in units of S (µA × fraction of T_max).
    pub score_read_sigma_ua: f64,
    /// σ of each read of a sub-tile output line, in units of the sub-tile charge (µA × fraction of φ's full scale).
    pub value_read_sigma_ua: f64,
}

/// When stored columns are rewritten to undo leakage (docs/chip-toml.md#refresh). Off when neither is given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Refresh {
    /// Rewrite each column every N tokens after its last write (1 ≤ N < geometry.window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every_tokens: Option<usize>,
    /// Rewrite a column before its decay 1 − exp(−λ·age) exceeds this fraction (0 < f < 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_fraction: Option<f64>,
}

fn sigma(field: &str, v: f64) -> Result<(), ChipError> {
    if !v.is_finite() || v < 0.0 {
        return Err(ChipError::invalid(
            field,
            format!("is {v}: a standard deviation must be a finite number ≥ 0"),
        ));
    }
    Ok(())
}

impl Variation {
    /// `(field, σ)` of every source, named as in the file.
    pub fn sigmas(&self) -> [(&'static str, f64); 6] {
        [
            ("cell_gain_sigma", self.cell_gain_sigma),
            ("cell_offset_sigma_v", self.cell_offset_sigma_v),
            ("c2p_gain_sigma", self.c2p_gain_sigma),
            ("c2p_threshold_sigma_ua", self.c2p_threshold_sigma_ua),
            ("counter_gain_sigma", self.counter_gain_sigma),
            (
                "counter_threshold_sigma_ua",
                self.counter_threshold_sigma_ua,
            ),
        ]
    }

    /// True when every σ is 0 (the seed alone changes nothing).
    pub fn is_off(&self) -> bool {
        self.sigmas().iter().all(|(_, s)| *s == 0.0)
    }

    pub(crate) fn validate(&self) -> Result<(), ChipError> {
        for (f, v) in self.sigmas() {
            sigma(&format!("variation.{f}"), v)?;
        }
        Ok(())
    }
}

impl Noise {
    /// `(field, σ)` of every source, named as in the file.
    pub fn sigmas(&self) -> [(&'static str, f64); 3] {
        [
            ("write_sigma_v", self.write_sigma_v),
            ("score_read_sigma_ua", self.score_read_sigma_ua),
            ("value_read_sigma_ua", self.value_read_sigma_ua),
        ]
    }

    pub fn is_off(&self) -> bool {
        self.sigmas().iter().all(|(_, s)| *s == 0.0)
    }

    pub(crate) fn validate(&self) -> Result<(), ChipError> {
        for (f, v) in self.sigmas() {
            sigma(&format!("noise.{f}"), v)?;
        }
        Ok(())
    }
}

impl Refresh {
    /// Tokens between two writes of a column, or `None` when no column is ever rewritten within the window (no
    /// policy, no leakage for `max_age_fraction`, or a period the window never reaches).
    pub fn period(&self, lambda: f64, window: usize) -> Option<usize> {
        let n = match (self.every_tokens, self.max_age_fraction) {
            (Some(n), _) => n,
            (None, Some(f)) if lambda > 0.0 => {
                // Reads see ages 0..N−1: the oldest allowed age is the largest with 1 − e^(−λ·age) ≤ f.
                let oldest = (-(1.0 - f).ln() / lambda).floor();
                if oldest >= window as f64 {
                    return None;
                }
                oldest as usize + 1
            }
            _ => return None,
        };
        (n < window).then_some(n)
    }

    pub(crate) fn validate(&self, window: usize, gain_cell: bool) -> Result<(), ChipError> {
        match (self.every_tokens, self.max_age_fraction) {
            (Some(_), Some(_)) => Err(ChipError::invalid(
                "refresh.every_tokens",
                "is given together with refresh.max_age_fraction: give one or the other",
            )),
            (Some(n), None) => {
                if n == 0 || (gain_cell && n >= window) {
                    return Err(ChipError::invalid(
                        "refresh.every_tokens",
                        format!(
                            "is {n}: give 1 to {} (below geometry.window = {window}, \
                             when a new token overwrites the column anyway)",
                            window.saturating_sub(1)
                        ),
                    ));
                }
                Ok(())
            }
            (None, Some(f)) => {
                if !(f > 0.0 && f < 1.0) {
                    return Err(ChipError::invalid(
                        "refresh.max_age_fraction",
                        format!("is {f}: give a fraction between 0 and 1 (exclusive)"),
                    ));
                }
                Ok(())
            }
            (None, None) => Ok(()),
        }
    }
}

/// Serde helper: leave a section out of the TOML when it holds its defaults (presets print as before).
pub(crate) fn is_default<T: Default + PartialEq>(x: &T) -> bool {
    *x == T::default()
}
