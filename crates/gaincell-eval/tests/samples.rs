//! Per-sample logs: Python's float and JSON spelling (so hashes and lines match lm-evaluation-harness's), a log
//! written and read back, lenient reading of the harness's forms, and the comparison.

use std::path::Path;

use gaincell_eval::samples::{
    compare, hash_string, parse_jsonl, py_float, py_json, samples, to_jsonl,
};
use gaincell_eval::{Doc, Request, Scored, Task};
use serde_json::json;

#[test]
fn floats_are_spelled_as_python_repr() {
    for (x, want) in [
        (1e16, "1e+16"),
        (1.5e-5, "1.5e-05"),
        (123.0, "123.0"),
        (0.0001, "0.0001"),
        (-50.543914794921875, "-50.543914794921875"),
        (1e22, "1e+22"),
        (12345678901234567.0, "1.2345678901234568e+16"),
        (0.1, "0.1"),
        (-0.0, "-0.0"),
        (1.0, "1.0"),
        (f64::NEG_INFINITY, "-inf"),
    ] {
        assert_eq!(py_float(x), want, "{x}");
    }
}

#[test]
fn json_and_hash_match_python() {
    // json.dumps(d, indent=2, ensure_ascii=False) of this dict (keys sorted, as serde_json keeps them), hashed
    // with hashlib.sha256 in Python 3.11.
    let d =
        json!({"choices": ["a", "é"], "e": [], "f": {}, "gold": 1, "n": 1.5e-05, "query": "Q\nA:"});
    assert_eq!(
        hash_string(&py_json(&d, Some(2))),
        "47073b1ae74024d3203eadbf91f8a183d6a6de91008235f89b2455ddb21287ba"
    );
    assert_eq!(
        py_json(&d, None),
        r#"{"choices": ["a", "é"], "e": [], "f": {}, "gold": 1, "n": 1.5e-05, "query": "Q\nA:"}"#
    );
    // hash_string("0"), as in the harness's target_hash of gold index 0.
    assert_eq!(
        hash_string("0"),
        "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9"
    );
}

fn scored(ll: f64, greedy: bool) -> Scored {
    Scored {
        loglikelihood: ll,
        greedy,
    }
}

#[test]
fn logs_round_trip_and_carry_per_document_metrics() {
    let docs = vec![
        Doc::choice(
            "Question: Q?\nAnswer:",
            vec!["yes".into(), "no way".into()],
            1,
        ),
        Doc::choice("Question: R?\nAnswer:", vec!["a".into(), "bb".into()], 0),
    ];
    let s = vec![
        vec![scored(-3.0, false), scored(-5.0, true)],
        vec![scored(-1.0, false), scored(-1.5, false)],
    ];
    let log = samples(Task::ArcEasy, &docs, &s);
    assert_eq!(log[0].target, "1");
    assert_eq!(
        log[0].metrics,
        vec![("acc".into(), json!(0.0)), ("acc_norm".into(), json!(1.0))]
    );
    let text = to_jsonl(&log);
    assert!(
        text.starts_with(r#"{"doc_id": 0, "doc": {"choices": ["yes", "no way"], "gold": 1, "#),
        "{text}"
    );
    assert!(
        text.contains(
            r#""filtered_resps": [["-3.0", "False"], ["-5.0", "True"]], "filter": "none""#
        ),
        "{text}"
    );
    let back = parse_jsonl(&text, Path::new("x.jsonl")).unwrap();
    assert_eq!(back, log);

    let lambada = vec![Doc::Continuation(Request::new(
        "the cat sat on the",
        " mat",
    ))];
    let l = samples(Task::LambadaOpenai, &lambada, &[vec![scored(-2.25, true)]]);
    assert_eq!(l[0].doc, json!({"text": "the cat sat on the mat"}));
    assert_eq!(l[0].target, " mat");
    assert_eq!(
        l[0].metrics,
        vec![
            ("perplexity".into(), json!(-2.25)),
            ("acc".into(), json!(1))
        ]
    );

    let wiki = vec![Doc::Rolling {
        text: "A page.".into(),
        words: 2,
        bytes: 7,
    }];
    let w = samples(Task::Wikitext, &wiki, &[vec![scored(-9.0, false)]]);
    let line = to_jsonl(&w);
    assert!(
        line.contains(r#""arguments": {"gen_args_0": {"arg_0": "A page."}}"#),
        "{line}"
    );
    assert!(line.contains(r#""filtered_resps": ["-9.0"]"#), "{line}");
    assert!(line.contains(r#""bits_per_byte": [-9.0, 7]"#), "{line}");
    assert_eq!(parse_jsonl(&line, Path::new("w.jsonl")).unwrap(), w);
}

#[test]
fn the_harness_in_memory_form_reads_and_compares() {
    // simple_evaluate's `samples`: arguments as lists, answers as numbers and booleans.
    let a = r#"{"doc_id": 0, "arguments": [["Q:", " a"], ["Q:", " b"]], "filtered_resps": [[-1.0, false], [-2.0, true]], "acc": 1.0, "acc_norm": 0.0}
{"doc_id": 1, "arguments": [["R:", " a"]], "filtered_resps": [[-1.0, false]], "acc": 1.0}"#;
    let b = r#"{"doc_id": 1, "arguments": {"gen_args_0": {"arg_0": "R:", "arg_1": " a"}}, "filtered_resps": [["-1.00002", "False"]], "metrics": ["acc"], "acc": 0.0}
{"doc_id": 0, "arguments": {"gen_args_0": {"arg_0": "Q:", "arg_1": " a"}, "gen_args_1": {"arg_0": "Q:", "arg_1": " b"}}, "filtered_resps": [["-1.0", "False"], ["-2.0", "False"]], "metrics": ["acc", "acc_norm"], "acc": 1.0, "acc_norm": 0.0}"#;
    let (sa, sb) = (
        parse_jsonl(a, Path::new("a")).unwrap(),
        parse_jsonl(b, Path::new("b")).unwrap(),
    );
    let c = compare(&sa, &sb);
    assert_eq!(c.matched, 2);
    assert_eq!(c.requests, 3);
    assert!(c.arguments.is_empty());
    assert_eq!(c.greedy, vec![(0, 1)]);
    assert_eq!(c.verdicts["acc"].len(), 1);
    assert_eq!(c.verdicts["acc"][0].doc_id, 1);
    assert!(c.verdicts["acc_norm"].is_empty());
    let d = c.max_diff["filtered_resps"];
    assert!((d.delta - 2e-5).abs() < 1e-9 && d.doc_id == 1, "{d:?}");
    assert!(c.differs());
    assert!(c
        .render("a", "b")
        .contains("verdict acc: differ for 1 of 2: doc_id 1 (A 1, B 0)"));

    let dup = "{\"doc_id\": 0, \"arguments\": [], \"filtered_resps\": []}\n{\"doc_id\": 0, \"arguments\": [], \"filtered_resps\": []}";
    let e = parse_jsonl(dup, Path::new("d.jsonl"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("d.jsonl: line 2: doc_id 0 appears twice"), "{e}");
    let e = parse_jsonl("\n", Path::new("e.jsonl"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
}
