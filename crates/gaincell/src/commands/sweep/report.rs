//! A sweep's result files, all from the definition and the rows alone (so a merge of shards writes exactly what
//! the unsharded run writes): sweep.csv, results.json, results.md, the cost plots and the Pareto plots.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use gaincell_cost::{CostReport, GpuBaseline};
use serde_json::{json, Value};

use super::accuracy::Accuracy;
use super::front_plot::{front_on, Front};
use super::shard::Definition;
use super::{pareto, plot, Row};
use crate::commands::cost::si;
use crate::plot::{save, tick};

/// Mark each row's place on the two fronts (accuracy vs energy per token, accuracy vs latency per token).
pub fn mark_fronts(rows: &mut [Row]) {
    let objective: Vec<f64> = rows
        .iter()
        .map(|r| {
            r.accuracy
                .as_ref()
                .and_then(|a| a.objective())
                .map_or(f64::NAN, |o| o.0)
        })
        .collect();
    if objective.iter().all(|o| o.is_nan()) {
        return;
    }
    let pairs = |cost: fn(&CostReport) -> f64| -> Vec<(f64, f64)> {
        rows.iter()
            .zip(&objective)
            .map(|(r, &o)| (o, cost(&r.report)))
            .collect()
    };
    let energy = pareto::front(&pairs(energy_per_token));
    let latency = pareto::front(&pairs(latency_per_token));
    for ((r, e), l) in rows.iter_mut().zip(energy).zip(latency) {
        r.pareto = Some((e, l));
    }
}

/// The whole model's attention, per token (J).
fn energy_per_token(r: &CostReport) -> f64 {
    r.energy_pj.per_model * 1e-12
}

/// All layers one after another, per token (s).
fn latency_per_token(r: &CostReport) -> f64 {
    r.model_latency_ns * 1e-9
}

fn pareto_cell(p: Option<(bool, bool)>) -> &'static str {
    match p {
        Some((true, true)) => "energy+latency",
        Some((true, false)) => "energy",
        Some((false, true)) => "latency",
        Some((false, false)) => "no",
        None => "",
    }
}

/// Write every file into `out` (created if missing); returns the files written.
pub fn write_all(
    out: &Path,
    def: &Definition,
    rows: &[Row],
    baselines: &[GpuBaseline],
    plots: bool,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let keys: Vec<String> = def.vary.iter().map(|v| v.key.clone()).collect();
    let mut written = Vec::new();
    for (name, text) in [
        ("sweep.csv", csv(&keys, rows)),
        (
            "results.json",
            serde_json::to_string_pretty(&results_json(def, rows))? + "\n",
        ),
        ("results.md", markdown(def, rows)),
    ] {
        let path = out.join(name);
        crate::paths::write_file(&path, text)?;
        written.push(path);
    }
    if plots {
        written.extend(plot::all(out, rows, baselines)?);
        written.extend(front_plots(out, rows)?);
    }
    Ok(written)
}

/// The CSV text: key columns, then the cost group, the accuracy group and `pareto`. Numbers in full precision.
pub fn csv(keys: &[String], rows: &[Row]) -> String {
    let mut header: Vec<String> = vec!["point".into()];
    header.extend(keys.iter().cloned());
    let mut lines = Vec::with_capacity(rows.len() + 1);
    for (i, r) in rows.iter().enumerate() {
        // A cost column named like a varied key (`window`) would repeat it: the key column stays.
        let mut cols: Vec<(String, String)> = cost_columns(&r.report)
            .into_iter()
            .filter(|(name, _)| !keys.contains(name))
            .collect();
        if let Some(a) = &r.accuracy {
            cols.extend(a.columns());
            cols.push(("pareto".into(), pareto_cell(r.pareto).into()));
        }
        if i == 0 {
            header.extend(cols.iter().map(|(name, _)| name.clone()));
            lines.push(header.join(","));
        }
        let mut cells = vec![r.index.to_string()];
        cells.extend(r.settings.iter().map(|(_, v)| csv_cell(v)));
        cells.extend(cols.into_iter().map(|(_, v)| v));
        lines.push(cells.join(","));
    }
    lines.join("\n") + "\n"
}

