//! The training gradient of gain-cell attention: central finite differences of the f64 reference forward against
//! the analytic backward (linear chip, quantisation off), and the nonlinear cell's surrogate equal to the linear
//! model's gradient, exactly.

mod common;

use common::*;
use gaincell_attn::{gain_cell_backward, GainCellParams, Shape};
use gaincell_chip::ChipConfig;
use rand::{Rng, SeedableRng};

const NO_QUANT: &str = "[query]\nquantize = false\n[key]\nquantize = false\n[value]\nquantize = false\n[output]\nquantize = false";

/// Σ_td w_td · out_td of the linear hardware attention without quantisation, in f64 throughout (the library's
/// reference rounds its outputs to f32, too coarse for difference quotients): docs/surrogate-gradient.md#the-formulas.
fn loss(chip: &ChipConfig, shape: Shape, q: &[f32], k: &[f32], v: &[f32], w: &[f64]) -> f64 {
    let Shape { heads, t: n, d } = shape;
    let slope = chip.cell.linear_slope();
    let (win, lambda, off) = (chip.geometry.window, chip.lambda(), chip.weight_offset);
    let tile = |j: usize| {
        if chip.geometry.tiling {
            (j % win) / chip.geometry.tile_rows
        } else {
            0
        }
    };
    let tiles = if chip.geometry.tiling {
        win / chip.geometry.tile_rows
    } else {
        1
    };
    let clamp = |x: f32, c: &gaincell_chip::QuantizerConfig| (x as f64).clamp(c.min, c.max);
    let mut total = 0.0;
    for h in 0..heads {
        let at = |x: &[f32], i: usize, c: usize| x[(h * n + i) * d + c];
        for t in 0..n {
            let mut acc = vec![vec![0.0f64; d]; tiles];
            for j in (t + 1).saturating_sub(win)..=t {
                let decay = (-lambda * (t - j) as f64).exp();
                let s: f64 = (0..d)
                    .map(|c| {
                        clamp(at(q, t, c), &chip.query)
                            * slope
                            * decay
                            * (clamp(at(k, j, c), &chip.key) - off)
                    })
                    .sum();
                let phi = (s / chip.readout.s_sat).clamp(0.0, 1.0);
                for (c, a) in acc[tile(j)].iter_mut().enumerate() {
                    *a += phi * slope * decay * (clamp(at(v, j, c), &chip.value) - off);
                }
            }
            for a in &acc {
                for (c, x) in a.iter().enumerate() {
                    total += w[(h * n + t) * d + c] * (x / chip.readout.a_sat).clamp(-1.0, 1.0);
                }
            }
        }
    }
    total
}

/// Check `n_checks` random coordinates of each input against central differences. Coordinates whose
/// difference quotient changes with the step (a clamp's kink within h) are skipped and counted; few may be.
fn check(chip: &ChipConfig, shape: Shape, seed: u64, n_checks: usize) {
    let x = inputs(shape, seed, false);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 1);
    let w: Vec<f64> = (0..shape.len()).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let wf: Vec<f32> = w.iter().map(|&x| x as f32).collect();
    let p = GainCellParams::new(chip).unwrap();
    let g = gain_cell_backward(&p, shape, &x.q, &x.k, &x.v, &wf).unwrap();

    let (mut checked, mut skipped, mut worst) = (0, 0, 0.0f64);
    for (name, which) in [("q", 0), ("k", 1), ("v", 2)] {
        let analytic = [&g.q, &g.k, &g.v][which];
        let scale = analytic.iter().fold(0.0f32, |a, &b| a.max(b.abs())) as f64;
        assert!(scale > 0.0, "{name}: all gradients are zero");
        for _ in 0..n_checks {
            let i = rng.gen_range(0..shape.len());
            let fd = |h: f32| {
                let mut ins = [x.q.clone(), x.k.clone(), x.v.clone()];
                let x0 = ins[which][i];
                ins[which][i] = x0 + h;
                let up = loss(chip, shape, &ins[0], &ins[1], &ins[2], &w);
                let h_up = ins[which][i] as f64 - x0 as f64; // the step f32 actually took
                ins[which][i] = x0 - h;
                let down = loss(chip, shape, &ins[0], &ins[1], &ins[2], &w);
                let h_down = x0 as f64 - ins[which][i] as f64;
                (up - down) / (h_up + h_down)
            };
            // Without quantisation the loss is piecewise linear in one coordinate (S, φ and the readouts are each
            // linear in it); two steps that disagree mean a clamp's kink lies within reach.
            let (d1, d2) = (fd(2e-4), fd(1e-4));
            if (d1 - d2).abs() > 1e-5 * d1.abs().max(1e-2 * scale) {
                skipped += 1;
                continue;
            }
            let a = analytic[i] as f64;
            let err = (a - d2).abs() / d2.abs().max(1e-2 * scale);
            worst = worst.max(err);
            assert!(
                err < 1e-3,
                "{name}[{i}]: analytic {a} vs finite difference {d2} (relative {err:.2e})"
            );
            checked += 1;
        }
    }
    eprintln!("{checked} coordinates checked (worst relative error {worst:.1e}), {skipped} skipped at kinks");
    assert!(
        skipped * 10 <= checked,
        "{skipped} of {} coordinates sat on a kink",
        checked + skipped
    );
}

