//! `gaincell bench train`: training throughput (forward, backward, AdamW) of the small GPT on several chips, as
//! ratios measured in one run, beside PyTorch + transformers (scripts/bench_pytorch_train.py, run by
//! `--run-pytorch` or read from its JSON with `--pytorch`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use super::pytorch_baseline;
use candle_core::{Device, Tensor};
use clap::Args;
use gaincell_chip::ChipConfig;
use gaincell_model::{ops::cross_entropy, Model, ModelConfig};
use gaincell_train::optim::{AdamW, AdamWConfig};
use gaincell_train::trainer::ModelSpec;
use rand::{Rng, SeedableRng};

#[derive(Args)]
pub struct TrainBench {
    /// Model family of the shape given by --layers/--heads/--embd/--vocab: gpt2 or llama.
    #[arg(long, default_value = "gpt2")]
    family: String,
    /// A named shape instead (stories260K, stories15M, tinyllama-1.1b, gpt2, …); --layers cuts its layer count.
    #[arg(long)]
    shape: Option<String>,
    /// Llama: key/value heads (default --heads).
    #[arg(long)]
    n_kv_head: Option<usize>,
    /// Llama: MLP width (default 8/3 · embd rounded up to 32).
    #[arg(long)]
    intermediate: Option<usize>,
    /// Layers (default 4; with --shape, the shape's own unless given).
    #[arg(long)]
    layers: Option<usize>,
    #[arg(long, default_value_t = 4)]
    heads: usize,
    #[arg(long, default_value_t = 256)]
    embd: usize,
    #[arg(long, default_value_t = 8192)]
    vocab: usize,
    #[arg(long, default_value_t = 256)]
    ctx: usize,
    /// The gain-cell chips' window (tokens).
    #[arg(long, default_value_t = 128)]
    window: usize,
    #[arg(long, default_value_t = 8, value_parser = crate::arg_checks::at_least_one)]
    batch: usize,
    /// Timed optimiser steps per chip (after the warm-up steps); tokens/s is from their median.
    #[arg(long, default_value_t = 5, value_parser = crate::arg_checks::at_least_one)]
    steps: usize,
    /// Untimed steps first (both sides): the allocator reaches its steady state (no new pages touched) only
    /// after a few steps, as a long run does.
    #[arg(long, default_value_t = 3, value_parser = crate::arg_checks::at_least_one)]
    warmup: usize,
    /// Chips to time; the first is the reference the others are divided by.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "software,paper-nonlinear"
    )]
    chips: Vec<String>,
    /// JSON written by scripts/bench_pytorch_train.py.
    #[arg(long, conflicts_with = "run_pytorch")]
    pytorch: Option<PathBuf>,
    /// Run scripts/bench_pytorch_train.py now with the same shapes and thread count.
    #[arg(long)]
    run_pytorch: bool,
}

/// The shape benchmarked: a named one (layers cut by --layers when given explicitly), or the sizes given.
fn shape(a: &TrainBench) -> Result<ModelConfig> {
    let mut config = match &a.shape {
        Some(name) => super::bench_ppl::bench_shape(name, a.layers)?,
        None => ModelSpec {
            init: None,
            n_layer: a.layers.unwrap_or(4),
            n_head: a.heads,
            n_embd: a.embd,
            n_positions: a.ctx,
            family: a.family.clone(),
            n_kv_head: a.n_kv_head,
            intermediate: a.intermediate,
            tie_embeddings: None,
        }
        .fresh_config(a.vocab, a.ctx)?,
    };
    if a.ctx > config.n_positions() {
        // A named shape's rotary table or position embedding is as long as its context; longer windows are
        // shape-only benchmarks, so extend it.
        match &mut config {
            ModelConfig::Gpt2(c) => c.n_positions = a.ctx,
            ModelConfig::Llama(c) => c.max_position_embeddings = a.ctx,
        }
    }
    Ok(config)
}

