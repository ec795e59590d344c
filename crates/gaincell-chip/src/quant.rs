//! Clamp-and-quantise of a DAC, a pulse-width modulator or a pulse counter (docs/chip-model.md#clamp-and-quantise).

/// A resolved quantiser: clamp to `[min, max]`, then snap to `step · round(x / step)` (round half to even, as
/// PyTorch and the reference do). The grid is anchored at zero, exactly as the reference writes it, so on a range
/// whose minimum is not a multiple of the step (the output range [−1, 1] with 32 levels) the outermost levels sit
/// at ±16·step ≈ ±1.032: that is what the reference computes, and we reproduce it rather than correct it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantizer {
    pub min: f32,
    pub max: f32,
    /// Distance between levels, `(max − min) / (levels − 1)`.
    pub step: f32,
    /// When false only the clamp applies.
    pub quantize: bool,
}

impl Quantizer {
    /// A quantiser with `levels` levels on `[min, max]`.
    pub fn new(min: f64, max: f64, levels: u64, quantize: bool) -> Self {
        let step = (max - min) / (levels.max(2) - 1) as f64;
        Quantizer {
            min: min as f32,
            max: max as f32,
            step: step as f32,
            quantize,
        }
    }

    /// Clamp to the physical range, then quantise.
    #[inline(always)]
    pub fn apply(&self, x: f32) -> f32 {
        let c = x.clamp(self.min, self.max);
        if self.quantize {
            self.step * round_half_even(c / self.step)
        } else {
            c
        }
    }

    /// True when `x` lies outside the physical range (and the hardware would clip it).
    #[inline]
    pub fn clips(&self, x: f32) -> bool {
        x < self.min || x > self.max
    }

    /// Distance from `x` (already clamped) to the nearest rounding boundary of the grid, in value units;
    /// `f32::INFINITY` when quantisation is off. Tests use it to tell a real disagreement from a float tie.
    pub fn boundary_margin(&self, x: f64) -> f64 {
        if !self.quantize {
            return f64::INFINITY;
        }
        let s = self.step as f64;
        let u = x / s;
        ((u - u.floor()) - 0.5).abs() * s
    }
}

/// Round half to even for |x| < 2²²: adding and subtracting 1.5·2²³ leaves the sum with an ulp of exactly 1, so the
/// FPU's own round-to-nearest-even does the rounding. Same result as `f32::round_ties_even`, but branch-free and
/// vectorisable on any x86-64 (the std call becomes a libm `rintf` without SSE4.1). Bit widths are capped at 20,
/// so every clamped `x / step` is far inside the range.
#[inline(always)]
pub fn round_half_even(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (x + MAGIC) - MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_to_even_on_the_query_grid() {
        // 16 levels on [0, 1]: step 1/15. 0.5/15 lies halfway between level 0 and 1 -> 0 (even);
        // 1.5/15 between 1 and 2 -> 2; 2.5/15 -> 2.
        let q = Quantizer::new(0.0, 1.0, 16, true);
        let s = 1.0f32 / 15.0;
        assert_eq!(q.apply(0.5 * s), 0.0);
        assert_eq!(q.apply(1.5 * s), 2.0 * s);
        assert_eq!(q.apply(2.5 * s), 2.0 * s);
        assert_eq!(q.apply(-0.3), 0.0);
        assert_eq!(q.apply(1.7), q.step * 15.0);
    }

    #[test]
    fn magic_rounding_equals_round_ties_even() {
        let mut x = -70_000.0f32;
        while x < 70_000.0 {
            for y in [x, x + 0.5, x + 0.25, x - 0.5] {
                assert_eq!(round_half_even(y), y.round_ties_even(), "{y}");
            }
            x += 0.5 + 1.0 / 64.0;
        }
    }

    #[test]
    fn key_grid_has_eight_levels_of_0_9_over_7() {
        let k = Quantizer::new(0.0, 0.9, 8, true);
        // The step is computed in f64 and cast once, as PyTorch casts the reference's Python-float step.
        let s = (0.9f64 / 7.0) as f32;
        assert_eq!(k.step, s);
        assert_eq!(k.apply(0.2), s * 2.0); // 0.2 / 0.12857 = 1.556 -> 2
        assert_eq!(k.apply(0.95), s * 7.0);
    }

    #[test]
    fn output_grid_is_anchored_at_zero_like_the_reference() {
        // 32 levels on [-1, 1]: step 2/31; 1.0 / step = 15.5 -> 16 (even) -> 32/31.
        let o = Quantizer::new(-1.0, 1.0, 32, true);
        assert_eq!(o.apply(1.0), o.step * 16.0);
        assert_eq!(o.apply(0.0), 0.0);
        assert_eq!(o.apply(-1.0), -o.step * 16.0);
    }

    #[test]
    fn clamp_only_when_quantisation_is_off() {
        let q = Quantizer::new(0.0, 0.9, 8, false);
        assert_eq!(q.apply(0.3333), 0.3333);
        assert_eq!(q.apply(1.2), 0.9);
        assert!(q.clips(-0.01) && !q.clips(0.9));
    }
}
