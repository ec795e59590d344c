//! `gaincell study cells`: does the mapping survive other cell curves? For each curve, the linear model's weights
//! on a chip with that cell — unadapted, after the statistics-matching adaptation (with its iterations), and after
//! a short fine-tune of the adapted model — as validation loss on the same held-out batches; a table (markdown +
//! JSON) and a plot (PNG + SVG). The paper reports that adaptation fails for exp; this measures it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use gaincell_chip::ChipConfig;
use gaincell_model::checkpoint;
use gaincell_train::adapt::{adapt, AdaptOptions};
use gaincell_train::data::{Shards, Split};
use gaincell_train::optim::AdamWConfig;
use gaincell_train::pipeline::read_statistics;
use gaincell_train::trainer::{self, DataSpec, ModelSpec, RunConfig, TrainSpec};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::plot::{bars_on, font_ready, save, Bars, COLOURS};

#[derive(Subcommand)]
pub enum StudyCommand {
    /// The linear model's weights on other cell curves: unadapted, adapted, fine-tuned.
    Cells(CellsStudy),
    /// Loss against the cells' retention time (∞ = no leakage), beside energy and latency per token.
    Retention(super::study_retention::RetentionStudy),
    /// Loss against each device-variation and noise σ, for the model fine-tuned without and with noise-aware
    /// training, over several chip instances.
    Variation(super::study_variation::VariationStudy),
}

pub fn run(c: StudyCommand) -> Result<()> {
    match c {
        StudyCommand::Cells(a) => cells(a),
        StudyCommand::Retention(a) => super::study_retention::run(a),
        StudyCommand::Variation(a) => super::study_variation::run(a),
    }
}

/// The curves studied by default: the paper's cell, odd powers, a sigmoid and an exponential, each spanning the
/// linear cell's 19.3 µA over ±0.45 V (see docs/chip-toml.md `[cell]`).
const CURVES: [(&str, &str); 7] = [
    ("linear", "kind = \"linear\"\nslope = 19.3"),
    ("gain-cell", "kind = \"gain-cell\""),
    ("y^3", "kind = \"power\"\nexponent = 3"),
    ("y^5", "kind = \"power\"\nexponent = 5"),
    ("sigmoid(10y)", "kind = \"sigmoid\"\nsteepness = 10.0"),
    ("exp(3y)", "kind = \"exp\"\nrate = 3.0"),
    ("exp(6y)", "kind = \"exp\"\nrate = 6.0"),
];

#[derive(Args)]
pub struct CellsStudy {
    /// A checkpoint fine-tuned on a linear chip (it carries the target statistics), e.g. models/stories260k/linear.
    #[arg(long)]
    linear: PathBuf,
    /// The chip every curve is put into (its [cell] replaced), e.g. configs/chips/stories260k-nonlinear.toml.
    #[arg(long)]
    chip: String,
    /// Token shards (`gaincell data prepare` / `data generate`): calibration, fine-tuning and validation batches.
    #[arg(long)]
    data: PathBuf,
    /// Extra curves as `NAME=FILE.toml`, the file holding a `[cell]` table (e.g. a fitted polynomial).
    #[arg(long = "curve")]
    extra: Vec<String>,
    /// Only these of the built-in curves (comma-separated names as in the table); default: all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Fine-tuning steps after adaptation (0: none).
    #[arg(long, default_value_t = 100)]
    finetune_steps: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 16, value_parser = crate::arg_checks::at_least_one)]
    batch: usize,
    #[arg(long, default_value_t = 256, value_parser = crate::arg_checks::at_least_one)]
    ctx: usize,
    /// Validation batches (the same ones for every curve and stage).
    #[arg(long, default_value_t = 16, value_parser = crate::arg_checks::at_least_one)]
    eval_batches: usize,
    #[arg(long, default_value_t = 100, value_parser = crate::arg_checks::at_least_one)]
    max_iterations: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder: results.md, results.json, cells.png/svg, and one folder per curve (adapted model, fine-tune).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Serialize)]
