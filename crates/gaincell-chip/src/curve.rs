//! The cell's current as a function of its stored weight, in every variant of docs/chip-model.md#cell-curve.

use serde::{Deserialize, Serialize};

use crate::ChipError;

/// Current (µA at full input amplitude) that a cell sources for a signed weight `y` (volts from mid-rail).
///
/// The gain-cell preset's cubic was fitted to circuit simulation; the reference stores it as 10 coefficients
/// `c_ij` of `Σ_i Σ_{j≤3−i} c_ij·y^i·V_in^j` at `V_in = 0.9 V`, which collapses to the four numbers below.
/// `power`, `sigmoid` and `exp` are the curves the paper uses to probe robustness:
/// `f(y) = a·(h(y) − h(0))` with `a = span / (h(half_range) − h(−half_range))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CellCurve {
    /// `f(y) = slope·y`: the intermediate ("linear") model.
    Linear {
        #[serde(default = "default_slope")]
        slope: f64,
    },
    /// The gain cell's fitted cubic, `f(y) = Σ_i coefficients[i]·y^i`.
    GainCell {
        #[serde(default = "gain_cell_coefficients")]
        coefficients: Vec<f64>,
    },
    /// Any polynomial `f(y) = Σ_i coefficients[i]·y^i` (constant term first).
    Polynomial { coefficients: Vec<f64> },
    /// `h(y) = y^exponent` (odd exponents: 3 and 5 in the paper).
    Power {
        exponent: u32,
        #[serde(default = "default_slope")]
        span: f64,
        #[serde(default = "default_half_range")]
        half_range: f64,
    },
    /// `h(y) = sigmoid(steepness·y)` (steepness 10 in the paper).
    Sigmoid {
        #[serde(default = "default_steepness")]
        steepness: f64,
        #[serde(default = "default_slope")]
        span: f64,
        #[serde(default = "default_half_range")]
        half_range: f64,
    },
    /// `h(y) = exp(rate·y)` (rate 3 in the paper; strongly asymmetric).
    Exp {
        #[serde(default = "default_rate")]
        rate: f64,
        #[serde(default = "default_slope")]
        span: f64,
        #[serde(default = "default_half_range")]
        half_range: f64,
    },
}

fn default_slope() -> f64 {
    19.3
}
fn default_half_range() -> f64 {
    0.45
}
fn default_steepness() -> f64 {
    10.0
}
fn default_rate() -> f64 {
    3.0
}

