//! `gaincell study variation`: how much device variation and noise does the mapped model stand, and does
//! noise-aware training buy any of it back? Two fine-tunes of one checkpoint on the same chip — "plain" without
//! noise, "noise-aware" with every σ at its nominal value (hardware-aware: a fresh chip instance and fresh noise
//! per micro-batch) — each evaluated on the same held-out batches with one σ (or all of them at once) at a
//! multiple of its nominal value, over several chip instances (seeds 1…N, each set as the chip's variation and
//! noise seed, as `eval ppl --chip-seeds` does): mean ± sample std of the loss, its increase over the ideal chip
//! (every σ 0), and the σ at which that increase crosses a threshold (1 %), interpolated in log σ.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use gaincell_chip::ChipConfig;
use gaincell_model::{checkpoint, perplexity, Model, PplOptions};
use gaincell_train::data::Shards;
use gaincell_train::trainer;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use serde::Serialize;

use crate::model_args::ModelArgs;
use crate::plot::{font_ready, save_sized, Canvas, FAMILY};

/// A σ the study varies: its name in the chip file's section, and its nominal value for a chip.
struct Field {
    name: &'static str,
    section: &'static str,
    unit: &'static str,
    nominal: fn(&ChipConfig) -> f64,
    why: &'static str,
}

/// The nine σ of docs/chip-toml.md `[variation]` and `[noise]`, each with a plausible nominal value. Gains are
/// relative: 5 % cell-to-cell and converter-to-converter mismatch is the usual order for analog memory arrays and
/// their readout. The cell offset and the DAC write noise are 10 mV on the 0.9 V weight range (1.1 %, a twelfth of
/// a 3-bit DAC step). Thresholds and read noise are in the units of the signal they sit on, so they scale with the
/// chip's saturation constants: a converter threshold spread of 2 % and a read noise of 1 % of the full scale that
/// saturates it (readout.s_sat for the key columns' charge-to-pulse converters, readout.a_sat for the sub-tile
/// output counters; for the stories260K chips 80 and 40, so 1.6 and 0.8 µA thresholds, 0.8 and 0.4 µA noise).
const FIELDS: [Field; 9] = [
    Field {
        name: "cell_gain_sigma",
        section: "variation",
        unit: "relative",
        nominal: |_| 0.05,
        why: "5 % cell-to-cell gain mismatch",
    },
    Field {
        name: "cell_offset_sigma_v",
        section: "variation",
        unit: "V",
        nominal: |_| 0.01,
        why: "10 mV on the 0.9 V weight range",
    },
    Field {
        name: "c2p_gain_sigma",
        section: "variation",
        unit: "relative",
        nominal: |_| 0.05,
        why: "5 % converter gain mismatch",
    },
    Field {
        name: "c2p_threshold_sigma_ua",
        section: "variation",
        unit: "µA",
        nominal: |c| 0.02 * c.readout.s_sat,
        why: "2 % of readout.s_sat",
    },
    Field {
        name: "counter_gain_sigma",
        section: "variation",
        unit: "relative",
        nominal: |_| 0.05,
        why: "5 % converter gain mismatch",
    },
    Field {
        name: "counter_threshold_sigma_ua",
        section: "variation",
        unit: "µA",
        nominal: |c| 0.02 * c.readout.a_sat,
        why: "2 % of readout.a_sat",
    },
    Field {
        name: "write_sigma_v",
        section: "noise",
        unit: "V",
        nominal: |_| 0.01,
        why: "10 mV on the 0.9 V weight range",
    },
    Field {
        name: "score_read_sigma_ua",
        section: "noise",
        unit: "µA",
        nominal: |c| 0.01 * c.readout.s_sat,
        why: "1 % of readout.s_sat",
    },
    Field {
        name: "value_read_sigma_ua",
        section: "noise",
        unit: "µA",
        nominal: |c| 0.01 * c.readout.a_sat,
        why: "1 % of readout.a_sat",
    },
];

/// The row with every field on at once (each at the same multiple of its nominal σ).
const ALL: &str = "all";

