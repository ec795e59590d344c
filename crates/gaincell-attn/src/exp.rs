//! A vectorisable f32 exponential for the kernels (the scalar libm call would dominate their run time); also used
//! by the model's fused element-wise ops (GELU, log-softmax).

/// `e^((x − m)·scale)` for every element, in place: softmax's shift and temperature fused into the exponential.
/// Inlined into its caller, which the softmax kernel compiles for AVX2/FMA.
#[inline(always)]
pub fn exp_scaled_in_place(xs: &mut [f32], m: f32, scale: f32) {
    for x in xs.iter_mut() {
        *x = exp1((*x - m) * scale);
    }
}

/// `e^x` to within 4e-7 relative on [−87, 88]; 0 below −87. Branch-free, so loops over it vectorise.
#[inline(always)]
pub fn exp1(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5·2^23: adding and subtracting it rounds to an integer
    let under = x < -87.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    // Taylor coefficients 1/k!, Horner form.
    let p = 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if under {
        0.0
    } else {
        p * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_libm_to_a_few_ulp() {
        let mut xs: Vec<f32> = (0..200_000)
            .map(|i| -87.0 + i as f32 * (175.0 / 200_000.0))
            .collect();
        let want: Vec<f32> = xs.iter().map(|x| x.exp()).collect();
        exp_scaled_in_place(&mut xs, 0.0, 1.0);
        for (got, want) in xs.iter().zip(&want) {
            assert!(((got - want) / want).abs() < 4e-7, "{got} vs {want}");
        }
        let mut tiny = vec![-100.0f32, -1e30, f32::NEG_INFINITY, 0.0];
        exp_scaled_in_place(&mut tiny, 0.0, 1.0);
        assert_eq!(tiny, vec![0.0, 0.0, 0.0, 1.0]);
    }
}