/// The paper's gain-cell cubic, 0.52136 + 13.6123·y − 2.62045·y² + 46.0548·y³ (µA, y in volts):
/// docs/chip-model.md#cell-curve.
pub fn gain_cell_coefficients() -> Vec<f64> {
    vec![0.52136, 13.6123, -2.62045, 46.0548]
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl CellCurve {
    /// `h(y)` of a robustness curve (`None` for the polynomial kinds).
    fn h(&self, y: f64) -> Option<f64> {
        match *self {
            CellCurve::Power { exponent, .. } => Some(y.powi(exponent as i32)),
            CellCurve::Sigmoid { steepness, .. } => Some(sigmoid(steepness * y)),
            CellCurve::Exp { rate, .. } => Some((rate * y).exp()),
            _ => None,
        }
    }

    /// Gain `a = span / (h(half_range) − h(−half_range))` of a robustness curve.
    fn shaped_gain(&self) -> Option<f64> {
        match *self {
            CellCurve::Power {
                span, half_range, ..
            }
            | CellCurve::Sigmoid {
                span, half_range, ..
            }
            | CellCurve::Exp {
                span, half_range, ..
            } => Some(span / (self.h(half_range)? - self.h(-half_range)?)),
            _ => None,
        }
    }

    /// Current for weight `y`, in f64 (allocation-free: kernels call it per stored value).
    pub fn eval(&self, y: f64) -> f64 {
        match self {
            CellCurve::Linear { slope } => slope * y,
            CellCurve::GainCell { coefficients } | CellCurve::Polynomial { coefficients } => {
                coefficients.iter().rev().fold(0.0, |acc, c| acc * y + c)
            }
            _ => {
                let h = |y| self.h(y).expect("every non-polynomial curve has an h");
                self.shaped_gain()
                    .expect("every non-polynomial curve has a gain")
                    * (h(y) - h(0.0))
            }
        }
    }

    /// Coefficients `g_0, g_1, …` when the curve is a polynomial in `y` (fast kernels then use one matrix
    /// product per power); `None` for sigmoid and exp.
    pub fn polynomial(&self) -> Option<Vec<f64>> {
        match self {
            CellCurve::Linear { slope } => Some(vec![0.0, *slope]),
            CellCurve::GainCell { coefficients } | CellCurve::Polynomial { coefficients } => {
                Some(coefficients.clone())
            }
            CellCurve::Power { exponent, .. } => {
                let a = self.shaped_gain()?;
                let mut c = vec![0.0; *exponent as usize + 1];
                // h(0) = 0 for any positive power, so f(y) = a·y^n exactly.
                c[*exponent as usize] = a;
                Some(c)
            }
            CellCurve::Sigmoid { .. } | CellCurve::Exp { .. } => None,
        }
    }

    /// The slope of the linear surrogate used by training's backward pass (docs/surrogate-gradient.md).
    pub fn linear_slope(&self) -> f64 {
        match self {
            CellCurve::Linear { slope } => *slope,
            _ => default_slope(),
        }
    }

    /// A short human name for tables and plots.
    pub fn label(&self) -> String {
        match self {
            CellCurve::Linear { slope } => format!("linear ({slope}·y)"),
            CellCurve::GainCell { .. } => "gain-cell cubic".into(),
            CellCurve::Polynomial { coefficients } => format!(
                "polynomial, degree {}",
                coefficients.len().saturating_sub(1)
            ),
            CellCurve::Power { exponent, .. } => format!("y^{exponent}"),
            CellCurve::Sigmoid { steepness, .. } => format!("sigmoid({steepness}·y)"),
            CellCurve::Exp { rate, .. } => format!("exp({rate}·y)"),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ChipError> {
        let finite = |field: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(ChipError::invalid(
                    format!("cell.{field}"),
                    format!("is {v}: it must be a finite number"),
                ))
            }
        };
        match self {
            CellCurve::Linear { slope } => {
                finite("slope", *slope)?;
                if *slope == 0.0 {
                    return Err(ChipError::invalid(
                        "cell.slope",
                        "is 0: a cell that sources no current computes nothing",
                    ));
                }
            }
            CellCurve::GainCell { coefficients } | CellCurve::Polynomial { coefficients } => {
                if coefficients.is_empty() || coefficients.len() > 8 {
                    return Err(ChipError::invalid(
                        "cell.coefficients",
                        format!(
                            "has {} entries: give 1 to 8 (constant term first)",
                            coefficients.len()
                        ),
                    ));
                }
                for c in coefficients {
                    finite("coefficients", *c)?;
                }
                if coefficients.iter().skip(1).all(|c| *c == 0.0) {
                    return Err(ChipError::invalid(
                        "cell.coefficients",
                        "describe a constant: the current must depend on the weight",
                    ));
                }
            }
            CellCurve::Power {
                exponent,
                span,
                half_range,
            } => {
                if !(1..=9).contains(exponent) || exponent % 2 == 0 {
                    return Err(ChipError::invalid(
                        "cell.exponent",
                        format!("is {exponent}: use an odd exponent from 1 to 9 (an even one gives h(+r) = h(−r) and cannot be normalised)"),
                    ));
                }
                Self::validate_shape(*span, *half_range)?;
            }
            CellCurve::Sigmoid {
                steepness,
                span,
                half_range,
            } => {
                finite("steepness", *steepness)?;
                if *steepness == 0.0 {
                    return Err(ChipError::invalid(
                        "cell.steepness",
                        "is 0: the curve would be flat",
                    ));
                }
                Self::validate_shape(*span, *half_range)?;
            }
            CellCurve::Exp {
                rate,
                span,
                half_range,
            } => {
                finite("rate", *rate)?;
                if *rate == 0.0 {
                    return Err(ChipError::invalid(
                        "cell.rate",
                        "is 0: the curve would be flat",
                    ));
                }
                Self::validate_shape(*span, *half_range)?;
            }
        }
        Ok(())
    }

    fn validate_shape(span: f64, half_range: f64) -> Result<(), ChipError> {
        if !span.is_finite() || span == 0.0 {
            return Err(ChipError::invalid(
                "cell.span",
                format!("is {span}: it must be finite and non-zero"),
            ));
        }
        if !half_range.is_finite() || half_range <= 0.0 {
            return Err(ChipError::invalid(
                "cell.half_range",
                format!("is {half_range}: it must be a positive number of volts"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gain_cell_cubic_collapses_the_reference_ten_coefficients() {
        // c_ij of Σ_i Σ_{j≤3−i} c_ij·y^i·V_in^j at V_in = 0.9 (reference implementation's table).
        let c = [
            0.17393044,
            0.15653739,
            0.14088365,
            0.12679529,
            5.51975209,
            4.96777688,
            4.4709992,
            -1.44776001,
            -1.30298401,
            46.05483778,
        ];
        let (mut g, mut idx) = ([0.0f64; 4], 0);
        for (i, gi) in g.iter_mut().enumerate() {
            for j in 0..=(3 - i) {
                *gi += c[idx] * 0.9f64.powi(j as i32);
                idx += 1;
            }
        }
        for (a, b) in g.iter().zip(gain_cell_coefficients()) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn robustness_curves_span_19_3_over_the_weight_range() {
        for curve in [
            CellCurve::Power {
                exponent: 3,
                span: 19.3,
                half_range: 0.45,
            },
            CellCurve::Power {
                exponent: 5,
                span: 19.3,
                half_range: 0.45,
            },
            CellCurve::Sigmoid {
                steepness: 10.0,
                span: 19.3,
                half_range: 0.45,
            },
            CellCurve::Exp {
                rate: 3.0,
                span: 19.3,
                half_range: 0.45,
            },
        ] {
            assert!(
                (curve.eval(0.45) - curve.eval(-0.45) - 19.3).abs() < 1e-9,
                "{curve:?}"
            );
            assert_eq!(curve.eval(0.0), 0.0);
        }
        // y^3: a = 19.3 / (2·0.45^3) = 105.898...
        let cube = CellCurve::Power {
            exponent: 3,
            span: 19.3,
            half_range: 0.45,
        };
        assert!((cube.polynomial().unwrap()[3] - 19.3 / (2.0 * 0.091125)).abs() < 1e-9);
        // exp(3y): f(0.2) = 19.3/(e^1.35 − e^−1.35)·(e^0.6 − 1)
        let e = CellCurve::Exp {
            rate: 3.0,
            span: 19.3,
            half_range: 0.45,
        };
        let want = 19.3 / (1.35f64.exp() - (-1.35f64).exp()) * (0.6f64.exp() - 1.0);
        assert!((e.eval(0.2) - want).abs() < 1e-12);
    }

    #[test]
    fn polynomial_eval_is_horner_of_the_coefficients() {
        let c = CellCurve::GainCell {
            coefficients: gain_cell_coefficients(),
        };
        let y = 0.3f64;
        let want = 0.52136 + 13.6123 * y - 2.62045 * y * y + 46.0548 * y * y * y;
        assert!((c.eval(y) - want).abs() < 1e-12);
        assert_eq!(CellCurve::Linear { slope: 19.3 }.eval(-0.2), 19.3 * -0.2);
    }
}
