//! `gaincell tokenizer`: build a small byte-level BPE for models trained on our own corpus, and inspect one.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use gaincell_model::{train_bpe, Tokenizer};

#[derive(Subcommand)]
pub enum TokenizerCommand {
    /// Train a byte-level BPE (GPT-2's pre-tokenisation, `<|endoftext|>` special) on text files or folders.
    Train(TrainArgs),
    /// Print the ids and pieces a tokenizer gives a text.
    Encode(EncodeArgs),
}

#[derive(Args)]
pub struct TrainArgs {
    /// Text files, or folders whose `*.txt` files are read (recursively).
    #[arg(long, num_args = 1.., required = true)]
    input: Vec<PathBuf>,
    /// Entries in the vocabulary (≥ 258: 256 bytes, `<|endoftext|>` and one merge).
    #[arg(long, default_value_t = 8192)]
    vocab: usize,
    /// Read at most this many bytes in all (the first files first): BPE statistics settle long before 150 MB.
    #[arg(long, default_value_t = 50_000_000)]
    max_bytes: usize,
    /// Where to write tokenizer.json.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
pub struct EncodeArgs {
    /// `gpt2`, a tokenizer.json, or a llama2.c tokenizer.bin.
    #[arg(long, default_value = "gpt2")]
    tokenizer: String,
    /// The text.
    text: String,
}

pub fn run(cmd: TokenizerCommand) -> Result<()> {
    match cmd {
        TokenizerCommand::Train(a) => train(a),
        TokenizerCommand::Encode(a) => encode(a),
    }
}

/// `*.txt` / `*.raw` files under the inputs, sorted (so the same inputs give the same tokenizer).
pub fn text_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            files.extend(gaincell_train::data::text_files(input)?);
        } else if input.is_file() {
            files.push(input.clone());
        } else {
            bail!("{}: no such file or folder", input.display());
        }
    }
    Ok(files)
}

fn train(a: TrainArgs) -> Result<()> {
    let files = text_files(&a.input)?;
    let mut texts = Vec::new();
    let mut bytes = 0usize;
    for f in &files {
        if bytes >= a.max_bytes {
            break;
        }
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading {} (UTF-8 text expected)", f.display()))?;
        bytes += text.len();
        texts.push(text);
    }
    if bytes == 0 {
        bail!("the inputs hold no text");
    }
    println!(
        "training a {}-entry BPE on {} file(s), {:.1} MB …",
        a.vocab,
        texts.len(),
        bytes as f64 / 1e6
    );
    let started = std::time::Instant::now();
    let tok = train_bpe(texts.iter().flat_map(|t| t.lines()), a.vocab)?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    tok.save(&a.out)?;
    let sample: String = texts[0].chars().take(100_000).collect();
    let n = tok.encode(&sample)?.len();
    println!(
        "wrote {} ({} entries) in {:.1} s; {:.2} bytes per token on the first 100k characters",
        a.out.display(),
        tok.vocab_size(),
        started.elapsed().as_secs_f64(),
        sample.len() as f64 / n.max(1) as f64
    );
    Ok(())
}

fn encode(a: EncodeArgs) -> Result<()> {
    let tok = Tokenizer::load(&a.tokenizer)?;
    let ids = tok.encode(&a.text)?;
    for id in &ids {
        let piece = String::from_utf8_lossy(&tok.decode_bytes(&[*id])?).into_owned();
        println!("{id:>7}  {piece:?}");
    }
    println!("{} tokens, {} bytes", ids.len(), a.text.len());
    Ok(())
}