fn csv_cell(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// The cost column group of one point.
fn cost_columns(r: &CostReport) -> Vec<(String, String)> {
    let (c, l, e) = (&r.counts, &r.latency, &r.energy);
    let mut cols: Vec<(String, String)> = [
        ("chip", csv_cell(&r.chip)),
        ("model", csv_cell(&r.model.name)),
        ("window", c.window.to_string()),
        ("tile_rows", c.tile_rows.to_string()),
        ("sub_tiles", c.sub_tiles.to_string()),
        ("adder_depth", c.adder_depth.to_string()),
        ("latency_ns", l.total_ns.to_string()),
        ("model_latency_ns", r.model_latency_ns.to_string()),
        ("energy_qk_pj", e.qk_pj.to_string()),
        ("energy_pv_pj", e.pv_pj.to_string()),
        ("energy_digital_pj", e.digital_pj.to_string()),
        ("energy_dac_pj", e.dac_pj.to_string()),
        ("energy_head_pj", e.total_pj.to_string()),
        ("energy_layer_pj", r.energy_pj.per_layer.to_string()),
        ("energy_model_pj", r.energy_pj.per_model.to_string()),
        ("cells_model", r.cells.per_model.to_string()),
        ("area_head_mm2", r.area_mm2.per_head.to_string()),
        ("area_layer_mm2", r.area_mm2.per_layer.to_string()),
        ("area_model_mm2", r.area_mm2.per_model.to_string()),
        (
            "column_lifetime_s",
            r.retention.column_lifetime_s.to_string(),
        ),
        ("oldest_decay", r.retention.oldest_decay.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut used: Vec<String> = Vec::new();
    for cmp in &r.comparisons {
        // Two measurement files of the same GPU get distinct columns.
        let mut slug = slug(&cmp.baseline);
        if used.contains(&slug) {
            slug = format!("{slug}_{}", used.len() + 1);
        }
        used.push(slug.clone());
        cols.push((format!("speedup_vs_{slug}"), cmp.speedup.to_string()));
        cols.push((
            format!("energy_ratio_vs_{slug}"),
            cmp.energy_ratio.to_string(),
        ));
    }
    cols
}

/// "RTX 4090" → "rtx_4090".
fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    s.split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// A point's accuracy as plain JSON numbers (shards keep them as exact text instead).
fn accuracy_json(a: &Accuracy) -> Value {
    json!({
        "text": a.text.as_ref().map(|t| json!({
            "tokens_scored": t.tokens_scored,
            "loss": t.loss,
            "perplexity": t.perplexity,
            "bits_per_byte": t.bits_per_byte,
        })),
        "task": a.task.as_ref().map(|t| json!({
            "task": t.task,
            "metrics": t.metrics.iter().map(|m| json!({
                "name": m.name,
                "value": m.value,
                "stderr": m.stderr,
                "higher_is_better": m.higher_is_better,
            })).collect::<Vec<_>>(),
        })),
        "seconds": a.seconds,
    })
}

fn results_json(def: &Definition, rows: &[Row]) -> Value {
    let points: Vec<Value> = rows
        .iter()
        .map(|r| {
            let settings: serde_json::Map<String, Value> = r
                .settings
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            json!({
                "point": r.index,
                "settings": settings,
                "accuracy": r.accuracy.as_ref().map(accuracy_json),
                "pareto": r.pareto.map(|(e, l)| json!({"energy": e, "latency": l})),
                "cost": r.report,
            })
        })
        .collect();
    json!({
        "format": "gaincell-sweep-results/1",
        "definition": def,
        "points": points,
    })
}

fn markdown(def: &Definition, rows: &[Row]) -> String {
    let m = &def.cost_model;
    let with_accuracy = rows.iter().any(|r| r.accuracy.is_some());
    let mut md = format!(
        "# Sweep: {}\n\n{} points; base chip `{}`; cost for `{}` ({} layers × {} heads of {} dims), per token of \
         the whole model's attention.\n",
        if with_accuracy { "accuracy × cost" } else { "cost" },
        rows.len(),
        rows.first().map_or("-", |r| r.report.chip.as_str()),
        m.name,
        m.n_layer,
        m.n_head,
        m.head_dim
    );
    if let Some(a) = &def.accuracy {
        md += &format!("Accuracy of `{}`", a.model);
        if let Some(t) = &a.text {
            md += &format!(
                " on `{}` ({} tokens, ctx {}, stride {})",
                t.path, t.tokens, t.ctx, t.stride
            );
        }
        if let Some(t) = &a.task {
            md += &format!(" and {} ({} documents)", t.task, t.docs);
        }
        md += ". Pareto: on the front of accuracy vs energy per token, vs latency per token, both, or no.\n";
    }
    let mut header: Vec<String> = vec!["point".into()];
    header.extend(def.vary.iter().map(|v| v.key.clone()));
    let acc_names: Vec<String> =
        rows.iter()
            .find_map(|r| r.accuracy.as_ref())
            .map_or(Vec::new(), |a| {
                let mut n = Vec::new();
                if a.text.is_some() {
                    n.extend(["loss".to_string(), "perplexity".to_string()]);
                }
                if let Some(t) = &a.task {
                    n.extend(t.metrics.iter().map(|m| format!("{} {}", t.task, m.name)));
                }
                n
            });
    header.extend(acc_names.iter().cloned());
    header.extend(["latency/token", "energy/token", "area"].map(String::from));
    if with_accuracy {
        header.push("pareto".into());
    }
    md += &format!(
        "\n| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for r in rows {
        let mut cells = vec![r.index.to_string()];
        cells.extend(r.settings.iter().map(|(_, v)| v.clone()));
        if let Some(a) = &r.accuracy {
            if let Some(t) = &a.text {
                cells.push(format!("{:.4}", t.loss));
                cells.push(format!("{:.3}", t.perplexity));
            }
            if let Some(t) = &a.task {
                cells.extend(t.metrics.iter().map(|m| format!("{:.4}", m.value)));
            }
        }
        cells.push(si(latency_per_token(&r.report), "s"));
        cells.push(si(energy_per_token(&r.report), "J"));
        cells.push(format!("{:.4} mm²", r.report.area_mm2.per_model));
        if with_accuracy {
            cells.push(pareto_cell(r.pareto).into());
        }
        md += &format!("| {} |\n", cells.join(" | "));
    }
    md
}

/// accuracy vs energy per token and vs latency per token, when the rows have an accuracy.
fn front_plots(out: &Path, rows: &[Row]) -> Result<Vec<PathBuf>> {
    let Some((_, label)) = rows.iter().find_map(|r| r.accuracy.as_ref()?.objective()) else {
        return Ok(Vec::new());
    };
    let negated = rows
        .iter()
        .find_map(|r| r.accuracy.as_ref()?.text.is_none().then_some(()))
        .is_some();
    let model = &rows[0].report.model.name;
    let mut written = Vec::new();
    for (stem, what, x_fmt, cost, on) in [
        (
            "pareto_energy",
            "energy per token",
            (|x| tick(x, "J")) as fn(f64) -> String,
            energy_per_token as fn(&CostReport) -> f64,
            (|p: (bool, bool)| p.0) as fn((bool, bool)) -> bool,
        ),
        (
            "pareto_latency",
            "latency per token",
            |x| tick(x, "s"),
            latency_per_token,
            |p| p.1,
        ),
    ] {
        let points = rows
            .iter()
            .filter_map(|r| {
                let (o, _) = r.accuracy.as_ref()?.objective()?;
                let shown = if negated { -o } else { o };
                let label: Vec<&str> = r.settings.iter().map(|(_, v)| v.as_str()).collect();
                Some((
                    cost(&r.report),
                    shown,
                    r.pareto.is_some_and(on),
                    label.join("/"),
                ))
            })
            .collect();
        let keys: Vec<&str> = rows[0].settings.iter().map(|(k, _)| k.as_str()).collect();
        let spec = Front {
            title: format!("{label} vs {what} ({model})"),
            x_desc: format!(
                "{what}, whole model's attention (labels: {})",
                keys.join("/")
            ),
            y_desc: label.clone(),
            x_fmt,
            points,
        };
        written.extend(save(out, stem, |c| front_on(c, &spec))?);
    }
    Ok(written)
}
