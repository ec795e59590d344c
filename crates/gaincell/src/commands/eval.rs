//! `gaincell eval`: how well a model does on a chip. `ppl`: perplexity and bits per byte of a text file; `tasks`:
//! the zero-shot benchmark table (lm-evaluation-harness conventions) as a results JSON and a markdown table;
//! `compare`: results files side by side, or two per-sample logs document by document.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use gaincell_eval::results::{self, Skipped};
use gaincell_eval::samples;
use gaincell_eval::{data_dir, evaluate, EvalError, EvalOptions, ScoreOptions, Task};
use gaincell_model::{perplexity, text_stream, PplOptions, PplResult};
use indicatif::{ProgressBar, ProgressStyle};

use super::download;
use crate::model_args::{Loaded, ModelArgs};

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Perplexity of a text file (strided windows: each token scored once, with up to ctx − stride tokens of
    /// context), bits per byte and throughput.
    Ppl(PplArgs),
    /// Zero-shot tasks as lm-evaluation-harness scores them (wikitext, lambada_openai, hellaswag, piqa, arc_easy,
    /// arc_challenge, winogrande): a results JSON in the harness's shape and a markdown table beside it.
    ///
    /// Data is read from --data-dir, else $GAINCELL_DATA, else ~/.cache/gaincell/eval (`$XDG_CACHE_HOME/gaincell/eval`;
    /// `gaincell eval download` fills it, or --download here): wikitext-2-raw/wiki.test.raw,
    /// lambada/lambada_test.jsonl, hellaswag/hellaswag_val.jsonl (original) or hellaswag_val_full.txt,
    /// piqa/valid.jsonl + valid-labels.lst, arc-easy/arc_easy.jsonl and arc-challenge/arc_challenge.jsonl
    /// ({"query", "choices", "gold"} lines, or AI2's ARC-*-Test.jsonl, or HF ai2_arc JSON lines),
    /// winogrande/dev.jsonl. A task whose data is missing is skipped with a note saying where to get it.
    Tasks(TasksArgs),
    /// Download the tasks' data from the HuggingFace Hub (the datasets lm-evaluation-harness reads), verify it
    /// (pinned SHA-256 where known, item counts, a read by the task's reader) and convert it into the data folder.
    ///
    /// HF_ENDPOINT points at another Hub (a mirror); HF_HUB_OFFLINE=1 refuses to download. A file that fails a
    /// check is refused and nothing of it is written.
    Download(DownloadArgs),
    /// Results files side by side (ours or lm-evaluation-harness's): one column per file, then each file's
    /// difference from the first (in combined standard errors where both have one).
    ///
    /// Given two per-sample logs instead (`.jsonl`: `eval tasks --log-samples`, or lm-evaluation-harness's
    /// `samples_<task>_<date>.jsonl`), matches their documents by doc_id and reports the largest
    /// |Δ log-likelihood| of each field, the is_greedy flags, request strings, targets and hashes that differ, and
    /// the documents whose verdict (acc, acc_norm, …) differs. Exit status 1 when a verdict differs or the
    /// documents do not match (2 for unreadable input).
    Compare(CompareArgs),
}

#[derive(Args)]
pub struct TasksArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Tasks, comma-separated (harness names; `lambada` stands for lambada_openai).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "wikitext,lambada_openai,hellaswag,piqa,arc_easy,arc_challenge,winogrande"
    )]
    tasks: Vec<String>,
    /// Folder of the task data (see above).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Download the data of tasks that lack it first (as `gaincell eval download`).
    #[arg(long)]
    download: bool,
    /// Only the first N documents of each task.
    #[arg(long)]
    limit: Option<usize>,
    /// Most requests per model call.
    #[arg(long, default_value_t = 16, value_parser = crate::arg_checks::at_least_one)]
    batch: usize,
    /// Score every request on its own (no prefix shared by a document's requests computed once).
    #[arg(long)]
    no_prefix_reuse: bool,
    /// Bootstrap resamples for the standard error of LAMBADA's perplexity (the harness's default).
    #[arg(long, default_value_t = 100_000)]
    bootstrap_iters: usize,
    /// Token for an empty context and the start of rolling windows; default: the tokenizer's <|endoftext|>.
    #[arg(long)]
    prefix_token: Option<u32>,
    /// Results JSON; the markdown table is written beside it (same name, .md).
    #[arg(long)]
    out: PathBuf,
    /// Also write each task's per-sample log beside the results, as lm-evaluation-harness's --log_samples:
    /// `samples_<task>_<results file stem>.jsonl`, one line per document (its requests, each choice's
    /// [log-likelihood, is_greedy], its metrics).
    #[arg(long)]
    log_samples: bool,
}

