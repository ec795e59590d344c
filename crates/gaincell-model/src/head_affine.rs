//! The per-head scalers' map `x' = a_h·x + b_h` on `[B, H, T, D]` as one parallel op with its own backward.
//! candle's `broadcast_mul` + `broadcast_add` made four graph nodes per scaler, each gradient zero-filled and
//! accumulated on candle's spinning pool, and summed `a`'s and `b`'s gradients over B·T·D on one thread: with
//! four scalers per layer that was most of what a gain-cell chip's training step costs beyond softmax's. The
//! forward is the same f32 arithmetic (`x·a + b`); the parameter gradients are summed per (sequence, head) block
//! in f64 and the blocks added in order, so they do not depend on the thread count.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;
use crate::ops::{f32_slice, for_each_chunk};

/// `[B, H, T, D]` dims of a layout, as (B·H blocks, H, T·D block length).
fn blocks(l: &Layout, heads: usize) -> candle_core::Result<(usize, usize)> {
    let d = l.shape().dims();
    if d.len() != 4 || d[1] != heads {
        candle_core::bail!("head affine: {d:?} is not [B, {heads}, T, D]");
    }
    Ok((d[0] * d[1], d[2] * d[3]))
}

struct HeadAffine;

impl CustomOp3 for HeadAffine {
    fn name(&self) -> &'static str {
        "head-affine"
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
        let (x, a, b) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?, f32_slice(s3, l3)?);
        let h = a.len();
        let (_, len) = blocks(l1, h)?;
        let mut y = vec![0.0f32; x.len()];
        let len = len.max(1);
        for_each_chunk(&mut y, len, |i, y| {
            let (a, b) = (a[i % h], b[i % h]);
            for (y, &x) in y.iter_mut().zip(&x[i * len..]) {
                *y = x * a + b;
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let h = a.elem_count();
        let zero = a.zeros_like()?;
        // ∂x = g·a_h: the forward with b = 0 (the same product as candle's broadcast_mul backward).
        let gx = grad.apply_op3_no_bwd(a, &zero, &HeadAffine)?;
        let gab = x.apply_op2_no_bwd(&grad, &HeadAffineParamGrads { heads: h })?;
        Ok((
            Some(gx),
            Some(gab.narrow(0, 0, h)?),
            Some(gab.narrow(0, h, h)?),
        ))
    }
}

/// `[Σ g·x per head ; Σ g per head]` (`[2·H]`).
struct HeadAffineParamGrads {
    heads: usize,
}

impl CustomOp2 for HeadAffineParamGrads {
    fn name(&self) -> &'static str {
        "head-affine-backward-params"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, g) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        let h = self.heads;
        let (_, len) = blocks(l1, h)?;
        if g.len() != x.len() {
            candle_core::bail!(
                "head affine backward: {} values, {} gradients",
                x.len(),
                g.len()
            );
        }
        let partial: Vec<(f64, f64)> = x
            .par_chunks(len.max(1))
            .zip(g.par_chunks(len.max(1)))
            .map(|(x, g)| {
                let (mut gx, mut gs) = (0.0f64, 0.0f64);
                for (&x, &g) in x.iter().zip(g) {
                    gx += (g * x) as f64;
                    gs += g as f64;
                }
                (gx, gs)
            })
            .collect();
        let mut sums = vec![0.0f64; 2 * h];
        for (i, (gx, gs)) in partial.iter().enumerate() {
            sums[i % h] += gx;
            sums[h + i % h] += gs;
        }
        Ok((
            CpuStorage::F32(sums.into_iter().map(|v| v as f32).collect()),
            Shape::from(2 * h),
        ))
    }
}

/// `x' = a_h·x + b_h` for `x` `[B, H, T, D]` and `a`, `b` `[H]`, with backward.
pub fn head_affine(x: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Ok(x.contiguous()?
        .apply_op3(&a.contiguous()?, &b.contiguous()?, HeadAffine)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn forward_is_candles_broadcast_and_gradients_match_it() {
        let dev = Device::Cpu;
        let (bs, h, t, d) = (3, 4, 5, 6);
        let n = bs * h * t * d;
        let vals =
            |k: usize| -> Vec<f32> { (0..n).map(|i| ((i * k) % 89) as f32 * 0.02 - 0.8).collect() };
        // A transposed input, as the attention's q/k/v are.
        let x = Var::from_tensor(&Tensor::from_vec(vals(7), (bs, t, h, d), &dev).unwrap()).unwrap();
        let xt = x.as_tensor().transpose(1, 2).unwrap();
        let a = Var::new(&[0.5f32, 1.5, -2.0, 0.25], &dev).unwrap();
        let b = Var::new(&[0.1f32, -0.3, 0.0, 0.45], &dev).unwrap();
        let up = Tensor::from_vec(vals(13), (bs, h, t, d), &dev).unwrap();
        let fused = head_affine(&xt, a.as_tensor(), b.as_tensor()).unwrap();
        let slow = xt
            .broadcast_mul(&a.as_tensor().reshape((1, h, 1, 1)).unwrap())
            .unwrap()
            .broadcast_add(&b.as_tensor().reshape((1, h, 1, 1)).unwrap())
            .unwrap();
        assert_eq!(
            fused.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            slow.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        let gf = (fused * &up)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gs = (slow * &up).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&x, &a, &b] {
            let (f, s) = (
                gf.get(v.as_tensor()).unwrap(),
                gs.get(v.as_tensor()).unwrap(),
            );
            assert_eq!(f.dims(), s.dims());
            let diff = crate::ops::tests::max_diff(f, s);
            assert!(diff < 1e-4, "gradient differs by {diff}");
        }
        // ∂a_h = Σ g·x over head h, ∂b_h = Σ g: head 2 by hand.
        let (xv, uv) = (vals(7), vals(13));
        let (mut ga, mut gb) = (0.0f64, 0.0f64);
        for s in 0..bs {
            for ti in 0..t {
                for di in 0..d {
                    let xi = xv[((s * t + ti) * h + 2) * d + di] as f64;
                    let ui = uv[((s * h + 2) * t + ti) * d + di] as f64;
                    ga += ui * xi;
                    gb += ui;
                }
            }
        }
        let (fa, fb) = (
            gf.get(a.as_tensor()).unwrap().to_vec1::<f32>().unwrap()[2] as f64,
            gf.get(b.as_tensor()).unwrap().to_vec1::<f32>().unwrap()[2] as f64,
        );
        assert!(
            (fa - ga).abs() < 1e-4 && (fb - gb).abs() < 1e-4,
            "{fa} {ga} {fb} {gb}"
        );
    }
}
