//! GPT-2, the family in one file (nanoGPT's shape): token + learned position embeddings, blocks of layer norm →
//! fused q/k/v projection → attention → projection → layer norm → GELU MLP, a final layer norm and the output head
//! tied to the token embedding. The attention itself, and the block's order of steps, live in [`crate::model`].

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The hyper-parameters of a GPT-2 (names as in HF `config.json`; unknown fields there are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
}

fn default_eps() -> f64 {
    1e-5
}

impl Gpt2Config {
    /// The published sizes: gpt2 (124M), gpt2-medium, gpt2-large, gpt2-xl (1.5B).
    pub fn named(name: &str) -> Option<Self> {
        let (n_layer, n_head, n_embd) = match name {
            "gpt2" => (12, 12, 768),
            "gpt2-medium" => (24, 16, 1024),
            "gpt2-large" => (36, 20, 1280),
            "gpt2-xl" => (48, 25, 1600),
            _ => return None,
        };
        Some(Gpt2Config {
            vocab_size: 50257,
            n_positions: 1024,
            n_embd,
            n_layer,
            n_head,
            layer_norm_epsilon: 1e-5,
        })
    }

    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.n_head == 0 || self.n_embd == 0 || !self.n_embd.is_multiple_of(self.n_head) {
            return Err(format!(
                "n_embd ({}) must be a positive multiple of n_head ({})",
                self.n_embd, self.n_head
            ));
        }
        if self.vocab_size == 0 || self.n_positions == 0 || self.n_layer == 0 {
            return Err("vocab_size, n_positions and n_layer must be positive".into());
        }
        Ok(())
    }

    /// The `config.json` HF transformers reads for these weights.
    pub fn hf_json(&self) -> serde_json::Value {
        let mut j = serde_json::to_value(self).expect("config serialises");
        j["model_type"] = "gpt2".into();
        j["architectures"] = serde_json::json!(["GPT2LMHeadModel"]);
        j
    }
}

/// A linear map in HF's Conv1D layout: `y = x·w + b`, `w` is `[in, out]`.
#[derive(Debug, Clone)]
pub struct Conv1D {
    pub w: Tensor,
    pub b: Tensor,
}

impl Conv1D {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        crate::row_broadcast::row_broadcast_add(&crate::ops::matmul_last(x, &self.w)?, &self.b)
    }
}

#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub w: Tensor,
    pub b: Tensor,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor, eps: f64) -> Result<Tensor> {
        crate::ops::layer_norm(x, &self.w, &self.b, eps as f32)
    }
}

#[derive(Debug, Clone)]
pub struct Gpt2Block {
    pub ln_1: LayerNorm,
    pub c_attn: Conv1D,
    pub c_proj: Conv1D,
    pub ln_2: LayerNorm,
    pub c_fc: Conv1D,
    pub mlp_proj: Conv1D,
}

/// GPT-2's weights.
#[derive(Debug, Clone)]
pub struct Gpt2Weights {
    pub wte: Tensor,
    pub wpe: Tensor,
    pub blocks: Vec<Gpt2Block>,
    pub ln_f: LayerNorm,
}

impl Gpt2Weights {
    /// Every tensor under its HF name (no `transformer.` prefix), its shape, and where it lives: the one list that
    /// loading, saving, random initialisation and training read.
    pub(crate) fn fields(&mut self, c: &Gpt2Config) -> Vec<(String, Vec<usize>, &mut Tensor)> {
        let e = c.n_embd;
        let mut v: Vec<(String, Vec<usize>, &mut Tensor)> = vec![
            ("wte.weight".into(), vec![c.vocab_size, e], &mut self.wte),
            ("wpe.weight".into(), vec![c.n_positions, e], &mut self.wpe),
        ];
        for (l, b) in self.blocks.iter_mut().enumerate() {
            let p = |n: &str| format!("h.{l}.{n}");
            v.extend([
                (p("ln_1.weight"), vec![e], &mut b.ln_1.w),
                (p("ln_1.bias"), vec![e], &mut b.ln_1.b),
                (p("attn.c_attn.weight"), vec![e, 3 * e], &mut b.c_attn.w),
                (p("attn.c_attn.bias"), vec![3 * e], &mut b.c_attn.b),
                (p("attn.c_proj.weight"), vec![e, e], &mut b.c_proj.w),
                (p("attn.c_proj.bias"), vec![e], &mut b.c_proj.b),
                (p("ln_2.weight"), vec![e], &mut b.ln_2.w),
                (p("ln_2.bias"), vec![e], &mut b.ln_2.b),
                (p("mlp.c_fc.weight"), vec![e, 4 * e], &mut b.c_fc.w),
                (p("mlp.c_fc.bias"), vec![4 * e], &mut b.c_fc.b),
                (p("mlp.c_proj.weight"), vec![4 * e, e], &mut b.mlp_proj.w),
                (p("mlp.c_proj.bias"), vec![e], &mut b.mlp_proj.b),
            ]);
        }
        v.push(("ln_f.weight".into(), vec![e], &mut self.ln_f.w));
        v.push(("ln_f.bias".into(), vec![e], &mut self.ln_f.b));
        v
    }

