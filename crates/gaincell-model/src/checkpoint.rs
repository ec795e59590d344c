//! Weights on disk: HuggingFace checkpoints of the GPT-2 and Llama families (local folder, sharded or not, or a
//! name on the Hub when online), llama2.c checkpoints, and our own checkpoints (HF safetensors plus a
//! `gaincell.json` sidecar holding the chip and the scalers' origin).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use gaincell_chip::ChipConfig;
use serde::{Deserialize, Serialize};

use crate::attention::Scalers;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::llama::LlamaConfig;
use crate::model::Model;

/// Sidecar file of our checkpoints.
pub const SIDECAR: &str = "gaincell.json";
const FORMAT: &str = "gaincell-checkpoint/1";

/// What our sidecar records beside the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sidecar {
    pub format: String,
    pub model: ModelConfig,
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
        // A llama2.c checkpoint is a file of its own; any other file names its folder.
        if p.extension().is_some_and(|x| x == "bin") {
            return Ok(p.to_path_buf());
        }
        return Ok(p.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    if !is_hub_id(spec) {
        return Err(ModelError::Input(format!(
            "model {spec}: no such file or folder"
        )));
    }
    download(spec)
}

/// Whether `spec` reads as a Hub model id: `name` or `owner/name` (letters, digits, `-`, `_`, `.`; not starting
/// with `.`), and not a file name (`.bin`, `.safetensors`). Anything else that does not exist is a missing path.
pub fn is_hub_id(spec: &str) -> bool {
    let parts: Vec<&str> = spec.split('/').collect();
    let part_ok = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.len() <= 96
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    parts.len() <= 2
        && parts.iter().all(|p| part_ok(p))
        && !spec.ends_with(".safetensors")
        && !spec.ends_with(".bin")
}

