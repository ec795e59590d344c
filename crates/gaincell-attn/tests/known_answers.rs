//! Known answers, worked out by hand from docs/chip-model.md, for one head of 2 tokens × 4 dims on every preset.
//!
//! Nothing here calls the library to compute an expected value (no `Quantizer`, no `CellCurve::eval`, no
//! `reference`): every number is plain arithmetic in this file, and each is also checked against a literal
//! computed independently (python3, f64) so a slip in the arithmetic cannot hide. The inputs are chosen so that
//! the half-to-even rounding of the PWM and the DACs decides several levels (each tie verified to be exact in f32:
//! e.g. 0.3f32 / (1/15 as f32) is exactly 4.5, while 0.5f32 / (1/15 as f32) is 7.4999995, not a tie, so 0.5 is not
//! used), inputs lie beyond the physical ranges and must be clamped, one score is negative (φ = 0, so that key's
//! value must not contribute), and one score lies outside the causal window.
//!
//! Inputs (physical units: q as a fraction of T_max, k and v in volts), token 0 then token 1:
//!
//! ```text
//! q0 = [1.3, 1.0, 0.3, 0.1]            q1 = [1.0, 1.0, 1/6, −0.2]
//! k0 = [1.2, 0.9, 4.5·s_k, 0.5·s_k]    k1 = [0.0, 1·s_k, 5·s_k, 0.9]
//! v0 = [−0.1, 0.9, 1.5·s_k, 4·s_k]     v1 = [7·s_k, 3·s_k, 4.5·s_k, 1.2]        (s_k = 0.9/7)
//! ```
//!
//! Quantisation (paper presets), x ↦ step·round_half_even(clamp(x)/step), the division done in f32:
//!
//! ```text
//! query, 16 levels on [0, 1], step 1/15:
//!   q0: 1.3 → clamp 1 → 15;  1.0 → 14.999999 → 15;  0.3 → 4.5 exactly → 4 (even; half-up would give 5);
//!       0.1 → 1.5 exactly → 2 (even; truncation would give 1)                     q0 = [15, 15, 4, 2]/15
//!   q1: 1.0 → 15;  1.0 → 15;  1/6 → 2.5 exactly → 2 (even);  −0.2 → clamp 0 → 0  q1 = [15, 15, 2, 0]/15
//! key and value, 8 levels on [0, 0.9], step 0.9/7; weight w(n) = n·0.9/7 − 0.45:
//!   k0: 1.2 → clamp 0.9 → 7 (unclamped it would be 9);  0.9 → 6.9999995 → 7;  4.5 exactly → 4 (even);
//!       0.5 exactly → 0 (even)                                  k0 levels [7, 7, 4, 0]
//!   k1: levels [0, 1, 5, 7] (0.9 → 6.9999995 → 7)
//!   v0: −0.1 → clamp 0 → 0 (unclamped −0.78 → −1);  0.9 → 7;  1.5 exactly → 2 (even);  4 → 4
//!                                                               v0 levels [0, 7, 2, 4]
//!   v1: levels [7, 3, 4, 7] (4.5 → 4, 1.2 → clamp → 7); they never count: φ11 = 0 below.
//! w(0) = −0.45, w(1) = −0.3214286, w(2) = −0.1928571, w(4) = +0.0642857, w(5) = +0.1928571, w(7) = +0.45
//! ```
//!
//! With the presets' window (1024) and sub-tiles of 64 rows both tokens share ring-buffer tile 0, so each output
//! is a single readout: out_t = Q_o(clamp(Σ_j φ_tj·f(d_tj·w_vj) / 40, −1, 1)), Q_o the 32-level counter with step
//! 2/31 anchored at zero. Leakage: d = exp(−1.6e-4·age), age t − j; only (t, j) = (1, 0) has age 1.

mod common;

use common::*;
use gaincell_attn::{softmax_forward, GainCellParams, KvArray, Shape};

const TOL: f64 = 1e-5;
/// Key and value DAC step, 8 levels on [0, 0.9] V.
const SK: f64 = 0.9 / 7.0;
/// Output counter step, 32 levels on [−1, 1].
const SO: f64 = 2.0 / 31.0;
/// exp(−1.6e-4 · 1): leakage after one token.
const D1: f64 = 0.999_840_012_799_317_3;

