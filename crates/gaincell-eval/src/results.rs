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

/// `(task, metric, value, stderr, higher is better)` rows of a results file (ours or the harness's).
fn rows(file: &Value) -> Vec<(String, String, f64, Option<f64>, Option<bool>)> {
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
            let better = file["higher_is_better"][task][metric].as_bool();
            out.push((task.clone(), metric.to_string(), v, stderr, better));
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
    out.sort_by_key(|r| rank(&r.0, &r.1));
    out
}

/// The markdown table of one results file, one row per metric, in the harness's layout.
pub fn markdown(file: &Value) -> String {
    let mut s = String::from(
        "| Tasks | Version | n-shot | Metric | | Value | | Stderr |\n|---|--:|--:|---|---|--:|---|--:|\n",
    );
    let mut last = String::new();
    for (task, metric, v, se, better) in rows(file) {
        let (shown, version, shot) = if task == last {
            (String::new(), String::new(), String::new())
        } else {
            (
                task.clone(),
                file["versions"][&task].to_string(),
                file["n-shot"][&task].to_string(),
            )
        };
        let arrow = match better {
            Some(true) => "↑",
            Some(false) => "↓",
            None => "",
        };
        let se = se.map_or("N/A".to_string(), |x| format!("{x:.4}"));
        let _ = writeln!(
            s,
            "| {shown} | {version} | {shot} | {metric} | {arrow} | {v:.4} | ± | {se} |"
        );
        last = task;
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
    let tables: Vec<_> = files.iter().map(|(_, f)| rows(f)).collect();
    let mut keys: Vec<(String, String)> = Vec::new();
    for t in &tables {
        for (task, metric, ..) in t {
            let k = (task.clone(), metric.clone());
            if !keys.contains(&k) {
                keys.push(k);
            }
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
        let cell: Vec<Option<(f64, Option<f64>, Option<bool>)>> = tables
            .iter()
            .map(|t| {
                t.iter()
                    .find(|r| r.0 == task && r.1 == metric)
                    .map(|r| (r.2, r.3, r.4))
            })
            .collect();
        let arrow = match cell.iter().flatten().find_map(|c| c.2) {
            Some(true) => " ↑",
            Some(false) => " ↓",
            None => "",
        };
        let _ = write!(s, "| {task} | {metric}{arrow} |");
        for c in &cell {
            let text = match c {
                Some((v, Some(se), _)) => format!("{v:.4} ± {se:.4}"),
                Some((v, None, _)) => format!("{v:.4}"),
                None => "–".into(),
            };
            let _ = write!(s, " {text} |");
        }
        for c in &cell[1..] {
            let text = match (&cell[0], c) {
                (Some((a, sa, _)), Some((b, sb, _))) => {
                    let d = b - a;
                    match (sa, sb) {
                        (Some(sa), Some(sb)) if sa.hypot(*sb) > 0.0 => {
                            format!("{d:+.4} ({:+.1}σ)", d / sa.hypot(*sb))
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