struct CurveResult {
    curve: String,
    cell: String,
    unadapted_val_loss: f64,
    adapted_val_loss: f64,
    adaptation_iterations: usize,
    adaptation_converged: bool,
    finetuned_val_loss: Option<f64>,
    finetune_steps: usize,
}

#[derive(Serialize)]
struct Study {
    linear_checkpoint: String,
    chip: String,
    data: String,
    linear_on_linear_val_loss: f64,
    batch: usize,
    ctx: usize,
    eval_batches: usize,
    seed: u64,
    results: Vec<CurveResult>,
}

/// `base` with its `[cell]` table replaced by `cell` (TOML text of the table's body).
fn with_cell(base: &ChipConfig, name: &str, cell: &str) -> Result<(ChipConfig, toml::Value)> {
    let mut table: toml::Table =
        toml::from_str(&base.to_toml_string()).context("the base chip as TOML")?;
    let cell: toml::Table =
        toml::from_str(cell).with_context(|| format!("curve {name}: its [cell] table"))?;
    table.insert("cell".into(), toml::Value::Table(cell));
    table.insert(
        "name".into(),
        toml::Value::String(format!("{}-{name}", base.name)),
    );
    let text = toml::to_string(&table).context("chip TOML")?;
    let chip = ChipConfig::from_toml_str(&text, &format!("curve {name}"))?;
    Ok((chip, toml::Value::Table(table)))
}

fn extra_curve(spec: &str) -> Result<(String, String)> {
    let Some((name, file)) = spec.split_once('=') else {
        bail!("--curve {spec}: give NAME=FILE.toml (a file holding a [cell] table)");
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("--curve {name}: reading {file}"))?;
    let t: toml::Table =
        toml::from_str(&text).with_context(|| format!("--curve {name}: {file}"))?;
    let Some(cell) = t.get("cell").and_then(|c| c.as_table()) else {
        bail!("--curve {name}: {file} has no [cell] table");
    };
    Ok((name.to_string(), toml::to_string(cell)?))
}

