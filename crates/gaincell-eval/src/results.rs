//! Results in lm-evaluation-harness's shape (`results: {task: {metric: value, metric_stderr: …}}`, with
//! `versions`, `n-shot`, `higher_is_better`, `n-samples` and our `config`), the markdown table, and the
//! side-by-side comparison of several results files (ours, or the harness's own, whose keys carry a `,none`
//! filter suffix).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{json, Map, Value};

use crate::evaluate::TaskResult;
use crate::tasks::Task;

/// A task that was not run, and why (its data is missing).
#[derive(Debug, Clone)]
pub struct Skipped {
    pub task: Task,
    pub reason: String,
}

/// The results file of one run. `original[task]`: documents the task has before `--limit`.
pub fn report(
    results: &[TaskResult],
    skipped: &[Skipped],
    original: &BTreeMap<Task, usize>,
    config: Value,
    seconds: f64,
) -> Value {
    let (mut res, mut versions, mut nshot, mut hib, mut samples, mut timing) = (
        Map::new(),
        Map::new(),
        Map::new(),
        Map::new(),
        Map::new(),
        Map::new(),
    );
    for r in results {
        let name = r.task.name();
        let mut m = Map::new();
        m.insert("alias".into(), json!(name));
        let mut better = Map::new();
        for v in &r.metrics {
            m.insert(v.name.into(), json!(v.value));
            m.insert(
                format!("{}_stderr", v.name),
                v.stderr.map_or(json!("N/A"), |s| json!(s)),
            );
            better.insert(v.name.into(), json!(v.higher_is_better));
        }
        res.insert(name.into(), Value::Object(m));
        versions.insert(name.into(), json!(r.task.version()));
        nshot.insert(name.into(), json!(0));
        hib.insert(name.into(), Value::Object(better));
        samples.insert(
            name.into(),
            json!({"original": original.get(&r.task).copied().unwrap_or(r.docs), "effective": r.docs}),
        );
        timing.insert(
            name.into(),
            json!({
                "seconds": r.seconds,
                "scoring_seconds": r.scoring.seconds,
                "requests": r.scoring.requests,
                "requests_per_s": r.scoring.requests_per_s(),
                "model_calls": r.scoring.calls,
                "tokens_computed": r.scoring.tokens_computed,
                "tokens_requested": r.scoring.tokens_requested,
            }),
        );
    }
    let skipped: Map<String, Value> = skipped
        .iter()
        .map(|s| (s.task.name().to_string(), json!(s.reason)))
        .collect();
    let date = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    json!({
        "results": res,
        "versions": versions,
        "n-shot": nshot,
        "higher_is_better": hib,
        "n-samples": samples,
        "skipped": skipped,
        "config": config,
        "timing": {"total_seconds": seconds, "tasks": timing},
        "date": date,
    })
}

/// One metric of one task in a results file.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    task: String,
    metric: String,
    value: f64,
    stderr: Option<f64>,
    higher_is_better: Option<bool>,
}

/// The metrics of a results file (ours or the harness's).
fn rows(file: &Value) -> Vec<Row> {
    let mut out = Vec::new();
    let Some(results) = file["results"].as_object() else {
        return out;
    };
    for (task, metrics) in results {
        let Some(metrics) = metrics.as_object() else {
            continue;
        };
        for (key, value) in metrics {
            let metric = key.split(',').next().unwrap_or(key);
            let Some(v) = value.as_f64() else { continue };
            if metric.ends_with("_stderr") {
                continue;
            }
            let stderr = metrics
                .iter()
                .find(|(k, _)| k.split(',').next() == Some(&format!("{metric}_stderr")))
                .and_then(|(_, s)| s.as_f64());
            out.push(Row {
                task: task.clone(),
                metric: metric.to_string(),
                value: v,
                stderr,
                higher_is_better: file["higher_is_better"][task][metric].as_bool(),
            });
        }
    }
    // JSON objects come back sorted by name: show known tasks and metrics in the table's order instead.
    let rank = |task: &str, metric: &str| match Task::parse(task) {
        Ok(t) => (
            Task::ALL.iter().position(|&x| x == t).unwrap_or(0),
            t.metrics()
                .iter()
                .position(|m| m.name == metric)
                .unwrap_or(usize::MAX),
        ),
        Err(_) => (Task::ALL.len(), 0),
    };
    out.sort_by_key(|r| rank(&r.task, &r.metric));
    out
}