const SHAPE: Shape = Shape {
    heads: 1,
    t: 2,
    d: 4,
};

/// Signed weight of DAC level `n`: n·0.9/7 − 0.45.
fn w(n: f64) -> f64 {
    n * SK - 0.45
}

/// The linear ("intermediate") cell: f(y) = 19.3·y.
fn lin(y: f64) -> f64 {
    19.3 * y
}

/// The gain cell's cubic (docs/chip-model.md#cell-curve), transcribed here rather than taken from the library.
fn cubic(y: f64) -> f64 {
    0.52136 + 13.6123 * y - 2.62045 * y * y + 46.0548 * y * y * y
}

fn clamp01(x: f64) -> f64 {
    x.clamp(0.0, 1.0)
}

/// A hand-computed value, checked against the literal python printed for the same formula.
fn lit(hand: f64, python: f64) -> f64 {
    assert!(
        (hand - python).abs() <= 1e-12 * python.abs().max(1.0),
        "hand arithmetic {hand} disagrees with the independent value {python}"
    );
    hand
}

/// The output counter's reading of a pre-quantisation value `pre` (already inside [−1, 1]): `level`·2/31, after
/// checking that `pre / step` lies within 0.4 of `level`, i.e. rounds to it with a margin far beyond float error.
fn counted(pre: f64, level: i32) -> f64 {
    let u = pre / SO;
    assert!(
        (u - level as f64).abs() < 0.4,
        "{pre} is {u} steps: it does not round to level {level}"
    );
    level as f64 * SO
}

/// A DAC input exactly halfway between key/value levels n and n + 1 (exact in f32: checked in the module doc).
fn between(n: f64) -> f32 {
    ((n + 0.5) * 0.9 / 7.0) as f32
}

fn level(n: f64) -> f32 {
    (n * 0.9 / 7.0) as f32
}

fn known_inputs() -> Inputs {
    #[rustfmt::skip]
    let (q, k, v) = (
        vec![1.3, 1.0, 0.3, 0.1,
             1.0, 1.0, 1.0 / 6.0, -0.2],
        vec![1.2, 0.9, between(4.0), between(0.0),
             0.0, level(1.0), level(5.0), 0.9],
        vec![-0.1, 0.9, between(1.0), level(4.0),
             level(7.0), level(3.0), between(4.0), 1.2],
    );
    Inputs {
        shape: SHAPE,
        q,
        k,
        v,
    }
}

/// Expected probes `[t][j]` row-major (S01 and φ01 are 0: key 1 is in the future of query 0) and outputs `[t][d]`.
struct Expected {
    scores: [f64; 4],
    phi: [f64; 4],
    out: [f64; 8],
}

fn check_gain_cell(name: &str, want: &Expected) {
    let c = chip(name, "[geometry]\nhead_dim = 4");
    assert_eq!(
        (c.geometry.window, c.geometry.tile_rows),
        (1024, 64),
        "{name}: the hand computation assumes one sub-tile"
    );
    let x = known_inputs();
    let f = fast(&c, &x);
    for (what, got, want) in [
        ("S", &f.scores[..], &want.scores[..]),
        ("phi", &f.phi[..], &want.phi[..]),
        ("out (parallel)", &f.out[..], &want.out[..]),
    ] {
        let e = max_rel(got, want);
        assert!(
            e <= TOL,
            "{name}: {what} = {got:?}, expected {want:?} (relative error {e:e})"
        );
    }

    // Incremental form: one KvArray, a step per token.
    let p = GainCellParams::new(&c).unwrap();
    let mut arrays = KvArray::new(&p);
    let mut out = vec![0.0f32; SHAPE.len()];
    for (t, o) in out.chunks_exact_mut(SHAPE.d).enumerate() {
        let row = t * SHAPE.d..(t + 1) * SHAPE.d;
        arrays
            .step(&x.q[row.clone()], &x.k[row.clone()], &x.v[row], o)
            .unwrap();
    }
    let e = max_rel(&out, &want.out);
    assert!(
        e <= TOL,
        "{name}: out (incremental) = {out:?}, expected {:?} (relative error {e:e})",
        want.out
    );
}