#[derive(Args)]
pub struct DownloadArgs {
    /// Tasks, comma-separated (harness names; winogrande is not downloadable).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "wikitext,lambada_openai,hellaswag,piqa,arc_easy,arc_challenge"
    )]
    tasks: Vec<String>,
    /// Folder to put the data in (default: as `eval tasks` reads it).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct CompareArgs {
    /// Results files (`gaincell eval tasks --out`, or lm-evaluation-harness's results JSON), or two
    /// per-sample logs (`.jsonl`).
    #[arg(required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Also write the table (markdown) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub struct PplArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// UTF-8 text file, or a prepared data folder (`data prepare` / `data generate`: its validation split's
    /// token ids are scored as they are). A text file is read and tokenized as a stream (1 MiB at a time): the
    /// text is never held whole, only its token ids (4 bytes a token, so a whole file's ids without
    /// --max-tokens; with it, at most N of them). Text is cut only before a space that ends a word, where the
    /// pieces tokenize as the whole; a tokenizer that cannot promise that (an HF tokenizer.json with a `▁`
    /// prefix or a normaliser) reads the whole text first.
    #[arg(long)]
    data: PathBuf,
    /// Tokens per window (default: the model's positions).
    #[arg(long)]
    ctx: Option<usize>,
    /// Tokens the window advances by (default: ctx / 2).
    #[arg(long)]
    stride: Option<usize>,
    /// Score only the first N tokens of the file; reading stops once they are tokenized.
    #[arg(long)]
    max_tokens: Option<usize>,
    /// Write the result as JSON (`-`: to standard output, the other lines then go to standard error).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Chip instances: score the text once per seed, each setting the chip's [variation] and [noise] seeds,
    /// and report every instance and the mean ± std (e.g. 1,2,3,4,5). Needs a chip with noise or variation on.
    #[arg(long, value_delimiter = ',', value_name = "SEEDS")]
    chip_seeds: Vec<u64>,
}

pub fn run(cmd: EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::Ppl(a) => ppl(a),
        EvalCommand::Tasks(a) => tasks(a),
        EvalCommand::Download(a) => download_cmd(a),
        EvalCommand::Compare(a) => compare(a),
    }
}

