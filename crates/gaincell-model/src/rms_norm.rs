//! RMSNorm over the last dimension (`LlamaRMSNorm`: `w ⊙ x / √(mean(x²) + ε)`, statistics in f64 per row), one
//! fused pass with its backward.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;
use crate::ops::f32_slice;

/// 1/√(mean(x²) + ε) of one row.
#[inline]
fn rstd(x: &[f32], eps: f32) -> f32 {
    let ms = x.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / x.len() as f64;
    (1.0 / (ms + eps as f64).sqrt()) as f32
}

/// RMSNorm of `x` `[…, C]` with weight `w` `[C]`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f32) -> Result<Tensor> {
    Ok(x.contiguous()?
        .apply_op2(&w.contiguous()?, RmsNorm { eps })?)
}

struct RmsNorm {
    eps: f32,
}

fn check(x: &[f32], w: &[f32], what: &str) -> candle_core::Result<usize> {
    let c = w.len();
    if c == 0 || !x.len().is_multiple_of(c) {
        candle_core::bail!("{what}: {} values, weight of {c}", x.len());
    }
    Ok(c)
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        let c = check(x, w, "rms norm")?;
        let mut y = vec![0.0f32; x.len()];
        y.par_chunks_mut(c).zip(x.par_chunks(c)).for_each(|(y, x)| {
            let r = rstd(x, self.eps);
            for i in 0..c {
                y[i] = w[i] * (x[i] * r);
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?;
        let gx = x.apply_op2_no_bwd(
            &g,
            &RmsNormGrad {
                eps: self.eps,
                w: w.clone(),
            },
        )?;
        // ∂L/∂w_i = Σ_rows g_i · x_i · r.
        let c = w.dim(0)?;
        let rows = x.elem_count() / c;
        let xhat = x.apply_op2_no_bwd(&w.ones_like()?, &RmsNorm { eps: self.eps })?;
        let gw = (g.reshape((rows, c))? * xhat.reshape((rows, c))?)?.sum(0)?;
        Ok((Some(gx), Some(gw)))
    }
}

/// `∂L/∂x_j = r·g_j·w_j − r³·x_j·mean_i(g_i·w_i·x_i)` per row.
struct RmsNormGrad {
    eps: f32,
    w: Tensor,
}

impl CustomOp2 for RmsNormGrad {
    fn name(&self) -> &'static str {
        "rms-norm-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, g) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        let w = self.w.contiguous()?.to_vec1::<f32>()?;
        let c = check(x, &w, "rms norm backward")?;
        if g.len() != x.len() {
            candle_core::bail!(
                "rms norm backward: {} values, {} gradients",
                x.len(),
                g.len()
            );
        }
        let mut out = vec![0.0f32; x.len()];
        out.par_chunks_mut(c)
            .zip(x.par_chunks(c).zip(g.par_chunks(c)))
            .for_each(|(o, (x, g))| {
                let r = rstd(x, self.eps);
                let dot = (0..c)
                    .map(|i| (g[i] * w[i]) as f64 * x[i] as f64)
                    .sum::<f64>()
                    / c as f64;
                let k = (r as f64).powi(3) * dot;
                for i in 0..c {
                    o[i] = r * g[i] * w[i] - (k * x[i] as f64) as f32;
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::max_diff;
    use candle_core::{Device, Var};

    #[test]
    fn rms_norm_and_its_gradients_match_candle_nn_composed_ops() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0.3f32, 2.0, (3, 7, 48), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.2, 48, &dev).unwrap()).unwrap();
        let r = Tensor::randn(0f32, 1.0, (3, 7, 48), &dev).unwrap();
        let ours = rms_norm(x.as_tensor(), w.as_tensor(), 1e-5).unwrap();
        let want = candle_nn::ops::rms_norm_slow(x.as_tensor(), w.as_tensor(), 1e-5).unwrap();
        assert!(max_diff(&ours, &want) < 1e-5);
        let g1 = (ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (want * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &w] {
            let d = max_diff(g1.get(v).unwrap(), g2.get(v).unwrap());
            assert!(d < 1e-4, "gradient differs by {d}");
        }
    }
}