#[test]
fn paper_linear() {
    // Quantised levels (module doc): q0 = [15, 15, 4, 2]/15, q1 = [15, 15, 2, 0]/15, keys k0 [7, 7, 4, 0],
    // k1 [0, 1, 5, 7], values v0 [0, 7, 2, 4]. f(y) = 19.3·y, so f(d·w) = 19.3·d·w.
    //
    // S00 = 19.3·(1·0.45 + 1·0.45 + 4/15·0.0642857 + 2/15·(−0.45)) = 19.3·0.857143 = 16.542857 (age 0, d = 1)
    let s00 = lit(
        19.3 * (1.0 * w(7.0) + 1.0 * w(7.0) + 4.0 / 15.0 * w(4.0) + 2.0 / 15.0 * w(0.0)),
        16.542857142857148,
    );
    // S10 = 19.3·d·(1·0.45 + 1·0.45 + 2/15·0.0642857 + 0·(−0.45)), d = exp(−1.6e-4) = 0.99984001
    //     = 19.3·0.99984001·0.908571 = 17.532623
    let s10 = lit(
        19.3 * (1.0 * D1 * w(7.0)
            + 1.0 * D1 * w(7.0)
            + 2.0 / 15.0 * D1 * w(4.0)
            + 0.0 * D1 * w(0.0)),
        17.532623127298663,
    );
    // S11 = 19.3·(1·(−0.45) + 1·(−0.3214286) + 2/15·0.1928571 + 0·0.45) = −14.392286 < 0 (were the −0.2 query not
    // clamped to 0, its level −3 would add 19.3·(−3/15)·0.45 = −1.737 more).
    let s11 = lit(
        19.3 * (1.0 * w(0.0) + 1.0 * w(1.0) + 2.0 / 15.0 * w(5.0) + 0.0 * w(7.0)),
        -14.392285714285714,
    );
    // φ = clamp(S/80, 0, 1): 0.20678571, 0.21915779, 0 (negative score).
    let (p00, p10, p11) = (
        lit(clamp01(s00 / 80.0), 0.20678571428571435),
        lit(clamp01(s10 / 80.0), 0.2191577890912333),
        0.0,
    );
    assert!(s11 < 0.0 && clamp01(s11 / 80.0) == p11);
    // out0 = Q_o(φ00·19.3·w_v0 / 40), w_v0 = [−0.45, 0.45, −0.1928571, 0.0642857]:
    //   pre = [−0.04489835, +0.04489835, −0.01924215, +0.00641405] = [−0.696, +0.696, −0.298, +0.099] steps of 2/31
    //   → nearest levels [−1, 1, 0, 0].
    let pre0 = [
        lit(p00 * lin(w(0.0)) / 40.0, -0.04489834821428573),
        lit(p00 * lin(w(7.0)) / 40.0, 0.04489834821428574),
        lit(p00 * lin(w(2.0)) / 40.0, -0.019242149234693882),
        lit(p00 * lin(w(4.0)) / 40.0, 0.006414049744897966),
    ];
    // out1 = Q_o((φ10·19.3·d·w_v0 + φ11·19.3·w_v1) / 40) with φ11 = 0:
    //   pre = [−0.04757702, +0.04757702, −0.02039015, +0.00679672] = [−0.737, +0.737, −0.316, +0.105] steps
    //   → levels [−1, 1, 0, 0].
    let pre1 = [
        lit(p10 * lin(D1 * w(0.0)) / 40.0, -0.04757702202389185),
        lit(p10 * lin(D1 * w(7.0)) / 40.0, 0.04757702202389186),
        lit(p10 * lin(D1 * w(2.0)) / 40.0, -0.02039015229595364),
        lit(p10 * lin(D1 * w(4.0)) / 40.0, 0.006796717431984555),
    ];
    check_gain_cell(
        "paper-linear",
        &Expected {
            scores: [s00, 0.0, s10, s11],
            phi: [p00, 0.0, p10, p11],
            out: [
                counted(pre0[0], -1),
                counted(pre0[1], 1),
                counted(pre0[2], 0),
                counted(pre0[3], 0),
                counted(pre1[0], -1),
                counted(pre1[1], 1),
                counted(pre1[2], 0),
                counted(pre1[3], 0),
            ],
        },
    );
}

