//! `gaincell eval tasks --log-samples` against per-sample logs written by lm-evaluation-harness 0.4.13 itself
//! (tests/fixtures/log-samples, from scripts/make_log_samples_fixture.py): the same tiny GPT-2, tokenizer and
//! synthetic ARC / LAMBADA items, checked field by field; then `eval compare` on two logs: agreement, a flipped
//! verdict (exit status 1) and malformed input (exit status 2, one line).

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, gaincell, stdout};
use gaincell_eval::samples::{hash_string, py_json};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/log-samples")
}

fn model() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../gaincell-model/tests/fixtures/tiny-gpt2")
        .display()
        .to_string()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Our run on the fixture's items, with per-sample logs; returns the results file.
fn run(dir: &Path) -> PathBuf {
    let fx = fixtures();
    let out = dir.join("run.json");
    let printed = stdout(&gaincell(&[
        "eval",
        "tasks",
        "--model",
        &model(),
        "--tokenizer",
        fx.join("tokenizer/tokenizer.json").to_str().unwrap(),
        "--data-dir",
        fx.join("data").to_str().unwrap(),
        "--tasks",
        "arc_easy,lambada_openai",
        "--bootstrap-iters",
        "0",
        "--batch",
        "3",
        "--log-samples",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(printed.contains("per-sample log: "), "{printed}");
    out
}

fn ll(v: &Value) -> f64 {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn log_samples_match_lm_evaluation_harness_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path());
    let fx = fixtures();
    for task in ["arc_easy", "lambada_openai"] {
        let ours = lines(&dir.path().join(format!("samples_{task}_run.jsonl")));
        let theirs = lines(&fx.join(format!("samples_{task}.jsonl")));
        assert_eq!(ours.len(), theirs.len(), "{task}");
        for (a, b) in ours.iter().zip(&theirs) {
            let at = format!("{task} doc {}", b["doc_id"]);
            let keys = |v: &Value| {
                let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
                k.sort();
                k
            };
            assert_eq!(keys(a), keys(b), "{at}: the same fields");
            for exact in [
                "doc_id",
                "target",
                "arguments",
                "filter",
                "metrics",
                "prompt_hash",
                "target_hash",
            ] {
                assert_eq!(a[exact], b[exact], "{at}: {exact}");
            }
            // `doc` is our reading of the row: its hash is over it, and equals the harness's where the rows
            // agree (LAMBADA's {"text"}).
            assert_eq!(
                a["doc_hash"].as_str().unwrap(),
                hash_string(&py_json(&a["doc"], Some(2))),
                "{at}"
            );
            if task == "lambada_openai" {
                assert_eq!(a["doc"], b["doc"], "{at}");
                assert_eq!(a["doc_hash"], b["doc_hash"], "{at}");
            }
            let (fa, fb) = (
                a["filtered_resps"].as_array().unwrap(),
                b["filtered_resps"].as_array().unwrap(),
            );
            assert_eq!(fa.len(), fb.len(), "{at}");
            for (r, (x, y)) in fa.iter().zip(fb).enumerate() {
                let d = (ll(&x[0]) - ll(&y[0])).abs();
                assert!(d < 1e-4, "{at} request {r}: {x} vs {y}");
                assert_eq!(x[1], y[1], "{at} request {r}: is_greedy");
                assert_eq!(a["resps"][r][0], *x, "{at}: resps = filtered_resps");
                assert_eq!(b["resps"][r][0], *y);
            }
            for m in b["metrics"].as_array().unwrap() {
                let m = m.as_str().unwrap();
                match m {
                    "perplexity" => assert!(
                        (a[m].as_f64().unwrap() - b[m].as_f64().unwrap()).abs() < 1e-4,
                        "{at}: {m}"
                    ),
                    _ => assert_eq!(a[m], b[m], "{at}: {m}"),
                }
            }
        }
        if task == "lambada_openai" {
            assert!(
                theirs.iter().any(|s| s["filtered_resps"][0][1] == "True")
                    && theirs.iter().any(|s| s["filtered_resps"][0][1] == "False"),
                "the fixture has greedy and non-greedy continuations"
            );
        }
    }

    // The aggregate figures agree too.
    let ours: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let theirs: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("results.json")).unwrap()).unwrap();
    for (task, local, metric) in [
        ("arc_easy", "arc_easy_local", "acc"),
        ("arc_easy", "arc_easy_local", "acc_norm"),
        ("lambada_openai", "lambada_openai_local", "acc"),
        ("lambada_openai", "lambada_openai_local", "perplexity"),
    ] {
        let (a, b) = (
            ours["results"][task][metric].as_f64().unwrap(),
            theirs["results"][local][format!("{metric},none")]
                .as_f64()
                .unwrap(),
        );
        assert!(
            (a - b).abs() <= 1e-4 * b.abs().max(1.0),
            "{task} {metric}: {a} vs {b}"
        );
    }
    assert_eq!(ours["config"]["log_samples"], true);
}

