//! `gaincell train --config run.toml [--resume]`: hardware-aware training with progress, metrics and checkpoints.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use gaincell_train::trainer::{self, Event, RunConfig};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
pub struct TrainArgs {
    /// The run: model, chip, data, [train] and [optim] sections (see configs/train-small.toml).
    #[arg(long)]
    config: PathBuf,
    /// Continue from the run's last checkpoint, bit for bit as if never stopped.
    #[arg(long)]
    resume: bool,
    /// With --resume: continue even when the config differs from the checkpoint's (chip, data, optimiser, batch,
    /// …); the changes are printed and logged in `out/config-changes.jsonl`. Without it such a resume is refused.
    #[arg(long, requires = "resume")]
    allow_config_change: bool,
}

pub fn run(a: TrainArgs) -> Result<()> {
    let config = RunConfig::load(&a.config)?;
    let chip = config.chip()?;
    println!("{}", super::chip::summary(&chip));
    println!(
        "training → {} ({} steps × {} × {} sequences of {} tokens{})",
        config.train.out.display(),
        config.train.steps,
        config.train.grad_accum,
        config.train.batch,
        config.train.ctx,
        if a.resume { ", resuming" } else { "" }
    );
    let bar = ProgressBar::new(config.train.steps as u64).with_style(
        ProgressStyle::with_template("{bar:30} step {pos}/{len}  {msg}  ETA {eta}")
            .expect("valid template"),
    );
    let options = trainer::TrainOptions {
        resume: a.resume,
        allow_config_change: a.allow_config_change,
    };
    let outcome = trainer::train_with(&config, options, &mut |ev| match ev {
        Event::Step {
            step,
            loss,
            lr,
            tokens_per_s,
            ..
        } => {
            bar.set_position(*step as u64);
            bar.set_message(format!(
                "loss {loss:.4}  lr {lr:.2e}  {tokens_per_s:.0} tok/s"
            ));
        }
        Event::Eval { step, val_loss } => {
            bar.println(format!("step {step}: validation loss {val_loss:.4}"))
        }
        Event::ConfigChanged { step, changes } => bar.suspend(|| {
            // A warning, printed even when the bar is hidden (no terminal).
            eprintln!(
            "warning: resuming at step {step} with changed settings (--allow-config-change): {}",
            changes.join("; ")
        )
        }),
    })?;
    bar.finish_and_clear();
    println!(
        "done: {} steps, validation loss {:.4}; checkpoint {}",
        outcome.steps,
        outcome.final_val_loss,
        outcome.checkpoint.display()
    );
    Ok(())
}
