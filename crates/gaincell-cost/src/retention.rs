//! How long a stored k or v must survive, and how much it has leaked by the time it is last read.
//!
//! A column is overwritten after `window` tokens (ring buffer), so a value must hold for window × token period;
//! the oldest key read is window − 1 tokens old and has decayed by exp(−λ·(window − 1)).

use gaincell_chip::ChipConfig;
use serde::Serialize;

/// Retention of silicon gain cells (the paper; oxide-semiconductor cells hold far longer): docs/cost-model.md#retention.
pub const SILICON_RETENTION_S: f64 = 5e-3;

/// What the window and token period ask of the cells' retention.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retention {
    /// Time between two tokens reaching a layer.
    pub token_period_s: f64,
    /// Where the token period comes from: the chip's `leakage.token_period_s`, or layers × layer latency (only
    /// attention on the critical path, as docs/chip-model.md#leakage reads λ).
    pub token_period_source: String,
    /// Time a column holds its value before the ring buffer overwrites it: window × token period.
    pub column_lifetime_s: f64,
    /// Age in tokens of the oldest key read: window − 1.
    pub oldest_age_tokens: usize,
    /// λ per token in force in the chip config (0 when leakage is off).
    pub lambda_per_token: f64,
    /// Fraction of the stored deviation left at the oldest column: exp(−λ·(window − 1)).
    pub oldest_decay: f64,
    /// Retention time that the config's λ stands for at this token period: period / λ (none when λ = 0).
    pub implied_retention_s: Option<f64>,
    /// λ that silicon gain cells (5 ms) would give at this token period.
    pub silicon_lambda_per_token: f64,
    /// Fraction left at the oldest column with silicon cells.
    pub silicon_oldest_decay: f64,
}

impl Retention {
    pub fn of(chip: &ChipConfig, layer_latency_ns: f64, n_layer: usize) -> Self {
        let (token_period_s, token_period_source) = match chip.leakage.token_period_s {
            Some(p) => (p, "chip config leakage.token_period_s".to_string()),
            None => (
                layer_latency_ns * 1e-9 * n_layer as f64,
                format!("{n_layer} layers × {layer_latency_ns} ns per layer"),
            ),
        };
        let window = chip.geometry.window;
        let oldest_age_tokens = window - 1;
        let lambda = chip.lambda();
        let silicon_lambda = token_period_s / SILICON_RETENTION_S;
        Retention {
            token_period_s,
            token_period_source,
            column_lifetime_s: window as f64 * token_period_s,
            oldest_age_tokens,
            lambda_per_token: lambda,
            oldest_decay: (-lambda * oldest_age_tokens as f64).exp(),
            implied_retention_s: (lambda > 0.0).then(|| token_period_s / lambda),
            silicon_lambda_per_token: silicon_lambda,
            silicon_oldest_decay: (-silicon_lambda * oldest_age_tokens as f64).exp(),
        }
    }
}
