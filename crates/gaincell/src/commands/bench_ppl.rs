//! `gaincell bench ppl`: perplexity throughput of a whole model (GPT-2 124M shape by default) on several chips,
//! each as a ratio to `software` measured in the same run, beside PyTorch + transformers on this machine
//! (scripts/bench_pytorch_ppl.py, run by `--run-pytorch` or read from its JSON with `--pytorch`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::pytorch_baseline;
use clap::Args;
use gaincell_chip::ChipConfig;
use gaincell_model::{perplexity, Model, ModelConfig, PplOptions};
use rand::{Rng, SeedableRng};
use serde::Serialize;

#[derive(Args)]
pub struct PplBench {
    /// Model shape (random weights): gpt2, gpt2-medium, gpt2-large, gpt2-xl, stories260K, stories15M,
    /// stories110M, tinyllama-1.1b.
    #[arg(long, default_value = "gpt2")]
    size: String,
    /// Keep only this many of the shape's layers (e.g. a TinyLlama-shaped layer stack: --size tinyllama-1.1b
    /// --layers 2).
    #[arg(long)]
    layers: Option<usize>,
    /// Tokens per window.
    #[arg(long, default_value_t = 1024)]
    ctx: usize,
    /// Tokens the window advances by (only these are scored after the first window).
    #[arg(long)]
    stride: Option<usize>,
    /// Timed windows per chip (after one warm-up window).
    #[arg(long, default_value_t = 3)]
    windows: usize,
    /// Chips to time; the first is the reference the others are divided by.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "software,paper-nonlinear"
    )]
    chips: Vec<String>,
    /// PyTorch figure measured on this machine by scripts/bench_pytorch_ppl.py (its JSON).
    #[arg(long, conflicts_with = "run_pytorch")]
    pytorch: Option<PathBuf>,
    /// Run scripts/bench_pytorch_ppl.py now (python3 with torch and transformers), with the same ctx, stride,
    /// windows and thread count, and print its figure beside ours.
    #[arg(long)]
    run_pytorch: bool,
    /// Also write the results as JSON (`-`: to standard output, the table then goes to standard error).
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Serialize)]
struct Row {
    chip: String,
    tokens_per_s: f64,
    /// Time per token relative to the first chip (the overhead of the chip over it).
    slowdown_vs_first: f64,
    /// Model FLOPs per second achieved (2 × multiply-adds of the GEMMs and attention).
    gflops: f64,
    perplexity: f64,
}

#[derive(Serialize)]
struct Report {
    size: String,
    ctx: usize,
    stride: usize,
    windows: usize,
    threads: usize,
    rows: Vec<Row>,
    pytorch_tokens_per_s: Option<f64>,
    pytorch_source: Option<String>,
}

/// FLOPs to score one token with a window of `ctx` and `scored` of its tokens scored: every token runs the blocks,
/// only scored ones the output head; causal attention averages ctx/2 keys per query.
fn flops_per_scored_token(c: &ModelConfig, ctx: usize, scored: usize) -> f64 {
    let blocks =
        pytorch_baseline::block_flops_per_token(c, ctx as f64 / 2.0) * ctx as f64 / scored as f64;
    blocks + 2.0 * c.n_embd() as f64 * c.vocab_size() as f64
}

/// A named shape, with its layer count cut to `layers` when given.
pub fn bench_shape(name: &str, layers: Option<usize>) -> Result<ModelConfig> {
    let mut config = ModelConfig::named(name).with_context(|| {
        format!(
            "--size {name}: known shapes are {}",
            ModelConfig::NAMED.join(", ")
        )
    })?;
    if let Some(l) = layers {
        if l == 0 {
            bail!("--layers 0: give at least one layer");
        }
        match &mut config {
            ModelConfig::Gpt2(c) => c.n_layer = l,
            ModelConfig::Llama(c) => c.num_hidden_layers = l,
        }
    }
    Ok(config)
}

