//! A model on a chip, whatever its family: the block's forward pass written once, with the attention as the only
//! thing that differs between the three forms that run it — the parallel kernel over `[B, H, T, D]` (training,
//! perplexity), the packed prefix continuation ([`crate::prefix`]) and the token-by-token step on the chip's arrays
//! ([`crate::decode`]). Each family ([`crate::gpt2`], [`crate::llama`]) supplies its embeddings, the inputs of
//! attention (norm, projections, rotation) and the rest of its block; the per-head affine scalers of the chip sit
//! between them, here.

use candle_core::{DType, Device, Tensor, D};
use gaincell_chip::ChipConfig;
use rand::Rng;

use crate::attention::{Attention, Scalers};
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::gpt2::Gpt2Weights;
use crate::llama::LlamaWeights;

/// `n` draws of N(0, std²) (Box–Muller), generated in parallel chunks: chunk `c` of tensor `index` draws from its
/// own ChaCha stream, so the values depend on the seed alone, not on the thread count.
fn normal_vec(n: usize, std: f64, seed: u64, index: u64) -> Vec<f32> {
    use rand::SeedableRng;
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 16;
    let mut out = vec![0.0f32; n];
    out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, dst)| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream((index << 32) | c as u64);
        for x in dst {
            let (u1, u2): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
            *x = (std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32;
        }
    });
    out
}

/// Where a head's values are probed: its scaled query, key, value, or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Site {
    Q,
    K,
    V,
    O,
}

impl Site {
    pub const ALL: [Site; 4] = [Site::Q, Site::K, Site::V, Site::O];

    pub fn name(self) -> &'static str {
        match self {
            Site::Q => "q",
            Site::K => "k",
            Site::V => "v",
            Site::O => "o",
        }
    }
}

/// The weights of a model of one family.
#[derive(Debug, Clone)]
pub enum Weights {
    Gpt2(Gpt2Weights),
    Llama(LlamaWeights),
}

/// The attention of one form: q `[B, H, T, D]`, k and v `[B, H_kv, T, D]` (after the chip's scalers, in its
/// physical units) → the heads' outputs `[B, H, T, D]`.
pub(crate) trait AttentionForm {
    fn attend(&mut self, layer: usize, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor>;
}

/// A probe of the scaled q', k', v' and o' of every gain-cell layer (see [`Model::hidden_probed`]).
pub type Probe<'a> = dyn FnMut(usize, Site, &Tensor) -> Result<()> + 'a;

/// Key/value heads `[B, H_kv, T, D]` repeated for their groups of query heads `[B, H, T, D]` (head h reads key
/// head h / (H / H_kv), as HF's `repeat_kv`); on a chip, the group's queries read the same arrays.
pub(crate) fn repeat_kv(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, kv, t, d) = x.dims4()?;
    if kv == heads {
        return Ok(x.clone());
    }
    Ok(x.unsqueeze(2)?
        .broadcast_as((b, kv, heads / kv, t, d))?
        .reshape((b, heads, t, d))?)
}

/// Where layer `l`'s scalers are stored in a checkpoint of this family (`h.{l}.attn`,
/// `model.layers.{l}.self_attn`).
pub(crate) fn attention_prefix(config: &ModelConfig, l: usize) -> String {
    match config {
        ModelConfig::Gpt2(_) => Gpt2Weights::attention_prefix(l),
        ModelConfig::Llama(_) => LlamaWeights::attention_prefix(l),
    }
}

/// The parallel form: the kernel over whole sequences.
struct Parallel<'a>(&'a Attention);

impl AttentionForm for Parallel<'_> {
    fn attend(&mut self, layer: usize, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        let h = q.dim(1)?;
        let site = gaincell_attn::Site::new(layer, h, h / k.dim(1)?);
        self.0
            .forward_at(site, q, &repeat_kv(k, h)?, &repeat_kv(v, h)?)
    }
}

/// A transformer language model with its attention on a chip.
#[derive(Debug, Clone)]
pub struct Model {
    pub config: ModelConfig,
    pub chip: ChipConfig,
    pub attention: Attention,
    pub weights: Weights,
    /// Per layer, the per-head affine scalers of a gain-cell chip (empty for softmax attention).
    pub scalers: Vec<Scalers>,
}

impl Model {
    /// The weights of a family's structure, every tensor still empty.
    fn skeleton(config: &ModelConfig) -> Result<Weights> {
        let empty = Tensor::zeros(0, DType::F32, &Device::Cpu)?;
        Ok(match config {
            ModelConfig::Gpt2(c) => Weights::Gpt2(Gpt2Weights::skeleton(c, &empty)),
            ModelConfig::Llama(c) => Weights::Llama(LlamaWeights::skeleton(c, &empty)?),
        })
    }

    /// Every weight tensor (scalers apart) under its HF name, with its shape and where it lives.
    fn fields(&mut self) -> Vec<(String, Vec<usize>, &mut Tensor)> {
        match (&mut self.weights, &self.config) {
            (Weights::Gpt2(w), ModelConfig::Gpt2(c)) => w.fields(c),
            (Weights::Llama(w), ModelConfig::Llama(c)) => w.fields(c),
            _ => unreachable!("weights and config of one family"),
        }
    }

