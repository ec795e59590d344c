//! Slow, obviously-correct transcriptions of docs/chip-model.md in f64, one loop per formula. Tests compare the fast
//! kernels against these; nothing else should call them (they are O(T²·D) with no blocking and one thread).

use gaincell_chip::draw::{Source, Stream};
use gaincell_chip::ChipConfig;

use crate::{Shape, Site};

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
    gain_cell_at(chip, Site::default(), shape, q, k, v)
}

/// The draws of docs/chip-model.md#noise-and-variation, spelled out coordinate by coordinate.
struct Draws {
    v: gaincell_chip::Variation,
    n: gaincell_chip::Noise,
    layer: u64,
    seq: u64,
    head: u64,
    kv: u64,
}

impl Draws {
    fn stream(seed: u64, src: Source, path: &[u64]) -> Stream {
        path.iter().fold(Stream::new(seed, src), |s, &x| s.at(x))
    }

    /// Draw `i` of the stream at `path`.
    fn z(seed: u64, src: Source, path: &[u64], i: u64) -> f64 {
        Self::stream(seed, src, path).normal(i) as f64
    }

    /// The first (`second` false) or second normal of pair `m` of the stream at `path`.
    fn zp(seed: u64, src: Source, path: &[u64], m: u64, second: bool) -> f64 {
        let (a, b) = Self::stream(seed, src, path).pair(m);
        (if second { b } else { a }) as f64
    }

    /// Signed weight of stored value `w0 = Q(x) − offset` of position `j` in slot `slot`, dim `c`, K (0) or V
    /// (1) array, its `writes`-th write.
    fn weight(&self, w0: f64, array: u64, slot: u64, j: u64, writes: u64, c: u64) -> f64 {
        let write = self.n.write_sigma_v
            * Self::zp(
                self.n.seed,
                Source::Write,
                &[self.layer, self.seq, self.kv, j, writes],
                c,
                array == 1,
            );
        let cell = [self.layer, self.kv, array, slot];
        let gain =
            1.0 + self.v.cell_gain_sigma * Self::zp(self.v.seed, Source::Cell, &cell, c, false);
        let offset =
            self.v.cell_offset_sigma_v * Self::zp(self.v.seed, Source::Cell, &cell, c, true);
        gain * (w0 + write) + offset
    }

    /// `(gain, threshold)` of the converter `i` (a key slot) or counter `i` (tile · D + dim).
    fn converter(&self, src: Source, i: u64) -> (f64, f64) {
        let (sg, st) = match src {
            Source::Converter => (self.v.c2p_gain_sigma, self.v.c2p_threshold_sigma_ua),
            _ => (self.v.counter_gain_sigma, self.v.counter_threshold_sigma_ua),
        };
        let path = [self.layer, self.kv];
        (
            1.0 + sg * Self::zp(self.v.seed, src, &path, i, false),
            st * Self::zp(self.v.seed, src, &path, i, true),
        )
    }

    fn read(&self, src: Source, sigma: f64, t: u64, i: u64) -> f64 {
        if sigma == 0.0 {
            return 0.0;
        }
        sigma * Self::z(self.n.seed, src, &[self.layer, self.seq, self.head, t], i)
    }
}

/// [`gain_cell`] of the heads at `site`, with the chip's variation, noise and refresh.
pub fn gain_cell_at(
    chip: &ChipConfig,
    site: Site,
    shape: Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
) -> Reference {
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
    let refresh = chip.refresh_period();
    for h in 0..heads {
        let at = |x: &[f32], quant: &gaincell_chip::Quantizer, i: usize, c: usize| {
            quant.apply(x[(h * n + i) * dim + c]) as f64
        };
        let hs = site.head(h, heads);
        let dr = Draws {
            v: chip.variation.clone(),
            n: chip.noise.clone(),
            layer: hs.layer as u64,
            seq: hs.seq as u64,
            head: hs.head as u64,
            kv: hs.kv_head as u64,
        };
        // Age since the column's last write, and how many writes it had before (refresh rewrites it).
        let age_writes = |t: usize, j: usize| match refresh {
            Some(p) => ((t - j) % p, (t - j) / p),
            None => (t - j, 0),
        };
        let weight = |x: &[f32],
                      quant: &gaincell_chip::Quantizer,
                      array: u64,
                      t: usize,
                      j: usize,
                      c: usize| {
            let w0 = at(x, quant, j, c) - off;
            dr.weight(
                w0,
                array,
                (j % w) as u64,
                j as u64,
                age_writes(t, j).1 as u64,
                c as u64,
            )
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
                let decay = (-lambda * age_writes(t, j).0 as f64).exp();
                let terms: Vec<f64> = (0..dim)
                    .map(|c| at(q, &qq, t, c) * f(decay * weight(k, &kq, 0, t, j, c)))
                    .collect();
                let s: f64 = terms.iter().sum::<f64>()
                    + dr.read(
                        Source::ScoreRead,
                        chip.noise.score_read_sigma_ua,
                        t as u64,
                        j as u64,
                    );
                r.score_scale[(h * n + t) * n + j] = terms.iter().map(|x| x.abs()).sum();
                let (g, th) = dr.converter(Source::Converter, (j % w) as u64);
                let phi = ((g * s - th) / chip.readout.s_sat).clamp(0.0, 1.0);
                r.scores[(h * n + t) * n + j] = s;
                r.phi[(h * n + t) * n + j] = phi;
                for (c, a) in acc[tile_of(j)].iter_mut().enumerate() {
                    *a += phi * f(decay * weight(v, &vq, 1, t, j, c));
                }
            }
            let noisy = !(chip.noise.is_off() && chip.variation.is_off());
            for (m, tile) in acc.iter().enumerate() {
                for (c, a) in tile.iter().enumerate() {
                    let i = (m * dim + c) as u64;
                    let a = if noisy {
                        let y = a + dr.read(
                            Source::ValueRead,
                            chip.noise.value_read_sigma_ua,
                            t as u64,
                            i,
                        );
                        let (g, th) = dr.converter(Source::Counter, i);
                        g * y - th
                    } else {
                        *a
                    };
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