#[test]
fn compare_reports_agreement_differences_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path());
    let fx = fixtures();
    let ours = dir.path().join("samples_arc_easy_run.jsonl");
    let theirs = fx.join("samples_arc_easy.jsonl");
    let (o, t) = (ours.to_str().unwrap(), theirs.to_str().unwrap());

    let printed = stdout(&gaincell(&["eval", "compare", o, t]));
    for want in [
        "6 matched by doc_id, 21 requests compared",
        "| filtered_resps | ",
        "is_greedy: equal for all 21",
        "arguments: equal for all 6",
        "prompt_hash: equal for all 6",
        "verdict acc: equal for all 6",
        "verdict acc_norm: equal for all 6",
        "the logs agree",
    ] {
        assert!(printed.contains(want), "{want}: {printed}");
    }
    let max: f64 = printed
        .lines()
        .find(|l| l.starts_with("| filtered_resps |"))
        .and_then(|l| l.split('|').nth(2))
        .map(|x| x.trim().parse().unwrap())
        .unwrap();
    assert!(max < 1e-4, "{printed}");

    // A changed answer: doc 2's acc flipped and one log-likelihood moved, doc 5 dropped.
    let mut edited = lines(&theirs);
    edited[2]["acc"] = serde_json::json!(0.0);
    edited[2]["filtered_resps"][1][0] = serde_json::json!("-1.5");
    edited.pop();
    let changed = dir.path().join("changed.jsonl");
    let text: String = edited.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&changed, text).unwrap();
    let res = gaincell(&["eval", "compare", o, changed.to_str().unwrap()]);
    assert_eq!(res.status.code(), Some(1), "a differing verdict fails");
    let printed = String::from_utf8(res.stdout).unwrap();
    for want in [
        "only in A: doc_id 5",
        "verdict acc: differ for 1 of 5: doc_id 2 (A 1, B 0)",
        "verdict acc_norm: equal for all 5",
        "| filtered_resps | 5.435e1 | doc_id 2 request 1 |",
        "the logs differ",
    ] {
        assert!(printed.contains(want), "{want}: {printed}");
    }

    // Malformed input: one line, exit status 2.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, format!("{}\nnot json\n", edited[0])).unwrap();
    fails_with(
        &["eval", "compare", o, bad.to_str().unwrap()],
        "bad.jsonl: line 2: not JSON",
    );
    let no_id = dir.path().join("no_id.jsonl");
    std::fs::write(&no_id, "{\"doc\": {}}\n").unwrap();
    fails_with(
        &["eval", "compare", o, no_id.to_str().unwrap()],
        "no `doc_id`",
    );
    let short = dir.path().join("short.jsonl");
    let mut s = edited[0].clone();
    s["filtered_resps"].as_array_mut().unwrap().pop();
    std::fs::write(&short, format!("{s}\n")).unwrap();
    fails_with(
        &["eval", "compare", o, short.to_str().unwrap()],
        "4 requests in `arguments` but 3 answers",
    );
    fails_with(&["eval", "compare", o, t, o], "exactly two .jsonl files");
    let results = dir.path().join("run.json");
    fails_with(
        &["eval", "compare", o, results.to_str().unwrap()],
        "mixed inputs",
    );
}