    /// Where layer `l`'s scalers are stored in checkpoints, e.g. `h.3.attn` (`.scaler.q.a` follows).
    pub fn attention_prefix(&self, l: usize) -> String {
        attention_prefix(&self.config, l)
    }

    /// Build from a source of tensors by HF name (`take(name, shape)` returns the tensor, checked for shape);
    /// scalers come from `scalers` when given (our checkpoints) or from the chip's initial values.
    pub(crate) fn assemble(
        config: ModelConfig,
        chip: ChipConfig,
        take: &mut dyn FnMut(&str, &[usize]) -> Result<Tensor>,
        scalers: Option<Vec<Scalers>>,
    ) -> Result<Self> {
        config.validate().map_err(ModelError::Input)?;
        let attention = Attention::for_model(&chip, &config)?;
        let mut m = Model {
            weights: Self::skeleton(&config)?,
            config,
            chip,
            attention,
            scalers: Vec::new(),
        };
        for (name, shape, t) in m.fields() {
            *t = take(&name, &shape)?.to_dtype(DType::F32)?;
        }
        m.scalers = match (scalers, m.attention.is_gain_cell()) {
            (Some(s), true) => s,
            (None, true) => m.initial_scalers()?,
            (_, false) => Vec::new(),
        };
        Ok(m)
    }

    fn initial_scalers(&self) -> Result<Vec<Scalers>> {
        let c = &self.config;
        (0..c.n_layer())
            .map(|_| Scalers::init(&self.chip, c.n_head(), c.n_kv_head(), &Device::Cpu))
            .collect()
    }

    /// A randomly initialised model (the family's scheme; GPT-2: N(0, 0.02), residual projections scaled by
    /// 1/√(2L); Llama: N(0, 0.02), norms 1).
    pub fn random(config: impl Into<ModelConfig>, chip: ChipConfig, seed: u64) -> Result<Self> {
        let config = config.into();
        config.validate().map_err(ModelError::Input)?;
        let mut index = 0u64;
        let cfg = config.clone();
        Self::assemble(
            config,
            chip,
            &mut |name, shape| {
                let n: usize = shape.iter().product();
                let init = match &cfg {
                    ModelConfig::Gpt2(c) => Gpt2Weights::init(c, name),
                    ModelConfig::Llama(_) => LlamaWeights::init(name),
                };
                let data = match init {
                    Ok(v) => vec![v; n],
                    Err(std) => normal_vec(n, std, seed, index),
                };
                index += 1;
                Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
            },
            None,
        )
    }

    /// The same weights on another chip (scalers kept when both chips are gain-cell chips, else the new chip's
    /// initial values).
    pub fn with_chip(&self, chip: ChipConfig) -> Result<Self> {
        let attention = Attention::for_model(&chip, &self.config)?;
        let mut m = self.clone();
        let keep = attention.is_gain_cell() && !m.scalers.is_empty();
        m.attention = attention;
        m.chip = chip;
        m.scalers = match (m.attention.is_gain_cell(), keep) {
            (true, true) => m.scalers,
            (true, false) => m.initial_scalers()?,
            (false, _) => Vec::new(),
        };
        Ok(m)
    }

