//! `gaincell study retention`: what retention time does a gain cell need? A checkpoint's validation loss on the
//! same held-out batches for each retention time (λ = token period / retention, ∞ = leakage off), optionally its
//! perplexity on a text, beside the cost model's energy and latency per token; the shortest retention whose loss
//! increase over no leakage stays under a threshold (1 %), interpolated in log retention. `--refresh-every` adds
//! rows with `refresh.every_tokens` set in the chip overlay.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use gaincell_chip::ChipConfig;
use gaincell_model::{perplexity, text_stream, Model, PplOptions};
use gaincell_train::data::Shards;
use gaincell_train::trainer;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use serde::Serialize;

use crate::model_args::ModelArgs;
use crate::plot::{font_ready, save, Canvas, COLOURS, FAMILY};

#[derive(Args)]
pub struct RetentionStudy {
    /// Checkpoint to run (any `eval ppl --model`), e.g. models/stories260k/nonlinear.
    #[arg(long)]
    model: String,
    /// The chip whose `[leakage]` is replaced at each point, e.g. configs/chips/stories260k-nonlinear.toml.
    #[arg(long)]
    chip: String,
    /// Token shards (`gaincell data prepare` / `data generate`): the validation batches.
    #[arg(long)]
    data: PathBuf,
    /// Retention times in ms, comma-separated; `inf` is leakage off (always run: the reference).
    #[arg(long, default_value = "0.1,0.3,1,3,10,30,100,inf")]
    retention_ms: String,
    /// Time between two tokens reaching a layer (default: the chip's leakage.token_period_s, else the cost
    /// model's layers × layer latency).
    #[arg(long)]
    token_period_s: Option<f64>,
    /// Also run each finite retention with `refresh.every_tokens` = N (comma-separated; each below the chip's
    /// window).
    #[arg(long)]
    refresh_every: Option<String>,
    /// A UTF-8 text whose perplexity each point also reports (as `eval ppl` scores it).
    #[arg(long)]
    text: Option<PathBuf>,
    /// Tokenizer for --text (default: as `eval ppl` finds it).
    #[arg(long)]
    tokenizer: Option<String>,
    /// Score only the first N tokens of --text.
    #[arg(long)]
    text_tokens: Option<usize>,
    /// Loss increase (percent of the no-leakage loss) the answer stays under.
    #[arg(long, default_value_t = 1.0)]
    threshold_pct: f64,
    #[arg(long, default_value_t = 16, value_parser = crate::arg_checks::at_least_one)]
    batch: usize,
    /// Tokens per validation row, and per --text window (stride half of it).
    #[arg(long, default_value_t = 256, value_parser = crate::arg_checks::at_least_one)]
    ctx: usize,
    /// Validation batches (the same ones for every point).
    #[arg(long, default_value_t = 16, value_parser = crate::arg_checks::at_least_one)]
    eval_batches: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder: results.md, results.json, retention.png/svg.
    #[arg(long)]
    out: PathBuf,
}

/// One point of the study: a retention (None: leakage off) and an optional refresh interval.
#[derive(Serialize)]
struct PointResult {
    /// None: no leakage (∞).
    retention_ms: Option<f64>,
    refresh_every_tokens: Option<usize>,
    lambda_per_token: f64,
    /// Fraction of the stored deviation the oldest column (window − 1 tokens) keeps.
    oldest_decay: f64,
    val_loss: f64,
    delta_loss: f64,
    delta_pct: f64,
    text_loss: Option<f64>,
    text_perplexity: Option<f64>,
    /// Whole model (all layers), per token, from the cost model.
    energy_per_token_pj: f64,
    latency_per_token_ns: f64,
    /// Refresh energy per token (the whole model), with refresh on.
    refresh_energy_per_token_pj: Option<f64>,
}

/// The shortest retention under the threshold, as found on the grid.
#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Needed {
    /// Interpolated in log retention between the two grid points around the crossing.
    Interpolated { retention_ms: f64 },
    /// Every grid point is under the threshold: at most the shortest one.
    AtMost { retention_ms: f64 },
    /// The longest finite grid point is still over it: more than that.
    MoreThan { retention_ms: f64 },
}

