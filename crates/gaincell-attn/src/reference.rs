//! Slow, obviously-correct transcriptions of docs/chip-model.md in f64, one loop per formula. Tests compare the fast
//! kernels against these; nothing else should call them (they are O(T²·D) with no blocking and one thread).

use gaincell_chip::ChipConfig;

use crate::Shape;

/// What the reference computes for every head: scores S and φ as dense `[heads, T, T]` (0 outside the window),
/// the read-out output `[heads, T, D]`, and for each output value the smallest distance of any of its sub-tile
/// readouts to a rounding boundary of the output counter (so a test can tell a genuine disagreement from a float
/// tie; `INFINITY` when the output is not quantised). `score_scale` is Σ_d |q_td·f(d·w_jd)| for each score: the
/// size of the terms a float dot product sums, against which its rounding error is measured.
pub struct Reference {
    pub scores: Vec<f64>,
    pub score_scale: Vec<f64>,
    pub phi: Vec<f64>,
    pub out: Vec<f64>,
    pub margin: Vec<f64>,
}

/// docs/chip-model.md from clamp and quantise to the digital sum (no affine scaling), literally.
pub fn gain_cell(chip: &ChipConfig, shape: Shape, q: &[f32], k: &[f32], v: &[f32]) -> Reference {
    let Shape {
        heads,
        t: n,
        d: dim,
    } = shape;
    let (qq, kq, vq, oq) = (
        chip.query.quantizer(),
        chip.key.quantizer(),
        chip.value.quantizer(),
        chip.output.quantizer(),
    );
    let w = chip.geometry.window;
    let lambda = chip.lambda();
    let off = chip.weight_offset;
    let f = |y: f64| chip.cell.eval(y);
    let tiles = if chip.geometry.tiling {
        w / chip.geometry.tile_rows
    } else {
        1
    };
    let tile_of = |j: usize| {
        if chip.geometry.tiling {
            (j % w) / chip.geometry.tile_rows
        } else {
            0
        }
    };

    let mut r = Reference {
        scores: vec![0.0; heads * n * n],
        score_scale: vec![0.0; heads * n * n],
        phi: vec![0.0; heads * n * n],
        out: vec![0.0; heads * n * dim],
        margin: vec![f64::INFINITY; heads * n * dim],
    };
    for h in 0..heads {
        let at = |x: &[f32], quant: &gaincell_chip::Quantizer, i: usize, c: usize| {
            quant.apply(x[(h * n + i) * dim + c]) as f64
        };
        for t in 0..n {
            // Sums only for the sub-tiles that can hold one of this query's keys (slots below min(t + 1, W));
            // the window's other sub-tiles are idle, read out as zero below.
            let used = if chip.geometry.tiling {
                ((t + 1).min(w) - 1) / chip.geometry.tile_rows + 1
            } else {
                1
            };
            let mut acc = vec![vec![0.0f64; dim]; used];
            for j in 0..=t {
                if j + w <= t {
                    continue; // older than the window: S = 0, φ = 0
                }
                let decay = (-lambda * (t - j) as f64).exp();
                let terms: Vec<f64> = (0..dim)
                    .map(|c| at(q, &qq, t, c) * f(decay * (at(k, &kq, j, c) - off)))
                    .collect();
                let s: f64 = terms.iter().sum();
                r.score_scale[(h * n + t) * n + j] = terms.iter().map(|x| x.abs()).sum();
                let phi = (s / chip.readout.s_sat).clamp(0.0, 1.0);
                r.scores[(h * n + t) * n + j] = s;
                r.phi[(h * n + t) * n + j] = phi;
                for (c, a) in acc[tile_of(j)].iter_mut().enumerate() {
                    *a += phi * f(decay * (at(v, &vq, j, c) - off));
                }
            }
            for tile in &acc {
                for (c, a) in tile.iter().enumerate() {
                    let x = (a / chip.readout.a_sat).clamp(chip.output.min, chip.output.max);
                    let idx = (h * n + t) * dim + c;
                    r.out[idx] += oq.apply(x as f32) as f64;
                    r.margin[idx] = r.margin[idx].min(oq.boundary_margin(x));
                }
            }
            // Each idle sub-tile reads out zero, as a tile of zeros above would.
            let idle = tiles - used;
            if idle > 0 {
                let x = 0.0f64.clamp(chip.output.min, chip.output.max);
                let (y, m) = (oq.apply(x as f32) as f64, oq.boundary_margin(x));
                for c in 0..dim {
                    let idx = (h * n + t) * dim + c;
                    if y != 0.0 {
                        for _ in 0..idle {
                            r.out[idx] += y;
                        }
                    }
                    r.margin[idx] = r.margin[idx].min(m);
                }
            }
        }
    }
    r
}

/// Softmax attention with scale 1/√D, causal, over the last `window` tokens (0 = unlimited): `[heads, T, D]`.
pub fn softmax(shape: Shape, window: usize, q: &[f32], k: &[f32], v: &[f32]) -> Vec<f64> {
    let Shape {
        heads,
        t: n,
        d: dim,
    } = shape;
    let scale = 1.0 / (dim as f64).sqrt();
    let mut out = vec![0.0; heads * n * dim];
    for h in 0..heads {
        let row = |x: &[f32], i: usize| -> Vec<f64> {
            x[(h * n + i) * dim..(h * n + i + 1) * dim]
                .iter()
                .map(|&a| a as f64)
                .collect()
        };
        for t in 0..n {
            let lo = if window == 0 {
                0
            } else {
                (t + 1).saturating_sub(window)
            };
            let qt = row(q, t);
            let s: Vec<f64> = (lo..=t)
                .map(|j| row(k, j).iter().zip(&qt).map(|(a, b)| a * b).sum::<f64>() * scale)
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for (j, p) in (lo..=t).zip(&e) {
                for (c, vj) in row(v, j).iter().enumerate() {
                    out[(h * n + t) * dim + c] += p / z * vj;
                }
            }
        }
    }
    out
}