/// Fetch `config.json`, the weights (`model.safetensors`, or the shards its index lists) and `tokenizer.json`
/// (when the repository has one) of a Hub model into the local cache.
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
    let config = repo.get("config.json").map_err(|e| fail(e.to_string()))?;
    if repo.get("model.safetensors").is_err() {
        let index = repo
            .get("model.safetensors.index.json")
            .map_err(|e| fail(format!("neither model.safetensors nor its index: {e}")))?;
        let v: serde_json::Value = serde_json::from_str(&read(&index)?)
            .map_err(|e| fail(format!("model.safetensors.index.json: {e}")))?;
        let mut shards: Vec<String> = v["weight_map"]
            .as_object()
            .map(|m| {
                m.values()
                    .filter_map(|f| f.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        shards.sort_unstable();
        shards.dedup();
        for f in shards {
            repo.get(&f).map_err(|e| fail(e.to_string()))?;
        }
    }
    // Optional: GPT-2 checkpoints run with the embedded GPT-2 tokenizer.
    let _ = repo.get("tokenizer.json");
    Ok(config.parent().map(Path::to_path_buf).unwrap_or_default())
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

/// The weights of an HF folder: `model.safetensors`, or the shards `model.safetensors.index.json` lists.
fn read_hf_weights(dir: &Path) -> Result<(PathBuf, HashMap<String, Tensor>)> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    if single.is_file() || !index.is_file() {
        return Ok((single.clone(), read_safetensors(&single)?));
    }
    let v: serde_json::Value = serde_json::from_str(&read(&index)?)
        .map_err(|e| checkpoint_err(&index, format!("not a safetensors index: {e}")))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| checkpoint_err(&index, "no weight_map object"))?;
    let mut files: Vec<&str> = map.values().filter_map(|f| f.as_str()).collect();
    files.sort_unstable();
    files.dedup();
    let mut all = HashMap::new();
    for f in files {
        if f.contains('/') || f.contains('\\') || f.starts_with('.') {
            return Err(checkpoint_err(
                &index,
                format!("shard name `{f}` is not a file in this folder"),
            ));
        }
        all.extend(read_safetensors(&dir.join(f))?);
    }
    Ok((index, all))
}

/// A llama2.c checkpoint in `dir` (a `.bin` file whose header and size agree), when the folder has no config.json.
fn find_llama2c(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "bin")
                && crate::llama2c::load_llama2c_header(p).is_ok()
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// The Llama config a llama2.c checkpoint implies (llama2.c: RMSNorm ε 1e-5, θ 10000, SiLU).
pub fn llama2c_config(h: &crate::llama2c::Llama2cHeader) -> LlamaConfig {
    LlamaConfig {
        model_type: "llama".into(),
        vocab_size: h.vocab_size,
        hidden_size: h.dim,
        intermediate_size: h.hidden_dim,
        num_hidden_layers: h.n_layers,
        num_attention_heads: h.n_heads,
        num_key_value_heads: Some(h.n_kv_heads),
        head_dim: None,
        max_position_embeddings: h.seq_len,
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        rope_scaling: None,
        tie_word_embeddings: h.shared_classifier,
        sliding_window: None,
        attention_bias: false,
        mlp_bias: false,
        hidden_act: "silu".into(),
    }
}

/// Read a llama2.c checkpoint (legacy, v1 or v2 export) as a Llama config and HF-named tensors in HF's rotary
/// layout.
pub fn read_llama2c(path: &Path) -> Result<(LlamaConfig, HashMap<String, Tensor>)> {
    let ck = crate::llama2c::load_llama2c(path).map_err(|m| checkpoint_err(path, m))?;
    let config = llama2c_config(&ck.header);
    let mut tensors = HashMap::new();
    for (name, shape, data) in ck.tensors {
        tensors.insert(name, Tensor::from_vec(data, shape, &Device::Cpu)?);
    }
    Ok((config, tensors))
}

/// The shape of a model without reading its weights: a named shape (`gpt2`, `stories260K`, …, see
/// [`ModelConfig::named`]), our checkpoint's sidecar, an HF `config.json` (or its folder), or a llama2.c
/// checkpoint's header.
pub fn read_config(spec: &str) -> Result<ModelConfig> {
    let p = Path::new(spec);
    if !p.exists() {
        if let Some(c) = ModelConfig::named(spec) {
            return Ok(c);
        }
    }
    let path = resolve(spec)?;
    if path.is_file() {
        if path.extension().is_some_and(|x| x == "bin") {
            let header =
                crate::llama2c::load_llama2c_header(&path).map_err(|m| checkpoint_err(&path, m))?;
            return Ok(llama2c_config(&header).into());
        }
        return ModelConfig::from_json(&read(&path)?, &path.display().to_string());
    }
    let sidecar = path.join(SIDECAR);
    if sidecar.is_file() {
        let s: Sidecar = serde_json::from_str(&read(&sidecar)?)
            .map_err(|e| checkpoint_err(&sidecar, format!("not a gaincell sidecar: {e}")))?;
        s.model
            .validate()
            .map_err(|m| checkpoint_err(&sidecar, format!("model: {m}")))?;
        return Ok(s.model);
    }
    let config = path.join("config.json");
    if config.is_file() {
        return ModelConfig::from_json(&read(&config)?, &config.display().to_string());
    }
    if let Some(bin) = find_llama2c(&path) {
        return read_config(&bin.display().to_string());
    }
    Err(checkpoint_err(
        &path,
        "no config.json, gaincell.json or llama2.c .bin here",
    ))
}

/// Load a model: our checkpoint folder (with `gaincell.json`), an HF folder (GPT-2, Llama or Mistral; one
/// `model.safetensors` or shards), or a llama2.c checkpoint (a `.bin` file, or a folder holding one). `chip`
/// overrides the chip recorded in our sidecar; other checkpoints without `chip` run on the `software` preset.
pub fn load(path: &Path, chip: Option<ChipConfig>) -> Result<Model> {
    let software = || ChipConfig::load("software").expect("preset exists");
    if path.is_file() {
        if path.extension().is_some_and(|x| x == "bin") {
            let (config, tensors) = read_llama2c(path)?;
            return assemble(config.into(), chip.unwrap_or_else(software), tensors, path);
        }
        return load(path.parent().unwrap_or(Path::new(".")), chip);
    }
    let dir = path;
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
        s.model
            .validate()
            .map_err(|m| checkpoint_err(&sidecar_path, format!("model: {m}")))?;
        Some(s)
    } else {
        None
    };
    let config = match &sidecar {
        Some(s) => {
            // Our checkpoints carry config.json too (for HF tools); both must describe the same model.
            let path = dir.join("config.json");
            if path.is_file() {
                let hf = ModelConfig::from_json(&read(&path)?, &path.display().to_string())?;
                check_same_shape(&s.model, &hf, &sidecar_path, &path)?;
            }
            s.model.clone()
        }
        None => {
            let path = dir.join("config.json");
            if !path.is_file() {
                if let Some(bin) = find_llama2c(dir) {
                    return load(&bin, chip);
                }
                return Err(checkpoint_err(
                    dir,
                    "no config.json (a model folder needs config.json and model.safetensors, or a llama2.c .bin)",
                ));
            }
            ModelConfig::from_json(&read(&path)?, &path.display().to_string())?
        }
    };
    let recorded_chip = match &sidecar {
        Some(s) => Some(
            ChipConfig::from_toml_str(&s.chip, &sidecar_path.display().to_string())
                .map_err(|e| checkpoint_err(&sidecar_path, e.to_string()))?,
        ),
        None => None,
    };
    let chip = chip.or(recorded_chip).unwrap_or_else(software);
    let (weights_path, raw) = read_hf_weights(dir)?;
    // HF GPT2LMHeadModel state dicts carry a `transformer.` prefix and an explicit (tied) lm_head; GPT2Model's do
    // not. A LlamaModel (no head) lacks the `model.` prefix. Attention-mask and rotary buffers are not weights.
    let mut tensors = HashMap::new();
    for (name, t) in raw {
        let name = match &config {
            ModelConfig::Gpt2(_) => name
                .strip_prefix("transformer.")
                .unwrap_or(&name)
                .to_string(),
            ModelConfig::Llama(_) if !name.starts_with("model.") && name != "lm_head.weight" => {
                format!("model.{name}")
            }
            ModelConfig::Llama(_) => name,
        };
        if name.ends_with(".attn.bias")
            || name.ends_with(".attn.masked_bias")
            || name.ends_with(".rotary_emb.inv_freq")
        {
            continue;
        }
        tensors.insert(name, t);
    }
    let tied = match &config {
        ModelConfig::Gpt2(_) => true,
        ModelConfig::Llama(c) => c.tie_word_embeddings,
    };
    if tied {
        if let Some(head) = tensors.remove("lm_head.weight") {
            let want = [config.vocab_size(), config.n_embd()];
            if head.dims() != want {
                return Err(checkpoint_err(
                    &weights_path,
                    format!(
                        "lm_head.weight has shape {:?}, expected {want:?}",
                        head.dims()
                    ),
                ));
            }
        }
    }
    assemble(config, chip, tensors, &weights_path)
}