#[derive(Args)]
pub struct VariationStudy {
    /// A mapped checkpoint to fine-tune both ways, e.g. models/stories260k/nonlinear.
    #[arg(long)]
    model: PathBuf,
    /// The chip every point runs on (its [variation] and [noise] replaced), e.g.
    /// configs/chips/stories260k-nonlinear.toml.
    #[arg(long)]
    chip: String,
    /// Token shards (`gaincell data prepare` / `data generate`): fine-tuning and validation batches.
    #[arg(long)]
    data: PathBuf,
    /// Take the model fine-tuned without noise as given instead of fine-tuning --model (with --aware-model).
    #[arg(long)]
    plain_model: Option<PathBuf>,
    /// Take the noise-aware model as given instead of fine-tuning --model (with --plain-model).
    #[arg(long)]
    aware_model: Option<PathBuf>,
    /// Fine-tuning steps of each model (0: --model as it is, for both).
    #[arg(long, default_value_t = 100)]
    finetune_steps: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 16, value_parser = crate::arg_checks::at_least_one)]
    batch: usize,
    /// Tokens per fine-tuning and validation row, and per --text window (stride half of it).
    #[arg(long, default_value_t = 256, value_parser = crate::arg_checks::at_least_one)]
    ctx: usize,
    /// Validation batches (the same ones for every point, model and instance).
    #[arg(long, default_value_t = 16, value_parser = crate::arg_checks::at_least_one)]
    eval_batches: usize,
    /// Chip instances per point (at least 1): seeds 1…N, each set as the chip's variation and noise seed.
    #[arg(long, default_value_t = 5)]
    instances: usize,
    /// Multiples of each field's nominal σ, comma-separated.
    #[arg(long, default_value = "0.25,0.5,1,2,4")]
    scales: String,
    /// The σ fields to vary one at a time, comma-separated (`all`: every field at once); default: all nine and
    /// `all`.
    #[arg(long, value_delimiter = ',')]
    fields: Vec<String>,
    /// A nominal σ instead of the built-in one, as FIELD=VALUE (repeatable), e.g. write_sigma_v=0.02.
    #[arg(long = "sigma")]
    sigma: Vec<String>,
    /// A UTF-8 text whose perplexity each point also reports (as `eval ppl` scores it).
    #[arg(long)]
    text: Option<PathBuf>,
    /// Tokenizer for --text (default: as `eval ppl` finds it for --model).
    #[arg(long)]
    tokenizer: Option<String>,
    /// Score only the first N tokens of --text.
    #[arg(long)]
    text_tokens: Option<usize>,
    /// Loss increase (percent of the ideal chip's loss) whose σ the study reports.
    #[arg(long, default_value_t = 1.0)]
    threshold_pct: f64,
    /// Seed of the fine-tunes and of the validation batches.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder: results.md, results.json, variation.png/svg, and the fine-tunes (plain/, noise-aware/).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Serialize, Clone)]
struct Nominal {
    field: String,
    section: String,
    unit: String,
    sigma: f64,
    why: String,
}

/// Loss (and text) on one chip over its instances.
#[derive(Serialize, Clone)]
struct Point {
    /// The field (or `all`).
    field: String,
    /// Multiple of the nominal σ.
    scale: f64,
    /// The field's σ (None for `all`: every field at `scale` × its nominal).
    sigma: Option<f64>,
    val_losses: Vec<f64>,
    val_loss_mean: f64,
    val_loss_std: f64,
    /// Mean loss increase over the ideal chip, percent of the ideal loss.
    delta_pct: f64,
    text_loss_mean: Option<f64>,
    text_loss_std: Option<f64>,
    text_perplexity_mean: Option<f64>,
    text_perplexity_std: Option<f64>,
}

/// Where the mean loss increase first reaches the threshold, going up in σ.
#[derive(Serialize, Debug, PartialEq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Crossing {
    /// Interpolated in log σ between the two grid points around the crossing.
    Interpolated { scale: f64 },
    /// Already at or over it at the smallest multiple studied.
    AtMost { scale: f64 },
    /// Under it up to the largest multiple studied.
    NotReached { scale: f64 },
}

#[derive(Serialize)]
struct Threshold {
    field: String,
    crossing: Crossing,
    /// The crossing as the field's σ (None for `all`).
    sigma: Option<f64>,
}

#[derive(Serialize)]
struct ModelResult {
    /// `plain` or `noise-aware`.
    name: String,
    checkpoint: String,
    ideal_val_loss: f64,
    ideal_text_loss: Option<f64>,
    ideal_text_perplexity: Option<f64>,
    points: Vec<Point>,
    thresholds: Vec<Threshold>,
}

#[derive(Serialize)]
struct Study {
    model: String,
    chip: String,
    data: String,
    finetune_steps: usize,
    lr: f64,
    batch: usize,
    ctx: usize,
    eval_batches: usize,
    seed: u64,
    chip_seeds: Vec<u64>,
    scales: Vec<f64>,
    threshold_pct: f64,
    nominal: Vec<Nominal>,
    text: Option<String>,
    text_tokens_scored: Option<usize>,
    models: Vec<ModelResult>,
    finds: Vec<String>,
}

fn field(name: &str) -> Result<&'static Field> {
    let short = name
        .strip_prefix("variation.")
        .or_else(|| name.strip_prefix("noise."))
        .unwrap_or(name);
    FIELDS.iter().find(|f| f.name == short).with_context(|| {
        let known: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        format!(
            "`{name}` is not a σ field; the fields are {} (and `{ALL}` for every one at once)",
            known.join(", ")
        )
    })
}

/// Multiples of the nominal σ, ascending; one-line errors for anything not a positive number.
fn parse_scales(spec: &str) -> Result<Vec<f64>> {
    let items: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        bail!("--scales: give at least one multiple of the nominal σ, e.g. 0.5,1,2");
    }
    let mut out: Vec<f64> = Vec::new();
    for s in items {
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => {
                if out.contains(&v) {
                    bail!("--scales {s}: given twice");
                }
                out.push(v)
            }
            _ => bail!("--scales {s}: a multiple of the nominal σ is a positive number"),
        }
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

