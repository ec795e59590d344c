//! `gaincell data prepare`: tokenise a corpus into train/val token shards for `gaincell train`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use gaincell_model::Tokenizer;
use gaincell_train::data;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Subcommand)]
pub enum DataCommand {
    /// Tokenise text files into `train.bin`, `val.bin` and `meta.json` (nanoGPT-style token shards).
    Prepare(PrepareArgs),
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

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Prepare(a) => prepare(a),
    }
}

fn prepare(a: PrepareArgs) -> Result<()> {
    let tok = Tokenizer::load(&a.tokenizer)?;
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
