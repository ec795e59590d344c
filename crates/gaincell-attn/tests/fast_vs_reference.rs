//! The fast kernels equal the scalar f64 reference within 1e-5 relative, on random and adversarial inputs.

mod common;

use common::*;
use gaincell_attn::{reference, softmax_forward, Shape};
use gaincell_chip::ChipConfig;

const TOL: f64 = 1e-5;

fn check(chip: &ChipConfig, shape: Shape, seed: u64, adversarial: bool) {
    let x = inputs(shape, seed, adversarial);
    let f = fast(chip, &x);
    let r = reference::gain_cell(chip, shape, &x.q, &x.k, &x.v);
    // A score is a signed sum of D currents: its float error is relative to the size of those terms.
    let es = max_rel_to_scale(&f.scores, &r.scores, &r.score_scale);
    let ep = max_rel(&f.phi, &r.phi);
    assert!(es <= TOL, "{}: scores differ by {es:e}", chip.name);
    assert!(ep <= TOL, "{}: phi differs by {ep:e}", chip.name);
    let step = chip.output.quantizer().step as f64;
    let ties = assert_out_close(&f.out, &r.out, &r.margin, step, TOL, 1e-5);
    eprintln!(
        "{} {:?}: scores {es:.1e}, phi {ep:.1e}, readout ties {ties}",
        chip.name, shape
    );
}

#[test]
fn paper_presets_random_and_adversarial() {
    for name in [
        "paper-linear",
        "paper-nonlinear",
        "paper-linear-ideal",
        "paper-nonlinear-ideal",
    ] {
        let c = ChipConfig::load(name).unwrap();
        check(&c, Shape::new(3, 200, 64), 1, false);
        check(&c, Shape::new(3, 130, 64), 2, true);
    }
}

#[test]
fn window_wraps_inside_sub_tiles() {
    // W = 128 (two 64-row tiles), T = 300 > W and not a multiple of 64: queries see keys from both ends of the
    // ring buffer in one tile. A larger λ makes leakage visible.
    let c = chip(
        "paper-nonlinear",
        "[geometry]\nwindow = 128\n[leakage]\nlambda_per_token = 2e-3",
    );
    check(&c, Shape::new(3, 300, 64), 3, true);
    let c = chip("paper-linear", "[geometry]\nwindow = 192\ntile_rows = 32");
    check(&c, Shape::new(2, 333, 64), 4, false);
    let c = chip(
        "paper-nonlinear",
        "[geometry]\nwindow = 96\ntile_rows = 32\nhead_dim = 16",
    );
    check(&c, Shape::new(3, 250, 16), 5, true);
    // A window shorter than the kernel's 64-query block: one block spans several wraps of the ring buffer.
    let c = chip(
        "paper-nonlinear",
        "[geometry]\nwindow = 32\ntile_rows = 16\n[leakage]\nlambda_per_token = 1e-3",
    );
    check(&c, Shape::new(3, 150, 64), 11, true);
}

#[test]
fn tiling_off_reads_the_window_once() {
    let c = chip(
        "paper-nonlinear",
        "[geometry]\nwindow = 128\ntiling = false",
    );
    check(&c, Shape::new(2, 200, 64), 6, false);
}

#[test]
fn other_cell_curves() {
    for curve in [
        "kind = \"power\"\nexponent = 3",
        "kind = \"power\"\nexponent = 5",
        "kind = \"sigmoid\"",
        "kind = \"exp\"",
    ] {
        let c = chip(
            "paper-nonlinear",
            &format!("[geometry]\nwindow = 128\n[cell]\n{curve}"),
        );
        check(&c, Shape::new(2, 150, 64), 7, false);
        let c = chip("paper-nonlinear-ideal", &format!("[cell]\n{curve}"));
        check(&c, Shape::new(1, 100, 64), 8, false);
    }
}

#[test]
fn extreme_leakage_takes_the_per_element_path() {
    let c = chip(
        "paper-nonlinear",
        "[geometry]\nwindow = 128\n[leakage]\nlambda_per_token = 0.5",
    );
    check(&c, Shape::new(1, 140, 64), 9, false);
}

