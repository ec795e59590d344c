//! The sweep's accuracy column group: a checkpoint's loss and perplexity on a text (as `gaincell eval ppl` scores
//! it: same tokenizing, same strided windows) and optionally a zero-shot task (as `gaincell eval tasks`), each
//! computed with the point's chip. The model and the text are read once; a point only swaps the chip.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use gaincell_chip::ChipConfig;
use gaincell_eval::{evaluate, EvalOptions, ScoreOptions, Task};
use gaincell_model::{perplexity, text_stream, Attention, Model, PplOptions};
use serde::{Deserialize, Serialize};

use crate::commands::eval::prefix_token;
use crate::model_args::{Loaded, ModelArgs};

#[derive(Args, Clone, Default)]
#[command(next_help_heading = "Accuracy (optional)")]
pub struct AccuracyArgs {
    /// Checkpoint whose accuracy every point reports, run on the point's chip (any `--model` of `eval ppl`).
    /// Without --model, the cost is also that model's.
    #[arg(id = "accuracy_model", long = "accuracy-model", value_name = "MODEL")]
    pub model: Option<String>,
    /// Tokenizer of the model (default: as `eval ppl` finds it).
    #[arg(
        id = "accuracy_tokenizer",
        long = "accuracy-tokenizer",
        value_name = "TOKENIZER"
    )]
    pub tokenizer: Option<String>,
    /// UTF-8 text file (or a prepared data folder: its validation tokens) whose mean loss and perplexity each
    /// point reports, as `gaincell eval ppl --data` scores it.
    #[arg(id = "accuracy_text", long = "accuracy-text", value_name = "FILE")]
    pub text: Option<PathBuf>,
    /// Score only the first N tokens of the text.
    #[arg(id = "accuracy_tokens", long = "accuracy-tokens", value_name = "N")]
    pub tokens: Option<usize>,
    /// Tokens per window (default: the model's positions), as `eval ppl --ctx`.
    #[arg(id = "accuracy_ctx", long = "accuracy-ctx", value_name = "N")]
    pub ctx: Option<usize>,
    /// Tokens the window advances by (default: ctx / 2), as `eval ppl --stride`.
    #[arg(id = "accuracy_stride", long = "accuracy-stride", value_name = "N")]
    pub stride: Option<usize>,
    /// A zero-shot task each point reports (as `gaincell eval tasks`), e.g. arc_easy.
    #[arg(id = "accuracy_task", long = "accuracy-task", value_name = "NAME")]
    pub task: Option<String>,
    /// Folder of the task's data (as `eval tasks --data-dir`).
    #[arg(id = "accuracy_data", long = "accuracy-data", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Only the first N documents of the task.
    #[arg(id = "accuracy_limit", long = "accuracy-limit", value_name = "N")]
    pub limit: Option<usize>,
}

/// What the accuracy group measures, recorded in a sweep's definition (shards of one sweep must agree on it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccuracySpec {
    pub model: String,
    pub tokenizer: Option<String>,
    pub text: Option<TextSpec>,
    pub task: Option<TaskSpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextSpec {
    pub path: String,
    pub max_tokens: Option<usize>,
    /// Tokens read and their bytes, with a fingerprint of the ids: the same file name with other text differs.
    pub tokens: usize,
    pub bytes: usize,
    pub fingerprint: String,
    pub ctx: usize,
    pub stride: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub task: String,
    pub data: String,
    pub limit: Option<usize>,
    pub docs: usize,
    pub prefix_token: u32,
}

