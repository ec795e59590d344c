//! Test helpers: a byte-level encoder and a toy model whose log-probabilities are known in closed form.
#![allow(dead_code)]

use std::path::PathBuf;

use gaincell_eval::lm::check_group;
use gaincell_eval::{Doc, Encoder, Group, LogProbModel, Result, TokenScore};

/// One token per UTF-8 byte.
pub struct Bytes;

impl Encoder for Bytes {
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(text.bytes().map(u32::from).collect())
    }
}

/// Over 256 tokens: the previous token again with probability 1/2, any other with 1/(2·255). The greedy token is
/// always the previous one.
pub struct Repeat {
    pub max_length: usize,
}

pub const VOCAB: f64 = 256.0;

/// ln p of a repeated token.
pub fn same() -> f64 {
    0.5f64.ln()
}

/// ln p of any other token.
pub fn other() -> f64 {
    (0.5 / (VOCAB - 1.0)).ln()
}

impl LogProbModel for Repeat {
    fn max_length(&self) -> usize {
        self.max_length
    }

    fn score(&self, groups: &[Group]) -> Result<Vec<Vec<Vec<TokenScore>>>> {
        groups.iter().try_for_each(check_group)?;
        Ok(groups
            .iter()
            .map(|g| {
                g.seqs
                    .iter()
                    .map(|s| {
                        assert!(s.input().len() <= self.max_length, "input too long");
                        (s.first..s.tokens.len())
                            .map(|j| {
                                let rep = s.tokens[j] == s.tokens[j - 1];
                                TokenScore {
                                    logprob: if rep { same() } else { other() } as f32,
                                    greedy: rep,
                                }
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect())
    }
}

/// The shared data's eval folder: `$GAINCELL_DATA` (`.ci/run` sets it), else `../shared/data/eval` beside the
/// workspace, if it is there; None with a message saying the test is skipped otherwise.
pub fn shared_eval() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("GAINCELL_DATA")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| Some(root.ancestors().nth(2)?.join("../shared/data/eval")))?;
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (set GAINCELL_DATA to the shared data's eval folder; CI does)",
            dir.display()
        );
        None
    }
}

/// The tiny GPT-2 fixture of gaincell-model on a chip.
pub fn tiny(chip: &str) -> gaincell_model::Model {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../gaincell-model/tests/fixtures/tiny-gpt2");
    gaincell_model::checkpoint::load(&dir, Some(gaincell_chip::ChipConfig::load(chip).unwrap()))
        .unwrap()
}

/// (context, continuation) of each request, and the gold index, of a multiple-choice document.
pub fn pairs(d: &Doc) -> (Vec<(String, String)>, usize) {
    match d {
        Doc::Choice { requests, gold, .. } => (
            requests
                .iter()
                .map(|r| (r.context.clone(), r.continuation.clone()))
                .collect(),
            *gold,
        ),
        other => panic!("not multiple choice: {other:?}"),
    }
}