/// The nominal σ of every field for `chip`, with `--sigma FIELD=VALUE` overrides.
fn nominals(chip: &ChipConfig, overrides: &[String]) -> Result<Vec<Nominal>> {
    let mut n: Vec<Nominal> = FIELDS
        .iter()
        .map(|f| Nominal {
            field: f.name.into(),
            section: f.section.into(),
            unit: f.unit.into(),
            sigma: (f.nominal)(chip),
            why: f.why.into(),
        })
        .collect();
    for o in overrides {
        let Some((name, value)) = o.split_once('=') else {
            bail!("--sigma {o}: give FIELD=VALUE, e.g. write_sigma_v=0.02");
        };
        let f = field(name.trim()).with_context(|| format!("--sigma {o}"))?;
        let v: f64 = match value.trim().parse() {
            Ok(v) if f64::is_finite(v) && v > 0.0 => v,
            Ok(v) if f64::is_finite(v) && v == 0.0 => {
                bail!("--sigma {o}: a nominal σ of 0 leaves nothing to vary; leave the field out of --fields")
            }
            _ => bail!("--sigma {o}: a standard deviation is a finite number > 0"),
        };
        let e = n
            .iter_mut()
            .find(|e| e.field == f.name)
            .expect("every field");
        e.sigma = v;
        e.why = "--sigma".into();
    }
    Ok(n)
}

/// The fields as asked for (each once, in the table's order, `all` last).
fn parse_fields(asked: &[String]) -> Result<Vec<String>> {
    let asked: Vec<&str> = asked
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if asked.is_empty() {
        let mut v: Vec<String> = FIELDS.iter().map(|f| f.name.to_string()).collect();
        v.push(ALL.into());
        return Ok(v);
    }
    let mut named = Vec::new();
    for a in &asked {
        if *a != ALL {
            named.push(field(a).with_context(|| format!("--fields {a}"))?.name);
        }
    }
    let mut v: Vec<String> = FIELDS
        .iter()
        .filter(|f| named.contains(&f.name))
        .map(|f| f.name.to_string())
        .collect();
    if asked.contains(&ALL) {
        v.push(ALL.into());
    }
    Ok(v)
}

/// Set one σ of `chip` (a name of [`FIELDS`]).
fn set_sigma(chip: &mut ChipConfig, name: &str, v: f64) {
    let (var, noise) = (&mut chip.variation, &mut chip.noise);
    match name {
        "cell_gain_sigma" => var.cell_gain_sigma = v,
        "cell_offset_sigma_v" => var.cell_offset_sigma_v = v,
        "c2p_gain_sigma" => var.c2p_gain_sigma = v,
        "c2p_threshold_sigma_ua" => var.c2p_threshold_sigma_ua = v,
        "counter_gain_sigma" => var.counter_gain_sigma = v,
        "counter_threshold_sigma_ua" => var.counter_threshold_sigma_ua = v,
        "write_sigma_v" => noise.write_sigma_v = v,
        "score_read_sigma_ua" => noise.score_read_sigma_ua = v,
        "value_read_sigma_ua" => noise.value_read_sigma_ua = v,
        other => unreachable!("{other} is not in FIELDS"),
    }
}

/// `base` with every σ 0 (the ideal chip), then `field` (or every field, for `all`) at `scale` × nominal.
fn point_chip(
    base: &ChipConfig,
    nominal: &[Nominal],
    field: Option<&str>,
    scale: f64,
) -> ChipConfig {
    let mut c = base.clone();
    for n in nominal {
        let on = field.is_some_and(|f| f == ALL || f == n.field);
        set_sigma(&mut c, &n.field, if on { scale * n.sigma } else { 0.0 });
    }
    c
}

/// The first multiple at which the mean loss increase reaches `thr`, going up: interpolated linearly in log σ
/// between it and the multiple below.
fn crossing(points: &[(f64, f64)], thr: f64) -> Option<Crossing> {
    let mut p = points.to_vec();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    let first = *p.first()?;
    if first.1 >= thr {
        return Some(Crossing::AtMost { scale: first.0 });
    }
    for w in p.windows(2) {
        let ((s0, d0), (s1, d1)) = (w[0], w[1]);
        if d1 >= thr {
            let t = (thr - d0) / (d1 - d0);
            let log_s = s0.ln() + t * (s1.ln() - s0.ln());
            return Some(Crossing::Interpolated { scale: log_s.exp() });
        }
    }
    Some(Crossing::NotReached {
        scale: p.last().expect("not empty").0,
    })
}

fn describe(c: &Crossing, sigma_of: &dyn Fn(f64) -> String, thr: f64) -> String {
    match *c {
        Crossing::Interpolated { scale } => format!("{} ({scale:.2} × nominal)", sigma_of(scale)),
        Crossing::AtMost { scale } => {
            format!(
                "≤ {} ({scale} × nominal): already over {thr} % there",
                sigma_of(scale)
            )
        }
        Crossing::NotReached { scale } => {
            format!(
                "not reached: under {thr} % up to {} ({scale} × nominal)",
                sigma_of(scale)
            )
        }
    }
}

fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    if x.len() < 2 {
        return (m, 0.0);
    }
    (
        m,
        (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt(),
    )
}

