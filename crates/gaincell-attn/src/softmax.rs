//! Softmax attention, the software reference: causal, full or over a sliding window, blocked by 64 queries.

use rayon::prelude::*;

use crate::exp::exp_scaled_in_place;
use crate::gemm::{matmul_ab, matmul_abt, matmul_atb, Mat};
use crate::params::QUERY_BLOCK;
use crate::{AttnError, Shape};

/// `softmax(q·kᵀ/√D + causal window mask)·v` for every head; `window` 0 means full causal. `out` is `[heads, T, D]`.
pub fn softmax_forward(
    shape: Shape,
    window: usize,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) -> Result<(), AttnError> {
    for (name, x) in [("q", q), ("k", k), ("v", v)] {
        shape.check(name, x.len())?;
    }
    shape.check("out", out.len())?;
    let Shape { t: n, d, .. } = shape;
    if shape.is_empty() {
        return Ok(());
    }
    let w = if window == 0 { n } else { window };
    let job = Job {
        shape,
        w,
        scale: 1.0 / (d as f32).sqrt(),
        q,
        k,
        v,
    };
    let mut tasks: Vec<(usize, usize, &mut [f32])> = out
        .chunks_mut(n * d)
        .enumerate()
        .flat_map(|(h, o)| {
            o.chunks_mut(QUERY_BLOCK * d)
                .enumerate()
                .map(move |(b, ob)| (h, b * QUERY_BLOCK, ob))
        })
        .collect();
    // Blocks late in the sequence see the most keys: start them first so the tail of the work is short.
    tasks.sort_by_key(|t| std::cmp::Reverse(t.1));
    tasks
        .into_par_iter()
        .for_each(|(h, t0, o)| S_BUF.with_borrow_mut(|s| softmax_block(&job, h, t0, o, s)));
    Ok(())
}

thread_local! {
    /// Scores of one block, kept per thread across calls (fresh pages cost more than the work).
    static S_BUF: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What every block of one call shares.
struct Job<'a> {
    shape: Shape,
    w: usize,
    scale: f32,
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
}

/// One block of up to 64 queries: scores, exact softmax per row, then the weighted sum of values. The
/// element-wise work is compiled for AVX2/FMA where the CPU has it.
fn softmax_block(job: &Job, h: usize, t0: usize, o: &mut [f32], s_buf: &mut Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features the function is compiled for (checked just above).
            unsafe { softmax_block_avx2(job, h, t0, o, s_buf) };
            return;
        }
    }
    softmax_block_impl(job, h, t0, o, s_buf)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax_block_avx2(job: &Job, h: usize, t0: usize, o: &mut [f32], s_buf: &mut Vec<f32>) {
    softmax_block_impl(job, h, t0, o, s_buf)
}

#[inline(always)]
fn softmax_block_impl(job: &Job, h: usize, t0: usize, o: &mut [f32], s_buf: &mut Vec<f32>) {
    let Shape { t: n, d, .. } = job.shape;
    let w = job.w;
    let base = h * n * d;
    let t1 = (t0 + QUERY_BLOCK).min(n);
    let nq = t1 - t0;
    let jlo = (t0 + 1).saturating_sub(w);
    let nk = t1 - jlo;
    if s_buf.len() < nq * nk {
        s_buf.resize(nq * nk, 0.0);
    }
    let s = &mut s_buf[..nq * nk];
    matmul_abt(
        s,
        nk,
        Mat::new(&job.q[base + t0 * d..], nq, d, d),
        Mat::new(&job.k[base + jlo * d..], nk, d, d),
        false,
    );
    let mut sums = [0.0f32; QUERY_BLOCK];
    for a in 0..nq {
        let t = t0 + a;
        let lo = (t + 1).saturating_sub(w).max(jlo) - jlo;
        let hi = t - jlo;
        let row = &mut s[a * nk..(a + 1) * nk];
        let m = row[lo..=hi]
            .iter()
            .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let live = &mut row[lo..=hi];
        exp_scaled_in_place(live, m, job.scale);
        sums[a] = live.iter().sum();
        row[..lo].fill(0.0);
        row[hi + 1..].fill(0.0);
    }
    matmul_ab(
        o,
        d,
        Mat::new(s, nq, nk, nk),
        Mat::new(&job.v[base + jlo * d..], nk, d, d),
        false,
    );
    for (a, row) in o.chunks_exact_mut(d).enumerate() {
        let inv = 1.0 / sums[a];
        row.iter_mut().for_each(|x| *x *= inv);
    }
}

