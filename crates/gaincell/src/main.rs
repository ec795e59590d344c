//! `gaincell`: the command-line program. Thin: parses arguments, calls the library crates, prints and writes
//! results. One module per subcommand under `commands/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` unless the command's JSON goes to standard output (`--json -`), then `eprintln!`, so that standard
/// output holds the JSON alone.
macro_rules! human {
    ($to_stderr:expr, $($arg:tt)*) => {
        if $to_stderr {
            eprintln!($($arg)*)
        } else {
            println!($($arg)*)
        }
    };
}

mod arg_checks;
mod commands;
mod model_args;
mod npy;
mod parquet_rows;
mod paths;
mod plot;

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
    /// The main job, offline in a few minutes: the shipped software / linear / nonlinear models compared, the
    /// adaptation run live, text generated on the simulated arrays, the chip's cost; writes gaincell-report/.
    Demo(commands::demo::DemoArgs),
    /// Chip descriptions: list the presets, print one as TOML, check a file.
    #[command(subcommand)]
    Chip(commands::chip::ChipCommand),
    /// Cell curves: fit a polynomial cell to an I–V table and write a chip file that uses it; characterise a sky130
    /// cell in SPICE (ngspice).
    #[command(subcommand)]
    Cell(commands::cell::CellCommand),
    /// Simulate gain-cell arrays on q, k, v given as .npy files (physical units) and write S, φ and the output.
    Attention(commands::attention::AttentionArgs),
    /// Evaluate a model on a chip: perplexity of a text, the zero-shot task table, comparisons of results.
    #[command(subcommand)]
    Eval(commands::eval::EvalCommand),
    /// Tokenizers: train a small byte-level BPE on a corpus, or show how one splits a text.
    #[command(subcommand)]
    Tokenizer(commands::tokenizer::TokenizerCommand),
    /// Training data: tokenise a corpus into token shards.
    #[command(subcommand)]
    Data(commands::data::DataCommand),
    /// Train a model on a chip (hardware-aware, surrogate gradients), resumable.
    Train(commands::train::TrainArgs),
    /// Adapt a linear-chip checkpoint onto the nonlinear cell by matching per-head statistics
    /// (docs/mapping.md#adaptation).
    Adapt(commands::adapt::AdaptArgs),
    /// The mapping pipeline as one resumable job: software → linear → adapt → nonlinear, and the shortcuts.
    Pipeline(commands::pipeline::PipelineArgs),
    /// Rewrite a checkpoint with its weights in f16/bf16 (for shipping), keeping its chip and records.
    Export(commands::export::ExportArgs),
    /// Convert a model between formats: llama2.c checkpoint → HF folder (transformers loads it), or back.
    Convert(commands::convert::ConvertArgs),
    /// Generate text token by token on the simulated arrays.
    Generate(commands::generate::GenerateArgs),
    /// Benchmarks that print their figure beside a reference measured in the same run.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
    /// Latency, energy, area and retention of a chip running a model's attention, beside GPU baselines.
    Cost(commands::cost::CostArgs),
    /// Cost, and with --accuracy-model accuracy, of every combination of chip fields (--vary KEY=V1,V2,...): CSV,
    /// JSON, markdown and plots with the Pareto fronts; `sweep merge` joins `--shard I/N` runs.
    Sweep(commands::sweep::SweepArgs),
    /// Studies the paper leaves open, each writing a table (markdown + JSON) and plots: `study cells` puts the
    /// linear model's weights on other cell curves, unadapted, adapted and fine-tuned.
    #[command(subcommand)]
    Study(commands::study::StudyCommand),
}

/// mimalloc's `mi_option_purge_delay` (index 15 in both its v2 and v3 option enums).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keep freed pages mapped: by default mimalloc hands idle pages back to the OS after a few milliseconds, and the
/// model's per-layer temporaries (tens of MB, freed and re-allocated every layer) then page-fault back in, zeroed
/// by the kernel: 9% of a GPT-2 forward's time, measured with perf. An explicit `MIMALLOC_PURGE_DELAY` wins.
fn keep_freed_pages_mapped() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option of the allocator; mimalloc documents it as callable at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

/// candle asks for its thread count on every matmul, and without `RAYON_NUM_THREADS` it counts the physical cores
/// by reading /proc/cpuinfo each time (candle-core 0.11 `utils::get_num_threads`): perf showed it, with the
/// scheduler calls around it, as a quarter of a small model's forward and a 10× slower token-by-token decode.
/// Pin it, before any thread exists, to the count rayon uses by default anyway.
///
/// candle 0.11 also runs its element-wise ops on a second pool of its own (`CANDLE_NUM_THREADS`, default: the
/// same count), whose workers and caller spin-wait: beside rayon's one thread per core that is twice as many
/// threads as cores, and a caller spinning on a descheduled worker. On the 2-core machine perf put the spinning at
/// 10–20 % of a training step (more when anything else runs); our hot element-wise ops are rayon ops of our own,
/// so candle's remaining ones (gradient accumulation, residual adds) run on the calling thread instead: bench
/// train was as fast or faster in every one of 4 interleaved pairs, up to 2× when the machine was busy.
fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

fn main() -> ExitCode {
    pin_thread_count();
    keep_freed_pages_mapped();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Chip(c) => commands::chip::run(c),
        Command::Cell(c) => commands::cell::run(c),
        Command::Attention(a) => commands::attention::run(a),
        Command::Bench(b) => commands::bench::run(b),
        Command::Eval(e) => commands::eval::run(e),
        Command::Export(a) => commands::export::run(a),
        Command::Convert(a) => commands::convert::run(a),
        Command::Demo(a) => commands::demo::run(a),
        Command::Generate(g) => commands::generate::run(g),
        Command::Tokenizer(t) => commands::tokenizer::run(t),
        Command::Data(d) => commands::data::run(d),
        Command::Train(t) => commands::train::run(t),
        Command::Adapt(a) => commands::adapt::run(a),
        Command::Pipeline(p) => commands::pipeline::run(p),
        Command::Cost(c) => commands::cost::run(c),
        Command::Sweep(s) => commands::sweep::run(s),
        Command::Study(s) => commands::study::run(s),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

/// The whole cause chain on one line, outermost first; a cause whose text an outer message already quotes (an
/// I/O error wrapped with its path, say) is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string().replace('\n', " ");
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
