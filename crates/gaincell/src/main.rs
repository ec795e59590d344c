//! `gaincell`: the command-line program. Thin: parses arguments, calls the library crates, prints and writes
//! results. One module per subcommand under `commands/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod model_args;
mod npy;

// glibc malloc makes the kernels' large temporaries page-fault on every call; mimalloc keeps them warm.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Simulate, map, train and cost analog gain-cell attention for transformer language models.
#[derive(Parser)]
#[command(name = "gaincell", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Chip descriptions: list the presets, print one as TOML, check a file.
    #[command(subcommand)]
    Chip(commands::chip::ChipCommand),
    /// Simulate gain-cell arrays on q, k, v given as .npy files (physical units) and write S, φ and the output.
    Attention(commands::attention::AttentionArgs),
    /// Evaluate a model on a chip: perplexity of a text, the zero-shot task table, comparisons of results.
    #[command(subcommand)]
    Eval(commands::eval::EvalCommand),
    /// Generate text token by token on the simulated arrays.
    Generate(commands::generate::GenerateArgs),
    /// Benchmarks that print their figure beside a reference measured in the same run.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
    /// Latency, energy, area and retention of a chip running a model's attention, beside GPU baselines.
    Cost(commands::cost::CostArgs),
    /// Cost of every combination of chip fields (--vary KEY=V1,V2,...): a CSV and plots (PNG and SVG).
    Sweep(commands::sweep::SweepArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Chip(c) => commands::chip::run(c),
        Command::Attention(a) => commands::attention::run(a),
        Command::Bench(b) => commands::bench::run(b),
        Command::Eval(e) => commands::eval::run(e),
        Command::Generate(g) => commands::generate::run(g),
        Command::Cost(c) => commands::cost::run(c),
        Command::Sweep(s) => commands::sweep::run(s),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the whole cause chain, outermost first.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(2)
        }
    }
}
