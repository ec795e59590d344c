//! `gaincell export`: a checkpoint rewritten with its weights in another precision (f16/bf16 halve it, for
//! shipping), the chip and the sidecar's records (target statistics, provenance) kept.

use std::path::PathBuf;

use anyhow::Result;
use candle_core::DType;
use clap::{Args, ValueEnum};
use gaincell_model::checkpoint;

#[derive(Clone, Copy, ValueEnum)]
enum Precision {
    F32,
    F16,
    Bf16,
}

#[derive(Args)]
pub struct ExportArgs {
    /// A model folder (our checkpoint or an HF one).
    #[arg(long)]
    from: PathBuf,
    /// Where to write the copy (created; files replaced atomically).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "f16")]
    dtype: Precision,
}

pub fn run(a: ExportArgs) -> Result<()> {
    let model = checkpoint::load(&a.from, None)?;
    let extra = checkpoint::read_extra(&a.from)?;
    let dtype = match a.dtype {
        Precision::F32 => DType::F32,
        Precision::F16 => DType::F16,
        Precision::Bf16 => DType::BF16,
    };
    checkpoint::save_as(&model, &a.out, extra, dtype)?;
    checkpoint::copy_tokenizer(&a.from, &a.out)?;
    let bytes = std::fs::metadata(a.out.join("model.safetensors"))?.len();
    println!(
        "wrote {} ({} parameters, {:.1} MB of weights as {dtype:?}, chip {})",
        a.out.display(),
        model.config.parameters(),
        bytes as f64 / 1e6,
        model.chip.name
    );
    Ok(())
}
