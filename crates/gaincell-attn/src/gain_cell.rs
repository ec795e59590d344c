//! Gain-cell attention, parallel form: a whole sequence per head at once (prefill, training, perplexity).
//!
//! The cell curve is a polynomial in the weight, so with leakage d = r^(t−j) every score is a sum of a few matrix
//! products: `S_tj = g₀·Σ_d q_td + Σ_i g_i·r_i^(t−j)·(Q·W_iᵀ)_tj` with `W_i = (K' − offset)^i`. Within a block of
//! 64 queries starting at t₀ the leakage factor splits as `r^(t−t₀) · r^(t₀−j)`: the first part scales the query
//! rows, the second the key rows, so all powers become **one** product with an inner dimension of (terms × D).
//! The value side works the same way, one product per 64-key sub-tile, and each sub-tile's partial output is
//! clamped and quantised on its own before the digital sum: the exact per-sub-tile readout. Keys are grouped by
//! ring-buffer tile, so when the window wraps inside a tile the two halves are summed before the readout, as
//! the hardware does. Without leakage the whole curve folds into a single product with inner dimension D.

use rayon::prelude::*;

use crate::gemm::{matmul_ab, matmul_abt, Mat};
use crate::kv_array::add_idle_tiles;
use crate::noise::{HeadNoise, HeadSite, Site};
use crate::params::{Basis, Evaluation, GainCellParams, Term, QUERY_BLOCK};
use crate::{AttnError, Shape};

/// Optional dense outputs for inspection: scores S and φ, `[heads, T, T]`, 0 outside the window.
pub struct Probes<'a> {
    pub scores: &'a mut [f32],
    pub phi: &'a mut [f32],
}

/// Per-head inputs after the DACs: quantised queries, and per stored key and value either its signed weight
/// (leakage on: the kernel raises it to each power on the fly) or the whole curve `f(w)` (leakage off).
struct Prepared {
    q: Vec<f32>,
    /// Σ_d q_td, for the curve's constant term.
    q_sum: Vec<f32>,
    /// `[T, D]`.
    k: Vec<f32>,
    v: Vec<f32>,
    /// With noise: where the head sits, its converter tables and read streams.
    noise: Option<(HeadSite, HeadNoise)>,
    /// Refresh with write noise: the weights before any noise, `[T, D]`, to rewrite them (empty otherwise).
    raw: (Vec<f32>, Vec<f32>),
}

fn prepare(
    p: &GainCellParams,
    site: Site,
    shape: Shape,
    h: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
) -> Prepared {
    let (n, d) = (shape.t, shape.d);
    let rows = h * n * d..(h + 1) * n * d;
    let qh: Vec<f32> = q[rows.clone()].iter().map(|&x| p.q.apply(x)).collect();
    let q_sum = qh.chunks_exact(d).map(|r| r.iter().sum()).collect();
    // Leakage off: store the whole curve f(w); on: the weight, raised to each power later.
    let curve_only = p.lambda == 0.0 && matches!(p.eval, Evaluation::Terms { .. });
    let Some(nz) = &p.noise else {
        let (k, v): (Vec<f32>, Vec<f32>) = if curve_only {
            (
                k[rows.clone()]
                    .iter()
                    .map(|&x| p.basis(Basis::Curve, p.key_weight(x)))
                    .collect(),
                v[rows]
                    .iter()
                    .map(|&x| p.basis(Basis::Curve, p.value_weight(x)))
                    .collect(),
            )
        } else {
            (
                k[rows.clone()].iter().map(|&x| p.key_weight(x)).collect(),
                v[rows].iter().map(|&x| p.value_weight(x)).collect(),
            )
        };
        return Prepared {
            q: qh,
            q_sum,
            k,
            v,
            noise: None,
            raw: Default::default(),
        };
    };
    // With noise: the weights, each column perturbed as its first write left it, then the curve if stored whole.
    let at = site.head(h, shape.heads);
    let mut kw: Vec<f32> = k[rows.clone()].iter().map(|&x| p.key_weight(x)).collect();
    let mut vw: Vec<f32> = v[rows].iter().map(|&x| p.value_weight(x)).collect();
    let raw = if p.refresh.is_some() && nz.has_write_noise() {
        (kw.clone(), vw.clone())
    } else {
        Default::default()
    };
    if nz.perturbs_weights() {
        let cells = nz.cells(at, n.min(p.window), d);
        for (j, (kc, vc)) in kw
            .chunks_exact_mut(d)
            .zip(vw.chunks_exact_mut(d))
            .enumerate()
        {
            nz.store(at, &cells, j % p.window, j, 0, kc, vc, None);
        }
    }
    if curve_only {
        for x in kw.iter_mut().chain(vw.iter_mut()) {
            *x = p.basis(Basis::Curve, *x);
        }
    }
    let slots = n.min(p.window);
    let tiles = p.tile_of_slot(slots.max(1) - 1) + 1;
    Prepared {
        q: qh,
        q_sum,
        k: kw,
        v: vw,
        noise: Some((at, nz.head(at, slots, tiles, d))),
        raw,
    }
}

