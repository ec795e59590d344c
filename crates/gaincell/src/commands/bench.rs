//! `gaincell bench`: speed of the hot paths, each beside a reference measured in the same run.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use gaincell_attn::{
    gain_cell_backward_at, gain_cell_forward, softmax_backward, softmax_forward, GainCellParams,
    Shape, Site,
};
use gaincell_chip::ChipConfig;
use rand::{Rng, SeedableRng};
use serde::Serialize;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// One GPT-2 attention layer (12 heads, T 1024, D 64) on the paper chips against our softmax attention.
    Attention(AttentionBench),
    /// Perplexity throughput of a GPT-2-shaped model (random weights) per chip, beside PyTorch + transformers.
    Ppl(super::bench_ppl::PplBench),
    /// Training throughput (forward, backward, AdamW) of the small GPT per chip, beside PyTorch + transformers.
    Train(super::bench_train::TrainBench),
    /// Token-by-token greedy decoding per chip: tokens/s, the attention's share, peak memory, beside PyTorch +
    /// transformers `generate` with its KV cache.
    Generate(super::bench_generate::GenerateBench),
    /// Zero-shot scoring: requests per second on the same requests with and without prefix reuse (a document's
    /// shared context computed once), the token positions each computes, and the largest difference in
    /// log-likelihood between the two.
    Eval(EvalBench),
}

#[derive(Args)]
pub struct EvalBench {
    #[command(flatten)]
    model: crate::model_args::ModelArgs,
    /// Tasks whose requests are scored (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "hellaswag,arc_easy,piqa")]
    tasks: Vec<String>,
    /// Folder of the task data (as `eval tasks`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Documents per task.
    #[arg(long, default_value_t = 100, value_parser = crate::arg_checks::at_least_one)]
    limit: usize,
    /// Most requests per model call.
    #[arg(long, default_value_t = 16, value_parser = crate::arg_checks::at_least_one)]
    batch: usize,
    /// Token for an empty context; default: the tokenizer's <|endoftext|>.
    #[arg(long)]
    prefix_token: Option<u32>,
    /// Timed runs of each mode, alternating (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = crate::arg_checks::at_least_one)]
    reps: usize,
    /// Also write the results as JSON (`-`: to standard output, the table then goes to standard error).
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
pub struct AttentionBench {
    /// Sequences (batch × heads).
    #[arg(long, default_value_t = 12, value_parser = crate::arg_checks::at_least_one)]
    heads: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 1024, value_parser = crate::arg_checks::at_least_one)]
    tokens: usize,
    /// Timed repetitions per kernel (the median is reported).
    #[arg(long, default_value_t = 7, value_parser = crate::arg_checks::at_least_one)]
    reps: usize,
    /// Chips to time (presets or files); each noise-free one is timed again with every noise source on.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "paper-linear,paper-nonlinear"
    )]
    chips: Vec<String>,
    /// Also write the results as JSON (`-`: to standard output, the table then goes to standard error).
    #[arg(long)]
    json: Option<PathBuf>,
    /// PyTorch figures measured on this machine by scripts/bench_pytorch_attention.py (JSON); without it the
    /// published figures are shown for orientation.
    #[arg(long)]
    pytorch: Option<PathBuf>,
}

/// PyTorch run times to print beside ours, and where they come from.
struct PytorchFigures {
    ms: Vec<(String, f64)>,
    /// Forward + backward (`ms_median_train`; absent in older files and in the published figures).
    train_ms: Vec<(String, f64)>,
    source: String,
}