fn ppl(a: PplArgs) -> Result<()> {
    // `--json -`: the JSON alone on standard output, the human-readable lines on standard error.
    let json_on_stdout = a.json.as_deref().is_some_and(crate::paths::is_stdout);
    let loaded;
    let (ids, bytes) = if a.data.is_dir() {
        // Token shards: the validation split, ids as prepared (only the first --max-tokens of them).
        let shards = gaincell_train::data::Shards::open(&a.data)?;
        let split = gaincell_train::data::Split::Val;
        let n = shards.len(split).min(a.max_tokens.unwrap_or(usize::MAX));
        let ids: Vec<u32> = (0..n).map(|i| shards.token(split, i)).collect();
        loaded = a.model.load()?;
        let bytes = loaded.tokenizer.decode_bytes(&ids)?.len();
        (ids, bytes)
    } else {
        let open = || {
            std::fs::File::open(&a.data).with_context(|| format!("reading {}", a.data.display()))
        };
        // Checked before the model loads: an empty file is the first thing to say.
        let has_text = text_stream::has_text(open()?, text_stream::BLOCK_BYTES)
            .with_context(|| format!("reading {}", a.data.display()))?;
        if !has_text {
            bail!("{} is empty: perplexity needs text", a.data.display());
        }
        let file = open()?;
        let size = file.metadata().map_or(0, |m| m.len());
        loaded = a.model.load()?;
        let bar = ProgressBar::new(size).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} tokenized  {bytes_per_sec}  ETA {eta}",
            )
            .expect("valid template"),
        );
        // A Llama's text starts with its BOS token, as in its training data; GPT-2's tokenizer has none.
        let t = text_stream::tokenize_stream(
            &loaded.tokenizer,
            file,
            text_stream::BLOCK_BYTES,
            a.max_tokens,
            &mut |read| bar.set_position(read as u64),
        )
        .with_context(|| format!("reading {}", a.data.display()))?;
        bar.finish_and_clear();
        (t.ids, t.bytes)
    };
    let model = &loaded.model;
    let ctx = a.ctx.unwrap_or(model.config.n_positions());
    let stride = a.stride.unwrap_or((ctx / 2).max(1));
    human!(json_on_stdout, "{}", super::chip::summary(&model.chip));
    if !a.chip_seeds.is_empty() {
        return ppl_over_instances(
            &a,
            &loaded,
            &ids,
            bytes,
            PplOptions { ctx, stride },
            json_on_stdout,
        );
    }
    let r = score(model, &ids, bytes, PplOptions { ctx, stride })?;
    human!(json_on_stdout,
        "perplexity {:.4}   bits/byte {:.4}   {} tokens scored ({} bytes)   {:.0} tokens/s   ctx {ctx} stride {stride}",
        r.perplexity, r.bits_per_byte, r.tokens_scored, r.bytes, r.tokens_per_s
    );
    if let Some(path) = a.json {
        let out = serde_json::json!({
            "model": loaded.source,
            "chip": model.chip.name,
            "data": a.data.display().to_string(),
            "ctx": ctx,
            "stride": stride,
            "result": r,
        });
        crate::paths::write_output(&path, serde_json::to_string_pretty(&out)?)?;
    }
    Ok(())
}

/// Perplexity with a progress bar; a NaN or infinite loss is an error naming the cause.
fn score(
    model: &gaincell_model::Model,
    ids: &[u32],
    bytes: usize,
    o: PplOptions,
) -> Result<PplResult> {
    let bar = ProgressBar::new(ids.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} tokens  {per_sec}  ETA {eta}")
            .expect("valid template"),
    );
    let r = perplexity(model, ids, bytes, o, &mut |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    // A NaN or infinite loss is a broken model, not a result: say so instead of printing it.
    let mean = r.nll / r.tokens_scored as f64;
    if !mean.is_finite() || !r.perplexity.is_finite() {
        let what = if mean.is_finite() {
            format!("is {mean:.1} nats, so the perplexity e^{mean:.1} overflows")
        } else if mean.is_nan() {
            "is NaN — the model's logits contain NaN".to_string()
        } else {
            "is infinite — the model's logits overflowed".to_string()
        };
        bail!(
            "eval ppl: the mean loss over {} tokens {what}; check the checkpoint (its weights) and the chip's \
             scalers",
            r.tokens_scored
        );
    }
    Ok(r)
}