fn cells(a: CellsStudy) -> Result<()> {
    crate::paths::refuse_overlap(
        "--out",
        &a.out,
        &[("--linear", &a.linear), ("--data", &a.data)],
    )?;
    let base = ChipConfig::load(&a.chip)?;
    if !base.is_gain_cell() {
        bail!(
            "--chip {}: give a gain-cell chip (its [cell] is what the study replaces)",
            a.chip
        );
    }
    let mut curves: Vec<(String, String)> = CURVES
        .iter()
        .filter(|(n, _)| a.only.is_empty() || a.only.iter().any(|o| o == n))
        .map(|(n, c)| (n.to_string(), c.to_string()))
        .collect();
    for o in &a.only {
        if !CURVES.iter().any(|(n, _)| n == o) {
            let known: Vec<&str> = CURVES.iter().map(|c| c.0).collect();
            bail!("--only {o}: not a built-in curve ({})", known.join(", "));
        }
    }
    for e in &a.extra {
        curves.push(extra_curve(e)?);
    }
    // Every chip is checked before anything runs.
    let chips: Vec<(String, String, ChipConfig, toml::Value)> = curves
        .into_iter()
        .map(|(n, c)| with_cell(&base, &n, &c).map(|(chip, v)| (n, c, chip, v)))
        .collect::<Result<_>>()?;
    let targets = read_statistics(&a.linear)?;
    let shards = Shards::open(&a.data)?;
    let val = |m: &gaincell_model::Model| {
        trainer::validation_loss(m, &shards, a.batch, a.ctx, a.eval_batches, a.seed)
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let linear = checkpoint::load(&a.linear, None)?;
    let reference = val(&linear)?;
    println!(
        "study cells: {} on {} with {} curves; the linear model on its own chip: validation loss {reference:.4}",
        a.linear.display(),
        base.name,
        chips.len()
    );
    let bar = ProgressBar::new(chips.len() as u64 * 3).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} stages  {msg}  ETA {eta}")
            .expect("template"),
    );
    let (x, y) = shards.batch(Split::Train, a.batch, a.ctx, a.seed, u64::MAX)?;
    let mut results = Vec::new();
    for (name, cell, chip, chip_value) in &chips {
        bar.set_message(format!("{name}: unadapted"));
        let mut model = checkpoint::load(&a.linear, Some(chip.clone()))?;
        let unadapted = val(&model)?;
        bar.inc(1);
        bar.set_message(format!("{name}: adapting"));
        let opts = AdaptOptions {
            max_iterations: a.max_iterations,
            ..Default::default()
        };
        let adaptation = adapt(&mut model, &targets, &x, &y, a.batch, &opts, &mut |_| {})?;
        let adapted = val(&model)?;
        bar.inc(1);
        let dir = a.out.join(slug(name));
        let adapted_dir = dir.join("adapted");
        let extra = serde_json::json!({ "adapted_from": a.linear.display().to_string(), "statistics": targets });
        checkpoint::save(&model, &adapted_dir, extra)?;
        checkpoint::copy_tokenizer(&a.linear, &adapted_dir)?;
        let finetuned = if a.finetune_steps > 0 {
            bar.set_message(format!("{name}: fine-tuning {} steps", a.finetune_steps));
            let settings = FinetuneSettings {
                data: &a.data,
                steps: a.finetune_steps,
                batch: a.batch,
                ctx: a.ctx,
                seed: a.seed,
                eval_batches: a.eval_batches,
                lr: a.lr,
            };
            let run = finetune_config(
                &settings,
                chip_value.clone(),
                &adapted_dir,
                &dir.join("finetune"),
            );
            // A rerun of the study: a fine-tune finished with the same settings is taken as it is; one that
            // differs (or stopped early) goes through train's resume, which refuses changed settings.
            let existing = trainer::latest_checkpoint(&run.train.out);
            let step = existing.as_deref().and_then(trainer::checkpoint_step);
            let done =
                step == Some(a.finetune_steps) && trainer::finished_run_changes(&run)?.is_empty();
            if done {
                // A finished fine-tune of the same settings (a rerun of the study): its last validation.
                trainer::read_metrics(&run.train.out)?
                    .into_iter()
                    .rev()
                    .find_map(|e| match e {
                        trainer::Event::Eval { val_loss, .. } => Some(val_loss),
                        _ => None,
                    })
            } else {
                Some(trainer::train(&run, existing.is_some(), &mut |_| {})?.final_val_loss)
            }
        } else {
            None
        };
        bar.inc(1);
        let line = format!(
            "{name:<14} unadapted {unadapted:.4}  adapted {adapted:.4} ({} iterations{})  fine-tuned {}",
            adaptation.iterations.len(),
            if adaptation.converged { ", converged" } else { ", not converged" },
            finetuned.map_or("-".into(), |l| format!("{l:.4}"))
        );
        // Printed even when the bar is hidden (no terminal): the study's log.
        bar.suspend(|| println!("{line}"));
        results.push(CurveResult {
            curve: name.clone(),
            cell: cell.replace('\n', ", "),
            unadapted_val_loss: unadapted,
            adapted_val_loss: adapted,
            adaptation_iterations: adaptation.iterations.len(),
            adaptation_converged: adaptation.converged,
            finetuned_val_loss: finetuned,
            finetune_steps: a.finetune_steps,
        });
    }
    bar.finish_and_clear();
    let study = Study {
        linear_checkpoint: a.linear.display().to_string(),
        chip: a.chip.clone(),
        data: a.data.display().to_string(),
        linear_on_linear_val_loss: reference,
        batch: a.batch,
        ctx: a.ctx,
        eval_batches: a.eval_batches,
        seed: a.seed,
        results,
    };
    write_reports(&a.out, &study)?;
    println!(
        "wrote {}: results.md, results.json, cells.png, cells.svg",
        a.out.display()
    );
    Ok(())
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What a study's short fine-tune takes from the command line.
pub(super) struct FinetuneSettings<'a> {
    pub data: &'a Path,
    pub steps: usize,
    pub batch: usize,
    pub ctx: usize,
    pub seed: u64,
    pub eval_batches: usize,
    pub lr: f64,
}