impl PytorchFigures {
    fn load(path: Option<&PathBuf>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(PytorchFigures {
                ms: PUBLISHED_MS.iter().map(|(n, ms)| (n.to_string(), *ms)).collect(),
                train_ms: Vec::new(),
                source: "published figures (design/PERF.md), same machine type, not measured in this run".into(),
            });
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let ms = v["ms_median"]
            .as_object()
            .with_context(|| {
                format!(
                    "{}: no `ms_median` table (write it with scripts/bench_pytorch_attention.py)",
                    path.display()
                )
            })?
            .iter()
            .filter_map(|(k, x)| Some((k.clone(), x.as_f64()?)))
            .collect();
        let train_ms = v["ms_median_train"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, x)| Some((k.clone(), x.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        let source = format!(
            "{} (torch {}, {} threads, {})",
            path.display(),
            v["torch"].as_str().unwrap_or("?"),
            v["threads"],
            v["date"].as_str().unwrap_or("?")
        );
        Ok(PytorchFigures {
            ms,
            train_ms,
            source,
        })
    }

    fn get(&self, kernel: &str) -> Option<f64> {
        self.ms.iter().find(|(n, _)| n == kernel).map(|(_, ms)| *ms)
    }

    fn get_train(&self, kernel: &str) -> Option<f64> {
        self.train_ms
            .iter()
            .find(|(n, _)| n == kernel)
            .map(|(_, ms)| *ms)
    }
}

/// Run times of the published PyTorch implementations on this 2-core machine type (design/PERF.md); they were not
/// measured in this run and are printed only for orientation.
const PUBLISHED_MS: &[(&str, f64)] = &[
    ("softmax", 28.7),
    ("paper-linear", 452.0),
    ("paper-nonlinear", 1899.0),
];

#[derive(Serialize)]
struct Row {
    kernel: String,
    ms_median: f64,
    ms_min: f64,
    ratio_to_softmax: f64,
    gflops: f64,
    pytorch_ms: Option<f64>,
    /// The noise-on variant of a chip: its time over the same chip's noise-off time.
    #[serde(skip_serializing_if = "Option::is_none")]
    ratio_to_noise_off: Option<f64>,
}

/// The chip with every variation and noise source on (σ of a plausible size), for the noise-on timing.
fn with_all_noise(chip: &ChipConfig) -> ChipConfig {
    let mut c = chip.clone();
    c.name = format!("{} + noise", chip.name);
    let v = &mut c.variation;
    (v.seed, v.cell_gain_sigma, v.cell_offset_sigma_v) = (1, 0.02, 0.005);
    (v.c2p_gain_sigma, v.c2p_threshold_sigma_ua) = (0.02, 0.5);
    (v.counter_gain_sigma, v.counter_threshold_sigma_ua) = (0.02, 0.2);
    let n = &mut c.noise;
    (n.seed, n.write_sigma_v) = (2, 0.005);
    (n.score_read_sigma_ua, n.value_read_sigma_ua) = (0.5, 0.2);
    c
}

#[derive(Serialize)]
struct Report {
    heads: usize,
    tokens: usize,
    head_dim: usize,
    threads: usize,
    gemm_peak_gflops: f64,
    pytorch_source: String,
    rows: Vec<Row>,
    /// Forward + backward, as a training step runs each kernel.
    train_rows: Vec<TrainRow>,
}

#[derive(Serialize)]
struct TrainRow {
    kernel: String,
    ms_median: f64,
    ms_min: f64,
    ratio_to_softmax: f64,
    pytorch_ms: Option<f64>,
}

/// Forward + backward of softmax and of each noise-free chip (the linear surrogate gradient), on the same q, k,
/// v and an output gradient: what one attention layer costs a training step.
fn train_rows(
    reps: usize,
    shape: Shape,
    [q, k, v]: [&[f32]; 3],
    chips: &[ChipConfig],
    torch: &PytorchFigures,
) -> Result<Vec<TrainRow>> {
    let grad: Vec<f32> = (0..shape.len())
        .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
        .collect();
    let mut out = vec![0.0f32; shape.len()];
    let (sm_med, sm_min) = time(reps, || {
        softmax_forward(shape, 0, q, k, v, &mut out).expect("shapes are right");
        softmax_backward(shape, 0, [q, k, v, &out, &grad]).expect("shapes are right");
    });
    let mut rows = vec![TrainRow {
        kernel: "softmax".into(),
        ms_median: sm_med,
        ms_min: sm_min,
        ratio_to_softmax: 1.0,
        pytorch_ms: torch.get_train("softmax"),
    }];
    for chip in chips {
        let p = GainCellParams::new(chip).with_context(|| format!("chip {}", chip.name))?;
        let (med, min) = time(reps, || {
            gain_cell_forward(&p, shape, q, k, v, &mut out, None).expect("shapes are right");
            gain_cell_backward_at(&p, Site::default(), shape, q, k, v, &grad)
                .expect("shapes are right");
        });
        rows.push(TrainRow {
            kernel: chip.name.clone(),
            ms_median: med,
            ms_min: min,
            ratio_to_softmax: med / sm_med,
            pytorch_ms: torch.get_train(&chip.name),
        });
    }
    Ok(rows)
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Attention(a) => attention(a),
        BenchCommand::Ppl(p) => super::bench_ppl::run(p),
        BenchCommand::Train(t) => super::bench_train::run(t),
        BenchCommand::Generate(g) => super::bench_generate::run(g),
        BenchCommand::Eval(a) => eval(a),
    }
}

/// Median and minimum wall time of `reps` runs after one warm-up, in ms.
fn time(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    time_alternating(reps, 1, &mut |_| f()).times[0]
}

/// Times of `kernels` kernels timed in alternation (`run(i)` runs kernel `i`), each after one warm-up: per
/// kernel (median, min) ms, and with two kernels or more the median over repetitions of kernel 1's time over
/// kernel 0's in the same repetition.
struct Alternating {
    times: Vec<(f64, f64)>,
    ratio: Option<f64>,
}

fn time_alternating(reps: usize, kernels: usize, run: &mut impl FnMut(usize)) -> Alternating {
    (0..kernels).for_each(&mut *run);
    let mut ms = vec![Vec::new(); kernels];
    for _ in 0..reps.max(1) {
        for (i, ms) in ms.iter_mut().enumerate() {
            let s = Instant::now();
            run(i);
            ms.push(s.elapsed().as_secs_f64() * 1e3);
        }
    }
    let sorted = |mut x: Vec<f64>| {
        x.sort_by(|a, b| a.total_cmp(b));
        x
    };
    let ratio = (kernels > 1).then(|| {
        let r = sorted(ms[1].iter().zip(&ms[0]).map(|(on, off)| on / off).collect());
        r[r.len() / 2]
    });
    let times = ms
        .into_iter()
        .map(|x| {
            let x = sorted(x);
            (x[x.len() / 2], x[0])
        })
        .collect();
    Alternating { times, ratio }
}

/// Multiply-add work of the blocked kernels: Σ over 64-query blocks of queries × keys in the block's window.
fn pair_count(t: usize, window: usize) -> f64 {
    (0..t)
        .step_by(64)
        .map(|t0| {
            let t1 = (t0 + 64).min(t);
            ((t1 - t0) * (t1 - (t0 + 1).saturating_sub(window))) as f64
        })
        .sum()
}

/// Achieved GFLOP/s of a large f32 GEMM on all threads: the machine's practical peak.
fn gemm_peak() -> f64 {
    let n = 1024;
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.1).collect();
    let mut c = vec![0.0f32; n * n];
    let (med, _) = time(5, || unsafe {
        // SAFETY: all three buffers are n × n, row-major, and distinct.
        gemm::gemm(
            n,
            n,
            n,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            n as isize,
            a.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        )
    });
    2.0 * (n * n * n) as f64 / (med * 1e-3) / 1e9
}