fn chip_value(chip: &ChipConfig) -> Result<toml::Value> {
    let t: toml::Table = toml::from_str(&chip.to_toml_string()).context("the chip as TOML")?;
    Ok(toml::Value::Table(t))
}

pub fn run(a: VariationStudy) -> Result<()> {
    // Checked here rather than by clap, whose errors take three lines.
    if a.instances == 0 {
        bail!("--instances 0: give at least 1 chip instance (5 or more for a spread)");
    }
    match (&a.plain_model, &a.aware_model) {
        (Some(_), None) => {
            bail!("--plain-model: give --aware-model too (both models, or neither to fine-tune)")
        }
        (None, Some(_)) => {
            bail!("--aware-model: give --plain-model too (both models, or neither to fine-tune)")
        }
        _ => {}
    }
    let scales = parse_scales(&a.scales)?;
    let fields = parse_fields(&a.fields)?;
    if fields.is_empty() {
        bail!("--fields: give at least one σ field, or `{ALL}`");
    }
    if !(a.threshold_pct.is_finite() && a.threshold_pct > 0.0) {
        bail!(
            "--threshold-pct {}: give a positive percentage",
            a.threshold_pct
        );
    }
    let mut inputs: Vec<(&str, &Path)> = vec![("--data", &a.data), ("--model", &a.model)];
    for (flag, p) in [
        ("--plain-model", &a.plain_model),
        ("--aware-model", &a.aware_model),
    ] {
        if let Some(p) = p {
            inputs.push((flag, p));
        }
    }
    if let Some(t) = &a.text {
        inputs.push(("--text", t));
    }
    crate::paths::refuse_overlap("--out", &a.out, &inputs)?;
    let base = ChipConfig::load(&a.chip)?;
    if !base.is_gain_cell() {
        bail!(
            "--chip {}: give a gain-cell chip (its [variation] and [noise] are what the study varies)",
            a.chip
        );
    }
    let nominal = nominals(&base, &a.sigma)?;
    let ideal = point_chip(&base, &nominal, None, 0.0);
    let all_nominal = point_chip(&base, &nominal, Some(ALL), 1.0);
    // Every chip is checked before anything runs.
    ideal.validate()?;
    all_nominal.validate()?;
    let loaded = ModelArgs {
        model: a.model.display().to_string(),
        chip: Some(a.chip.clone()),
        tokenizer: a.tokenizer.clone(),
    }
    .load()?;
    let text =
        super::study_retention::read_text(a.text.as_deref(), &loaded.tokenizer, a.text_tokens)?;
    let positions = loaded.model.config.n_positions();
    let ppl_opts = PplOptions {
        ctx: a.ctx.min(positions),
        stride: (a.ctx.min(positions) / 2).max(1),
    };
    let shards = Shards::open(&a.data)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let chip_seeds: Vec<u64> = (1..=a.instances as u64).collect();
    let n_points = fields.len() * scales.len() * chip_seeds.len() + 1;
    println!(
        "study variation: {} on {}, {} fields × {} multiples × {} chip instances, 2 models ({} evaluations)",
        a.model.display(),
        base.name,
        fields.len(),
        scales.len(),
        chip_seeds.len(),
        2 * n_points
    );

    // The two models: given, the checkpoint as it is, or fine-tuned without and with the nominal noise.
    let specs: [(&str, &ChipConfig, &Option<PathBuf>); 2] = [
        ("plain", &ideal, &a.plain_model),
        ("noise-aware", &all_nominal, &a.aware_model),
    ];
    let mut models: Vec<(String, PathBuf)> = Vec::new();
    for (name, chip, given) in specs {
        let dir = match given {
            Some(d) => d.clone(),
            None if a.finetune_steps == 0 => a.model.clone(),
            None => finetune(&a, name, chip)?,
        };
        models.push((name.to_string(), dir));
    }

    let bar = ProgressBar::new(2 * n_points as u64).with_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} evaluations  {per_sec}  {msg}  ETA {eta}",
        )
        .expect("template"),
    );
    let val =
        |m: &Model| trainer::validation_loss(m, &shards, a.batch, a.ctx, a.eval_batches, a.seed);
    let score = |m: &Model| -> Result<Option<(f64, f64, usize)>> {
        let Some(t) = &text else { return Ok(None) };
        let r = perplexity(m, &t.ids, t.bytes, ppl_opts, &mut |_, _| {})?;
        Ok(Some((
            r.nll / r.tokens_scored as f64,
            r.perplexity,
            r.tokens_scored,
        )))
    };
    let mut results = Vec::new();
    let mut text_tokens_scored = None;
    for (name, dir) in &models {
        let model = checkpoint::load(
            &checkpoint::resolve(&dir.display().to_string())?,
            Some(ideal.clone()),
        )
        .with_context(|| format!("the {name} model"))?;
        bar.set_message(format!("{name}: ideal chip"));
        let ideal_loss = val(&model)?;
        let ideal_text = score(&model)?;
        text_tokens_scored = ideal_text.map(|t| t.2);
        bar.inc(1);
        bar.suspend(|| {
            println!(
                "{name:<12} ideal chip: loss {ideal_loss:.4}{}",
                ideal_text.map_or(String::new(), |t| format!("  text ppl {:.4}", t.1))
            )
        });
        let mut points = Vec::new();
        for f in &fields {
            for &scale in &scales {
                bar.set_message(format!("{name}: {f} × {scale}"));
                let chip = point_chip(&base, &nominal, Some(f), scale);
                let (mut losses, mut t_loss, mut t_ppl) = (Vec::new(), Vec::new(), Vec::new());
                for &seed in &chip_seeds {
                    let mut c = chip.clone();
                    c.variation.seed = seed;
                    c.noise.seed = seed;
                    let m = model.with_chip(c)?;
                    let loss = val(&m)?;
                    if !loss.is_finite() {
                        bail!(
                            "{name} model, {f} at {scale} × nominal, chip seed {seed}: the validation loss is \
                             {loss}; the chip's outputs overflowed"
                        );
                    }
                    losses.push(loss);
                    if let Some((l, p, _)) = score(&m)? {
                        t_loss.push(l);
                        t_ppl.push(p);
                    }
                    bar.inc(1);
                }
                let (m, s) = mean_std(&losses);
                let text_stats = |x: &[f64]| (!x.is_empty()).then(|| mean_std(x));
                let (tl, tp) = (text_stats(&t_loss), text_stats(&t_ppl));
                let p = Point {
                    field: f.clone(),
                    scale,
                    sigma: nominal
                        .iter()
                        .find(|n| &n.field == f)
                        .map(|n| n.sigma * scale),
                    val_losses: losses,
                    val_loss_mean: m,
                    val_loss_std: s,
                    delta_pct: 100.0 * (m - ideal_loss) / ideal_loss,
                    text_loss_mean: tl.map(|v| v.0),
                    text_loss_std: tl.map(|v| v.1),
                    text_perplexity_mean: tp.map(|v| v.0),
                    text_perplexity_std: tp.map(|v| v.1),
                };
                bar.suspend(|| println!("{name:<12} {}", row_line(&p)));
                points.push(p);
            }
        }
        let thresholds = fields
            .iter()
            .filter_map(|f| {
                let grid: Vec<(f64, f64)> = points
                    .iter()
                    .filter(|p| &p.field == f)
                    .map(|p| (p.scale, p.delta_pct))
                    .collect();
                let c = crossing(&grid, a.threshold_pct)?;
                let s = match c {
                    Crossing::Interpolated { scale }
                    | Crossing::AtMost { scale }
                    | Crossing::NotReached { scale } => scale,
                };
                Some(Threshold {
                    field: f.clone(),
                    crossing: c,
                    sigma: nominal.iter().find(|n| &n.field == f).map(|n| n.sigma * s),
                })
            })
            .collect();
        results.push(ModelResult {
            name: name.clone(),
            checkpoint: dir.display().to_string(),
            ideal_val_loss: ideal_loss,
            ideal_text_loss: ideal_text.map(|t| t.0),
            ideal_text_perplexity: ideal_text.map(|t| t.1),
            points,
            thresholds,
        });
    }
    bar.finish_and_clear();
    let mut study = Study {
        model: a.model.display().to_string(),
        chip: a.chip.clone(),
        data: a.data.display().to_string(),
        finetune_steps: if a.plain_model.is_some() {
            0
        } else {
            a.finetune_steps
        },
        lr: a.lr,
        batch: a.batch,
        ctx: a.ctx,
        eval_batches: a.eval_batches,
        seed: a.seed,
        chip_seeds,
        scales,
        threshold_pct: a.threshold_pct,
        nominal,
        text: a.text.as_ref().map(|t| t.display().to_string()),
        text_tokens_scored,
        models: results,
        finds: Vec::new(),
    };
    study.finds = finds(&study);
    for line in &study.finds {
        println!("{line}");
    }
    write_reports(&a.out, &study)?;
    println!(
        "wrote {}: results.md, results.json, variation.png, variation.svg",
        a.out.display()
    );
    Ok(())
}

