//! Llama, the family in one file (Llama 2/3, TinyLlama, Mistral, llama2.c's tinyllamas): token embeddings, blocks
//! of RMSNorm → q/k/v projections → rotary position embedding of q and k → attention (grouped-query: each key/value
//! head serves `n_heads / n_kv_heads` query heads) → output projection → residual; RMSNorm → SwiGLU MLP → residual;
//! a final RMSNorm and the output head (tied to the embedding or its own). The attention itself, and the block's
//! order of steps, live in [`crate::model`].
//!
//! On a gain-cell chip q and k are rotated *before* the per-head scalers and the DACs: the arrays store rotated
//! keys, as a GPU's KV cache does, so a key is written once and never rotated again.

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::rope::RopeTable;

/// Rotary scaling of long-context checkpoints (`rope_scaling` in `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    /// `llama3` (Llama 3.1/3.2) or `linear`; HF also calls the field `type`.
    #[serde(alias = "type")]
    pub rope_type: String,
    pub factor: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_freq_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_freq_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_max_position_embeddings: Option<usize>,
}

/// The hyper-parameters of a Llama-family model, named as in HF `config.json` (unknown fields are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// `llama` or `mistral` (the same computation; Mistral configs carry a native sliding window).
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Grouped-query attention: key/value heads (default: as many as query heads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_key_value_heads: Option<usize>,
    /// Per-head width when it is not `hidden_size / num_attention_heads`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    #[serde(default = "default_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeScaling>,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Native sliding-window attention (Mistral): each query sees the last `sliding_window` keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<usize>,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default = "default_act")]
    pub hidden_act: String,
}

fn default_model_type() -> String {
    "llama".into()
}
fn default_positions() -> usize {
    2048
}
fn default_rms_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10000.0
}
fn default_act() -> String {
    "silu".into()
}

/// Most entries (positions × head width / 2) of the rotary cos/sin tables a config may ask for: 2^30, 4 GiB of f32
/// per table (a million positions of 128-wide heads take 2^26).
pub const MAX_ROPE_TABLE: usize = 1 << 30;

impl LlamaConfig {
    pub fn n_kv_head(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        let (h, kv) = (self.num_attention_heads, self.n_kv_head());
        if h == 0 || self.hidden_size == 0 {
            return Err("hidden_size and num_attention_heads must be positive".into());
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(h) {
            return Err(format!(
                "hidden_size ({}) is not a multiple of num_attention_heads ({h}): the heads must divide the width \
                 (or the config must give head_dim)",
                self.hidden_size
            ));
        }
        if kv == 0 || !h.is_multiple_of(kv) {
            return Err(format!(
                "num_key_value_heads ({kv}) must divide num_attention_heads ({h}): each key/value head serves a \
                 whole group of query heads"
            ));
        }
        if self.head_dim() == 0 || !self.head_dim().is_multiple_of(2) {
            return Err(format!(
                "the head width ({}) must be even: rotary embeddings rotate pairs of dims",
                self.head_dim()
            ));
        }
        if self.vocab_size == 0
            || self.num_hidden_layers == 0
            || self.intermediate_size == 0
            || self.max_position_embeddings == 0
        {
            return Err(
                "vocab_size, intermediate_size, num_hidden_layers and max_position_embeddings must be positive"
                    .into(),
            );
        }
        if self.rms_norm_eps.is_nan()
            || self.rms_norm_eps <= 0.0
            || self.rope_theta.is_nan()
            || self.rope_theta <= 0.0
        {
            return Err("rms_norm_eps and rope_theta must be positive".into());
        }
        if self.sliding_window == Some(0) {
            return Err("sliding_window 0: give a positive window, or null for none".into());
        }
        // The rotary table (cos and sin, `max_position_embeddings × head_dim / 2` f32 each) is built when the model
        // loads: sizes from a corrupt file must not become an allocation.
        let table = self
            .max_position_embeddings
            .checked_mul(self.head_dim() / 2)
            .filter(|&n| n <= MAX_ROPE_TABLE);
        if table.is_none() {
            return Err(format!(
                "max_position_embeddings ({}) × head width ({}) / 2 is more than {MAX_ROPE_TABLE} rotary table \
                 entries: the config is corrupt",
                self.max_position_embeddings,
                self.head_dim()
            ));
        }
        if self.hidden_act != "silu" {
            return Err(format!(
                "hidden_act `{}`: this Llama implementation has the SwiGLU MLP (silu)",
                self.hidden_act
            ));
        }
        if let Some(s) = &self.rope_scaling {
            match s.rope_type.as_str() {
                "linear" | "default" => {}
                "llama3"
                    if s.low_freq_factor.is_some()
                        && s.high_freq_factor.is_some()
                        && s.original_max_position_embeddings.is_some() => {}
                "llama3" => {
                    return Err(
                        "rope_scaling llama3 needs low_freq_factor, high_freq_factor and \
                         original_max_position_embeddings"
                            .into(),
                    )
                }
                other => {
                    return Err(format!(
                        "rope_scaling `{other}` is not supported (supported: llama3, linear)"
                    ))
                }
            }
            if s.factor.is_nan() || s.factor <= 0.0 {
                return Err("rope_scaling.factor must be positive".into());
            }
        }
        Ok(())
    }

    /// The `config.json` HF transformers reads for these weights (`LlamaForCausalLM`, or Mistral's).
    pub fn hf_json(&self) -> serde_json::Value {
        let mut j = serde_json::to_value(self).expect("config serialises");
        let arch = if self.model_type == "mistral" {
            "MistralForCausalLM"
        } else {
            "LlamaForCausalLM"
        };
        j["architectures"] = serde_json::json!([arch]);
        j["num_key_value_heads"] = self.n_kv_head().into();
        j["torch_dtype"] = "float32".into();
        j
    }

    /// Rotation frequencies θ^(−2i/D), i < D/2, with the config's scaling, in f32 as HF computes them.
    pub fn inv_freq(&self) -> Vec<f32> {
        let d = self.head_dim();
        let base: Vec<f32> = (0..d / 2)
            .map(|i| 1.0 / (self.rope_theta as f32).powf((2 * i) as f32 / d as f32))
            .collect();
        let Some(s) = &self.rope_scaling else {
            return base;
        };
        match s.rope_type.as_str() {
            "linear" => base.iter().map(|f| f / s.factor as f32).collect(),
            "llama3" => {
                let (lo, hi) = (
                    s.low_freq_factor.unwrap_or(1.0),
                    s.high_freq_factor.unwrap_or(4.0),
                );
                let old = s.original_max_position_embeddings.unwrap_or(8192) as f64;
                let (lo_wavelen, hi_wavelen) = (old / lo, old / hi);
                base.iter()
                    .map(|&f| {
                        let wavelen = std::f64::consts::TAU / f as f64;
                        if wavelen < hi_wavelen {
                            f
                        } else if wavelen > lo_wavelen {
                            f / s.factor as f32
                        } else {
                            let smooth = ((old / wavelen - lo) / (hi - lo)) as f32;
                            (1.0 - smooth) * f / s.factor as f32 + smooth * f
                        }
                    })
                    .collect()
            }
            _ => base,
        }
    }
}

/// `y = x·wᵀ (+ b)`, `w` in nn.Linear's `[out, in]` layout.
#[derive(Debug, Clone)]
pub struct Linear {
    pub w: Tensor,
    pub b: Option<Tensor>,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = crate::ops::matmul_last(x, &self.w.t()?)?;
        Ok(match &self.b {
            Some(b) => crate::row_broadcast::row_broadcast_add(&y, b)?,
            None => y,
        })
    }
}

