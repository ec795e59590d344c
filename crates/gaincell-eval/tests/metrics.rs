//! Every metric and standard error on a toy model whose log-probabilities are known in closed form: a repeated
//! byte has ln p = ln ½ (`same`), any other byte ln p = ln(1/510) (`other`), and only repeats are greedy. The
//! expected figures below are computed from those two numbers and the harness's formulas, never from the
//! crate's own functions.

mod common;

use common::{other, same, Bytes, Repeat};
use gaincell_eval::metrics::bootstrap_stderr;
use gaincell_eval::tasks::Task;
use gaincell_eval::{evaluate, Doc, EvalOptions, Request, ScoreOptions};

fn opts(bootstrap_iters: usize) -> EvalOptions {
    EvalOptions {
        score: ScoreOptions {
            batch: 3,
            prefix_reuse: true,
        },
        prefix_token: 0,
        bootstrap_iters,
    }
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol * b.abs().max(1.0),
        "{what}: got {a}, expected {b}"
    );
}

fn metric(r: &gaincell_eval::TaskResult, name: &str) -> (f64, Option<f64>) {
    let m = r.metrics.iter().find(|m| m.name == name).unwrap();
    (m.value, m.stderr)
}

/// Standard error of the mean of 0/1 values with `k` ones out of `n`: sample variance n/(n−1)·p(1−p) over n.
fn binary_stderr(k: f64, n: f64) -> f64 {
    let p = k / n;
    (p * (1.0 - p) / (n - 1.0)).sqrt()
}

#[test]
fn multiple_choice_acc_and_acc_norm_with_their_standard_errors() {
    let (s, o) = (same(), other());
    // Context "ab", choices after " ": the space and the choice's first byte are never repeats.
    // (choices, gold, log-likelihood of each choice written out from its repeats)
    let docs: Vec<(Vec<&str>, usize, Vec<f64>)> = vec![
        (vec!["aaaa", "ab"], 0, vec![2.0 * o + 3.0 * s, 3.0 * o]),
        (vec!["ab", "cdefgh"], 1, vec![3.0 * o, 7.0 * o]),
        (
            vec!["zz", "zzzzzzzz"],
            0,
            vec![2.0 * o + s, 2.0 * o + 7.0 * s],
        ),
        (vec!["pq", "rs"], 1, vec![3.0 * o, 3.0 * o]),
        (vec!["mm", "no"], 0, vec![2.0 * o + s, 3.0 * o]),
        (vec!["aaaa", "b"], 1, vec![2.0 * o + 3.0 * s, 2.0 * o]),
    ];
    // Picks by hand: acc = argmax ll (ties to the first), acc_norm = argmax ll / characters.
    let acc = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
    let acc_norm = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0];
    for (i, (choices, gold, ll)) in docs.iter().enumerate() {
        let pick = if ll[1] > ll[0] { 1 } else { 0 };
        assert_eq!(
            (pick == *gold) as u8 as f64,
            acc[i],
            "doc {i}: the fixture's own arithmetic"
        );
        let norm = [
            ll[0] / choices[0].len() as f64,
            ll[1] / choices[1].len() as f64,
        ];
        let pick = if norm[1] > norm[0] { 1 } else { 0 };
        assert_eq!((pick == *gold) as u8 as f64, acc_norm[i], "doc {i}");
    }
    let docs: Vec<Doc> = docs
        .into_iter()
        .map(|(c, gold, _)| Doc::choice("ab", c.into_iter().map(String::from).collect(), gold))
        .collect();
    let model = Repeat { max_length: 64 };
    let r = evaluate(
        &model,
        &Bytes,
        Task::ArcEasy,
        &docs,
        opts(0),
        &mut |_, _| {},
    )
    .unwrap();
    let (a, a_se) = metric(&r, "acc");
    let (n, n_se) = metric(&r, "acc_norm");
    close(a, 4.0 / 6.0, 1e-12, "acc");
    close(a_se.unwrap(), binary_stderr(4.0, 6.0), 1e-12, "acc_stderr");
    close(n, 3.0 / 6.0, 1e-12, "acc_norm");
    close(
        n_se.unwrap(),
        binary_stderr(3.0, 6.0),
        1e-12,
        "acc_norm_stderr",
    );
    assert_eq!(r.docs, 6);
    assert_eq!(r.scoring.requests, 12);
}

