//! The training loop: a run described by a TOML file, gradient accumulation, AdamW, periodic validation, metrics
//! as JSON lines, atomic checkpoints, and `resume` that continues bit for bit (model, moments, step; the data
//! position is a function of the step and the seed, and nothing else is random).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use gaincell_chip::ChipConfig;
use gaincell_model::{checkpoint, Gpt2Config, LlamaConfig, Model, ModelConfig};
use serde::{Deserialize, Serialize};

use crate::data::{write_atomic, Shards, Split};
use crate::distill::{DistillSpec, Teacher};
use crate::error::{Result, TrainError};
use crate::optim::{AdamW, AdamWConfig};
use crate::stats::{HeadStats, Recorder};

/// A training run (`gaincell train --config run.toml`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub model: ModelSpec,
    /// A preset name, a chip TOML file, or an inline table (e.g. `{ base = "paper-linear", geometry = { window = 128 } }`).
    pub chip: toml::Value,
    pub data: DataSpec,
    pub train: TrainSpec,
    #[serde(default)]
    pub optim: AdamWConfig,
    /// Knowledge distillation from a teacher (`teacher`, `weight`, `temperature`, `chip`; see
    /// [`DistillSpec`]): the loss becomes `(1 − w)·CE + w·T²·KL(teacher ‖ student)`. Validation stays plain
    /// cross-entropy. Absent: plain cross-entropy training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill: Option<DistillSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Start from this checkpoint (ours or HF); otherwise a fresh model of the shape below.
    #[serde(default)]
    pub init: Option<PathBuf>,
    #[serde(default = "d_layers")]
    pub n_layer: usize,
    #[serde(default = "d_heads")]
    pub n_head: usize,
    #[serde(default = "d_embd")]
    pub n_embd: usize,
    /// Positions of a fresh model (≥ the training context).
    #[serde(default = "d_positions")]
    pub n_positions: usize,
    /// The family of a fresh model: `gpt2` or `llama`.
    #[serde(default = "d_family")]
    pub family: String,
    /// Llama: key/value heads (grouped-query attention; default n_head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_kv_head: Option<usize>,
    /// Llama: the SwiGLU MLP's width (default 8/3 · n_embd rounded up to a multiple of 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediate: Option<usize>,
    /// Llama: the output head tied to the embedding (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie_embeddings: Option<bool>,
}

fn d_family() -> String {
    "gpt2".into()
}

impl ModelSpec {
    /// The shape of a fresh model of this spec for a vocabulary of `vocab` and a context of `ctx`.
    pub fn fresh_config(&self, vocab: usize, ctx: usize) -> Result<ModelConfig> {
        let positions = self.n_positions.max(ctx);
        let config: ModelConfig = match self.family.as_str() {
            "gpt2" => Gpt2Config {
                vocab_size: vocab,
                n_positions: positions,
                n_embd: self.n_embd,
                n_layer: self.n_layer,
                n_head: self.n_head,
                layer_norm_epsilon: 1e-5,
            }
            .into(),
            "llama" => LlamaConfig {
                model_type: "llama".into(),
                vocab_size: vocab,
                hidden_size: self.n_embd,
                intermediate_size: self
                    .intermediate
                    .unwrap_or((8 * self.n_embd / 3).div_ceil(32) * 32),
                num_hidden_layers: self.n_layer,
                num_attention_heads: self.n_head,
                num_key_value_heads: Some(self.n_kv_head.unwrap_or(self.n_head)),
                head_dim: None,
                max_position_embeddings: positions,
                rms_norm_eps: 1e-5,
                rope_theta: 10000.0,
                rope_scaling: None,
                tie_word_embeddings: self.tie_embeddings.unwrap_or(true),
                sliding_window: None,
                attention_bias: false,
                mlp_bias: false,
                hidden_act: "silu".into(),
            }
            .into(),
            other => {
                return Err(TrainError::Input(format!(
                    "[model] family `{other}`: choose gpt2 or llama"
                )))
            }
        };
        config
            .validate()
            .map_err(|m| TrainError::Input(format!("[model]: {m}")))?;
        Ok(config)
    }
}

