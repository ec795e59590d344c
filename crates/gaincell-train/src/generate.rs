//! Self-generated training data (data-free distillation): documents sampled from a model, written as the token
//! shards [`crate::data::prepare`] writes (`train.bin`, `val.bin`, `meta.json`, the tokenizer's file), so
//! `gaincell train` reads them unchanged, plus a provenance record `generation.json`.
//!
//! - **A document** starts from the tokenizer's start-of-document token ([`Tokenizer::bos`], e.g. a Llama's BOS;
//!   tokenizers without one, such as GPT-2's, start from [`Tokenizer::eot`]) and is sampled token by token with
//!   the model's incremental form on its chip ([`Decoder`], [`Sampler`]: softmax of logits / temperature over the
//!   top k, greedy at temperature 0) until the model emits the end-of-document token ([`Tokenizer::eot`]; for a
//!   llama2.c tokenizer that is BOS itself) or the document reaches `ctx` tokens (the start token and `ctx − 1`
//!   sampled ones, so the model never runs past `ctx` positions). Only ids the tokenizer knows are sampled (a
//!   model's vocabulary may be padded past the tokenizer's).
//! - **In the shards** a document is what `prepare` writes for a text file: its sampled tokens followed by the
//!   end-of-text token, also when it stopped at `ctx` (so documents stay separated); the start token is not
//!   written (it is the previous document's end-of-text token, or — Llama tokenizers — the BOS that `prepare`
//!   does not write either). A document is thus at most `ctx` tokens. With a tokenizer that has no end-of-text
//!   token, documents run to `ctx` and follow each other without a separator, as `prepare` writes them.
//! - **Reproducible**: document `i` is sampled with its own RNG, seeded from `(seed, i)` (ChaCha8 stream `i` of
//!   `seed`), so the output depends only on the model, the settings and the seed — never on the thread count.
//!   Documents are sampled in parallel (each with its own [`Decoder`]) in chunks whose results are taken in
//!   order; documents sampled past the budget are dropped.
//! - **Exactly `tokens` tokens** are written (train + val): documents are taken in order until the budget is
//!   reached, and the last one is cut at the budget (it then has no end-of-text token).
//! - **Split**: the last `val_fraction` of the documents (rounded, at least one, and at least one left for
//!   training) go to `val.bin`, the rest to `train.bin`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use gaincell_model::{Decoder, Model, Sampler, Tokenizer};
use rand::{RngCore, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{write_atomic, Meta, ShardWriter, Split};
use crate::error::{Result, TrainError};

/// The provenance record's file name.
pub const GENERATION: &str = "generation.json";

const FORMAT: &str = "gaincell-generation/1";

/// How to sample.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Tokens to write in all (train + val), ≥ 1.
    pub tokens: usize,
    /// Softmax temperature, ≥ 0 (0: greedy — every document is then the same).
    pub temperature: f32,
    /// Sample among the k most likely tokens (≥ 1); `None`: all.
    pub top_k: Option<usize>,
    pub seed: u64,
    /// The longest document, in tokens (2 ..= the model's positions); `None`: the model's positions.
    pub ctx: Option<usize>,
    /// Share of the documents held out for validation, in (0, 1).
    pub val_fraction: f64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            tokens: 0,
            temperature: 1.0,
            top_k: None,
            seed: 0,
            ctx: None,
            val_fraction: 0.05,
        }
    }
}

/// Where the model and tokenizer came from (for the provenance record), and the folder outputs must stay out of.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The model as given (a folder, a llama2.c file, `random:…`).
    pub model: String,
    /// The folder the model lives in (the file's folder for a llama2.c checkpoint); `None` for random weights.
    pub model_dir: Option<PathBuf>,
    /// The tokenizer as given; recorded in `meta.json` when it is GPT-2's built-in one (no file to save).
    pub tokenizer: String,
}