fn attention(a: AttentionBench) -> Result<()> {
    // `--json -`: the JSON alone on standard output, the human-readable lines on standard error.
    let json_on_stdout = a.json.as_deref().is_some_and(crate::paths::is_stdout);
    let d = 64;
    let shape = Shape::new(a.heads, a.tokens, d);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut gen =
        |hi: f32| -> Vec<f32> { (0..shape.len()).map(|_| rng.gen_range(0.0..hi)).collect() };
    let (q, k, v) = (gen(1.0), gen(0.9), gen(0.9));
    let mut out = vec![0.0f32; shape.len()];
    let threads = rayon::current_num_threads();
    let torch = PytorchFigures::load(a.pytorch.as_ref())?;
    let peak = gemm_peak();
    human!(json_on_stdout,
        "bench attention: {} sequences × {} tokens × {d} dims, causal, {threads} threads; f32 GEMM peak measured now: {peak:.1} GFLOP/s",
        a.heads, a.tokens
    );

    let mut rows = Vec::new();
    let (sm_med, sm_min) = time(a.reps, || {
        softmax_forward(shape, 0, &q, &k, &v, &mut out).expect("shapes are right")
    });
    let sm_flops = 4.0 * pair_count(a.tokens, a.tokens) * d as f64 * a.heads as f64;
    rows.push(Row {
        kernel: "softmax".into(),
        ms_median: sm_med,
        ms_min: sm_min,
        ratio_to_softmax: 1.0,
        gflops: sm_flops / (sm_med * 1e-3) / 1e9,
        pytorch_ms: torch.get("softmax"),
        ratio_to_noise_off: None,
    });
    let chips: Vec<ChipConfig> = a
        .chips
        .iter()
        .map(|name| ChipConfig::load(name))
        .collect::<Result<_, _>>()?;
    // Each chip as given, then with every noise source on (unless the chip already has noise): the two timed
    // in alternation, so that a shared machine's drift over seconds falls on both alike, and their ratio is
    // the median of the ratios of neighbouring repetitions.
    for chip in &chips {
        let noisy = (chip.variation.is_off() && chip.noise.is_off()).then(|| with_all_noise(chip));
        let params = std::iter::once(chip)
            .chain(noisy.as_ref())
            .map(|c| GainCellParams::new(c).with_context(|| format!("chip {}", c.name)))
            .collect::<Result<Vec<_>>>()?;
        let mut run = |i: usize| {
            gain_cell_forward(&params[i], shape, &q, &k, &v, &mut out, None)
                .expect("shapes are right")
        };
        let timed = time_alternating(a.reps, params.len(), &mut run);
        let terms = match chip.cell.polynomial() {
            Some(g) if chip.lambda() != 0.0 => g.iter().skip(1).filter(|c| **c != 0.0).count(),
            _ => 1,
        };
        let flops =
            4.0 * pair_count(a.tokens, chip.geometry.window) * (terms * d) as f64 * a.heads as f64;
        let names = std::iter::once(chip.name.clone()).chain(noisy.map(|c| c.name));
        for (i, (name, (med, min))) in names.zip(timed.times).enumerate() {
            rows.push(Row {
                pytorch_ms: torch.get(&name),
                kernel: name,
                ms_median: med,
                ms_min: min,
                ratio_to_softmax: med / sm_med,
                gflops: flops / (med * 1e-3) / 1e9,
                ratio_to_noise_off: timed.ratio.filter(|_| i == 1),
            });
        }
    }

    human!(
        json_on_stdout,
        "{:<24} {:>10} {:>10} {:>12} {:>9} {:>22}",
        "kernel",
        "ms median",
        "ms min",
        "vs softmax",
        "GFLOP/s",
        "PyTorch ms"
    );
    for r in &rows {
        let published = r
            .pytorch_ms
            .map(|p| format!("{p:>8.1} ({:.1}× ours)", p / r.ms_median))
            .unwrap_or_else(|| "-".into());
        human!(
            json_on_stdout,
            "{:<24} {:>10.2} {:>10.2} {:>11.2}× {:>9.1} {:>22}",
            r.kernel,
            r.ms_median,
            r.ms_min,
            r.ratio_to_softmax,
            r.gflops,
            published
        );
    }
    for r in &rows {
        if let Some(x) = r.ratio_to_noise_off {
            human!(
                json_on_stdout,
                "{}: {x:.2}× the time with noise off",
                r.kernel
            );
        }
    }
    let noise_free: Vec<ChipConfig> = chips
        .iter()
        .filter(|c| c.variation.is_off() && c.noise.is_off())
        .cloned()
        .collect();
    let train = train_rows(a.reps, shape, [&q, &k, &v], &noise_free, &torch)?;
    human!(
        json_on_stdout,
        "forward + backward (a training step's attention):\n{:<24} {:>10} {:>10} {:>12} {:>22}",
        "kernel",
        "ms median",
        "ms min",
        "vs softmax",
        "PyTorch ms"
    );
    for r in &train {
        let theirs = r
            .pytorch_ms
            .map(|p| format!("{p:>8.1} ({:.1}× ours)", p / r.ms_median))
            .unwrap_or_else(|| "-".into());
        human!(
            json_on_stdout,
            "{:<24} {:>10.2} {:>10.2} {:>11.2}× {:>22}",
            r.kernel,
            r.ms_median,
            r.ms_min,
            r.ratio_to_softmax,
            theirs
        );
    }
    human!(json_on_stdout, "(PyTorch figures: {})", torch.source);
    if let Some(path) = a.json {
        let report = Report {
            heads: a.heads,
            tokens: a.tokens,
            head_dim: d,
            threads,
            gemm_peak_gflops: peak,
            pytorch_source: torch.source,
            rows,
            train_rows: train,
        };
        crate::paths::write_output(&path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

#[derive(Serialize)]
struct EvalRow {
    prefix_reuse: bool,
    #[serde(flatten)]
    stats: gaincell_eval::ScoreStats,
    requests_per_s: f64,
}

fn eval(a: EvalBench) -> Result<()> {
    // `--json -`: the JSON alone on standard output, the human-readable lines on standard error.
    let json_on_stdout = a.json.as_deref().is_some_and(crate::paths::is_stdout);
    use gaincell_eval::evaluate::token_requests;
    use gaincell_eval::{score_requests, ScoreOptions};

    let tasks = super::eval::parse_tasks(&a.tasks)?;
    let dir = gaincell_eval::data_dir(a.data_dir.as_deref());
    let loaded = a.model.load()?;
    let model = &loaded.model;
    let prefix = super::eval::prefix_token(&loaded, a.prefix_token)?;
    // The requests of every task, group keys kept apart per task.
    let (mut seqs, mut keys) = (Vec::new(), Vec::new());
    for t in &tasks {
        let mut docs = t.load(&dir)?;
        docs.truncate(a.limit);
        let r = token_requests(&docs, &loaded.tokenizer, prefix, model.config.n_positions())?;
        let base = keys.len();
        keys.extend(r.keys.into_iter().map(|k| k.map(|k| k + base)));
        seqs.extend(r.seqs);
    }
    human!(json_on_stdout,
        "bench eval: {} requests from {} ({} docs each at most), model {} on {}, batch {}, {} threads",
        seqs.len(),
        tasks.iter().map(|t| t.name()).collect::<Vec<_>>().join(", "),
        a.limit,
        loaded.source,
        model.chip.name,
        a.batch,
        rayon::current_num_threads()
    );
    // Warm-up: one call, so neither mode pays for first-touch allocations.
    let n = a.batch.min(seqs.len());
    score_requests(
        model,
        &seqs[..n],
        &keys[..n],
        ScoreOptions {
            batch: a.batch,
            prefix_reuse: false,
        },
        &mut |_, _| {},
    )?;
    // Both modes in turn, `reps` times, so that load from other work on the machine falls on both alike.
    let mut runs: [Vec<gaincell_eval::ScoreStats>; 2] = [Vec::new(), Vec::new()];
    let mut scores = Vec::new();
    for rep in 0..a.reps.max(1) {
        for (m, prefix_reuse) in [false, true].into_iter().enumerate() {
            let what = if prefix_reuse { "reuse" } else { "no reuse" };
            let bar = super::eval::request_bar(&format!("{what} {}/{}", rep + 1, a.reps.max(1)));
            let opts = ScoreOptions {
                batch: a.batch,
                prefix_reuse,
            };
            let (s, stats) = score_requests(model, &seqs, &keys, opts, &mut |d, t| {
                bar.set_length(t as u64);
                bar.set_position(d as u64);
            })?;
            bar.finish_and_clear();
            if rep == 0 {
                scores.push(s);
            }
            runs[m].push(stats);
        }
    }
    let rows: Vec<EvalRow> = runs
        .into_iter()
        .zip([false, true])
        .map(|(mut r, prefix_reuse)| {
            r.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
            let stats = r.swap_remove(r.len() / 2);
            EvalRow {
                prefix_reuse,
                requests_per_s: stats.requests_per_s(),
                stats,
            }
        })
        .collect();
    let max_diff = scores[0]
        .iter()
        .zip(&scores[1])
        .map(|(x, y)| (x.loglikelihood - y.loglikelihood).abs())
        .fold(0.0f64, f64::max);
    let greedy_same = scores[0]
        .iter()
        .zip(&scores[1])
        .filter(|(x, y)| x.greedy == y.greedy)
        .count();
    human!(
        json_on_stdout,
        "{:<14} {:>9} {:>7} {:>16} {:>10} {:>12}",
        "mode",
        "requests",
        "calls",
        "tokens computed",
        "s (median)",
        "requests/s"
    );
    for r in &rows {
        human!(
            json_on_stdout,
            "{:<14} {:>9} {:>7} {:>16} {:>10.2} {:>12.1}",
            if r.prefix_reuse {
                "prefix reuse"
            } else {
                "no reuse"
            },
            r.stats.requests,
            r.stats.calls,
            r.stats.tokens_computed,
            r.stats.seconds,
            r.requests_per_s
        );
    }
    human!(json_on_stdout,
        "prefix reuse: {:.2}× the requests per second, {:.2}× fewer token positions; largest |Δ log-likelihood| {max_diff:.2e}, greedy flags equal for {greedy_same}/{}",
        rows[1].requests_per_s / rows[0].requests_per_s,
        rows[0].stats.tokens_computed as f64 / rows[1].stats.tokens_computed.max(1) as f64,
        seqs.len()
    );
    if let Some(path) = a.json {
        let out = serde_json::json!({
            "model": loaded.source,
            "chip": model.chip.name,
            "tasks": tasks.iter().map(|t| t.name()).collect::<Vec<_>>(),
            "limit": a.limit,
            "batch": a.batch,
            "threads": rayon::current_num_threads(),
            "reps": a.reps.max(1),
            "rows": rows,
            "speedup": rows[1].requests_per_s / rows[0].requests_per_s,
            "max_abs_loglikelihood_diff": max_diff,
        });
        crate::paths::write_output(&path, serde_json::to_string_pretty(&out)?)?;
    }
    Ok(())
}
