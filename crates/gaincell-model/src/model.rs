//! GPT-2, the whole model in one file (nanoGPT's shape): embeddings, blocks of layer norm → attention on the
//! chip → projection → layer norm → MLP, a final layer norm and the tied output head.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, D};
use gaincell_chip::ChipConfig;
use rand::Rng;

use crate::attention::{Attention, Scalers};
use crate::config::Gpt2Config;
use crate::error::{ModelError, Result};

/// A linear map in HF's Conv1D layout: `y = x·w + b`, `w` is `[in, out]`.
#[derive(Debug, Clone)]
pub struct Conv1D {
    pub w: Tensor,
    pub b: Tensor,
}

impl Conv1D {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let (rows, inner) = (
            dims[..dims.len() - 1].iter().product::<usize>(),
            dims[dims.len() - 1],
        );
        let y = x
            .reshape((rows, inner))?
            .matmul(&self.w)?
            .broadcast_add(&self.b)?;
        let mut out = dims;
        *out.last_mut().expect("rank ≥ 1") = self.w.dim(1)?;
        Ok(y.reshape(out)?)
    }
}

#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub w: Tensor,
    pub b: Tensor,
}

#[derive(Debug, Clone)]
pub struct Block {
    pub ln_1: LayerNorm,
    pub c_attn: Conv1D,
    pub c_proj: Conv1D,
    pub ln_2: LayerNorm,
    pub c_fc: Conv1D,
    pub mlp_proj: Conv1D,
    /// Per-head affine scalers; present when the attention is a gain-cell chip.
    pub scalers: Option<Scalers>,
}

impl Block {
    pub(crate) fn c_attn_forward(&self, x: &Tensor) -> Result<Tensor> {
        self.c_attn.forward(x)
    }

    pub(crate) fn c_proj_forward(&self, x: &Tensor) -> Result<Tensor> {
        self.c_proj.forward(x)
    }

    /// The MLP: c_fc → GELU (tanh approximation, as GPT-2) → c_proj.
    pub(crate) fn mlp_forward(&self, x: &Tensor) -> Result<Tensor> {
        self.mlp_proj
            .forward(&crate::ops::gelu(&self.c_fc.forward(x)?)?)
    }
}

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

/// GPT-2 with its attention on a chip.
#[derive(Debug, Clone)]
pub struct Gpt2 {
    pub config: Gpt2Config,
    pub chip: ChipConfig,
    pub attention: Attention,
    pub wte: Tensor,
    pub wpe: Tensor,
    pub blocks: Vec<Block>,
    pub ln_f: LayerNorm,
}

/// The HF names of one block's tensors (without prefix) and their shapes.
pub(crate) fn block_tensor_shapes(c: &Gpt2Config, l: usize) -> Vec<(String, Vec<usize>)> {
    let e = c.n_embd;
    [
        ("ln_1.weight", vec![e]),
        ("ln_1.bias", vec![e]),
        ("attn.c_attn.weight", vec![e, 3 * e]),
        ("attn.c_attn.bias", vec![3 * e]),
        ("attn.c_proj.weight", vec![e, e]),
        ("attn.c_proj.bias", vec![e]),
        ("ln_2.weight", vec![e]),
        ("ln_2.bias", vec![e]),
        ("mlp.c_fc.weight", vec![e, 4 * e]),
        ("mlp.c_fc.bias", vec![4 * e]),
        ("mlp.c_proj.weight", vec![4 * e, e]),
        ("mlp.c_proj.bias", vec![e]),
    ]
    .into_iter()
    .map(|(n, s)| (format!("h.{l}.{n}"), s))
    .collect()
}

/// Every tensor of the model under its HF name (no prefix), with its shape.
pub(crate) fn tensor_shapes(c: &Gpt2Config) -> Vec<(String, Vec<usize>)> {
    let mut v = vec![
        ("wte.weight".to_string(), vec![c.vocab_size, c.n_embd]),
        ("wpe.weight".to_string(), vec![c.n_positions, c.n_embd]),
    ];
    for l in 0..c.n_layer {
        v.extend(block_tensor_shapes(c, l));
    }
    v.push(("ln_f.weight".into(), vec![c.n_embd]));
    v.push(("ln_f.bias".into(), vec![c.n_embd]));
    v
}

