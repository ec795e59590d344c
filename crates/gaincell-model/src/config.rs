//! A model's shape, whichever family it belongs to: parsed from HF `config.json` by its `model_type`, and the
//! questions every command asks of it (vocabulary, context, layers, heads, head width).

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::gpt2::Gpt2Config;
use crate::llama::LlamaConfig;

/// The hyper-parameters of a model of one of the families this crate implements.
///
/// Serialised as the family's own HF config (our sidecars hold it); told apart by the fields each family has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelConfig {
    Llama(LlamaConfig),
    Gpt2(Gpt2Config),
}

impl From<Gpt2Config> for ModelConfig {
    fn from(c: Gpt2Config) -> Self {
        ModelConfig::Gpt2(c)
    }
}

impl From<LlamaConfig> for ModelConfig {
    fn from(c: LlamaConfig) -> Self {
        ModelConfig::Llama(c)
    }
}

/// transformers ≥ 5 writes `rope_parameters: {rope_theta, rope_type, …}` where older configs have a top-level
/// `rope_theta` and `rope_scaling`: read both by lifting the new form into the old one.
fn hoist_rope_parameters(mut v: serde_json::Value) -> serde_json::Value {
    let Some(p) = v.get("rope_parameters").cloned() else {
        return v;
    };
    if let Some(theta) = p.get("rope_theta") {
        v["rope_theta"] = theta.clone();
    }
    let kind = p
        .get("rope_type")
        .and_then(|t| t.as_str())
        .unwrap_or("default");
    if kind != "default" && v.get("rope_scaling").is_none_or(|s| s.is_null()) {
        v["rope_scaling"] = p;
    }
    v
}

/// The most weights a model may have (2^40, about a trillion: far above anything simulated here).
pub const MAX_PARAMETERS: usize = 1 << 40;

impl ModelConfig {
    /// The shapes [`ModelConfig::named`] knows.
    pub const NAMED: [&'static str; 8] = [
        "gpt2",
        "gpt2-medium",
        "gpt2-large",
        "gpt2-xl",
        "stories260K",
        "stories15M",
        "stories110M",
        "tinyllama-1.1b",
    ];

    /// Published shapes: GPT-2's four sizes, llama2.c's tinyllamas (stories260K, stories15M, stories110M) and
    /// TinyLlama-1.1B.
    pub fn named(name: &str) -> Option<Self> {
        if let Some(c) = Gpt2Config::named(name) {
            return Some(c.into());
        }
        // (dim, hidden, layers, heads, kv heads, vocab, positions, tied)
        let (e, i, l, h, kv, v, p, tied) = match name {
            "stories260K" => (64, 172, 5, 8, 4, 512, 512, true),
            "stories15M" => (288, 768, 6, 6, 6, 32000, 256, true),
            "stories110M" => (768, 2048, 12, 12, 12, 32000, 1024, true),
            "tinyllama-1.1b" => (2048, 5632, 22, 32, 4, 32000, 2048, false),
            _ => return None,
        };
        Some(ModelConfig::Llama(LlamaConfig {
            model_type: "llama".into(),
            vocab_size: v,
            hidden_size: e,
            intermediate_size: i,
            num_hidden_layers: l,
            num_attention_heads: h,
            num_key_value_heads: Some(kv),
            head_dim: None,
            max_position_embeddings: p,
            rms_norm_eps: 1e-5,
            rope_theta: 10000.0,
            rope_scaling: None,
            tie_word_embeddings: tied,
            sliding_window: None,
            attention_bias: false,
            mlp_bias: false,
            hidden_act: "silu".into(),
        }))
    }

