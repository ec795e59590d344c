//! `gaincell eval tasks`, `eval compare` and `bench eval` from the outside, on the tiny fixture model with a
//! small tokenizer and task files written by the test: the results file, the table, skipped tasks, one-line
//! errors.

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, gaincell, stdout};

fn fixture() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../gaincell-model/tests/fixtures/tiny-gpt2")
        .display()
        .to_string()
}

/// A 300-entry BPE (it fits the fixture's 512) and a data folder with PIQA and WinoGrande items.
fn setup(dir: &Path) -> (String, String) {
    let text = "The cat sat on the mat. The dog ran to the park and back again. Pour water into the glass.";
    let tok = gaincell_model::train_bpe(std::iter::repeat_n(text, 20), 300).unwrap();
    let tok_path = dir.join("tokenizer.json");
    tok.save(&tok_path).unwrap();
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("piqa")).unwrap();
    std::fs::create_dir_all(data.join("winogrande")).unwrap();
    let piqa = [
        r#"{"goal": "How do I fill a glass?", "sol1": "Pour water into the glass.", "sol2": "Pour the glass into water."}"#,
        r#"{"goal": "Clean a mat", "sol1": "Shake the mat outside.", "sol2": "Eat the mat."}"#,
        r#"{"goal": "Walk a dog", "sol1": "Take the dog to the park.", "sol2": "Take the park to the dog."}"#,
    ];
    std::fs::write(data.join("piqa/valid.jsonl"), piqa.join("\n")).unwrap();
    std::fs::write(data.join("piqa/valid-labels.lst"), "0\n0\n0\n").unwrap();
    let wino = [
        r#"{"qID": "a", "sentence": "The cat sat on the mat because _ was tired.", "option1": "cat", "option2": "mat", "answer": "1"}"#,
        r#"{"qID": "b", "sentence": "The dog ran past the park because _ was fast.", "option1": "park", "option2": "dog", "answer": "2"}"#,
    ];
    std::fs::write(data.join("winogrande/dev.jsonl"), wino.join("\n")).unwrap();
    (tok_path.display().to_string(), data.display().to_string())
}

#[test]
fn tasks_write_the_results_and_table_and_skip_missing_data() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, data) = setup(dir.path());
    let out = dir.path().join("results/run.json");
    let model = fixture();
    let args = [
        "eval",
        "tasks",
        "--model",
        &model,
        "--tokenizer",
        &tok,
        "--chip",
        "paper-nonlinear",
        "--data-dir",
        &data,
        "--tasks",
        "piqa,winogrande,arc_challenge",
        "--limit",
        "2",
        "--bootstrap-iters",
        "0",
        "--out",
        out.to_str().unwrap(),
    ];
    let printed = stdout(&gaincell(&args));
    assert!(
        printed.contains("skipped arc_challenge: no data at"),
        "{printed}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    for (task, metrics) in [
        ("piqa", &["acc", "acc_norm"][..]),
        ("winogrande", &["acc"][..]),
    ] {
        for m in metrics {
            let v = r["results"][task][m].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{task} {m} {v}");
            assert!(r["results"][task][format!("{m}_stderr")].is_number());
        }
        assert_eq!(r["n-samples"][task]["effective"], 2);
    }
    assert_eq!(r["n-samples"]["piqa"]["original"], 3);
    assert!(
        r["results"]["winogrande"].get("acc_norm").is_none(),
        "the harness reports acc only"
    );
    assert!(r["skipped"]["arc_challenge"]
        .as_str()
        .unwrap()
        .contains("ARC-Challenge-Test.jsonl"));
    assert_eq!(r["config"]["chip"], "paper-nonlinear");
    assert_eq!(r["config"]["limit"], 2);
    let md = std::fs::read_to_string(out.with_extension("md")).unwrap();
    assert!(md.contains("| piqa | 1.0 | 0 | acc | ↑ |"), "{md}");

    let cmp = stdout(&gaincell(&[
        "eval",
        "compare",
        out.to_str().unwrap(),
        out.to_str().unwrap(),
    ]));
    assert!(cmp.contains("| piqa | acc ↑ |"), "{cmp}");
    assert!(cmp.contains("+0.0000"), "{cmp}");
}

#[test]
fn bench_eval_prints_both_modes_and_the_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, data) = setup(dir.path());
    let model = fixture();
    let printed = stdout(&gaincell(&[
        "bench",
        "eval",
        "--model",
        &model,
        "--tokenizer",
        &tok,
        "--data-dir",
        &data,
        "--tasks",
        "piqa,winogrande",
        "--limit",
        "3",
        "--reps",
        "1",
    ]));
    assert!(printed.contains("no reuse"), "{printed}");
    assert!(printed.contains("prefix reuse:"), "{printed}");
    assert!(
        printed.contains("greedy flags equal for 10/10"),
        "{printed}"
    );
}

#[test]
fn errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, data) = setup(dir.path());
    let model = fixture();
    let out = dir.path().join("r.json");
    let out = out.to_str().unwrap();
    fails_with(
        &[
            "eval",
            "tasks",
            "--model",
            &model,
            "--tokenizer",
            &tok,
            "--tasks",
            "mmlu",
            "--out",
            out,
        ],
        "unknown task `mmlu`",
    );
    fails_with(
        &[
            "eval",
            "tasks",
            "--model",
            &model,
            "--tokenizer",
            &tok,
            "--data-dir",
            &data,
            "--tasks",
            "hellaswag",
            "--out",
            out,
        ],
        "no task had its data",
    );
    fails_with(
        &["eval", "tasks", "--model", &model, "--out", out],
        "pass the model's own tokenizer",
    );
    fails_with(&["eval", "compare", &data], "reading");
}
