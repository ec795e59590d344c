//! One task on one model: documents → token requests → scores → the task's metrics and standard errors.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::Result;
use crate::lm::LogProbModel;
use crate::metrics;
use crate::request::{loglikelihood_tokens, rolling_tokens, Encoder, TokenSeq};
use crate::scorer::{score_requests, ScoreOptions, ScoreStats, Scored};
use crate::tasks::{Doc, Task};

#[derive(Debug, Clone, Copy)]
pub struct EvalOptions {
    pub score: ScoreOptions,
    /// Token that stands for an empty context and starts every rolling window (the end-of-text token).
    pub prefix_token: u32,
    /// Bootstrap resamples for the standard error of LAMBADA's perplexity (the harness's default: 100,000).
    pub bootstrap_iters: usize,
}

/// One reported figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricValue {
    pub name: &'static str,
    pub value: f64,
    /// `None` where the harness reports `N/A`.
    pub stderr: Option<f64>,
    pub higher_is_better: bool,
}

/// A task's figures and what computing them took.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    pub task: Task,
    pub metrics: Vec<MetricValue>,
    /// Documents evaluated.
    pub docs: usize,
    pub scoring: ScoreStats,
    /// Wall time of the whole task: tokenising, scoring, metrics.
    pub seconds: f64,
    /// Each document's scored requests, in request order (a rolling document is one request): what the
    /// per-sample log ([`crate::samples`]) is written from.
    #[serde(skip)]
    pub per_doc: Vec<Vec<Scored>>,
}

/// The token sequences of a task's requests.
#[derive(Debug, Clone, Default)]
pub struct Requests {
    pub seqs: Vec<TokenSeq>,
    /// Group key of each sequence: its document, for the first sequence of a multiple-choice request.
    pub keys: Vec<Option<usize>>,
    /// The request each sequence scores (a request may need several: rolling windows, long continuations).
    pub request: Vec<usize>,
    /// The document of each request.
    pub doc: Vec<usize>,
}

/// The token sequences of `docs`' requests.
pub fn token_requests(
    docs: &[Doc],
    enc: &dyn Encoder,
    prefix_token: u32,
    max_length: usize,
) -> Result<Requests> {
    let per_doc: Vec<Vec<Vec<TokenSeq>>> = docs
        .par_iter()
        .map(|d| match d {
            Doc::Choice { requests, .. } => requests
                .iter()
                .map(|r| loglikelihood_tokens(enc, r, prefix_token, max_length))
                .collect(),
            Doc::Continuation(r) => Ok(vec![loglikelihood_tokens(
                enc,
                r,
                prefix_token,
                max_length,
            )?]),
            Doc::Rolling { text, .. } => {
                Ok(vec![rolling_tokens(enc, text, prefix_token, max_length)?])
            }
        })
        .collect::<Result<_>>()?;
    let mut out = Requests::default();
    for (i, (d, reqs)) in docs.iter().zip(per_doc).enumerate() {
        let shares = matches!(d, Doc::Choice { .. });
        for seqs in reqs {
            for (k, s) in seqs.into_iter().enumerate() {
                out.keys.push((shares && k == 0).then_some(i));
                out.request.push(out.doc.len());
                out.seqs.push(s);
            }
            out.doc.push(i);
        }
    }
    Ok(out)
}

/// Evaluate `model` on `docs` of `task`. `progress(done, total)` counts requests scored.
pub fn evaluate(
    model: &dyn LogProbModel,
    enc: &dyn Encoder,
    task: Task,
    docs: &[Doc],
    opts: EvalOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TaskResult> {
    let started = Instant::now();
    let reqs = token_requests(docs, enc, opts.prefix_token, model.max_length())?;
    let (scored, stats) = score_requests(model, &reqs.seqs, &reqs.keys, opts.score, progress)?;
    // Pieces of one request add up: log-likelihoods summed, greedy only if every piece is.
    let mut per_request = vec![
        Scored {
            loglikelihood: 0.0,
            greedy: true
        };
        reqs.doc.len()
    ];
    for (s, &r) in scored.iter().zip(&reqs.request) {
        per_request[r].loglikelihood += s.loglikelihood;
        per_request[r].greedy &= s.greedy;
    }
    let mut per_doc: Vec<Vec<Scored>> = vec![Vec::new(); docs.len()];
    for (s, &d) in per_request.into_iter().zip(&reqs.doc) {
        per_doc[d].push(s);
    }
    let values = task_metrics(task, docs, &per_doc, opts.bootstrap_iters);
    Ok(TaskResult {
        task,
        metrics: values,
        docs: docs.len(),
        scoring: stats,
        seconds: started.elapsed().as_secs_f64(),
        per_doc,
    })
}

/// The task's metrics from each document's scored requests (in request order; a rolling document is one
/// request).
pub fn task_metrics(
    task: Task,
    docs: &[Doc],
    scored: &[Vec<Scored>],
    bootstrap_iters: usize,
) -> Vec<MetricValue> {
    let (mut acc, mut acc_norm, mut lls, mut words, mut bytes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (d, s) in docs.iter().zip(scored) {
        match d {
            Doc::Choice { choices, gold, .. } => {
                let ll: Vec<f64> = s.iter().map(|x| x.loglikelihood).collect();
                let chars: Vec<usize> = choices.iter().map(|c| c.chars().count()).collect();
                let (a, n) = metrics::multiple_choice(&ll, &chars, *gold);
                acc.push(a);
                acc_norm.push(n);
            }
            Doc::Continuation(_) => {
                lls.push(s[0].loglikelihood);
                acc.push(if s[0].greedy { 1.0 } else { 0.0 });
            }
            Doc::Rolling {
                words: w, bytes: b, ..
            } => {
                words.push((s[0].loglikelihood, *w));
                bytes.push((s[0].loglikelihood, *b));
            }
        }
    }
    task.metrics()
        .iter()
        .map(|m| {
            let (value, stderr) = match m.name {
                "acc" => (metrics::mean(&acc), metrics::mean_stderr(&acc)),
                "acc_norm" => (metrics::mean(&acc_norm), metrics::mean_stderr(&acc_norm)),
                "perplexity" => (
                    metrics::perplexity(&lls),
                    metrics::bootstrap_stderr(&metrics::perplexity, &lls, bootstrap_iters),
                ),
                "word_perplexity" => (metrics::weighted_perplexity(&words), None),
                "byte_perplexity" => (metrics::weighted_perplexity(&bytes), None),
                "bits_per_byte" => (metrics::bits_per_byte(&bytes), None),
                other => unreachable!("no aggregation for metric {other}"),
            };
            MetricValue {
                name: m.name,
                value,
                stderr,
                higher_is_better: m.higher_is_better,
            }
        })
        .collect()
}
