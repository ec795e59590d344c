//! The models the demo runs: the shipped family (software, linear, nonlinear checkpoints and their tokenizer), or
//! one model given by the user that the demo puts on the chips itself.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use gaincell_chip::ChipConfig;
use gaincell_model::{checkpoint, Model, Tokenizer};
use gaincell_train::stats::HeadStats;

use crate::model_args::ModelArgs;

/// Where the shipped family lives in the repository.
pub const SHIPPED: &str = "models/stories260k";

pub struct Family {
    /// Where the models came from, for the report.
    pub source: String,
    pub tokenizer: Tokenizer,
    pub software: Model,
    /// Trained on (or, for a single model, merely put on) the linear chip.
    pub linear: Model,
    pub nonlinear_chip: ChipConfig,
    /// The shipped nonlinear model (linear → adapt → fine-tune); none for a single model.
    pub nonlinear: Option<Model>,
    /// Target statistics recorded while the linear model trained; none for a single model (the demo measures
    /// them on the linear chip instead).
    pub targets: Option<HeadStats>,
    /// The family's folder (shipped or given), for its training records.
    pub dir: Option<PathBuf>,
}

/// The shipped family's folder: `models/stories260k` under the working directory, else the one in the source tree this
/// program was built from.
pub fn shipped_dir() -> PathBuf {
    let here = PathBuf::from(SHIPPED);
    if here.is_dir() {
        return here;
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(SHIPPED);
    built.canonicalize().unwrap_or(built)
}

/// A family folder: `software/`, `linear/`, `nonlinear/` checkpoints sharing one tokenizer (each folder's
/// `tokenizer.json`).
pub fn load_family(dir: &Path) -> Result<Family> {
    let has_tokenizer = ["tokenizer.json", "tokenizer.bin"]
        .iter()
        .any(|t| dir.join("software").join(t).is_file());
    let missing = ["software", "linear", "nonlinear"]
        .into_iter()
        .find(|p| !dir.join(p).exists())
        .or((!has_tokenizer).then_some("software/tokenizer.json (or tokenizer.bin)"));
    if let Some(part) = missing {
        bail!(
            "{}: no {part} here. A model family folder holds software/, linear/ and nonlinear/ checkpoints, each \
             with its tokenizer (tokenizer.json, or llama2.c's tokenizer.bin) (the shipped one is {SHIPPED} in the \
             repository; its README.md says how to regenerate it); or run one model with --model",
            dir.display()
        );
    }
    let load = |name: &str| {
        checkpoint::load(&dir.join(name), None)
            .with_context(|| format!("loading the {name} model of {}", dir.display()))
    };
    let (software, linear, nonlinear) = (load("software")?, load("linear")?, load("nonlinear")?);
    if !nonlinear.attention.is_gain_cell() || !linear.attention.is_gain_cell() {
        bail!(
            "{}: linear/ and nonlinear/ must be gain-cell checkpoints (their sidecars name {} and {})",
            dir.display(),
            linear.chip.name,
            nonlinear.chip.name
        );
    }
    let targets = gaincell_train::pipeline::read_statistics(&dir.join("linear"))?;
    let tokenizer = Tokenizer::for_model(&dir.join("software"), &software.config)?;
    Ok(Family {
        source: dir.display().to_string(),
        tokenizer,
        nonlinear_chip: nonlinear.chip.clone(),
        software,
        linear,
        nonlinear: Some(nonlinear),
        targets: Some(targets),
        dir: Some(dir.to_path_buf()),
    })
}

/// One model (folder or Hub name): run as software, put on `linear_chip` with its initial scalers, and adapted
/// live onto `nonlinear_chip`.
pub fn load_single(
    spec: &str,
    tokenizer: Option<String>,
    linear_chip: &str,
    nonlinear_chip: &str,
) -> Result<Family> {
    let loaded = ModelArgs {
        model: spec.to_string(),
        chip: Some("software".into()),
        tokenizer,
    }
    .load()?;
    // The chips take the model's geometry (a Llama such as stories260K has 8-dim heads and a 512-token context).
    let fit = |name: &str| -> Result<ChipConfig> {
        crate::commands::chip::fitted(&ChipConfig::load(name)?, &loaded.model.config, spec)
    };
    let linear = loaded.model.with_chip(fit(linear_chip)?)?;
    let nonlinear_chip = fit(nonlinear_chip)?;
    if !linear.attention.is_gain_cell() || !nonlinear_chip.is_gain_cell() {
        bail!("--linear-chip and --nonlinear-chip must be gain-cell chips");
    }
    Ok(Family {
        source: loaded.source,
        tokenizer: loaded.tokenizer,
        software: loaded.model,
        linear,
        nonlinear_chip,
        nonlinear: None,
        targets: None,
        dir: None,
    })
}