/// `dst = src^e · f` element-wise; the common powers get their own loop so each one vectorises.
#[inline(always)]
fn scaled_power(dst: &mut [f32], src: &[f32], e: u32, f: f32) {
    let pairs = dst.iter_mut().zip(src);
    match e {
        1 => pairs.for_each(|(x, &w)| *x = w * f),
        2 => pairs.for_each(|(x, &w)| *x = w * w * f),
        3 => pairs.for_each(|(x, &w)| *x = w * w * w * f),
        _ => pairs.for_each(|(x, &w)| *x = w.powi(e as i32) * f),
    }
}

/// The power of `w` a term multiplies (leakage on, where every term is a power of the weight).
#[inline(always)]
fn term_power(term: &Term) -> u32 {
    match term.basis {
        Basis::Power(e) => e,
        Basis::Curve => unreachable!("with leakage on, every term is a power of the weight"),
    }
}

/// Reusable per-thread buffers (kept per thread across calls: fresh pages cost more than the work).
#[derive(Default)]
struct Scratch {
    qx: Vec<f32>,
    ks: Vec<f32>,
    vs: Vec<f32>,
    s: Vec<f32>,
    partial: Vec<f32>,
    /// With value-read noise: each query row's read noise of its live tiles, `[nq, tiles·D]`.
    reads: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

fn sized(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// One task's output rows: `out` `[nq, D]`, and optionally its score and φ rows `[nq, T]`.
struct Task<'a> {
    head: usize,
    t0: usize,
    out: &'a mut [f32],
    probes: Option<(&'a mut [f32], &'a mut [f32])>,
}

/// Gain-cell attention of every head of `shape`, from physical q (fraction of T_max), k and v (volts):
/// clamp, DAC/PWM quantisation, both arrays with leakage, φ, per-sub-tile readout and the digital sum.
/// `out` is `[heads, T, D]`; `probes`, when given, receives S and φ.
pub fn gain_cell_forward(
    p: &GainCellParams,
    shape: Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    probes: Option<Probes>,
) -> Result<(), AttnError> {
    gain_cell_forward_at(p, Site::default(), shape, q, k, v, out, probes)
}

/// [`gain_cell_forward`] of the heads at `site` (which keys the chip's noise and variation draws).
#[allow(clippy::too_many_arguments)]
pub fn gain_cell_forward_at(
    p: &GainCellParams,
    site: Site,
    shape: Shape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    probes: Option<Probes>,
) -> Result<(), AttnError> {
    p.check_inputs(shape, q, k, v)?;
    shape.check("out", out.len())?;
    let Shape { heads, t: n, d } = shape;
    if let Some(pr) = &probes {
        for (name, len) in [("scores", pr.scores.len()), ("phi", pr.phi.len())] {
            if len != heads * n * n {
                return Err(AttnError::Shape(format!(
                    "{name} probe holds {len} values, needs heads·T·T = {}",
                    heads * n * n
                )));
            }
        }
    }
    if shape.is_empty() {
        return Ok(());
    }
    let prepared: Vec<Prepared> = (0..heads)
        .into_par_iter()
        .map(|h| prepare(p, site, shape, h, q, k, v))
        .collect();

    let mut tasks: Vec<Task> = Vec::new();
    let out_blocks = out
        .chunks_mut(n * d)
        .flat_map(|o| o.chunks_mut(QUERY_BLOCK * d));
    let starts = (0..heads).flat_map(|h| (0..n).step_by(QUERY_BLOCK).map(move |t0| (h, t0)));
    match probes {
        Some(pr) => {
            let s_blocks = pr
                .scores
                .chunks_mut(n * n)
                .flat_map(|o| o.chunks_mut(QUERY_BLOCK * n));
            let f_blocks = pr
                .phi
                .chunks_mut(n * n)
                .flat_map(|o| o.chunks_mut(QUERY_BLOCK * n));
            for ((((head, t0), out), s), f) in starts.zip(out_blocks).zip(s_blocks).zip(f_blocks) {
                tasks.push(Task {
                    head,
                    t0,
                    out,
                    probes: Some((s, f)),
                });
            }
        }
        None => {
            for ((head, t0), out) in starts.zip(out_blocks) {
                tasks.push(Task {
                    head,
                    t0,
                    out,
                    probes: None,
                });
            }
        }
    }
    // Blocks late in the sequence see the most keys: start them first so the tail of the work is short.
    tasks.sort_by_key(|t| std::cmp::Reverse(t.t0));
    tasks.into_par_iter().for_each(|task| {
        SCRATCH.with_borrow_mut(|scratch| {
            let prep = &prepared[task.head];
            match &p.eval {
                Evaluation::Terms { terms, constant } => {
                    term_block(p, shape, prep, terms, *constant, task, scratch)
                }
                Evaluation::PerElement => per_element_block(p, shape, prep, task),
            }
        })
    });
    Ok(())
}

/// One block of up to 64 queries against every key in its window, by matrix products. The element-wise work
/// around the products is compiled for AVX2/FMA where the CPU has it.
fn term_block(
    p: &GainCellParams,
    shape: Shape,
    prep: &Prepared,
    terms: &[Term],
    constant: f32,
    task: Task,
    sc: &mut Scratch,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features the function is compiled for (checked just above).
            unsafe { term_block_avx2(p, shape, prep, terms, constant, task, sc) };
            return;
        }
    }
    term_block_impl(p, shape, prep, terms, constant, task, sc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn term_block_avx2(
    p: &GainCellParams,
    shape: Shape,
    prep: &Prepared,
    terms: &[Term],
    constant: f32,
    task: Task,
    sc: &mut Scratch,
) {
    term_block_impl(p, shape, prep, terms, constant, task, sc)
}

/// The block's geometry: `nq` queries, `nk` keys, `ntd` basis values per key, `d` dims.
#[derive(Clone, Copy)]
struct Block {
    nq: usize,
    nk: usize,
    ntd: usize,
    d: usize,
}

#[inline(always)]
fn term_block_impl(
    p: &GainCellParams,
    shape: Shape,
    prep: &Prepared,
    terms: &[Term],
    constant: f32,
    task: Task,
    sc: &mut Scratch,
) {
    let (n, d, w) = (shape.t, shape.d, p.window);
    let t0 = task.t0;
    let t1 = (t0 + QUERY_BLOCK).min(n);
    let nq = t1 - t0;
    let jlo = (t0 + 1).saturating_sub(w);
    let jhi = t1 - 1;
    let nk = jhi - jlo + 1;
    let ntd = terms.len() * d;
    let blk = Block { nq, nk, ntd, d };
    let leak = p.lambda != 0.0;

    // Leakage tables: entry (m + QUERY_BLOCK − 1) holds r_i^m for m from −(QUERY_BLOCK−1) to the larger of
    // t₀ − jlo (key side: t₀ − j, under min(w, t₀ + 1)) and QUERY_BLOCK − 1 (query side: t − t₀). Bounded by the
    // keys the block sees, not the window: a window longer than the sequence costs nothing.
    let back = QUERY_BLOCK - 1;
    let reach = (t0 - jlo + 1).max(QUERY_BLOCK) as i64;
    let tables: Vec<Vec<f32>> = if leak {
        terms
            .iter()
            .map(|t| p.decay_table(t.power, -(back as i64), reach))
            .collect()
    } else {
        Vec::new()
    };
    // Per query row and term: g_i·r_i^(t−t₀), the factor that scales query rows and value-side partial sums.
    let mut row_factor = vec![0.0f32; nq * terms.len()];
    for a in 0..nq {
        for (i, term) in terms.iter().enumerate() {
            row_factor[a * terms.len() + i] =
                term.coeff * if leak { tables[i][a + back] } else { 1.0 };
        }
    }

    // Query rows scaled by g_i·r_i^(t−t₀); key and value rows by r_i^(t₀−j).
    let qx = sized(&mut sc.qx, nq * ntd);
    for a in 0..nq {
        let qrow = &prep.q[(t0 + a) * d..(t0 + a + 1) * d];
        for i in 0..terms.len() {
            let f = row_factor[a * terms.len() + i];
            for (x, &y) in qx[a * ntd + i * d..a * ntd + (i + 1) * d]
                .iter_mut()
                .zip(qrow)
            {
                *x = y * f;
            }
        }
    }
    let (ks, vs): (&[f32], &[f32]) = if leak {
        let ks = sized(&mut sc.ks, nk * ntd);
        let vs = sized(&mut sc.vs, nk * ntd);
        for c in 0..nk {
            let j = jlo + c;
            let m = t0 + back - j;
            let (kw, vw) = (&prep.k[j * d..(j + 1) * d], &prep.v[j * d..(j + 1) * d]);
            for (i, (table, term)) in tables.iter().zip(terms).enumerate() {
                let (f, e) = (table[m], term_power(term));
                let seg = c * ntd + i * d..c * ntd + (i + 1) * d;
                scaled_power(&mut ks[seg.clone()], kw, e, f);
                scaled_power(&mut vs[seg], vw, e, f);
            }
        }
        (&sc.ks[..nk * ntd], &sc.vs[..nk * ntd])
    } else {
        // No leakage: one term, f(w) itself, stored by `prepare`.
        (
            &prep.k[jlo * ntd..(jhi + 1) * ntd],
            &prep.v[jlo * ntd..(jhi + 1) * ntd],
        )
    };

    // Scores, window mask, φ (in place).
    let s = sized(&mut sc.s, nq * nk);
    matmul_abt(
        s,
        nk,
        Mat::new(qx, nq, ntd, ntd),
        Mat::new(ks, nk, ntd, ntd),
        false,
    );
    let mut probes = task.probes;
    for a in 0..nq {
        let t = t0 + a;
        let lo = (t + 1).saturating_sub(w).max(jlo) - jlo; // first key column in this row's window
        let hi = t - jlo; // last
        let row = &mut s[a * nk..(a + 1) * nk];
        let c0 = constant * prep.q_sum[t];
        row[..lo].fill(0.0);
        row[hi + 1..].fill(0.0);
        for x in &mut row[lo..=hi] {
            *x += c0;
        }
        if let Some((_, hn)) = &prep.noise {
            hn.add_score_read(t, jlo + lo, &mut row[lo..=hi]);
        }
        if let Some((ps, _)) = probes.as_mut() {
            write_probe_row(&mut ps[a * n..(a + 1) * n], jlo + lo, &row[lo..=hi]);
        }
        match &prep.noise {
            Some((_, hn)) if !hn.conv_gain.is_empty() => {
                // Each key column's converter, over runs of consecutive slots (the ring wraps between runs).
                let (mut c, mut slot) = (lo, (jlo + lo) % w);
                while c <= hi {
                    let len = (hi + 1 - c).min(w - slot);
                    let (g, th) = (
                        &hn.conv_gain[slot..slot + len],
                        &hn.conv_threshold[slot..slot + len],
                    );
                    for ((x, &g), &th) in row[c..c + len].iter_mut().zip(g).zip(th) {
                        *x = ((g * *x - th) * p.inv_s_sat).clamp(0.0, 1.0);
                    }
                    (c, slot) = (c + len, 0);
                }
            }
            _ => {
                for x in &mut row[lo..=hi] {
                    *x = (*x * p.inv_s_sat).clamp(0.0, 1.0);
                }
            }
        }
        if let Some((_, pf)) = probes.as_mut() {
            write_probe_row(&mut pf[a * n..(a + 1) * n], jlo + lo, &row[lo..=hi]);
        }
    }

    // Value side: one readout per ring-buffer tile, its key blocks summed first.
    let partial = sized(&mut sc.partial, nq * ntd);
    let out = task.out;
    out.fill(0.0);
    let group = |b: usize, r: usize, tiles: usize| {
        (b..=jhi / r).step_by(tiles).map(move |bb| {
            (
                (bb * r).max(jlo) - jlo,
                ((bb + 1) * r - 1).min(jhi) - jlo + 1,
            )
        })
    };
    // Value-read noise, drawn a query row at a time over every tile live for it (tiles 0..=tile of slot
    // min(t + 1, w) − 1), before the per-tile loop reads it.
    let stride = p.tiles() * d;
    let mut drawn = [0usize; QUERY_BLOCK];
    let reads: &[f32] = match &prep.noise {
        Some((_, hn)) if hn.value_read.is_some() => {
            let buf = sized(&mut sc.reads, nq * stride);
            for (a, (row, len)) in buf.chunks_exact_mut(stride).zip(&mut drawn).enumerate() {
                let t = t0 + a;
                *len = (p.tile_of_slot((t + 1).min(w) - 1) + 1) * d;
                hn.set_value_reads(t, &mut row[..*len]);
            }
            buf
        }
        _ => &[],
    };
    let tile_noise = |m: usize| {
        prep.noise.as_ref().map(|(_, hn)| TileNoise {
            hn,
            m,
            t0,
            jlo,
            w,
            reads,
            stride,
            drawn: &drawn,
        })
    };
    match p.tile_rows {
        None => read_tile(
            p,
            blk,
            terms.len(),
            constant,
            &row_factor,
            s,
            vs,
            partial,
            out,
            std::iter::once((0, nk)),
            tile_noise(0),
        ),
        Some(r) => {
            let tiles = w / r;
            let (b_first, b_last) = (jlo / r, jhi / r);
            for b in b_first..(b_first + tiles).min(b_last + 1) {
                read_tile(
                    p,
                    blk,
                    terms.len(),
                    constant,
                    &row_factor,
                    s,
                    vs,
                    partial,
                    out,
                    group(b, r, tiles),
                    tile_noise(b % tiles),
                );
            }
        }
    }
}

/// One dense probe row: zeros outside the window, `live` from column `first` on.
fn write_probe_row(row: &mut [f32], first: usize, live: &[f32]) {
    row.fill(0.0);
    row[first..first + live.len()].copy_from_slice(live);
}

/// Read out one sub-tile for every query row of the block: the φ-weighted sum over the tile's key columns
/// `ranges` (one range, or two when the window wraps inside the tile), then clamp, quantise and add to `out`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn read_tile(
    p: &GainCellParams,
    blk: Block,
    nterms: usize,
    constant: f32,
    row_factor: &[f32],
    phi: &[f32],
    vs: &[f32],
    partial: &mut [f32],
    out: &mut [f32],
    ranges: impl Iterator<Item = (usize, usize)> + Clone,
    noise: Option<TileNoise>,
) {
    let Block { nq, nk, ntd, d, .. } = blk;
    let mut first = true;
    let mut phi_sum = [0.0f32; QUERY_BLOCK];
    let all = ranges.clone();
    for (c_lo, c_hi) in ranges {
        let len = c_hi - c_lo;
        matmul_ab(
            partial,
            ntd,
            Mat::new(&phi[c_lo..], nq, len, nk),
            Mat::new(&vs[c_lo * ntd..], len, ntd, ntd),
            !first,
        );
        first = false;
        if constant != 0.0 {
            for (a, acc) in phi_sum.iter_mut().enumerate().take(nq) {
                *acc += phi[a * nk + c_lo..a * nk + c_hi].iter().sum::<f32>();
            }
        }
    }
    if first {
        return;
    }
    let mut y = [0.0f32; 256];
    for a in 0..nq {
        let y = &mut y[..d];
        y.fill(constant * phi_sum[a]);
        let prow = &partial[a * ntd..(a + 1) * ntd];
        for i in 0..nterms {
            let f = row_factor[a * nterms + i];
            for (y, &x) in y.iter_mut().zip(&prow[i * d..(i + 1) * d]) {
                *y += f * x;
            }
        }
        let orow = &mut out[a * d..(a + 1) * d];
        match &noise {
            Some(tn) if tn.live(a, all.clone()) => {
                tn.add_value_read(a, y);
                let hn = tn.hn;
                if hn.count_gain.is_empty() {
                    for (o, &y) in orow.iter_mut().zip(y.iter()) {
                        *o += p.out.apply(y * p.inv_a_sat);
                    }
                } else {
                    let lines = tn.m * d..(tn.m + 1) * d;
                    let (g, th) = (&hn.count_gain[lines.clone()], &hn.count_threshold[lines]);
                    for (((o, &y), &g), &th) in orow.iter_mut().zip(y.iter()).zip(g).zip(th) {
                        *o += p.out.apply((g * y - th) * p.inv_a_sat);
                    }
                }
            }
            _ => {
                for (o, &y) in orow.iter_mut().zip(y.iter()) {
                    *o += p.out.apply(y * p.inv_a_sat);
                }
            }
        }
    }
}