#[test]
fn softmax_matches_reference_full_and_windowed() {
    for (window, t) in [(0, 200), (64, 200), (100, 257), (1024, 70)] {
        let shape = Shape::new(3, t, 64);
        let x = inputs(shape, 10 + t as u64, false);
        let mut out = vec![0.0; shape.len()];
        softmax_forward(shape, window, &x.q, &x.k, &x.v, &mut out).unwrap();
        let want = reference::softmax(shape, window, &x.q, &x.k, &x.v);
        let e = max_rel(&out, &want);
        assert!(e <= TOL, "softmax window {window}: {e:e}");
    }
}

/// Softmax attention's gradients in f64 from the definition, one head at a time: P = softmax(QKᵀ/√D + mask),
/// dV = Pᵀ·G, dS = P ⊙ (G·Vᵀ − rowsum(P ⊙ G·Vᵀ)), dQ = dS·K/√D, dK = dSᵀ·Q/√D.
fn softmax_grads_f64(shape: Shape, window: usize, x: &Inputs, g: &[f32]) -> [Vec<f64>; 3] {
    let (n, d) = (shape.t, shape.d);
    let scale = 1.0 / (d as f64).sqrt();
    let at = |a: &[f32], h: usize, i: usize, c: usize| a[(h * n + i) * d + c] as f64;
    let mut out = [0; 3].map(|_| vec![0.0f64; shape.len()]);
    for h in 0..shape.heads {
        for i in 0..n {
            let live = |j: usize| j <= i && (window == 0 || i - j < window);
            let s: Vec<f64> = (0..n)
                .map(|j| {
                    if live(j) {
                        (0..d)
                            .map(|c| at(&x.q, h, i, c) * at(&x.k, h, j, c))
                            .sum::<f64>()
                            * scale
                    } else {
                        f64::NEG_INFINITY
                    }
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
            let p: Vec<f64> = s.iter().map(|v| (v - m).exp() / z).collect();
            let dp: Vec<f64> = (0..n)
                .map(|j| (0..d).map(|c| at(g, h, i, c) * at(&x.v, h, j, c)).sum())
                .collect();
            let rs: f64 = (0..n).map(|j| p[j] * dp[j]).sum();
            for j in 0..n {
                let ds = p[j] * (dp[j] - rs) * scale;
                for c in 0..d {
                    out[0][(h * n + i) * d + c] += ds * at(&x.k, h, j, c);
                    out[1][(h * n + j) * d + c] += ds * at(&x.q, h, i, c);
                    out[2][(h * n + j) * d + c] += p[j] * at(g, h, i, c);
                }
            }
        }
    }
    out
}

#[test]
fn softmax_backward_matches_the_f64_definition_full_and_windowed() {
    for (window, t, d) in [(0, 150, 16), (40, 150, 8), (64, 131, 64), (0, 1, 8)] {
        let shape = Shape::new(2, t, d);
        let x = inputs(shape, 20 + t as u64, false);
        let mut o = vec![0.0; shape.len()];
        softmax_forward(shape, window, &x.q, &x.k, &x.v, &mut o).unwrap();
        let g: Vec<f32> = inputs(shape, 99, false).v.iter().map(|v| v - 0.4).collect();
        let got =
            gaincell_attn::softmax_backward(shape, window, [&x.q, &x.k, &x.v, &o, &g]).unwrap();
        let want = softmax_grads_f64(shape, window, &x, &g);
        for (name, (a, b)) in ["dq", "dk", "dv"].iter().zip(got.iter().zip(&want)) {
            let scale = b.iter().map(|v| v.abs()).fold(1e-3, f64::max);
            let e = a
                .iter()
                .zip(b)
                .map(|(x, y)| (*x as f64 - y).abs())
                .fold(0.0, f64::max)
                / scale;
            assert!(e <= 1e-4, "{name}, window {window}, T {t}, D {d}: {e:e}");
        }
    }
}