fn d_layers() -> usize {
    4
}
fn d_heads() -> usize {
    4
}
fn d_embd() -> usize {
    256
}
fn d_positions() -> usize {
    256
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// A folder written by `gaincell data prepare`.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// Where checkpoints and metrics go.
    pub out: PathBuf,
    pub steps: usize,
    /// Sequences per micro-batch.
    pub batch: usize,
    /// Micro-batches per optimiser step.
    #[serde(default = "one")]
    pub grad_accum: usize,
    /// Tokens per training sequence.
    pub ctx: usize,
    #[serde(default)]
    pub seed: u64,
    /// Validate every this many steps (and at the end); 0: only at the end.
    #[serde(default)]
    pub eval_every: usize,
    #[serde(default = "d_eval_batches")]
    pub eval_batches: usize,
    /// Checkpoint every this many steps (and at the end); 0: only at the end.
    #[serde(default)]
    pub checkpoint_every: usize,
}

/// The chip-instance seed of training micro-batch `index` (a SplitMix64 step of both: distinct per index).
pub fn instance_seed(run_seed: u64, index: u64) -> u64 {
    let mut z = run_seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn one() -> usize {
    1
}
fn d_eval_batches() -> usize {
    8
}

impl RunConfig {
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let de = toml::Deserializer::new(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            TrainError::Input(format!(
                "{origin}: at `{}`: {}",
                e.path(),
                e.inner().message()
            ))
        })
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let mut c = Self::from_toml_str(&text, &path.display().to_string())?;
        // Relative paths in the file are relative to the file.
        let base = path.parent().unwrap_or(Path::new(""));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut c.data.dir);
        fix(&mut c.train.out);
        if let Some(i) = &mut c.model.init {
            fix(i);
        }
        if let toml::Value::String(s) = &mut c.chip {
            if s.ends_with(".toml") && Path::new(s.as_str()).is_relative() {
                *s = base.join(&*s).display().to_string();
            }
        }
        if let Some(d) = &mut c.distill {
            d.resolve_paths(base);
        }
        Ok(c)
    }

    pub fn chip(&self) -> Result<ChipConfig> {
        chip_from_value(&self.chip)
    }

    fn validate(&self) -> Result<()> {
        let t = &self.train;
        if t.steps == 0 || t.batch == 0 || t.grad_accum == 0 || t.ctx < 2 {
            return Err(TrainError::Input(format!(
                "[train]: steps, batch and grad_accum must be ≥ 1 and ctx ≥ 2 (got steps {}, batch {}, grad_accum {}, ctx {})",
                t.steps, t.batch, t.grad_accum, t.ctx
            )));
        }
        self.optim.validate("[optim]")?;
        if let Some(d) = &self.distill {
            d.validate()?;
        }
        Ok(())
    }
}

/// A chip from a preset name, a file, or an inline TOML table.
pub fn chip_from_value(v: &toml::Value) -> Result<ChipConfig> {
    Ok(match v {
        toml::Value::String(s) => ChipConfig::load(s)?,
        toml::Value::Table(t) => {
            ChipConfig::from_toml_str(&toml::to_string(t).expect("toml"), "inline chip")?
        }
        other => {
            return Err(TrainError::Input(format!(
                "chip = {other}: give a preset name, a chip file, or a table"
            )))
        }
    })
}

/// What the loop reports as it goes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Step {
        step: usize,
        /// The loss differentiated: cross-entropy, or with `[distill]` `(1 − w)·CE + w·distill_loss`.
        loss: f64,
        lr: f64,
        grad_norm: f64,
        tokens: u64,
        tokens_per_s: f64,
        /// With `[distill]`: the step's mean `T²·KL(teacher ‖ student)` (absent otherwise, and in older files).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        distill_loss: Option<f64>,
    },
    Eval {
        step: usize,
        val_loss: f64,
    },
    /// A resume with `allow_config_change` found these settings changed (also in `config-changes.jsonl`).
    ConfigChanged {
        step: usize,
        changes: Vec<String>,
    },
}

/// Trainer state saved with each checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    step: usize,
    tokens: u64,
    stats: Option<HeadStats>,
    config: RunConfig,
}

pub const CHECKPOINT: &str = "checkpoint";
pub const METRICS: &str = "metrics.jsonl";

/// The outcome of [`train`].
pub struct Outcome {
    pub model: Model,
    pub steps: usize,
    pub final_val_loss: f64,
    pub stats: Option<HeadStats>,
    pub checkpoint: PathBuf,
}