/// A short fine-tune of the checkpoint `init` on `chip` into `out`: no periodic evaluation or checkpoints, the
/// learning rate warming up over a tenth of the steps (at most 10) and decaying to a tenth.
pub(super) fn finetune_config(
    s: &FinetuneSettings,
    chip: toml::Value,
    init: &Path,
    out: &Path,
) -> RunConfig {
    RunConfig {
        model: ModelSpec {
            init: Some(init.to_path_buf()),
            n_layer: 0,
            n_head: 0,
            n_embd: 0,
            n_positions: 0,
            family: String::new(),
            n_kv_head: None,
            intermediate: None,
            tie_embeddings: None,
        },
        chip,
        data: DataSpec {
            dir: s.data.to_path_buf(),
        },
        train: TrainSpec {
            out: out.to_path_buf(),
            steps: s.steps,
            batch: s.batch,
            grad_accum: 1,
            ctx: s.ctx,
            seed: s.seed,
            eval_every: 0,
            eval_batches: s.eval_batches,
            checkpoint_every: 0,
        },
        optim: AdamWConfig {
            lr: s.lr,
            min_lr: s.lr / 10.0,
            warmup_steps: (s.steps / 10).min(10),
            decay_steps: s.steps,
            ..Default::default()
        },
        distill: None,
    }
}

fn write_reports(out: &Path, s: &Study) -> Result<()> {
    let mut md = format!(
        "# Cell curves: the linear model's weights on other cells\n\nCheckpoint `{}`, chip `{}` with its `[cell]` \
         replaced, data `{}`; validation loss (nats/token) on {} fixed batches of {} × {} tokens. The linear model on \
         its own linear chip: **{:.4}**.\n\n| curve | cell | unadapted | adapted | iterations | converged | fine-tuned ({} steps) |\n|---|---|---|---|---|---|---|\n",
        s.linear_checkpoint,
        s.chip,
        s.data,
        s.eval_batches,
        s.batch,
        s.ctx,
        s.linear_on_linear_val_loss,
        s.results.first().map_or(0, |r| r.finetune_steps)
    );
    for r in &s.results {
        md.push_str(&format!(
            "| {} | `{}` | {:.4} | {:.4} | {} | {} | {} |\n",
            r.curve,
            r.cell,
            r.unadapted_val_loss,
            r.adapted_val_loss,
            r.adaptation_iterations,
            if r.adaptation_converged { "yes" } else { "no" },
            r.finetuned_val_loss
                .map_or("-".into(), |l| format!("{l:.4}"))
        ));
    }
    crate::paths::write_file(out.join("results.md"), md)?;
    crate::paths::write_file(out.join("results.json"), serde_json::to_string_pretty(s)?)?;
    font_ready()?;
    let panel = |title: &str, pick: fn(&CurveResult) -> Option<f64>| Bars {
        title: title.to_string(),
        y_desc: "validation loss (nats/token)".into(),
        y_fmt: |v| format!("{v:.2}"),
        bars: s
            .results
            .iter()
            .enumerate()
            .filter_map(|(i, r)| pick(r).map(|v| (r.curve.clone(), v, COLOURS[i % COLOURS.len()])))
            .collect(),
        log_y: false,
    };
    let panels = [
        panel("unadapted", |r| Some(r.unadapted_val_loss)),
        panel("adapted", |r| Some(r.adapted_val_loss)),
        panel("fine-tuned", |r| r.finetuned_val_loss),
    ];
    save(out, "cells", |c| bars_on(c, &panels))?;
    Ok(())
}
