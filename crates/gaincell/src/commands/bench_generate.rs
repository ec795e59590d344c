//! `gaincell bench generate`: token-by-token greedy decoding of a random model of a named shape, per chip — decode
//! tokens/s, the time the attention (the simulated arrays, or the software KV cache) takes per token separated
//! from the rest of the model, and peak resident memory — beside PyTorch + transformers `generate` with its KV
//! cache (scripts/bench_pytorch_generate.py, run by `--run-pytorch` or read with `--pytorch`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use gaincell_chip::ChipConfig;
use gaincell_model::{Decoder, Model, Sampler};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::pytorch_baseline;

#[derive(Args)]
pub struct GenerateBench {
    /// The model's shape (random weights): stories260K, gpt2, stories15M, tinyllama-1.1b, …
    #[arg(long, default_value = "stories260K")]
    shape: String,
    /// Cut the shape to this many layers.
    #[arg(long)]
    layers: Option<usize>,
    /// Prompt length (tokens fed before timing starts).
    #[arg(long, default_value_t = 32, value_parser = crate::arg_checks::at_least_one)]
    prompt_tokens: usize,
    /// New tokens decoded greedily and timed.
    #[arg(long, default_value_t = 128, value_parser = crate::arg_checks::at_least_one)]
    new_tokens: usize,
    /// Timed runs per chip (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = crate::arg_checks::at_least_one)]
    reps: usize,
    /// Chips to time; the first is the reference the others' overhead is measured against.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "software,paper-linear,paper-nonlinear"
    )]
    chips: Vec<String>,
    /// JSON written by scripts/bench_pytorch_generate.py.
    #[arg(long, conflicts_with = "run_pytorch")]
    pytorch: Option<PathBuf>,
    /// Run scripts/bench_pytorch_generate.py now with the same shape, lengths and thread count.
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
    ms_per_token: f64,
    attention_ms_per_token: f64,
    rest_ms_per_token: f64,
    /// Per-token time over the first chip's (the arrays' extra cost when the first is `software`).
    overhead_ms_per_token: f64,
    vs_pytorch: Option<f64>,
    peak_rss_mb: Option<f64>,
}

#[derive(Serialize)]
struct Report {
    shape: String,
    layers: usize,
    parameters: usize,
    prompt_tokens: usize,
    new_tokens: usize,
    reps: usize,
    threads: usize,
    rows: Vec<Row>,
    pytorch_tokens_per_s: Option<f64>,
    pytorch_peak_rss_mb: Option<f64>,
    pytorch_source: Option<String>,
}