/// Fine-tune `--model` on `chip` into `out/NAME/finetune`; a finished fine-tune with the same settings (a rerun of
/// the study) is taken as it is, one that differs or stopped early goes through train's resume, which refuses
/// changed settings.
fn finetune(a: &VariationStudy, name: &str, chip: &ChipConfig) -> Result<PathBuf> {
    let steps = a.finetune_steps;
    let settings = super::study::FinetuneSettings {
        data: &a.data,
        steps,
        batch: a.batch,
        ctx: a.ctx,
        seed: a.seed,
        eval_batches: a.eval_batches,
        lr: a.lr,
    };
    let run = super::study::finetune_config(
        &settings,
        chip_value(chip)?,
        &a.model,
        &a.out.join(name).join("finetune"),
    );
    let existing = trainer::latest_checkpoint(&run.train.out);
    let step = existing.as_deref().and_then(trainer::checkpoint_step);
    if step == Some(steps) && trainer::finished_run_changes(&run)?.is_empty() {
        println!(
            "{name}: the finished fine-tune in {} is taken as it is",
            run.train.out.display()
        );
        return Ok(existing.expect("a checkpoint"));
    }
    let bar = ProgressBar::new(steps as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  {msg}  ETA {eta}")
            .expect("template"),
    );
    bar.set_message(format!("fine-tuning {name}"));
    let outcome = trainer::train(&run, existing.is_some(), &mut |e| {
        if let trainer::Event::Step { step, loss, .. } = e {
            bar.set_position(*step as u64);
            bar.set_message(format!("fine-tuning {name}: loss {loss:.4}"));
        }
    })?;
    bar.finish_and_clear();
    println!(
        "{name}: fine-tuned {steps} steps{}, validation loss {:.4} on the training chip",
        if chip.noise.is_off() && chip.variation.is_off() {
            " without noise"
        } else {
            " with the nominal noise"
        },
        outcome.final_val_loss
    );
    Ok(outcome.checkpoint)
}