/// Mean cross-entropy (nats) of next-token prediction on `x → y` (`rows × ctx`).
pub fn batch_loss(model: &Model, x: &[u32], y: &[u32], rows: usize, ctx: usize) -> Result<Tensor> {
    let xs = Tensor::from_slice(x, (rows, ctx), &Device::Cpu)?;
    let ys = Tensor::from_slice(y, rows * ctx, &Device::Cpu)?;
    let logits = model
        .forward(&xs)?
        .reshape((rows * ctx, model.config.vocab_size()))?;
    Ok(gaincell_model::ops::cross_entropy(&logits, &ys)?)
}

/// Mean validation loss over `batches` fixed batches (the same ones at every evaluation).
pub fn validation_loss(
    model: &Model,
    shards: &Shards,
    rows: usize,
    ctx: usize,
    batches: usize,
    seed: u64,
) -> Result<f64> {
    let mut sum = 0.0;
    for i in 0..batches {
        let (x, y) = shards.batch(
            Split::Val,
            rows,
            ctx,
            seed ^ 0x5eed_0000_0000_0001,
            i as u64,
        )?;
        sum += batch_loss(model, &x, &y, rows, ctx)?.to_scalar::<f32>()? as f64;
    }
    Ok(sum / batches.max(1) as f64)
}

/// Run (or, with `resume`, continue) the training a config describes. `on_event` sees every step and evaluation.
/// A resumed run must have the settings the checkpoint was made with (see [`train_with`] to allow changes).
pub fn train(
    config: &RunConfig,
    resume: bool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Outcome> {
    let options = TrainOptions {
        resume,
        allow_config_change: false,
    };
    train_with(config, options, on_event)
}

/// How [`train_with`] treats a checkpoint already in `[train] out`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrainOptions {
    /// Continue from the checkpoint (without it, a checkpoint in `out` is an error).
    pub resume: bool,
    /// Resume even when the settings differ from the checkpoint's (chip, data, optimiser, batch, …): the
    /// changes are reported as [`Event::ConfigChanged`] and appended to `out/config-changes.jsonl`.
    pub allow_config_change: bool,
}

/// The file where resumed runs record the settings they changed.
pub const CONFIG_CHANGES: &str = "config-changes.jsonl";

/// Every difference between the run a checkpoint was made with and the one resuming it that changes what is
/// computed, one line each (`[optim] lr: 0.001 → 0.0005`). `steps`, `eval_every` and `checkpoint_every` may
/// change freely: training longer, or validating more often, computes the same steps.
pub fn config_changes(
    old: &RunConfig,
    new: &RunConfig,
    old_chip: &ChipConfig,
    new_chip: &ChipConfig,
) -> Vec<String> {
    let mut changes = Vec::new();
    let as_json = |c: &RunConfig| {
        let mut v = serde_json::to_value(c).expect("a run config is JSON");
        let root = v.as_object_mut().expect("object");
        // Compared below by meaning, not by spelling.
        root.remove("chip");
        root.remove("data");
        root.remove("distill");
        if let Some(t) = root.get_mut("train").and_then(|t| t.as_object_mut()) {
            for free in ["out", "steps", "eval_every", "checkpoint_every"] {
                t.remove(free);
            }
        }
        v
    };
    json_diff("", &as_json(old), &as_json(new), &mut changes);
    if old_chip != new_chip {
        let as_json = |c: &ChipConfig| serde_json::to_value(c).expect("a chip is JSON");
        let before = changes.len();
        json_diff("chip", &as_json(old_chip), &as_json(new_chip), &mut changes);
        if changes.len() == before {
            changes.push(format!("chip: {} → {}", old_chip.name, new_chip.name));
        }
    }
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if canon(&old.data.dir) != canon(&new.data.dir) {
        changes.push(format!(
            "[data] dir: {} → {}",
            old.data.dir.display(),
            new.data.dir.display()
        ));
    }
    let same_distill = match (&old.distill, &new.distill) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same_as(b),
        _ => false,
    };
    if !same_distill {
        let show = |d: &Option<DistillSpec>| match d {
            None => "none".to_string(),
            Some(d) => format!(
                "teacher {}, weight {}, temperature {}",
                d.teacher.display(),
                d.weight,
                d.temperature
            ),
        };
        changes.push(format!(
            "[distill]: {} → {}",
            show(&old.distill),
            show(&new.distill)
        ));
    }
    changes
}

