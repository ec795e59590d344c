//! Token-by-token decoding as the chip runs it: each step writes the new token's k and v into each key/value
//! head's arrays (one ring-buffer column, leaking by age) and reads one query per query head (with grouped-query
//! attention a group's queries read the same arrays); softmax layers keep an ordinary KV cache. The block's
//! forward is [`Model`]'s own, with this step as its attention.

use candle_core::{Device, Tensor};
use gaincell_attn::{HeadSite, KvArray};
use rand::{Rng, SeedableRng};

use crate::attention::Attention;
use crate::error::{ModelError, Result};
use crate::model::{AttentionForm, Model};

/// Per-layer state of the attention, one entry per key/value head (shared by its group of query heads).
enum LayerState {
    /// Keys and values of the last `window` tokens (all when 0), per key/value head, flattened `[tokens, D]`.
    Softmax {
        keys: Vec<Vec<f32>>,
        values: Vec<Vec<f32>>,
        window: usize,
    },
    /// One pair of arrays per key/value head.
    GainCell { arrays: Vec<KvArray> },
}

/// The incremental form: one token, its k and v written into each key/value head's state, each query head reading
/// its group's.
struct Step<'a> {
    layers: &'a mut [LayerState],
    /// Time spent attending (the arrays' write and read, or the KV cache's), summed over layers.
    spent: &'a mut std::time::Duration,
}

impl AttentionForm for Step<'_> {
    fn attend(&mut self, layer: usize, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        let started = std::time::Instant::now();
        let y = self.attend_timed(layer, q, k, v);
        *self.spent += started.elapsed();
        y
    }
}

impl Step<'_> {
    fn attend_timed(&mut self, layer: usize, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        let dims = q.dims4()?; // [1, H, 1, D]
        let (h, d) = (dims.1, dims.3);
        let kv_heads = k.dim(1)?;
        let group = h / kv_heads;
        let [q, k, v] = [q, k, v].map(|x| x.flatten_all().and_then(|x| x.to_vec1::<f32>()));
        let (q, k, v) = (q?, k?, v?);
        let mut y = vec![0.0f32; h * d];
        match &mut self.layers[layer] {
            LayerState::Softmax {
                keys,
                values,
                window,
            } => {
                for g in 0..kv_heads {
                    let r = g * d..(g + 1) * d;
                    push_window(&mut keys[g], &mut values[g], *window, &k[r.clone()], &v[r]);
                }
                for j in 0..h {
                    let r = j * d..(j + 1) * d;
                    let g = j / group;
                    softmax_read(&keys[g], &values[g], &q[r.clone()], &mut y[r]);
                }
            }
            LayerState::GainCell { arrays } => {
                for (g, a) in arrays.iter_mut().enumerate() {
                    let r = g * d..(g + 1) * d;
                    a.write(&k[r.clone()], &v[r])?;
                }
                for j in 0..h {
                    let r = j * d..(j + 1) * d;
                    arrays[j / group].read_as(j, &q[r.clone()], &mut y[r])?;
                }
            }
        }
        Ok(Tensor::from_vec(y, dims, &Device::Cpu)?)
    }
}

/// Incremental decoding of one sequence.
pub struct Decoder<'m> {
    model: &'m Model,
    pos: usize,
    layers: Vec<LayerState>,
    attention_time: std::time::Duration,
}

impl<'m> Decoder<'m> {
    /// Empty arrays / caches for `model`.
    pub fn new(model: &'m Model) -> Result<Self> {
        let kv = model.config.n_kv_head();
        let group = model.config.n_head() / kv;
        let layers = (0..model.config.n_layer())
            .map(|layer| match &model.attention {
                Attention::Softmax { window } => LayerState::Softmax {
                    keys: vec![Vec::new(); kv],
                    values: vec![Vec::new(); kv],
                    window: *window,
                },
                Attention::GainCell { params } => LayerState::GainCell {
                    // Key/value head g of this layer; its group's first query head reads by default.
                    arrays: (0..kv)
                        .map(|g| {
                            let site = HeadSite {
                                layer,
                                seq: 0,
                                head: g * group,
                                kv_head: g,
                            };
                            KvArray::at(params, site)
                        })
                        .collect(),
                },
            })
            .collect();
        Ok(Decoder {
            model,
            pos: 0,
            layers,
            attention_time: std::time::Duration::ZERO,
        })
    }

    /// Wall time spent in the attention of every step so far (the simulated arrays' write and read, or the KV
    /// cache's): what `bench generate` separates from the rest of the model.
    pub fn attention_time(&self) -> std::time::Duration {
        self.attention_time
    }

