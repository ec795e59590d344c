//! Splitting a `[B, T, P·C]` projection (P = 3 for GPT-2's fused q/k/v) into one part's heads `[B, H, T, D]`, and
//! merging heads back to `[B, T, C]`, each one graph node with its own backward. Composed of candle's narrow,
//! reshape, transpose and contiguous they were four nodes a part, and candle's backward zero-fills and accumulates
//! a gradient for every node.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::error::Result;
use crate::ops::{f32_slice, for_each_chunk};

/// `[B, T, parts·H·D]` → part `part` as `[B, H, T, D]`.
struct SplitHeads {
    part: usize,
    parts: usize,
    heads: usize,
}

impl CustomOp1 for SplitHeads {
    fn name(&self) -> &'static str {
        "split-heads"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l)?;
        let (b, t, width) = l.shape().dims3()?;
        let (h, c) = (self.heads, width / self.parts);
        let d = c / h;
        let mut y = vec![0.0f32; b * t * c];
        // One (sequence, head) plane of T × D per task.
        for_each_chunk(&mut y, (t * d).max(1), |bh, plane| {
            let (bi, hi) = (bh / h, bh % h);
            for (ti, row) in plane.chunks_mut(d).enumerate() {
                let at = (bi * t + ti) * width + self.part * c + hi * d;
                row.copy_from_slice(&x[at..at + d]);
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((b, h, t, d))))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&MergeHeads {
            part: self.part,
            parts: self.parts,
        })?))
    }
}

/// `[B, H, T, D]` → `[B, T, parts·H·D]` holding it as part `part` (zeros elsewhere; `parts` = 1: just the merge).
struct MergeHeads {
    part: usize,
    parts: usize,
}

impl CustomOp1 for MergeHeads {
    fn name(&self) -> &'static str {
        "merge-heads"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l)?;
        let (b, h, t, d) = l.shape().dims4()?;
        let c = h * d;
        let width = self.parts * c;
        let mut y = vec![0.0f32; b * t * width];
        // One token's row of the output per task.
        for_each_chunk(&mut y, width.max(1), |bt, row| {
            let (bi, ti) = (bt / t, bt % t);
            for hi in 0..h {
                let from = ((bi * h + hi) * t + ti) * d;
                let to = self.part * c + hi * d;
                row[to..to + d].copy_from_slice(&x[from..from + d]);
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((b, t, width))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&SplitHeads {
            part: self.part,
            parts: self.parts,
            heads: x.dim(1)?,
        })?))
    }
}

/// Part `part` of `parts` equal parts of the last dimension of `x` `[B, T, parts·C]`, as `heads` heads
/// `[B, H, T, C/H]`, contiguous.
pub fn split_heads(x: &Tensor, part: usize, parts: usize, heads: usize) -> Result<Tensor> {
    let width = x.dim(2)?;
    if part >= parts || !width.is_multiple_of(parts) || !(width / parts).is_multiple_of(heads) {
        return Err(candle_core::Error::Msg(format!(
            "split heads: part {part} of {parts} of width {width} into {heads} heads"
        ))
        .into());
    }
    Ok(x.contiguous()?
        .apply_op1(SplitHeads { part, parts, heads })?)
}

/// Heads `[B, H, T, D]` merged into `[B, T, H·D]`.
pub fn merge_heads(x: &Tensor) -> Result<Tensor> {
    Ok(x.contiguous()?
        .apply_op1(MergeHeads { part: 0, parts: 1 })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn split_and_merge_equal_narrow_reshape_transpose_with_gradients() {
        let dev = Device::Cpu;
        let (b, t, h, d) = (2, 5, 3, 4);
        let c = h * d;
        let vals = |n: usize, k: usize| -> Vec<f32> {
            (0..n).map(|i| ((i * k) % 61) as f32 * 0.1 - 3.0).collect()
        };
        let x = Var::from_tensor(
            &Tensor::from_vec(vals(b * t * 3 * c, 7), (b, t, 3 * c), &dev).unwrap(),
        )
        .unwrap();
        let up = Tensor::from_vec(vals(b * t * c, 11), (b, t, c), &dev).unwrap();
        // A loss through every part, split and merged again, so both ops' backward run.
        let loss = |fused: bool| {
            let parts: Vec<Tensor> = (0..3)
                .map(|i| {
                    if fused {
                        split_heads(x.as_tensor(), i, 3, h).unwrap()
                    } else {
                        x.as_tensor()
                            .narrow(2, i * c, c)
                            .unwrap()
                            .reshape((b, t, h, d))
                            .unwrap()
                            .transpose(1, 2)
                            .unwrap()
                            .contiguous()
                            .unwrap()
                    }
                })
                .collect();
            let mixed = ((&parts[0] * 2.0).unwrap() + (&parts[1] * &parts[2]).unwrap()).unwrap();
            let merged = if fused {
                merge_heads(&mixed).unwrap()
            } else {
                mixed.transpose(1, 2).unwrap().reshape((b, t, c)).unwrap()
            };
            let value = merged.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let g = (merged * &up)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let gx = g
                .get(x.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            (value, gx)
        };
        assert_eq!(loss(true), loss(false));
    }
}