/// `path: a → b` for every leaf that differs between two JSON trees (TOML sections shown as `[section] key`).
fn json_diff(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    format!("[{k}]")
                } else if path.starts_with('[') && !path.contains(' ') {
                    format!("{path} {k}")
                } else {
                    format!("{path}.{k}")
                };
                let null = Value::Null;
                json_diff(
                    &p,
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        _ if a != b => {
            let show = |v: &Value| match v {
                Value::Null => "unset".to_string(),
                v => v.to_string(),
            };
            out.push(format!("{path}: {} → {}", show(a), show(b)));
        }
        _ => {}
    }
}

/// The trainer state saved with the checkpoint in `dir`.
fn read_state(dir: &Path) -> Result<State> {
    let path = dir.join("state.json");
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        TrainError::Input(format!(
            "{}: {e}; the checkpoint is damaged",
            path.display()
        ))
    })
}

/// The step the checkpoint in `dir` reached, or None when it has no readable state.
pub fn checkpoint_step(dir: &Path) -> Option<usize> {
    read_state(dir).ok().map(|s| s.step)
}

/// The settings of `config` that differ from those its finished checkpoint in `[train] out` was made with
/// (empty when none differ, or when there is no checkpoint): a finished stage that would be skipped must not
/// silently stand for a config it was not trained with.
pub fn finished_run_changes(config: &RunConfig) -> Result<Vec<String>> {
    let Some(dir) = latest_checkpoint(&config.train.out) else {
        return Ok(Vec::new());
    };
    let state = read_state(&dir)?;
    let recorded = checkpoint::load(&dir, None)?;
    Ok(config_changes(
        &state.config,
        config,
        &recorded.chip,
        &config.chip()?,
    ))
}

