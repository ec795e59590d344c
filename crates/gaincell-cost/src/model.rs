//! The shape of the transformer whose attention the chip runs: layers, heads per layer, head dimension.

use serde::Serialize;

use crate::CostError;

/// Built-in model names, for `--model`.
pub const BUILTIN_MODELS: &[&str] = &[
    "gpt2",
    "gpt2-medium",
    "gpt2-large",
    "gpt2-xl",
    "stories260K",
    "tinyllama-1.1b",
];

/// What the cost model needs to know about a model: how many attention heads of which size it has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelShape {
    pub name: String,
    pub n_layer: usize,
    /// Attention (query) heads per layer.
    pub n_head: usize,
    /// Key/value heads per layer: fewer than `n_head` with grouped-query attention, where each key/value head
    /// serves `n_head / n_kv_head` query heads.
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// Context length the model was trained with, when known (informative: the chip's window is what counts).
    pub n_ctx: Option<usize>,
}

impl ModelShape {
    /// A built-in model: the GPT-2 family (64-dim heads, 1,024-token context), llama2.c's stories260K (8 heads
    /// of 8 dims sharing 4 key/value heads) and TinyLlama-1.1B (32 heads of 64 dims sharing 4).
    pub fn builtin(name: &str) -> Option<Self> {
        let (n_layer, n_head, n_kv_head, head_dim, ctx) = match name {
            "gpt2" => (12, 12, 12, 64, 1024),
            "gpt2-medium" => (24, 16, 16, 64, 1024),
            "gpt2-large" => (36, 20, 20, 64, 1024),
            "gpt2-xl" => (48, 25, 25, 64, 1024),
            "stories260K" => (5, 8, 4, 8, 512),
            "tinyllama-1.1b" => (22, 32, 4, 64, 2048),
            _ => return None,
        };
        Some(ModelShape {
            name: name.to_string(),
            n_layer,
            n_head,
            n_kv_head,
            head_dim,
            n_ctx: Some(ctx),
        })
    }

    /// Query heads per key/value head (1 without grouped-query attention).
    pub fn group(&self) -> usize {
        self.n_head / self.n_kv_head.max(1)
    }

    /// The error for a name that is neither built in nor a readable file.
    pub fn unknown(name: &str) -> CostError {
        CostError::UnknownModel {
            name: name.to_string(),
            known: BUILTIN_MODELS.join(", "),
        }
    }

    /// Read a Hugging Face `config.json`: `n_layer`, `n_head`, `n_embd` (GPT-2 names) or `num_hidden_layers`,
    /// `num_attention_heads`, `hidden_size` (and `head_dim` when given). `origin` names the file in errors.
    pub fn from_hf_config(text: &str, origin: &str) -> Result<Self, CostError> {
        let err = |message: String| CostError::ModelConfig {
            origin: origin.to_string(),
            message,
        };
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let obj = json
            .as_object()
            .ok_or_else(|| err("the top level must be a JSON object".into()))?;
        // The first of `names` present must be a positive integer.
        let int = |names: &[&str]| -> Result<Option<usize>, CostError> {
            let Some((name, v)) = names.iter().find_map(|n| obj.get(*n).map(|v| (*n, v))) else {
                return Ok(None);
            };
            match v.as_u64() {
                Some(n) if n > 0 => Ok(Some(n as usize)),
                _ => Err(err(format!(
                    "`{name}` is {v}: it must be a positive integer"
                ))),
            }
        };
        let need = |names: &[&str]| -> Result<usize, CostError> {
            int(names)?.ok_or_else(|| err(format!("missing `{}`", names.join("` or `"))))
        };
        let n_layer = need(&["n_layer", "num_hidden_layers"])?;
        let n_head = need(&["n_head", "num_attention_heads"])?;
        let n_kv_head = int(&["num_key_value_heads"])?.unwrap_or(n_head);
        if !n_head.is_multiple_of(n_kv_head) {
            return Err(err(format!(
                "num_key_value_heads ({n_kv_head}) must divide the head count ({n_head})"
            )));
        }
        let head_dim = match int(&["head_dim"])? {
            Some(d) => d,
            None => {
                let n_embd = need(&["n_embd", "hidden_size"])?;
                if !n_embd.is_multiple_of(n_head) {
                    return Err(err(format!(
                        "the embedding width ({n_embd}) is not a multiple of the head count ({n_head})"
                    )));
                }
                n_embd / n_head
            }
        };
        let name = obj
            .get("_name_or_path")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or(origin)
            .to_string();
        Ok(ModelShape {
            name,
            n_layer,
            n_head,
            n_kv_head,
            head_dim,
            n_ctx: int(&["n_ctx", "n_positions", "max_position_embeddings"])?,
        })
    }

    /// "12 layers × 12 heads × 64 dims" (and "(4 key/value heads)" with grouped-query attention).
    pub fn describe(&self) -> String {
        let kv = if self.n_kv_head != self.n_head {
            format!(" ({} key/value heads)", self.n_kv_head)
        } else {
            String::new()
        };
        format!(
            "{} layers × {} heads × {} dims{kv}",
            self.n_layer, self.n_head, self.head_dim
        )
    }
}
