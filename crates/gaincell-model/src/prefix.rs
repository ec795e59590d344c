//! Scoring many continuations of one prefix without computing the prefix again.
//!
//! [`Gpt2::prefill`] runs whole sequences in the parallel form (the same attention call as
//! [`Gpt2::forward`]) and keeps every layer's keys and values in a [`PrefixCache`]; [`Gpt2::extend`] runs
//! continuations after a cached prefix: their queries read the cached keys and values directly (softmax), or,
//! on a gain-cell chip, the prefix is written into the head's arrays column by column and each new token
//! writes its column and reads its query, as in generation (the incremental form, equal to the parallel form to
//! float tolerance). Both return the logits of the positions asked for only, so the output head (the largest
//! product of a small model) runs on those rows alone. Batches are right-padded: causal attention never lets a
//! padded position reach a real one.

use candle_core::{Device, Tensor};
use gaincell_attn::KvArray;
use rayon::prelude::*;

use crate::attention::Attention;
use crate::error::{ModelError, Result};
use crate::model::Gpt2;

/// Keys and values of one sequence, every layer, as its attention received them (after a chip's scalers).
#[derive(Debug, Clone)]
pub struct PrefixCache {
    len: usize,
    /// Per layer: keys and values, each `[H, len, D]`.
    layers: Vec<(Vec<f32>, Vec<f32>)>,
}

impl PrefixCache {
    /// Tokens cached.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Gpt2 {
    /// Logits `[N, V]` of the positions `rows[b]` (ascending, in sequence b's own positions) of each sequence,
    /// sequence by sequence, from one batched parallel forward.
    pub fn logits_at(&self, seqs: &[&[u32]], rows: &[Vec<usize>]) -> Result<Tensor> {
        Ok(self.run(seqs, None, rows, false)?.0)
    }

    /// As [`Gpt2::logits_at`], and each sequence's [`PrefixCache`] for [`Gpt2::extend`].
    pub fn prefill(
        &self,
        seqs: &[&[u32]],
        rows: &[Vec<usize>],
    ) -> Result<(Tensor, Vec<PrefixCache>)> {
        self.run(seqs, None, rows, true)
    }

    /// Logits `[N, V]` of continuations, item b being `tokens` after the prefix in `cache`; `rows[b]` are positions
    /// counted from the start of the continuation.
    pub fn extend(&self, items: &[(&PrefixCache, &[u32])], rows: &[Vec<usize>]) -> Result<Tensor> {
        let (caches, seqs): (Vec<&PrefixCache>, Vec<&[u32]>) = items.iter().copied().unzip();
        Ok(self.run(&seqs, Some(&caches), rows, false)?.0)
    }