fn row_line(p: &Point) -> String {
    let text = p.text_perplexity_mean.map_or(String::new(), |t| {
        format!(
            "  text ppl {t:.4} ± {:.4}",
            p.text_perplexity_std.unwrap_or(0.0)
        )
    });
    format!(
        "{:<27} × {:<5} σ {:<10} loss {:.4} ± {:.4}  Δ {:+.2} %{text}",
        p.field,
        p.scale,
        p.sigma.map_or("-".into(), |s| format!("{s:.4}")),
        p.val_loss_mean,
        p.val_loss_std,
        p.delta_pct
    )
}

fn sigma_text(s: &Study, field: &str, scale: f64) -> String {
    match s.nominal.iter().find(|n| n.field == field) {
        Some(n) => format!("σ = {:.4} {}", n.sigma * scale, n.unit),
        None => "every σ".into(),
    }
}

/// The "what it finds" lines, from the numbers.
fn finds(s: &Study) -> Vec<String> {
    let mut out = Vec::new();
    let thr = s.threshold_pct;
    let at = |m: &ModelResult, f: &str, scale: f64| {
        m.points
            .iter()
            .find(|p| p.field == f && p.scale == scale)
            .map(|p| p.delta_pct)
    };
    let [plain, aware] = [&s.models[0], &s.models[1]];
    if let (Some(p), Some(w)) = (at(plain, ALL, 1.0), at(aware, ALL, 1.0)) {
        out.push(format!(
            "Every σ at its nominal value at once: the loss rises {p:+.2} % for the plain model and {w:+.2} % for \
             the noise-aware one (over each model's ideal chip: {:.4} and {:.4})",
            plain.ideal_val_loss, aware.ideal_val_loss
        ));
    }
    // The field that costs most at nominal, for the plain model.
    let worst = plain
        .points
        .iter()
        .filter(|p| p.field != ALL && p.scale == 1.0)
        .max_by(|x, y| x.delta_pct.total_cmp(&y.delta_pct));
    if let Some(p) = worst {
        out.push(format!(
            "The single field that raises the plain model's loss most at nominal σ is {} ({:+.2} %; noise-aware {})",
            p.field,
            p.delta_pct,
            at(aware, &p.field, 1.0).map_or("-".into(), |d| format!("{d:+.2} %"))
        ));
    }
    let key = |c: &Crossing| match *c {
        Crossing::AtMost { scale } => scale * 0.5,
        Crossing::Interpolated { scale } => scale,
        Crossing::NotReached { scale } => scale * 2.0,
    };
    let (mut better, mut worse, mut same) = (0, 0, 0);
    for t in &plain.thresholds {
        let Some(u) = aware.thresholds.iter().find(|u| u.field == t.field) else {
            continue;
        };
        let (kp, ka) = (key(&t.crossing), key(&u.crossing));
        if ka > kp * 1.001 {
            better += 1
        } else if ka < kp / 1.001 {
            worse += 1
        } else {
            same += 1
        }
    }
    out.push(format!(
        "Noise-aware training moves the σ of a +{thr} % loss up for {better}, down for {worse} and not at all for \
         {same} of {} rows (\"not reached\" and \"already over\" counting as beyond the grid's ends)",
        plain.thresholds.len()
    ));
    let spread = |m: &ModelResult| {
        let s: Vec<f64> = m
            .points
            .iter()
            .filter(|p| p.scale == 1.0)
            .map(|p| p.val_loss_std)
            .collect();
        s.iter().copied().fold(0.0f64, f64::max)
    };
    if s.chip_seeds.len() > 1 {
        out.push(format!(
            "Over {} chip instances the largest sample std of the loss at nominal σ is {:.4} (plain) and {:.4} \
             (noise-aware)",
            s.chip_seeds.len(),
            spread(plain),
            spread(aware)
        ));
    }
    out
}

