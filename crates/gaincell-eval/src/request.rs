//! Requests as lm-evaluation-harness makes them, and the tokens its HuggingFace model scores for them.
//!
//! A *loglikelihood* request is a context and a continuation (strings). Trailing whitespace of the context moves
//! to the front of the continuation, the pair is encoded as `encode(context + continuation)` split after the
//! context's own tokens (`HFLM._encode_pair`), an empty context becomes the prefix token (end-of-text), and the
//! tokens are cut to the last `max_length + 1` (`HFLM._loglikelihood_tokens`). A *rolling* request (a whole
//! document) is cut into the disjoint windows of `utils.get_rolling_token_windows` + `make_disjoint_window`
//! with `context_len = 1`, each window then scored as a loglikelihood request.
//!
//! One case the harness cannot score (its slicing breaks): a continuation longer than the model's positions,
//! which short-context models meet (PIQA's longest solutions on a 128-position model). Such a continuation is
//! scored in pieces of `max_length / 2` targets, each piece seeing the `max_length` tokens before its end: every
//! token once, with at least half a window of context, as gaincell's strided perplexity scores a text.

use crate::error::{EvalError, Result};

/// A context and the continuation whose log-likelihood is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub context: String,
    pub continuation: String,
}

impl Request {
    pub fn new(context: impl Into<String>, continuation: impl Into<String>) -> Self {
        Request {
            context: context.into(),
            continuation: continuation.into(),
        }
    }
}

/// Token ids of one request as the model sees them: `tokens[first..]` are the targets, token `j` predicted from
/// `tokens[..j]`; the model's input is `tokens[..len − 1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSeq {
    pub tokens: Vec<u32>,
    pub first: usize,
}

impl TokenSeq {
    /// The model's input: every token but the last.
    pub fn input(&self) -> &[u32] {
        &self.tokens[..self.tokens.len() - 1]
    }

    /// Number of targets.
    pub fn targets(&self) -> usize {
        self.tokens.len() - self.first
    }
}

/// Text → token ids.
pub trait Encoder: Sync {
    fn encode(&self, text: &str) -> Result<Vec<u32>>;
}

impl Encoder for gaincell_model::Tokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(gaincell_model::Tokenizer::encode(self, text)?)
    }
}

/// `HFLM._encode_pair`: context and continuation tokens, the context's trailing whitespace moved to the
/// continuation, the continuation's tokens being those of `context + continuation` after the context's own.
pub fn encode_pair(
    enc: &dyn Encoder,
    context: &str,
    continuation: &str,
) -> Result<(Vec<u32>, Vec<u32>)> {
    let kept = context.trim_end().len();
    let (context, moved) = context.split_at(kept);
    let continuation = format!("{moved}{continuation}");
    let whole = enc.encode(&format!("{context}{continuation}"))?;
    let ctx = enc.encode(context)?;
    let n = ctx.len().min(whole.len());
    Ok((ctx, whole[n..].to_vec()))
}

/// The tokens the harness scores for a loglikelihood request: one sequence, or several pieces for a
/// continuation longer than the model (see the module doc); the request's log-likelihood is their sum.
pub fn loglikelihood_tokens(
    enc: &dyn Encoder,
    req: &Request,
    prefix_token: u32,
    max_length: usize,
) -> Result<Vec<TokenSeq>> {
    let (ctx, cont) = if req.context.is_empty() {
        (vec![prefix_token], enc.encode(&req.continuation)?)
    } else {
        encode_pair(enc, &req.context, &req.continuation)?
    };
    if cont.len() <= max_length {
        return Ok(vec![truncate(ctx, cont, max_length)?]);
    }
    if max_length < 2 {
        return Err(EvalError::Input(format!(
            "a model of {max_length} position(s) cannot score a continuation of {} tokens",
            cont.len()
        )));
    }
    let first = ctx.len();
    let mut full = ctx;
    full.extend(cont);
    let stride = max_length / 2;
    Ok((first..full.len())
        .step_by(stride)
        .map(|a| {
            let b = (a + stride).min(full.len());
            let start = (b - 1).saturating_sub(max_length);
            TokenSeq {
                tokens: full[start..b].to_vec(),
                first: a - start,
            }
        })
        .collect())
}

/// `(context + continuation)[-(max_length + 1):]`, the continuation's tokens the targets.
pub fn truncate(ctx: Vec<u32>, cont: Vec<u32>, max_length: usize) -> Result<TokenSeq> {
    if cont.is_empty() {
        return Err(EvalError::Input(
            "a continuation without tokens: nothing to score".into(),
        ));
    }
    if cont.len() > max_length {
        return Err(EvalError::Input(format!(
            "a continuation of {} tokens does not fit the model's {max_length} positions",
            cont.len()
        )));
    }
    let mut tokens = ctx;
    let n_cont = cont.len();
    tokens.extend(cont);
    let cut = tokens.len().saturating_sub(max_length + 1);
    tokens.drain(..cut);
    Ok(TokenSeq {
        first: tokens.len() - n_cont,
        tokens,
    })
}

/// `utils.get_rolling_token_windows`: `(input, predicted)` pairs covering every token once.
pub fn rolling_windows(
    tokens: &[u32],
    prefix_token: u32,
    max_seq_len: usize,
    context_len: usize,
) -> Vec<(Vec<u32>, Vec<u32>)> {
    assert!(1 <= context_len && context_len <= max_seq_len);
    let mut out = Vec::new();
    if tokens.is_empty() {
        return out;
    }
    let pred_len = max_seq_len - context_len + 1;
    let first = max_seq_len.min(tokens.len());
    let mut input = vec![prefix_token];
    input.extend_from_slice(&tokens[..first - 1]);
    out.push((input, tokens[..first].to_vec()));
    let mut predicted = first;
    while predicted < tokens.len() {
        let window_pred_len = (tokens.len() - predicted).min(pred_len);
        let end = predicted + window_pred_len;
        out.push((
            tokens[end - max_seq_len - 1..end - 1].to_vec(),
            tokens[end - window_pred_len..end].to_vec(),
        ));
        predicted += window_pred_len;
    }
    out
}

/// `utils.make_disjoint_window`: the input without the tokens it shares with the predicted ones.
pub fn make_disjoint_window((a, b): (Vec<u32>, Vec<u32>)) -> (Vec<u32>, Vec<u32>) {
    let keep = a.len() - (b.len() - 1);
    (a[..keep].to_vec(), b)
}

/// The loglikelihood requests (as tokens) of one document scored whole (`HFLM.loglikelihood_rolling`).
pub fn rolling_tokens(
    enc: &dyn Encoder,
    text: &str,
    prefix_token: u32,
    max_length: usize,
) -> Result<Vec<TokenSeq>> {
    let tokens = enc.encode(text)?;
    rolling_windows(&tokens, prefix_token, max_length, 1)
        .into_iter()
        .map(|w| {
            let (ctx, cont) = make_disjoint_window(w);
            truncate(ctx, cont, max_length)
        })
        .collect()
}