    /// Weights of the right structure whose tensors are all `empty`, to be filled through [`Gpt2Weights::fields`].
    pub(crate) fn skeleton(c: &Gpt2Config, empty: &Tensor) -> Self {
        let ln = || LayerNorm {
            w: empty.clone(),
            b: empty.clone(),
        };
        let conv = || Conv1D {
            w: empty.clone(),
            b: empty.clone(),
        };
        Gpt2Weights {
            wte: empty.clone(),
            wpe: empty.clone(),
            blocks: (0..c.n_layer)
                .map(|_| Gpt2Block {
                    ln_1: ln(),
                    c_attn: conv(),
                    c_proj: conv(),
                    ln_2: ln(),
                    c_fc: conv(),
                    mlp_proj: conv(),
                })
                .collect(),
            ln_f: ln(),
        }
    }

    /// Initial value of a tensor in GPT-2's scheme: layer-norm weights 1, biases 0, matrices N(0, 0.02) and the
    /// residual projections N(0, 0.02/√(2L)). `None`: draw from a normal of the returned std.
    pub(crate) fn init(c: &Gpt2Config, name: &str) -> std::result::Result<f32, f64> {
        if name.contains("ln_") && name.ends_with("weight") {
            Ok(1.0)
        } else if name.ends_with("bias") {
            Ok(0.0)
        } else if name.ends_with("c_proj.weight") {
            Err(0.02 / (2.0 * c.n_layer as f64).sqrt())
        } else {
            Err(0.02)
        }
    }

    /// Where a layer's scalers are stored in checkpoints: `h.{l}.attn`.
    pub(crate) fn attention_prefix(l: usize) -> String {
        format!("h.{l}.attn")
    }

    /// Token embeddings plus learned position embeddings: `[B, T, C]` for ids `[B, T]` at positions `pos` `[T]`.
    pub(crate) fn embed(&self, c: &Gpt2Config, ids: &Tensor, pos: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let tokens = self
            .wte
            .embedding(&ids.flatten_all()?)?
            .reshape((b, t, c.n_embd))?;
        crate::row_broadcast::row_broadcast_add(&tokens, &self.wpe.embedding(pos)?)
    }

    /// Layer norm, the fused q/k/v projection, heads split: q, k, v `[B, H, T, D]`.
    pub(crate) fn attention_inputs(
        &self,
        c: &Gpt2Config,
        l: usize,
        x: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let block = &self.blocks[l];
        let qkv = block
            .c_attn
            .forward(&block.ln_1.forward(x, c.layer_norm_epsilon)?)?;
        let split = |i: usize| crate::heads::split_heads(&qkv, i, 3, c.n_head);
        Ok((split(0)?, split(1)?, split(2)?))
    }

    /// The rest of the block after attention: heads merged, projection, residual; layer norm, MLP (GELU, tanh
    /// approximation), residual.
    pub(crate) fn block_output(
        &self,
        c: &Gpt2Config,
        l: usize,
        x: &Tensor,
        y: &Tensor,
    ) -> Result<Tensor> {
        let block = &self.blocks[l];
        let y = crate::heads::merge_heads(y)?;
        let x = (x + block.c_proj.forward(&y)?)?;
        let m = block.ln_2.forward(&x, c.layer_norm_epsilon)?;
        let m = block
            .mlp_proj
            .forward(&crate::ops::gelu(&block.c_fc.forward(&m)?)?)?;
        Ok((x + m)?)
    }

    pub(crate) fn final_norm(&self, c: &Gpt2Config, x: &Tensor) -> Result<Tensor> {
        self.ln_f.forward(x, c.layer_norm_epsilon)
    }

    /// The output head's matrix `[V, C]`: the token embedding (tied).
    pub(crate) fn output_weight(&self) -> &Tensor {
        &self.wte
    }
}
