//! `gaincell generate`: text, token by token, as the chip would produce it (the K and V arrays written one column
//! per token, leaking, wrapping the window), streamed as it comes.

use std::io::Write;

use anyhow::{bail, Result};
use clap::Args;
use gaincell_model::{Decoder, Sampler};

use crate::model_args::ModelArgs;

#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The text to continue (a Llama's document starts with its BOS token, so "" generates from BOS alone, as
    /// llama2.c's `run` does without a prompt).
    #[arg(long, default_value = "")]
    prompt: String,
    /// Tokens to generate.
    #[arg(short = 'n', long, default_value_t = 50)]
    tokens: usize,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Sample among the k most likely tokens.
    #[arg(long)]
    top_k: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(a: GenerateArgs) -> Result<()> {
    let loaded = a.model.load()?;
    let (model, tok) = (&loaded.model, &loaded.tokenizer);
    let prompt = tok.encode_document(&a.prompt)?;
    if prompt.is_empty() {
        bail!("the prompt is empty and this tokenizer has no start-of-document token: give some text to continue");
    }
    let positions = model.config.n_positions();
    if prompt.len() >= positions {
        bail!(
            "the prompt is {} tokens but the model has {positions} positions: shorten it to at most {} tokens so there is room to generate",
            prompt.len(),
            positions - 1
        );
    }
    let mut sampler = Sampler::new(a.temperature, a.top_k, a.seed)?;
    let mut dec = Decoder::new(model)?;
    eprintln!("{}", super::chip::summary(&model.chip));
    let mut logits = Vec::new();
    for &id in &prompt {
        logits = dec.step(id)?;
    }
    let mut out = std::io::stdout().lock();
    write!(out, "{}", a.prompt)?;
    // What is printed is the decoded whole sequence past the decoded prompt (a sentencepiece tokenizer drops the
    // space that starts the first word after BOS).
    let mut generated = prompt.clone();
    let mut printed = tok.decode_bytes(&prompt)?.len();
    let started = std::time::Instant::now();
    for _ in 0..a.tokens {
        let next = sampler.sample(&logits)?;
        if Some(next) == tok.eot() {
            break;
        }
        generated.push(next);
        // Print whatever became valid UTF-8 (a character may span tokens).
        let bytes = tok.decode_bytes(&generated)?;
        let valid = match std::str::from_utf8(&bytes[printed..]) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        out.write_all(&bytes[printed..printed + valid])?;
        out.flush()?;
        printed += valid;
        if dec.position() >= model.config.n_positions() {
            eprintln!(
                "\n[stopped: the model has {} positions]",
                model.config.n_positions()
            );
            break;
        }
        logits = dec.step(next)?;
    }
    writeln!(out)?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "[{} tokens in {:.2} s, {:.1} tokens/s]",
        generated.len() - prompt.len(),
        secs,
        (generated.len() - prompt.len()) as f64 / secs
    );
    Ok(())
}