impl Gpt2 {
    /// Build from tensors named as HF names them (see [`tensor_shapes`]), already checked for shape; scalers
    /// come from `scalers` when given (our checkpoints) or from the chip's initial values.
    pub(crate) fn from_tensors(
        config: Gpt2Config,
        chip: ChipConfig,
        t: &HashMap<String, Tensor>,
        scalers: Option<Vec<Scalers>>,
    ) -> Result<Self> {
        let attention = Attention::from_chip(&chip, config.head_dim())?;
        let device = Device::Cpu;
        let get = |n: &str| -> Result<Tensor> {
            Ok(t.get(n)
                .ok_or_else(|| ModelError::Input(format!("missing tensor {n}")))?
                .to_dtype(DType::F32)?)
        };
        let conv = |p: &str| -> Result<Conv1D> {
            Ok(Conv1D {
                w: get(&format!("{p}.weight"))?,
                b: get(&format!("{p}.bias"))?,
            })
        };
        let ln = |p: &str| -> Result<LayerNorm> {
            Ok(LayerNorm {
                w: get(&format!("{p}.weight"))?,
                b: get(&format!("{p}.bias"))?,
            })
        };
        let mut blocks = Vec::with_capacity(config.n_layer);
        for l in 0..config.n_layer {
            let sc = match (&scalers, attention.is_gain_cell()) {
                (Some(s), true) => Some(s[l].clone()),
                (None, true) => Some(Scalers::init(&chip, config.n_head, &device)?),
                (_, false) => None,
            };
            blocks.push(Block {
                ln_1: ln(&format!("h.{l}.ln_1"))?,
                c_attn: conv(&format!("h.{l}.attn.c_attn"))?,
                c_proj: conv(&format!("h.{l}.attn.c_proj"))?,
                ln_2: ln(&format!("h.{l}.ln_2"))?,
                c_fc: conv(&format!("h.{l}.mlp.c_fc"))?,
                mlp_proj: conv(&format!("h.{l}.mlp.c_proj"))?,
                scalers: sc,
            });
        }
        Ok(Gpt2 {
            wte: get("wte.weight")?,
            wpe: get("wpe.weight")?,
            ln_f: ln("ln_f")?,
            blocks,
            attention,
            chip,
            config,
        })
    }

    /// A randomly initialised model (GPT-2's scheme: N(0, 0.02), residual projections scaled by 1/√(2L)).
    pub fn random(config: Gpt2Config, chip: ChipConfig, seed: u64) -> Result<Self> {
        config.validate().map_err(ModelError::Input)?;
        let mut t = HashMap::new();
        let resid = 0.02 / (2.0 * config.n_layer as f64).sqrt();
        for (index, (name, shape)) in tensor_shapes(&config).into_iter().enumerate() {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = if name.contains("ln_") && name.ends_with("weight") {
                vec![1.0; n]
            } else if name.ends_with("bias") {
                vec![0.0; n]
            } else {
                let std = if name.ends_with("c_proj.weight") {
                    resid
                } else {
                    0.02
                };
                normal_vec(n, std, seed, index as u64)
            };
            t.insert(name, Tensor::from_vec(data, shape, &Device::Cpu)?);
        }
        Self::from_tensors(config, chip, &t, None)
    }

    /// The same weights on another chip (scalers kept when both chips are gain-cell chips, else the new chip's
    /// initial values).
    pub fn with_chip(&self, chip: ChipConfig) -> Result<Self> {
        let attention = Attention::from_chip(&chip, self.config.head_dim())?;
        let mut m = self.clone();
        for b in &mut m.blocks {
            b.scalers = match (attention.is_gain_cell(), b.scalers.take()) {
                (true, Some(s)) => Some(s),
                (true, None) => Some(Scalers::init(&chip, self.config.n_head, &Device::Cpu)?),
                (false, _) => None,
            };
        }
        m.attention = attention;
        m.chip = chip;
        Ok(m)
    }