#[derive(Serialize)]
struct Study {
    model: String,
    chip: String,
    data: String,
    token_period_s: f64,
    token_period_source: String,
    window: usize,
    /// Validation loss on the chip as given (its own leakage).
    chip_val_loss: f64,
    batch: usize,
    ctx: usize,
    eval_batches: usize,
    seed: u64,
    text: Option<String>,
    text_tokens_scored: Option<usize>,
    threshold_pct: f64,
    needed: Option<Needed>,
    /// The same answer for each `--refresh-every` interval (empty without refresh).
    needed_with_refresh: Vec<RefreshNeeded>,
    points: Vec<PointResult>,
}

#[derive(Serialize)]
struct RefreshNeeded {
    every_tokens: usize,
    needed: Needed,
}

/// Retention times in ms (None = ∞), as given; one-line errors for anything not a positive time.
fn parse_retentions(spec: &str) -> Result<Vec<Option<f64>>> {
    let items: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() {
        bail!("--retention-ms: give at least one retention in ms, e.g. 0.1,1,10,inf");
    }
    let mut out: Vec<Option<f64>> = Vec::new();
    for s in items {
        let r = match s {
            "inf" | "∞" => None,
            _ => match s.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Some(v),
                _ => bail!("--retention-ms {s}: a retention is a positive number of ms, or inf"),
            },
        };
        if out.contains(&r) {
            bail!("--retention-ms {s}: given twice");
        }
        out.push(r);
    }
    Ok(out)
}

fn parse_refresh(spec: &str) -> Result<Vec<usize>> {
    let items: Vec<&str> = spec.split(',').map(str::trim).collect();
    items
        .iter()
        .map(|s| match s.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => bail!("--refresh-every {s}: give whole numbers of tokens ≥ 1, e.g. 64,128"),
        })
        .collect()
}

/// `base` with its `[leakage]` set for `retention_ms` (None: off) and, if given, `refresh.every_tokens`.
fn point_chip(
    base: &ChipConfig,
    retention_ms: Option<f64>,
    period_s: f64,
    refresh: Option<usize>,
) -> Result<ChipConfig> {
    let mut table: toml::Table =
        toml::from_str(&base.to_toml_string()).context("the base chip as TOML")?;
    let leakage = match retention_ms {
        Some(r) => format!(
            "enabled = true\nretention_s = {:e}\ntoken_period_s = {period_s:e}",
            r * 1e-3
        ),
        None => "enabled = false\nlambda_per_token = 0.0".into(),
    };
    let leakage: toml::Table = toml::from_str(&leakage).context("the [leakage] overlay")?;
    table.insert("leakage".into(), toml::Value::Table(leakage));
    let label = retention_ms.map_or("inf".into(), |r| format!("{r}ms"));
    let mut name = format!("{}-retention-{label}", base.name);
    if let Some(n) = refresh {
        let r: toml::Table = toml::from_str(&format!("every_tokens = {n}"))?;
        table.insert("refresh".into(), toml::Value::Table(r));
        name.push_str(&format!("-refresh-{n}"));
    }
    table.insert("name".into(), toml::Value::String(name.clone()));
    let text = toml::to_string(&table).context("chip TOML")?;
    ChipConfig::from_toml_str(&text, &name).map_err(|e| match refresh {
        Some(n) => anyhow::Error::new(e).context(format!("--refresh-every {n}")),
        None => e.into(),
    })
}

/// The shortest retention whose Δ% stays under `thr`: scanning down from the longest retention, the first grid
/// point at or over `thr` and its longer neighbour bracket the crossing, interpolated linearly in log retention.
fn needed(points: &[(f64, f64)], thr: f64) -> Option<Needed> {
    let mut p: Vec<(f64, f64)> = points.to_vec();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    let last = *p.last()?;
    if last.1 >= thr {
        return Some(Needed::MoreThan {
            retention_ms: last.0,
        });
    }
    for i in (0..p.len() - 1).rev() {
        let ((r0, d0), (r1, d1)) = (p[i], p[i + 1]);
        if d0 >= thr {
            let t = (d0 - thr) / (d0 - d1);
            let log_r = r0.ln() + t * (r1.ln() - r0.ln());
            return Some(Needed::Interpolated {
                retention_ms: log_r.exp(),
            });
        }
    }
    Some(Needed::AtMost {
        retention_ms: p[0].0,
    })
}

