//! Fused element-wise ops of the model, written for the CPU: candle's GELU calls libm's `tanhf` per element and
//! its log-softmax makes five passes over a `[T, 50257]` matrix; together they cost as much as a third of the
//! GEMMs. Each op here is one vectorised pass on all cores, with its own backward where training needs one.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use gaincell_attn::exp::exp1;

use crate::row_broadcast::column_sums;
use rayon::prelude::*;

use crate::error::{ModelError, Result};

/// √(2/π), GPT-2's `gelu_new` constant.
const GELU_C: f32 = 0.797_884_6;
const GELU_A: f32 = 0.044_715;
/// Elements per parallel task: large enough that scheduling is noise, small enough to split a layer's activations.
const CHUNK: usize = 1 << 14;

/// GPT-2's GELU (tanh approximation), `0.5·x·(1 + tanh(c·(x + a·x³)))`, written as `x / (1 + e^(−2u))`.
#[inline(always)]
fn gelu1(x: f32) -> f32 {
    let u = GELU_C * (x + GELU_A * x * x * x);
    x / (1.0 + exp1(-2.0 * u))
}

/// d gelu / dx: with s = 1/(1 + e^(−2u)) = (1 + tanh u)/2, it is s + 2·x·s·(1 − s)·c·(1 + 3a·x²).
#[inline(always)]
fn gelu_grad1(x: f32) -> f32 {
    let u = GELU_C * (x + GELU_A * x * x * x);
    let s = 1.0 / (1.0 + exp1(-2.0 * u));
    s + 2.0 * x * s * (1.0 - s) * GELU_C * (1.0 + 3.0 * GELU_A * x * x)
}

fn map_chunks(dst: &mut [f32], f: impl Fn(&mut [f32], usize) + Sync + Send) {
    for_each_chunk(dst, CHUNK, |i, c| f(c, i * CHUNK));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_avx2(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = gelu1(x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_bwd_avx2(x: &[f32], g: &[f32], y: &mut [f32]) {
    for ((y, &x), &g) in y.iter_mut().zip(x).zip(g) {
        *y = g * gelu_grad1(x);
    }
}

fn gelu_slice(x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { gelu_avx2(x, y) };
    }
    for (y, &x) in y.iter_mut().zip(x) {
        *y = gelu1(x);
    }
}

fn gelu_bwd_slice(x: &[f32], g: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { gelu_bwd_avx2(x, g, y) };
    }
    for ((y, &x), &g) in y.iter_mut().zip(x).zip(g) {
        *y = g * gelu_grad1(x);
    }
}

/// Below this many output elements an op runs on the calling thread: handing a few hundred values to the rayon
/// pool costs more than computing them (token-by-token decoding makes such ops at every layer).
const PAR_MIN: usize = 1 << 15;

/// `f(i, chunk)` for every `len`-element chunk of `y` (`len` ≥ 1), on the rayon pool when `y` is large.
pub(crate) fn for_each_chunk(
    y: &mut [f32],
    len: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) {
    if y.len() < PAR_MIN {
        y.chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        y.par_chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// The f32 contents of a contiguous CPU storage (what every custom op reads).
pub fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("these ops take f32 tensors")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("these ops take contiguous tensors"),
    }
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-tanh"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l)?;
        let mut y = vec![0.0f32; x.len()];
        map_chunks(&mut y, |c, at| gelu_slice(&x[at..at + c.len()], c));
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(
            arg.apply_op2_no_bwd(&grad.contiguous()?, &GeluBackward)?,
        ))
    }
}

struct GeluBackward;

impl CustomOp2 for GeluBackward {
    fn name(&self) -> &'static str {
        "gelu-tanh-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, g) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        if x.len() != g.len() {
            candle_core::bail!("gelu backward: {} inputs, {} gradients", x.len(), g.len());
        }
        let mut y = vec![0.0f32; x.len()];
        map_chunks(&mut y, |c, at| {
            let r = at..at + c.len();
            gelu_bwd_slice(&x[r.clone()], &g[r], c)
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }
}