#[test]
fn linear_chip_gradient_matches_finite_differences() {
    // Leakage, a window shorter than the sequence (wrap), 16-row tiles (the clamp per tile), D = 8.
    let c = chip(
        "paper-linear",
        &format!("[geometry]\nhead_dim = 8\nwindow = 48\ntile_rows = 16\n[leakage]\nenabled = true\nlambda_per_token = 0.01\n{NO_QUANT}"),
    );
    check(&c, Shape::new(2, 100, 8), 11, 60);
}

#[test]
fn linear_chip_gradient_without_window_wrap_or_leakage() {
    let c = chip(
        "paper-linear",
        &format!("[geometry]\nhead_dim = 8\nwindow = 128\ntile_rows = 64\n[leakage]\nenabled = false\n{NO_QUANT}"),
    );
    check(&c, Shape::new(1, 90, 8), 5, 60);
}

#[test]
fn untiled_linear_chip_gradient_matches_finite_differences() {
    let c = chip(
        "paper-linear",
        &format!(
            "[geometry]\nhead_dim = 8\nwindow = 32\ntile_rows = 32\ntiling = false\n{NO_QUANT}"
        ),
    );
    check(&c, Shape::new(1, 70, 8), 3, 60);
}

#[test]
fn nonlinear_surrogate_equals_the_linear_gradient_exactly() {
    for geometry in [
        "[geometry]\nwindow = 128\ntile_rows = 32",
        "[geometry]\nwindow = 64\ntiling = false",
    ] {
        let lin = chip("paper-linear", geometry);
        let non = chip("paper-nonlinear", geometry);
        assert_ne!(lin.cell, non.cell);
        let shape = Shape::new(3, 200, 64);
        let x = inputs(shape, 21, true);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let go: Vec<f32> = (0..shape.len()).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let gl = gain_cell_backward(
            &GainCellParams::new(&lin).unwrap(),
            shape,
            &x.q,
            &x.k,
            &x.v,
            &go,
        )
        .unwrap();
        let gn = gain_cell_backward(
            &GainCellParams::new(&non).unwrap(),
            shape,
            &x.q,
            &x.k,
            &x.v,
            &go,
        )
        .unwrap();
        assert_eq!(gl.q, gn.q);
        assert_eq!(gl.k, gn.k);
        assert_eq!(gl.v, gn.v);
        assert!(gl.q.iter().any(|&g| g != 0.0) && gl.v.iter().any(|&g| g != 0.0));
    }
}

#[test]
fn clamped_inputs_get_no_gradient_and_quantisers_pass_it_straight_through() {
    let c = chip("paper-linear", "[geometry]\nwindow = 64");
    let shape = Shape::new(1, 64, 64);
    let mut x = inputs(shape, 8, false);
    let (q_quant, k_quant) = (c.query.quantizer(), c.key.quantizer());
    x.q[0] = 1.5; // above the PWM range
    x.k[5] = -0.2; // below the DAC range
    let go = vec![1.0f32; shape.len()];
    let p = GainCellParams::new(&c).unwrap();
    let g = gain_cell_backward(&p, shape, &x.q, &x.k, &x.v, &go).unwrap();
    assert_eq!(g.q[0], 0.0);
    assert_eq!(g.k[5], 0.0);
    // Straight through: moving an input within its quantisation cell leaves the gradient unchanged.
    let mut y = inputs(shape, 8, false);
    y.q[0] = 1.5;
    y.k[5] = -0.2;
    for i in 0..shape.len() {
        let (qa, ka) = (q_quant.apply(y.q[i]), k_quant.apply(y.k[i]));
        y.q[i] = if q_quant.clips(y.q[i]) {
            y.q[i]
        } else {
            qa + 0.2 * q_quant.step * (i % 2) as f32
        };
        y.k[i] = if k_quant.clips(y.k[i]) {
            y.k[i]
        } else {
            ka.max(1e-3)
        };
    }
    let g2 = gain_cell_backward(&p, shape, &y.q, &y.k, &x.v, &go).unwrap();
    assert_eq!(g.v, g2.v);
}