/// The noise of one ring tile `m` read by a block of queries from `t0`, whose key columns start at `jlo`.
struct TileNoise<'a> {
    hn: &'a HeadNoise,
    m: usize,
    t0: usize,
    jlo: usize,
    w: usize,
    /// The block's value-read noise by row (`stride` a row, the first `drawn[a]` of row `a` drawn).
    reads: &'a [f32],
    stride: usize,
    drawn: &'a [usize; QUERY_BLOCK],
}

impl TileNoise<'_> {
    /// Add row `a`'s read noise of this tile's `d` lines to `y`: the drawn row's, or a fresh draw of the same
    /// numbers where the row was not drawn that far.
    #[inline(always)]
    fn add_value_read(&self, a: usize, y: &mut [f32]) {
        let lines = self.m * y.len()..(self.m + 1) * y.len();
        if lines.end <= self.drawn[a] {
            let z = &self.reads[a * self.stride..][lines];
            for (y, z) in y.iter_mut().zip(z) {
                *y += z;
            }
        } else {
            self.hn.add_value_read(self.t0 + a, self.m, y);
        }
    }

    /// Whether row `a` has a key of its window in one of the tile's column ranges (else the tile is idle for it).
    fn live(&self, a: usize, mut ranges: impl Iterator<Item = (usize, usize)>) -> bool {
        let t = self.t0 + a;
        let lo = (t + 1).saturating_sub(self.w).max(self.jlo) - self.jlo;
        let hi = t - self.jlo;
        ranges.any(|(c_lo, c_hi)| c_lo <= hi && c_hi > lo)
    }
}