/// The markdown table of one results file, one row per metric, in the harness's layout.
pub fn markdown(file: &Value) -> String {
    let mut s = String::from(
        "| Tasks | Version | n-shot | Metric | | Value | | Stderr |\n|---|--:|--:|---|---|--:|---|--:|\n",
    );
    let mut last = String::new();
    for r in rows(file) {
        let (shown, version, shot) = if r.task == last {
            (String::new(), String::new(), String::new())
        } else {
            (
                r.task.clone(),
                file["versions"][&r.task].to_string(),
                file["n-shot"][&r.task].to_string(),
            )
        };
        let se = r.stderr.map_or("N/A".to_string(), |x| format!("{x:.4}"));
        let _ = writeln!(
            s,
            "| {shown} | {version} | {shot} | {} | {} | {:.4} | ± | {se} |",
            r.metric,
            arrow(r.higher_is_better),
            r.value
        );
        last = r.task;
    }
    if let Some(skipped) = file["skipped"].as_object() {
        for (task, why) in skipped {
            let _ = writeln!(s, "\nskipped {task}: {}", why.as_str().unwrap_or(""));
        }
    }
    s
}

/// A column title for a results file: the model and chip from its config, else `fallback` (the file name).
pub fn label(file: &Value, fallback: &str) -> String {
    let c = &file["config"];
    match (c["model"].as_str(), c["chip"].as_str()) {
        (Some(m), Some(chip)) => {
            let m = m.trim_end_matches('/');
            format!("{} / {chip}", m.rsplit('/').next().unwrap_or(m))
        }
        _ => fallback.to_string(),
    }
}

/// Side-by-side markdown table of several results files, `(label, file)`: one column per file (value ± stderr),
/// then each file's difference from the first, with the difference in combined standard errors where both
/// have one.
pub fn compare(files: &[(String, Value)]) -> String {
    let tables: Vec<Vec<Row>> = files.iter().map(|(_, f)| rows(f)).collect();
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in tables.iter().flatten() {
        if !keys.contains(&(&r.task, &r.metric)) {
            keys.push((&r.task, &r.metric));
        }
    }
    let mut s = String::from("| task | metric |");
    for (l, _) in files {
        let _ = write!(s, " {l} |");
    }
    for (l, _) in &files[1..] {
        let _ = write!(s, " Δ {l} |");
    }
    s.push_str("\n|---|---|");
    s.push_str(&"--:|".repeat(2 * files.len() - 1));
    s.push('\n');
    for (task, metric) in keys {
        let cell: Vec<Option<&Row>> = tables
            .iter()
            .map(|t| t.iter().find(|r| r.task == task && r.metric == metric))
            .collect();
        let better = cell.iter().flatten().find_map(|r| r.higher_is_better);
        let _ = write!(
            s,
            "| {task} | {} |",
            format!("{metric} {}", arrow(better)).trim_end()
        );
        for c in &cell {
            let text = match c {
                Some(Row {
                    value,
                    stderr: Some(se),
                    ..
                }) => format!("{value:.4} ± {se:.4}"),
                Some(r) => format!("{:.4}", r.value),
                None => "–".into(),
            };
            let _ = write!(s, " {text} |");
        }
        for c in &cell[1..] {
            let text = match (cell[0], c) {
                (Some(a), Some(b)) => {
                    let d = b.value - a.value;
                    match (a.stderr, b.stderr) {
                        (Some(sa), Some(sb)) if sa.hypot(sb) > 0.0 => {
                            format!("{d:+.4} ({:+.1}σ)", d / sa.hypot(sb))
                        }
                        _ => format!("{d:+.4}"),
                    }
                }
                _ => "–".into(),
            };
            let _ = write!(s, " {text} |");
        }
        s.push('\n');
    }
    s
}

fn arrow(higher_is_better: Option<bool>) -> &'static str {
    match higher_is_better {
        Some(true) => "↑",
        Some(false) => "↓",
        None => "",
    }
}
