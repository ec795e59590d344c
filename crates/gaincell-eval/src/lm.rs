//! The model as the harness sees it: log-probabilities of target tokens, scored in groups of sequences that
//! share a prefix. [`LogProbModel`] is implemented for [`Model`] (the prefix run once with
//! [`Model::prefill`], each sequence's remainder with [`Model::extend`], the output head on the target rows only)
//! and, in the tests, by toy models whose log-probabilities are known in closed form.

use candle_core::D;
use gaincell_model::Model;

use crate::error::{EvalError, Result};
use crate::request::TokenSeq;

/// One target token: its log-probability (natural log) and whether it is the model's most likely token there
/// (the first one on ties, as `argmax`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenScore {
    pub logprob: f32,
    pub greedy: bool,
}

/// Sequences scored together: their first `shared` tokens are equal and may be computed once. `shared` is at
/// least 1 and at most the shortest input (`tokens.len() − 1`).
#[derive(Debug, Clone)]
pub struct Group<'a> {
    pub shared: usize,
    pub seqs: Vec<&'a TokenSeq>,
}

/// A causal language model that scores target tokens.
pub trait LogProbModel: Sync {
    /// Most tokens one input may hold.
    fn max_length(&self) -> usize;

    /// Scores of every target of every sequence of every group: `out[g][s][i]` is target `first + i` of sequence
    /// `s` of group `g`.
    fn score(&self, groups: &[Group]) -> Result<Vec<Vec<Vec<TokenScore>>>>;
}

/// Check the promise a [`Group`] makes (for implementations).
pub fn check_group(g: &Group) -> Result<()> {
    let bad = |m: String| Err(EvalError::Input(format!("bad group: {m}")));
    let Some(first) = g.seqs.first() else {
        return bad("no sequences".into());
    };
    for s in &g.seqs {
        if s.first == 0 || s.first >= s.tokens.len() {
            return bad(format!(
                "targets from {} of {} tokens",
                s.first,
                s.tokens.len()
            ));
        }
        if g.shared == 0
            || g.shared > s.input().len()
            || s.tokens[..g.shared] != first.tokens[..g.shared]
        {
            return bad(format!("the first {} tokens are not shared", g.shared));
        }
    }
    Ok(())
}

impl LogProbModel for Model {
    fn max_length(&self) -> usize {
        self.config.n_positions()
    }

    fn score(&self, groups: &[Group]) -> Result<Vec<Vec<Vec<TokenScore>>>> {
        groups.iter().try_for_each(check_group)?;
        // Where each target's logits come from: (in the prefill?, row index in that output).
        let mut source: Vec<Vec<Vec<(bool, usize)>>> = Vec::with_capacity(groups.len());
        let (mut pre_rows, mut ext_rows, mut ext_items) = (Vec::new(), Vec::new(), Vec::new());
        let (mut n_pre, mut n_ext) = (0, 0);
        for (gi, g) in groups.iter().enumerate() {
            // Logit rows the targets need within the shared prefix, ascending, each once.
            let mut rows: Vec<usize> = g
                .seqs
                .iter()
                .flat_map(|s| (s.first - 1..s.input().len()).filter(|&r| r < g.shared))
                .collect();
            rows.sort_unstable();
            rows.dedup();
            let mut per_seq = Vec::with_capacity(g.seqs.len());
            for s in &g.seqs {
                // Rows past the shared prefix come from this sequence's own continuation run.
                let mut own = Vec::new();
                let mut src = Vec::with_capacity(s.targets());
                for r in s.first - 1..s.input().len() {
                    src.push(if r < g.shared {
                        (true, n_pre + rows.binary_search(&r).expect("row listed"))
                    } else {
                        own.push(r - g.shared);
                        (false, n_ext + own.len() - 1)
                    });
                }
                if !own.is_empty() {
                    n_ext += own.len();
                    ext_items.push((gi, &s.input()[g.shared..]));
                    ext_rows.push(own);
                }
                per_seq.push(src);
            }
            n_pre += rows.len();
            pre_rows.push(rows);
            source.push(per_seq);
        }
        let prefixes: Vec<&[u32]> = groups
            .iter()
            .map(|g| &g.seqs[0].tokens[..g.shared])
            .collect();
        let (pre, ext) = if ext_items.is_empty() {
            (self.logits_at(&prefixes, &pre_rows)?, None)
        } else {
            let (pre, caches) = self.prefill(&prefixes, &pre_rows)?;
            let items: Vec<_> = ext_items
                .iter()
                .map(|&(g, rest)| (&caches[g], rest))
                .collect();
            (pre, Some(self.extend(&items, &ext_rows)?))
        };
        let rows_of = |t: candle_core::Tensor| -> Result<Vec<Vec<f32>>> {
            if t.dim(0)? == 0 {
                return Ok(Vec::new());
            }
            Ok(candle_nn::ops::log_softmax(&t, D::Minus1)?.to_vec2()?)
        };
        let pre = rows_of(pre)?;
        let ext = ext.map(rows_of).transpose()?.unwrap_or_default();
        Ok(groups
            .iter()
            .zip(&source)
            .map(|(g, per_seq)| {
                g.seqs
                    .iter()
                    .zip(per_seq)
                    .map(|(s, src)| {
                        s.tokens[s.first..]
                            .iter()
                            .zip(src)
                            .map(|(&t, &(in_pre, i))| {
                                token_score(if in_pre { &pre[i] } else { &ext[i] }, t)
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect())
    }
}

/// Log-probability of `target` in a row of log-probabilities, and whether it is the row's first maximum.
pub fn token_score(logp: &[f32], target: u32) -> TokenScore {
    TokenScore {
        logprob: logp[target as usize],
        greedy: crate::metrics::argmax(logp) == target as usize,
    }
}
