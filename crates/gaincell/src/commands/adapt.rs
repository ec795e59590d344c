//! `gaincell adapt`: the statistics-matching adaptation of a linear checkpoint onto a nonlinear chip
//! (docs/mapping.md#adaptation).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use gaincell_chip::ChipConfig;
use gaincell_model::checkpoint;
use gaincell_train::adapt::{adapt, AdaptOptions, Adaptation, Iteration};
use gaincell_train::data::{Shards, Split};

#[derive(Args)]
pub struct AdaptArgs {
    /// A checkpoint trained on a linear chip (its sidecar holds the target statistics).
    #[arg(long)]
    from: PathBuf,
    /// The nonlinear chip to adapt to.
    #[arg(long, default_value = "paper-nonlinear")]
    chip: String,
    /// A prepared data folder (`gaincell data prepare`); the fixed batch is drawn from its training split.
    #[arg(long)]
    data: PathBuf,
    /// Where to write the adapted checkpoint.
    #[arg(long)]
    out: PathBuf,
    /// Sequences in the fixed batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Tokens per sequence (default: the model's positions).
    #[arg(long)]
    ctx: Option<usize>,
    #[arg(long, default_value_t = 100)]
    max_iterations: usize,
    #[arg(long, default_value_t = 1e-4)]
    eps: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(a: AdaptArgs) -> Result<()> {
    // The adapted model beside the source checkpoint's optimiser state would resume as neither.
    crate::paths::refuse_overlap("--out", &a.out, &[("--from", &a.from), ("--data", &a.data)])?;
    let targets = gaincell_train::pipeline::read_statistics(&a.from)?;
    let chip = ChipConfig::load(&a.chip)?;
    let mut model = checkpoint::load(&a.from, Some(chip))?;
    let shards = Shards::open(&a.data)?;
    let ctx = a.ctx.unwrap_or(model.config.n_positions());
    let (x, y) = shards.batch(Split::Train, a.batch, ctx, a.seed, u64::MAX)?;
    println!("{}", super::chip::summary(&model.chip));
    println!(
        "adapting {} on one batch of {} × {ctx} tokens",
        a.from.display(),
        a.batch
    );
    println!("{}", table_header());
    let opts = AdaptOptions {
        max_iterations: a.max_iterations,
        eps: a.eps,
        ..Default::default()
    };
    let r = adapt(&mut model, &targets, &x, &y, a.batch, &opts, &mut |it| {
        println!("{}", table_row(it))
    })?;
    println!("{}", outcome(&r));
    checkpoint::save(
        &model,
        &a.out,
        serde_json::json!({ "adapted_from": a.from.display().to_string(), "adaptation": r, "statistics": targets }),
    )?;
    // The tokenizer the data was prepared with (the one the model was trained with).
    checkpoint::copy_tokenizer(&a.data, &a.out)?;
    println!("wrote {}", a.out.display());
    Ok(())
}

/// The heading of the per-iteration table (`adapt` and `demo` print the same one).
pub fn table_header() -> String {
    format!(
        "{:>5} {:>10} {:>7} {:>14} {:>14} {:>8}",
        "iter", "loss", "α", "worst |Δμ|", "worst |Δσ|", "updated"
    )
}

/// One iteration as a row under [`table_header`].
pub fn table_row(it: &Iteration) -> String {
    format!(
        "{:>5} {:>10.4} {:>7.3} {:>14.2e} {:>14.2e} {:>8}",
        it.iteration, it.loss, it.alpha, it.worst_mean_error, it.worst_std_error, it.updated
    )
}

/// "loss A → B in N iterations (why it stopped)".
pub fn outcome(r: &Adaptation) -> String {
    format!(
        "loss {:.4} → {:.4} in {} iterations ({})",
        r.loss_before,
        r.loss_after,
        r.iterations.len(),
        if r.converged {
            "all statistics within ε"
        } else {
            "stopped at the iteration limit"
        }
    )
}