#[derive(Debug, Clone)]
pub struct LlamaBlock {
    pub input_layernorm: Tensor,
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub post_attention_layernorm: Tensor,
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

/// A Llama's weights, and its rotary table.
#[derive(Debug, Clone)]
pub struct LlamaWeights {
    pub embed_tokens: Tensor,
    pub blocks: Vec<LlamaBlock>,
    pub norm: Tensor,
    /// The output head when it is not tied to the embedding.
    pub lm_head: Option<Tensor>,
    pub rope: RopeTable,
}

impl LlamaWeights {
    /// Every tensor under its HF `LlamaForCausalLM` name, its shape, and where it lives: the one list that
    /// loading, saving, random initialisation and training read.
    pub(crate) fn fields(&mut self, c: &LlamaConfig) -> Vec<(String, Vec<usize>, &mut Tensor)> {
        let (e, i) = (c.hidden_size, c.intermediate_size);
        let (qd, kvd) = (
            c.num_attention_heads * c.head_dim(),
            c.n_kv_head() * c.head_dim(),
        );
        let mut v: Vec<(String, Vec<usize>, &mut Tensor)> = vec![(
            "model.embed_tokens.weight".into(),
            vec![c.vocab_size, e],
            &mut self.embed_tokens,
        )];
        for (l, b) in self.blocks.iter_mut().enumerate() {
            let p = |n: &str| format!("model.layers.{l}.{n}");
            v.push((p("input_layernorm.weight"), vec![e], &mut b.input_layernorm));
            for (name, lin, out, inp) in [
                ("self_attn.q_proj", &mut b.q_proj, qd, e),
                ("self_attn.k_proj", &mut b.k_proj, kvd, e),
                ("self_attn.v_proj", &mut b.v_proj, kvd, e),
                ("self_attn.o_proj", &mut b.o_proj, e, qd),
            ] {
                v.push((p(&format!("{name}.weight")), vec![out, inp], &mut lin.w));
                if let Some(bias) = &mut lin.b {
                    v.push((p(&format!("{name}.bias")), vec![out], bias));
                }
            }
            v.push((
                p("post_attention_layernorm.weight"),
                vec![e],
                &mut b.post_attention_layernorm,
            ));
            for (name, lin, out, inp) in [
                ("mlp.gate_proj", &mut b.gate_proj, i, e),
                ("mlp.up_proj", &mut b.up_proj, i, e),
                ("mlp.down_proj", &mut b.down_proj, e, i),
            ] {
                v.push((p(&format!("{name}.weight")), vec![out, inp], &mut lin.w));
                if let Some(bias) = &mut lin.b {
                    v.push((p(&format!("{name}.bias")), vec![out], bias));
                }
            }
        }
        v.push(("model.norm.weight".into(), vec![e], &mut self.norm));
        if let Some(head) = &mut self.lm_head {
            v.push(("lm_head.weight".into(), vec![c.vocab_size, e], head));
        }
        v
    }