#[test]
fn paper_nonlinear() {
    // Same quantised levels as paper-linear; f(y) = 0.52136 + 13.6123y − 2.62045y² + 46.0548y³, and leakage scales
    // the stored weight: f(d·w), i.e. term i is scaled by d^i (d = 1 at age 0).
    //   f(w(7)) = f(0.45) = 0.52136 + 6.125535 − 0.530641 + 4.196744 = 10.312998
    //   f(w(4)) = f(0.0642857) = 0.52136 + 0.875076 − 0.010829 + 0.012235 = 1.397842
    //   f(w(0)) = f(−0.45) = 0.52136 − 6.125535 − 0.530641 − 4.196744 = −10.331560
    //   f(w(1)) = f(−0.3214286) = 0.52136 − 4.375382 − 0.270735 − 1.529426 = −5.654183
    //   f(w(5)) = f(0.1928571) = 0.52136 + 2.625229 − 0.097465 + 0.330356 = 3.379481
    // S00 = 1·10.312998 + 1·10.312998 + 4/15·1.397842 + 2/15·(−10.331560) = 19.621212
    let s00 = lit(
        1.0 * cubic(w(7.0))
            + 1.0 * cubic(w(7.0))
            + 4.0 / 15.0 * cubic(w(4.0))
            + 2.0 / 15.0 * cubic(w(0.0)),
        19.621211725889218,
    );
    for (y, fy) in [
        (w(7.0), 10.312998),
        (w(4.0), 1.397842),
        (w(0.0), -10.331560),
        (w(1.0), -5.654183),
        (w(5.0), 3.379481),
        (w(2.0), -2.531690),
        (D1 * w(7.0), 10.310173),
        (D1 * w(4.0), 1.397700),
    ] {
        assert!((cubic(y) - fy).abs() < 1e-6, "f({y}) = {}", cubic(y));
    }
    // S10 = 1·f(d·0.45) + 1·f(d·0.45) + 2/15·f(d·0.0642857) + 0·f(d·(−0.45)), d = 0.99984001:
    //   f(0.44992801) = 10.310173, f(0.06427543) = 1.397700 → S10 = 20.806707
    let s10 = lit(
        1.0 * cubic(D1 * w(7.0))
            + 1.0 * cubic(D1 * w(7.0))
            + 2.0 / 15.0 * cubic(D1 * w(4.0))
            + 0.0 * cubic(D1 * w(0.0)),
        20.80670668637502,
    );
    // S11 = 1·(−10.331560) + 1·(−5.654183) + 2/15·3.379481 + 0·10.312998 = −15.535145 < 0
    let s11 = lit(
        1.0 * cubic(w(0.0))
            + 1.0 * cubic(w(1.0))
            + 2.0 / 15.0 * cubic(w(5.0))
            + 0.0 * cubic(w(7.0)),
        -15.535145313683184,
    );
    // φ: 0.24526515, 0.26008383, 0.
    let (p00, p10, p11) = (
        lit(clamp01(s00 / 80.0), 0.24526514657361523),
        lit(clamp01(s10 / 80.0), 0.26008383357968773),
        0.0,
    );
    assert!(s11 < 0.0 && clamp01(s11 / 80.0) == p11);
    // out0 = Q_o(φ00·f(w_v0) / 40), f(w_v0) = [f(−0.45), f(0.45), f(−0.1928571), f(0.0642857)]
    //   = [−10.331560, 10.312998, −2.531690, 1.397842] (f(−0.1928571) = 0.52136 − 2.625229 − 0.097465 − 0.330356):
    //   pre = [−0.06334929, +0.06323547, −0.01552338, +0.00857105] = [−0.982, +0.980, −0.241, +0.133] steps
    //   → levels [−1, 1, 0, 0] (the cubic's asymmetry f(−y) ≠ −f(y) shows in the first two).
    let pre0 = [
        lit(p00 * cubic(w(0.0)) / 40.0, -0.06334928806373605),
        lit(p00 * cubic(w(7.0)) / 40.0, 0.06323547123956143),
        lit(p00 * cubic(w(2.0)) / 40.0, -0.01552338233726853),
        lit(p00 * cubic(w(4.0)) / 40.0, 0.008571050663484606),
    ];
    // out1 = Q_o(φ10·f(d·w_v0) / 40) (φ11 = 0, so v1 and the constant term of its cells do not count):
    //   pre = [−0.06715622, +0.06703774, −0.01645733, +0.00908798] = [−1.041, +1.039, −0.255, +0.141] steps
    //   → levels [−1, 1, 0, 0].
    let pre1 = [
        lit(p10 * cubic(D1 * w(0.0)) / 40.0, -0.06715622089589054),
        lit(p10 * cubic(D1 * w(7.0)) / 40.0, 0.06703773519297174),
        lit(p10 * cubic(D1 * w(2.0)) / 40.0, -0.01645732588632374),
        lit(p10 * cubic(D1 * w(4.0)) / 40.0, 0.009087979448024456),
    ];
    check_gain_cell(
        "paper-nonlinear",
        &Expected {
            scores: [s00, 0.0, s10, s11],
            phi: [p00, 0.0, p10, p11],
            out: [
                counted(pre0[0], -1),
                counted(pre0[1], 1),
                counted(pre0[2], 0),
                counted(pre0[3], 0),
                counted(pre1[0], -1),
                counted(pre1[1], 1),
                counted(pre1[2], 0),
                counted(pre1[3], 0),
            ],
        },
    );
}

