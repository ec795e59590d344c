//! The `--model`, `--chip` and `--tokenizer` arguments shared by the commands that run a model.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use gaincell_chip::ChipConfig;
use gaincell_model::{checkpoint, Model, ModelConfig, Tokenizer};

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// A model folder (HF config.json + model.safetensors of a GPT-2, Llama or Mistral, sharded or not, or our
    /// checkpoint), a llama2.c checkpoint (`.bin`, or a folder holding one), a Hub name such as `gpt2` (online),
    /// or `random:gpt2` / `random:stories260K` / `random:tinyllama-1.1b` … for random weights of that shape.
    #[arg(long)]
    pub model: String,
    /// Chip preset or TOML file; default: the chip recorded in our checkpoint, else `software`.
    #[arg(long)]
    pub chip: Option<String>,
    /// `gpt2`, a tokenizer.json or a llama2.c tokenizer.bin; default: the model folder's tokenizer.json, else its
    /// llama2.c tokenizer (tokenizer.bin, tok*.bin), else (GPT-2 models) GPT-2's.
    #[arg(long)]
    pub tokenizer: Option<String>,
}

pub struct Loaded {
    pub model: Model,
    pub tokenizer: Tokenizer,
    /// Where the weights came from (for reports).
    pub source: String,
}

impl ModelArgs {
    pub fn load(&self) -> Result<Loaded> {
        let chip = self.chip.as_deref().map(ChipConfig::load).transpose()?;
        if let Some(size) = self.model.strip_prefix("random:") {
            let config = ModelConfig::named(size).with_context(|| {
                format!(
                    "random:{size}: known shapes are {}",
                    ModelConfig::NAMED.join(", ")
                )
            })?;
            let chip = chip.unwrap_or_else(|| ChipConfig::load("software").expect("preset"));
            let model = Model::random(config, chip, 0)?;
            let tokenizer = self.tokenizer(None)?;
            return Ok(Loaded {
                model,
                tokenizer,
                source: self.model.clone(),
            });
        }
        let dir = checkpoint::resolve(&self.model)?;
        let model = checkpoint::load(&dir, chip)?;
        let tokenizer = self.tokenizer(Some((dir.clone(), &model.config)))?;
        // Said, because a GPT-2 fine-tuned with its own vocabulary would otherwise be mis-tokenized silently.
        let fallback =
            (self.tokenizer.is_none() && matches!(tokenizer, Tokenizer::Gpt2(_))).then(|| {
                format!(
                    "{} has no tokenizer.json or tokenizer.bin, so GPT-2's tokenizer was used",
                    dir.display()
                )
            });
        if tokenizer.vocab_size() > model.config.vocab_size() {
            anyhow::bail!(
                "the tokenizer has {} entries but the model only {}{}: pass the model's own tokenizer with --tokenizer",
                tokenizer.vocab_size(),
                model.config.vocab_size(),
                fallback.as_deref().map_or(String::new(), |f| format!(" ({f})"))
            );
        }
        if let Some(f) = fallback {
            eprintln!("note: {f} (pass --tokenizer to use another)");
        }
        Ok(Loaded {
            model,
            tokenizer,
            source: dir.display().to_string(),
        })
    }

    fn tokenizer(&self, dir: Option<(PathBuf, &ModelConfig)>) -> Result<Tokenizer> {
        Ok(match (&self.tokenizer, dir) {
            (Some(t), _) => Tokenizer::load(t)?,
            (None, Some((d, config))) => Tokenizer::for_model(&d, config)?,
            (None, None) => Tokenizer::gpt2(),
        })
    }
}