/// A point's accuracy. Floats are stored in shard files as exact text ([`exact`]), so a merge reproduces them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Accuracy {
    pub text: Option<TextScore>,
    pub task: Option<TaskScore>,
    /// Wall time of the point's evaluation (the only field a rerun changes).
    #[serde(with = "exact")]
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TextScore {
    pub tokens_scored: usize,
    /// Mean −ln p per scored token (nats).
    #[serde(with = "exact")]
    pub loss: f64,
    #[serde(with = "exact")]
    pub perplexity: f64,
    #[serde(with = "exact")]
    pub bits_per_byte: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskScore {
    pub task: String,
    pub metrics: Vec<TaskMetric>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskMetric {
    pub name: String,
    #[serde(with = "exact")]
    pub value: f64,
    #[serde(with = "exact_opt")]
    pub stderr: Option<f64>,
    pub higher_is_better: bool,
}

impl Accuracy {
    /// The figure the Pareto fronts rank by, lower is better: the text's loss, else the task's `acc` (else its
    /// first metric), negated when higher is better. With its name as the plots label it.
    pub fn objective(&self) -> Option<(f64, String)> {
        if let Some(t) = &self.text {
            return Some((t.loss, "mean loss (nats/token)".into()));
        }
        let task = self.task.as_ref()?;
        let m = task
            .metrics
            .iter()
            .find(|m| m.name == "acc")
            .or(task.metrics.first())?;
        let sign = if m.higher_is_better { -1.0 } else { 1.0 };
        Some((sign * m.value, format!("{} {}", task.task, m.name)))
    }

    /// The headline figure as shown (the loss, or the task's accuracy), with its short name.
    pub fn shown(&self) -> Option<(f64, &'static str)> {
        let (o, _) = self.objective()?;
        Some(if self.text.is_some() {
            (o, "loss")
        } else {
            (-o, "accuracy")
        })
    }

    /// The group's CSV columns, numbers in full precision.
    pub fn columns(&self) -> Vec<(String, String)> {
        let mut cols = Vec::new();
        if let Some(t) = &self.text {
            cols.push(("loss".into(), t.loss.to_string()));
            cols.push(("perplexity".into(), t.perplexity.to_string()));
            cols.push(("bits_per_byte".into(), t.bits_per_byte.to_string()));
            cols.push(("tokens_scored".into(), t.tokens_scored.to_string()));
        }
        if let Some(t) = &self.task {
            for m in &t.metrics {
                cols.push((format!("{}_{}", t.task, m.name), m.value.to_string()));
                let se = m.stderr.map_or(String::new(), |s| s.to_string());
                cols.push((format!("{}_{}_stderr", t.task, m.name), se));
            }
        }
        cols
    }
}

/// The model, text and task, read once for the whole sweep.
pub struct Evaluator {
    loaded: Loaded,
    ids: Vec<u32>,
    ppl: Option<PplOptions>,
    bytes: usize,
    task: Option<(Task, Vec<gaincell_eval::Doc>, EvalOptions)>,
    pub spec: AccuracySpec,
}

impl AccuracyArgs {
    pub fn wanted(&self) -> bool {
        self.model.is_some() || self.text.is_some() || self.task.is_some()
    }

    /// Check the flags go together, then read the model, the text and the task's documents.
    pub fn load(&self) -> Result<Evaluator> {
        let Some(model) = &self.model else {
            bail!("--accuracy-text and --accuracy-task need --accuracy-model (the checkpoint to score)");
        };
        if self.text.is_none() && self.task.is_none() {
            bail!("--accuracy-model needs --accuracy-text FILE and/or --accuracy-task NAME (what to score)");
        }
        if self.task.is_some() != self.data.is_some() {
            bail!("--accuracy-task and --accuracy-data go together: give the task and its data folder");
        }
        let text_only = [
            ("--accuracy-tokens", self.tokens.is_some()),
            ("--accuracy-ctx", self.ctx.is_some()),
            ("--accuracy-stride", self.stride.is_some()),
        ];
        if let Some((flag, _)) = text_only.iter().find(|(_, on)| *on && self.text.is_none()) {
            bail!("{flag} applies to --accuracy-text: give the text too");
        }
        if self.limit.is_some() && self.task.is_none() {
            bail!("--accuracy-limit applies to --accuracy-task: give the task too");
        }
        let task = self.task.as_deref().map(Task::parse).transpose()?;
        let args = ModelArgs {
            model: model.clone(),
            chip: None,
            tokenizer: self.tokenizer.clone(),
        };
        let loaded = args.load()?;
        let mut spec = AccuracySpec {
            model: model.clone(),
            tokenizer: self.tokenizer.clone(),
            text: None,
            task: None,
        };
        let (mut ids, mut bytes, mut ppl) = (Vec::new(), 0, None);
        if let Some(path) = &self.text {
            (ids, bytes) = read_text(&loaded, path, self.tokens)?;
            let ctx = self.ctx.unwrap_or(loaded.model.config.n_positions());
            let stride = self.stride.unwrap_or((ctx / 2).max(1));
            let positions = loaded.model.config.n_positions();
            if ctx < 2 || ctx > positions {
                bail!("--accuracy-ctx {ctx}: give 2 to {positions} (the model's positions)");
            }
            if stride == 0 || stride > ctx {
                bail!("--accuracy-stride {stride}: give 1 to the window's {ctx} tokens");
            }
            ppl = Some(PplOptions { ctx, stride });
            spec.text = Some(TextSpec {
                path: path.display().to_string(),
                max_tokens: self.tokens,
                tokens: ids.len(),
                bytes,
                fingerprint: fingerprint(&ids),
                ctx,
                stride,
            });
        }
        let mut task_run = None;
        if let (Some(task), Some(dir)) = (task, &self.data) {
            let mut docs = task.load(dir)?;
            if let Some(n) = self.limit {
                docs.truncate(n);
            }
            let prefix = prefix_token(&loaded, None)?;
            let opts = EvalOptions {
                score: ScoreOptions {
                    batch: 16,
                    prefix_reuse: true,
                },
                prefix_token: prefix,
                bootstrap_iters: 100_000,
            };
            spec.task = Some(TaskSpec {
                task: task.name().into(),
                data: dir.display().to_string(),
                limit: self.limit,
                docs: docs.len(),
                prefix_token: prefix,
            });
            task_run = Some((task, docs, opts));
        }
        Ok(Evaluator {
            loaded,
            ids,
            ppl,
            bytes,
            task: task_run,
            spec,
        })
    }
}

/// The text's token ids and bytes, read as `eval ppl` reads them.
fn read_text(
    loaded: &Loaded,
    path: &std::path::Path,
    max: Option<usize>,
) -> Result<(Vec<u32>, usize)> {
    if path.is_dir() {
        let shards = gaincell_train::data::Shards::open(path)?;
        let split = gaincell_train::data::Split::Val;
        let n = shards.len(split).min(max.unwrap_or(usize::MAX));
        let ids: Vec<u32> = (0..n).map(|i| shards.token(split, i)).collect();
        let bytes = loaded.tokenizer.decode_bytes(&ids)?.len();
        return Ok((ids, bytes));
    }
    let open = || std::fs::File::open(path).with_context(|| format!("reading {}", path.display()));
    let t = text_stream::tokenize_stream(
        &loaded.tokenizer,
        open()?,
        text_stream::BLOCK_BYTES,
        max,
        &mut |_| {},
    )
    .with_context(|| format!("reading {}", path.display()))?;
    if t.ids.len() < 2 {
        bail!(
            "--accuracy-text {}: {} token(s), perplexity needs at least 2",
            path.display(),
            t.ids.len()
        );
    }
    Ok((t.ids, t.bytes))
}

/// FNV-1a (64 bits) of the ids, as hex: enough to tell two texts apart, no dependency.
fn fingerprint(ids: &[u32]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ids.iter().flat_map(|i| i.to_le_bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl Evaluator {
    /// The model's shape, for the cost model when no --model is given.
    pub fn config(&self) -> &gaincell_model::ModelConfig {
        &self.loaded.model.config
    }

    /// A chip that cannot run the model (e.g. arrays of another head width) as an error naming the field.
    pub fn check_fits(&self, chip: &ChipConfig) -> Result<()> {
        Attention::for_model(chip, &self.loaded.model.config)?;
        Ok(())
    }

    /// The accuracy of the model on `chip`; `progress(done, total)` in the current stage's units.
    pub fn run(
        &self,
        chip: &ChipConfig,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Accuracy> {
        let started = Instant::now();
        let model: Model = self.loaded.model.with_chip(chip.clone())?;
        let text = match self.ppl {
            Some(opts) => {
                let r = perplexity(&model, &self.ids, self.bytes, opts, &mut *progress)?;
                let loss = r.nll / r.tokens_scored as f64;
                if !loss.is_finite() {
                    bail!("the mean loss is {loss}: check the checkpoint and the chip's scalers");
                }
                Some(TextScore {
                    tokens_scored: r.tokens_scored,
                    loss,
                    perplexity: r.perplexity,
                    bits_per_byte: r.bits_per_byte,
                })
            }
            None => None,
        };
        let task = match &self.task {
            Some((task, docs, opts)) => {
                let r = evaluate(
                    &model,
                    &self.loaded.tokenizer,
                    *task,
                    docs,
                    *opts,
                    &mut *progress,
                )
                .with_context(|| task.name())?;
                Some(TaskScore {
                    task: task.name().into(),
                    metrics: r
                        .metrics
                        .iter()
                        .map(|m| TaskMetric {
                            name: m.name.into(),
                            value: m.value,
                            stderr: m.stderr,
                            higher_is_better: m.higher_is_better,
                        })
                        .collect(),
                })
            }
            None => None,
        };
        Ok(Accuracy {
            text,
            task,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// An f64 as text that parses back to the same bits (`{:e}` is the shortest such form), since serde_json's
/// default float parser may miss the last bit.
pub mod exact {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{x:e}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// [`exact`] for an optional f64.
pub mod exact_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match x {
            Some(x) => s.serialize_some(&format!("{x:e}")),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| t.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_floats_round_trip_bit_for_bit() {
        #[derive(Serialize, Deserialize)]
        struct W(#[serde(with = "exact")] f64);
        for x in [
            0.1,
            1.0 / 3.0,
            2.5e-300,
            123456.789e10,
            f64::MAX,
            -0.0,
            4.35e-7,
        ] {
            let text = serde_json::to_string(&W(x)).unwrap();
            let back: W = serde_json::from_str(&text).unwrap();
            assert_eq!(back.0.to_bits(), x.to_bits(), "{text}");
        }
    }

    #[test]
    fn the_objective_is_the_loss_else_the_tasks_accuracy_negated() {
        let task = TaskScore {
            task: "arc_easy".into(),
            metrics: vec![
                TaskMetric {
                    name: "acc_norm".into(),
                    value: 0.3,
                    stderr: None,
                    higher_is_better: true,
                },
                TaskMetric {
                    name: "acc".into(),
                    value: 0.4,
                    stderr: None,
                    higher_is_better: true,
                },
            ],
        };
        let mut a = Accuracy {
            text: None,
            task: Some(task),
            seconds: 0.0,
        };
        assert_eq!(a.objective().unwrap().0, -0.4);
        a.text = Some(TextScore {
            tokens_scored: 10,
            loss: 2.5,
            perplexity: 2.5f64.exp(),
            bits_per_byte: 1.0,
        });
        assert_eq!(a.objective().unwrap().0, 2.5);
    }
}
