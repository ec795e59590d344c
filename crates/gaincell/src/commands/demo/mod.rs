//! `gaincell demo`: the whole story in a few minutes, offline, on the shipped model family (llama2.c's pre-trained
//! stories260K and its mapped linear-chip and nonlinear-chip variants; or the small GPT of models/demo). It measures how closely
//! each chip model follows the software model on a text, runs the adaptation live, generates text token by token
//! on the simulated arrays, costs the chip beside GPUs, and writes a report folder (markdown, JSON, plots).

mod family;
mod plots;
mod report;

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use gaincell_chip::ChipConfig;
use gaincell_cost::{evaluate, published_baselines, ModelShape};
use gaincell_eval::agreement::{agreement, next_token_log_probs, sample_stream};
use gaincell_model::{Decoder, Model, Sampler};
use gaincell_train::adapt::{adapt, measure_batch, AdaptOptions};
use indicatif::{ProgressBar, ProgressStyle};

use report::{AdaptationReport, DemoResults, Generation, Timings, VariantQuality};

#[derive(Args)]
pub struct DemoArgs {
    /// A model family folder: software/, linear/, nonlinear/ checkpoints, each with its tokenizer (default: the
    /// shipped models/stories260k; the small GPT trained by this project is models/demo).
    #[arg(long, conflicts_with = "model")]
    models: Option<PathBuf>,
    /// Instead of a family, one model (a folder, or a Hub name such as `gpt2` when online): it runs as the software
    /// model, is put on the linear chip as it is, and is adapted live onto the nonlinear chip.
    #[arg(long)]
    model: Option<String>,
    /// With --model: `gpt2` or a tokenizer.json (default: the model folder's, else GPT-2's).
    #[arg(long, requires = "model")]
    tokenizer: Option<String>,
    /// With --model: the linear chip (preset or TOML file).
    #[arg(long, default_value = "paper-linear")]
    linear_chip: String,
    /// With --model: the nonlinear chip (preset or TOML file).
    #[arg(long, default_value = "paper-nonlinear")]
    nonlinear_chip: String,
    /// A UTF-8 text to evaluate on (default: documents sampled from the software model with --seed).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Tokens of text to evaluate on.
    #[arg(long, default_value_t = 4096)]
    tokens: usize,
    /// Tokens per evaluation window and per sampled document (default: the model's positions, at most the chips'
    /// window: the span the chip models are fine-tuned on, so no scored token lies beyond what they learned).
    #[arg(long)]
    ctx: Option<usize>,
    /// Sequences in the adaptation's fixed batch (sampled from the software model).
    #[arg(long, default_value_t = 8)]
    adapt_batch: usize,
    /// Adaptation iterations at most (the paper's 100; docs/mapping.md#adaptation).
    #[arg(long, default_value_t = 100)]
    max_iterations: usize,
    /// The text each variant continues.
    #[arg(long, default_value = "It was a cold winter evening, and the old man")]
    prompt: String,
    /// Tokens each variant generates.
    #[arg(long, default_value_t = 40)]
    generate: usize,
    /// Sampling temperature of the generations (0: greedy, the same story on every run and, for stories260K,
    /// the one llama2.c's `run` prints).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Sample among the k most likely tokens (with a temperature above 0).
    #[arg(long)]
    top_k: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The report folder.
    #[arg(long, default_value = "gaincell-report")]
    out: PathBuf,
}

/// Most tokens per row of the adaptation batch.
const ADAPT_CTX: usize = 256;

/// Seed offset of the adaptation batch's documents, so they are never evaluation documents.
const ADAPT_SEED_OFFSET: u64 = 1 << 32;

fn bar(len: usize, what: &str) -> ProgressBar {
    ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template(&format!(
            "  {{bar:30}} {{pos}}/{{len}} {what}  {{per_sec}}  ETA {{eta}}"
        ))
        .expect("valid template"),
    )
}