pub fn run(a: TrainBench) -> Result<()> {
    let threads = rayon::current_num_threads();
    let config = shape(&a)?;
    let vocab = config.vocab_size();
    let pytorch = pytorch_figures(&a, &config, threads)?;
    println!(
        "bench train: {} {} layers × {} heads{} × {} dims, {:.2} M parameters, vocab {vocab}, batch {} × ctx {}, \
         window {}, {threads} threads",
        config.family(),
        config.n_layer(),
        config.n_head(),
        if config.n_kv_head() < config.n_head() {
            format!(" ({} key/value)", config.n_kv_head())
        } else {
            String::new()
        },
        config.head_dim(),
        config.parameters() as f64 / 1e6,
        a.batch,
        a.ctx,
        a.window
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let batches: Vec<Vec<u32>> = (0..a.warmup + a.steps)
        .map(|_| {
            (0..a.batch * (a.ctx + 1))
                .map(|_| rng.gen_range(0..vocab as u32))
                .collect()
        })
        .collect();
    println!(
        "{:<20} {:>10} {:>14} {:>14} {:>9} {:>12} {:>7} [min–max]",
        "chip", "tokens/s", "time vs first", "vs PyTorch", "peak MB", "PyTorch MB", "step ms"
    );
    let mut first = None;
    for name in &a.chips {
        let mut chip = ChipConfig::load(name)?;
        if chip.is_gain_cell() {
            chip.geometry.window = a.window;
            chip.geometry.head_dim = config.head_dim();
            chip.validate()?;
        }
        super::peak_memory::reset();
        let model = Model::random(config.clone(), chip, 0)?;
        let (model, vars) = model.trainable()?;
        let mut opt = AdamW::new(&vars, AdamWConfig::default())?;
        let mut step_s = Vec::with_capacity(a.steps);
        for (step, b) in batches.iter().enumerate() {
            let started = Instant::now();
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for row in b.chunks(a.ctx + 1) {
                x.extend_from_slice(&row[..a.ctx]);
                y.extend_from_slice(&row[1..]);
            }
            let xs = Tensor::from_vec(x, (a.batch, a.ctx), &Device::Cpu)?;
            let ys = Tensor::from_vec(y, a.batch * a.ctx, &Device::Cpu)?;
            let logits = model.forward(&xs)?.reshape((a.batch * a.ctx, vocab))?;
            let grads = cross_entropy(&logits, &ys)?.backward()?;
            opt.step(&grads)?;
            if step >= a.warmup {
                step_s.push(started.elapsed().as_secs_f64());
            }
        }
        // The median step: one step slowed by the machine's other work does not move it.
        step_s.sort_by(f64::total_cmp);
        let median = step_s[step_s.len() / 2];
        let tps = (a.batch * a.ctx) as f64 / median;
        let vs_first = first.map_or(1.0, |f: f64| f / tps);
        first.get_or_insert(tps);
        let torch = pytorch
            .as_ref()
            .and_then(|(m, _, _)| m.get(name).and_then(|v| v.as_f64()))
            .map_or("-".into(), |p| format!("{:.2}×", tps / p));
        // Peak resident memory from building the model through its last step (the previous chip's model freed).
        let peak = super::peak_memory::peak_mb().map_or("-".into(), |m| format!("{m:.0}"));
        let torch_peak = pytorch
            .as_ref()
            .and_then(|(_, _, peaks)| peaks.get(name).and_then(|v| v.as_f64()))
            .map_or("-".into(), |m| format!("{m:.0}"));
        println!(
            "{name:<20} {tps:>10.1} {vs_first:>13.2}× {torch:>14} {peak:>9} {torch_peak:>12} {:>7.0} [{:.0}–{:.0}]",
            median * 1e3,
            step_s[0] * 1e3,
            step_s[step_s.len() - 1] * 1e3
        );
    }
    match &pytorch {
        Some((m, source, _)) => println!("PyTorch + transformers tokens/s: {} ({source})", serde_json::Value::Object(m.clone())),
        None => println!("(no PyTorch figure: pass --run-pytorch, or --pytorch FILE written by scripts/bench_pytorch_train.py)"),
    }
    Ok(())
}

/// PyTorch's tokens/s per chip, where they came from, and its peak resident MB per chip (empty in older files).
type Figures = (
    serde_json::Map<String, serde_json::Value>,
    String,
    serde_json::Map<String, serde_json::Value>,
);

fn pytorch_figures(
    a: &TrainBench,
    config: &ModelConfig,
    threads: usize,
) -> Result<Option<Figures>> {
    let mut args: Vec<String> = [
        ("--threads", threads),
        ("--ctx", a.ctx),
        ("--window", a.window),
        ("--batch", a.batch),
        ("--steps", a.steps),
        ("--warmup", a.warmup),
    ]
    .iter()
    .flat_map(|(k, v)| [k.to_string(), v.to_string()])
    .collect();
    args.extend(["--kinds".to_string(), a.chips.join(",")]);
    args.extend(pytorch_baseline::shape_args(config));
    let script = "scripts/bench_pytorch_train.py";
    let Some(b) = pytorch_baseline::obtain(script, &args, a.run_pytorch, a.pytorch.as_deref())?
    else {
        return Ok(None);
    };
    let m = b.json["tokens_per_s"]
        .as_object()
        .with_context(|| {
            format!("`tokens_per_s` is not a table per chip (write it with {script})")
        })?
        .clone();
    let peaks = b.json["peak_rss_mb"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    Ok(Some((m, b.source, peaks)))
}