fn write_reports(out: &Path, s: &Study) -> Result<()> {
    let thr = s.threshold_pct;
    let mut md = format!(
        "# Variation and noise: loss against each σ, without and with noise-aware training\n\nCheckpoint `{}` on \
         chip `{}` with its `[variation]` and `[noise]` replaced; \"plain\" fine-tuned {} steps on the ideal chip, \
         \"noise-aware\" {} steps with every σ at its nominal value (a fresh chip instance and fresh noise per \
         micro-batch), lr {}, batch {} × {} tokens, seed {}. Validation loss (nats/token) on {} fixed batches of \
         `{}`, mean ± sample std over {} chip instances (seeds {}, each the chip's variation and noise seed); Δ % \
         is the mean's increase over the same model on the ideal chip (every σ 0).\n\n",
        s.model,
        s.chip,
        s.finetune_steps,
        s.finetune_steps,
        s.lr,
        s.batch,
        s.ctx,
        s.seed,
        s.eval_batches,
        s.data,
        s.chip_seeds.len(),
        s.chip_seeds.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
    );
    md.push_str("## What it finds\n\n");
    for f in &s.finds {
        md.push_str(&format!("- {f}.\n"));
    }
    md.push_str(
        "\n## Nominal σ\n\n| field | section | nominal σ | unit | why |\n|---|---|---|---|---|\n",
    );
    for n in &s.nominal {
        md.push_str(&format!(
            "| `{}` | `[{}]` | {} | {} | {} |\n",
            n.field, n.section, n.sigma, n.unit, n.why
        ));
    }
    md.push_str(&format!(
        "\n## σ at which the loss rises {thr} %\n\nInterpolated in log σ between the two multiples around the \
         crossing.\n\n| field |"
    ));
    for m in &s.models {
        md.push_str(&format!(" {} |", m.name));
    }
    md.push_str(&format!("\n|---|{}\n", "---|".repeat(s.models.len())));
    for t in &s.models[0].thresholds {
        md.push_str(&format!("| {} |", t.field));
        for m in &s.models {
            let c = m
                .thresholds
                .iter()
                .find(|u| u.field == t.field)
                .map(|u| u.crossing);
            md.push_str(&format!(
                " {} |",
                c.map_or("-".into(), |c| describe(
                    &c,
                    &|x| sigma_text(s, &t.field, x),
                    thr
                ))
            ));
        }
        md.push('\n');
    }
    let text_cols = s.text.is_some();
    for m in &s.models {
        md.push_str(&format!(
            "\n## {} model\n\n`{}`. Ideal chip: loss **{:.4}**{}.\n\n| field | × nominal | σ | loss (mean ± std) | \
             Δ % |",
            m.name,
            m.checkpoint,
            m.ideal_val_loss,
            m.ideal_text_perplexity
                .map_or(String::new(), |p| format!(", text perplexity {p:.4}"))
        ));
        if text_cols {
            md.push_str(" text loss | text ppl |");
        }
        md.push_str(" per instance |\n|---|---|---|---|---|");
        if text_cols {
            md.push_str("---|---|");
        }
        md.push_str("---|\n");
        for p in &m.points {
            md.push_str(&format!(
                "| {} | {} | {} | {:.4} ± {:.4} | {:+.2} % |",
                p.field,
                p.scale,
                p.sigma
                    .map_or("all at × nominal".into(), |v| format!("{v:.4}")),
                p.val_loss_mean,
                p.val_loss_std,
                p.delta_pct
            ));
            if text_cols {
                let pm = |m: Option<f64>, sd: Option<f64>| match (m, sd) {
                    (Some(m), Some(sd)) => format!("{m:.4} ± {sd:.4}"),
                    _ => "-".into(),
                };
                md.push_str(&format!(
                    " {} | {} |",
                    pm(p.text_loss_mean, p.text_loss_std),
                    pm(p.text_perplexity_mean, p.text_perplexity_std)
                ));
            }
            md.push_str(&format!(
                " {} |\n",
                p.val_losses
                    .iter()
                    .map(|v| format!("{v:.4}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if let Some(t) = &s.text {
        md.push_str(&format!(
            "\nText: `{t}`, {} tokens scored in windows of {} (stride half).\n",
            s.text_tokens_scored.unwrap_or(0),
            s.ctx
        ));
    }
    crate::paths::write_file(out.join("results.md"), md)?;
    crate::paths::write_file(
        out.join("results.json"),
        serde_json::to_string_pretty(s)? + "\n",
    )?;
    font_ready()?;
    save_sized(out, "variation", (1600, 700), |c| {
        for (panel, m) in c.columns(s.models.len()).into_iter().zip(&s.models) {
            match panel {
                Canvas::Png(a) => draw(a, s, m)?,
                Canvas::Svg(a) => draw(a, s, m)?,
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// Ten distinguishable colours, one per field and `all`.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0, 90, 160),
    RGBColor(200, 80, 0),
    RGBColor(30, 140, 60),
    RGBColor(150, 40, 150),
    RGBColor(180, 30, 40),
    RGBColor(90, 170, 230),
    RGBColor(240, 170, 40),
    RGBColor(110, 80, 40),
    RGBColor(0, 150, 150),
    RGBColor(0, 0, 0),
];

/// One model's panel: loss increase (%) against the multiple of nominal σ (log x), one line per field, with the
/// threshold dashed.
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    s: &Study,
    m: &ModelResult,
) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing a plot: {e}");
    root.fill(&WHITE).map_err(err)?;
    let x0 = s.scales.first().copied().unwrap_or(1.0) / 1.5;
    let x1 = s.scales.last().copied().unwrap_or(1.0) * 1.5;
    // Both panels share the y range, so they compare at a glance.
    let ys = s
        .models
        .iter()
        .flat_map(|m| m.points.iter().map(|p| p.delta_pct))
        .chain([0.0, s.threshold_pct]);
    let (y0, y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    let pad = ((y1 - y0) * 0.08).max(0.05);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{} model: loss increase over the ideal chip", m.name),
            (FAMILY, 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d((x0..x1).log_scale(), (y0 - pad)..(y1 + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(format!(
            "σ as a multiple of nominal ({} chip instances)",
            s.chip_seeds.len()
        ))
        .y_desc("validation loss increase (%)")
        .x_label_formatter(&|x| format!("{x}"))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    let mut names: Vec<&str> = Vec::new();
    for p in &m.points {
        if !names.contains(&p.field.as_str()) {
            names.push(&p.field);
        }
    }
    for (i, name) in names.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let width = if *name == ALL { 3 } else { 2 };
        let pts: Vec<(f64, f64)> = m
            .points
            .iter()
            .filter(|p| p.field == *name)
            .map(|p| (p.scale, p.delta_pct))
            .collect();
        chart
            .draw_series(LineSeries::new(
                pts.iter().copied(),
                colour.stroke_width(width),
            ))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(width))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(err)?;
    }
    let red = RGBColor(180, 30, 40);
    chart
        .draw_series(DashedLineSeries::new(
            [(x0, s.threshold_pct), (x1, s.threshold_pct)],
            10,
            6,
            red.stroke_width(1),
        ))
        .map_err(err)?
        .label(format!("+{} %", s.threshold_pct))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], red.stroke_width(1)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FAMILY, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crossing_is_interpolated_in_log_sigma() {
        // 0.5 % at ×1, 2 % at ×4: 1 % is a third of the way in log σ, at 4^(1/3).
        let c = crossing(&[(4.0, 2.0), (1.0, 0.5)], 1.0).unwrap();
        let Crossing::Interpolated { scale } = c else {
            panic!("{c:?}")
        };
        assert!((scale - 4f64.powf(1.0 / 3.0)).abs() < 1e-12, "{scale}");
        assert_eq!(
            crossing(&[(1.0, 3.0), (2.0, 5.0)], 1.0),
            Some(Crossing::AtMost { scale: 1.0 })
        );
        assert_eq!(
            crossing(&[(1.0, 0.1), (2.0, 0.5)], 1.0),
            Some(Crossing::NotReached { scale: 2.0 })
        );
        // The first crossing going up counts, even if a larger σ dips back under.
        let c = crossing(&[(1.0, 0.0), (2.0, 2.0), (4.0, 0.5)], 1.0).unwrap();
        assert!(
            matches!(c, Crossing::Interpolated { scale } if (scale - 2f64.sqrt()).abs() < 1e-12)
        );
        assert_eq!(crossing(&[], 1.0), None);
    }

    #[test]
    fn fields_scales_and_overrides_parse_and_refuse_bad_input() {
        assert_eq!(parse_scales("2, 0.5,1").unwrap(), vec![0.5, 1.0, 2.0]);
        for bad in ["", "0", "-1", "x", "1,1", "nan", "inf"] {
            assert!(parse_scales(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_fields(&[]).unwrap().len(), 10);
        assert_eq!(
            parse_fields(&[
                "all".into(),
                "noise.write_sigma_v".into(),
                "cell_gain_sigma".into()
            ])
            .unwrap(),
            vec!["cell_gain_sigma", "write_sigma_v", "all"]
        );
        let e = parse_fields(&["bogus".into()]).unwrap_err();
        assert!(
            format!("{e:#}").contains("`bogus` is not a σ field"),
            "{e:#}"
        );
        let chip = ChipConfig::load("paper-nonlinear").unwrap();
        let n = nominals(&chip, &["write_sigma_v=0.02".into()]).unwrap();
        assert_eq!(
            n.iter().find(|n| n.field == "write_sigma_v").unwrap().sigma,
            0.02
        );
        assert_eq!(
            n.iter()
                .find(|n| n.field == "c2p_threshold_sigma_ua")
                .unwrap()
                .sigma,
            0.02 * 80.0
        );
        for bad in [
            "write_sigma_v=-1",
            "write_sigma_v",
            "bogus=1",
            "write_sigma_v=0",
            "write_sigma_v=nan",
        ] {
            assert!(nominals(&chip, &[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_point_chip_turns_on_only_its_field() {
        let base = ChipConfig::load("paper-nonlinear").unwrap();
        let n = nominals(&base, &[]).unwrap();
        let c = point_chip(&base, &n, Some("write_sigma_v"), 2.0);
        assert_eq!(c.noise.write_sigma_v, 0.02);
        assert!(c.variation.is_off());
        let all = point_chip(&base, &n, Some(ALL), 1.0);
        assert!(all
            .variation
            .sigmas()
            .iter()
            .chain(all.noise.sigmas().iter())
            .all(|(_, s)| *s > 0.0));
        let ideal = point_chip(&all, &n, None, 1.0);
        assert!(ideal.variation.is_off() && ideal.noise.is_off());
    }
}
