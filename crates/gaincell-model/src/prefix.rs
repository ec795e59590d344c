//! Scoring many continuations of one prefix without computing the prefix again.
//!
//! [`Gpt2::prefill`] runs whole sequences in the parallel form (the same attention call as
//! [`Gpt2::forward`]) and keeps every layer's keys and values in a [`PrefixCache`]; [`Gpt2::extend`] runs
//! continuations after a cached prefix: embeddings, projections and MLP on the new tokens only, and the
//! attention in the same parallel form over the cached keys and values followed by the new ones (the prefix
//! rows' queries are zeros and their outputs dropped: recomputing that attention costs little next to the
//! rest, and keeps one kernel, hence one result, for every chip). Both return the logits of the positions asked
//! for only, so the output head (the largest product of a small model) runs on those rows alone. Sequences are
//! packed one after another without padding; only the attention kernel sees a right-padded batch (causal: a
//! padded slot never reaches a real one).

use candle_core::{Device, Tensor};

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
        // The sequences packed one after another, no padding: every op but attention works row by row.
        let starts: Vec<usize> = seqs
            .iter()
            .scan(0, |at, s| {
                let here = *at;
                *at += s.len();
                Some(here)
            })
            .collect();
        let n: usize = seqs.iter().map(|s| s.len()).sum();
        let ids: Vec<u32> = seqs.iter().flat_map(|s| s.iter().copied()).collect();
        let pos: Vec<u32> = seqs
            .iter()
            .zip(&offsets)
            .flat_map(|(s, &off)| (off..off + s.len()).map(|p| p as u32))
            .collect();
        let packed = |v: Vec<u32>| Tensor::from_vec(v, n, &Device::Cpu);
        let mut x = (self.wte.embedding(&packed(ids)?)? + self.wpe.embedding(&packed(pos)?)?)?;
        let mut caches: Vec<PrefixCache> = seqs
            .iter()
            .map(|s| PrefixCache {
                len: s.len(),
                layers: Vec::new(),
            })
            .collect();
        for (layer, block) in self.blocks.iter().enumerate() {
            let a = self.layer_norm(&x, &block.ln_1)?;
            let qkv = block.c_attn_forward(&a)?; // [N, 3C]
                                                 // [1, H, N, D]: heads on dim 1, as the scalers and the kernels take them.
            let split = |i: usize| -> Result<Tensor> {
                Ok(qkv
                    .narrow(1, i * e, e)?
                    .reshape((n, h, d))?
                    .transpose(0, 1)?
                    .unsqueeze(0)?
                    .contiguous()?)
            };
            let (mut q, mut k, mut v) = (split(0)?, split(1)?, split(2)?);
            if let Some(s) = &block.scalers {
                (q, k, v) = (s.q.apply(&q)?, s.k.apply(&k)?, s.v.apply(&v)?);
            }
            let keep_into = keep.then_some(caches.as_mut_slice());
            let mut y = self.attend(layer, past, seqs, &starts, [&q, &k, &v], keep_into)?;
            if let Some(s) = &block.scalers {
                y = s.o.apply(&y)?;
            }
            let y = y.squeeze(0)?.transpose(0, 1)?.reshape((n, e))?;
            x = (x + block.c_proj_forward(&y)?)?;
            let m = self.layer_norm(&x, &block.ln_2)?;
            x = (x + block.mlp_forward(&m)?)?;
        }
        let picked: Vec<u32> = rows
            .iter()
            .zip(&starts)
            .flat_map(|(r, &at)| r.iter().map(move |&t| (at + t) as u32))
            .collect();
        let count = picked.len();
        let x = x.index_select(&Tensor::from_vec(picked, count, &Device::Cpu)?, 0)?;
        let logits = self.head(&self.layer_norm(&x, &self.ln_f)?)?;
        Ok((logits, if keep { caches } else { Vec::new() }))
    }

    /// Attention of packed rows `[1, H, N, D]` (sequence b's rows from `starts[b]`), each sequence after its
    /// cached prefix when there is one: the parallel form on a right-padded batch whose item b holds the
    /// prefix's keys and values followed by its own, with zero queries on the prefix rows, whose outputs are
    /// dropped. `keep` receives each sequence's keys and values of this layer.
    fn attend(
        &self,
        layer: usize,
        past: Option<&[&PrefixCache]>,
        seqs: &[&[u32]],
        starts: &[usize],
        qkv: [&Tensor; 3],
        mut keep: Option<&mut [PrefixCache]>,
    ) -> Result<Tensor> {
        let dims = qkv[0].dims4()?;
        let (h, n, d) = (dims.1, dims.2, dims.3);
        let [q, k, v] = qkv.map(|x| x.flatten_all().and_then(|x| x.to_vec1::<f32>()));
        let (q, k, v) = (q?, k?, v?);
        let cached = |i: usize| past.map_or(0, |p| p[i].len);
        let (b, t) = (
            seqs.len(),
            (0..seqs.len())
                .map(|i| cached(i) + seqs[i].len())
                .max()
                .unwrap_or(0),
        );
        let mut batch = [0; 3].map(|_| vec![0.0f32; b * h * t * d]);
        // Head j of sequence i: its packed new rows, and where its item starts in the batch.
        let new =
            |j: usize, i: usize| (j * n + starts[i]) * d..(j * n + starts[i] + seqs[i].len()) * d;
        let item = |j: usize, i: usize| (i * h + j) * t * d;
        for i in 0..b {
            let p = cached(i);
            for j in 0..h {
                let at = item(j, i);
                if let Some(past) = past {
                    let (pk, pv) = &past[i].layers[layer];
                    batch[1][at..at + p * d].copy_from_slice(&pk[j * p * d..(j + 1) * p * d]);
                    batch[2][at..at + p * d].copy_from_slice(&pv[j * p * d..(j + 1) * p * d]);
                }
                let rows = at + p * d..at + (p + seqs[i].len()) * d;
                for (x, all) in batch.iter_mut().zip([&q, &k, &v]) {
                    x[rows.clone()].copy_from_slice(&all[new(j, i)]);
                }
            }
            if let Some(caches) = keep.as_deref_mut() {
                let own = |all: &[f32]| -> Vec<f32> {
                    (0..h).flat_map(|j| all[new(j, i)].to_vec()).collect()
                };
                caches[i].layers.push((own(&k), own(&v)));
            }
        }
        let [qb, kb, vb] = batch.map(|x| Tensor::from_vec(x, (b, h, t, d), &Device::Cpu));
        let y: Vec<f32> = self
            .attention
            .forward(&qb?, &kb?, &vb?)?
            .flatten_all()?
            .to_vec1()?;
        let mut out = vec![0.0f32; q.len()];
        for i in 0..b {
            for j in 0..h {
                let at = item(j, i) + cached(i) * d;
                out[new(j, i)].copy_from_slice(&y[at..at + seqs[i].len() * d]);
            }
        }
        Ok(Tensor::from_vec(out, dims, &Device::Cpu)?)
    }
}
