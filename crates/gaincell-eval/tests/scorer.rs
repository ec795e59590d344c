//! Scoring on the tiny GPT-2 fixture: with and without prefix reuse, in any batch size, every request's
//! log-likelihood and greedy flag equal those read off the plain forward of its whole input, while reuse
//! computes fewer token positions.

mod common;

use candle_core::{Device, Tensor, D};
use common::Bytes;
use gaincell_eval::evaluate::token_requests;
use gaincell_eval::{score_requests, Doc, Request, ScoreOptions, Scored, TokenSeq};
use gaincell_model::Model;

/// Log-likelihood and greedy flag of a request from `Model::forward` of its input.
fn reference(m: &Model, s: &TokenSeq) -> Scored {
    let x = Tensor::new(s.input(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let logp = candle_nn::ops::log_softmax(&m.forward(&x).unwrap().squeeze(0).unwrap(), D::Minus1)
        .unwrap();
    let rows: Vec<Vec<f32>> = logp.to_vec2().unwrap();
    let mut ll = 0.0;
    let mut greedy = true;
    for j in s.first..s.tokens.len() {
        let row = &rows[j - 1];
        let t = s.tokens[j] as usize;
        ll += row[t] as f64;
        let best = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        greedy &= row.iter().position(|&v| v == best) == Some(t);
    }
    Scored {
        loglikelihood: ll,
        greedy,
    }
}

fn docs() -> Vec<Doc> {
    let long = "a much longer context that will not fit the fixture's 128 positions, so the harness cuts it on the left and every choice sees a different start";
    vec![
        // Choices sharing their first tokens with one another (" is "), so the shared prefix runs into them.
        Doc::choice(
            "Fixing a bike: A woman turns a bike upside down. She",
            vec![
                "is oiling the chain.".into(),
                "is pumping the tyre.".into(),
                "rides away.".into(),
            ],
            2,
        ),
        // Single-token continuations of one context: every input is the same.
        Doc::choice(
            "Question: 2 + 2 =\nAnswer:",
            vec!["4".into(), "5".into()],
            0,
        ),
        // Identical choices.
        Doc::choice("Same:", vec!["x y".into(), "x y".into()], 1),
        Doc::choice(long, vec!["yes".into(), "no, not at all, never".into()], 0),
        // WinoGrande-style: contexts differ after a shared start, one continuation.
        Doc::Choice {
            requests: vec![
                Request::new("Tom lent his bike to Ben because Tom", " got the cases."),
                Request::new("Tom lent his bike to Ben because Ben", " got the cases."),
            ],
            choices: vec!["a".into(), "b".into()],
            gold: 0,
        },
        Doc::Continuation(Request::new("He looked at the sky and saw the", " moon")),
        Doc::Rolling {
            text: "x".repeat(300),
            words: 1,
            bytes: 300,
        },
    ]
}

#[test]
fn reuse_and_batching_give_the_forward_s_scores_with_fewer_tokens() {
    for chip in ["software", "paper-nonlinear"] {
        let m = common::tiny(chip);
        let r = token_requests(&docs(), &Bytes, 0, 128).unwrap();
        let (seqs, keys) = (r.seqs, r.keys);
        assert!(seqs.iter().all(|s| s.tokens.len() <= 129));
        let want: Vec<Scored> = seqs.iter().map(|s| reference(&m, s)).collect();
        let mut computed = Vec::new();
        for (batch, prefix_reuse) in [(1, false), (4, false), (1, true), (3, true), (64, true)] {
            let opts = ScoreOptions {
                batch,
                prefix_reuse,
            };
            let mut calls = 0;
            let (got, stats) =
                score_requests(&m, &seqs, &keys, opts, &mut |_, _| calls += 1).unwrap();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let e = (g.loglikelihood - w.loglikelihood).abs();
                assert!(
                    e < 2e-3,
                    "{chip} {opts:?}: request {i}: ll {} vs {}",
                    g.loglikelihood,
                    w.loglikelihood
                );
                assert_eq!(g.greedy, w.greedy, "{chip} {opts:?}: request {i}");
            }
            assert_eq!(stats.calls, calls);
            assert_eq!(stats.requests, seqs.len());
            let requested: usize = seqs.iter().map(|s| s.input().len()).sum();
            assert_eq!(stats.tokens_requested, requested);
            computed.push(stats.tokens_computed);
        }
        assert_eq!(computed[0], computed[1]);
        assert_eq!(
            computed[0],
            seqs.iter().map(|s| s.input().len()).sum::<usize>()
        );
        assert!(
            computed[2] < computed[0],
            "reuse computes fewer tokens: {computed:?}"
        );
        assert_eq!(
            computed[2], computed[4],
            "the same groups in any batch size"
        );
    }
}
