//! `gaincell convert`: a model rewritten in another format — a llama2.c checkpoint (legacy, v1 or v2 export) to a
//! HuggingFace folder that transformers loads as `LlamaForCausalLM` (q/k rows permuted from llama2.c's interleaved
//! rotary layout to HF's half-split one), or a Llama folder back to a llama2.c v1 `.bin`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::DType;
use clap::Args;
use gaincell_model::llama2c::{write_llama2c_v1, Llama2cHeader};
use gaincell_model::{checkpoint, ModelConfig};

#[derive(Args)]
pub struct ConvertArgs {
    /// The model: a llama2.c `.bin` (its tokenizer is looked for beside it), an HF folder or our checkpoint.
    #[arg(long)]
    from: PathBuf,
    /// A folder (written as an HF folder: config.json, model.safetensors, the tokenizer), or a path ending in
    /// `.bin` (written as a llama2.c v1 checkpoint).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: ConvertArgs) -> Result<()> {
    let from = checkpoint::resolve(&a.from.display().to_string())?;
    let model = checkpoint::load(&from, None)?;
    if a.out.extension().is_some_and(|x| x == "bin") {
        let ModelConfig::Llama(c) = &model.config else {
            bail!(
                "llama2.c holds Llama models only; {} is a {}",
                a.from.display(),
                model.config.family()
            );
        };
        if c.attention_bias
            || c.mlp_bias
            || c.rope_scaling.is_some()
            || c.head_dim
                .is_some_and(|d| d * c.num_attention_heads != c.hidden_size)
        {
            bail!("llama2.c's format has no biases, rotary scaling or a head width other than dim / n_heads: this model does not fit it");
        }
        if c.rope_theta != 10000.0 || c.rms_norm_eps != 1e-5 {
            eprintln!(
                "note: llama2.c's run.c assumes rope_theta 10000 and rms_norm_eps 1e-5; this model has {} and {}",
                c.rope_theta, c.rms_norm_eps
            );
        }
        let header = Llama2cHeader {
            dim: c.hidden_size,
            hidden_dim: c.intermediate_size,
            n_layers: c.num_hidden_layers,
            n_heads: c.num_attention_heads,
            n_kv_heads: c.n_kv_head(),
            vocab_size: c.vocab_size,
            seq_len: c.max_position_embeddings,
            shared_classifier: c.tie_word_embeddings,
            version: 1,
            group_size: None,
        };
        let mut tensors = Vec::new();
        for (name, t) in model.named_tensors() {
            if name.contains(".scaler.") {
                continue;
            }
            let shape = t.dims().to_vec();
            tensors.push((name, shape, t.flatten_all()?.to_vec1::<f32>()?));
        }
        let bytes = write_llama2c_v1(&header, &tensors).map_err(anyhow::Error::msg)?;
        checkpoint::write_atomically(&a.out, &bytes)?;
        println!(
            "wrote {} (llama2.c v1, {} parameters, {:.1} MB)",
            a.out.display(),
            model.config.parameters(),
            bytes.len() as f64 / 1e6
        );
        return Ok(());
    }
    let extra = serde_json::json!({ "converted_from": a.from.display().to_string() });
    checkpoint::save_as(&model, &a.out, extra, DType::F32)
        .with_context(|| format!("writing {}", a.out.display()))?;
    checkpoint::copy_tokenizer(&from, &a.out)?;
    println!(
        "wrote {} (HF {} folder: config.json, model.safetensors{}; {} parameters)",
        a.out.display(),
        match &model.config {
            ModelConfig::Llama(_) => "LlamaForCausalLM",
            ModelConfig::Gpt2(_) => "GPT2LMHeadModel",
        },
        ["tokenizer.json", "tokenizer.bin"]
            .iter()
            .filter(|n| a.out.join(n).is_file())
            .map(|n| format!(", {n}"))
            .collect::<String>(),
        model.config.parameters()
    );
    Ok(())
}