pub fn run(a: DemoArgs) -> Result<()> {
    let started = Instant::now();
    let mut timings = Timings::default();
    let fam = match (&a.model, &a.models) {
        (Some(spec), _) => {
            family::load_single(spec, a.tokenizer.clone(), &a.linear_chip, &a.nonlinear_chip)?
        }
        (None, dir) => family::load_family(&dir.clone().unwrap_or_else(family::shipped_dir))?,
    };
    let ctx = a.ctx.unwrap_or_else(|| {
        let window = fam
            .linear
            .chip
            .geometry
            .window
            .min(fam.nonlinear_chip.geometry.window);
        fam.software.config.n_positions().min(window.max(2))
    });
    if ctx < 2 || ctx > fam.software.config.n_positions() {
        bail!(
            "--ctx {ctx}: give 2 to {} (the model's positions)",
            fam.software.config.n_positions()
        );
    }
    if a.adapt_batch == 0 {
        bail!("--adapt-batch 0: the adaptation needs at least one sequence");
    }
    let c = &fam.software.config;
    println!(
        "gaincell demo · models {} · {} layers × {} heads × {} dims, {} positions, {} tokens of vocabulary, {:.1} M \
         parameters · {} threads",
        fam.source,
        c.n_layer(),
        c.n_head(),
        c.head_dim(),
        c.n_positions(),
        c.vocab_size(),
        c.parameters() as f64 / 1e6,
        rayon::current_num_threads()
    );
    println!(
        "  linear chip:    {}",
        super::chip::summary(&fam.linear.chip)
    );
    println!(
        "  nonlinear chip: {}",
        super::chip::summary(&fam.nonlinear_chip)
    );

    // ── The text.
    let t = Instant::now();
    let start = fam.tokenizer.eot().unwrap_or(0);
    let (stream, stream_source) = match &a.data {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --data {} as UTF-8 text", path.display()))?;
            let mut ids = fam.tokenizer.encode(&text)?;
            if ids.len() < 2 {
                bail!(
                    "--data {}: {} token(s); give a text of at least 2 tokens",
                    path.display(),
                    ids.len()
                );
            }
            ids.truncate(a.tokens);
            let n = ids.len();
            (ids, format!("the first {n} tokens of {}", path.display()))
        }
        None => {
            let docs = a.tokens.div_ceil(ctx).max(1);
            println!(
                "\n── The text: {docs} documents of {ctx} tokens sampled from the software model (seed {}, \
                 temperature 1)",
                a.seed
            );
            let b = bar(docs, "documents");
            let mut ids = Vec::new();
            for d in 0..docs {
                ids.extend(sample_stream(
                    &fam.software,
                    start,
                    1,
                    ctx,
                    a.seed + d as u64,
                )?);
                b.inc(1);
            }
            b.finish_and_clear();
            (
                ids,
                format!(
                    "{docs} documents of {ctx} tokens sampled from the software model: seeds {}..{}, temperature 1, \
                     each starting at token {start}",
                    a.seed,
                    a.seed + docs as u64 - 1
                ),
            )
        }
    };
    timings.text_s = t.elapsed().as_secs_f64();

    // ── Adaptation, live: the linear model's weights on the nonlinear cell, before and after.
    let t = Instant::now();
    // Rows of up to ADAPT_CTX + 1 tokens (inputs and next-token targets): per-head statistics settle on short
    // rows, and every row is sampled token by token (GPT-2's 1,024 would make the demo slow on a CPU).
    let row = (ctx.min(ADAPT_CTX) + 1).min(fam.software.config.n_positions());
    let actx = row - 1;
    println!(
        "\n── Adaptation (docs/mapping.md#adaptation), live: the linear model's weights on the nonlinear cell, \
         scalers matched to the linear model's statistics on one batch of {} × {actx} sampled tokens",
        a.adapt_batch
    );
    let mut batch = Vec::new();
    for r in 0..a.adapt_batch {
        let seed = a.seed + ADAPT_SEED_OFFSET + r as u64;
        batch.extend(sample_stream(&fam.software, start, 1, row, seed)?);
    }
    let (x, y): (Vec<u32>, Vec<u32>) = (
        batch.chunks(row).flat_map(|r| r[..actx].to_vec()).collect(),
        batch.chunks(row).flat_map(|r| r[1..].to_vec()).collect(),
    );
    // One pass of the linear model: its loss is the adaptation's reference, its statistics the targets when no
    // training recorded them.
    let (linear_loss, measured) = measure_batch(&fam.linear, &x, &y, a.adapt_batch)?;
    let (targets, targets_source) = match &fam.targets {
        Some(t) => (
            t.clone(),
            "recorded while the linear model trained, as an EMA".to_string(),
        ),
        None => (
            measured,
            "measured on the linear chip on the same batch (no training record)".to_string(),
        ),
    };
    let unadapted = fam.linear.with_chip(fam.nonlinear_chip.clone())?;
    let mut adapted = unadapted.clone();
    println!(
        "  linear model's loss on this batch: {linear_loss:.4}\n  {}",
        super::adapt::table_header()
    );
    let opts = AdaptOptions {
        max_iterations: a.max_iterations,
        ..Default::default()
    };
    let outcome = adapt(
        &mut adapted,
        &targets,
        &x,
        &y,
        a.adapt_batch,
        &opts,
        &mut |it| println!("  {}", super::adapt::table_row(it)),
    )?;
    println!(
        "  {}; the linear model: {linear_loss:.4}",
        super::adapt::outcome(&outcome)
    );
    timings.adaptation_s = t.elapsed().as_secs_f64();
    let adaptation = AdaptationReport {
        batch: format!(
            "{} × {actx} tokens sampled from the software model",
            a.adapt_batch
        ),
        targets: targets_source,
        linear_loss,
        outcome,
    };

    // ── Quality of every variant against the software model.
    let t = Instant::now();
    let mut variants: Vec<(&str, String, &Model)> = vec![
        (
            "software",
            "the software model (softmax attention): the reference".into(),
            &fam.software,
        ),
        (
            "linear",
            if fam.nonlinear.is_some() {
                "fine-tuned on the linear chip".into()
            } else {
                "the same weights on the linear chip (not fine-tuned)".into()
            },
            &fam.linear,
        ),
        (
            "unadapted",
            "the linear model's weights on the nonlinear cell, before adaptation".into(),
            &unadapted,
        ),
        (
            "adapted",
            "the same after the adaptation above (no fine-tuning)".into(),
            &adapted,
        ),
    ];
    if let Some(n) = &fam.nonlinear {
        variants.push((
            "nonlinear",
            "the shipped nonlinear model: linear → adapt → fine-tuned on the nonlinear chip".into(),
            n,
        ));
    }
    println!(
        "\n── Quality on {} tokens ({stream_source}), windows of {ctx}",
        stream.len()
    );
    let b = bar(variants.len(), "models");
    let reference = next_token_log_probs(&fam.software, &stream, ctx)?;
    let mut quality = Vec::new();
    for (name, what, model) in &variants {
        let lp = if *name == "software" {
            reference.clone()
        } else {
            next_token_log_probs(model, &stream, ctx)?
        };
        let q = agreement(&reference, &lp)?;
        quality.push(VariantQuality {
            variant: name.to_string(),
            description: what.clone(),
            chip: model.chip.name.clone(),
            metrics: q,
        });
        b.inc(1);
    }
    b.finish_and_clear();
    let soft_nll = quality[0].metrics.nll;
    println!(
        "  {:<11} {:>11} {:>12} {:>12} {:>8}",
        "model", "perplexity", "Δ nats/tok", "KL (nats)", "top-1"
    );
    for q in &quality {
        println!(
            "  {:<11} {:>11.2} {:>+12.4} {:>12.4} {:>7.1}%",
            q.variant,
            q.metrics.perplexity,
            q.metrics.nll - soft_nll,
            q.metrics.kl,
            100.0 * q.metrics.top1_agreement
        );
    }
    timings.evaluation_s = t.elapsed().as_secs_f64();

    // ── Generation on the simulated arrays.
    let t = Instant::now();
    let sampling = if a.temperature == 0.0 {
        "greedy".to_string()
    } else {
        format!(
            "temperature {}{}, seed {}",
            a.temperature,
            a.top_k.map_or(String::new(), |k| format!(", top-{k}")),
            a.seed
        )
    };
    println!(
        "\n── Generation: each model continues the prompt token by token (KV arrays written column by column, \
         leaking, the window wrapping); {sampling}"
    );
    // A Llama's document starts with BOS, as llama2.c feeds a prompt.
    let prompt = fam.tokenizer.encode_document(&a.prompt)?;
    if prompt.is_empty() {
        bail!("--prompt is empty and the tokenizer has no start-of-document token: give some text to continue");
    }
    let positions = fam.software.config.n_positions();
    if prompt.len() >= positions {
        bail!(
            "--prompt is {} tokens but the model has {positions} positions: shorten it to at most {} tokens",
            prompt.len(),
            positions - 1
        );
    }
    let mut generations = Vec::new();
    for (name, _, model) in &variants {
        let sampler = Sampler::new(a.temperature, a.top_k, a.seed)?;
        let g = generate(model, &fam.tokenizer, &prompt, a.generate, sampler)?;
        println!("  [{name}] {}{}", a.prompt, one_line(&g.text));
        generations.push(Generation {
            variant: name.to_string(),
            sampling: sampling.clone(),
            prompt: a.prompt.clone(),
            text: g.text,
            tokens: g.tokens,
            tokens_per_s: g.tokens_per_s,
        });
    }
    timings.generation_s = t.elapsed().as_secs_f64();

    // ── Cost.
    let baselines = published_baselines();
    let shape = crate::commands::cost::model_shape(c, "this model");
    let mut costs = vec![evaluate(&fam.nonlinear_chip, &shape, &baselines)?];
    let gpt2 = ModelShape::builtin("gpt2").expect("built in");
    costs.push(evaluate(
        &ChipConfig::load("paper-nonlinear")?,
        &gpt2,
        &baselines,
    )?);
    println!(
        "\n── Cost of the attention on the chip, per token (the paper's constants; `gaincell cost --explain`, \
         docs/cost-model.md)"
    );
    for r in &costs {
        println!(
            "  {} on {} (window {}): latency {} per layer, {} for {} layers; energy {} per token; area {:.2} mm²",
            r.model.name,
            r.chip,
            r.counts.window,
            super::cost::si(r.latency.total_ns * 1e-9, "s"),
            super::cost::si(r.model_latency_ns * 1e-9, "s"),
            r.model.n_layer,
            super::cost::si(r.energy_pj.per_model * 1e-12, "J"),
            r.area_mm2.per_model
        );
        for cmp in &r.comparisons {
            println!(
                "    vs {}: {:.0}× faster, {:.0}× less energy per layer{}",
                cmp.baseline,
                cmp.speedup,
                cmp.energy_ratio,
                if cmp.caveats.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", cmp.caveats.join("; "))
                }
            );
        }
    }

    // ── The report.
    timings.total_s = started.elapsed().as_secs_f64();
    let results = DemoResults {
        gaincell_version: env!("CARGO_PKG_VERSION").into(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        threads: rayon::current_num_threads(),
        models: report::ModelsInfo::of(&fam, &variants),
        stream: report::StreamInfo {
            source: stream_source,
            tokens: stream.len(),
            ctx,
        },
        quality,
        adaptation,
        generations,
        cost: costs,
        timings,
    };
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create the report folder {}", a.out.display()))?;
    let written = report::write(&a.out, &results)?;
    let plots = plots::all(&a.out, &results, &baselines)?;
    println!(
        "\nwrote {} ({} files: report.md, results.json, {} plots) in {:.0} s",
        a.out.display(),
        written.len() + plots.len(),
        plots.len() / 2,
        started.elapsed().as_secs_f64()
    );
    std::io::stdout().flush()?;
    Ok(())
}