fn describe(n: &Needed, thr: f64) -> String {
    match n {
        Needed::Interpolated { retention_ms } => {
            format!("{} (interpolated)", ms(*retention_ms))
        }
        Needed::AtMost { retention_ms } => {
            format!(
                "≤ {}: every retention studied is under {thr} %",
                ms(*retention_ms)
            )
        }
        Needed::MoreThan { retention_ms } => {
            format!("> {}: even the longest is over {thr} %", ms(*retention_ms))
        }
    }
}

fn ms(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.3} ms")
    } else {
        format!("{:.1} µs", v * 1e3)
    }
}

fn label(r: Option<f64>) -> String {
    r.map_or("∞ (off)".into(), |r| format!("{r} ms"))
}

pub fn run(a: RetentionStudy) -> Result<()> {
    let mut retentions = parse_retentions(&a.retention_ms)?;
    if !retentions.contains(&None) {
        retentions.push(None);
    }
    let refresh = a.refresh_every.as_deref().map(parse_refresh).transpose()?;
    if let Some(p) = a.token_period_s {
        if !p.is_finite() || p <= 0.0 {
            bail!("--token-period-s {p:e}: give a positive number of seconds");
        }
    }
    if !(a.threshold_pct.is_finite() && a.threshold_pct > 0.0) {
        bail!(
            "--threshold-pct {}: give a positive percentage",
            a.threshold_pct
        );
    }
    let mut inputs: Vec<(&str, &std::path::Path)> = vec![("--data", &a.data)];
    if let Some(t) = &a.text {
        inputs.push(("--text", t));
    }
    let model_path = std::path::Path::new(&a.model);
    if model_path.exists() {
        inputs.push(("--model", model_path));
    }
    crate::paths::refuse_overlap("--out", &a.out, &inputs)?;
    let base = ChipConfig::load(&a.chip)?;
    if !base.is_gain_cell() {
        bail!(
            "--chip {}: give a gain-cell chip (its [leakage] is what the study varies)",
            a.chip
        );
    }
    let loaded = ModelArgs {
        model: a.model.clone(),
        chip: Some(a.chip.clone()),
        tokenizer: a.tokenizer.clone(),
    }
    .load()?;
    let shape = super::cost::model_shape(&loaded.model.config, &a.model);
    let cost = gaincell_cost::evaluate(&base, &shape, &[])?;
    let (period, source) = match (a.token_period_s, base.leakage.token_period_s) {
        (Some(p), _) => (p, "--token-period-s".to_string()),
        (None, Some(p)) => (p, "the chip's leakage.token_period_s".to_string()),
        (None, None) => (
            cost.retention.token_period_s,
            format!("cost model: {}", cost.retention.token_period_source),
        ),
    };
    // Every chip is built (and so checked) before anything runs.
    let mut specs: Vec<(Option<f64>, Option<usize>)> =
        retentions.iter().map(|&r| (r, None)).collect();
    for &n in refresh.iter().flatten() {
        specs.extend(retentions.iter().flatten().map(|&r| (Some(r), Some(n))));
    }
    let chips: Vec<ChipConfig> = specs
        .iter()
        .map(|&(r, n)| point_chip(&base, r, period, n))
        .collect::<Result<_>>()?;
    let text = read_text(a.text.as_deref(), &loaded.tokenizer, a.text_tokens)?;
    let ppl_opts = PplOptions {
        ctx: a.ctx.min(loaded.model.config.n_positions()),
        stride: (a.ctx.min(loaded.model.config.n_positions()) / 2).max(1),
    };
    let shards = Shards::open(&a.data)?;
    let val =
        |m: &Model| trainer::validation_loss(m, &shards, a.batch, a.ctx, a.eval_batches, a.seed);
    let score = |m: &Model| -> Result<Option<(f64, f64, usize)>> {
        let Some(t) = &text else { return Ok(None) };
        let r = perplexity(m, &t.ids, t.bytes, ppl_opts, &mut |_, _| {})?;
        let loss = r.nll / r.tokens_scored as f64;
        Ok(Some((loss, r.perplexity, r.tokens_scored)))
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let chip_val_loss = val(&loaded.model)?;
    println!(
        "study retention: {} on {} (window {}), {} points; token period {:.4e} s ({source})",
        a.model,
        base.name,
        base.geometry.window,
        chips.len(),
        period
    );
    println!(
        "the chip as given (λ = {:.3e} per token): validation loss {chip_val_loss:.4}",
        base.lambda()
    );
    let bar = ProgressBar::new(chips.len() as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} points  {msg}  ETA {eta}")
            .expect("template"),
    );
    let mut raw = Vec::new();
    for (&(r, n), chip) in specs.iter().zip(&chips) {
        bar.set_message(label(r));
        let model = loaded.model.with_chip(chip.clone())?;
        let loss = val(&model)?;
        let t = score(&model)?;
        bar.inc(1);
        // The point's own cost: a refreshing chip pays its rewrites (energy and time per token).
        let c = gaincell_cost::evaluate(chip, &shape, &[])?;
        let refresh_share = c.energy.refresh_pj / c.energy.total_pj;
        let costs = (
            c.energy_pj.per_model,
            c.model_latency_ns,
            n.map(|_| c.energy_pj.per_model * refresh_share),
        );
        raw.push((r, n, chip.lambda(), loss, t, costs));
    }
    bar.finish_and_clear();
    let reference = raw
        .iter()
        .find(|p| p.0.is_none())
        .map(|p| p.3)
        .expect("∞ is always run");
    let window = base.geometry.window;
    let mut points: Vec<PointResult> = raw
        .iter()
        .map(
            |&(r, n, lambda, loss, t, (energy, latency, refresh))| PointResult {
                retention_ms: r,
                refresh_every_tokens: n,
                lambda_per_token: lambda,
                oldest_decay: (-lambda * (window - 1) as f64).exp(),
                val_loss: loss,
                delta_loss: loss - reference,
                delta_pct: 100.0 * (loss - reference) / reference,
                text_loss: t.map(|t| t.0),
                text_perplexity: t.map(|t| t.1),
                energy_per_token_pj: energy,
                latency_per_token_ns: latency,
                refresh_energy_per_token_pj: refresh,
            },
        )
        .collect();
    // Table order: no refresh first, each group by retention, ∞ last.
    points.sort_by(|x, y| {
        let key = |p: &PointResult| {
            (
                p.refresh_every_tokens,
                p.retention_ms.unwrap_or(f64::INFINITY),
            )
        };
        let (a, b) = (key(x), key(y));
        a.0.cmp(&b.0).then(a.1.total_cmp(&b.1))
    });
    for p in &points {
        println!("{}", row_line(p));
    }
    let grid: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.refresh_every_tokens.is_none())
        .filter_map(|p| p.retention_ms.map(|r| (r, p.delta_pct)))
        .collect();
    let need = needed(&grid, a.threshold_pct);
    let needed_with_refresh: Vec<RefreshNeeded> = refresh
        .iter()
        .flatten()
        .filter_map(|&n| {
            let g: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.refresh_every_tokens == Some(n))
                .filter_map(|p| p.retention_ms.map(|r| (r, p.delta_pct)))
                .collect();
            needed(&g, a.threshold_pct).map(|needed| RefreshNeeded {
                every_tokens: n,
                needed,
            })
        })
        .collect();
    for r in &needed_with_refresh {
        println!(
            "  with refresh every {} tokens: {}",
            r.every_tokens,
            describe(&r.needed, a.threshold_pct)
        );
    }
    match &need {
        Some(n) => println!(
            "shortest retention with loss increase < {} %: {}",
            a.threshold_pct,
            describe(n, a.threshold_pct)
        ),
        None => println!("no finite retention studied: no threshold to find"),
    }
    let study = Study {
        model: a.model.clone(),
        chip: a.chip.clone(),
        data: a.data.display().to_string(),
        token_period_s: period,
        token_period_source: source,
        window,
        chip_val_loss,
        batch: a.batch,
        ctx: a.ctx,
        eval_batches: a.eval_batches,
        seed: a.seed,
        text: a.text.as_ref().map(|t| t.display().to_string()),
        text_tokens_scored: raw.first().and_then(|p| p.4.map(|t| t.2)),
        threshold_pct: a.threshold_pct,
        needed: need,
        needed_with_refresh,
        points,
    };
    write_reports(&a.out, &study, reference)?;
    println!(
        "wrote {}: results.md, results.json, retention.png, retention.svg",
        a.out.display()
    );
    Ok(())
}