/// `generation.json`: what was sampled, from what, how.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Generation {
    pub format: String,
    /// `gaincell <version>`.
    pub tool: String,
    pub model: String,
    /// The model's config family (`gpt2`, `llama`).
    pub family: String,
    /// The chip the model ran on.
    pub chip: String,
    pub tokenizer: String,
    pub vocab_size: usize,
    pub temperature: f32,
    pub top_k: Option<usize>,
    pub seed: u64,
    pub ctx: usize,
    pub val_fraction: f64,
    /// The token every document is started from.
    pub start_token: u32,
    /// The end-of-document token (also the separator in the shards).
    pub eot: Option<u32>,
    /// Tokens written (train + val): the requested budget.
    pub tokens: usize,
    pub train_tokens: usize,
    pub val_tokens: usize,
    pub documents: usize,
    pub train_documents: usize,
    pub val_documents: usize,
    /// Documents the model ended itself (it emitted the end-of-document token).
    pub ended_by_model: usize,
    /// Documents stopped at `ctx` tokens.
    pub stopped_at_ctx: usize,
    /// Whether the last document was cut at the token budget.
    pub last_document_cut: bool,
    /// Tokens sampled in all, including documents sampled past the budget and dropped.
    pub sampled_tokens: usize,
    pub threads: usize,
    pub wall_s: f64,
    /// Written tokens per second of wall time.
    pub tokens_per_s: f64,
}

/// One sampled document: its sampled tokens (without the end-of-document token) and whether the model ended it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub tokens: Vec<u32>,
    pub ended_by_model: bool,
}

/// The seed of document `index`'s sampler: the first word of ChaCha8 stream `index` of `seed`.
pub fn document_seed(seed: u64, index: u64) -> u64 {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng.next_u64()
}

/// The start-of-document and end-of-document tokens of a tokenizer (see the module documentation).
pub fn document_tokens(tokenizer: &Tokenizer) -> Result<(u32, Option<u32>)> {
    let eot = tokenizer.eot();
    match tokenizer.bos().or(eot) {
        Some(start) => Ok((start, eot)),
        None => Err(TrainError::Input(
            "the tokenizer has neither a start-of-document nor an end-of-text token to start documents from: \
             pass one that has (--tokenizer)"
                .into(),
        )),
    }
}

/// Sample document `index` (at most `ctx` tokens with its start token); `on_token` is called once per sampled
/// token, the end-of-document token included.
#[allow(clippy::too_many_arguments)]
pub fn sample_document(
    model: &Model,
    vocab: usize,
    start: u32,
    eot: Option<u32>,
    opts: &GenerateOptions,
    ctx: usize,
    index: u64,
    on_token: &(dyn Fn() + Sync),
) -> Result<Document> {
    let mut sampler = Sampler::new(
        opts.temperature,
        opts.top_k,
        document_seed(opts.seed, index),
    )?;
    let mut dec = Decoder::new(model)?;
    let mut logits = dec.step(start)?;
    let mut tokens = Vec::new();
    loop {
        let next = sampler.sample(&logits[..vocab.min(logits.len())])?;
        on_token();
        if Some(next) == eot {
            return Ok(Document {
                tokens,
                ended_by_model: true,
            });
        }
        tokens.push(next);
        if tokens.len() + 1 >= ctx {
            return Ok(Document {
                tokens,
                ended_by_model: false,
            });
        }
        logits = dec.step(next)?;
    }
}

/// `path` made absolute with symbolic links resolved, also when its last components do not exist yet.
fn absolute(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            return rest.iter().rev().fold(c, |p, n| p.join(n));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return path,
        }
    }
}

/// Check the options against the model and tokenizer; returns the document length `ctx`.
pub fn validate(
    model: &Model,
    opts: &GenerateOptions,
    origin: &Origin,
    out: &Path,
) -> Result<usize> {
    let bad = |m: String| Err(TrainError::Input(m));
    if opts.tokens == 0 {
        return bad("tokens 0: give the number of tokens to generate (at least 1)".into());
    }
    if !opts.temperature.is_finite() || opts.temperature < 0.0 {
        return bad(format!(
            "temperature {}: give a finite number ≥ 0 (0 = greedy)",
            opts.temperature
        ));
    }
    if opts.top_k == Some(0) {
        return bad("top-k 0: give at least 1 (or leave it out to sample from every token)".into());
    }
    let positions = model.config.n_positions();
    let ctx = opts.ctx.unwrap_or(positions);
    if ctx < 2 {
        return bad(format!(
            "ctx {ctx}: a document needs at least 2 positions (its start token and one sampled token)"
        ));
    }
    if ctx > positions {
        return bad(format!(
            "ctx {ctx}: the model has {positions} positions; give at most {positions}"
        ));
    }
    if !(opts.val_fraction > 0.0 && opts.val_fraction < 1.0) {
        return bad(format!(
            "val fraction {}: give a share strictly between 0 and 1",
            opts.val_fraction
        ));
    }
    if let Some(dir) = &origin.model_dir {
        let (o, m) = (absolute(out), absolute(dir));
        if o.starts_with(&m) {
            return bad(format!(
                "output folder {}: it is {} the model folder {}; write the data elsewhere",
                out.display(),
                if o == m { "the same as" } else { "inside" },
                m.display()
            ));
        }
    }
    Ok(ctx)
}