/// The sidecar's model and config.json's must agree on every size: a folder whose parts disagree was assembled
/// from two checkpoints, and which one the weights belong to cannot be guessed.
fn check_same_shape(
    sidecar: &ModelConfig,
    hf: &ModelConfig,
    sidecar_path: &Path,
    hf_path: &Path,
) -> Result<()> {
    let sizes = |c: &ModelConfig| {
        [
            ("family", c.family().to_string()),
            ("layers", c.n_layer().to_string()),
            ("heads", c.n_head().to_string()),
            ("key/value heads", c.n_kv_head().to_string()),
            ("width", c.n_embd().to_string()),
            ("vocabulary", c.vocab_size().to_string()),
            ("positions", c.n_positions().to_string()),
        ]
    };
    for ((what, a), (_, b)) in sizes(sidecar).into_iter().zip(sizes(hf)) {
        if a != b {
            return Err(checkpoint_err(
                sidecar_path,
                format!(
                    "the sidecar says {what} {a} but {} says {b}: the folder mixes two checkpoints; save it again or remove the stale file",
                    hf_path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Build a model from tensors by HF name: each one checked for presence and shape, scalers taken when present,
/// and a tensor the model does not use is an error (weights for more layers than the config has, say).
fn assemble(
    config: ModelConfig,
    chip: ChipConfig,
    tensors: HashMap<String, Tensor>,
    origin: &Path,
) -> Result<Model> {
    let used = std::cell::RefCell::new(std::collections::HashSet::<String>::new());
    let take = |name: String| {
        let t = tensors.get(&name).cloned();
        used.borrow_mut().insert(name);
        t
    };
    let scalers = if tensors.keys().any(|k| k.contains(".scaler.")) {
        let mut v = Vec::new();
        for l in 0..config.n_layer() {
            let s = Scalers::from_named(
                |n| {
                    take(format!(
                        "{}.scaler.{n}",
                        crate::model::attention_prefix(&config, l)
                    ))
                },
                config.n_head(),
                config.n_kv_head(),
            )
            .map_err(|m| checkpoint_err(origin, format!("layer {l}: {m}")))?;
            v.push(s);
        }
        Some(v)
    } else {
        None
    };
    let model = Model::assemble(
        config,
        chip,
        &mut |name, shape| match take(name.to_string()) {
            None => Err(checkpoint_err(
                origin,
                format!("missing tensor {name} (expected shape {shape:?})"),
            )),
            Some(t) if t.dims() != shape => Err(checkpoint_err(
                origin,
                format!("tensor {name} has shape {:?}, expected {shape:?}", t.dims()),
            )),
            Some(t) => {
                // A NaN weight makes every output NaN; caught here, it names the tensor instead.
                let bad = t
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?
                    .into_iter()
                    .enumerate()
                    .find(|(_, x)| !x.is_finite());
                match bad {
                    Some((i, x)) => Err(checkpoint_err(
                        origin,
                        format!("tensor {name} holds {x} at element {i}: the weights are damaged (a diverged training run saves none; take an earlier checkpoint)"),
                    )),
                    None => Ok(t),
                }
            }
        },
        scalers,
    )?;
    let used = used.into_inner();
    let mut unused: Vec<&String> = tensors.keys().filter(|k| !used.contains(*k)).collect();
    if !unused.is_empty() {
        unused.sort();
        let n = unused.len();
        let shown: Vec<&str> = unused.iter().take(3).map(|s| s.as_str()).collect();
        return Err(checkpoint_err(
            origin,
            format!(
                "{n} tensor(s) the model does not use ({}{}): the weights do not match the config ({} layers, {} heads, width {}); check that config.json belongs to these weights",
                shown.join(", "),
                if n > 3 { ", …" } else { "" },
                model.config.n_layer(),
                model.config.n_head(),
                model.config.n_embd()
            ),
        ));
    }
    Ok(model)
}

/// Copy the tokenizer of the model at `from` (a folder, or a llama2.c `.bin` beside its tokenizer) into the
/// checkpoint folder `to` — `tokenizer.json`, or llama2.c's tokenizer as `tokenizer.bin` — so the checkpoint carries
/// the tokenizer it was trained with and any command can take it as `--model` alone.
pub fn copy_tokenizer(from: &Path, to: &Path) -> Result<()> {
    let dir = if from.is_file() {
        from.parent().unwrap_or(Path::new("."))
    } else {
        from
    };
    let Some(src) = crate::tokenizer::file_in(dir) else {
        return Ok(());
    };
    // Saved under the name its format has in a model folder (a llama2.c `tok512.bin` as `tokenizer.bin`).
    let name = if src.extension().is_some_and(|x| x == "json") {
        "tokenizer.json"
    } else {
        "tokenizer.bin"
    };
    let dst = to.join(name);
    if src == dst {
        return Ok(());
    }
    let bytes = std::fs::read(&src).map_err(|source| ModelError::Io {
        path: src.display().to_string(),
        source,
    })?;
    write_atomically(&dst, &bytes)
}

/// Write `bytes` to `path` through a temporary name in the same folder and a rename: a crash or a full disk
/// leaves the old file or the new one, never a truncated one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| ModelError::Io { path: p, source }
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(ModelError::Input(format!(
                "{} is a directory: give the name of a file to write",
                path.display()
            )))
        }
        // A FIFO, a terminal or /dev/stdout: written in place (a rename would replace the device node).
        Ok(m) if !m.is_file() => return std::fs::write(path, bytes).map_err(io(path)),
        _ => {}
    }
    // A symlink to a file: replace the file it points to, not the link.
    let path = &std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    if let Err(e) = std::fs::write(&tmp, bytes) {
        // A full disk: leave nothing half-written behind.
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(io(path))
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
pub fn save(model: &Model, dir: &Path, extra: serde_json::Value) -> Result<()> {
    save_as(model, dir, extra, DType::F32)
}

/// [`save`] with the weights stored as `dtype` (f16 or bf16 halve the file; loading converts back to f32). The
/// per-head scalers stay f32: they are few, and adaptation tunes them finely.
pub fn save_as(model: &Model, dir: &Path, extra: serde_json::Value, dtype: DType) -> Result<()> {
    let io = |path: &Path| {
        let p = path.display().to_string();
        move |source| ModelError::Io { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut tensors = HashMap::new();
    for (name, t) in model.named_tensors() {
        let t = if name.contains(".scaler.") {
            t
        } else {
            t.to_dtype(dtype)?
        };
        tensors.insert(name, t);
    }
    let tmp = dir.join("model.safetensors.tmp");
    candle_core::safetensors::save(&tensors, &tmp)?;
    let hf_config = model.config.hf_json();
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
        write_atomically(&dir.join(name), text.as_bytes())?;
    }
    std::fs::rename(&tmp, dir.join("model.safetensors")).map_err(io(&tmp))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_hub_id;

    #[test]
    fn hub_ids_with_and_without_an_owner_are_recognised_and_paths_are_not() {
        for id in [
            "gpt2",
            "openai-community/gpt2",
            "karpathy/tinyllamas",
            "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
        ] {
            assert!(is_hub_id(id), "{id}");
        }
        for path in [
            "./gpt2",
            "../models/x",
            "a/b/c",
            "/abs/model",
            "model.bin",
            "w.safetensors",
            "owner/",
            "a b",
        ] {
            assert!(!is_hub_id(path), "{path}");
        }
    }
}