// The ideal presets: clamp only (no quantisation, no leakage), so the raw inputs count:
//   q0 = [1.3 → 1, 1.0, 0.3, 0.1], q1 = [1.0, 1.0, 1/6, −0.2 → 0]
//   w_k0 = [1.2 → 0.9, 0.9, 4.5·0.9/7, 0.5·0.9/7] − 0.45 = [0.45, 0.45, 0.1285714, −0.3857143]
//   w_k1 = [0, 0.9/7, 5·0.9/7, 0.9] − 0.45 = [−0.45, −0.3214286, 0.1928571, 0.45]
//   w_v0 = [−0.1 → 0, 0.9, 1.5·0.9/7, 4·0.9/7] − 0.45 = [−0.45, 0.45, −0.2571429, 0.0642857]
//   and the output is clamp(Σ/40, −1, 1) without counting.
const W_K0: [f64; 4] = [0.9 - 0.45, 0.9 - 0.45, 4.5 * SK - 0.45, 0.5 * SK - 0.45];
const W_K1: [f64; 4] = [0.0 - 0.45, SK - 0.45, 5.0 * SK - 0.45, 0.9 - 0.45];
const W_V0: [f64; 4] = [0.0 - 0.45, 0.9 - 0.45, 1.5 * SK - 0.45, 4.0 * SK - 0.45];

#[test]
fn paper_linear_ideal() {
    // S00 = 19.3·(1·0.45 + 1·0.45 + 0.3·0.1285714 + 0.1·(−0.3857143)) = 19.3·0.9 = 17.37
    let s00 = lit(
        19.3 * (1.0 * W_K0[0] + 1.0 * W_K0[1] + 0.3 * W_K0[2] + 0.1 * W_K0[3]),
        17.37,
    );
    // S10 = 19.3·(1·0.45 + 1·0.45 + 1/6·0.1285714 + 0·(−0.3857143)) = 19.3·0.9214286 = 17.783571 (no leakage)
    let s10 = lit(
        19.3 * (1.0 * W_K0[0] + 1.0 * W_K0[1] + 1.0 / 6.0 * W_K0[2] + 0.0 * W_K0[3]),
        17.78357142857143,
    );
    // S11 = 19.3·(−0.45 − 0.3214286 + 1/6·0.1928571 + 0·0.45) = −14.268214 < 0
    let s11 = lit(
        19.3 * (1.0 * W_K1[0] + 1.0 * W_K1[1] + 1.0 / 6.0 * W_K1[2] + 0.0 * W_K1[3]),
        -14.268214285714285,
    );
    // φ: 0.217125, 0.22229464, 0.
    let (p00, p10, p11) = (
        lit(clamp01(s00 / 80.0), 0.217125),
        lit(clamp01(s10 / 80.0), 0.2222946428571429),
        0.0,
    );
    assert!(s11 < 0.0 && clamp01(s11 / 80.0) == p11);
    // out_t = clamp(φ_t0·19.3·w_v0 / 40, −1, 1) (φ11 = 0), all well inside [−1, 1].
    let out = [
        lit(p00 * lin(W_V0[0]) / 40.0, -0.04714326562500001),
        lit(p00 * lin(W_V0[1]) / 40.0, 0.04714326562500001),
        lit(p00 * lin(W_V0[2]) / 40.0, -0.02693900892857143),
        lit(p00 * lin(W_V0[3]) / 40.0, 0.006734752232142862),
        lit(p10 * lin(W_V0[0]) / 40.0, -0.048265724330357154),
        lit(p10 * lin(W_V0[1]) / 40.0, 0.048265724330357154),
        lit(p10 * lin(W_V0[2]) / 40.0, -0.027580413903061228),
        lit(p10 * lin(W_V0[3]) / 40.0, 0.006895103475765313),
    ];
    check_gain_cell(
        "paper-linear-ideal",
        &Expected {
            scores: [s00, 0.0, s10, s11],
            phi: [p00, 0.0, p10, p11],
            out,
        },
    );
}

