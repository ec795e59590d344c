//! Perplexity over a token stream with the usual strided-window convention: windows of `ctx` tokens advancing by
//! `stride`, each token scored once, with up to `ctx − stride` tokens of context carried from the previous window.

use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::error::{ModelError, Result};
use crate::model::Model;
use crate::ops::target_log_probs;

#[derive(Debug, Clone, Copy)]
pub struct PplOptions {
    /// Tokens per window (at most the model's positions).
    pub ctx: usize,
    /// Tokens the window advances by (≤ ctx).
    pub stride: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PplResult {
    pub tokens: usize,
    pub tokens_scored: usize,
    pub bytes: usize,
    /// Σ −ln p over scored tokens (nats).
    pub nll: f64,
    pub perplexity: f64,
    pub bits_per_byte: f64,
    pub seconds: f64,
    pub tokens_per_s: f64,
}

/// Run `f` on the values of a contiguous f32 CPU tensor in place (the logits of a window are hundreds of MB: no
/// copy).
fn with_f32_data<T>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<T>) -> Result<T> {
    let (storage, layout) = t.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (candle_core::Storage::Cpu(candle_core::CpuStorage::F32(v)), Some((a, b))) => f(&v[a..b]),
        _ => Err(ModelError::Input(
            "logits must be a contiguous f32 CPU tensor".into(),
        )),
    }
}

/// Perplexity of `model` on `ids` (the tokens of a text of `bytes` UTF-8 bytes). `progress(done, total)` is
/// called after each window with token counts.
pub fn perplexity(
    model: &Model,
    ids: &[u32],
    bytes: usize,
    opts: PplOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<PplResult> {
    if ids.len() < 2 {
        return Err(ModelError::Input(format!(
            "{} token(s): perplexity needs a text of at least 2 tokens",
            ids.len()
        )));
    }
    if opts.ctx < 2 || opts.ctx > model.config.n_positions() {
        return Err(ModelError::Input(format!(
            "ctx {}: give 2 to {} (the model's positions)",
            opts.ctx,
            model.config.n_positions()
        )));
    }
    if opts.stride == 0 || opts.stride > opts.ctx {
        return Err(ModelError::Input(format!(
            "stride {}: give 1 to ctx ({})",
            opts.stride, opts.ctx
        )));
    }
    let started = Instant::now();
    let n = ids.len();
    let (mut nll, mut scored, mut prev_end, mut begin) = (0.0f64, 0usize, 0usize, 0usize);
    loop {
        let end = (begin + opts.ctx).min(n);
        // Targets j in [first, end), predicted from the logits at j − 1 (relative to the window).
        let first = prev_end.max(begin + 1);
        if first < end {
            let window = Tensor::new(&ids[begin..end], &Device::Cpu)?.unsqueeze(0)?;
            // The output head (a third of GPT-2 124M's work at ctx 1024) only for the rows that are scored.
            let hidden = model.hidden(&window)?.squeeze(0)?; // [L, C]
            let rows = hidden.narrow(0, first - 1 - begin, end - first)?;
            let logits = model.head(&rows.contiguous()?)?; // [end − first, V]
            let picked = with_f32_data(&logits, |data| {
                target_log_probs(data, model.config.vocab_size(), &ids[first..end])
            })?;
            nll -= picked.iter().map(|&x| x as f64).sum::<f64>();
            scored += end - first;
        }
        progress(end, n);
        if end == n {
            break;
        }
        prev_end = end;
        begin += opts.stride;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(PplResult {
        tokens: n,
        tokens_scored: scored,
        bytes,
        nll,
        perplexity: (nll / scored as f64).exp(),
        bits_per_byte: nll / std::f64::consts::LN_2 / bytes.max(1) as f64,
        seconds,
        tokens_per_s: scored as f64 / seconds,
    })
}
