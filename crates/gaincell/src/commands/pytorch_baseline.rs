//! The PyTorch side of the whole-model benchmarks: run one of `scripts/bench_pytorch_*.py` now (`--run-pytorch`)
//! or read the JSON it wrote earlier (`--pytorch FILE`), and say where the figure came from.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// A baseline's JSON and a line saying where it came from.
pub struct Baseline {
    pub json: serde_json::Value,
    pub source: String,
}

/// `run`: run `script` (python3, from the repository root) with `args` and `--out` a temporary file; else read
/// `file` if given; else no baseline.
pub fn obtain(
    script: &str,
    args: &[String],
    run: bool,
    file: Option<&Path>,
) -> Result<Option<Baseline>> {
    let path: PathBuf = if run {
        let script_path = PathBuf::from(script);
        if !script_path.exists() {
            bail!("--run-pytorch: {script} not found; run from the repository root");
        }
        let stem = script_path
            .file_stem()
            .map_or("baseline".into(), |s| s.to_string_lossy().into_owned());
        let out = std::env::temp_dir().join(format!("gaincell-{stem}-{}.json", std::process::id()));
        println!("running {script} …");
        let status = Command::new("python3")
            .arg(&script_path)
            .args(args)
            .arg("--out")
            .arg(&out)
            .status()
            .context("--run-pytorch: could not start python3")?;
        if !status.success() {
            bail!("--run-pytorch: {script} failed ({status}); install torch and transformers");
        }
        out
    } else if let Some(p) = file {
        p.to_path_buf()
    } else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    if json.get("tokens_per_s").is_none() {
        bail!(
            "{}: no `tokens_per_s` (write it with {script})",
            path.display()
        );
    }
    let source = format!(
        "{}, torch {}, transformers {}, {} threads, {}",
        if run {
            "measured in this run".to_string()
        } else {
            path.display().to_string()
        },
        json["torch"].as_str().unwrap_or("?"),
        json["transformers"].as_str().unwrap_or("?"),
        json["threads"],
        json["date"].as_str().unwrap_or("?")
    );
    Ok(Some(Baseline { json, source }))
}

/// The arguments that give scripts/bench_pytorch_*.py the same model shape: family, layers, heads, width,
/// vocabulary, and for a Llama its key/value heads, MLP width and tied head.
pub fn shape_args(config: &gaincell_model::ModelConfig) -> Vec<String> {
    use gaincell_model::ModelConfig;
    let mut v: Vec<String> = vec!["--family".into(), config.family().into()];
    for (k, x) in [
        ("--layers", config.n_layer()),
        ("--heads", config.n_head()),
        ("--embd", config.n_embd()),
        ("--vocab", config.vocab_size()),
    ] {
        v.extend([k.to_string(), x.to_string()]);
    }
    if let ModelConfig::Llama(c) = config {
        v.extend(["--n-kv-head".into(), c.n_kv_head().to_string()]);
        v.extend(["--intermediate".into(), c.intermediate_size.to_string()]);
        if c.tie_word_embeddings {
            v.push("--tie-embeddings".into());
        }
    }
    v
}

/// Model FLOPs of one token through every block with `keys` keys attended on average (2 × multiply-adds of the
/// projections, the MLP and the attention products), without the output head.
pub fn block_flops_per_token(config: &gaincell_model::ModelConfig, keys: f64) -> f64 {
    use gaincell_model::ModelConfig;
    let e = config.n_embd() as f64;
    let qd = (config.n_head() * config.head_dim()) as f64;
    let kvd = (config.n_kv_head() * config.head_dim()) as f64;
    let (attn_proj, mlp) = match config {
        ModelConfig::Gpt2(_) => (4.0 * e * e, 8.0 * e * e),
        ModelConfig::Llama(c) => (
            e * qd + 2.0 * e * kvd + qd * e,
            3.0 * e * c.intermediate_size as f64,
        ),
    };
    let per_block = 2.0 * (attn_proj + mlp) + 2.0 * 2.0 * qd * keys;
    per_block * config.n_layer() as f64
}