#[test]
fn paper_nonlinear_ideal() {
    // f(0.45) = 10.312998, f(0.1285714) = 0.52136 + 1.750153 − 0.043318 + 0.097883 = 2.326078,
    // f(−0.3857143) = 0.52136 − 5.250459 − 0.389859 − 2.642847 = −7.761805
    // S00 = 1·10.312998 + 1·10.312998 + 0.3·2.326078 + 0.1·(−7.761805) = 20.547638
    let s00 = lit(
        1.0 * cubic(W_K0[0]) + 1.0 * cubic(W_K0[1]) + 0.3 * cubic(W_K0[2]) + 0.1 * cubic(W_K0[3]),
        20.547638117405246,
    );
    // S10 = 1·10.312998 + 1·10.312998 + 1/6·2.326078 + 0·(−7.761805) = 21.013675
    let s10 = lit(
        1.0 * cubic(W_K0[0])
            + 1.0 * cubic(W_K0[1])
            + 1.0 / 6.0 * cubic(W_K0[2])
            + 0.0 * cubic(W_K0[3]),
        21.013674791350827,
    );
    // S11 = f(−0.45) + f(−0.3214286) + 1/6·f(0.1928571) + 0·f(0.45)
    //     = −10.331560 − 5.654183 + 1/6·3.379481 = −15.422496 < 0
    let s11 = lit(
        1.0 * cubic(W_K1[0])
            + 1.0 * cubic(W_K1[1])
            + 1.0 / 6.0 * cubic(W_K1[2])
            + 0.0 * cubic(W_K1[3]),
        -15.422495963568995,
    );
    // φ: 0.25684548, 0.26267093, 0.
    let (p00, p10, p11) = (
        lit(clamp01(s00 / 80.0), 0.25684547646756556),
        lit(clamp01(s10 / 80.0), 0.2626709348918853),
        0.0,
    );
    assert!(s11 < 0.0 && clamp01(s11 / 80.0) == p11);
    // out_t = clamp(φ_t0·f(w_v0) / 40, −1, 1), f(w_v0) = [−10.331560, 10.312998, f(−0.2571429), 1.397842]
    // with f(−0.2571429) = 0.52136 − 3.500306 − 0.173271 − 0.783066 = −3.935282.
    let out = [
        lit(p00 * cubic(W_V0[0]) / 40.0, -0.06634035982657523),
        lit(p00 * cubic(W_V0[1]) / 40.0, 0.06622116907793624),
        lit(p00 * cubic(W_V0[2]) / 40.0, -0.0252689855115255),
        lit(p00 * cubic(W_V0[3]) / 40.0, 0.008975737573172046),
        lit(p10 * cubic(W_V0[0]) / 40.0, -0.06784501162476615),
        lit(p10 * cubic(W_V0[1]) / 40.0, 0.06772311753573623),
        lit(p10 * cubic(W_V0[2]) / 40.0, -0.025842106076258198),
        lit(p10 * cubic(W_V0[3]) / 40.0, 0.009179314396012144),
    ];
    check_gain_cell(
        "paper-nonlinear-ideal",
        &Expected {
            scores: [s00, 0.0, s10, s11],
            phi: [p00, 0.0, p10, p11],
            out,
        },
    );
}

