//! The demo's plots, each as PNG and SVG: the adaptation curve, the per-model quality bars, latency and energy
//! against GPUs (log axes), and the chip's energy per token by part.

use std::path::{Path, PathBuf};

use anyhow::Result;
use gaincell_cost::GpuBaseline;
use plotters::prelude::{RGBColor, SeriesLabelPosition};

use super::report::DemoResults;
use crate::commands::sweep::plot::{energy_parts, ENERGY_PARTS};
use crate::plot::{
    bars_on, font_ready, lines_on, save, stacked_on, tick, Bars, Lines, Stacked, COLOURS,
};

const GPU_COLOUR: RGBColor = RGBColor(110, 110, 110);

pub fn all(out: &Path, r: &DemoResults, baselines: &[GpuBaseline]) -> Result<Vec<PathBuf>> {
    font_ready()?;
    let mut written = Vec::new();

    let ad = &r.adaptation;
    let its = &ad.outcome.iterations;
    let loss = Lines {
        title: "Adaptation: loss on the fixed batch".into(),
        x_desc: "iteration".into(),
        y_desc: "cross-entropy (nats)".into(),
        y_fmt: |y| format!("{y:.3}"),
        series: vec![(
            "nonlinear chip, adapting".into(),
            its.iter().map(|i| (i.iteration as f64, i.loss)).collect(),
        )],
        refs: vec![("the linear model".into(), ad.linear_loss)],
        legend: SeriesLabelPosition::UpperRight,
        y_range: {
            let ys = its.iter().map(|i| i.loss).chain([ad.linear_loss]);
            let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
                (a.min(y), b.max(y))
            });
            let pad = ((hi - lo) * 0.15).max(1e-3);
            Some((lo - pad, hi + pad))
        },
    };
    let floor = |x: f64| x.max(1e-9);
    let errors = Lines {
        title: "Worst statistics error left".into(),
        x_desc: "iteration".into(),
        y_desc: "|target − current| (log)".into(),
        y_fmt: |y| format!("{y:.0e}"),
        series: vec![
            (
                "worst |Δμ|".into(),
                its.iter()
                    .map(|i| (i.iteration as f64, floor(i.worst_mean_error)))
                    .collect(),
            ),
            (
                "worst |Δσ|".into(),
                its.iter()
                    .map(|i| (i.iteration as f64, floor(i.worst_std_error)))
                    .collect(),
            ),
        ],
        refs: vec![("ε".into(), 1e-4)],
        legend: SeriesLabelPosition::UpperRight,
        y_range: None,
    };
    written.extend(save(out, "adaptation", |canvas| {
        let mut halves = canvas.columns(2).into_iter();
        lines_on(halves.next().expect("two"), &loss, false)?;
        lines_on(halves.next().expect("two"), &errors, true)
    })?);

    let colour = |i: usize| COLOURS[i % COLOURS.len()];
    let bars = |f: fn(&gaincell_eval::agreement::Agreement) -> f64| {
        r.quality
            .iter()
            .enumerate()
            .map(|(i, q)| (q.variant.clone(), f(&q.metrics), colour(i)))
            .collect::<Vec<_>>()
    };
    let quality = [
        Bars {
            title: "Perplexity (lower is better)".into(),
            y_desc: "perplexity".into(),
            y_fmt: |y| format!("{y:.1}"),
            bars: bars(|m| m.perplexity),
            log_y: false,
        },
        Bars {
            title: "KL from software (nats)".into(),
            y_desc: "mean KL divergence".into(),
            y_fmt: |y| format!("{y:.3}"),
            bars: bars(|m| m.kl),
            log_y: false,
        },
        Bars {
            title: "Top-1 agreement with software".into(),
            y_desc: "fraction of positions".into(),
            y_fmt: |y| format!("{:.0}%", 100.0 * y),
            bars: bars(|m| m.top1_agreement),
            log_y: false,
        },
    ];
    written.extend(save(out, "quality", |canvas| bars_on(canvas, &quality))?);

    let chip_label = |i: usize| {
        let c = &r.cost[i];
        format!("chip: {}", c.model.name)
    };
    let mut latency: Vec<(String, f64, RGBColor)> = (0..r.cost.len())
        .map(|i| (chip_label(i), r.cost[i].latency.total_ns * 1e-9, colour(i)))
        .collect();
    // The chip's energy for as many heads as the GPU measurement ran (a GPT-2 layer), as the comparison counts it.
    let heads = baselines.first().map_or(12, |b| b.workload.heads);
    let mut energy: Vec<(String, f64, RGBColor)> = (0..r.cost.len())
        .map(|i| {
            let per_head = r.cost[i].energy_pj.per_head * 1e-12;
            (chip_label(i), per_head * heads as f64, colour(i))
        })
        .collect();
    for b in baselines {
        latency.push((b.name.clone(), b.latency_per_token_s, GPU_COLOUR));
        energy.push((b.name.clone(), b.energy_per_token_j, GPU_COLOUR));
    }
    let cost = [
        Bars {
            title: "Latency per token, one layer (log)".into(),
            y_desc: "seconds".into(),
            y_fmt: |y| tick(y, "s"),
            bars: latency,
            log_y: true,
        },
        Bars {
            title: format!("Energy per token, {heads} heads (log)"),
            y_desc: "joules".into(),
            y_fmt: |y| tick(y, "J"),
            bars: energy,
            log_y: true,
        },
    ];
    written.extend(save(out, "cost_vs_gpu", |canvas| bars_on(canvas, &cost))?);

    let breakdown = Stacked {
        title: "Energy per head per token, by part".into(),
        x_desc: "model on its chip".into(),
        y_desc: "energy per head per token".into(),
        y_fmt: |y| tick(y * 1e-12, "J"),
        parts: ENERGY_PARTS.iter().map(|s| s.to_string()).collect(),
        bars: r
            .cost
            .iter()
            .map(|c| {
                (
                    format!("{} (window {})", c.model.name, c.counts.window),
                    energy_parts(c).to_vec(),
                )
            })
            .collect(),
    };
    written.extend(save(out, "energy_breakdown", |canvas| {
        stacked_on(canvas, &breakdown)
    })?);
    Ok(written)
}