/// `x · w` over the last dimension of `x` `[…, in]`, `w` `[in, out]` (or a transposed view): `[…, out]`.
pub fn matmul_last(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let mut dims = x.dims().to_vec();
    let inner = *dims.last().expect("rank ≥ 1");
    let rows: usize = dims[..dims.len() - 1].iter().product();
    let y = x.reshape((rows, inner))?.matmul(w)?;
    *dims.last_mut().expect("rank ≥ 1") = w.dim(1)?;
    Ok(y.reshape(dims)?)
}

/// GPT-2's GELU on an f32 tensor, one fused pass (with backward).
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    Ok(x.contiguous()?.apply_op1(Gelu)?)
}

/// Mean and 1/σ of one row (σ² the biased variance + eps, as `torch.nn.LayerNorm`), in f64 for stability.
#[inline]
fn row_stats(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean as f32, (1.0 / (var + eps as f64).sqrt()) as f32)
}

struct LayerNormOp {
    eps: f32,
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w, b) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?, f32_slice(s3, l3)?);
        let c = w.len();
        if b.len() != c || c == 0 || x.len() % c != 0 {
            candle_core::bail!(
                "layer norm: {} values, weight {}, bias {}",
                x.len(),
                c,
                b.len()
            );
        }
        let mut y = vec![0.0f32; x.len()];
        y.par_chunks_mut(c).zip(x.par_chunks(c)).for_each(|(y, x)| {
            let (mean, rstd) = row_stats(x, self.eps);
            for i in 0..c {
                y[i] = (x[i] - mean) * rstd * w[i] + b[i];
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let c = w.dim(0)?;
        let gx = x.apply_op3_no_bwd(w, &grad, &LayerNormGradInput { eps: self.eps })?;
        let gwb = x.apply_op2_no_bwd(&grad, &LayerNormGradParams { eps: self.eps })?;
        Ok((
            Some(gx),
            Some(gwb.narrow(0, 0, c)?),
            Some(gwb.narrow(0, c, c)?),
        ))
    }
}

/// The layer norm's weight and bias gradients, `[Σ_rows g·x̂ ; Σ_rows g]` (`[2·C]`), x̂ = (x − μ)/σ recomputed per
/// row, the rows summed in parallel in fixed blocks (the same result on any number of threads).
struct LayerNormGradParams {
    eps: f32,
}

impl CustomOp2 for LayerNormGradParams {
    fn name(&self) -> &'static str {
        "layer-norm-backward-params"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, g) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        let c = *l1.shape().dims().last().unwrap_or(&0);
        if c == 0 || g.len() != x.len() {
            candle_core::bail!(
                "layer norm backward: {} values, {} gradients",
                x.len(),
                g.len()
            );
        }
        let sums = column_sums(x.len() / c, 2 * c, |r, acc| {
            let (x, g) = (&x[r * c..(r + 1) * c], &g[r * c..(r + 1) * c]);
            let (mean, rstd) = row_stats(x, self.eps);
            let (gw, gb) = acc.split_at_mut(c);
            for i in 0..c {
                gw[i] += g[i] * ((x[i] - mean) * rstd);
                gb[i] += g[i];
            }
        });
        Ok((CpuStorage::F32(sums), Shape::from(2 * c)))
    }
}

/// `∂L/∂x = (1/σ)·(g·w − mean(g·w) − x̂·mean(g·w·x̂))` per row, from x, the weight and the upstream gradient.
struct LayerNormGradInput {
    eps: f32,
}