/// One greedy decode of `new` tokens after `prompt`: (decode wall time, attention time within it).
fn decode(model: &Model, prompt: &[u32], new: usize) -> Result<(Duration, Duration)> {
    let mut dec = Decoder::new(model)?;
    let mut sampler = Sampler::new(0.0, None, 0)?;
    let mut logits = Vec::new();
    for &t in prompt {
        logits = dec.step(t)?;
    }
    let attention_before = dec.attention_time();
    let started = Instant::now();
    for _ in 0..new {
        let next = sampler.sample(&logits)?;
        logits = dec.step(next)?;
    }
    Ok((started.elapsed(), dec.attention_time() - attention_before))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

pub fn run(a: GenerateBench) -> Result<()> {
    let json_on_stdout = a.json.as_deref().is_some_and(crate::paths::is_stdout);
    let say = |s: String| {
        if json_on_stdout {
            eprintln!("{s}")
        } else {
            println!("{s}")
        }
    };
    let config = super::bench_ppl::bench_shape(&a.shape, a.layers)?;
    let positions = config.n_positions();
    if a.prompt_tokens + a.new_tokens > positions {
        bail!(
            "--prompt-tokens {} + --new-tokens {} exceed the {} shape's {positions} positions: shorten them",
            a.prompt_tokens,
            a.new_tokens,
            a.shape
        );
    }
    let threads = rayon::current_num_threads();
    let pytorch = pytorch_figures(&a, &config, threads)?;
    say(format!(
        "bench generate: {} ({} layers × {} heads × {} dims, {:.2} M parameters), prompt {} + {} new tokens, greedy, \
         {threads} threads, median of {}",
        a.shape,
        config.n_layer(),
        config.n_head(),
        config.head_dim(),
        config.parameters() as f64 / 1e6,
        a.prompt_tokens,
        a.new_tokens,
        a.reps
    ));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let prompt: Vec<u32> = (0..a.prompt_tokens)
        .map(|_| rng.gen_range(0..config.vocab_size() as u32))
        .collect();
    say(format!(
        "{:<18} {:>9} {:>9} {:>13} {:>9} {:>12} {:>11} {:>9}",
        "chip",
        "tokens/s",
        "ms/token",
        "attention ms",
        "rest ms",
        "vs first ms",
        "vs PyTorch",
        "peak MB"
    ));
    let torch_tps = pytorch
        .as_ref()
        .and_then(|b| b.json["tokens_per_s"]["software"].as_f64());
    let mut rows: Vec<Row> = Vec::new();
    for name in &a.chips {
        let mut chip = ChipConfig::load(name)?;
        if chip.is_gain_cell() {
            chip.geometry.head_dim = config.head_dim();
            chip.validate()?;
        }
        let model = Model::random(config.clone(), chip, 0)?;
        decode(&model, &prompt, a.new_tokens.min(8))?; // warm-up
        super::peak_memory::reset();
        let (mut total, mut attention) = (Vec::new(), Vec::new());
        for _ in 0..a.reps {
            let (t, att) = decode(&model, &prompt, a.new_tokens)?;
            total.push(t.as_secs_f64() * 1e3 / a.new_tokens as f64);
            attention.push(att.as_secs_f64() * 1e3 / a.new_tokens as f64);
        }
        let (ms, att) = (median(total), median(attention));
        let first = rows.first().map_or(ms, |r| r.ms_per_token);
        let row = Row {
            chip: name.clone(),
            tokens_per_s: 1e3 / ms,
            ms_per_token: ms,
            attention_ms_per_token: att,
            rest_ms_per_token: ms - att,
            overhead_ms_per_token: ms - first,
            vs_pytorch: torch_tps.map(|p| 1e3 / ms / p),
            peak_rss_mb: super::peak_memory::peak_mb(),
        };
        say(format!(
            "{:<18} {:>9.1} {:>9.3} {:>7.3} ({:>3.0}%) {:>9.3} {:>+12.3} {:>11} {:>9}",
            row.chip,
            row.tokens_per_s,
            row.ms_per_token,
            row.attention_ms_per_token,
            100.0 * att / ms,
            row.rest_ms_per_token,
            row.overhead_ms_per_token,
            row.vs_pytorch.map_or("-".into(), |r| format!("{r:.2}×")),
            row.peak_rss_mb.map_or("-".into(), |m| format!("{m:.0}"))
        ));
        rows.push(row);
    }
    match &pytorch {
        Some(b) => say(format!(
            "PyTorch + transformers generate (KV cache): {} tokens/s, peak {} MB ({})",
            torch_tps.map_or("?".into(), |t| format!("{t:.1}")),
            b.json["peak_rss_mb"].as_f64().map_or("?".into(), |m| format!("{m:.0}")),
            b.source
        )),
        None => say("(no PyTorch figure: pass --run-pytorch, or --pytorch FILE written by scripts/bench_pytorch_generate.py)".into()),
    }
    say("attention: the time inside the attention of every layer (the simulated K/V arrays' write and read, or software's KV cache); rest: projections, MLP, norms, head; peak MB: this process's peak resident memory while the chip's runs went (Linux VmHWM)".into());
    if let Some(path) = &a.json {
        let report = Report {
            shape: a.shape.clone(),
            layers: config.n_layer(),
            parameters: config.parameters(),
            prompt_tokens: a.prompt_tokens,
            new_tokens: a.new_tokens,
            reps: a.reps,
            threads,
            rows,
            pytorch_tokens_per_s: torch_tps,
            pytorch_peak_rss_mb: pytorch
                .as_ref()
                .and_then(|b| b.json["peak_rss_mb"].as_f64()),
            pytorch_source: pytorch.map(|b| b.source),
        };
        crate::paths::write_output(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

fn pytorch_figures(
    a: &GenerateBench,
    config: &gaincell_model::ModelConfig,
    threads: usize,
) -> Result<Option<pytorch_baseline::Baseline>> {
    let mut args: Vec<String> = [
        ("--threads", threads),
        ("--positions", config.n_positions()),
        ("--prompt-tokens", a.prompt_tokens),
        ("--new-tokens", a.new_tokens),
        ("--reps", a.reps),
    ]
    .iter()
    .flat_map(|(k, v)| [k.to_string(), v.to_string()])
    .collect();
    args.extend(pytorch_baseline::shape_args(config));
    pytorch_baseline::obtain(
        "scripts/bench_pytorch_generate.py",
        &args,
        a.run_pytorch,
        a.pytorch.as_deref(),
    )
}