#[test]
fn lambada_perplexity_acc_and_the_bootstrap_standard_error() {
    let (s, o) = (same(), other());
    // (context, continuation, ll, greedy)
    let items = [
        ("xaa", " aaa", 2.0 * s + o + o, false),
        ("aa", "aaa", 3.0 * s, true),
        ("ab", "bbc", 2.0 * s + o, false),
        ("zz", "z", s, true),
        ("q r", " s", 2.0 * o, false),
    ];
    let docs: Vec<Doc> = items
        .iter()
        .map(|(c, x, ..)| Doc::Continuation(Request::new(*c, *x)))
        .collect();
    let lls: Vec<f64> = items.iter().map(|i| i.2).collect();
    let n = lls.len() as f64;
    let mean = lls.iter().sum::<f64>() / n;
    let model = Repeat { max_length: 64 };
    let r = evaluate(
        &model,
        &Bytes,
        Task::LambadaOpenai,
        &docs,
        opts(100_000),
        &mut |_, _| {},
    )
    .unwrap();
    let (ppl, ppl_se) = metric(&r, "perplexity");
    close(ppl, (-mean).exp(), 1e-6, "perplexity");
    let (acc, acc_se) = metric(&r, "acc");
    close(acc, 2.0 / 5.0, 1e-12, "acc");
    close(
        acc_se.unwrap(),
        binary_stderr(2.0, 5.0),
        1e-12,
        "acc_stderr",
    );
    // The exact bootstrap: all 5^5 equally likely resamples, exp(−mean) of each, their standard deviation.
    let mut stats = Vec::new();
    for code in 0..5usize.pow(5) {
        let mut c = code;
        let mut sum = 0.0;
        for _ in 0..5 {
            sum += lls[c % 5];
            c /= 5;
        }
        stats.push((-sum / n).exp());
    }
    let m = stats.iter().sum::<f64>() / stats.len() as f64;
    let exact = (stats.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / stats.len() as f64).sqrt();
    // 100,000 resamples estimate it to about 1/√(2·100,000) = 0.2 % (and the exact value is far from 0).
    close(
        ppl_se.unwrap(),
        exact,
        0.015,
        "perplexity_stderr vs the exact bootstrap",
    );
    assert!(exact > 0.1 * ppl);
}

#[test]
fn the_bootstrap_is_seeded_chunked_and_absent_without_iterations_or_data() {
    let xs = [-1.0, -2.0, -4.0, -0.5];
    let f = |v: &[f64]| (-v.iter().sum::<f64>() / v.len() as f64).exp();
    let a = bootstrap_stderr(&f, &xs, 2000).unwrap();
    assert_eq!(a, bootstrap_stderr(&f, &xs, 2000).unwrap());
    assert_ne!(a, bootstrap_stderr(&f, &xs, 3000).unwrap());
    assert_eq!(bootstrap_stderr(&f, &xs, 0), None);
    assert_eq!(bootstrap_stderr(&f, &xs[..1], 1000), None);
}

#[test]
fn wikitext_word_and_byte_perplexity_and_bits_per_byte_over_rolling_windows() {
    let (s, o) = (same(), other());
    // max_length 3: "aaaa" is windows [P a a]→[a a a] and [a a a]→[a]; the first token follows the prefix P.
    // "abcd" likewise: every token is new. Words and bytes are the original page's, given here.
    let docs = vec![
        Doc::Rolling {
            text: "aaaa".into(),
            words: 2,
            bytes: 9,
        },
        Doc::Rolling {
            text: "abcd".into(),
            words: 3,
            bytes: 5,
        },
    ];
    let ll = [o + 3.0 * s, 4.0 * o];
    let model = Repeat { max_length: 3 };
    let r = evaluate(
        &model,
        &Bytes,
        Task::Wikitext,
        &docs,
        opts(100_000),
        &mut |_, _| {},
    )
    .unwrap();
    let total = ll[0] + ll[1];
    let (wp, wp_se) = metric(&r, "word_perplexity");
    close(wp, (-total / 5.0).exp(), 1e-6, "word_perplexity");
    let (bp, _) = metric(&r, "byte_perplexity");
    close(bp, (-total / 14.0).exp(), 1e-6, "byte_perplexity");
    let (bpb, bpb_se) = metric(&r, "bits_per_byte");
    close(
        bpb,
        -total / 14.0 / std::f64::consts::LN_2,
        1e-6,
        "bits_per_byte",
    );
    assert_eq!((wp_se, bpb_se), (None, None), "the harness reports N/A");
    // 2 windows per document.
    assert_eq!(r.scoring.requests, 4);
}

#[test]
fn a_continuation_longer_than_the_model_is_scored_whole_in_pieces() {
    let (s, o) = (same(), other());
    // "a" then " bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" (51 tokens) on a 4-position model: a space, a
    // new b, then 49 repeats; greedy fails on the first two tokens.
    let cont = format!(" {}", "b".repeat(50));
    let docs = vec![
        Doc::Continuation(Request::new("a", cont.as_str())),
        Doc::Continuation(Request::new("a", " ")),
    ];
    let r = evaluate(
        &Repeat { max_length: 4 },
        &Bytes,
        Task::LambadaOpenai,
        &docs,
        opts(0),
        &mut |_, _| {},
    )
    .unwrap();
    let mean = ((2.0 * o + 49.0 * s) + o) / 2.0;
    close(
        metric(&r, "perplexity").0,
        (-mean).exp(),
        1e-6,
        "perplexity",
    );
    close(metric(&r, "acc").0, 0.0, 0.0, "acc");
    assert_eq!(
        r.scoring.requests,
        26 + 1,
        "51 targets in pieces of 2, and one request"
    );
}

#[test]
fn one_document_has_no_standard_error() {
    let docs = vec![Doc::choice("ab", vec!["aa".into(), "b".into()], 0)];
    let r = evaluate(
        &Repeat { max_length: 8 },
        &Bytes,
        Task::Piqa,
        &docs,
        opts(0),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(metric(&r, "acc").1, None);
}