fn row_line(p: &PointResult) -> String {
    let refresh = p
        .refresh_every_tokens
        .map_or(String::new(), |n| format!(" refresh/{n}"));
    let text = p
        .text_perplexity
        .map_or(String::new(), |t| format!("  text ppl {t:.4}"));
    format!(
        "{:<10}{refresh}  λ {:.3e}/token  loss {:.4}  Δ {:+.4} ({:+.2} %){text}",
        label(p.retention_ms),
        p.lambda_per_token,
        p.val_loss,
        p.delta_loss,
        p.delta_pct
    )
}

fn write_reports(out: &std::path::Path, s: &Study, reference: f64) -> Result<()> {
    let mut md = format!(
        "# Retention: loss against the cells' retention time\n\nCheckpoint `{}`, chip `{}` (window {}) with its \
         `[leakage]` replaced; token period {:.4e} s ({}); λ = token period / retention. Validation loss \
         (nats/token) on {} fixed batches of {} × {} tokens of `{}`; Δ against no leakage ({:.4}). The chip as \
         given: {:.4}.\n\n",
        s.model,
        s.chip,
        s.window,
        s.token_period_s,
        s.token_period_source,
        s.eval_batches,
        s.batch,
        s.ctx,
        s.data,
        reference,
        s.chip_val_loss,
    );
    if let Some(n) = &s.needed {
        md.push_str(&format!(
            "**Shortest retention with a loss increase under {} %: {}.**\n\n",
            s.threshold_pct,
            describe(n, s.threshold_pct)
        ));
    }
    for r in &s.needed_with_refresh {
        md.push_str(&format!(
            "With refresh every {} tokens: {}.\n\n",
            r.every_tokens,
            describe(&r.needed, s.threshold_pct)
        ));
    }
    let text_cols = s.text.is_some();
    md.push_str("| retention | refresh | λ per token | oldest keeps | loss | Δloss | Δ % |");
    if text_cols {
        md.push_str(" text loss | text ppl |");
    }
    md.push_str(
        " energy/token | latency/token | refresh energy/token |\n|---|---|---|---|---|---|---|",
    );
    if text_cols {
        md.push_str("---|---|");
    }
    md.push_str("---|---|---|\n");
    for p in &s.points {
        md.push_str(&format!(
            "| {} | {} | {:.3e} | {:.1} % | {:.4} | {:+.4} | {:+.2} % |",
            label(p.retention_ms),
            p.refresh_every_tokens
                .map_or("-".into(), |n| format!("every {n}")),
            p.lambda_per_token,
            100.0 * p.oldest_decay,
            p.val_loss,
            p.delta_loss,
            p.delta_pct
        ));
        if text_cols {
            md.push_str(&format!(
                " {} | {} |",
                p.text_loss.map_or("-".into(), |v| format!("{v:.4}")),
                p.text_perplexity.map_or("-".into(), |v| format!("{v:.4}"))
            ));
        }
        md.push_str(&format!(
            " {:.3} nJ | {:.1} ns | {} |\n",
            p.energy_per_token_pj * 1e-3,
            p.latency_per_token_ns,
            p.refresh_energy_per_token_pj
                .map_or("—".into(), |v| format!("{v:.3} pJ"))
        ));
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
    save(out, "retention", |c| match c {
        Canvas::Png(a) => draw(a, s, reference),
        Canvas::Svg(a) => draw(a, s, reference),
    })?;
    Ok(())
}

/// Loss against retention (log x), one series per refresh setting, with the no-leakage loss and the threshold.
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    s: &Study,
    reference: f64,
) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing a plot: {e}");
    root.fill(&WHITE).map_err(err)?;
    let mut groups: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for p in &s.points {
        let Some(r) = p.retention_ms else { continue };
        let name = p
            .refresh_every_tokens
            .map_or("leakage, no refresh".into(), |n| {
                format!("refresh every {n} tokens")
            });
        match groups.iter_mut().find(|g| g.0 == name) {
            Some(g) => g.1.push((r, p.val_loss)),
            None => groups.push((name, vec![(r, p.val_loss)])),
        }
    }
    let limit = reference * (1.0 + s.threshold_pct / 100.0);
    let xs = groups.iter().flat_map(|g| g.1.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::INFINITY, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
    let (x0, x1) = if x0.is_finite() {
        (x0 / 2.0, x1 * 2.0)
    } else {
        (0.1, 100.0)
    };
    let ys = groups.iter().flat_map(|g| g.1.iter().map(|p| p.1));
    let (y0, y1) = ys
        .chain([reference, limit])
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
    let pad = ((y1 - y0) * 0.08).max(1e-3);
    let mut chart = ChartBuilder::on(&root)
        .caption("Validation loss against retention time", (FAMILY, 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d((x0..x1).log_scale(), (y0 - pad)..(y1 + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(format!(
            "retention time (ms), token period {:.3e} s",
            s.token_period_s
        ))
        .y_desc("validation loss (nats/token)")
        .x_label_formatter(&|x| format!("{x}"))
        .y_label_formatter(&|y| format!("{y:.3}"))
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    for (i, (name, pts)) in groups.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, colour.filled())))
            .map_err(err)?;
    }
    let refs = [
        (
            format!("no leakage: {reference:.4}"),
            reference,
            RGBColor(0, 0, 0),
        ),
        (
            format!("+{} %: {limit:.4}", s.threshold_pct),
            limit,
            RGBColor(180, 30, 40),
        ),
    ];
    for (name, y, colour) in refs {
        chart
            .draw_series(DashedLineSeries::new(
                [(x0, y), (x1, y)],
                10,
                6,
                colour.stroke_width(2),
            ))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
            });
    }
    if let Some(Needed::Interpolated { retention_ms }) = s.needed {
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(DashedLineSeries::new(
                [(retention_ms, y0 - pad), (retention_ms, y1 + pad)],
                6,
                4,
                grey.stroke_width(1),
            ))
            .map_err(err)?
            .label(format!("needed: {}", ms(retention_ms)))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], grey.stroke_width(1))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// A study's `--text`: its first `max_tokens` tokens (all without), at least 2 so that there is a perplexity.