    /// Check token ids against the vocabulary and the context.
    pub(crate) fn check_ids(&self, ids: &[u32], start: usize) -> Result<()> {
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= self.config.vocab_size) {
            return Err(ModelError::Input(format!(
                "token id {bad} is outside the vocabulary ({})",
                self.config.vocab_size
            )));
        }
        if start + ids.len() > self.config.n_positions {
            return Err(ModelError::Input(format!(
                "{} tokens from position {start} exceed the model's {} positions",
                ids.len(),
                self.config.n_positions
            )));
        }
        Ok(())
    }

    /// The final hidden states `[B, T, C]` (after `ln_f`) for token ids `[B, T]` (u32), all positions at once (the
    /// parallel form): what [`Gpt2::head`] turns into logits, for callers that need only some positions' logits.
    pub fn hidden(&self, ids: &Tensor) -> Result<Tensor> {
        self.hidden_probed(ids, &mut |_, _, _| Ok(()))
    }

    /// [`Gpt2::hidden`], showing `probe(layer, site, x)` each head's scaled q', k', v' (after the affine scaling,
    /// before the chip's clamp) and scaled output o', all `[B, H, T, D]`: what training's statistics and the
    /// adaptation measure. Only gain-cell layers (the ones with scalers) are probed.
    pub fn hidden_probed(
        &self,
        ids: &Tensor,
        probe: &mut dyn FnMut(usize, Site, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        // Each of the B rows is a sequence from position 0: check the ids of one row's length at a time.
        for row in ids.flatten_all()?.to_vec1::<u32>()?.chunks(t.max(1)) {
            self.check_ids(row, 0)?;
        }
        let c = &self.config;
        let (h, d) = (c.n_head, c.head_dim());
        let pos = self.wpe.narrow(0, 0, t)?;
        let mut x = self
            .wte
            .embedding(&ids.flatten_all()?)?
            .reshape((b, t, c.n_embd))?
            .broadcast_add(&pos)?;
        for (l, block) in self.blocks.iter().enumerate() {
            let a = self.layer_norm(&x, &block.ln_1)?;
            let qkv = block.c_attn.forward(&a)?; // [B, T, 3C]
            let split = |i: usize| -> Result<Tensor> {
                Ok(qkv
                    .narrow(2, i * c.n_embd, c.n_embd)?
                    .reshape((b, t, h, d))?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let (mut q, mut k, mut v) = (split(0)?, split(1)?, split(2)?);
            if let Some(s) = &block.scalers {
                (q, k, v) = (s.q.apply(&q)?, s.k.apply(&k)?, s.v.apply(&v)?);
                probe(l, Site::Q, &q)?;
                probe(l, Site::K, &k)?;
                probe(l, Site::V, &v)?;
            }
            let mut y = self.attention.forward(&q, &k, &v)?;
            if let Some(s) = &block.scalers {
                y = s.o.apply(&y)?;
                probe(l, Site::O, &y)?;
            }
            let y = y.transpose(1, 2)?.reshape((b, t, c.n_embd))?;
            x = (x + block.c_proj.forward(&y)?)?;
            let m = self.layer_norm(&x, &block.ln_2)?;
            x = (x + block.mlp_forward(&m)?)?;
        }
        self.layer_norm(&x, &self.ln_f)
    }

    /// Logits `[B, T, V]` for token ids `[B, T]` (u32), all positions at once (the parallel form).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        self.head(&self.hidden(ids)?)
    }

    /// The tied output head: `x · wteᵀ`, logits for final hidden states `[…, C]`.
    pub fn head(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let logits = x
            .reshape((rows, self.config.n_embd))?
            .matmul(&self.wte.t()?)?;
        let mut out = dims;
        *out.last_mut().expect("rank ≥ 1") = self.config.vocab_size;
        Ok(logits.reshape(out)?)
    }

    pub(crate) fn layer_norm(&self, x: &Tensor, ln: &LayerNorm) -> Result<Tensor> {
        crate::ops::layer_norm(x, &ln.w, &ln.b, self.config.layer_norm_epsilon as f32)
    }

    /// Every tensor under its HF name (no prefix), scalers as `h.{l}.attn.scaler.{q,k,v,o}.{a,b}`.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v = vec![
            ("wte.weight".to_string(), self.wte.clone()),
            ("wpe.weight".to_string(), self.wpe.clone()),
        ];
        for (l, b) in self.blocks.iter().enumerate() {
            let p = |n: &str| format!("h.{l}.{n}");
            for (n, t) in [
                ("ln_1.weight", &b.ln_1.w),
                ("ln_1.bias", &b.ln_1.b),
                ("attn.c_attn.weight", &b.c_attn.w),
                ("attn.c_attn.bias", &b.c_attn.b),
                ("attn.c_proj.weight", &b.c_proj.w),
                ("attn.c_proj.bias", &b.c_proj.b),
                ("ln_2.weight", &b.ln_2.w),
                ("ln_2.bias", &b.ln_2.b),
                ("mlp.c_fc.weight", &b.c_fc.w),
                ("mlp.c_fc.bias", &b.c_fc.b),
                ("mlp.c_proj.weight", &b.mlp_proj.w),
                ("mlp.c_proj.bias", &b.mlp_proj.b),
            ] {
                v.push((p(n), t.clone()));
            }
            if let Some(s) = &b.scalers {
                for (n, t) in s.named() {
                    v.push((p(&format!("attn.scaler.{n}")), t.clone()));
                }
            }
        }
        v.push(("ln_f.weight".into(), self.ln_f.w.clone()));
        v.push(("ln_f.bias".into(), self.ln_f.b.clone()));
        v
    }

    /// Every tensor, mutable, in the order and under the names of [`Gpt2::named_tensors`].
    pub fn tensors_mut(&mut self) -> Vec<(String, &mut Tensor)> {
        let mut v: Vec<(String, &mut Tensor)> = vec![
            ("wte.weight".to_string(), &mut self.wte),
            ("wpe.weight".to_string(), &mut self.wpe),
        ];
        for (l, b) in self.blocks.iter_mut().enumerate() {
            let p = |n: &str| format!("h.{l}.{n}");
            v.push((p("ln_1.weight"), &mut b.ln_1.w));
            v.push((p("ln_1.bias"), &mut b.ln_1.b));
            v.push((p("attn.c_attn.weight"), &mut b.c_attn.w));
            v.push((p("attn.c_attn.bias"), &mut b.c_attn.b));
            v.push((p("attn.c_proj.weight"), &mut b.c_proj.w));
            v.push((p("attn.c_proj.bias"), &mut b.c_proj.b));
            v.push((p("ln_2.weight"), &mut b.ln_2.w));
            v.push((p("ln_2.bias"), &mut b.ln_2.b));
            v.push((p("mlp.c_fc.weight"), &mut b.c_fc.w));
            v.push((p("mlp.c_fc.bias"), &mut b.c_fc.b));
            v.push((p("mlp.c_proj.weight"), &mut b.mlp_proj.w));
            v.push((p("mlp.c_proj.bias"), &mut b.mlp_proj.b));
            if let Some(s) = &mut b.scalers {
                for (n, a) in [
                    ("q", &mut s.q),
                    ("k", &mut s.k),
                    ("v", &mut s.v),
                    ("o", &mut s.o),
                ] {
                    v.push((p(&format!("attn.scaler.{n}.a")), &mut a.a));
                    v.push((p(&format!("attn.scaler.{n}.b")), &mut a.b));
                }
            }
        }
        v.push(("ln_f.weight".into(), &mut self.ln_f.w));
        v.push(("ln_f.bias".into(), &mut self.ln_f.b));
        v
    }

    /// A copy of the model whose every tensor is a fresh trainable [`Var`](candle_core::Var), with the vars by
    /// name: gradients of a loss computed with the copy land on them, and updating a var updates the copy.
    pub fn trainable(&self) -> Result<(Gpt2, Vec<(String, candle_core::Var)>)> {
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
