//! The agreement metrics against a computation written here from the definitions (logits of each window run
//! separately, log-softmax, KL and argmax in f64), and the sampled reference stream's reproducibility.

mod common;

use candle_core::{Device, Tensor};
use gaincell_eval::agreement::{agreement, next_token_log_probs, sample_stream, windows};

/// Per-position f64 log-probabilities of `model` on `ids`, one window at a time.
fn reference_log_probs(model: &gaincell_model::Model, ids: &[u32], ctx: usize) -> Vec<Vec<f64>> {
    let mut rows = Vec::new();
    for (s, e) in windows(ids.len(), ctx) {
        let x = Tensor::from_slice(&ids[s..e], (1, e - s), &Device::Cpu).unwrap();
        let logits: Vec<Vec<f32>> = model
            .forward(&x)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2()
            .unwrap();
        for row in &logits[..e - s - 1] {
            let m = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
            let z: f64 = row.iter().map(|&x| (x as f64 - m).exp()).sum();
            rows.push(row.iter().map(|&x| x as f64 - m - z.ln()).collect());
        }
    }
    rows
}

fn argmax(r: &[f64]) -> usize {
    (0..r.len()).fold(0, |b, i| if r[i] > r[b] { i } else { b })
}

#[test]
fn metrics_match_their_definitions() {
    let soft = common::tiny("software");
    let chip = common::tiny("paper-nonlinear");
    let vocab = soft.config.vocab_size() as u32;
    // 70 tokens in windows of 32: two full windows and a remainder of 6.
    let ids: Vec<u32> = (0..70u32).map(|i| (i * 37 + 11) % vocab).collect();
    let ctx = 32;
    let (p, q) = (
        next_token_log_probs(&soft, &ids, ctx).unwrap(),
        next_token_log_probs(&chip, &ids, ctx).unwrap(),
    );
    assert_eq!(p.targets.len(), 70 - 3);
    let a = agreement(&p, &q).unwrap();

    let (rp, rq) = (
        reference_log_probs(&soft, &ids, ctx),
        reference_log_probs(&chip, &ids, ctx),
    );
    let targets: Vec<u32> = windows(ids.len(), ctx)
        .into_iter()
        .flat_map(|(s, e)| ids[s + 1..e].to_vec())
        .collect();
    assert_eq!(targets, p.targets);
    let n = targets.len() as f64;
    let nll = -targets
        .iter()
        .enumerate()
        .map(|(r, &t)| rq[r][t as usize])
        .sum::<f64>()
        / n;
    let kl = rp
        .iter()
        .zip(&rq)
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x.exp() * (x - y)).sum::<f64>())
        .sum::<f64>()
        / n;
    let top1 = rp
        .iter()
        .zip(&rq)
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count() as f64
        / n;
    assert_eq!(a.tokens_scored, targets.len());
    assert!((a.nll - nll).abs() < 1e-4, "nll {} vs {nll}", a.nll);
    assert!((a.perplexity - nll.exp()).abs() < 1e-3 * nll.exp());
    assert!(kl > 1e-4, "the two chips must disagree somewhat (kl {kl})");
    assert!(
        (a.kl - kl).abs() < 1e-4 * kl.max(1.0),
        "kl {} vs {kl}",
        a.kl
    );
    assert!(
        (a.top1_agreement - top1).abs() < 1e-12,
        "top1 {} vs {top1}",
        a.top1_agreement
    );

    // A model against itself: no divergence, full agreement.
    let same = agreement(&p, &p).unwrap();
    assert!(same.kl.abs() < 1e-9);
    assert_eq!(same.top1_agreement, 1.0);
}

#[test]
fn bad_streams_are_clear_errors() {
    let soft = common::tiny("software");
    let v = soft.config.vocab_size() as u32;
    let e = next_token_log_probs(&soft, &[1, v], 8)
        .unwrap_err()
        .to_string();
    assert!(e.contains("outside the model's vocabulary"), "{e}");
    let e = next_token_log_probs(&soft, &[1], 8)
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least 2 tokens"), "{e}");
    let e = next_token_log_probs(&soft, &[1, 2, 3], 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("ctx 1"), "{e}");
    let a = next_token_log_probs(&soft, &[1, 2, 3], 8).unwrap();
    let b = next_token_log_probs(&soft, &[1, 2, 4], 8).unwrap();
    assert!(agreement(&a, &b).is_err());
}

#[test]
fn sampled_stream_is_reproducible() {
    let soft = common::tiny("software");
    let a = sample_stream(&soft, 0, 3, 20, 7).unwrap();
    let b = sample_stream(&soft, 0, 3, 20, 7).unwrap();
    let c = sample_stream(&soft, 0, 3, 20, 8).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 60);
    assert!(a.chunks(20).all(|d| d[0] == 0));
    // Seeds are per document: seed 8's first document is seed 7's second.
    assert_eq!(&c[..20], &a[20..40]);
    assert_ne!(&a[..20], &a[20..40]);
    assert!(sample_stream(&soft, 0, 1, soft.config.n_positions() + 1, 0).is_err());
}