pub(super) fn read_text(
    path: Option<&std::path::Path>,
    tokenizer: &gaincell_model::Tokenizer,
    max_tokens: Option<usize>,
) -> Result<Option<text_stream::StreamedText>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let t = text_stream::tokenize_stream(
        tokenizer,
        file,
        text_stream::BLOCK_BYTES,
        max_tokens,
        &mut |_| {},
    )
    .with_context(|| format!("reading {}", path.display()))?;
    if t.ids.len() < 2 {
        bail!(
            "--text {}: under 2 tokens, perplexity needs more",
            path.display()
        );
    }
    Ok(Some(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crossing_is_interpolated_in_log_retention() {
        // 2 % at 1 ms, 0.5 % at 100 ms: 1 % is two thirds of the way, at 10^(4/3) ms.
        let n = needed(&[(100.0, 0.5), (1.0, 2.0)], 1.0).unwrap();
        let Needed::Interpolated { retention_ms } = n else {
            panic!("{n:?}")
        };
        assert!((retention_ms - 10f64.powf(4.0 / 3.0)).abs() < 1e-9);
        assert_eq!(
            needed(&[(1.0, 0.2), (10.0, 0.1)], 1.0),
            Some(Needed::AtMost { retention_ms: 1.0 })
        );
        assert_eq!(
            needed(&[(1.0, 5.0), (10.0, 3.0)], 1.0),
            Some(Needed::MoreThan { retention_ms: 10.0 })
        );
        assert_eq!(needed(&[], 1.0), None);
    }

    #[test]
    fn retention_lists_parse_and_refuse_bad_times() {
        assert_eq!(
            parse_retentions("0.1, 1,inf").unwrap(),
            vec![Some(0.1), Some(1.0), None]
        );
        for bad in ["", "0", "-1", "x", "1,1", "nan"] {
            assert!(parse_retentions(bad).is_err(), "{bad}");
        }
    }
}