#[test]
fn software_softmax() {
    let c = chip("software", "[geometry]\nhead_dim = 4");
    assert_eq!(c.geometry.window, 0, "software is full causal");
    assert!(
        GainCellParams::new(&c).is_err(),
        "software is not a gain-cell chip"
    );
    let x = known_inputs();
    // Softmax sees the raw inputs (no clamp, no quantisation), scale 1/√4 = 0.5:
    //   k0 = [1.2, 0.9, 4.5·0.9/7, 0.5·0.9/7] = [1.2, 0.9, 0.5785714, 0.0642857]
    //   k1 = [0, 0.9/7, 5·0.9/7, 0.9]         = [0, 0.1285714, 0.6428571, 0.9]
    //   v0 = [−0.1, 0.9, 1.5·0.9/7, 4·0.9/7]  = [−0.1, 0.9, 0.1928571, 0.5142857]
    //   v1 = [7·0.9/7, 3·0.9/7, 4.5·0.9/7, 1.2] = [0.9, 0.3857143, 0.5785714, 1.2]
    let k0 = [1.2, 0.9, 4.5 * SK, 0.5 * SK];
    let k1 = [0.0, SK, 5.0 * SK, 0.9];
    let v0 = [-0.1, 0.9, 1.5 * SK, 4.0 * SK];
    let v1 = [7.0 * SK, 3.0 * SK, 4.5 * SK, 1.2];
    // Token 0 attends only to itself: weight exp(0)/exp(0) = 1, out0 = v0 (the logit
    // s00 = 0.5·(1.3·1.2 + 1·0.9 + 0.3·0.5785714 + 0.1·0.0642857) = 1.32 does not matter).
    let s00 = lit(
        0.5 * (1.3 * k0[0] + 1.0 * k0[1] + 0.3 * k0[2] + 0.1 * k0[3]),
        1.3199999999999998,
    );
    assert!(s00.is_finite());
    // Token 1: s10 = 0.5·(1·1.2 + 1·0.9 + 1/6·0.5785714 + (−0.2)·0.0642857) = 1.0917857
    //          s11 = 0.5·(1·0 + 1·0.1285714 + 1/6·0.6428571 + (−0.2)·0.9) = 0.0278571
    let s10 = lit(
        0.5 * (1.0 * k0[0] + 1.0 * k0[1] + 1.0 / 6.0 * k0[2] + -0.2 * k0[3]),
        1.0917857142857144,
    );
    let s11 = lit(
        0.5 * (1.0 * k1[0] + 1.0 * k1[1] + 1.0 / 6.0 * k1[2] + -0.2 * k1[3]),
        0.027857142857142858,
    );
    // p10 = e^s10 / (e^s10 + e^s11) = 1 / (1 + e^(s11 − s10)) = 1 / (1 + e^−1.0639286) = 0.74344058, p11 = 0.25655942
    let p10 = lit(1.0 / (1.0 + (s11 - s10).exp()), 0.7434405843345417);
    let p11 = lit(1.0 - p10, 0.25655941566545826);
    let want = [
        v0[0],
        v0[1],
        v0[2],
        v0[3],
        lit(p10 * v0[0] + p11 * v1[0], 0.15655941566545828),
        lit(p10 * v0[1] + p11 * v1[1], 0.7680551576577643),
        lit(p10 * v0[2] + p11 * v1[2], 0.2918157746138196),
        lit(p10 * v0[3] + p11 * v1[3], 0.6902121707420286),
    ];
    let mut out = vec![0.0f32; SHAPE.len()];
    softmax_forward(SHAPE, c.geometry.window, &x.q, &x.k, &x.v, &mut out).unwrap();
    let e = max_rel(&out, &want);
    assert!(
        e <= TOL,
        "software: out = {out:?}, expected {want:?} (relative error {e:e})"
    );
}

/// The ties this file relies on are exact in f32 (the kernels divide in f32 before rounding).
#[test]
fn the_chosen_ties_are_exact_in_f32() {
    let sq = (1.0f64 / 15.0) as f32;
    let sk = (0.9f64 / 7.0) as f32;
    assert_eq!(0.3f32 / sq, 4.5);
    assert_eq!(0.1f32 / sq, 1.5);
    assert_eq!((1.0f32 / 6.0) / sq, 2.5);
    assert_eq!(between(4.0) / sk, 4.5);
    assert_eq!(between(0.0) / sk, 0.5);
    assert_eq!(between(1.0) / sk, 1.5);
    // And 0.5 is not one: 0.5 / (1/15) lands just below 7.5, which is why q = 0.5 is not used.
    assert!(0.5f32 / sq < 7.5);
}
