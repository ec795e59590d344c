//! The paper's mapping pipeline as one resumable job (docs/mapping.md): software pre-training (or a given software
//! checkpoint) → linear fine-tune (recording target statistics) → adaptation → nonlinear fine-tune; beside it the
//! two shortcuts the paper compares against, with equal budgets: the nonlinear model fine-tuned directly from the
//! software one (for linear + nonlinear steps), and the nonlinear model trained from scratch.
//!
//! Every stage writes its own folder under `out`; a stage whose checkpoint is complete is skipped and a partial one
//! resumed, so the whole job can be killed and restarted.
//!
//! With a `[distill]` section ([`PipelineDistill`]) every stage after pre-training (linear, nonlinear, direct and
//! scratch) is trained by knowledge distillation from a teacher, by default the pipeline's software model.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::adapt::{adapt, AdaptOptions, Adaptation, Iteration};
use crate::data::{write_atomic, Shards, Split};
use crate::distill::{self, DistillSpec};
use crate::error::{Result, TrainError};
use crate::optim::AdamWConfig;
use crate::stats::HeadStats;
use crate::trainer::{
    self, chip_from_value, read_metrics, DataSpec, Event, ModelSpec, RunConfig, TrainSpec,
};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Output folder (relative paths in the file are relative to the file).
    pub out: PathBuf,
    pub data: DataSpec,
    pub model: ModelSpec,
    /// Start from this software checkpoint instead of pre-training one.
    #[serde(default)]
    pub software_checkpoint: Option<PathBuf>,
    pub chips: Chips,
    pub schedule: Schedule,
    /// Optimiser of pre-training and of the from-scratch run.
    #[serde(default)]
    pub optim: AdamWConfig,
    /// Optimiser of the fine-tunes (its warm-up and decay span each fine-tune's own length).
    #[serde(default)]
    pub finetune: AdamWConfig,
    #[serde(default)]
    pub adapt: AdaptSpec,
    /// Knowledge distillation in the linear, nonlinear, direct and scratch stages (never in pre-training); see
    /// [`PipelineDistill`]. Absent: every stage trains on plain cross-entropy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill: Option<PipelineDistill>,
}

/// The pipeline's `[distill]` section: the data-free mapping of LLM-QAT, each chip stage learning from a teacher's
/// next-token distributions as well as from the data.
///
/// ```toml
/// [distill]
/// # teacher = "teacher-folder"   # default: the pipeline's software model (software_checkpoint, or the
/// #                              # pre-trained `software` stage's checkpoint)
/// weight = 0.5                   # w ∈ [0, 1]: loss = (1 − w)·CE + w·T²·KL(teacher ‖ student)
/// temperature = 1.0              # T > 0
/// # chip = "software"            # the teacher's chip; default: the one its checkpoint records
/// ```
///
/// The rule: the section applies to every stage that starts after the software model exists — linear, nonlinear,
/// direct and scratch (so the from-scratch shortcut gets the same teacher and stays a fair comparison); software
/// pre-training never distils. Without `teacher` the teacher is the software model the linear stage starts from;
/// a given `teacher` is a path relative to this file. Validation losses stay plain cross-entropy, so curves with
/// and without distillation compare directly. A stage already finished is skipped whatever the section says; one
/// interrupted is refused if the section changed since it started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineDistill {
    /// The teacher (our checkpoint, an HF folder or a llama2.c `.bin`); default: the software model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<PathBuf>,
    #[serde(default = "distill::d_weight")]
    pub weight: f64,
    #[serde(default = "distill::d_temperature")]
    pub temperature: f64,
    /// The teacher's chip; default: the chip its checkpoint records (software for an HF or llama2.c model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chip: Option<toml::Value>,
}