/// The gradients of [`softmax_forward`] with respect to q, k and v, given its output `o` and the upstream gradient
/// `g` (all `[heads, T, D]`), blocked like the forward: per block of 64 queries the probabilities P are recomputed
/// from the scores (never stored for the whole sequence), then dV += Pᵀ·dO, dS = P ⊙ (dO·Vᵀ − rowsum(dO ⊙ O)),
/// dQ = dS·K/√D, dK += dSᵀ·Q/√D. Heads run in parallel; each head's query blocks in turn (they add to the same
/// dK and dV rows).
pub fn softmax_backward(
    shape: Shape,
    window: usize,
    [q, k, v, o, g]: [&[f32]; 5],
) -> Result<[Vec<f32>; 3], AttnError> {
    for (name, x) in [("q", q), ("k", k), ("v", v), ("out", o), ("grad", g)] {
        shape.check(name, x.len())?;
    }
    let Shape { t: n, d, .. } = shape;
    let mut grads = [0; 3].map(|_| vec![0.0f32; shape.len()]);
    if shape.is_empty() {
        return Ok(grads);
    }
    let w = if window == 0 { n } else { window };
    let job = Job {
        shape,
        w,
        scale: 1.0 / (d as f32).sqrt(),
        q,
        k,
        v,
    };
    let [dq, dk, dv] = &mut grads;
    dq.par_chunks_mut(n * d)
        .zip(dk.par_chunks_mut(n * d))
        .zip(dv.par_chunks_mut(n * d))
        .enumerate()
        .for_each(|(h, ((dq, dk), dv))| {
            S_BUF.with_borrow_mut(|s| {
                let mut ds = Vec::new();
                for t0 in (0..n).step_by(QUERY_BLOCK) {
                    backward_block(
                        &job,
                        h,
                        t0,
                        [o, g],
                        [&mut *dq, &mut *dk, &mut *dv],
                        s,
                        &mut ds,
                    );
                }
            })
        });
    Ok(grads)
}

/// One block of up to 64 queries of head `h` (see [`softmax_backward`]).
fn backward_block(
    job: &Job,
    h: usize,
    t0: usize,
    [o, g]: [&[f32]; 2],
    [dq, dk, dv]: [&mut [f32]; 3],
    p_buf: &mut Vec<f32>,
    ds_buf: &mut Vec<f32>,
) {
    let Shape { t: n, d, .. } = job.shape;
    let base = h * n * d;
    let t1 = (t0 + QUERY_BLOCK).min(n);
    let nq = t1 - t0;
    let jlo = (t0 + 1).saturating_sub(job.w);
    let nk = t1 - jlo;
    for buf in [&mut *p_buf, &mut *ds_buf] {
        if buf.len() < nq * nk {
            buf.resize(nq * nk, 0.0);
        }
    }
    let (p, ds) = (&mut p_buf[..nq * nk], &mut ds_buf[..nq * nk]);
    let qb = Mat::new(&job.q[base + t0 * d..], nq, d, d);
    let kb = Mat::new(&job.k[base + jlo * d..], nk, d, d);
    let gb = Mat::new(&g[base + t0 * d..], nq, d, d);
    // P: the forward's probabilities, masked entries 0.
    matmul_abt(p, nk, qb, kb, false);
    for a in 0..nq {
        let t = t0 + a;
        let lo = (t + 1).saturating_sub(job.w).max(jlo) - jlo;
        let hi = t - jlo;
        let row = &mut p[a * nk..(a + 1) * nk];
        let m = row[lo..=hi]
            .iter()
            .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let live = &mut row[lo..=hi];
        exp_scaled_in_place(live, m, job.scale);
        let inv = 1.0 / live.iter().sum::<f32>();
        live.iter_mut().for_each(|x| *x *= inv);
        row[..lo].fill(0.0);
        row[hi + 1..].fill(0.0);
    }
    // dV[jlo..t1] += Pᵀ·dO.
    matmul_atb(&mut dv[jlo * d..], d, Mat::new(p, nq, nk, nk), gb, true);
    // dS = P ⊙ (dO·Vᵀ − rowsum(dO ⊙ O)) / √D.
    matmul_abt(
        ds,
        nk,
        gb,
        Mat::new(&job.v[base + jlo * d..], nk, d, d),
        false,
    );
    for a in 0..nq {
        let r = base + (t0 + a) * d;
        let delta: f32 = g[r..r + d]
            .iter()
            .zip(&o[r..r + d])
            .map(|(x, y)| x * y)
            .sum();
        for (s, &pr) in ds[a * nk..(a + 1) * nk]
            .iter_mut()
            .zip(&p[a * nk..(a + 1) * nk])
        {
            *s = pr * (*s - delta) * job.scale;
        }
    }
    let dsm = Mat::new(ds, nq, nk, nk);
    // dQ rows of this block = dS·K; dK[jlo..t1] += dSᵀ·Q.
    matmul_ab(&mut dq[t0 * d..], d, dsm, kb, false);
    matmul_atb(&mut dk[jlo * d..], d, dsm, qb, true);
}
