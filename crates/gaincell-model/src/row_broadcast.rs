//! `x + b` with `b` repeated over the leading rows of `x` (a linear layer's bias, GPT-2's position embeddings over
//! the batch), as one parallel pass with its own backward. candle's `broadcast_add` runs the forward on its
//! spinning barrier pool and sums the bias gradient over the rows on one thread (`sum_keepdim`): together 10 % of a
//! small GPT's training step, measured with perf. The column sums here are split into fixed blocks of rows, so the
//! result does not depend on the number of threads.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;
use crate::ops::{f32_slice, for_each_chunk};

/// Rows per partial sum: fixed, so the rounding of a column sum is the same on any number of threads.
const ROWS_PER_PARTIAL: usize = 64;

/// Σ over `rows` rows of what `add_row(r, acc)` adds into a `width`-wide accumulator: partial sums of
/// [`ROWS_PER_PARTIAL`] consecutive rows in parallel, then those partials added in row order.
pub(crate) fn column_sums(
    rows: usize,
    width: usize,
    add_row: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let partials: Vec<Vec<f32>> = (0..rows.div_ceil(ROWS_PER_PARTIAL))
        .into_par_iter()
        .map(|block| {
            let mut acc = vec![0.0f32; width];
            let start = block * ROWS_PER_PARTIAL;
            for r in start..rows.min(start + ROWS_PER_PARTIAL) {
                add_row(r, &mut acc);
            }
            acc
        })
        .collect();
    let mut sum = vec![0.0f32; width];
    for p in &partials {
        for (s, &v) in sum.iter_mut().zip(p) {
            *s += v;
        }
    }
    sum
}

struct RowBroadcastAdd;

impl CustomOp2 for RowBroadcastAdd {
    fn name(&self) -> &'static str {
        "row-broadcast-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, b) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?);
        let width = b.len();
        let mut y = vec![0.0f32; x.len()];
        // Several rows per task when rows are short (a bias of 256 over 2048 rows).
        let per_task = width * (16_384 / width.max(1)).max(1);
        for_each_chunk(&mut y, per_task, |i, y| {
            let x = &x[i * per_task..];
            for (y, x) in y.chunks_mut(width).zip(x.chunks(width)) {
                for ((y, &x), &b) in y.iter_mut().zip(x).zip(b) {
                    *y = x + b;
                }
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let gb = grad.contiguous()?.apply_op1_no_bwd(&ColumnSum {
            width: b.elem_count(),
        })?;
        Ok((Some(grad.clone()), Some(gb.reshape(b.shape())?)))
    }
}

/// Σ over rows of a contiguous `[rows, width]` tensor: `[width]`.
struct ColumnSum {
    width: usize,
}

impl CustomOp1 for ColumnSum {
    fn name(&self) -> &'static str {
        "column-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = f32_slice(s, l)?;
        let w = self.width;
        let sums = column_sums(g.len() / w, w, |r, acc| {
            for (a, &v) in acc.iter_mut().zip(&g[r * w..(r + 1) * w]) {
                *a += v;
            }
        });
        Ok((CpuStorage::F32(sums), Shape::from(w)))
    }
}

/// `x + b` where `b`'s shape is the trailing dimensions of `x` (`x` `[…, n]` and a bias `[n]`, or `[B, T, C]` and
/// `[T, C]`): `b` added to every leading row, with backward.
pub fn row_broadcast_add(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (xd, bd) = (x.dims(), b.dims());
    if bd.len() > xd.len() || xd[xd.len() - bd.len()..] != *bd || b.elem_count() == 0 {
        return Err(candle_core::Error::Msg(format!(
            "row broadcast add: {bd:?} is not the trailing shape of {xd:?}"
        ))
        .into());
    }
    Ok(x.contiguous()?
        .apply_op2(&b.contiguous()?, RowBroadcastAdd)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn values(n: usize, k: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * k) % 97) as f32 * 0.03 - 1.4).collect()
    }

    #[test]
    fn forward_and_gradients_match_candle_broadcast_add() {
        let dev = Device::Cpu;
        // 300 rows: more than one block of partial sums, and a last block that is not full.
        for (xs, bs) in [(vec![3, 100, 7], vec![7]), (vec![4, 75, 6], vec![75, 6])] {
            let x = Var::from_tensor(
                &Tensor::from_vec(values(xs.iter().product(), 13), xs.as_slice(), &dev).unwrap(),
            )
            .unwrap();
            let b = Var::from_tensor(
                &Tensor::from_vec(values(bs.iter().product(), 7), bs.as_slice(), &dev).unwrap(),
            )
            .unwrap();
            let up =
                Tensor::from_vec(values(xs.iter().product(), 29), xs.as_slice(), &dev).unwrap();
            let fused = row_broadcast_add(x.as_tensor(), b.as_tensor()).unwrap();
            let slow = x.as_tensor().broadcast_add(b.as_tensor()).unwrap();
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
            for v in [&x, &b] {
                let (a, e) = (
                    gf.get(v.as_tensor()).unwrap(),
                    gs.get(v.as_tensor()).unwrap(),
                );
                assert_eq!(a.dims(), e.dims());
                let d = crate::ops::tests::max_diff(a, e);
                assert!(d < 1e-4, "gradient differs by {d}");
            }
        }
    }

    #[test]
    fn column_sums_are_exact_on_integers_and_independent_of_threads() {
        let (rows, w) = (1000, 5);
        let add = |r: usize, acc: &mut [f32]| {
            for (c, a) in acc.iter_mut().enumerate() {
                *a += (r * (c + 1)) as f32 * 0.001 + 1.0;
            }
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| column_sums(rows, w, add));
        let two = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
            .install(|| column_sums(rows, w, add));
        assert_eq!(one, two);
        for (c, &s) in one.iter().enumerate() {
            // Σ_r (r·(c+1)·0.001 + 1) = 1000 + 0.001·(c+1)·999·1000/2
            let exact = 1000.0 + 0.001 * (c + 1) as f64 * 499_500.0;
            assert!(
                (s as f64 - exact).abs() < 1e-3 * exact,
                "column {c}: {s} vs {exact}"
            );
        }
        let plain = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap()
            .install(|| column_sums(3, 2, |r, acc| acc[r % 2] += 1.0));
        assert_eq!(plain, vec![2.0, 1.0]);
    }
}