/// Sample documents from `model` until `opts.tokens` tokens, split them and write the data folder `out`
/// (`train.bin`, `val.bin`, the tokenizer's file, `generation.json`, `meta.json`). `progress(sampled, total)` is
/// called as tokens are sampled (`sampled` may pass `total` by the documents sampled past the budget).
pub fn generate(
    model: &Model,
    tokenizer: &Tokenizer,
    origin: &Origin,
    opts: &GenerateOptions,
    out: &Path,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(Meta, Generation)> {
    let started = Instant::now();
    let ctx = validate(model, opts, origin, out)?;
    let (start, eot) = document_tokens(tokenizer)?;
    let vocab = tokenizer.vocab_size();
    let threads = rayon::current_num_threads();
    let budget = opts.tokens;
    let sampled = AtomicUsize::new(0);
    let on_token = || {
        let s = sampled.fetch_add(1, Ordering::Relaxed) + 1;
        progress(s, budget);
    };

    // Documents in the shards' form, in order, until the budget.
    let mut docs: Vec<Vec<u32>> = Vec::new();
    let (mut total, mut ended_by_model, mut stopped_at_ctx, mut cut) = (0usize, 0, 0, false);
    let mut next = 0u64;
    while total < budget {
        // As many documents as the budget still seems to need at the mean length so far (a full ctx before the
        // first chunk), at least one per thread, at most eight per thread. The chunk size changes only how much
        // is sampled and dropped, never what is written.
        let mean = if docs.is_empty() {
            ctx
        } else {
            total.div_ceil(docs.len()).max(1)
        };
        let size = (budget - total).div_ceil(mean).clamp(threads, 8 * threads) as u64;
        let chunk: Vec<Result<Document>> = (next..next + size)
            .into_par_iter()
            .map(|i| sample_document(model, vocab, start, eot, opts, ctx, i, &on_token))
            .collect();
        next += size;
        for d in chunk {
            let d = d?;
            let mut tokens = d.tokens;
            tokens.extend(eot);
            let room = budget - total;
            if tokens.len() > room {
                tokens.truncate(room);
                cut = true;
            } else if d.ended_by_model {
                ended_by_model += 1;
            } else {
                stopped_at_ctx += 1;
            }
            total += tokens.len();
            docs.push(tokens);
            if total == budget {
                break;
            }
        }
    }
    progress(budget, budget);
    if docs.len() < 2 {
        return Err(TrainError::Input(format!(
            "{budget} tokens made a single document: give more tokens (or a smaller ctx) so that both train and \
             val get at least one"
        )));
    }
    let n_val = ((docs.len() as f64 * opts.val_fraction).round() as usize).clamp(1, docs.len() - 1);
    let n_train = docs.len() - n_val;
    let train: Vec<u32> = docs[..n_train].concat();
    let val: Vec<u32> = docs[n_train..].concat();
    let mut writer = ShardWriter::new(out, tokenizer)?;
    writer.write(Split::Train, &train)?;
    writer.write(Split::Val, &val)?;
    let wall_s = started.elapsed().as_secs_f64();
    let record = Generation {
        format: FORMAT.into(),
        tool: format!("gaincell {}", env!("CARGO_PKG_VERSION")),
        model: origin.model.clone(),
        family: model.config.family().into(),
        chip: model.chip.name.clone(),
        tokenizer: tokenizer
            .file_name()
            .map_or_else(|| origin.tokenizer.clone(), str::to_string),
        vocab_size: vocab,
        temperature: opts.temperature,
        top_k: opts.top_k,
        seed: opts.seed,
        ctx,
        val_fraction: opts.val_fraction,
        start_token: start,
        eot,
        tokens: total,
        train_tokens: train.len(),
        val_tokens: val.len(),
        documents: docs.len(),
        train_documents: n_train,
        val_documents: n_val,
        ended_by_model,
        stopped_at_ctx,
        last_document_cut: cut,
        sampled_tokens: sampled.load(Ordering::Relaxed),
        threads,
        wall_s,
        tokens_per_s: total as f64 / wall_s.max(1e-9),
    };
    write_atomic(
        &out.join(GENERATION),
        serde_json::to_string_pretty(&record)
            .expect("json")
            .as_bytes(),
    )?;
    let meta = writer.finish(tokenizer, &origin.tokenizer, Vec::new(), Vec::new())?;
    Ok((meta, record))
}