pub fn run(a: PplBench) -> Result<()> {
    // `--json -`: the JSON alone on standard output, the human-readable lines on standard error.
    let json_on_stdout = a.json.as_deref().is_some_and(crate::paths::is_stdout);
    let config = bench_shape(&a.size, a.layers)?;
    // Llama shapes have shorter contexts than GPT-2's 1,024: the default ctx is capped by the model's.
    let ctx = a.ctx.min(config.n_positions());
    let a = PplBench { ctx, ..a };
    let stride = a.stride.unwrap_or(a.ctx);
    if a.ctx < 2 || stride == 0 || stride > a.ctx || a.windows == 0 {
        bail!(
            "need 2 ≤ ctx ≤ {}, 1 ≤ stride ≤ ctx and windows ≥ 1 (got ctx {}, stride {stride}, windows {})",
            config.n_positions(),
            a.ctx,
            a.windows
        );
    }
    // The chips' arrays take the model's head width (a benchmark of the shape, as `bench train` does).
    let chips = a
        .chips
        .iter()
        .map(|c| -> Result<ChipConfig> {
            let mut chip = ChipConfig::load(c)?;
            if chip.is_gain_cell() {
                chip.geometry.head_dim = config.head_dim();
                chip.validate()?;
            }
            Ok(chip)
        })
        .collect::<Result<Vec<_>>>()?;
    if chips.is_empty() {
        bail!("--chips: give at least one chip");
    }
    let threads = rayon::current_num_threads();
    let pytorch = pytorch_figure(&a, &config, stride, threads)?;

    // Random token ids (seeded): throughput does not depend on the text.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let ids: Vec<u32> = (0..a.ctx + stride * a.windows)
        .map(|_| rng.gen_range(0..config.vocab_size() as u32))
        .collect();
    let scored_per_window = stride;
    let flops = flops_per_scored_token(&config, a.ctx, scored_per_window);
    human!(json_on_stdout,
        "bench ppl: {} ({} layers, {:.2} M parameters) random weights, ctx {} stride {stride}, {} timed windows, \
         {threads} threads",
        a.size,
        config.n_layer(),
        config.parameters() as f64 / 1e6,
        a.ctx,
        a.windows
    );
    let model = Model::random(config.clone(), chips[0].clone(), 0)?;
    let mut rows: Vec<Row> = Vec::new();
    for chip in chips {
        let model = model.with_chip(chip.clone())?;
        let opts = PplOptions { ctx: a.ctx, stride };
        // Warm-up: the first window (allocator, thread pool, page faults).
        perplexity(&model, &ids[..a.ctx], 0, opts, &mut |_, _| {})?;
        // Timed: the windows after the first (the first one scores all ctx tokens, the rest `stride` each).
        let r = perplexity(&model, &ids[stride..], 0, opts, &mut |_, _| {})?;
        let first = rows.first().map(|r| r.tokens_per_s);
        rows.push(Row {
            chip: chip.name.clone(),
            tokens_per_s: r.tokens_per_s,
            slowdown_vs_first: first.map_or(1.0, |f| f / r.tokens_per_s),
            gflops: flops * r.tokens_per_s / 1e9,
            perplexity: r.perplexity,
        });
    }
    human!(
        json_on_stdout,
        "{:<26} {:>10} {:>16} {:>9} {:>16}",
        "chip",
        "tokens/s",
        "time vs first",
        "GFLOP/s",
        "vs PyTorch"
    );
    for r in &rows {
        let torch = pytorch
            .as_ref()
            .map(|(p, _)| format!("{:.2}×", r.tokens_per_s / p))
            .unwrap_or_else(|| "-".into());
        human!(
            json_on_stdout,
            "{:<26} {:>10.1} {:>15.2}× {:>9.1} {:>16}",
            r.chip,
            r.tokens_per_s,
            r.slowdown_vs_first,
            r.gflops,
            torch
        );
    }
    match &pytorch {
        Some((p, source)) => human!(json_on_stdout, "PyTorch + transformers: {p:.1} tokens/s ({source})"),
        None => human!(json_on_stdout,
            "(no PyTorch figure: pass --run-pytorch, or --pytorch FILE written by scripts/bench_pytorch_ppl.py)"
        ),
    }
    if let Some(path) = a.json {
        let report = Report {
            size: a.size,
            ctx: a.ctx,
            stride,
            windows: a.windows,
            threads,
            rows,
            pytorch_tokens_per_s: pytorch.as_ref().map(|p| p.0),
            pytorch_source: pytorch.map(|p| p.1),
        };
        crate::paths::write_output(&path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

/// PyTorch's tokens/s and where it came from: run now, read from a file, or none.
fn pytorch_figure(
    a: &PplBench,
    config: &ModelConfig,
    stride: usize,
    threads: usize,
) -> Result<Option<(f64, String)>> {
    let mut args: Vec<String> = [
        ("--threads", threads),
        ("--ctx", a.ctx),
        ("--stride", stride),
        ("--windows", a.windows),
    ]
    .iter()
    .flat_map(|(k, v)| [k.to_string(), v.to_string()])
    .collect();
    args.extend(pytorch_baseline::shape_args(config));
    let script = "scripts/bench_pytorch_ppl.py";
    let Some(b) = pytorch_baseline::obtain(script, &args, a.run_pytorch, a.pytorch.as_deref())?
    else {
        return Ok(None);
    };
    let tps = b.json["tokens_per_s"]
        .as_f64()
        .with_context(|| format!("`tokens_per_s` is not a number (write it with {script})"))?;
    for (key, ours) in [("ctx", a.ctx), ("stride", stride), ("threads", threads)] {
        if b.json[key].as_u64() != Some(ours as u64) {
            println!(
                "note: PyTorch ran with {key} = {}, this run uses {ours}",
                b.json[key]
            );
        }
    }
    Ok(Some((tps, b.source)))
}
