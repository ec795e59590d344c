//! Per-head statistics of the scaled q', k', v' and head output o' (docs/mapping.md#statistics): mean and standard
//! deviation over batch × tokens × dims, after the affine scaling and before the clamp. Training a linear model keeps
//! them as exponential moving averages (0.1 new) — the targets the adaptation steers the nonlinear model towards.

use candle_core::Tensor;
use gaincell_model::Site;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Mean and std per layer and head of one site.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Moments {
    /// `[layer][head]`.
    pub mean: Vec<Vec<f64>>,
    pub std: Vec<Vec<f64>>,
}

/// The statistics of all four sites.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HeadStats {
    pub q: Moments,
    pub k: Moments,
    pub v: Moments,
    pub o: Moments,
    /// Updates folded in (0: empty).
    pub updates: u64,
}

impl HeadStats {
    pub fn site(&self, s: Site) -> &Moments {
        match s {
            Site::Q => &self.q,
            Site::K => &self.k,
            Site::V => &self.v,
            Site::O => &self.o,
        }
    }

    pub fn site_mut(&mut self, s: Site) -> &mut Moments {
        match s {
            Site::Q => &mut self.q,
            Site::K => &mut self.k,
            Site::V => &mut self.v,
            Site::O => &mut self.o,
        }
    }

    /// Fold a fresh measurement in as an EMA with weight `new` (the first one is taken as is).
    pub fn ema(&mut self, fresh: &HeadStats, new: f64) {
        if self.updates == 0 {
            *self = fresh.clone();
            self.updates = 1;
            return;
        }
        for s in Site::ALL {
            let (dst, src) = (self.site_mut(s), fresh.site(s));
            for (d, x) in [(&mut dst.mean, &src.mean), (&mut dst.std, &src.std)] {
                for (dl, xl) in d.iter_mut().zip(x) {
                    for (a, b) in dl.iter_mut().zip(xl) {
                        *a = (1.0 - new) * *a + new * b;
                    }
                }
            }
        }
        self.updates += 1;
    }
}

/// Per-head mean and (unbiased, as `torch.std`) standard deviation of a `[B, H, T, D]` tensor.
pub fn head_moments(x: &Tensor) -> Result<(Vec<f64>, Vec<f64>)> {
    let (b, h, t, d) = x.dims4()?;
    let v: Vec<f32> = x.detach().contiguous()?.flatten_all()?.to_vec1()?;
    let per = t * d;
    let n = (b * per) as f64;
    let mut mean = vec![0.0f64; h];
    let mut var = vec![0.0f64; h];
    for (head, (m, s)) in mean.iter_mut().zip(var.iter_mut()).enumerate() {
        let rows = (0..b).map(|bi| &v[(bi * h + head) * per..(bi * h + head + 1) * per]);
        let sum: f64 = rows.clone().flatten().map(|&x| x as f64).sum();
        *m = sum / n;
        let ss: f64 = rows.flatten().map(|&x| (x as f64 - *m).powi(2)).sum();
        *s = ss / (n - 1.0).max(1.0);
    }
    Ok((mean, var.into_iter().map(f64::sqrt).collect()))
}

/// Collects [`head_moments`] of every probed site of one forward pass.
pub struct Recorder {
    pub stats: HeadStats,
}

impl Recorder {
    pub fn new(layers: usize) -> Self {
        let empty = || Moments {
            mean: vec![Vec::new(); layers],
            std: vec![Vec::new(); layers],
        };
        Recorder {
            stats: HeadStats {
                q: empty(),
                k: empty(),
                v: empty(),
                o: empty(),
                updates: 1,
            },
        }
    }

    pub fn record(
        &mut self,
        layer: usize,
        site: Site,
        x: &Tensor,
    ) -> std::result::Result<(), gaincell_model::ModelError> {
        let (m, s) =
            head_moments(x).map_err(|e| gaincell_model::ModelError::Input(e.to_string()))?;
        let dst = self.stats.site_mut(site);
        dst.mean[layer] = m;
        dst.std[layer] = s;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_per_head_over_batch_tokens_and_dims() {
        // B 2, H 2, T 1, D 2: head 0 sees 1, 2, 3, 4; head 1 sees 10 four times.
        let x = Tensor::new(
            &[
                [[[1.0f32, 2.0]], [[10.0, 10.0]]],
                [[[3.0, 4.0]], [[10.0, 10.0]]],
            ],
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let (m, s) = head_moments(&x).unwrap();
        assert_eq!(m, vec![2.5, 10.0]);
        assert!(
            (s[0] - (5.0f64 / 3.0).sqrt()).abs() < 1e-12,
            "unbiased std of 1..4"
        );
        assert_eq!(s[1], 0.0);
    }

    #[test]
    fn ema_takes_the_first_then_blends_one_tenth() {
        let one = |x: f64| Moments {
            mean: vec![vec![x]],
            std: vec![vec![2.0 * x]],
        };
        let fresh = |x: f64| HeadStats {
            q: one(x),
            k: one(x),
            v: one(x),
            o: one(x),
            updates: 1,
        };
        let mut s = HeadStats::default();
        s.ema(&fresh(1.0), 0.1);
        assert_eq!(s.q.mean[0][0], 1.0);
        s.ema(&fresh(2.0), 0.1);
        assert!((s.o.mean[0][0] - 1.1).abs() < 1e-12);
        assert!((s.k.std[0][0] - 2.2).abs() < 1e-12);
        assert_eq!(s.updates, 2);
    }
}
