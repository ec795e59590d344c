//! `gaincell pipeline --config pipeline.toml`: software → linear → adapt → nonlinear, and the two shortcuts, as one
//! resumable job; writes `results.json`, `results.md` and the validation-loss curves (PNG + SVG).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use gaincell_train::pipeline::{self, PipelineConfig, PipelineResult, Progress};
use gaincell_train::trainer::Event;
use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::SeriesLabelPosition;

use crate::plot::{font_ready, lines_on, save, Lines};

#[derive(Args)]
pub struct PipelineArgs {
    /// The job: data, model shape, chips, schedule, optimisers (see configs/pipeline-small.toml).
    #[arg(long)]
    config: PathBuf,
    /// Override the schedule's seed (data order and fresh weights): runs of several seeds from one config.
    #[arg(long)]
    seed: Option<u64>,
    /// Override the output folder (with --seed: one folder per seed).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Resume stages even when their settings differ from their checkpoints' (each change is printed and
    /// logged in the stage's config-changes.jsonl); without it such a resume is refused.
    #[arg(long)]
    allow_config_change: bool,
}

pub fn run(a: PipelineArgs) -> Result<()> {
    let mut config = PipelineConfig::load(&a.config)?;
    if let Some(seed) = a.seed {
        config.schedule.seed = seed;
    }
    if let Some(out) = a.out {
        config.out = out;
    }
    println!("pipeline → {}", config.out.display());
    let mut bar: Option<ProgressBar> = None;
    let result = pipeline::run_with(&config, a.allow_config_change, &mut |p| match p {
        Progress::StageStarted {
            stage,
            steps,
            resumed,
        } => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            println!(
                "── {stage}{} ({steps} {})",
                if resumed { ", resuming" } else { "" },
                if stage == "adapt" {
                    "iterations at most"
                } else {
                    "steps"
                }
            );
            let b = ProgressBar::new(steps as u64).with_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len}  {msg}  ETA {eta}")
                    .expect("valid template"),
            );
            bar = Some(b);
        }
        Progress::StageSkipped { stage } => println!("── {stage}: done already, skipped"),
        Progress::Train { stage, event } => {
            if let Some(b) = &bar {
                match event {
                    Event::Step {
                        step,
                        loss,
                        tokens_per_s,
                        ..
                    } => {
                        b.set_position(*step as u64);
                        b.set_message(format!("loss {loss:.4}  {tokens_per_s:.0} tok/s"));
                    }
                    Event::Eval { step, val_loss } => b.println(format!(
                        "{stage} step {step}: validation loss {val_loss:.4}"
                    )),
                    Event::ConfigChanged { step, changes } => b.suspend(|| {
            // A warning, printed even when the bar is hidden (no terminal).
            eprintln!(
                        "warning: {stage} resumes at step {step} with changed settings (--allow-config-change): {}",
                        changes.join("; ")
                    )
        }),
                }
            }
        }
        Progress::Adapt(it) => {
            if let Some(b) = &bar {
                b.set_position(it.iteration as u64);
                b.println(format!(
                    "adapt {:>3}: loss {:.4}  α {:.3}  worst |Δμ| {:.2e}  worst |Δσ| {:.2e}",
                    it.iteration, it.loss, it.alpha, it.worst_mean_error, it.worst_std_error
                ));
            }
        }
    })?;
    if let Some(b) = bar.take() {
        b.finish_and_clear();
    }
    let md = markdown(&result);
    println!("{md}");
    crate::paths::write_file(config.out.join("results.md"), &md)?;
    let files = plot_curves(&config.out, &result, config.schedule.linear_steps)?;
    for f in files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

/// The results table, in the shape of the paper's comparison.
pub fn markdown(r: &PipelineResult) -> String {
    let mut s = String::from(
        "| run | chip | starts from | steps | validation loss |\n|---|---|---|---:|---:|\n",
    );
    for st in &r.stages {
        // The stage a run starts from: `…/software/checkpoint` → software, `…/adapted` → adapted.
        let p = Path::new(&st.init);
        let p = if p.ends_with("checkpoint") {
            p.parent().unwrap_or(p)
        } else {
            p
        };
        let init = p
            .file_name()
            .map_or(st.init.clone(), |n| n.to_string_lossy().into_owned());
        s += &format!(
            "| {} | {} | {} | {} | {:.4} |\n",
            st.stage, st.chip, init, st.steps, st.final_val_loss
        );
    }
    s += &format!(
        "\nAdaptation: validation loss {:.4} (linear weights on the nonlinear cell) → {:.4} after {} iterations ({}); \
         training-batch loss {:.4} → {:.4}.\n",
        r.unadapted_val_loss,
        r.adapted_val_loss,
        r.adaptation.iterations.len(),
        if r.adaptation.converged { "converged" } else { "iteration limit" },
        r.adaptation.loss_before,
        r.adaptation.loss_after
    );
    s
}

fn plot_curves(out: &Path, r: &PipelineResult, linear_steps: usize) -> Result<Vec<PathBuf>> {
    font_ready()?;
    let pts = |name: &str, offset: usize| -> Vec<(f64, f64)> {
        r.stage(name)
            .map(|s| {
                s.curve
                    .iter()
                    .map(|&(x, y)| ((x + offset) as f64, y))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut mapped = vec![(linear_steps as f64, r.adapted_val_loss)];
    mapped.extend(pts("nonlinear", linear_steps));
    let series = vec![
        (
            "linear, fine-tuned from software".to_string(),
            pts("linear", 0),
        ),
        ("nonlinear: linear → adapt → fine-tune".to_string(), mapped),
        (
            "nonlinear, fine-tuned directly from software".to_string(),
            pts("direct", 0),
        ),
        ("nonlinear, from scratch".to_string(), pts("scratch", 0)),
    ];
    let ys = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .filter(|y| y.is_finite());
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    let mut refs = Vec::new();
    if let Some(sw) = r.stage("software") {
        refs.push(("software model".to_string(), sw.final_val_loss));
    }
    let spec = Lines {
        title: "Validation loss while mapping onto the gain-cell chip".into(),
        x_desc: "training step (fine-tunes from the software model; scratch from random)".into(),
        y_desc: "validation loss (nats/token)".into(),
        y_fmt: |y| format!("{y:.2}"),
        series: series.into_iter().filter(|(_, p)| !p.is_empty()).collect(),
        refs,
        legend: SeriesLabelPosition::UpperRight,
        y_range: Some(((lo - 0.1).max(0.0), hi + 0.1)),
    };
    save(out, "curves", |canvas| lines_on(canvas, &spec, false))
}