    /// Tokens fed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Feed one token; returns the logits for the next one.
    pub fn step(&mut self, token: u32) -> Result<Vec<f32>> {
        let m = self.model;
        m.check_ids(&[token], self.pos)?;
        let ids = Tensor::new(&[[token]], &Device::Cpu)?;
        let pos = Tensor::new(&[self.pos as u32], &Device::Cpu)?;
        let x = m.run_blocks(
            &ids,
            &pos,
            &mut Step {
                layers: &mut self.layers,
                spent: &mut self.attention_time,
            },
            &mut |_, _, _| Ok(()),
        )?;
        self.pos += 1;
        Ok(m.head(&x)?.flatten_all()?.to_vec1()?)
    }
}

/// Append a token's key and value to a sliding (or, at window 0, growing) KV cache.
fn push_window(keys: &mut Vec<f32>, values: &mut Vec<f32>, window: usize, k: &[f32], v: &[f32]) {
    let d = k.len();
    keys.extend_from_slice(k);
    values.extend_from_slice(v);
    if window > 0 && keys.len() > window * d {
        let drop = keys.len() - window * d;
        keys.drain(..drop);
        values.drain(..drop);
    }
}

/// One query of causal softmax attention over the cached keys and values.
fn softmax_read(keys: &[f32], values: &[f32], q: &[f32], out: &mut [f32]) {
    let d = q.len();
    let scale = 1.0 / (d as f32).sqrt();
    let scores: Vec<f32> = keys
        .chunks_exact(d)
        .map(|kr| kr.iter().zip(q).map(|(a, b)| a * b).sum::<f32>() * scale)
        .collect();
    let mx = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let p: Vec<f32> = scores.iter().map(|s| (s - mx).exp()).collect();
    let z: f32 = p.iter().sum();
    out.fill(0.0);
    for (pj, vr) in p.iter().zip(values.chunks_exact(d)) {
        for (o, x) in out.iter_mut().zip(vr) {
            *o += pj / z * x;
        }
    }
}

/// Picks the next token from logits: greedy at temperature 0, else softmax(logits / T) over the top k.
pub struct Sampler {
    temperature: f32,
    top_k: Option<usize>,
    rng: rand_chacha::ChaCha8Rng,
}

impl Sampler {
    pub fn new(temperature: f32, top_k: Option<usize>, seed: u64) -> Result<Self> {
        if !temperature.is_finite() || temperature < 0.0 {
            return Err(ModelError::Input(format!(
                "temperature {temperature}: give a number ≥ 0 (0 = greedy)"
            )));
        }
        if top_k == Some(0) {
            return Err(ModelError::Input("top-k 0: give at least 1".into()));
        }
        Ok(Sampler {
            temperature,
            top_k,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// The next token; logits that are NaN or +∞ are an error (they would pick a token at random silently).
    pub fn sample(&mut self, logits: &[f32]) -> Result<u32> {
        if let Some(i) = logits
            .iter()
            .position(|x| x.is_nan() || *x == f32::INFINITY)
        {
            return Err(ModelError::Input(format!(
                "generation: the model's next-token logits are {} at token id {i} (the weights or the chip's outputs overflowed): check the model with `gaincell eval ppl`",
                logits[i]
            )));
        }
        Ok(self.pick(logits))
    }

    fn pick(&mut self, logits: &[f32]) -> u32 {
        let argmax = || {
            logits
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i as u32)
        };
        if self.temperature == 0.0 {
            return argmax();
        }
        let mut idx: Vec<usize> = (0..logits.len()).collect();
        if let Some(k) = self.top_k {
            idx.sort_unstable_by(|&a, &b| logits[b].total_cmp(&logits[a]));
            idx.truncate(k);
        }
        let mx = idx
            .iter()
            .map(|&i| logits[i])
            .fold(f32::NEG_INFINITY, f32::max);
        let w: Vec<f64> = idx
            .iter()
            .map(|&i| (((logits[i] - mx) / self.temperature) as f64).exp())
            .collect();
        let mut u = self.rng.gen::<f64>() * w.iter().sum::<f64>();
        for (&i, wi) in idx.iter().zip(&w) {
            u -= wi;
            if u <= 0.0 {
                return i as u32;
            }
        }
        idx.last().map_or_else(argmax, |&i| i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::Sampler;

    #[test]
    fn nan_or_infinite_logits_are_an_error_not_a_token() {
        for t in [0.0, 1.0] {
            let mut s = Sampler::new(t, None, 0).unwrap();
            assert!(s.sample(&[0.0, 3.0, 1.0]).unwrap() < 3);
            for bad in [f32::NAN, f32::INFINITY] {
                let e = s.sample(&[0.0, bad, 1.0]).unwrap_err().to_string();
                assert!(
                    e.contains("at token id 1") && e.contains("logits are"),
                    "{e}"
                );
            }
            // -∞ is a token the model rules out, not an error.
            assert_eq!(s.sample(&[f32::NEG_INFINITY, 2.0]).unwrap(), 1);
        }
    }
}
