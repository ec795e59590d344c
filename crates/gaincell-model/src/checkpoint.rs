//! Weights on disk: HuggingFace GPT-2 checkpoints (local folder, or a name on the Hub when online), and our own
//! checkpoints (the same safetensors plus a `gaincell.json` sidecar holding the chip and the scalers' origin).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use gaincell_chip::ChipConfig;
use serde::{Deserialize, Serialize};

use crate::attention::Scalers;
use crate::config::Gpt2Config;
use crate::error::{ModelError, Result};
use crate::model::{tensor_shapes, Gpt2};

/// Sidecar file of our checkpoints.
pub const SIDECAR: &str = "gaincell.json";
const FORMAT: &str = "gaincell-checkpoint/1";

/// What our sidecar records beside the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sidecar {
    pub format: String,
    pub model: Gpt2Config,
    /// The chip the weights were trained or adapted for, as TOML.
    pub chip: String,
    /// Free-form provenance and statistics (training step, target statistics, …).
    #[serde(default)]
    pub extra: serde_json::Value,
}

fn checkpoint_err(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::Checkpoint {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Where a model comes from: a local folder (or its `model.safetensors`), or a Hub name such as `gpt2`.
pub fn resolve(spec: &str) -> Result<PathBuf> {
    let p = Path::new(spec);
    if p.is_dir() {
        return Ok(p.to_path_buf());
    }
    if p.is_file() {
        return Ok(p.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    if spec.contains(std::path::MAIN_SEPARATOR)
        || spec.starts_with('.')
        || spec.ends_with(".safetensors")
    {
        return Err(ModelError::Input(format!(
            "model {spec}: no such file or folder"
        )));
    }
    download(spec)
}

/// Fetch `config.json` and `model.safetensors` of a Hub model into the local cache.
fn download(name: &str) -> Result<PathBuf> {
    let fail = |e: String| {
        ModelError::Input(format!(
            "model `{name}` is not a local folder, and downloading it from the HuggingFace Hub failed ({e}); \
             offline, pass a local folder holding config.json and model.safetensors"
        ))
    };
    if std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1") {
        return Err(fail("HF_HUB_OFFLINE=1".into()));
    }
    let api = hf_hub::api::sync::Api::new().map_err(|e| fail(e.to_string()))?;
    let repo = api.model(name.to_string());
    repo.get("config.json").map_err(|e| fail(e.to_string()))?;
    let weights = repo
        .get("model.safetensors")
        .map_err(|e| fail(e.to_string()))?;
    Ok(weights.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// Read every tensor of a safetensors file, with an error that names the file when it is not one.
fn read_safetensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    if !path.is_file() {
        return Err(checkpoint_err(
            path,
            "no such file (a model folder needs config.json and model.safetensors)",
        ));
    }
    candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| {
        checkpoint_err(path, format!("not a readable safetensors file ({e}); it may be truncated: download or save it again"))
    })
}

/// Load a model folder: ours (with `gaincell.json`) or HuggingFace's. `chip` overrides the chip recorded in our
/// sidecar; an HF checkpoint without `chip` runs on the `software` preset.
pub fn load(dir: &Path, chip: Option<ChipConfig>) -> Result<Gpt2> {
    let sidecar_path = dir.join(SIDECAR);
    let sidecar: Option<Sidecar> = if sidecar_path.is_file() {
        let s: Sidecar = serde_json::from_str(&read(&sidecar_path)?)
            .map_err(|e| checkpoint_err(&sidecar_path, format!("not a gaincell sidecar: {e}")))?;
        if s.format != FORMAT {
            return Err(checkpoint_err(
                &sidecar_path,
                format!("format `{}`, this version reads `{FORMAT}`", s.format),
            ));
        }
        Some(s)
    } else {
        None
    };
    let config = match &sidecar {
        Some(s) => s.model.clone(),
        None => {
            let path = dir.join("config.json");
            if !path.is_file() {
                return Err(checkpoint_err(
                    dir,
                    "no config.json (a model folder needs config.json and model.safetensors)",
                ));
            }
            Gpt2Config::from_json(&read(&path)?, &path.display().to_string())?
        }
    };
    let recorded_chip = match &sidecar {
        Some(s) => Some(
            ChipConfig::from_toml_str(&s.chip, &sidecar_path.display().to_string())
                .map_err(|e| checkpoint_err(&sidecar_path, e.to_string()))?,
        ),
        None => None,
    };
    let chip = match (chip, recorded_chip) {
        (Some(c), _) => c,
        (None, Some(c)) => c,
        (None, None) => ChipConfig::load("software").expect("preset exists"),
    };
    let weights_path = dir.join("model.safetensors");
    let raw = read_safetensors(&weights_path)?;
    // HF GPT2LMHeadModel state dicts carry a `transformer.` prefix and an explicit (tied) lm_head; GPT2Model's do
    // not. Attention-mask buffers of old checkpoints are not weights.
    let mut tensors = HashMap::new();
    for (name, t) in raw {
        let name = name
            .strip_prefix("transformer.")
            .unwrap_or(&name)
            .to_string();
        if name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias") {
            continue;
        }
        tensors.insert(name, t);
    }
    if let Some(head) = tensors.remove("lm_head.weight") {
        if head.dims() != [config.vocab_size, config.n_embd] {
            return Err(checkpoint_err(
                &weights_path,
                format!(
                    "lm_head.weight has shape {:?}, expected [{}, {}]",
                    head.dims(),
                    config.vocab_size,
                    config.n_embd
                ),
            ));
        }
    }
    for (name, shape) in tensor_shapes(&config) {
        match tensors.get(&name) {
            None => {
                return Err(checkpoint_err(
                    &weights_path,
                    format!("missing tensor {name} (expected shape {shape:?})"),
                ))
            }
            Some(t) if t.dims() != shape.as_slice() => {
                return Err(checkpoint_err(
                    &weights_path,
                    format!("tensor {name} has shape {:?}, expected {shape:?}", t.dims()),
                ))
            }
            Some(_) => {}
        }
    }
    let scalers = if tensors.keys().any(|k| k.contains(".attn.scaler.")) {
        let mut v = Vec::new();
        for l in 0..config.n_layer {
            let s = Scalers::from_named(
                |n| tensors.get(&format!("h.{l}.attn.scaler.{n}")).cloned(),
                config.n_head,
            )
            .map_err(|m| checkpoint_err(&weights_path, format!("layer {l}: {m}")))?;
            v.push(s);
        }
        Some(v)
    } else {
        None
    };
    Gpt2::from_tensors(config, chip, &tensors, scalers)
}

/// Copy `from/tokenizer.json` (if there is one) into the checkpoint folder `to`, so the checkpoint carries the
/// tokenizer it was trained with and any command can take it as `--model` alone.
pub fn copy_tokenizer(from: &Path, to: &Path) -> Result<()> {
    let src = from.join("tokenizer.json");
    if src.is_file() {
        let dst = to.join("tokenizer.json");
        std::fs::copy(&src, &dst).map_err(|source| ModelError::Io {
            path: dst.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// The sidecar's free-form `extra` of our checkpoint in `dir` (null for an HF checkpoint).
pub fn read_extra(dir: &Path) -> Result<serde_json::Value> {
    let path = dir.join(SIDECAR);
    if !path.is_file() {
        return Ok(serde_json::Value::Null);
    }
    let s: Sidecar = serde_json::from_str(&read(&path)?)
        .map_err(|e| checkpoint_err(&path, format!("not a gaincell sidecar: {e}")))?;
    Ok(s.extra)
}

/// Write a model as our checkpoint: `model.safetensors`, an HF-style `config.json` (so HF tools can read the
/// weights) and the sidecar. Each file is written to a temporary name and renamed, so a crash leaves either the
/// old checkpoint or the new one, never half of one.
pub fn save(model: &Gpt2, dir: &Path, extra: serde_json::Value) -> Result<()> {
    save_as(model, dir, extra, DType::F32)
}

/// [`save`] with the weights stored as `dtype` (f16 or bf16 halve the file; loading converts back to f32). The
/// per-head scalers stay f32: they are few, and adaptation tunes them finely.
pub fn save_as(model: &Gpt2, dir: &Path, extra: serde_json::Value, dtype: DType) -> Result<()> {
    let io = |path: &Path| {
        let p = path.display().to_string();
        move |source| ModelError::Io { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut tensors = HashMap::new();
    for (name, t) in model.named_tensors() {
        let t = if name.contains(".attn.scaler.") {
            t
        } else {
            t.to_dtype(dtype)?
        };
        tensors.insert(name, t);
    }
    let tmp = dir.join("model.safetensors.tmp");
    candle_core::safetensors::save(&tensors, &tmp)?;
    let mut hf_config = serde_json::to_value(&model.config).expect("config serialises");
    hf_config["model_type"] = "gpt2".into();
    hf_config["architectures"] = serde_json::json!(["GPT2LMHeadModel"]);
    let sidecar = Sidecar {
        format: FORMAT.into(),
        model: model.config.clone(),
        chip: model.chip.to_toml_string(),
        extra,
    };
    for (name, text) in [
        (
            "config.json",
            serde_json::to_string_pretty(&hf_config).expect("json"),
        ),
        (
            SIDECAR,
            serde_json::to_string_pretty(&sidecar).expect("json"),
        ),
    ] {
        let t = dir.join(format!("{name}.tmp"));
        std::fs::write(&t, text).map_err(io(&t))?;
        std::fs::rename(&t, dir.join(name)).map_err(io(&t))?;
    }
    std::fs::rename(&tmp, dir.join("model.safetensors")).map_err(io(&tmp))?;
    Ok(())
}