    /// Check token ids against the vocabulary and the context.
    pub(crate) fn check_ids(&self, ids: &[u32], start: usize) -> Result<()> {
        let vocab = self.config.vocab_size();
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(ModelError::Input(format!(
                "token id {bad} is outside the vocabulary ({vocab})"
            )));
        }
        if start + ids.len() > self.config.n_positions() {
            return Err(ModelError::Input(format!(
                "{} tokens from position {start} exceed the model's {} positions",
                ids.len(),
                self.config.n_positions()
            )));
        }
        Ok(())
    }

    /// The one forward pass: token ids `[B, T]` at positions `pos` `[T]` (u32) through every block, the attention
    /// computed by `form`, to the final hidden states `[B, T, C]` (after the final norm). `probe` sees each
    /// gain-cell layer's scaled q', k', v' (after the affine scaling, before the chip's clamp) and o'.
    pub(crate) fn run_blocks(
        &self,
        ids: &Tensor,
        pos: &Tensor,
        form: &mut dyn AttentionForm,
        probe: &mut Probe,
    ) -> Result<Tensor> {
        let mut x = match (&self.weights, &self.config) {
            (Weights::Gpt2(w), ModelConfig::Gpt2(c)) => w.embed(c, ids, pos)?,
            (Weights::Llama(w), ModelConfig::Llama(c)) => w.embed(c, ids)?,
            _ => unreachable!("weights and config of one family"),
        };
        for l in 0..self.config.n_layer() {
            let (mut q, mut k, mut v) = match (&self.weights, &self.config) {
                (Weights::Gpt2(w), ModelConfig::Gpt2(c)) => w.attention_inputs(c, l, &x)?,
                (Weights::Llama(w), ModelConfig::Llama(c)) => w.attention_inputs(c, l, &x, pos)?,
                _ => unreachable!(),
            };
            let scalers = self.scalers.get(l);
            if let Some(s) = scalers {
                (q, k, v) = (s.q.apply(&q)?, s.k.apply(&k)?, s.v.apply(&v)?);
                probe(l, Site::Q, &q)?;
                probe(l, Site::K, &k)?;
                probe(l, Site::V, &v)?;
            }
            let mut y = form.attend(l, &q, &k, &v)?;
            if let Some(s) = scalers {
                y = s.o.apply(&y)?;
                probe(l, Site::O, &y)?;
            }
            x = match (&self.weights, &self.config) {
                (Weights::Gpt2(w), ModelConfig::Gpt2(c)) => w.block_output(c, l, &x, &y)?,
                (Weights::Llama(w), ModelConfig::Llama(c)) => w.block_output(c, l, &x, &y)?,
                _ => unreachable!(),
            };
        }
        match (&self.weights, &self.config) {
            (Weights::Gpt2(w), ModelConfig::Gpt2(c)) => w.final_norm(c, &x),
            (Weights::Llama(w), ModelConfig::Llama(c)) => w.final_norm(c, &x),
            _ => unreachable!(),
        }
    }

    /// The final hidden states `[B, T, C]` (after the final norm) for token ids `[B, T]` (u32), all positions at
    /// once (the parallel form): what [`Model::head`] turns into logits.
    pub fn hidden(&self, ids: &Tensor) -> Result<Tensor> {
        self.hidden_probed(ids, &mut |_, _, _| Ok(()))
    }

    /// [`Model::hidden`], showing `probe(layer, site, x)` each head's scaled q', k', v' (after the affine scaling,
    /// before the chip's clamp; k and v per key/value head) and scaled output o', all `[B, heads, T, D]`: what
    /// training's statistics and the adaptation measure. Only gain-cell layers (the ones with scalers) are probed.
    pub fn hidden_probed(&self, ids: &Tensor, probe: &mut Probe) -> Result<Tensor> {
        let (_, t) = ids.dims2()?;
        // Each of the B rows is a sequence from position 0: check the ids of one row's length at a time.
        for row in ids.flatten_all()?.to_vec1::<u32>()?.chunks(t.max(1)) {
            self.check_ids(row, 0)?;
        }
        let pos = Tensor::arange(0u32, t as u32, &Device::Cpu)?;
        self.run_blocks(ids, &pos, &mut Parallel(&self.attention), probe)
    }

    /// Logits `[B, T, V]` for token ids `[B, T]` (u32), all positions at once (the parallel form).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        self.head(&self.hidden(ids)?)
    }

    /// The output head: logits for final hidden states `[…, C]`.
    pub fn head(&self, x: &Tensor) -> Result<Tensor> {
        let w = match &self.weights {
            Weights::Gpt2(w) => w.output_weight(),
            Weights::Llama(w) => w.output_weight(),
        };
        crate::ops::matmul_last(x, &w.t()?)
    }

    /// Every tensor under its HF name, scalers as `{attention_prefix}.scaler.{q,k,v,o}.{a,b}`.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut m = self.clone();
        m.tensors_mut()
            .into_iter()
            .map(|(n, t)| (n, t.clone()))
            .collect()
    }

    /// Every tensor, mutable, in the order and under the names of [`Model::named_tensors`].
    pub fn tensors_mut(&mut self) -> Vec<(String, &mut Tensor)> {
        let prefixes: Vec<String> = (0..self.scalers.len())
            .map(|l| self.attention_prefix(l))
            .collect();
        let Model {
            weights,
            config,
            scalers,
            ..
        } = self;
        let mut v: Vec<(String, &mut Tensor)> = match (weights, &*config) {
            (Weights::Gpt2(w), ModelConfig::Gpt2(c)) => w.fields(c),
            (Weights::Llama(w), ModelConfig::Llama(c)) => w.fields(c),
            _ => unreachable!(),
        }
        .into_iter()
        .map(|(n, _, t)| (n, t))
        .collect();
        for (s, p) in scalers.iter_mut().zip(&prefixes) {
            for (n, a) in [
                ("q", &mut s.q),
                ("k", &mut s.k),
                ("v", &mut s.v),
                ("o", &mut s.o),
            ] {
                v.push((format!("{p}.scaler.{n}.a"), &mut a.a));
                v.push((format!("{p}.scaler.{n}.b"), &mut a.b));
            }
        }
        v
    }

    /// A copy of the model whose every tensor is a fresh trainable [`Var`](candle_core::Var), with the vars by
    /// name: gradients of a loss computed with the copy land on them, and updating a var updates the copy.
    pub fn trainable(&self) -> Result<(Model, Vec<(String, candle_core::Var)>)> {
        let mut m = self.clone();
        let mut vars = Vec::new();
        for (name, t) in m.tensors_mut() {
            let var = candle_core::Var::from_tensor(&t.copy()?)?;
            *t = var.as_tensor().clone();
            vars.push((name, var));
        }
        Ok((m, vars))
    }

    /// Log-probabilities `[B, T, V]` from logits.
    pub fn log_softmax(logits: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::log_softmax(logits, D::Minus1)?)
    }
}