/// One block of queries with `f(d·w)` evaluated per element (curves without a polynomial form under leakage, and
/// refresh, where a column's age is its time since the last rewrite).
fn per_element_block(p: &GainCellParams, shape: Shape, prep: &Prepared, task: Task) {
    let (n, d, w) = (shape.t, shape.d, p.window);
    let t1 = (task.t0 + QUERY_BLOCK).min(n);
    let mut probes = task.probes;
    // Accumulators only for the sub-tiles this block's keys fall in (slots 0..min(t1, w)); the rest of a
    // window longer than the sequence is idle and read out as zero (`add_idle_tiles`).
    let tiles = p.tile_of_slot(t1.min(w) - 1) + 1;
    let idle = p.tiles() - tiles;
    let mut acc = vec![0.0f32; tiles * d];
    // Refresh with write noise: a rewritten column holds its own write's draws.
    let rewrite = !prep.raw.0.is_empty();
    let (mut kbuf, mut vbuf, mut ybuf) = (vec![0.0f32; d], vec![0.0f32; d], vec![0.0f32; d]);
    let cells = match (&p.noise, &prep.noise) {
        (Some(nz), Some((at, _))) if rewrite => Some(nz.cells(*at, n.min(w), d)),
        _ => None,
    };
    for (a, t) in (task.t0..t1).enumerate() {
        acc.fill(0.0);
        let qrow = &prep.q[t * d..(t + 1) * d];
        if let Some((ps, pf)) = probes.as_mut() {
            ps[a * n..(a + 1) * n].fill(0.0);
            pf[a * n..(a + 1) * n].fill(0.0);
        }
        for j in (t + 1).saturating_sub(w)..=t {
            let (age, writes) = p.age_and_writes(t, j);
            let (krow, vrow) = match (&p.noise, &prep.noise) {
                (Some(nz), Some((at, _))) if rewrite && writes > 0 => {
                    let cells = cells.as_ref().expect("drawn when rewriting");
                    kbuf.copy_from_slice(&prep.raw.0[j * d..(j + 1) * d]);
                    vbuf.copy_from_slice(&prep.raw.1[j * d..(j + 1) * d]);
                    nz.store(*at, cells, j % w, j, writes, &mut kbuf, &mut vbuf, None);
                    (&kbuf[..], &vbuf[..])
                }
                _ => (&prep.k[j * d..(j + 1) * d], &prep.v[j * d..(j + 1) * d]),
            };
            let mut s: f32 = qrow
                .iter()
                .zip(krow)
                .map(|(&x, &y)| x * p.cell_current(y, age))
                .sum();
            let phi = match &prep.noise {
                None => (s * p.inv_s_sat).clamp(0.0, 1.0),
                Some((_, hn)) => {
                    hn.add_score_read(t, j, std::slice::from_mut(&mut s));
                    hn.phi(s, j % w, p.inv_s_sat)
                }
            };
            if let Some((ps, pf)) = probes.as_mut() {
                ps[a * n + j] = s;
                pf[a * n + j] = phi;
            }
            let m = p.tile_of_slot(j % w);
            for (x, &y) in acc[m * d..(m + 1) * d].iter_mut().zip(vrow) {
                *x += phi * p.cell_current(y, age);
            }
        }
        let orow = &mut task.out[a * d..(a + 1) * d];
        orow.fill(0.0);
        let live = p.tile_of_slot((t + 1).min(w) - 1);
        for (m, tile) in acc.chunks_exact(d).enumerate() {
            match &prep.noise {
                Some((_, hn)) if m <= live => {
                    ybuf.copy_from_slice(tile);
                    hn.add_value_read(t, m, &mut ybuf);
                    for (c, (o, &y)) in orow.iter_mut().zip(&ybuf).enumerate() {
                        *o += p.out.apply(hn.counted(y, m, c, d) * p.inv_a_sat);
                    }
                }
                _ => {
                    for (o, &y) in orow.iter_mut().zip(tile) {
                        *o += p.out.apply(y * p.inv_a_sat);
                    }
                }
            }
        }
        add_idle_tiles(p, idle, orow);
    }
}