    /// Weights of the right structure whose tensors are all `empty`, to be filled through
    /// [`LlamaWeights::fields`].
    pub(crate) fn skeleton(c: &LlamaConfig, empty: &Tensor) -> Result<Self> {
        let lin = |bias: bool| Linear {
            w: empty.clone(),
            b: bias.then(|| empty.clone()),
        };
        let (ab, mb) = (c.attention_bias, c.mlp_bias);
        Ok(LlamaWeights {
            embed_tokens: empty.clone(),
            blocks: (0..c.num_hidden_layers)
                .map(|_| LlamaBlock {
                    input_layernorm: empty.clone(),
                    q_proj: lin(ab),
                    k_proj: lin(ab),
                    v_proj: lin(ab),
                    o_proj: lin(ab),
                    post_attention_layernorm: empty.clone(),
                    gate_proj: lin(mb),
                    up_proj: lin(mb),
                    down_proj: lin(mb),
                })
                .collect(),
            norm: empty.clone(),
            lm_head: (!c.tie_word_embeddings).then(|| empty.clone()),
            rope: RopeTable::new(&c.inv_freq(), c.max_position_embeddings, &Device::Cpu)?,
        })
    }

    /// Initial value of a tensor in HF's scheme: norms 1, biases 0, matrices N(0, 0.02). `Err(std)`: draw.
    pub(crate) fn init(name: &str) -> std::result::Result<f32, f64> {
        if name.ends_with("norm.weight") {
            Ok(1.0)
        } else if name.ends_with("bias") {
            Ok(0.0)
        } else {
            Err(0.02)
        }
    }

    /// Where a layer's scalers are stored in checkpoints: `model.layers.{l}.self_attn`.
    pub(crate) fn attention_prefix(l: usize) -> String {
        format!("model.layers.{l}.self_attn")
    }

    /// Token embeddings `[B, T, C]` (positions enter through the rotation of q and k).
    pub(crate) fn embed(&self, c: &LlamaConfig, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        Ok(self
            .embed_tokens
            .embedding(&ids.flatten_all()?)?
            .reshape((b, t, c.hidden_size))?)
    }

    /// RMSNorm, the three projections, heads split, q and k rotated for their positions `pos` `[T]`:
    /// q `[B, H, T, D]`, k and v `[B, H_kv, T, D]`.
    pub(crate) fn attention_inputs(
        &self,
        c: &LlamaConfig,
        l: usize,
        x: &Tensor,
        pos: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (b, t, _) = x.dims3()?;
        let block = &self.blocks[l];
        let a = crate::rms_norm::rms_norm(x, &block.input_layernorm, c.rms_norm_eps as f32)?;
        let d = c.head_dim();
        let heads = |lin: &Linear, n: usize| -> Result<Tensor> {
            Ok(lin
                .forward(&a)?
                .reshape((b, t, n, d))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let (cos, sin) = self.rope.at(pos)?;
        let q = crate::rope::rope(&heads(&block.q_proj, c.num_attention_heads)?, &cos, &sin)?;
        let k = crate::rope::rope(&heads(&block.k_proj, c.n_kv_head())?, &cos, &sin)?;
        let v = heads(&block.v_proj, c.n_kv_head())?;
        Ok((q, k, v))
    }

    /// The rest of the block after attention: heads merged, output projection, residual; RMSNorm, SwiGLU MLP
    /// (`down(silu(gate(x)) ⊙ up(x))`), residual.
    pub(crate) fn block_output(
        &self,
        c: &LlamaConfig,
        l: usize,
        x: &Tensor,
        y: &Tensor,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let block = &self.blocks[l];
        let y = y
            .transpose(1, 2)?
            .reshape((b, t, c.num_attention_heads * c.head_dim()))?;
        let x = (x + block.o_proj.forward(&y)?)?;
        let m =
            crate::rms_norm::rms_norm(&x, &block.post_attention_layernorm, c.rms_norm_eps as f32)?;
        let gate = block.gate_proj.forward(&m)?.silu()?;
        let m = block
            .down_proj
            .forward(&(gate * block.up_proj.forward(&m)?)?)?;
        Ok((x + m)?)
    }

    pub(crate) fn final_norm(&self, c: &LlamaConfig, x: &Tensor) -> Result<Tensor> {
        crate::rms_norm::rms_norm(x, &self.norm, c.rms_norm_eps as f32)
    }

    /// The output head's matrix `[V, C]`: `lm_head`, or the embedding when tied.
    pub(crate) fn output_weight(&self) -> &Tensor {
        self.lm_head.as_ref().unwrap_or(&self.embed_tokens)
    }
}
