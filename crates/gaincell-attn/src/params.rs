//! What the kernels need from a `ChipConfig`, resolved once: quantisers, constants, and how the cell is evaluated.

use gaincell_chip::{CellCurve, ChipConfig, Quantizer};

use crate::noise::NoiseParams;
use crate::AttnError;

/// Query rows handled by one task of the parallel kernels.
pub(crate) const QUERY_BLOCK: usize = 64;

/// Largest `power · λ · (QUERY_BLOCK − 1)` for which the separable leakage factors stay well inside f32 range;
/// beyond it (λ above ~0.1 per token) the kernels evaluate leakage per element instead.
const MAX_SEPARABLE_EXPONENT: f64 = 30.0;

/// Layout of a batch of heads: `heads` independent sequences of `t` rows of `d` values, row-major, contiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub heads: usize,
    pub t: usize,
    pub d: usize,
}

impl Shape {
    pub fn new(heads: usize, t: usize, d: usize) -> Self {
        Shape { heads, t, d }
    }

    pub fn len(&self) -> usize {
        self.heads * self.t * self.d
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn check(&self, name: &str, len: usize) -> Result<(), AttnError> {
        if len != self.len() {
            return Err(AttnError::Shape(format!(
                "{name} holds {len} values but the shape [heads {}, T {}, D {}] needs {}",
                self.heads,
                self.t,
                self.d,
                self.len()
            )));
        }
        Ok(())
    }
}

/// How a key or value's stored voltage enters a term of the cell's current.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Basis {
    /// `w^i` (one term of the polynomial).
    Power(u32),
    /// The whole curve `f(w)` (no leakage: one term carries everything).
    Curve,
}

/// One term of `f(d·w) = Σ_i coeff_i · d^{power_i} · basis_i(w)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Term {
    pub coeff: f32,
    pub power: u32,
    pub basis: Basis,
}

/// How the kernels evaluate the cell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Evaluation {
    /// A sum of separable terms, plus `constant · d⁰` (the polynomial's g₀): matrix products.
    Terms { terms: Vec<Term>, constant: f32 },
    /// `f(d·w)` per element: curves without a polynomial form under leakage, or extreme λ.
    PerElement,
}

/// Everything a gain-cell kernel needs, resolved from a validated [`ChipConfig`].
#[derive(Debug, Clone)]
pub struct GainCellParams {
    pub q: Quantizer,
    pub k: Quantizer,
    pub v: Quantizer,
    pub out: Quantizer,
    /// Mid-rail offset subtracted from stored voltages.
    pub offset: f32,
    pub inv_s_sat: f32,
    pub inv_a_sat: f32,
    pub window: usize,
    /// Tokens per sub-tile; `None` when tiling is off (the whole window is read out at once).
    pub tile_rows: Option<usize>,
    pub head_dim: usize,
    /// Leakage per token (0 when off).
    pub lambda: f64,
    pub curve: CellCurve,
    pub(crate) eval: Evaluation,
    /// Variation and noise; `None` when every σ is 0 (the kernels then run exactly as without them).
    pub(crate) noise: Option<NoiseParams>,
    /// Tokens between two writes of a column under the refresh policy; `None`: never rewritten.
    pub refresh: Option<usize>,
}

