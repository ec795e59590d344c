//! The backward pass of gain-cell attention for training (docs/surrogate-gradient.md).
//!
//! Every gain-cell chip trains with the gradient of its *linear* counterpart: the cell curve replaced by
//! `f(y) = slope·y` (slope 19.3), the HardSigmoid mask taken from the linear scores, the output clamp mask from the
//! linear per-tile readouts. Quantisers are straight-through; clamps pass gradient only inside their range
//! (inclusive, as `torch.clamp`). For a linear chip this is its exact gradient; for the nonlinear cell it is the
//! surrogate, and by construction the two are identical on the same inputs.
//!
//! With `K̃ = slope·(k̂ − offset)`, `Ṽ = slope·(v̂ − offset)` and leakage `L_tj = e^(−λ(t−j))` in the window:
//! `S = (Q̂ K̃ᵀ) ⊙ L`, `φ = clamp(S/S_sat, 0, 1)`, `P_m = (φ ⊙ L)_m Ṽ_m / A_sat` per sub-tile `m`,
//! `o = Σ_m Q_o(clamp(P_m, −1, 1))`. The backward walks the same 64-query blocks as the forward, one GEMM per
//! product, sequences in parallel.

use rayon::prelude::*;

use crate::gemm::{matmul_ab, matmul_abt, matmul_atb, Mat};
use crate::noise::{HeadNoise, HeadSite, NoiseParams, Site};
use crate::params::{GainCellParams, QUERY_BLOCK};
use crate::{AttnError, Shape};

/// Gradients of the inputs `q, k, v` (physical values after the affine scaling, before clamp and quantiser) for
/// the upstream gradient `grad_out` of the output; all `[heads, T, D]` row-major.
pub struct Gradients {
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
}

/// The surrogate backward of [`crate::gain_cell_forward`] (see the module documentation).
pub fn gain_cell_backward(
    p: &GainCellParams,
    shape: Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    grad_out: &[f32],
) -> Result<Gradients, AttnError> {
    gain_cell_backward_at(p, Site::default(), shape, q, k, v, grad_out)
}

/// The surrogate backward of [`crate::gain_cell_forward_at`]: with noise, the linear surrogate sees the same
/// draws as the forward (perturbed weights, noisy scores and readouts, the converters' gains and thresholds), and
/// the chain rule runs through the gains. Under refresh with write noise every read of a column uses its first
/// write's draws (the rewrites' draws differ per query, which the blocked products cannot express).
pub fn gain_cell_backward_at(
    p: &GainCellParams,
    site: Site,
    shape: Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    grad_out: &[f32],
) -> Result<Gradients, AttnError> {
    p.check_inputs(shape, q, k, v)?;
    shape.check("grad_out", grad_out.len())?;
    let (n, d) = (shape.t, shape.d);
    let per = n * d;
    let mut g = Gradients {
        q: vec![0.0; shape.len()],
        k: vec![0.0; shape.len()],
        v: vec![0.0; shape.len()],
    };
    if shape.is_empty() {
        return Ok(g);
    }
    g.q.par_chunks_mut(per)
        .zip(g.k.par_chunks_mut(per))
        .zip(g.v.par_chunks_mut(per))
        .enumerate()
        .for_each(|(h, ((gq, gk), gv))| {
            let r = h * per..(h + 1) * per;
            let noise = p.noise.as_ref().map(|nz| {
                let at = site.head(h, shape.heads);
                let slots = n.min(p.window);
                let tiles = p.tile_of_slot(slots.max(1) - 1) + 1;
                SeqNoise {
                    hn: nz.head(at, slots, tiles, d),
                    nz,
                    at,
                }
            });
            sequence_backward(
                p,
                noise.as_ref(),
                n,
                d,
                [&q[r.clone()], &k[r.clone()], &v[r.clone()], &grad_out[r]],
                gq,
                gk,
                gv,
            );
        });
    Ok(g)
}

/// The noise of one head's sequence, as the forward drew it.
struct SeqNoise<'a> {
    hn: HeadNoise,
    nz: &'a NoiseParams,
    at: HeadSite,
}

