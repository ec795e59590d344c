//! The sweep's plots, each as PNG and SVG: latency and energy per token vs window against the GPU baselines (log
//! scale), the energy breakdown of every point, and area vs window.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::prelude::SeriesLabelPosition;

use super::{describe, Row};
use crate::plot::{font_ready, lines_on, save, stacked_on, tick, trim_zeros, Lines, Stacked};
use gaincell_cost::GpuBaseline;

/// Draw every plot into `out`; returns the files written.
pub fn all(out: &Path, rows: &[Row], baselines: &[GpuBaseline]) -> Result<Vec<PathBuf>> {
    font_ready()?;
    let gpu_ref = |value: fn(&GpuBaseline) -> f64| {
        baselines
            .iter()
            .map(|b| {
                let w = &b.workload;
                (
                    format!("{} ({} heads, {} tokens)", b.name, w.heads, w.tokens),
                    value(b),
                )
            })
            .collect::<Vec<_>>()
    };
    let heads = rows[0].report.model.n_head;
    let model = &rows[0].report.model.name;
    let mut written = Vec::new();

    let latency = Lines {
        title: format!("Latency per token, one layer ({model})"),
        y_desc: "latency per token (log)".into(),
        y_fmt: |y| tick(y, "s"),
        series: series(rows, |r| r.report.latency.total_ns * 1e-9),
        refs: gpu_ref(|b| b.latency_per_token_s),
        // Between the chip (ns) and the GPUs (µs) the log axis is empty.
        legend: SeriesLabelPosition::MiddleRight,
        y_range: None,
        x_desc: "window (tokens)".into(),
    };
    written.extend(save(out, "latency_vs_window", |root| {
        lines_on(root, &latency, true)
    })?);

    let energy = Lines {
        title: format!("Energy per token, one layer of {heads} heads ({model})"),
        y_desc: "energy per token (log)".into(),
        y_fmt: |y| tick(y, "J"),
        series: series(rows, |r| r.report.energy_pj.per_layer * 1e-12),
        refs: gpu_ref(|b| b.energy_per_token_j),
        legend: SeriesLabelPosition::MiddleRight,
        y_range: None,
        x_desc: "window (tokens)".into(),
    };
    written.extend(save(out, "energy_vs_window", |root| {
        lines_on(root, &energy, true)
    })?);

    let area = Lines {
        title: format!("Area of one layer of {heads} heads (assumed constants)"),
        y_desc: "area per layer".into(),
        y_fmt: |y| format!("{} mm²", trim_zeros(&format!("{y:.3}"))),
        series: series(rows, |r| r.report.area_mm2.per_layer),
        refs: Vec::new(),
        legend: SeriesLabelPosition::UpperLeft,
        y_range: None,
        x_desc: "window (tokens)".into(),
    };
    written.extend(save(out, "area_vs_window", |root| {
        lines_on(root, &area, false)
    })?);

    let keys: Vec<&str> = rows[0].settings.iter().map(|(k, _)| k.as_str()).collect();
    let breakdown = Stacked {
        title: "Energy per head per token, by part".into(),
        x_desc: format!("sweep point ({})", keys.join(" / ")),
        y_desc: "energy per head per token".into(),
        y_fmt: |y| tick(y * 1e-12, "J"),
        parts: ENERGY_PARTS.iter().map(|s| s.to_string()).collect(),
        bars: rows
            .iter()
            .map(|r| {
                let label: Vec<&str> = r.settings.iter().map(|(_, v)| v.as_str()).collect();
                (label.join("/"), energy_parts(&r.report).to_vec())
            })
            .collect(),
    };
    written.extend(save(out, "energy_breakdown", |root| {
        stacked_on(root, &breakdown)
    })?);
    Ok(written)
}

/// The four published parts of a head's energy per token (docs/cost-model.md#energy).
pub(crate) const ENERGY_PARTS: [&str; 4] = [
    "Φ(Q·Kᵀ) arrays",
    "Φ(S)·V arrays",
    "digital control, routing",
    "DACs",
];

/// A head's energy per token (pJ) in the order of [`ENERGY_PARTS`].
pub(crate) fn energy_parts(r: &gaincell_cost::CostReport) -> [f64; 4] {
    let e = &r.energy;
    [e.qk_pj, e.pv_pj, e.digital_pj, e.dac_pj]
}

/// Points grouped by every varied field except the window, x = window.
fn series(rows: &[Row], y: impl Fn(&Row) -> f64) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in rows {
        let others: Vec<(String, String)> = r
            .settings
            .iter()
            .filter(|(k, _)| k != "window" && k != "geometry.window")
            .cloned()
            .collect();
        let label = if others.is_empty() {
            r.report.chip.clone()
        } else {
            describe(&others)
        };
        let point = (r.report.counts.window as f64, y(r));
        match out.iter_mut().find(|(l, _)| *l == label) {
            Some((_, pts)) => pts.push(point),
            None => out.push((label, vec![point])),
        }
    }
    for (_, pts) in &mut out {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}