struct Generated {
    text: String,
    tokens: usize,
    tokens_per_s: f64,
}

/// Continue `prompt` with `model` token by token on the simulated arrays.
fn generate(
    model: &Model,
    tok: &gaincell_model::Tokenizer,
    prompt: &[u32],
    n: usize,
    mut sampler: Sampler,
) -> Result<Generated> {
    let mut dec = Decoder::new(model)?;
    let mut logits = Vec::new();
    for &id in prompt.iter().take(model.config.n_positions()) {
        logits = dec.step(id)?;
    }
    let t = Instant::now();
    let mut out = Vec::new();
    for _ in 0..n {
        let next = sampler.sample(&logits)?;
        if Some(next) == tok.eot() {
            break;
        }
        out.push(next);
        if dec.position() >= model.config.n_positions() {
            break;
        }
        logits = dec.step(next)?;
    }
    let secs = t.elapsed().as_secs_f64().max(1e-9);
    // The text past the prompt's own: a sentencepiece tokenizer drops the space of the first word after BOS.
    let before = tok.decode_bytes(prompt)?.len();
    let whole = tok.decode_bytes(&[prompt, &out[..]].concat())?;
    Ok(Generated {
        text: String::from_utf8_lossy(&whole[before.min(whole.len())..]).into_owned(),
        tokens: out.len(),
        tokens_per_s: out.len() as f64 / secs,
    })
}

/// Text on one line: line breaks inside a paragraph (Gutenberg's hard wraps) become spaces, paragraph breaks " ¶ ".
pub(crate) fn one_line(text: &str) -> String {
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    // The continuation's leading space separates it from the prompt.
    let lead = if text.starts_with(char::is_whitespace) {
        " "
    } else {
        ""
    };
    format!("{lead}{}", paragraphs.join(" ¶ "))
}
