//! `gaincell data prepare`: tokenise a corpus into train/val token shards for `gaincell train`; `gaincell data
//! generate`: the same shards sampled from a model (data-free distillation, see [`gaincell_train::generate`]).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};
use gaincell_model::Tokenizer;
use gaincell_train::data;
use gaincell_train::generate::{self, GenerateOptions, Origin};
use indicatif::{ProgressBar, ProgressStyle};

use crate::model_args::ModelArgs;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Tokenise text files into `train.bin`, `val.bin` and `meta.json` (nanoGPT-style token shards).
    Prepare(PrepareArgs),
    /// Sample documents from a model into the same shards `prepare` writes (data-free distillation).
    ///
    /// Each document starts from the tokenizer's start-of-document token (a Llama's BOS; GPT-2-family
    /// tokenizers have none and start from <|endoftext|>) and is sampled token by token on the model's chip until
    /// the model emits the end-of-document token (<|endoftext|>; BOS for llama2.c tokenizers) or the document
    /// reaches --ctx tokens. In the shards a document is its sampled tokens followed by the end-of-text token, as
    /// `prepare` writes a text file (also when it stopped at --ctx). Document i is sampled with its own RNG seeded
    /// from (--seed, i): the output is byte-identical for a seed, whatever the thread count. Exactly --tokens
    /// tokens are written, the last document cut at the budget; the last --val-fraction of the documents (at
    /// least one) go to val.bin. `generation.json` records the model, the sampling settings and the counts.
    Generate(GenerateDataArgs),
}

#[derive(Args)]
pub struct PrepareArgs {
    /// `gpt2`, or a tokenizer.json (e.g. from `gaincell tokenizer train`).
    #[arg(long)]
    tokenizer: String,
    /// Text files or folders; a single folder with `train/` and `val/` keeps its split.
    #[arg(long, num_args = 1.., required = true)]
    input: Vec<PathBuf>,
    /// Share of the files held out for validation when the inputs have no train/val split.
    #[arg(long, default_value_t = 0.05)]
    val_fraction: f64,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct GenerateDataArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Tokens to write in all (train + val).
    #[arg(long)]
    tokens: usize,
    /// Sampling temperature (0: greedy — every document is then the same).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Sample among the k most likely tokens (default: all).
    #[arg(long)]
    top_k: Option<usize>,
    /// Document i is sampled with the RNG seeded from (seed, i).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The longest document: its start token and at most ctx − 1 sampled ones, so at most ctx tokens in the
    /// shards with its end-of-text token (2 to the model's positions; default: the model's positions).
    #[arg(long)]
    ctx: Option<usize>,
    /// Share of the documents (the last ones, at least one) held out for validation.
    #[arg(long, default_value_t = 0.05)]
    val_fraction: f64,
    /// Output folder (not inside the model's).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Prepare(a) => prepare(a),
        DataCommand::Generate(a) => generate_data(a),
    }
}

fn generate_data(a: GenerateDataArgs) -> Result<()> {
    let opts = GenerateOptions {
        tokens: a.tokens,
        temperature: a.temperature,
        top_k: a.top_k,
        seed: a.seed,
        ctx: a.ctx,
        val_fraction: a.val_fraction,
    };
    let loaded = a.model.load()?;
    let (model, tok) = (&loaded.model, &loaded.tokenizer);
    let source = Path::new(&loaded.source);
    let origin = Origin {
        model: std::fs::canonicalize(source)
            .map_or_else(|_| loaded.source.clone(), |p| p.display().to_string()),
        model_dir: if a.model.model.starts_with("random:") {
            None
        } else if source.is_file() {
            source.parent().map(Path::to_path_buf)
        } else {
            Some(source.to_path_buf())
        },
        tokenizer: match (tok.file_name(), &a.model.tokenizer) {
            (None, _) => "gpt2".into(),
            (Some(_), Some(t)) => t.clone(),
            (Some(_), None) => "the model's".into(),
        },
    };
    // Bad settings fail before anything is sampled or written.
    let ctx = generate::validate(model, &opts, &origin, &a.out)?;
    generate::document_tokens(tok)?;
    println!("{}", super::chip::summary(&model.chip));
    println!(
        "sampling {} tokens from {} ({}), documents of at most {ctx} tokens, temperature {}{}, seed {}, {} threads",
        a.tokens,
        loaded.source,
        model.config.family(),
        a.temperature,
        a.top_k.map_or_else(String::new, |k| format!(", top-k {k}")),
        a.seed,
        rayon::current_num_threads()
    );
    let bar = ProgressBar::new(a.tokens as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} tokens  {per_sec}  ETA {eta}")
            .expect("valid template"),
    );
    let (meta, record) = generate::generate(model, tok, &origin, &opts, &a.out, &|done, total| {
        bar.set_position(done.min(total) as u64);
    })?;
    bar.finish_and_clear();
    println!(
        "wrote {}: {} documents ({} ended by the model, {} stopped at ctx{}), {} train tokens in {} documents, {} \
         validation tokens in {} ({}); {:.1} s, {:.0} tokens/s",
        a.out.display(),
        record.documents,
        record.ended_by_model,
        record.stopped_at_ctx,
        if record.last_document_cut {
            ", the last cut at the budget"
        } else {
            ""
        },
        meta.train_tokens,
        record.train_documents,
        meta.val_tokens,
        record.val_documents,
        meta.dtype,
        record.wall_s,
        record.tokens_per_s
    );
    Ok(())
}

fn prepare(a: PrepareArgs) -> Result<()> {
    for input in &a.input {
        crate::paths::refuse_overlap("--out", &a.out, &[("--input", input)])?;
    }
    let tok = Tokenizer::load(&a.tokenizer)?;
    if !(a.val_fraction > 0.0 && a.val_fraction < 1.0) {
        anyhow::bail!(
            "--val-fraction {}: give a share strictly between 0 and 1",
            a.val_fraction
        );
    }
    let (train, val) = data::split_inputs(&a.input, a.val_fraction)?;
    println!(
        "tokenising {} train and {} validation file(s) with a {}-entry vocabulary",
        train.len(),
        val.len(),
        tok.vocab_size()
    );
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}")
            .expect("valid template"),
    );
    let meta = data::prepare(&tok, &a.tokenizer, &train, &val, &a.out, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    println!(
        "wrote {}: {} train tokens, {} validation tokens ({})",
        a.out.display(),
        meta.train_tokens,
        meta.val_tokens,
        meta.dtype
    );
    Ok(())
}
