//! The results file has the harness's shape, the markdown table shows every metric, and `compare` puts files
//! side by side (ours and the harness's own `metric,filter` keys) with their differences.

use std::collections::BTreeMap;

use gaincell_eval::results::{compare, label, markdown, report, Skipped};
use gaincell_eval::{MetricValue, ScoreStats, Task, TaskResult};
use serde_json::json;

fn result(task: Task, metrics: &[(&'static str, f64, Option<f64>, bool)]) -> TaskResult {
    TaskResult {
        task,
        metrics: metrics
            .iter()
            .map(|&(name, value, stderr, higher_is_better)| MetricValue {
                name,
                value,
                stderr,
                higher_is_better,
            })
            .collect(),
        docs: 100,
        scoring: ScoreStats {
            requests: 400,
            seconds: 2.0,
            ..Default::default()
        },
        seconds: 2.5,
        per_doc: Vec::new(),
    }
}

#[test]
fn report_has_the_harness_shape_and_the_table_every_metric() {
    let results = [
        result(
            Task::Hellaswag,
            &[
                ("acc", 0.25, Some(0.0433), true),
                ("acc_norm", 0.3, Some(0.046), true),
            ],
        ),
        result(
            Task::Wikitext,
            &[
                ("word_perplexity", 1234.5, None, false),
                ("bits_per_byte", 2.5, None, false),
            ],
        ),
    ];
    let skipped = [Skipped {
        task: Task::Winogrande,
        reason: "no data at x".into(),
    }];
    let original = BTreeMap::from([(Task::Hellaswag, 10042)]);
    let r = report(
        &results,
        &skipped,
        &original,
        json!({"model": "/m/tiny-gpt2", "chip": "paper-nonlinear"}),
        5.0,
    );
    assert_eq!(r["results"]["hellaswag"]["acc"], json!(0.25));
    assert_eq!(r["results"]["hellaswag"]["acc_stderr"], json!(0.0433));
    assert_eq!(
        r["results"]["wikitext"]["word_perplexity_stderr"],
        json!("N/A")
    );
    assert_eq!(
        r["n-samples"]["hellaswag"],
        json!({"original": 10042, "effective": 100})
    );
    assert_eq!(
        r["higher_is_better"]["wikitext"]["bits_per_byte"],
        json!(false)
    );
    assert_eq!(r["versions"]["wikitext"], json!(2.0));
    assert_eq!(r["n-shot"]["hellaswag"], json!(0));
    assert_eq!(r["skipped"]["winogrande"], json!("no data at x"));
    assert_eq!(
        r["timing"]["tasks"]["hellaswag"]["requests_per_s"],
        json!(200.0)
    );
    let md = markdown(&r);
    assert!(
        md.contains("| hellaswag | 1.0 | 0 | acc | ↑ | 0.2500 | ± | 0.0433 |"),
        "{md}"
    );
    assert!(
        md.contains("|  |  |  | acc_norm | ↑ | 0.3000 | ± | 0.0460 |"),
        "{md}"
    );
    assert!(
        md.contains("| wikitext | 2.0 | 0 | word_perplexity | ↓ | 1234.5000 | ± | N/A |"),
        "{md}"
    );
    assert!(md.contains("skipped winogrande: no data at x"), "{md}");
    assert_eq!(label(&r, "file"), "tiny-gpt2 / paper-nonlinear");
}

#[test]
fn compare_shows_each_file_and_the_differences_from_the_first() {
    let ours = json!({
        "results": {"piqa": {"alias": "piqa", "acc": 0.6, "acc_stderr": 0.03, "acc_norm": 0.62, "acc_norm_stderr": 0.04}},
        "higher_is_better": {"piqa": {"acc": true, "acc_norm": true}},
        "config": {"model": "m", "chip": "software"},
    });
    // The harness's own file: `metric,filter` keys, no chip.
    let harness = json!({
        "results": {"piqa": {"alias": "piqa", "acc,none": 0.64, "acc_stderr,none": 0.0, "acc_norm,none": 0.6, "acc_norm_stderr,none": 0.03}},
        "config": {"model": "hf"},
    });
    let table = compare(&[
        (label(&ours, "a.json"), ours.clone()),
        (label(&harness, "b.json"), harness),
    ]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "| task | metric | m / software | b.json | Δ b.json |"
    );
    // acc: +0.04 over √(0.03² + 0²) = 1.33σ; acc_norm: −0.02 over √(0.04² + 0.03²) = 0.05 → −0.4σ.
    assert_eq!(
        lines[2],
        "| piqa | acc ↑ | 0.6000 ± 0.0300 | 0.6400 ± 0.0000 | +0.0400 (+1.3σ) |"
    );
    assert_eq!(
        lines[3],
        "| piqa | acc_norm ↑ | 0.6200 ± 0.0400 | 0.6000 ± 0.0300 | -0.0200 (-0.4σ) |"
    );
}