impl PipelineDistill {
    /// The training run's section, the teacher defaulting to `software`.
    pub fn for_stage(&self, software: &Path) -> DistillSpec {
        DistillSpec {
            teacher: self
                .teacher
                .clone()
                .unwrap_or_else(|| software.to_path_buf()),
            weight: self.weight,
            temperature: self.temperature,
            chip: self.chip.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Chips {
    pub software: toml::Value,
    pub linear: toml::Value,
    pub nonlinear: toml::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub batch: usize,
    pub ctx: usize,
    #[serde(default)]
    pub seed: u64,
    pub eval_every: usize,
    pub eval_batches: usize,
    pub checkpoint_every: usize,
    pub pretrain_steps: usize,
    pub linear_steps: usize,
    pub nonlinear_steps: usize,
    /// Steps of the from-scratch run (default: pre-training + linear + nonlinear, the mapped path's total).
    #[serde(default)]
    pub scratch_steps: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdaptSpec {
    /// Sequences in the fixed batch.
    pub batch: usize,
    pub max_iterations: usize,
    pub eps: f64,
}

impl Default for AdaptSpec {
    fn default() -> Self {
        AdaptSpec {
            batch: 16,
            max_iterations: 100,
            eps: 1e-4,
        }
    }
}

impl PipelineConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let de = toml::Deserializer::new(&text);
        let mut c: PipelineConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            TrainError::Input(format!(
                "{}: at `{}`: {}",
                path.display(),
                e.path(),
                e.inner().message()
            ))
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        for p in [
            Some(&mut c.out),
            Some(&mut c.data.dir),
            c.software_checkpoint.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        for chip in [
            &mut c.chips.software,
            &mut c.chips.linear,
            &mut c.chips.nonlinear,
        ] {
            if let toml::Value::String(s) = chip {
                if s.ends_with(".toml") && Path::new(s.as_str()).is_relative() {
                    *s = base.join(&*s).display().to_string();
                }
            }
        }
        if let Some(d) = &mut c.distill {
            if let Some(t) = &mut d.teacher {
                if t.is_relative() {
                    *t = base.join(&*t);
                }
            }
            distill::resolve_chip_path(&mut d.chip, base);
            distill::check_weight_and_temperature(d.weight, d.temperature)
                .map_err(|e| TrainError::Input(format!("{}: {e}", path.display())))?;
        }
        for (section, o) in [("[optim]", &c.optim), ("[finetune]", &c.finetune)] {
            o.validate(section)
                .map_err(|e| TrainError::Input(format!("{}: {e}", path.display())))?;
        }
        Ok(c)
    }

    fn run(
        &self,
        stage: &str,
        chip: &toml::Value,
        init: Option<PathBuf>,
        steps: usize,
        optim: &AdamWConfig,
        distill: Option<DistillSpec>,
    ) -> RunConfig {
        let s = &self.schedule;
        let mut optim = optim.clone();
        optim.decay_steps = steps;
        optim.warmup_steps = optim.warmup_steps.min(steps / 2);
        RunConfig {
            model: ModelSpec {
                init,
                ..self.model.clone()
            },
            chip: chip.clone(),
            data: self.data.clone(),
            train: TrainSpec {
                out: self.out.join(stage),
                steps,
                batch: s.batch,
                grad_accum: 1,
                ctx: s.ctx,
                seed: s.seed,
                eval_every: s.eval_every,
                eval_batches: s.eval_batches,
                checkpoint_every: s.checkpoint_every,
            },
            optim,
            distill,
        }
    }
}

/// What the pipeline reports as it goes.
pub enum Progress<'a> {
    StageStarted {
        stage: &'a str,
        steps: usize,
        resumed: bool,
    },
    StageSkipped {
        stage: &'a str,
    },
    Train {
        stage: &'a str,
        event: &'a Event,
    },
    Adapt(&'a Iteration),
}

/// One training stage's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageResult {
    pub stage: String,
    pub chip: String,
    pub init: String,
    pub steps: usize,
    pub final_val_loss: f64,
    /// (step, validation loss).
    pub curve: Vec<(usize, f64)>,
}

/// The whole job's outcome (written as `results.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineResult {
    pub stages: Vec<StageResult>,
    /// Validation loss of the linear checkpoint's weights on the nonlinear chip, before and after adaptation.
    pub unadapted_val_loss: f64,
    pub adapted_val_loss: f64,
    pub adaptation: Adaptation,
}

impl PipelineResult {
    pub fn stage(&self, name: &str) -> Option<&StageResult> {
        self.stages.iter().find(|s| s.stage == name)
    }
}

fn finished(out: &Path, steps: usize) -> bool {
    trainer::checkpoint_step(&out.join(trainer::CHECKPOINT)) == Some(steps)
}

fn train_stage(
    name: &str,
    run: &RunConfig,
    allow_config_change: bool,
    on: &mut dyn FnMut(Progress),
) -> Result<StageResult> {
    let out = &run.train.out;
    if finished(out, run.train.steps) {
        let changes = trainer::finished_run_changes(run)?;
        if !changes.is_empty() && !allow_config_change {
            return Err(TrainError::Input(format!(
                "stage {name} finished in {} with other settings than this config's — {}; use another out folder, remove the stage's folder to train it again, or pass --allow-config-change to keep it as it is",
                out.display(),
                changes.join("; ")
            )));
        }
        on(Progress::StageSkipped { stage: name });
    } else {
        let resume = trainer::latest_checkpoint(out).is_some();
        on(Progress::StageStarted {
            stage: name,
            steps: run.train.steps,
            resumed: resume,
        });
        let options = trainer::TrainOptions {
            resume,
            allow_config_change,
        };
        trainer::train_with(run, options, &mut |e| {
            on(Progress::Train {
                stage: name,
                event: e,
            })
        })?;
    }
    let curve: Vec<(usize, f64)> = read_metrics(out)?
        .into_iter()
        .filter_map(|e| match e {
            Event::Eval { step, val_loss } => Some((step, val_loss)),
            _ => None,
        })
        .collect();
    Ok(StageResult {
        stage: name.into(),
        chip: run.chip()?.name,
        init: run
            .model
            .init
            .as_ref()
            .map_or("random".into(), |p| p.display().to_string()),
        steps: run.train.steps,
        final_val_loss: curve.last().map_or(f64::NAN, |c| c.1),
        curve,
    })
}

/// Run (or continue) the pipeline. A stage that resumes must have the settings its checkpoint was made with.
pub fn run(c: &PipelineConfig, on: &mut dyn FnMut(Progress)) -> Result<PipelineResult> {
    run_with(c, false, on)
}

/// [`run`]; with `allow_config_change`, stages resume even when their settings changed (each change reported
/// and logged in the stage's `config-changes.jsonl`).
pub fn run_with(
    c: &PipelineConfig,
    allow_config_change: bool,
    on: &mut dyn FnMut(Progress),
) -> Result<PipelineResult> {
    let s = &c.schedule;
    std::fs::create_dir_all(&c.out).map_err(|e| TrainError::io(&c.out, e))?;
    let ckpt = |stage: &str| c.out.join(stage).join(trainer::CHECKPOINT);
    let mut stages = Vec::new();

    // 1. Software model.
    let software = match &c.software_checkpoint {
        Some(p) => p.clone(),
        None => {
            let run = c.run(
                "software",
                &c.chips.software,
                None,
                s.pretrain_steps,
                &c.optim,
                None,
            );
            stages.push(train_stage("software", &run, allow_config_change, on)?);
            ckpt("software")
        }
    };
    // Distillation (when asked for) in every later stage, from the software model unless a teacher is named.
    let distill = c.distill.as_ref().map(|d| d.for_stage(&software));
    // 2. Linear fine-tune (records the target statistics).
    let run = c.run(
        "linear",
        &c.chips.linear,
        Some(software.clone()),
        s.linear_steps,
        &c.finetune,
        distill.clone(),
    );
    stages.push(train_stage("linear", &run, allow_config_change, on)?);

    // 3. Adaptation onto the nonlinear cell.
    let nonlinear_chip = chip_from_value(&c.chips.nonlinear)?;
    let adapted_dir = c.out.join("adapted");
    let record = adapted_dir.join("adaptation.json");
    let (unadapted, adapted_loss, adaptation) = if record.is_file() {
        on(Progress::StageSkipped { stage: "adapt" });
        let v: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&record).map_err(|e| TrainError::io(&record, e))?,
        )
        .map_err(|e| TrainError::Input(format!("{}: {e}", record.display())))?;
        let a: Adaptation = serde_json::from_value(v["adaptation"].clone())
            .map_err(|e| TrainError::Input(format!("{}: {e}", record.display())))?;
        (
            v["unadapted_val_loss"].as_f64().unwrap_or(f64::NAN),
            v["adapted_val_loss"].as_f64().unwrap_or(f64::NAN),
            a,
        )
    } else {
        on(Progress::StageStarted {
            stage: "adapt",
            steps: c.adapt.max_iterations,
            resumed: false,
        });
        let linear_dir = ckpt("linear");
        let targets = read_statistics(&linear_dir)?;
        let mut model =
            gaincell_model::checkpoint::load(&linear_dir, Some(nonlinear_chip.clone()))?;
        let shards = Shards::open(&c.data.dir)?;
        let val = |m: &gaincell_model::Model| {
            trainer::validation_loss(m, &shards, s.batch, s.ctx, s.eval_batches, s.seed)
        };
        let unadapted = val(&model)?;
        let (x, y) = shards.batch(Split::Train, c.adapt.batch, s.ctx, s.seed, u64::MAX)?;
        let opts = AdaptOptions {
            max_iterations: c.adapt.max_iterations,
            eps: c.adapt.eps,
            ..Default::default()
        };
        let a = adapt(
            &mut model,
            &targets,
            &x,
            &y,
            c.adapt.batch,
            &opts,
            &mut |it| on(Progress::Adapt(it)),
        )?;
        let adapted = val(&model)?;
        let extra = serde_json::json!({ "adapted_from": linear_dir.display().to_string(), "statistics": targets });
        gaincell_model::checkpoint::save(&model, &adapted_dir, extra)?;
        gaincell_model::checkpoint::copy_tokenizer(&c.data.dir, &adapted_dir)?;
        let rec = serde_json::json!({ "unadapted_val_loss": unadapted, "adapted_val_loss": adapted, "adaptation": a });
        write_atomic(
            &record,
            serde_json::to_string_pretty(&rec).expect("json").as_bytes(),
        )?;
        (unadapted, adapted, a)
    };

    // 4. Nonlinear fine-tune of the adapted model.
    let run = c.run(
        "nonlinear",
        &c.chips.nonlinear,
        Some(adapted_dir),
        s.nonlinear_steps,
        &c.finetune,
        distill.clone(),
    );
    stages.push(train_stage("nonlinear", &run, allow_config_change, on)?);
    // Shortcut 1: nonlinear directly from the software model, for the same fine-tuning budget.
    let run = c.run(
        "direct",
        &c.chips.nonlinear,
        Some(software),
        s.linear_steps + s.nonlinear_steps,
        &c.finetune,
        distill.clone(),
    );
    stages.push(train_stage("direct", &run, allow_config_change, on)?);
    // Shortcut 2: nonlinear from scratch, for the mapped path's whole budget.
    let scratch = s
        .scratch_steps
        .unwrap_or(s.pretrain_steps + s.linear_steps + s.nonlinear_steps);
    let run = c.run(
        "scratch",
        &c.chips.nonlinear,
        None,
        scratch,
        &c.optim,
        distill,
    );
    stages.push(train_stage("scratch", &run, allow_config_change, on)?);

    let result = PipelineResult {
        stages,
        unadapted_val_loss: unadapted,
        adapted_val_loss: adapted_loss,
        adaptation,
    };
    write_atomic(
        &c.out.join("results.json"),
        serde_json::to_string_pretty(&result)
            .expect("json")
            .as_bytes(),
    )?;
    Ok(result)
}

/// The target statistics in a checkpoint's sidecar.
pub fn read_statistics(dir: &Path) -> Result<HeadStats> {
    let path = dir.join(gaincell_model::checkpoint::SIDECAR);
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| TrainError::Input(format!("{}: {e}", path.display())))?;
    let stats = &v["extra"]["statistics"];
    if stats.is_null() {
        return Err(TrainError::Input(format!(
            "{}: no target statistics; they are recorded while `gaincell train` trains on a linear chip",
            dir.display()
        )));
    }
    serde_json::from_value(stats.clone())
        .map_err(|e| TrainError::Input(format!("{}: {e}", path.display())))
}
