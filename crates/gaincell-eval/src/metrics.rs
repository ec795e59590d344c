//! Metrics and their standard errors, as lm-evaluation-harness computes them (`lm_eval/api/metrics.py`).
//!
//! - `acc`, `acc_norm`: per-document 0/1, aggregated by the mean; standard error `mean_stderr`, the sample
//!   standard deviation (n − 1) over √n.
//! - LAMBADA `perplexity`: `exp(−mean(ll))` of the per-document log-likelihoods; its standard error is the
//!   harness's bootstrap: `iters` resamples with replacement (in chunks of 1,000, each chunk's generator seeded
//!   with its index), the sample standard deviation of the statistic over them. The harness draws with Python's
//!   Mersenne Twister, we with ChaCha8 from the same seeds, so the two agree up to Monte-Carlo noise (about
//!   `1/√(2·iters)` relative: 0.2 % at the default 100,000).
//! - wikitext `word_perplexity`, `byte_perplexity` (`exp(−Σll / Σweight)`) and `bits_per_byte`
//!   (`−Σll / Σbytes / ln 2`) over whole documents: the harness reports no standard error for these
//!   (`N/A`), nor do we.
//! - Multiple choice: `acc` picks `argmax(ll)`, `acc_norm` picks `argmax(ll / len(choice))` with the choice's
//!   length in characters (Python's `len`); ties go to the first choice, as `np.argmax`.

use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// Arithmetic mean.
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (divisor n − 1).
pub fn sample_stddev(xs: &[f64]) -> f64 {
    let mu = mean(xs);
    (xs.iter().map(|x| (x - mu) * (x - mu)).sum::<f64>() / (xs.len() as f64 - 1.0)).sqrt()
}

/// Standard error of the mean, `sample_stddev / √n`; `None` for fewer than 2 values (the harness's `N/A`).
pub fn mean_stderr(xs: &[f64]) -> Option<f64> {
    (xs.len() > 1).then(|| sample_stddev(xs) / (xs.len() as f64).sqrt())
}

/// `exp(−mean(ll))`.
pub fn perplexity(lls: &[f64]) -> f64 {
    (-mean(lls)).exp()
}

/// `exp(−Σll / Σweight)` over `(ll, weight)` pairs.
pub fn weighted_perplexity(items: &[(f64, usize)]) -> f64 {
    (-weighted_mean(items)).exp()
}

/// `−Σll / Σbytes / ln 2` over `(ll, bytes)` pairs.
pub fn bits_per_byte(items: &[(f64, usize)]) -> f64 {
    -weighted_mean(items) / std::f64::consts::LN_2
}

fn weighted_mean(items: &[(f64, usize)]) -> f64 {
    let (a, b) = items
        .iter()
        .fold((0.0, 0usize), |(a, b), &(ll, w)| (a + ll, b + w));
    a / b as f64
}

/// Index of the first maximum (`np.argmax`, `torch.argmax`).
pub fn argmax<T: PartialOrd + Copy>(xs: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate().skip(1) {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

/// `(acc, acc_norm)` of one multiple-choice document: 1.0 where the choice with the highest log-likelihood
/// (per character of the choice, for `acc_norm`) is the gold one.
pub fn multiple_choice(lls: &[f64], choice_chars: &[usize], gold: usize) -> (f64, f64) {
    let norm: Vec<f64> = lls
        .iter()
        .zip(choice_chars)
        .map(|(ll, &n)| ll / n as f64)
        .collect();
    let hit = |i: usize| if i == gold { 1.0 } else { 0.0 };
    (hit(argmax(lls)), hit(argmax(&norm)))
}

/// Bootstrap standard error of `statistic(xs)`: `iters` resamples of `xs` with replacement, drawn in chunks of
/// `min(1000, iters)` from a generator seeded with the chunk's index; the sample standard deviation of the
/// statistic over the resamples. `None` for fewer than 2 values or no iterations.
pub fn bootstrap_stderr(
    statistic: &(dyn Fn(&[f64]) -> f64 + Sync),
    xs: &[f64],
    iters: usize,
) -> Option<f64> {
    if xs.len() < 2 || iters == 0 {
        return None;
    }
    let chunk = iters.min(1000);
    let replicates: Vec<f64> = (0..iters / chunk)
        .into_par_iter()
        .flat_map_iter(|i| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(i as u64);
            let mut sample = vec![0.0; xs.len()];
            (0..chunk)
                .map(|_| {
                    sample
                        .iter_mut()
                        .for_each(|x| *x = xs[rng.gen_range(0..xs.len())]);
                    statistic(&sample)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    Some(sample_stddev(&replicates))
}