/// [`train`] with the options of [`TrainOptions`].
pub fn train_with(
    config: &RunConfig,
    options: TrainOptions,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Outcome> {
    let resume = options.resume;
    config.validate()?;
    let t = &config.train;
    let out = &t.out;
    std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
    let shards = Shards::open(&config.data.dir)?;
    let chip = config.chip()?;
    let ckpt_dir = latest_checkpoint(out);

    let (model, state) = match (&ckpt_dir, resume) {
        (Some(dir), true) => {
            let state = read_state(dir)?;
            if t.steps < state.step {
                return Err(TrainError::Input(format!(
                    "[train] steps = {} is below the step the checkpoint in {} reached ({}): training cannot go back; set steps ≥ {} to continue, or choose another [train] out",
                    t.steps,
                    dir.display(),
                    state.step,
                    state.step
                )));
            }
            // The checkpoint's own chip (its sidecar) is what it was trained on, whatever the config's chip
            // file says today.
            let recorded = checkpoint::load(dir, None)?;
            let changes = config_changes(&state.config, config, &recorded.chip, &chip);
            if !changes.is_empty() {
                if !options.allow_config_change {
                    return Err(TrainError::Input(format!(
                        "{}: this config differs from the one the checkpoint was made with — {}; resume with the config that started it, or pass --allow-config-change to continue with the new settings (the change is logged)",
                        dir.display(),
                        changes.join("; ")
                    )));
                }
                let ev = Event::ConfigChanged {
                    step: state.step,
                    changes,
                };
                append_metric(&out.join(CONFIG_CHANGES), &ev)?;
                on_event(&ev);
            }
            (recorded.with_chip(chip.clone())?, state)
        }
        (None, true) => {
            return Err(TrainError::Input(format!(
                "--resume: no checkpoint in {} to resume from",
                out.display()
            )))
        }
        (Some(_), false) => {
            return Err(TrainError::Input(format!(
                "{} already holds a checkpoint: pass --resume to continue it, or choose another [train] out",
                out.display()
            )))
        }
        (None, false) => {
            let model = match &config.model.init {
                Some(init) => checkpoint::load(&checkpoint::resolve(&init.display().to_string())?, Some(chip.clone()))?,
                None => {
                    let mc = config.model.fresh_config(shards.meta.vocab_size, t.ctx)?;
                    Model::random(mc, chip.clone(), t.seed)?
                }
            };
            (model, State { step: 0, tokens: 0, stats: None, config: config.clone() })
        }
    };
    if model.config.vocab_size() < shards.meta.vocab_size {
        return Err(TrainError::Input(format!(
            "the model's vocabulary ({}) is smaller than the data's ({}): prepare the data with the model's tokenizer",
            model.config.vocab_size(), shards.meta.vocab_size
        )));
    }
    if t.ctx > model.config.n_positions() {
        return Err(TrainError::Input(format!(
            "[train] ctx {} exceeds the model's {} positions",
            t.ctx,
            model.config.n_positions()
        )));
    }
    // The teacher: loaded once, run without gradients on every micro-batch.
    let teacher = config
        .distill
        .as_ref()
        .map(|d| Teacher::load(d, &model.config, t.ctx))
        .transpose()?;
    let (mut model, vars) = model.trainable()?;
    let mut opt = AdamW::new(&vars, config.optim.clone())?;
    // Hardware-aware training: on a chip with noise or variation on, every micro-batch runs on a fresh chip
    // instance with fresh noise (as aihwkit trains), its seeds keyed by the run's seed and the micro-batch's
    // index, so a resumed run draws what an unbroken one does. Validation runs on the chip as configured.
    let configured_attention = model.attention.clone();
    let noisy = !(model.chip.noise.is_off() && model.chip.variation.is_off());
    if let (Some(dir), true) = (&ckpt_dir, resume) {
        opt.load(&dir.join("optimizer.safetensors"), state.step)?;
    }
    truncate_metrics(&out.join(METRICS), state.step)?;
    let record_stats = model.attention.is_gain_cell();
    let mut stats = state.stats.clone();
    let mut tokens = state.tokens;
    let mut step = state.step;
    let started = Instant::now();
    let tokens_at_start = tokens;
    let mut final_val = f64::NAN;
    while step < t.steps {
        // One optimiser step: grad_accum micro-batches, each loss scaled so the gradients average.
        let mut loss_sum = 0.0f64;
        let mut distill_sum = 0.0f64;
        let mut grads: Option<candle_core::backprop::GradStore> = None;
        let mut recorder = Recorder::new(model.config.n_layer());
        for micro in 0..t.grad_accum {
            let index = (step * t.grad_accum + micro) as u64;
            let (x, y) = shards.batch(Split::Train, t.batch, t.ctx, t.seed, index)?;
            if noisy {
                let mut c = model.chip.clone();
                let seed = instance_seed(t.seed, index);
                c.noise.seed = seed;
                c.variation.seed = seed;
                model.attention = gaincell_model::Attention::for_model(&c, &model.config)?;
            }
            let xs = Tensor::from_slice(&x, (t.batch, t.ctx), &Device::Cpu)?;
            let ys = Tensor::from_slice(&y, t.batch * t.ctx, &Device::Cpu)?;
            let hidden = if record_stats && micro == 0 {
                model.hidden_probed(&xs, &mut |l, s, x| recorder.record(l, s, x))?
            } else {
                model.hidden(&xs)?
            };
            let logits = model
                .head(&hidden)?
                .reshape((t.batch * t.ctx, model.config.vocab_size()))?;
            let loss = match &teacher {
                None => gaincell_model::ops::cross_entropy(&logits, &ys)?,
                Some(teacher) => {
                    let l = teacher.loss(&logits, &xs, &ys)?;
                    distill_sum += l.distill.to_scalar::<f32>()? as f64;
                    l.loss
                }
            };
            loss_sum += loss.to_scalar::<f32>()? as f64;
            let g = (loss / t.grad_accum as f64)?.backward()?;
            grads = Some(match grads {
                None => g,
                Some(mut acc) => {
                    for (_, var) in &vars {
                        if let Some(new) = g.get(var.as_tensor()) {
                            let sum = match acc.get(var.as_tensor()) {
                                Some(old) => (old + new)?,
                                None => new.clone(),
                            };
                            acc.insert(var.as_tensor(), sum);
                        }
                    }
                    acc
                }
            });
        }
        let (lr, grad_norm) = opt.step(grads.as_ref().expect("grad_accum ≥ 1"))?;
        if record_stats {
            stats
                .get_or_insert_with(HeadStats::default)
                .ema(&recorder.stats, 0.1);
        }
        step += 1;
        tokens += (t.batch * t.grad_accum * t.ctx) as u64;
        let loss = loss_sum / t.grad_accum as f64;
        if !loss.is_finite() {
            return Err(TrainError::Input(format!(
                "loss is {loss} at step {step}: lower the learning rate (the last checkpoint is intact)"
            )));
        }
        let ev = Event::Step {
            step,
            loss,
            lr,
            grad_norm,
            tokens,
            tokens_per_s: (tokens - tokens_at_start) as f64 / started.elapsed().as_secs_f64(),
            distill_loss: teacher.as_ref().map(|_| distill_sum / t.grad_accum as f64),
        };
        append_metric(&out.join(METRICS), &ev)?;
        on_event(&ev);
        let last = step == t.steps;
        if last || (t.eval_every > 0 && step % t.eval_every == 0) {
            model.attention = configured_attention.clone();
            let v = validation_loss(&model, &shards, t.batch, t.ctx, t.eval_batches, t.seed)?;
            if !v.is_finite() {
                return Err(TrainError::Input(format!(
                    "validation: the loss is {v} at step {step} (the weights or the chip's outputs overflowed): lower the learning rate; the last checkpoint is intact and --resume continues from it"
                )));
            }
            final_val = v;
            let ev = Event::Eval { step, val_loss: v };
            append_metric(&out.join(METRICS), &ev)?;
            on_event(&ev);
        }
        if last || (t.checkpoint_every > 0 && step % t.checkpoint_every == 0) {
            let state = State {
                step,
                tokens,
                stats: stats.clone(),
                config: config.clone(),
            };
            save_checkpoint(out, &model, &opt, &state).map_err(|e| {
                let previous = match latest_checkpoint(out) {
                    Some(dir) => format!(
                        "the previous checkpoint in {} is intact and --resume continues from it",
                        dir.display()
                    ),
                    None => "no earlier checkpoint exists: free the space and start again".into(),
                };
                TrainError::Input(format!(
                    "saving the checkpoint of step {step} failed: {e}; {previous}"
                ))
            })?;
        }
    }
    Ok(Outcome {
        model,
        steps: step,
        final_val_loss: final_val,
        stats,
        checkpoint: out.join(CHECKPOINT),
    })
}

/// `out/checkpoint`, or `out/checkpoint.old` when a crash came between the two renames of a save.
pub fn latest_checkpoint(out: &Path) -> Option<PathBuf> {
    [CHECKPOINT, "checkpoint.old"]
        .iter()
        .map(|n| out.join(n))
        .find(|d| d.join("state.json").is_file())
}

/// Write the checkpoint into `checkpoint.tmp`, then swap it in by renames: a kill at any moment leaves a
/// complete checkpoint (the new one or the previous one).
fn save_checkpoint(out: &Path, model: &Model, opt: &AdamW, state: &State) -> Result<()> {
    let tmp = out.join("checkpoint.tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    }
    let extra = serde_json::json!({
        "step": state.step,
        "tokens": state.tokens,
        "statistics": state.stats,
    });
    checkpoint::save(model, &tmp, extra)?;
    checkpoint::copy_tokenizer(&state.config.data.dir, &tmp)?;
    opt.save(&tmp.join("optimizer.safetensors"))?;
    write_atomic(
        &tmp.join("state.json"),
        serde_json::to_string_pretty(state)
            .expect("json")
            .as_bytes(),
    )?;
    let (cur, old) = (out.join(CHECKPOINT), out.join("checkpoint.old"));
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
    }
    if cur.exists() {
        std::fs::rename(&cur, &old).map_err(|e| TrainError::io(&cur, e))?;
    }
    std::fs::rename(&tmp, &cur).map_err(|e| TrainError::io(&tmp, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
    }
    Ok(())
}

fn append_metric(path: &Path, ev: &Event) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TrainError::io(path, e))?;
    writeln!(f, "{}", serde_json::to_string(ev).expect("json")).map_err(|e| TrainError::io(path, e))
}

/// Keep only the metric lines of steps ≤ `step` (a resumed run rewrites what came after its checkpoint).
fn truncate_metrics(path: &Path, step: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| match serde_json::from_str::<Event>(l) {
            Ok(Event::Step { step: s, .. })
            | Ok(Event::Eval { step: s, .. })
            | Ok(Event::ConfigChanged { step: s, .. }) => s <= step,
            Err(_) => false, // a line cut by a kill
        })
        .map(|l| format!("{l}\n"))
        .collect();
    Ok(write_atomic(path, kept.as_bytes())?)
}

/// Read a run's metrics back.
pub fn read_metrics(out: &Path) -> Result<Vec<Event>> {
    let path = out.join(METRICS);
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}