    fn run(
        &self,
        seqs: &[&[u32]],
        past: Option<&[&PrefixCache]>,
        rows: &[Vec<usize>],
        keep: bool,
    ) -> Result<(Tensor, Vec<PrefixCache>)> {
        let c = &self.config;
        let (h, d, e) = (c.n_head, c.head_dim(), c.n_embd);
        if seqs.is_empty() || rows.len() != seqs.len() {
            return Err(ModelError::Input(format!(
                "{} sequences and {} row lists: give one row list per sequence, at least one sequence",
                seqs.len(),
                rows.len()
            )));
        }
        let offsets: Vec<usize> = match past {
            Some(p) => p.iter().map(|c| c.len).collect(),
            None => vec![0; seqs.len()],
        };
        for ((s, r), &off) in seqs.iter().zip(rows).zip(&offsets) {
            if s.is_empty() {
                return Err(ModelError::Input(
                    "an empty sequence: nothing to run".into(),
                ));
            }
            if let Some(&bad) = r.iter().find(|&&i| i >= s.len()) {
                return Err(ModelError::Input(format!(
                    "row {bad} asked of a sequence of {} tokens",
                    s.len()
                )));
            }
            self.check_ids(s, off)?;
        }
        let (b, l) = (seqs.len(), seqs.iter().map(|s| s.len()).max().unwrap_or(0));
        let mut ids = vec![0u32; b * l];
        let mut pos = vec![0u32; b * l];
        for (i, (s, &off)) in seqs.iter().zip(&offsets).enumerate() {
            ids[i * l..i * l + s.len()].copy_from_slice(s);
            for (t, p) in pos[i * l..(i + 1) * l].iter_mut().enumerate() {
                // Padding may run past the last position; its value never reaches a real token.
                *p = (off + t).min(c.n_positions - 1) as u32;
            }
        }
        let ids = Tensor::from_vec(ids, b * l, &Device::Cpu)?;
        let pos = Tensor::from_vec(pos, b * l, &Device::Cpu)?;
        let mut x = (self.wte.embedding(&ids)? + self.wpe.embedding(&pos)?)?.reshape((b, l, e))?;
        let mut caches: Vec<PrefixCache> = seqs
            .iter()
            .map(|s| PrefixCache {
                len: s.len(),
                layers: Vec::new(),
            })
            .collect();
        for (layer, block) in self.blocks.iter().enumerate() {
            let a = self.layer_norm(&x, &block.ln_1)?;
            let qkv = block.c_attn_forward(&a)?; // [B, L, 3C]
            let split = |i: usize| -> Result<Tensor> {
                Ok(qkv
                    .narrow(2, i * e, e)?
                    .reshape((b, l, h, d))?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let (mut q, mut k, mut v) = (split(0)?, split(1)?, split(2)?);
            if let Some(s) = &block.scalers {
                (q, k, v) = (s.q.apply(&q)?, s.k.apply(&k)?, s.v.apply(&v)?);
            }
            let mut y = match past {
                None => self.attention.forward(&q, &k, &v)?,
                Some(p) => self.attend_after(layer, p, seqs, &q, &k, &v)?,
            };
            if keep {
                let (kf, vf) = (k.flatten_all()?.to_vec1()?, v.flatten_all()?.to_vec1()?);
                for (i, cache) in caches.iter_mut().enumerate() {
                    let n = cache.len;
                    let take = |all: &[f32]| -> Vec<f32> {
                        (0..h)
                            .flat_map(|j| {
                                let at = (i * h + j) * l * d;
                                all[at..at + n * d].iter().copied()
                            })
                            .collect()
                    };
                    cache.layers.push((take(&kf), take(&vf)));
                }
            }
            if let Some(s) = &block.scalers {
                y = s.o.apply(&y)?;
            }
            let y = y.transpose(1, 2)?.reshape((b, l, e))?;
            x = (x + block.c_proj_forward(&y)?)?;
            let m = self.layer_norm(&x, &block.ln_2)?;
            x = (x + block.mlp_forward(&m)?)?;
        }
        let picked: Vec<u32> = rows
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.iter().map(move |&t| (i * l + t) as u32))
            .collect();
        let n = picked.len();
        let x = x
            .reshape((b * l, e))?
            .index_select(&Tensor::from_vec(picked, n, &Device::Cpu)?, 0)?;
        let logits = self.head(&self.layer_norm(&x, &self.ln_f)?)?;
        Ok((logits, if keep { caches } else { Vec::new() }))
    }

    /// Attention of continuation rows `[B, H, L, D]` over their cached prefix and themselves.
    fn attend_after(
        &self,
        layer: usize,
        past: &[&PrefixCache],
        seqs: &[&[u32]],
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
    ) -> Result<Tensor> {
        let dims = q.dims4()?;
        let (h, l, d) = (dims.1, dims.2, dims.3);
        let (q, k, v): (Vec<f32>, Vec<f32>, Vec<f32>) = (
            q.flatten_all()?.to_vec1()?,
            k.flatten_all()?.to_vec1()?,
            v.flatten_all()?.to_vec1()?,
        );
        let mut out = vec![0.0f32; q.len()];
        // One job per (sequence, head): its rows of q, k, v, and the prefix's keys and values.
        let job = |idx: usize| {
            let (i, j) = (idx / h, idx % h);
            let (p, n) = (past[i].len, seqs[i].len());
            let (pk, pv) = &past[i].layers[layer];
            let new = idx * l * d..idx * l * d + n * d;
            (
                &pk[j * p * d..(j + 1) * p * d],
                &pv[j * p * d..(j + 1) * p * d],
                &q[new.clone()],
                &k[new.clone()],
                &v[new],
            )
        };
        match &self.attention {
            Attention::Softmax { window } => {
                out.par_chunks_mut(l * d).enumerate().for_each(|(idx, o)| {
                    let (pk, pv, q, k, v) = job(idx);
                    softmax_after(*window, d, pk, pv, q, k, v, o)
                });
            }
            Attention::GainCell { params } => {
                out.par_chunks_mut(l * d).enumerate().try_for_each_init(
                    || KvArray::new(params),
                    |arrays, (idx, o)| {
                        let (pk, pv, q, k, v) = job(idx);
                        arrays.reset();
                        for (kc, vc) in pk.chunks_exact(d).zip(pv.chunks_exact(d)) {
                            arrays.write(kc, vc)?;
                        }
                        for (((qr, kr), vr), or) in q
                            .chunks_exact(d)
                            .zip(k.chunks_exact(d))
                            .zip(v.chunks_exact(d))
                            .zip(o.chunks_exact_mut(d))
                        {
                            arrays.step(qr, kr, vr, or)?;
                        }
                        Ok::<(), gaincell_attn::AttnError>(())
                    },
                )?;
            }
        }
        Ok(Tensor::from_vec(out, dims, &Device::Cpu)?)
    }
}

/// Causal softmax attention (over the last `window` keys, all when 0) of new rows `q` whose keys are the
/// prefix's `pk` followed by their own `k`; `out` receives one row per query.
#[allow(clippy::too_many_arguments)]
fn softmax_after(
    window: usize,
    d: usize,
    pk: &[f32],
    pv: &[f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
) {
    let p = pk.len() / d;
    let key = |j: usize| {
        if j < p {
            (&pk[j * d..(j + 1) * d], &pv[j * d..(j + 1) * d])
        } else {
            (
                &k[(j - p) * d..(j - p + 1) * d],
                &v[(j - p) * d..(j - p + 1) * d],
            )
        }
    };
    let scale = 1.0 / (d as f32).sqrt();
    let mut s = Vec::new();
    for (i, (qr, o)) in q.chunks_exact(d).zip(out.chunks_exact_mut(d)).enumerate() {
        let t = p + i;
        let lo = if window == 0 {
            0
        } else {
            (t + 1).saturating_sub(window)
        };
        s.clear();
        s.extend(
            (lo..=t).map(|j| qr.iter().zip(key(j).0).map(|(a, b)| a * b).sum::<f32>() * scale),
        );
        let m = s.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        s.iter_mut().for_each(|x| *x = (*x - m).exp());
        let z: f32 = s.iter().sum();
        o.fill(0.0);
        for (j, w) in (lo..=t).zip(&s) {
            for (x, y) in o.iter_mut().zip(key(j).1) {
                *x += w / z * y;
            }
        }
    }
}