    /// `gpt2` or `llama`.
    pub fn family(&self) -> &'static str {
        match self {
            ModelConfig::Gpt2(_) => "gpt2",
            ModelConfig::Llama(_) => "llama",
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.vocab_size,
            ModelConfig::Llama(c) => c.vocab_size,
        }
    }

    /// The longest sequence the model takes (learned positions, or the rotary table's length).
    pub fn n_positions(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.n_positions,
            ModelConfig::Llama(c) => c.max_position_embeddings,
        }
    }

    /// Width of the residual stream.
    pub fn n_embd(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.n_embd,
            ModelConfig::Llama(c) => c.hidden_size,
        }
    }

    pub fn n_layer(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.n_layer,
            ModelConfig::Llama(c) => c.num_hidden_layers,
        }
    }

    /// Query heads per layer.
    pub fn n_head(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.n_head,
            ModelConfig::Llama(c) => c.num_attention_heads,
        }
    }

    /// Key/value heads per layer (fewer than query heads with grouped-query attention): on a chip, the pairs of
    /// K and V arrays per layer.
    pub fn n_kv_head(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.n_head,
            ModelConfig::Llama(c) => c.n_kv_head(),
        }
    }

    /// Values per head: the rows of a chip's arrays.
    pub fn head_dim(&self) -> usize {
        match self {
            ModelConfig::Gpt2(c) => c.head_dim(),
            ModelConfig::Llama(c) => c.head_dim(),
        }
    }

    /// The model's own sliding window (Mistral-style configs), if it has one.
    pub fn native_window(&self) -> Option<usize> {
        match self {
            ModelConfig::Gpt2(_) => None,
            ModelConfig::Llama(c) => c.sliding_window,
        }
    }

    /// Sizes that pass the family's checks, and at most [`MAX_PARAMETERS`] weights: a corrupt config must not
    /// turn into per-layer or per-head allocations before the weights are read.
    pub fn validate(&self) -> std::result::Result<(), String> {
        match self {
            ModelConfig::Gpt2(c) => c.validate(),
            ModelConfig::Llama(c) => c.validate(),
        }?;
        if let Some(n) = self.checked_parameters().filter(|&n| n > MAX_PARAMETERS) {
            return Err(format!(
                "the sizes (vocab_size {}, width {}, {} layers) give {n} parameters, more than 2^40 = {MAX_PARAMETERS}: the config is corrupt (or the model is larger than this tool holds)",
                self.vocab_size(),
                self.n_embd(),
                self.n_layer()
            ));
        }
        if self.checked_parameters().is_none() {
            return Err(format!(
                "the sizes (vocab_size {}, width {}, {} layers) give more parameters than a {}-bit machine can count: \
                 the config is corrupt",
                self.vocab_size(),
                self.n_embd(),
                self.n_layer(),
                usize::BITS
            ));
        }
        Ok(())
    }

    /// The `config.json` HF transformers reads for weights of this shape.
    pub fn hf_json(&self) -> serde_json::Value {
        match self {
            ModelConfig::Gpt2(c) => c.hf_json(),
            ModelConfig::Llama(c) => c.hf_json(),
        }
    }

    /// Parse HF `config.json` text (the family from `model_type`: gpt2, llama, mistral) and check the shapes.
    pub fn from_json(text: &str, origin: &str) -> Result<Self> {
        let bad = |m: String| ModelError::Input(format!("{origin}: {m}"));
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let model_type = v.get("model_type").and_then(|t| t.as_str());
        let config = match model_type {
            Some("gpt2") => ModelConfig::Gpt2(
                serde_json::from_value(v)
                    .map_err(|e| bad(format!("not a GPT-2 config.json: {e}")))?,
            ),
            Some("llama") | Some("mistral") => ModelConfig::Llama(
                serde_json::from_value(hoist_rope_parameters(v))
                    .map_err(|e| bad(format!("not a Llama config.json: {e}")))?,
            ),
            Some(other) => {
                return Err(bad(format!(
                    "model_type `{other}` is not a family this version runs (gpt2, llama, mistral)"
                )))
            }
            // Old GPT-2 configs carry no model_type.
            None if v.get("n_embd").is_some() => ModelConfig::Gpt2(
                serde_json::from_value(v)
                    .map_err(|e| bad(format!("not a GPT-2 config.json: {e}")))?,
            ),
            None => {
                return Err(bad(
                    "no model_type: say which family the model is (gpt2, llama, mistral)".into(),
                ))
            }
        };
        config.validate().map_err(bad)?;
        Ok(config)
    }

    /// Number of parameters (embeddings included, a tied head counted once); `usize::MAX` for a shape too large to
    /// count, which [`ModelConfig::validate`] rejects.
    pub fn parameters(&self) -> usize {
        self.checked_parameters().unwrap_or(usize::MAX)
    }

    /// [`ModelConfig::parameters`], or `None` when the count overflows `usize` (a corrupt config).
    pub fn checked_parameters(&self) -> Option<usize> {
        // a·b + c·d + … with every step checked.
        fn sum(terms: &[&[usize]]) -> Option<usize> {
            terms.iter().try_fold(0usize, |acc, t| {
                let p = t.iter().try_fold(1usize, |p, &x| p.checked_mul(x))?;
                acc.checked_add(p)
            })
        }
        match self {
            ModelConfig::Gpt2(c) => {
                let e = c.n_embd;
                // 4e + (3e² + 3e) + (e² + e) + (4e² + 4e) + (4e² + e)
                let block = sum(&[
                    &[4, e],
                    &[3, e, e],
                    &[3, e],
                    &[e, e],
                    &[e],
                    &[4, e, e],
                    &[4, e],
                    &[4, e, e],
                    &[e],
                ])?;
                sum(&[
                    &[c.vocab_size, e],
                    &[c.n_positions, e],
                    &[c.n_layer, block],
                    &[2, e],
                ])
            }
            ModelConfig::Llama(c) => {
                let (e, i) = (c.hidden_size, c.intermediate_size);
                let qd = c.num_attention_heads.checked_mul(c.head_dim())?;
                let kvd = c.n_kv_head().checked_mul(c.head_dim())?;
                let ab = usize::from(c.attention_bias);
                let mb = usize::from(c.mlp_bias);
                let attn = sum(&[
                    &[e, qd],
                    &[2, e, kvd],
                    &[qd, e],
                    &[ab, qd],
                    &[ab, 2, kvd],
                    &[ab, e],
                ])?;
                let mlp = sum(&[&[3, e, i], &[mb, 2, i], &[mb, e]])?;
                let head = if c.tie_word_embeddings { 0 } else { 1 };
                let layer = sum(&[&[attn], &[mlp], &[2, e]])?;
                sum(&[
                    &[c.vocab_size, e],
                    &[c.num_hidden_layers, layer],
                    &[e],
                    &[head, c.vocab_size, e],
                ])
            }
        }
    }
}
