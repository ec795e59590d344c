//! Scoring many continuations of one prefix without computing the prefix again.
//!
//! [`Model::prefill`] runs whole sequences in the parallel form (the same attention call as
//! [`Model::forward`]) and keeps every layer's keys and values in a [`PrefixCache`]; [`Model::extend`] runs
//! continuations after a cached prefix: embeddings, projections and MLP on the new tokens only, and the
//! attention in the same parallel form over the cached keys and values followed by the new ones (the prefix
//! rows' queries are zeros and their outputs dropped: recomputing that attention costs little next to the
//! rest, and keeps one kernel, hence one result, for every chip). Both return the logits of the positions asked
//! for only, so the output head (the largest product of a small model) runs on those rows alone. Sequences are
//! packed one after another without padding; only the attention kernel sees a right-padded batch (causal: a
//! padded slot never reaches a real one).

use candle_core::{Device, Tensor};

use crate::attention::Attention;
use crate::error::{ModelError, Result};
use crate::model::{AttentionForm, Model};

/// Keys and values of one sequence, every layer, as its attention received them (after a chip's scalers; one
/// set per key/value head).
#[derive(Debug, Clone)]
pub struct PrefixCache {
    len: usize,
    /// Per layer: keys and values, each `[H_kv, len, D]`.
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

impl Model {
    /// Logits `[N, V]` of the positions `rows[b]` (ascending, in sequence b's own positions) of each sequence,
    /// sequence by sequence, from one batched parallel forward.
    pub fn logits_at(&self, seqs: &[&[u32]], rows: &[Vec<usize>]) -> Result<Tensor> {
        Ok(self.run(seqs, None, rows, false)?.0)
    }

    /// As [`Model::logits_at`], and each sequence's [`PrefixCache`] for [`Model::extend`].
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
        let mut form = Packed {
            attention: &self.attention,
            past,
            seqs,
            starts: &starts,
            caches: seqs
                .iter()
                .map(|s| PrefixCache {
                    len: s.len(),
                    layers: Vec::new(),
                })
                .collect(),
            keep,
        };
        let x = self.run_blocks(
            &Tensor::from_vec(ids, (1, n), &Device::Cpu)?,
            &Tensor::from_vec(pos, n, &Device::Cpu)?,
            &mut form,
            &mut |_, _, _| Ok(()),
        )?;
        let picked: Vec<u32> = rows
            .iter()
            .zip(&starts)
            .flat_map(|(r, &at)| r.iter().map(move |&t| (at + t) as u32))
            .collect();
        let count = picked.len();
        let x = x
            .squeeze(0)?
            .index_select(&Tensor::from_vec(picked, count, &Device::Cpu)?, 0)?;
        let logits = self.head(&x)?;
        Ok((logits, if keep { form.caches } else { Vec::new() }))
    }
}

/// The packed form: sequences one after another in a `[1, heads, N, D]` batch, each after its cached prefix.
struct Packed<'a> {
    attention: &'a Attention,
    past: Option<&'a [&'a PrefixCache]>,
    seqs: &'a [&'a [u32]],
    starts: &'a [usize],
    caches: Vec<PrefixCache>,
    keep: bool,
}

impl AttentionForm for Packed<'_> {
    /// Attention of packed rows `[1, H, N, D]` (sequence b's rows from `starts[b]`), each sequence after its
    /// cached prefix when there is one: the parallel form on a right-padded batch whose item b holds the
    /// prefix's keys and values followed by its own, with zero queries on the prefix rows, whose outputs are
    /// dropped. `keep` receives each sequence's keys and values of this layer.
    fn attend(&mut self, layer: usize, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        let (past, seqs, starts) = (self.past, self.seqs, self.starts);
        let dims = q.dims4()?;
        let (h, n, d) = (dims.1, dims.2, dims.3);
        let kv_heads = k.dim(1)?;
        let group = h / kv_heads;
        let [q, k, v] = [q, k, v].map(|x| x.flatten_all().and_then(|x| x.to_vec1::<f32>()));
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
        // Head j (query or key/value) of sequence i: its packed new rows, and where its item starts in the batch.
        let new =
            |j: usize, i: usize| (j * n + starts[i]) * d..(j * n + starts[i] + seqs[i].len()) * d;
        let item = |j: usize, i: usize| (i * h + j) * t * d;
        for i in 0..b {
            let p = cached(i);
            for j in 0..h {
                // Query head j reads key/value head j / group: the arrays its group shares.
                let g = j / group;
                let at = item(j, i);
                if let Some(past) = past {
                    let (pk, pv) = &past[i].layers[layer];
                    batch[1][at..at + p * d].copy_from_slice(&pk[g * p * d..(g + 1) * p * d]);
                    batch[2][at..at + p * d].copy_from_slice(&pv[g * p * d..(g + 1) * p * d]);
                }
                let rows = at + p * d..at + (p + seqs[i].len()) * d;
                batch[0][rows.clone()].copy_from_slice(&q[new(j, i)]);
                batch[1][rows.clone()].copy_from_slice(&k[new(g, i)]);
                batch[2][rows].copy_from_slice(&v[new(g, i)]);
            }
            if self.keep {
                let own = |all: &[f32]| -> Vec<f32> {
                    (0..kv_heads)
                        .flat_map(|g| all[new(g, i)].to_vec())
                        .collect()
                };
                self.caches[i].layers.push((own(&k), own(&v)));
            }
        }
        let [qb, kb, vb] = batch.map(|x| Tensor::from_vec(x, (b, h, t, d), &Device::Cpu));
        let y: Vec<f32> = self
            .attention
            .forward_at(gaincell_attn::Site::new(layer, h, group), &qb?, &kb?, &vb?)?
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
