//! `gaincell chip`: list presets, show a chip as full TOML, check a user file.

use anyhow::Result;
use clap::Subcommand;
use gaincell_chip::{preset, ChipConfig, PRESET_NAMES};
use gaincell_model::{checkpoint, Attention, ModelConfig};

#[derive(Subcommand)]
pub enum ChipCommand {
    /// List the named presets.
    List,
    /// Print the full TOML of a preset or file (every field, defaults filled in): a starting point for your own.
    Show {
        /// Preset name or path to a TOML file.
        chip: String,
        /// Give the arrays the geometry of this model's heads (head_dim rows; a window no longer than its
        /// context): a model folder, config.json, llama2.c .bin, or a named shape such as stories260K.
        #[arg(long)]
        model: Option<String>,
    },
    /// Validate a chip file and print a one-line summary; with --model, check that it fits that model.
    Check {
        /// Preset name or path to a TOML file.
        chip: String,
        /// A model folder, config.json, llama2.c .bin, or a named shape such as stories260K.
        #[arg(long)]
        model: Option<String>,
    },
}

pub fn run(cmd: ChipCommand) -> Result<()> {
    match cmd {
        ChipCommand::List => {
            for name in PRESET_NAMES {
                let c = preset(name).expect("listed presets exist");
                println!("{name:<24} {}", c.description);
            }
        }
        ChipCommand::Show { chip, model } => {
            let mut c = ChipConfig::load(&chip)?;
            if let Some(m) = model {
                c = fitted(&c, &checkpoint::read_config(&m)?, &m)?;
            }
            print!("{}", c.to_toml_string());
        }
        ChipCommand::Check { chip, model } => {
            let c = ChipConfig::load(&chip)?;
            println!("{}", summary(&c));
            if let Some(m) = model {
                let config = checkpoint::read_config(&m)?;
                Attention::for_model(&c, &config)?;
                let (h, kv) = (config.n_head(), config.n_kv_head());
                println!(
                    "fits {m} ({} family, {} layers × {h} heads × {} dims{}): {}",
                    config.family(),
                    config.n_layer(),
                    config.head_dim(),
                    if kv < h {
                        format!(", {kv} key/value heads")
                    } else {
                        String::new()
                    },
                    if c.is_gain_cell() {
                        format!(
                            "{} pairs of {} × {} arrays per layer",
                            kv, c.geometry.head_dim, c.geometry.window
                        )
                    } else {
                        "softmax attention".into()
                    }
                );
                if c.is_gain_cell() && c.geometry.window > config.n_positions() {
                    println!(
                        "note: the window ({}) is longer than the model's context ({}): it never wraps",
                        c.geometry.window,
                        config.n_positions()
                    );
                }
            }
        }
    }
    Ok(())
}

/// `chip` with the geometry of `model`'s heads: arrays of `head_dim` rows, and a window no longer than the
/// model's context (whole sub-tiles). `name` says which model, in the description.
pub fn fitted(chip: &ChipConfig, model: &ModelConfig, name: &str) -> Result<ChipConfig> {
    let mut c = chip.clone();
    if c.geometry.head_dim == model.head_dim() && c.geometry.window <= model.n_positions() {
        return Ok(c);
    }
    c.geometry.head_dim = model.head_dim();
    if c.geometry.window > model.n_positions() {
        // The longest window of whole sub-tiles the model's context can fill.
        let t = c.geometry.tile_rows.max(1);
        c.geometry.window = (model.n_positions() / t).max(1) * t;
    }
    c.description = format!("{} (geometry of {name})", c.description);
    c.validate()?;
    Ok(c)
}

/// One line that says what a chip is.
pub fn summary(c: &ChipConfig) -> String {
    if !c.is_gain_cell() {
        let w = if c.geometry.window == 0 {
            "full causal".to_string()
        } else {
            format!("window {}", c.geometry.window)
        };
        return format!("{}: softmax attention, {w}", c.name);
    }
    let bits = |q: &gaincell_chip::QuantizerConfig| {
        if q.quantize {
            format!("{}b", q.bits)
        } else {
            "float".into()
        }
    };
    let tiles = if c.geometry.tiling {
        format!("{}-token sub-tiles", c.geometry.tile_rows)
    } else {
        "no tiling".into()
    };
    let leak = if c.lambda() == 0.0 {
        "no leakage".to_string()
    } else {
        format!("λ = {:e} per token", c.lambda())
    };
    format!(
        "{}: gain-cell attention, {} cell, window {}, {tiles}, head dim {}, q/k/v/out {}/{}/{}/{}, {leak}",
        c.name,
        c.cell.label(),
        c.geometry.window,
        c.geometry.head_dim,
        bits(&c.query),
        bits(&c.key),
        bits(&c.value),
        bits(&c.output),
    )
}
