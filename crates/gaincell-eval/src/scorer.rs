//! Batched scoring of many requests, each request's tokens computed once.
//!
//! Requests that carry the same group key (the choices of one multiple-choice document) are scored as one
//! [`Group`]: their longest common prefix (the context, and any leading tokens the continuations share) runs
//! through the model once, and each request's remainder runs after it. Requests without a key, or every
//! request when reuse is off, form groups of one. Groups go to the model longest shared prefix first (the
//! least padding for the parallel attention; the harness too orders by length), as many per call as fit in
//! `batch` requests. [`ScoreStats`] counts the token
//! positions computed against those the requests hold, which is what the reuse saves.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::lm::{Group, LogProbModel};
use crate::request::TokenSeq;

#[derive(Debug, Clone, Copy)]
pub struct ScoreOptions {
    /// Most requests per model call.
    pub batch: usize,
    /// Compute the prefix shared by requests of one group once.
    pub prefix_reuse: bool,
}

/// The harness's answer to a loglikelihood request: the continuation's log-likelihood (natural log, summed over
/// its tokens) and whether greedy decoding produces it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub loglikelihood: f64,
    pub greedy: bool,
}

/// What a scoring run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScoreStats {
    /// Sequences scored: one per loglikelihood request, several for a rolling document or a continuation longer
    /// than the model.
    pub requests: usize,
    /// Groups scored (as many as requests without reuse).
    pub groups: usize,
    /// Model calls.
    pub calls: usize,
    /// Token positions run through the model, padding excluded.
    pub tokens_computed: usize,
    /// Token positions of the requests' inputs: what scoring each on its own computes.
    pub tokens_requested: usize,
    pub seconds: f64,
}

impl ScoreStats {
    pub fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }
}

/// Score `seqs`; `keys[i]`: requests with the same `Some(key)` may share a prefix. `progress(done, total)` is
/// called after every model call, in requests.
pub fn score_requests(
    model: &dyn LogProbModel,
    seqs: &[TokenSeq],
    keys: &[Option<usize>],
    opts: ScoreOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<Scored>, ScoreStats)> {
    assert_eq!(seqs.len(), keys.len(), "one key per request");
    let started = Instant::now();
    let groups = plan(seqs, keys, opts.prefix_reuse);
    let mut out = vec![
        Scored {
            loglikelihood: 0.0,
            greedy: false
        };
        seqs.len()
    ];
    let mut stats = ScoreStats {
        requests: seqs.len(),
        groups: groups.len(),
        tokens_requested: seqs.iter().map(|s| s.input().len()).sum(),
        ..Default::default()
    };
    let mut done = 0;
    let mut start = 0;
    while start < groups.len() {
        let mut end = start + 1;
        let mut n = groups[start].members.len();
        while end < groups.len() && n + groups[end].members.len() <= opts.batch.max(1) {
            n += groups[end].members.len();
            end += 1;
        }
        let batch: Vec<Group> = groups[start..end]
            .iter()
            .map(|g| Group {
                shared: g.shared,
                seqs: g.members.iter().map(|&i| &seqs[i]).collect(),
            })
            .collect();
        let scores = model.score(&batch)?;
        for (g, per_seq) in groups[start..end].iter().zip(scores) {
            stats.tokens_computed += g.shared;
            for (&i, targets) in g.members.iter().zip(per_seq) {
                stats.tokens_computed += seqs[i].input().len() - g.shared;
                let loglikelihood: f64 = targets.iter().map(|t| t.logprob as f64).sum();
                // A NaN would compare false everywhere and silently pick a choice; an error names the request.
                if loglikelihood.is_nan() || loglikelihood == f64::INFINITY {
                    return Err(crate::error::EvalError::Input(format!(
                        "scoring: request {i} has log-likelihood {loglikelihood} (the model's logits are not finite): check the checkpoint and the chip with `gaincell eval ppl`"
                    )));
                }
                out[i] = Scored {
                    loglikelihood,
                    greedy: targets.iter().all(|t| t.greedy),
                };
            }
        }
        stats.calls += 1;
        done += n;
        progress(done, seqs.len());
        start = end;
    }
    stats.seconds = started.elapsed().as_secs_f64();
    Ok((out, stats))
}

/// Requests scored together and the length of the input prefix they share.
struct Planned {
    shared: usize,
    members: Vec<usize>,
    longest: usize,
}

/// Groups by key (with reuse) or one per request, longest first.
fn plan(seqs: &[TokenSeq], keys: &[Option<usize>], reuse: bool) -> Vec<Planned> {
    let alone = |i: usize| Planned {
        shared: seqs[i].input().len(),
        members: vec![i],
        longest: seqs[i].input().len(),
    };
    let mut groups = Vec::new();
    let mut by_key: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        match (reuse, k) {
            (true, Some(k)) => by_key.entry(*k).or_default().push(i),
            _ => groups.push(alone(i)),
        }
    }
    for members in by_key.into_values() {
        let first = seqs[members[0]].input();
        let shared = members
            .iter()
            .map(|&i| common_prefix(first, seqs[i].input()))
            .min()
            .unwrap_or(0);
        if shared == 0 || members.len() == 1 {
            groups.extend(members.into_iter().map(alone));
        } else {
            let longest = members
                .iter()
                .map(|&i| seqs[i].input().len())
                .max()
                .unwrap_or(0);
            groups.push(Planned {
                shared,
                members,
                longest,
            });
        }
    }
    // Longest shared prefix first: batches of similar prefixes pad the parallel attention least.
    groups.sort_by_key(|g| (std::cmp::Reverse((g.shared, g.longest)), g.members[0]));
    groups
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