/// One head's sequence: `inputs` = q, k, v, grad_out, each `[T, D]`.
#[allow(clippy::too_many_arguments)]
fn sequence_backward(
    p: &GainCellParams,
    noise: Option<&SeqNoise>,
    n: usize,
    d: usize,
    inputs: [&[f32]; 4],
    gq: &mut [f32],
    gk: &mut [f32],
    gv: &mut [f32],
) {
    let [q, k, v, go] = inputs;
    let slope = p.curve.linear_slope() as f32;
    let w = p.window;
    // The quantised inputs, and the signed, scaled weights of the linear cell.
    let qh: Vec<f32> = q.iter().map(|&x| p.q.apply(x)).collect();
    let (kt, vt, cell_gain) = match noise {
        None => (
            k.iter().map(|&x| slope * p.key_weight(x)).collect(),
            v.iter().map(|&x| slope * p.value_weight(x)).collect(),
            None,
        ),
        Some(nz) => {
            // The weights as the forward stored them, and each cell's gain for the chain rule.
            let mut kw: Vec<f32> = k.iter().map(|&x| p.key_weight(x)).collect();
            let mut vw: Vec<f32> = v.iter().map(|&x| p.value_weight(x)).collect();
            let (mut gk, mut gv) = (vec![1.0f32; n * d], vec![1.0f32; n * d]);
            let cells = nz.nz.cells(nz.at, n.min(w), d);
            for j in 0..n {
                let r = j * d..(j + 1) * d;
                nz.nz.store(
                    nz.at,
                    &cells,
                    j % w,
                    j,
                    0,
                    &mut kw[r.clone()],
                    &mut vw[r.clone()],
                    Some((&mut gk[r.clone()], &mut gv[r])),
                );
            }
            let scale = |x: Vec<f32>| -> Vec<f32> { x.into_iter().map(|y| slope * y).collect() };
            (scale(kw), scale(vw), Some((gk, gv)))
        }
    };
    let hn = noise.map(|nz| &nz.hn);
    // Leakage by age, e^(−λ·a) for a in 0..min(T, W) (under refresh, ages stay below its period).
    let decay: Vec<f32> = (0..n.min(w))
        .map(|a| (-p.lambda * a as f64).exp() as f32)
        .collect();
    // Gradients w.r.t. K̃ and Ṽ, accumulated over query blocks.
    let (mut gkt, mut gvt) = (vec![0.0f32; n * d], vec![0.0f32; n * d]);
    let mut sc = Scratch::default();
    for t0 in (0..n).step_by(QUERY_BLOCK) {
        let t1 = (t0 + QUERY_BLOCK).min(n);
        let k0 = (t0 + 1).saturating_sub(w);
        let (rows, nk) = (t1 - t0, t1 - k0);
        sc.resize(rows, nk, d);
        let qb = Mat::new(&qh[t0 * d..t1 * d], rows, d, d);
        // Leakage matrix of the block (0 outside the causal window).
        for (i, t) in (t0..t1).enumerate() {
            for (c, j) in (k0..t1).enumerate() {
                sc.l[i * nk + c] = if j <= t && t - j < w {
                    decay[p.age_and_writes(t, j).0]
                } else {
                    0.0
                };
            }
        }
        // S = (Q̂ K̃ᵀ) ⊙ L; φ ⊙ L, and the HardSigmoid's mask.
        matmul_abt(
            &mut sc.s,
            nk,
            qb,
            Mat::new(&kt[k0 * d..t1 * d], nk, d, d),
            false,
        );
        match hn {
            None => {
                for i in 0..rows * nk {
                    let x = sc.s[i] * sc.l[i] * p.inv_s_sat;
                    sc.pass_s[i] = (0.0..=1.0).contains(&x);
                    sc.phil[i] = x.clamp(0.0, 1.0) * sc.l[i];
                }
            }
            Some(hn) => {
                // The forward's noisy score and its key column's converter; dφ/dS = gain / S_sat.
                for (a, t) in (t0..t1).enumerate() {
                    let lo = (t + 1).saturating_sub(w).max(k0);
                    for (c, j) in (k0..t1).enumerate() {
                        let i = a * nk + c;
                        if j < lo || j > t {
                            sc.pass_s[i] = false;
                            sc.phil[i] = 0.0;
                            sc.conv[i] = 0.0;
                            continue;
                        }
                        let mut s = sc.s[i] * sc.l[i];
                        hn.add_score_read(t, j, std::slice::from_mut(&mut s));
                        let slot = j % w;
                        let g = if hn.conv_gain.is_empty() {
                            1.0
                        } else {
                            hn.conv_gain[slot]
                        };
                        let x = hn.phi_arg(s, slot) * p.inv_s_sat;
                        sc.pass_s[i] = (0.0..=1.0).contains(&x);
                        sc.phil[i] = x.clamp(0.0, 1.0) * sc.l[i];
                        sc.conv[i] = g;
                    }
                }
            }
        }
        sc.g_phil.fill(0.0);
        // Per sub-tile: recompute the readout P_m for its clamp mask, then the gradients of φ⊙L and of Ṽ.
        for (tile, cols) in tile_columns(p, k0, t1) {
            let m = cols.len();
            sc.gather(rows, nk, d, k0, &cols, &vt);
            matmul_ab(
                &mut sc.pm,
                d,
                Mat::new(&sc.phil_m, rows, m, m),
                Mat::new(&sc.v_m, m, d, d),
                false,
            );
            match hn {
                None => {
                    for (i, ga) in sc.ga.iter_mut().enumerate().take(rows * d) {
                        let x = sc.pm[i] * p.inv_a_sat;
                        *ga = if (-1.0..=1.0).contains(&x) {
                            go[t0 * d + i] * p.inv_a_sat
                        } else {
                            0.0
                        };
                    }
                }
                Some(hn) => {
                    // The forward's noisy readout of each row for which the tile is live; dA/dΣ = gain / A_sat.
                    for (a, t) in (t0..t1).enumerate() {
                        let lo = (t + 1).saturating_sub(w);
                        let live = cols.iter().any(|&j| j >= lo && j <= t);
                        let y = &mut sc.pm[a * d..(a + 1) * d];
                        if live {
                            hn.add_value_read(t, tile, y);
                        }
                        for (c, &y) in y.iter().enumerate() {
                            let (x, g) = if live {
                                (hn.counted(y, tile, c, d), hn.counter_gain(tile, c, d))
                            } else {
                                (y, 1.0)
                            };
                            let i = a * d + c;
                            sc.ga[i] = if (-1.0..=1.0).contains(&(x * p.inv_a_sat)) {
                                go[t0 * d + i] * g * p.inv_a_sat
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
            // ∂/∂(φ⊙L)_m = gA · Ṽ_mᵀ; ∂/∂Ṽ_m = (φ⊙L)_mᵀ · gA.
            matmul_abt(
                &mut sc.g_phil_m,
                m,
                Mat::new(&sc.ga, rows, d, d),
                Mat::new(&sc.v_m, m, d, d),
                false,
            );
            matmul_atb(
                &mut sc.g_v_m,
                d,
                Mat::new(&sc.phil_m, rows, m, m),
                Mat::new(&sc.ga, rows, d, d),
                false,
            );
            for (c, &j) in cols.iter().enumerate() {
                for i in 0..rows {
                    sc.g_phil[i * nk + (j - k0)] += sc.g_phil_m[i * m + c];
                }
                for (dst, src) in gvt[j * d..(j + 1) * d]
                    .iter_mut()
                    .zip(&sc.g_v_m[c * d..(c + 1) * d])
                {
                    *dst += src;
                }
            }
        }
        // Back through φ⊙L (×L), the HardSigmoid (mask / S_sat) and S = (Q̂K̃ᵀ)⊙L (×L again).
        match hn {
            None => {
                for i in 0..rows * nk {
                    sc.s[i] = if sc.pass_s[i] {
                        sc.g_phil[i] * sc.l[i] * sc.l[i] * p.inv_s_sat
                    } else {
                        0.0
                    };
                }
            }
            Some(_) => {
                for i in 0..rows * nk {
                    sc.s[i] = if sc.pass_s[i] {
                        sc.g_phil[i] * sc.l[i] * sc.conv[i] * sc.l[i] * p.inv_s_sat
                    } else {
                        0.0
                    };
                }
            }
        }
        let gs = Mat::new(&sc.s, rows, nk, nk);
        matmul_ab(
            &mut gq[t0 * d..t1 * d],
            d,
            gs,
            Mat::new(&kt[k0 * d..t1 * d], nk, d, d),
            false,
        );
        matmul_atb(&mut gkt[k0 * d..t1 * d], d, gs, qb, true);
    }
    // Back through the quantisers (straight through) and their clamps (zero outside the range), and K̃, Ṽ's slope.
    for (i, g) in gq.iter_mut().enumerate() {
        if p.q.clips(q[i]) {
            *g = 0.0;
        }
    }
    for i in 0..n * d {
        gk[i] = if p.k.clips(k[i]) { 0.0 } else { slope * gkt[i] };
        gv[i] = if p.v.clips(v[i]) { 0.0 } else { slope * gvt[i] };
    }
    // Through each cell's gain: w = gain·(Q(x) − offset + write) + offset_cell.
    if let Some((cg_k, cg_v)) = cell_gain {
        for i in 0..n * d {
            gk[i] *= cg_k[i];
            gv[i] *= cg_v[i];
        }
    }
}

/// The key columns in `[k0, t1)` of each sub-tile that has any (ring-buffer slot `j mod W` decides the tile),
/// with the tile's index.
fn tile_columns(p: &GainCellParams, k0: usize, t1: usize) -> Vec<(usize, Vec<usize>)> {
    // Slots j mod W all lie below min(t1, W): only those sub-tiles can hold a column (not the whole window's).
    let mut tiles = vec![Vec::new(); p.tile_of_slot(t1.min(p.window) - 1) + 1];
    for j in k0..t1 {
        tiles[p.tile_of_slot(j % p.window)].push(j);
    }
    tiles
        .into_iter()
        .enumerate()
        .filter(|(_, c)| !c.is_empty())
        .collect()
}

/// Per-block buffers, reused across blocks.
#[derive(Default)]
struct Scratch {
    l: Vec<f32>,
    s: Vec<f32>,
    pass_s: Vec<bool>,
    /// With noise: the converter gain of each score (0 outside the window).
    conv: Vec<f32>,
    phil: Vec<f32>,
    g_phil: Vec<f32>,
    phil_m: Vec<f32>,
    v_m: Vec<f32>,
    pm: Vec<f32>,
    ga: Vec<f32>,
    g_phil_m: Vec<f32>,
    g_v_m: Vec<f32>,
}

impl Scratch {
    fn resize(&mut self, rows: usize, nk: usize, d: usize) {
        for b in [
            &mut self.l,
            &mut self.s,
            &mut self.phil,
            &mut self.g_phil,
            &mut self.conv,
        ] {
            b.resize(rows * nk, 0.0);
        }
        self.pass_s.resize(rows * nk, false);
        for b in [&mut self.pm, &mut self.ga] {
            b.resize(rows * d, 0.0);
        }
    }

    /// Copy the tile's columns `cols` of φ⊙L (`rows × nk`, its first column is key `k0`) and its rows of Ṽ into
    /// contiguous matrices.
    #[allow(clippy::too_many_arguments)]
    fn gather(&mut self, rows: usize, nk: usize, d: usize, k0: usize, cols: &[usize], vt: &[f32]) {
        let m = cols.len();
        self.phil_m.resize(rows * m, 0.0);
        self.v_m.resize(m * d, 0.0);
        self.g_phil_m.resize(rows * m, 0.0);
        self.g_v_m.resize(m * d, 0.0);
        for i in 0..rows {
            for (c, &j) in cols.iter().enumerate() {
                self.phil_m[i * m + c] = self.phil[i * nk + (j - k0)];
            }
        }
        for (c, &j) in cols.iter().enumerate() {
            self.v_m[c * d..(c + 1) * d].copy_from_slice(&vt[j * d..(j + 1) * d]);
        }
    }
}