/// `eval ppl --chip-seeds`: the same text on several instances of a noisy chip, each instance's [variation]
/// and [noise] seeds set to one seed; every instance, and the mean ± sample std of loss and perplexity.
fn ppl_over_instances(
    a: &PplArgs,
    loaded: &crate::model_args::Loaded,
    ids: &[u32],
    bytes: usize,
    o: PplOptions,
    json_on_stdout: bool,
) -> Result<()> {
    let chip = &loaded.model.chip;
    if chip.variation.is_off() && chip.noise.is_off() {
        bail!(
            "--chip-seeds: chip `{}` has no [variation] or [noise] on, so every instance is the same chip: give a \
             chip file with a σ above 0 (docs/chip-toml.md#noise)",
            chip.name
        );
    }
    let mut seeds = a.chip_seeds.clone();
    seeds.sort_unstable();
    seeds.dedup();
    if seeds.len() < 2 {
        bail!(
            "--chip-seeds {:?}: give at least two different seeds for a spread",
            a.chip_seeds
        );
    }
    let mut instances = Vec::new();
    for &seed in &seeds {
        let mut c = chip.clone();
        c.variation.seed = seed;
        c.noise.seed = seed;
        let m = loaded.model.with_chip(c)?;
        let r = score(&m, ids, bytes, o)?;
        human!(
            json_on_stdout,
            "chip seed {seed}: perplexity {:.4}   loss {:.4}   bits/byte {:.4}",
            r.perplexity,
            r.nll / r.tokens_scored as f64,
            r.bits_per_byte
        );
        instances.push((seed, r));
    }
    let stats = |x: Vec<f64>| -> (f64, f64) {
        let n = x.len() as f64;
        let m = x.iter().sum::<f64>() / n;
        (
            m,
            (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt(),
        )
    };
    let (loss_m, loss_s) = stats(
        instances
            .iter()
            .map(|(_, r)| r.nll / r.tokens_scored as f64)
            .collect(),
    );
    let (ppl_m, ppl_s) = stats(instances.iter().map(|(_, r)| r.perplexity).collect());
    human!(
        json_on_stdout,
        "over {} chip instances: perplexity {ppl_m:.4} ± {ppl_s:.4}   loss {loss_m:.4} ± {loss_s:.4} (mean ± \
         sample std)   {} tokens scored, ctx {} stride {}",
        instances.len(),
        instances[0].1.tokens_scored,
        o.ctx,
        o.stride
    );
    if let Some(path) = &a.json {
        let out = serde_json::json!({
            "model": loaded.source,
            "chip": chip.name,
            "data": a.data.display().to_string(),
            "ctx": o.ctx,
            "stride": o.stride,
            "instances": instances.iter().map(|(seed, r)| serde_json::json!({"seed": seed, "result": r})).collect::<Vec<_>>(),
            "loss_mean": loss_m, "loss_std": loss_s, "perplexity_mean": ppl_m, "perplexity_std": ppl_s,
        });
        crate::paths::write_output(path, serde_json::to_string_pretty(&out)?)?;
    }
    Ok(())
}

/// The tasks named on the command line, each once, in the table's order.
pub fn parse_tasks(names: &[String]) -> Result<Vec<Task>> {
    let mut t: Vec<Task> = names
        .iter()
        .filter(|n| !n.trim().is_empty())
        .map(|n| Task::parse(n))
        .collect::<gaincell_eval::Result<_>>()?;
    t.sort();
    t.dedup();
    if t.is_empty() {
        bail!("no tasks: give --tasks with one or more of wikitext, lambada_openai, hellaswag, piqa, arc_easy, arc_challenge, winogrande");
    }
    Ok(t)
}

/// The prefix token: the flag, else the tokenizer's end-of-text token.
pub fn prefix_token(loaded: &Loaded, flag: Option<u32>) -> Result<u32> {
    let id = match flag.or_else(|| loaded.tokenizer.eot()) {
        Some(id) => id,
        None => bail!(
            "the tokenizer has no <|endoftext|> token: give --prefix-token (the id that stands for an empty context)"
        ),
    };
    if id as usize >= loaded.model.config.vocab_size() {
        bail!(
            "prefix token {id} is outside the model's vocabulary ({})",
            loaded.model.config.vocab_size()
        );
    }
    Ok(id)
}

/// A progress bar counting requests, with rate and ETA.
pub fn request_bar(prefix: &str) -> ProgressBar {
    ProgressBar::new(0)
        .with_style(
            ProgressStyle::with_template(
                "{prefix:>14} {bar:40} {pos}/{len} requests  {per_sec}  ETA {eta}",
            )
            .expect("valid template"),
        )
        .with_prefix(prefix.to_string())
}

fn download_cmd(a: DownloadArgs) -> Result<()> {
    let wanted = parse_tasks(&a.tasks)?;
    let dir = data_dir(a.data_dir.as_deref());
    let written = download::download(&wanted, &dir)?;
    println!(
        "{} files in {} ({} tasks)",
        written.len(),
        dir.display(),
        wanted.len()
    );
    Ok(())
}

/// Why a task is skipped when its data is missing: the download command where the Hub answers (`online`), else
/// the file to place and where.
fn missing_reason(task: Task, dir: &Path, path: &Path, hint: &str, online: bool) -> String {
    match download::source(task) {
        Some(_) if online => {
            let flag = if dir == gaincell_eval::default_data_dir() {
                String::new()
            } else {
                format!(" --data-dir {}", dir.display())
            };
            format!(
                "no data at {}: run `gaincell eval download --tasks {}{flag}` (or {hint})",
                path.display(),
                task.name()
            )
        }
        _ => format!("no data at {}: {hint}", path.display()),
    }
}

fn tasks(a: TasksArgs) -> Result<()> {
    let started = Instant::now();
    let wanted = parse_tasks(&a.tasks)?;
    let dir = data_dir(a.data_dir.as_deref());
    if a.download {
        let missing: Vec<Task> = wanted
            .iter()
            .copied()
            .filter(|t| download::source(*t).is_some())
            .filter(|t| matches!(t.load(&dir), Err(EvalError::MissingData { .. })))
            .collect();
        if !missing.is_empty() {
            download::download(&missing, &dir)?;
        }
    }
    let mut online: Option<bool> = None;
    let loaded = a.model.load()?;
    let model = &loaded.model;
    let prefix = prefix_token(&loaded, a.prefix_token)?;
    println!("{}", super::chip::summary(&model.chip));
    println!(
        "model {}  ·  data {}  ·  batch {}  ·  prefix reuse {}  ·  {} threads",
        loaded.source,
        dir.display(),
        a.batch,
        if a.no_prefix_reuse { "off" } else { "on" },
        rayon::current_num_threads()
    );
    let opts = EvalOptions {
        score: ScoreOptions {
            batch: a.batch.max(1),
            prefix_reuse: !a.no_prefix_reuse,
        },
        prefix_token: prefix,
        bootstrap_iters: a.bootstrap_iters,
    };
    let (mut done, mut skipped, mut original) = (Vec::new(), Vec::new(), BTreeMap::new());
    let mut logs = Vec::new();
    for task in wanted {
        let mut docs = match task.load(&dir) {
            Ok(d) => d,
            Err(EvalError::MissingData { path, hint, .. }) => {
                let on = *online.get_or_insert_with(download::online);
                let reason = missing_reason(task, &dir, &path, &hint, on);
                println!("skipped {}: {reason}", task.name());
                skipped.push(Skipped { task, reason });
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        original.insert(task, docs.len());
        if let Some(n) = a.limit {
            docs.truncate(n);
        }
        let bar = request_bar(task.name());
        let r = evaluate(
            model,
            &loaded.tokenizer,
            task,
            &docs,
            opts,
            &mut |n, total| {
                bar.set_length(total as u64);
                bar.set_position(n as u64);
            },
        )
        .with_context(|| task.name())?;
        bar.finish_and_clear();
        if a.log_samples {
            let path = samples_path(&a.out, task);
            let log = samples::to_jsonl(&samples::samples(task, &docs, &r.per_doc));
            crate::paths::write_file_creating_folder(&path, log)?;
            logs.push(path);
        }
        let figures: Vec<String> = r
            .metrics
            .iter()
            .map(|m| match m.stderr {
                Some(se) => format!("{} {:.4} ± {se:.4}", m.name, m.value),
                None => format!("{} {:.4}", m.name, m.value),
            })
            .collect();
        println!(
            "{:<14} {}   ({} docs, {} requests, {:.1} requests/s, {:.1} s)",
            task.name(),
            figures.join(", "),
            r.docs,
            r.scoring.requests,
            r.scoring.requests_per_s(),
            r.seconds
        );
        done.push(r);
    }
    if done.is_empty() {
        bail!(
            "no task had its data in {}: {}",
            dir.display(),
            skipped
                .iter()
                .map(|s| s.reason.clone())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let config = serde_json::json!({
        "model": loaded.source,
        "chip": model.chip.name,
        "tokenizer": a.model.tokenizer.clone().unwrap_or_else(|| "default".into()),
        "data_dir": dir.display().to_string(),
        "batch_size": opts.score.batch,
        "limit": a.limit,
        "prefix_reuse": opts.score.prefix_reuse,
        "bootstrap_iters": a.bootstrap_iters,
        "max_length": model.config.n_positions(),
        "prefix_token": prefix,
        "num_fewshot": 0,
        "threads": rayon::current_num_threads(),
        "log_samples": a.log_samples,
    });
    let report = results::report(&done, &skipped, &original, config, seconds);
    crate::paths::write_file_creating_folder(&a.out, serde_json::to_string_pretty(&report)?)?;
    let md = results::markdown(&report);
    let md_path = a.out.with_extension("md");
    crate::paths::write_file_creating_folder(&md_path, &md)?;
    println!("\n{md}");
    println!(
        "wall time {seconds:.1} s; wrote {} and {}",
        a.out.display(),
        md_path.display()
    );
    for p in &logs {
        println!("per-sample log: {}", p.display());
    }
    Ok(())
}

/// Where `--log-samples` writes a task's log: beside the results file, `samples_<task>_<results stem>.jsonl`
/// (the harness names it `samples_<task>_<date>.jsonl` beside `results_<date>.json`).
pub fn samples_path(out: &Path, task: Task) -> PathBuf {
    let stem = out
        .file_stem()
        .map_or("results".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("samples_{}_{stem}.jsonl", task.name()))
}

/// Whether a file is a per-sample log: named `.jsonl`, or its first line is a JSON object with a `doc_id`.
fn is_samples_log(p: &Path) -> Result<bool> {
    if p.extension().is_some_and(|x| x == "jsonl") {
        return Ok(true);
    }
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    Ok(serde_json::from_str::<serde_json::Value>(first).is_ok_and(|v| v.get("doc_id").is_some()))
}

fn compare_samples(a: &CompareArgs) -> Result<()> {
    let [fa, fb] = &a.files[..] else {
        bail!(
            "per-sample logs are compared two at a time: give exactly two .jsonl files (got {})",
            a.files.len()
        );
    };
    let (sa, sb) = (samples::read(fa)?, samples::read(fb)?);
    let c = samples::compare(&sa, &sb);
    let text = c.render(&fa.display().to_string(), &fb.display().to_string());
    print!("{text}");
    if let Some(out) = &a.out {
        crate::paths::write_file_creating_folder(out, &text)?;
    }
    if c.differs() {
        use std::io::Write as _;
        println!("the logs differ (see above)");
        std::io::stdout().flush()?;
        std::process::exit(1);
    }
    println!("the logs agree on every document and verdict");
    Ok(())
}

fn compare(a: CompareArgs) -> Result<()> {
    let logs = a
        .files
        .iter()
        .map(|p| is_samples_log(p))
        .collect::<Result<Vec<_>>>()?;
    if logs.iter().all(|&l| l) {
        return compare_samples(&a);
    }
    if logs.iter().any(|&l| l) {
        bail!("mixed inputs: give either results files (.json) or two per-sample logs (.jsonl), not both");
    }
    let files = a
        .files
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", p.display()))?;
            if !v["results"].is_object() {
                bail!(
                    "{}: no `results` table (write one with `gaincell eval tasks --out`)",
                    p.display()
                );
            }
            let name = p.file_stem().map_or(p.display().to_string(), |s| {
                s.to_string_lossy().into_owned()
            });
            Ok((results::label(&v, &name), v))
        })
        .collect::<Result<Vec<_>>>()?;
    let table = results::compare(&files);
    print!("{table}");
    if let Some(out) = a.out {
        crate::paths::write_file_creating_folder(&out, &table)?;
    }
    Ok(())
}
