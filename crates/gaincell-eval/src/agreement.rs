//! How closely a model on a chip follows a reference model (the software one) on a token stream: perplexity,
//! the mean KL divergence of its next-token distribution from the reference's, and top-1 agreement. Also the
//! reference stream itself when no text is given: documents sampled from the reference model with a seed, so the
//! stream is reproducible and needs no data files.

use candle_core::{Device, Tensor};
use gaincell_model::{Decoder, Model, Sampler};
use serde::Serialize;

use crate::error::{EvalError, Result};

/// Next-token log-probabilities of a model over a stream, scored in non-overlapping windows of `ctx` tokens: in
/// each window the token at j is predicted from the tokens before it in that window (the first token of a window
/// is context only).
#[derive(Debug, Clone)]
pub struct NextTokenLogProbs {
    pub vocab: usize,
    /// Row r holds the distribution that predicts `targets[r]`.
    pub log_probs: Vec<f32>,
    pub targets: Vec<u32>,
}

/// The windows [`next_token_log_probs`] scores: `(start, end)` of each, all of `ctx` tokens but the last.
pub fn windows(n: usize, ctx: usize) -> Vec<(usize, usize)> {
    (0..n)
        .step_by(ctx.max(1))
        .map(|s| (s, (s + ctx).min(n)))
        .filter(|(s, e)| e - s >= 2)
        .collect()
}

/// Run `model` over `ids` in windows of `ctx` tokens (a batch of the full windows at once, then the remainder).
pub fn next_token_log_probs(model: &Model, ids: &[u32], ctx: usize) -> Result<NextTokenLogProbs> {
    if ctx < 2 || ctx > model.config.n_positions() {
        return Err(EvalError::Input(format!(
            "ctx {ctx}: give 2 to {} (the model's positions)",
            model.config.n_positions()
        )));
    }
    if let Some(&bad) = ids
        .iter()
        .find(|&&t| t as usize >= model.config.vocab_size())
    {
        return Err(EvalError::Input(format!(
            "token id {bad} is outside the model's vocabulary of {}: was the text encoded with another tokenizer?",
            model.config.vocab_size()
        )));
    }
    let all = windows(ids.len(), ctx);
    if all.is_empty() {
        return Err(EvalError::Input(format!(
            "{} token(s): scoring needs a stream of at least 2 tokens",
            ids.len()
        )));
    }
    let vocab = model.config.vocab_size();
    let (full, rest): (Vec<_>, Vec<_>) = all.iter().partition(|(s, e)| e - s == ctx);
    let mut log_probs = Vec::with_capacity((ids.len() - all.len()) * vocab);
    let mut targets = Vec::with_capacity(ids.len() - all.len());
    for group in [full, rest] {
        let Some(&(s0, e0)) = group.first() else {
            continue;
        };
        let len = e0 - s0;
        let flat: Vec<u32> = group
            .iter()
            .flat_map(|&(s, e)| ids[s..e].iter().copied())
            .collect();
        let x = Tensor::from_vec(flat, (group.len(), len), &Device::Cpu)?;
        let lp = Model::log_softmax(&model.forward(&x)?)?;
        let lp: Vec<f32> = lp.flatten_all()?.to_vec1()?;
        for (w, &(s, e)) in group.iter().enumerate() {
            // Rows 0..len−1 of window w predict its tokens 1..len.
            let base = w * len * vocab;
            log_probs.extend_from_slice(&lp[base..base + (len - 1) * vocab]);
            targets.extend_from_slice(&ids[s + 1..e]);
        }
    }
    Ok(NextTokenLogProbs {
        vocab,
        log_probs,
        targets,
    })
}

/// A model's quality on a stream and its agreement with the reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    pub tokens_scored: usize,
    /// Mean −ln p(target) (nats).
    pub nll: f64,
    pub perplexity: f64,
    /// Mean over positions of KL(p_reference ‖ p_model) (nats).
    pub kl: f64,
    /// Fraction of positions where the model's most likely token is the reference's.
    pub top1_agreement: f64,
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// Compare `model` with `reference` (both from [`next_token_log_probs`] on the same stream and ctx).
pub fn agreement(reference: &NextTokenLogProbs, model: &NextTokenLogProbs) -> Result<Agreement> {
    if reference.vocab != model.vocab || reference.targets != model.targets {
        return Err(EvalError::Input(
            "the two models were scored on different streams or vocabularies".into(),
        ));
    }
    let v = model.vocab;
    let n = model.targets.len();
    let (mut nll, mut kl, mut same) = (0.0f64, 0.0f64, 0usize);
    for (r, &t) in model.targets.iter().enumerate() {
        let (p, q) = (
            &reference.log_probs[r * v..(r + 1) * v],
            &model.log_probs[r * v..(r + 1) * v],
        );
        nll -= q[t as usize] as f64;
        kl += p
            .iter()
            .zip(q)
            .map(|(&lp, &lq)| (lp as f64).exp() * (lp as f64 - lq as f64))
            .sum::<f64>();
        same += usize::from(argmax(p) == argmax(q));
    }
    let nll = nll / n as f64;
    Ok(Agreement {
        tokens_scored: n,
        nll,
        perplexity: nll.exp(),
        kl: kl / n as f64,
        top1_agreement: same as f64 / n as f64,
    })
}

/// `docs` documents of `len` tokens sampled from `model` (temperature 1, the whole vocabulary), each starting
/// from `start` (e.g. the end-of-text token) and generated token by token; document d uses the seed `seed + d`.
/// Returns the documents concatenated, each led by `start`.
pub fn sample_stream(
    model: &Model,
    start: u32,
    docs: usize,
    len: usize,
    seed: u64,
) -> Result<Vec<u32>> {
    if len < 2 || len > model.config.n_positions() {
        return Err(EvalError::Input(format!(
            "documents of {len} tokens: give 2 to {} (the model's positions)",
            model.config.n_positions()
        )));
    }
    let mut out = Vec::with_capacity(docs * len);
    for d in 0..docs {
        let mut sampler = Sampler::new(1.0, None, seed.wrapping_add(d as u64))?;
        let mut dec = Decoder::new(model)?;
        let mut token = start;
        out.push(token);
        for _ in 1..len {
            let logits = dec.step(token)?;
            token = sampler.sample(&logits)?;
            out.push(token);
        }
    }
    Ok(out)
}