impl CustomOp3 for LayerNormGradInput {
    fn name(&self) -> &'static str {
        "layer-norm-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w, g) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?, f32_slice(s3, l3)?);
        let c = w.len();
        if g.len() != x.len() || c == 0 || x.len() % c != 0 {
            candle_core::bail!(
                "layer norm backward: {} values, {} gradients, width {c}",
                x.len(),
                g.len()
            );
        }
        let mut out = vec![0.0f32; x.len()];
        out.par_chunks_mut(c)
            .zip(x.par_chunks(c).zip(g.par_chunks(c)))
            .for_each(|(o, (x, g))| {
                let (mean, rstd) = row_stats(x, self.eps);
                let (mut a, mut bsum) = (0.0f64, 0.0f64);
                for i in 0..c {
                    let gw = (g[i] * w[i]) as f64;
                    a += gw;
                    bsum += gw * ((x[i] - mean) * rstd) as f64;
                }
                let (a, bsum) = ((a / c as f64) as f32, (bsum / c as f64) as f32);
                for i in 0..c {
                    let xhat = (x[i] - mean) * rstd;
                    o[i] = rstd * (g[i] * w[i] - a - xhat * bsum);
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Layer norm over the last dimension (`torch.nn.LayerNorm` semantics), one fused pass, with backward.
pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f32) -> Result<Tensor> {
    Ok(x.contiguous()?.apply_op3(w, b, LayerNormOp { eps })?)
}

/// Per-row negative log-likelihood `logsumexp(row) − row[target]`, with the softmax gradient as its backward.
struct RowNll;

fn u32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [u32]> {
    let CpuStorage::U32(data) = s else {
        candle_core::bail!("targets must be u32 token ids")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("targets must be contiguous"),
    }
}

impl CustomOp2 for RowNll {
    fn name(&self) -> &'static str {
        "cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, t) = (f32_slice(s1, l1)?, u32_slice(s2, l2)?);
        let vocab = *l1.shape().dims().last().unwrap_or(&0);
        let lp = target_log_probs(x, vocab, t).map_err(candle_core::Error::wrap)?;
        Ok((
            CpuStorage::F32(lp.into_iter().map(|v| -v).collect()),
            Shape::from(t.len()),
        ))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        // The forward's nll_r = lse_r − x_r[t_r] gives back each row's log-sum-exp: the backward then makes one
        // pass over the row instead of three (the max and the sum of exponentials again, then the softmax).
        let lse_and_grad = Tensor::stack(&[res.contiguous()?, grad.contiguous()?], 0)?;
        let g = logits.apply_op3_no_bwd(targets, &lse_and_grad, &RowNllBackward)?;
        Ok((Some(g), None))
    }
}

/// `g_r · (softmax(row_r) − onehot(target_r))` for every row, from the logits, the targets and `[nll; g]` (`[2, N]`:
/// the forward's per-row loss, from which lse_r = nll_r + row_r[t_r], and the upstream gradient).
struct RowNllBackward;

impl CustomOp3 for RowNllBackward {
    fn name(&self) -> &'static str {
        "cross-entropy-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, t, nll_g) = (f32_slice(s1, l1)?, u32_slice(s2, l2)?, f32_slice(s3, l3)?);
        let vocab = *l1.shape().dims().last().unwrap_or(&0);
        if vocab == 0 || x.len() != t.len() * vocab || nll_g.len() != 2 * t.len() {
            candle_core::bail!(
                "cross-entropy backward: {} logits, {} targets, {} losses and gradients",
                x.len(),
                t.len(),
                nll_g.len()
            );
        }
        let (nll, g) = nll_g.split_at(t.len());
        let mut out = vec![0.0f32; x.len()];
        out.par_chunks_mut(vocab)
            .zip(x.par_chunks(vocab))
            .zip(t.par_iter().zip(g.par_iter().zip(nll)))
            .for_each(|((o, row), (&target, (&gr, &nll)))| {
                let lse = nll + row[target as usize];
                for (o, &v) in o.iter_mut().zip(row) {
                    *o = gr * exp1(v - lse);
                }
                o[target as usize] -= gr;
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Mean cross-entropy of `logits` `[N, V]` against u32 `targets` `[N]`, fused: one pass per row forward and one
/// backward, no `[N, V]` temporaries besides the gradient (candle-nn's composed version makes five).
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let n = targets.dim(0)?;
    let nll = logits
        .contiguous()?
        .apply_op2(&targets.contiguous()?, RowNll)?;
    Ok((nll.sum_all()? / n.max(1) as f64)?)
}

/// `log p(target_r | row r)` for every row of `logits` (`rows × vocab`, row-major): the log-softmax evaluated only
/// where it is read, in one pass per row for the max and one for Σ e^(x − max), rows in parallel.
pub fn target_log_probs(logits: &[f32], vocab: usize, targets: &[u32]) -> Result<Vec<f32>> {
    if vocab == 0 || logits.len() != targets.len() * vocab {
        return Err(ModelError::Input(format!(
            "{} logits for {} targets over a vocabulary of {vocab}",
            logits.len(),
            targets.len()
        )));
    }
    if let Some(&t) = targets.iter().find(|&&t| t as usize >= vocab) {
        return Err(ModelError::Input(format!(
            "target id {t} is outside the vocabulary of {vocab}"
        )));
    }
    Ok(logits
        .par_chunks(vocab)
        .zip(targets.par_iter())
        .map(|(row, &t)| row[t as usize] - log_sum_exp(row))
        .collect())
}

fn log_sum_exp(row: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (and so AVX2 and FMA), checked just above.
            return unsafe { log_sum_exp_avx512(row) };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { log_sum_exp_avx2(row) };
        }
    }
    log_sum_exp_impl(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn log_sum_exp_avx512(row: &[f32]) -> f32 {
    log_sum_exp_impl(row)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn log_sum_exp_avx2(row: &[f32]) -> f32 {
    log_sum_exp_impl(row)
}

/// Elements per block of the exponential pass: exponentiated in place in a stack buffer (a map, which the
/// compiler vectorises; a sum of `exp1` over a reduction stayed scalar, 9 % of a training step in perf).
const LSE_BLOCK: usize = 64;

#[inline(always)]
fn log_sum_exp_impl(row: &[f32]) -> f32 {
    // Sixteen running maxima and sums so the loops vectorise (a single f32 accumulator would be a serial chain).
    let mut m = [f32::NEG_INFINITY; 16];
    let chunks = row.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            m[i] = if c[i] > m[i] { c[i] } else { m[i] };
        }
    }
    let max = tail.iter().fold(
        m.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)),
        |a, &b| a.max(b),
    );
    let mut s = [0.0f32; 16];
    let mut buf = [0.0f32; LSE_BLOCK];
    let blocks = row.chunks_exact(LSE_BLOCK);
    let tail = blocks.remainder();
    for c in blocks {
        buf.copy_from_slice(c);
        gaincell_attn::exp::exp_scaled_in_place(&mut buf, max, 1.0);
        for b in buf.chunks_exact(16) {
            for i in 0..16 {
                s[i] += b[i];
            }
        }
    }
    let sum: f64 = s.iter().map(|&x| x as f64).sum::<f64>()
        + tail.iter().map(|&x| exp1(x - max) as f64).sum::<f64>();
    max + sum.ln() as f32
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Largest |a − b| (the fused ops' tests compare with candle's composed ops by it).
    pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    fn gelu_f64(x: f64) -> f64 {
        0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
    }

    #[test]
    fn gelu_matches_the_tanh_formula_in_f64() {
        let xs: Vec<f32> = (0..40_001).map(|i| -20.0 + i as f32 * 1e-3).collect();
        let t = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        let got: Vec<f32> = gelu(&t).unwrap().to_vec1().unwrap();
        for (&x, &g) in xs.iter().zip(&got) {
            let want = gelu_f64(x as f64);
            assert!(
                (g as f64 - want).abs() <= 2e-6 * want.abs().max(1.0),
                "gelu({x}) = {g}, want {want}"
            );
        }
        // Saturation: huge inputs pass through or vanish, never NaN.
        let big = Tensor::new(&[1e4f32, -1e4, 0.0], &Device::Cpu).unwrap();
        let y = gelu(&big).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!((y[0], y[2]), (1e4, 0.0));
        assert!(y[1].abs() < 1e-30, "gelu(-1e4) = {}", y[1]);
    }

    #[test]
    fn gelu_gradient_matches_central_differences() {
        let xs: Vec<f32> = (0..801).map(|i| -8.0 + i as f32 * 0.02).collect();
        let v = Var::new(xs.as_slice(), &Device::Cpu).unwrap();
        let w: Vec<f32> = (0..xs.len()).map(|i| 1.0 + (i % 7) as f32 * 0.25).collect();
        let w = Tensor::new(w.as_slice(), &Device::Cpu).unwrap();
        let loss = (gelu(v.as_tensor()).unwrap() * &w)
            .unwrap()
            .sum_all()
            .unwrap();
        let grads = loss.backward().unwrap();
        let got: Vec<f32> = grads.get(v.as_tensor()).unwrap().to_vec1().unwrap();
        let wv: Vec<f32> = w.to_vec1().unwrap();
        for (i, &x) in xs.iter().enumerate() {
            let h = 1e-4;
            let fd = (gelu_f64(x as f64 + h) - gelu_f64(x as f64 - h)) / (2.0 * h) * wv[i] as f64;
            assert!(
                (got[i] as f64 - fd).abs() <= 1e-5 * fd.abs().max(1.0),
                "x = {x}: {} vs {fd}",
                got[i]
            );
        }
    }

    #[test]
    fn target_log_probs_match_a_log_softmax_in_f64() {
        let vocab = 1003; // not a multiple of 8: the tail path runs
        let rows = 5;
        let logits: Vec<f32> = (0..rows * vocab)
            .map(|i| ((i * 7919) % 1000) as f32 * 0.037 - 20.0)
            .collect();
        let targets = [0u32, 1002, 17, 500, 999];
        let got = target_log_probs(&logits, vocab, &targets).unwrap();
        for r in 0..rows {
            let row = &logits[r * vocab..(r + 1) * vocab];
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
            let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
            let want = row[targets[r] as usize] as f64 - lse;
            assert!(
                (got[r] as f64 - want).abs() < 1e-5,
                "row {r}: {} vs {want}",
                got[r]
            );
        }
        assert!(target_log_probs(&logits, vocab, &[0, 1, 2, 3, 1003]).is_err());
        assert!(target_log_probs(&logits, vocab, &[0, 1]).is_err());
    }

    #[test]
    fn layer_norm_forward_and_gradients_match_candle_composed_ops() {
        let (rows, c) = (6, 37);
        let dev = Device::Cpu;
        let xs: Vec<f32> = (0..rows * c)
            .map(|i| ((i * 37) % 101) as f32 * 0.07 - 3.0)
            .collect();
        let x = Var::new(xs.as_slice(), &dev).unwrap();
        let x2 = x.as_tensor().reshape((rows, c)).unwrap();
        let w = Var::new(
            (0..c)
                .map(|i| 0.5 + i as f32 * 0.03)
                .collect::<Vec<_>>()
                .as_slice(),
            &dev,
        )
        .unwrap();
        let b = Var::new(
            (0..c)
                .map(|i| i as f32 * -0.01)
                .collect::<Vec<_>>()
                .as_slice(),
            &dev,
        )
        .unwrap();
        let up = Tensor::new(
            (0..rows * c)
                .map(|i| ((i * 13) % 17) as f32 - 8.0)
                .collect::<Vec<_>>()
                .as_slice(),
            &dev,
        )
        .unwrap()
        .reshape((rows, c))
        .unwrap();
        let fused = layer_norm(&x2, w.as_tensor(), b.as_tensor(), 1e-5).unwrap();
        let slow =
            candle_nn::ops::layer_norm_slow(&x2, w.as_tensor(), b.as_tensor(), 1e-5).unwrap();
        let diff = (&fused - &slow)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "forward differs by {diff}");
        let gf = (fused * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gs = (slow * &up).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w, &b] {
            let (a, e) = (
                gf.get(v.as_tensor()).unwrap(),
                gs.get(v.as_tensor()).unwrap(),
            );
            let d = (a - e)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(d < 1e-4, "gradient differs by {d}");
        }
    }

    #[test]
    fn cross_entropy_and_its_gradient_match_candle_nn() {
        let dev = Device::Cpu;
        let (n, v) = (7, 203);
        let xs: Vec<f32> = (0..n * v)
            .map(|i| ((i * 7919) % 997) as f32 * 0.01 - 5.0)
            .collect();
        let x = Var::from_tensor(&Tensor::from_vec(xs, (n, v), &dev).unwrap()).unwrap();
        let t = Tensor::new(&[0u32, 5, 202, 17, 100, 3, 3], &dev).unwrap();
        let fused = cross_entropy(x.as_tensor(), &t).unwrap();
        let slow = candle_nn::loss::cross_entropy(x.as_tensor(), &t).unwrap();
        let (a, b) = (
            fused.to_scalar::<f32>().unwrap(),
            slow.to_scalar::<f32>().unwrap(),
        );
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        let ga = fused
            .backward()
            .unwrap()
            .get(x.as_tensor())
            .unwrap()
            .clone();
        let gb = slow.backward().unwrap().get(x.as_tensor()).unwrap().clone();
        let d = (ga - gb)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-6, "gradients differ by {d}");
    }
}
