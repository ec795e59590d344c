//! Rotary position embeddings in HF's half-split layout (dim i pairs with dim i + D/2), as a fused candle op with
//! its backward (the rotation by −θ), and the table of cos/sin per position.

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::{ModelError, Result};
use crate::ops::f32_slice;

/// cos and sin of position · frequency for every position below `max_positions`, `[P, D/2]` each.
#[derive(Debug, Clone)]
pub struct RopeTable {
    cos: Tensor,
    sin: Tensor,
}

impl RopeTable {
    /// The table for frequencies `inv_freq` (f32 products, as HF computes them).
    pub fn new(inv_freq: &[f32], max_positions: usize, device: &Device) -> Result<Self> {
        let half = inv_freq.len();
        let mut cos = Vec::with_capacity(max_positions * half);
        let mut sin = Vec::with_capacity(max_positions * half);
        for p in 0..max_positions {
            for &f in inv_freq {
                let a = p as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
        Ok(RopeTable {
            cos: Tensor::from_vec(cos, (max_positions, half), device)?,
            sin: Tensor::from_vec(sin, (max_positions, half), device)?,
        })
    }

    /// The rows of positions `pos` (u32 `[T]`): cos and sin `[T, D/2]`.
    pub fn at(&self, pos: &Tensor) -> Result<(Tensor, Tensor)> {
        let max = self.cos.dim(0)?;
        if let Some(&p) = pos.to_vec1::<u32>()?.iter().find(|&&p| p as usize >= max) {
            return Err(ModelError::Input(format!(
                "position {p} is past the model's {max} positions"
            )));
        }
        Ok((self.cos.embedding(pos)?, self.sin.embedding(pos)?))
    }
}

/// Rotate `x` `[B, H, T, D]` by the angles whose cos and sin are `[T, D/2]`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    Ok(x.contiguous()?.apply_op3(
        &cos.contiguous()?,
        &sin.contiguous()?,
        Rope { inverse: false },
    )?)
}

/// `inverse`: rotate by −θ (the backward of the forward rotation, which is orthogonal).
struct Rope {
    inverse: bool,
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        if self.inverse {
            "rope-backward"
        } else {
            "rope"
        }
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
        let (x, cos, sin) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?, f32_slice(s3, l3)?);
        let dims = l1.shape().dims();
        let [_, _, t, d] = dims else {
            candle_core::bail!("rope expects [B, H, T, D], got {dims:?}")
        };
        let (t, d) = (*t, *d);
        let half = d / 2;
        if !d.is_multiple_of(2) || cos.len() != t * half || sin.len() != t * half {
            candle_core::bail!(
                "rope: head width {d} with {} cos and {} sin values for {t} positions",
                cos.len(),
                sin.len()
            );
        }
        let sign = if self.inverse { -1.0f32 } else { 1.0 };
        let mut y = vec![0.0f32; x.len()];
        y.par_chunks_mut(t * d)
            .zip(x.par_chunks(t * d))
            .for_each(|(y, x)| {
                for r in 0..t {
                    let (c, s) = (
                        &cos[r * half..(r + 1) * half],
                        &sin[r * half..(r + 1) * half],
                    );
                    let (xr, yr) = (&x[r * d..(r + 1) * d], &mut y[r * d..(r + 1) * d]);
                    for i in 0..half {
                        let (a, b, s) = (xr[i], xr[i + half], sign * s[i]);
                        yr[i] = a * c[i] - b * s;
                        yr[i + half] = b * c[i] + a * s;
                    }
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?.apply_op3_no_bwd(
            cos,
            sin,
            &Rope {
                inverse: !self.inverse,
            },
        )?;
        Ok((Some(g), None, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::max_diff;
    use candle_core::Var;

    #[test]
    fn rope_and_its_gradient_match_candle_nn_composed_rope() {
        let dev = Device::Cpu;
        let (b, h, t, d) = (2, 3, 5, 8);
        let inv: Vec<f32> = (0..d / 2)
            .map(|i| 1.0 / 10000f32.powf((2 * i) as f32 / d as f32))
            .collect();
        let table = RopeTable::new(&inv, 16, &dev).unwrap();
        // Positions that are not 0..T: the packed and incremental forms rotate rows at any offset.
        let pos = Tensor::new(&[3u32, 4, 9, 0, 15], &dev).unwrap();
        let (cos, sin) = table.at(&pos).unwrap();
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, h, t, d), &dev).unwrap()).unwrap();
        let r = Tensor::randn(0f32, 1.0, (b, h, t, d), &dev).unwrap();
        let ours = rope(x.as_tensor(), &cos, &sin).unwrap();
        let want = candle_nn::rotary_emb::rope_slow(x.as_tensor(), &cos, &sin).unwrap();
        assert!(max_diff(&ours, &want) < 1e-6);
        let g1 = (ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (want * &r).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(max_diff(g1.get(&x).unwrap(), g2.get(&x).unwrap()) < 1e-6);
    }

    #[test]
    fn a_position_past_the_table_is_an_error() {
        let table = RopeTable::new(&[1.0], 4, &Device::Cpu).unwrap();
        let e = table
            .at(&Tensor::new(&[4u32], &Device::Cpu).unwrap())
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("position 4 is past the model's 4 positions"),
            "{e}"
        );
    }
}