impl GainCellParams {
    /// Resolve a chip config (which must describe gain-cell attention).
    pub fn new(chip: &ChipConfig) -> Result<Self, AttnError> {
        if !chip.is_gain_cell() {
            return Err(AttnError::NotGainCell);
        }
        let lambda = chip.lambda();
        let refresh = chip.refresh_period();
        // A refreshed column's age is (t − j) mod N, which does not separate into a query and a key factor:
        // refresh runs on the per-element path.
        let eval = match (lambda, chip.cell.polynomial()) {
            _ if refresh.is_some() => Evaluation::PerElement,
            (0.0, _) => Evaluation::Terms {
                terms: vec![Term {
                    coeff: 1.0,
                    power: 0,
                    basis: Basis::Curve,
                }],
                constant: 0.0,
            },
            (l, Some(g))
                if (g.len() as f64 - 1.0) * l * (QUERY_BLOCK as f64 - 1.0)
                    <= MAX_SEPARABLE_EXPONENT =>
            {
                let terms = g
                    .iter()
                    .enumerate()
                    .skip(1)
                    .filter(|(_, c)| **c != 0.0)
                    .map(|(i, c)| Term {
                        coeff: *c as f32,
                        power: i as u32,
                        basis: Basis::Power(i as u32),
                    })
                    .collect();
                Evaluation::Terms {
                    terms,
                    constant: g[0] as f32,
                }
            }
            _ => Evaluation::PerElement,
        };
        Ok(GainCellParams {
            q: chip.query.quantizer(),
            k: chip.key.quantizer(),
            v: chip.value.quantizer(),
            out: chip.output.quantizer(),
            offset: chip.weight_offset as f32,
            inv_s_sat: (1.0 / chip.readout.s_sat) as f32,
            inv_a_sat: (1.0 / chip.readout.a_sat) as f32,
            window: chip.geometry.window,
            tile_rows: chip.geometry.tiling.then_some(chip.geometry.tile_rows),
            head_dim: chip.geometry.head_dim,
            lambda,
            curve: chip.cell.clone(),
            eval,
            noise: NoiseParams::new(chip),
            refresh,
        })
    }

    /// The sub-tile (readout group) of ring-buffer slot `slot`.
    #[inline]
    pub fn tile_of_slot(&self, slot: usize) -> usize {
        self.tile_rows.map_or(0, |r| slot / r)
    }

    /// Number of sub-tiles read out per query.
    pub fn tiles(&self) -> usize {
        self.tile_rows.map_or(1, |r| self.window / r)
    }

    /// Age (tokens since its last write) and write count of a column holding position `j`, read at time `t`.
    #[inline]
    pub(crate) fn age_and_writes(&self, t: usize, j: usize) -> (usize, usize) {
        let a = t - j;
        match self.refresh {
            Some(n) => (a % n, a / n),
            None => (a, 0),
        }
    }

    /// True when the chip has any variation or noise.
    pub fn is_noisy(&self) -> bool {
        self.noise.is_some()
    }

    /// Signed weight of a stored voltage, after the DAC: `quantise(clamp(x)) − offset`.
    #[inline]
    pub(crate) fn key_weight(&self, x: f32) -> f32 {
        self.k.apply(x) - self.offset
    }

    #[inline]
    pub(crate) fn value_weight(&self, x: f32) -> f32 {
        self.v.apply(x) - self.offset
    }

    /// `basis(w)` of one term.
    #[inline]
    pub(crate) fn basis(&self, basis: Basis, w: f32) -> f32 {
        match basis {
            Basis::Power(i) => w.powi(i as i32),
            Basis::Curve => self.curve.eval(w as f64) as f32,
        }
    }

    /// Leakage factor `exp(−power·λ·n)` for each `n` in `from..to`.
    pub(crate) fn decay_table(&self, power: u32, from: i64, to: i64) -> Vec<f32> {
        (from..to)
            .map(|n| (-(power as f64) * self.lambda * n as f64).exp() as f32)
            .collect()
    }

    /// Current of the cell for weight `w` read `age` tokens after it was written (per-element path).
    #[inline]
    pub(crate) fn cell_current(&self, w: f32, age: usize) -> f32 {
        let d = (-self.lambda * age as f64).exp();
        self.curve.eval(d * w as f64) as f32
    }

    /// Check that q, k, v fit `shape` and the chip's head dimension.
    pub(crate) fn check_inputs(
        &self,
        shape: Shape,
        q: &[f32],
        k: &[f32],
        v: &[f32],
    ) -> Result<(), AttnError> {
        shape.check("q", q.len())?;
        shape.check("k", k.len())?;
        shape.check("v", v.len())?;
        if shape.d != self.head_dim {
            return Err(AttnError::Shape(format!(
                "the arrays hold D = {} values per token but the chip's arrays have geometry.head_dim = {} rows",
                shape.d, self.head_dim
            )));
        }
        Ok(())
    }
}
