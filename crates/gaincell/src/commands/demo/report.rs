//! The demo's results: `results.json` (everything measured, with the command that produced it) and `report.md`
//! (the same for a person: what was run, the tables, the plots, and what the figures mean).

use std::path::{Path, PathBuf};

use anyhow::Result;
use gaincell_cost::CostReport;
use gaincell_eval::agreement::Agreement;
use gaincell_model::Model;
use gaincell_train::adapt::Adaptation;
use serde::Serialize;

use super::family::Family;
use crate::commands::cost::si;

#[derive(Serialize)]
pub struct DemoResults {
    pub gaincell_version: String,
    pub command: String,
    pub threads: usize,
    pub models: ModelsInfo,
    pub stream: StreamInfo,
    pub quality: Vec<VariantQuality>,
    pub adaptation: AdaptationReport,
    pub generations: Vec<Generation>,
    /// This model on the family's nonlinear chip, then GPT-2 124M on `paper-nonlinear`.
    pub cost: Vec<CostReport>,
    pub timings: Timings,
}

#[derive(Serialize)]
pub struct ModelsInfo {
    pub source: String,
    /// The architecture: `llama` or `gpt2`.
    pub family: String,
    pub n_layer: usize,
    pub n_head: usize,
    pub head_dim: usize,
    pub n_positions: usize,
    pub vocab_size: usize,
    pub parameters: usize,
    pub variants: Vec<VariantInfo>,
    /// The family's training records (training/results.json in its folder), when it has them.
    pub training: Option<serde_json::Value>,
}

#[derive(Serialize)]
pub struct VariantInfo {
    pub variant: String,
    pub description: String,
    pub chip: String,
    pub chip_summary: String,
}

impl ModelsInfo {
    pub fn of(fam: &Family, variants: &[(&str, String, &Model)]) -> Self {
        let c = &fam.software.config;
        let training = fam
            .dir
            .as_ref()
            .map(|d| d.join("training/results.json"))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str(&t).ok());
        ModelsInfo {
            source: fam.source.clone(),
            family: c.family().to_string(),
            n_layer: c.n_layer(),
            n_head: c.n_head(),
            head_dim: c.head_dim(),
            n_positions: c.n_positions(),
            vocab_size: c.vocab_size(),
            parameters: c.parameters(),
            variants: variants
                .iter()
                .map(|(name, what, m)| VariantInfo {
                    variant: name.to_string(),
                    description: what.clone(),
                    chip: m.chip.name.clone(),
                    chip_summary: crate::commands::chip::summary(&m.chip),
                })
                .collect(),
            training,
        }
    }
}

#[derive(Serialize)]
pub struct StreamInfo {
    pub source: String,
    pub tokens: usize,
    pub ctx: usize,
}

#[derive(Serialize)]
pub struct VariantQuality {
    pub variant: String,
    pub description: String,
    pub chip: String,
    #[serde(flatten)]
    pub metrics: Agreement,
}

#[derive(Serialize)]
pub struct AdaptationReport {
    pub batch: String,
    pub targets: String,
    /// The linear model's loss on the same batch: what adaptation tries to get back to.
    pub linear_loss: f64,
    #[serde(flatten)]
    pub outcome: Adaptation,
}

#[derive(Serialize)]
pub struct Generation {
    pub variant: String,
    /// `greedy`, or the temperature, top-k and seed.
    pub sampling: String,
    pub prompt: String,
    pub text: String,
    pub tokens: usize,
    pub tokens_per_s: f64,
}

#[derive(Serialize, Default)]
pub struct Timings {
    pub text_s: f64,
    pub adaptation_s: f64,
    pub evaluation_s: f64,
    pub generation_s: f64,
    pub total_s: f64,
}

/// Write `results.json` and `report.md` into `out`.
pub fn write(out: &Path, r: &DemoResults) -> Result<Vec<PathBuf>> {
    let json = out.join("results.json");
    crate::paths::write_file(&json, serde_json::to_string_pretty(r)? + "\n")?;
    let md = out.join("report.md");
    crate::paths::write_file(&md, markdown(r))?;
    Ok(vec![json, md])
}

fn quality_of<'a>(r: &'a DemoResults, variant: &str) -> Option<&'a VariantQuality> {
    r.quality.iter().find(|q| q.variant == variant)
}

/// The report a person reads.
pub fn markdown(r: &DemoResults) -> String {
    let m = &r.models;
    let mut s = String::from("# gaincell demo report\n\n");
    s += &format!(
        "A {} of {} layers × {} heads × {} dims ({:.1} M parameters, {} positions, a {}-token vocabulary) from \
         `{}`, run as software and on simulated gain-cell chips. Produced by `{}` (gaincell {}, {} threads) in {:.0} \
         s. Everything below is measured in that run; `results.json` holds the same numbers.\n\n",
        if m.family == "llama" { "Llama" } else { "GPT" },
        m.n_layer,
        m.n_head,
        m.head_dim,
        m.parameters as f64 / 1e6,
        m.n_positions,
        m.vocab_size,
        m.source,
        r.command,
        r.gaincell_version,
        r.threads,
        r.timings.total_s
    );

    s += "## The models\n\n| model | chip | what it is |\n|---|---|---|\n";
    for v in &m.variants {
        s += &format!("| {} | `{}` | {} |\n", v.variant, v.chip, v.description);
    }
    s += "\nChips:\n\n";
    let mut seen = Vec::new();
    for v in &m.variants {
        if !seen.contains(&v.chip_summary) {
            s += &format!("- {}\n", v.chip_summary);
            seen.push(v.chip_summary.clone());
        }
    }

    s += &format!(
        "\n## How closely each chip model follows the software model\n\nOn {} tokens ({}), scored in windows of \
         {} tokens. *Perplexity*: exp of the mean negative log-likelihood of the text's next token. *Δ nats/token*: \
         that mean minus the software model's (the quality gap). *KL*: mean KL divergence of the model's next-token \
         distribution from the software model's (nats; 0 = identical predictions). *Top-1*: how often its most \
         likely next token is the software model's.\n\n",
        r.stream.tokens, r.stream.source, r.stream.ctx
    );
    s += "| model | perplexity | Δ nats/token | KL (nats) | top-1 agreement |\n|---|--:|--:|--:|--:|\n";
    let soft = r.quality[0].metrics.nll;
    for q in &r.quality {
        s += &format!(
            "| {} | {:.2} | {:+.4} | {:.4} | {:.1}% |\n",
            q.variant,
            q.metrics.perplexity,
            q.metrics.nll - soft,
            q.metrics.kl,
            100.0 * q.metrics.top1_agreement
        );
    }
    s += "\n![quality](quality.png)\n\n";
    let gap = |v: &str| quality_of(r, v).map(|q| q.metrics.nll - soft);
    if let (Some(un), Some(ad)) = (gap("unadapted"), gap("adapted")) {
        s += &format!(
            "The linear model's weights put on the nonlinear cell as they are lose {un:+.4} nats/token against the \
             software model; adaptation alone (no training) brings that to {ad:+.4}."
        );
        if let Some(nl) = gap("nonlinear") {
            s += &format!(" The shipped nonlinear model (adapted, then fine-tuned on the nonlinear chip) is at {nl:+.4}.");
        }
        s += "\n\n";
        if r.stream.source.contains("sampled from the software model") {
            s += "The text is sampled from the software model, so these figures measure agreement with it. \
                  Fine-tuning on real text can move a chip model away from the software model's distribution while \
                  it improves on real text: pass `--data` with a real text, and see the validation losses of the \
                  training run below.\n\n";
        }
    }

    let ad = &r.adaptation;
    s += &format!(
        "## Adaptation, live\n\nThe paper's adaptation (docs/mapping.md#adaptation in the gaincell repository): the \
         linear model's weights on the nonlinear chip; on one fixed batch ({}), without gradients, each head's \
         scalers (a, b) of q, k, v and the output are moved until the statistics of the scaled values match the \
         targets, {}. α falls from 1.0 to 0.1 over 50 iterations, ε = \
         1e-4, at most 100 iterations. The linear model's own loss on this batch is {:.4}.\n\n",
        ad.batch, ad.targets, ad.linear_loss
    );
    s += "| iteration | loss | α | worst \\|Δμ\\| | worst \\|Δσ\\| | scalers updated |\n|--:|--:|--:|--:|--:|--:|\n";
    for it in &ad.outcome.iterations {
        s += &format!(
            "| {} | {:.4} | {:.3} | {:.2e} | {:.2e} | {} |\n",
            it.iteration, it.loss, it.alpha, it.worst_mean_error, it.worst_std_error, it.updated
        );
    }
    s += &format!(
        "\nAdaptation: {}.\n\n![adaptation](adaptation.png)\n\n",
        crate::commands::adapt::outcome(&ad.outcome)
    );

    s += "## Text generated on the simulated arrays\n\nEach model continues the same prompt token by token, as the \
          chip would: a new key and value column written into the arrays per token (3-bit DAC writes), the stored \
          charge leaking, the window wrapping.";
    s += &format!(
        " Sampling: {} (the same for every model).\n\n",
        r.generations.first().map_or("-", |g| g.sampling.as_str())
    );
    for g in &r.generations {
        s += &format!(
            "**{}** ({} tokens, {:.0} tokens/s simulated):\n\n> {}**{}**\n\n",
            g.variant,
            g.tokens,
            g.tokens_per_s,
            g.prompt.replace('\n', " "),
            super::one_line(&g.text)
        );
    }

    s += "## What the chip costs\n\nThe attention only (the paper's constants; `gaincell cost --explain` lists \
          each with its source, and docs/cost-model.md in the gaincell repository explains them). The GPU figures \
          are the paper's measurements of one GPT-2 attention layer (12 heads, 1,024-token KV cache, batch 64) per \
          token.\n\n";
    s += "| model | chip | window | latency / token, one layer | whole model | energy / token, whole model | area |\n|---|---|--:|--:|--:|--:|--:|\n";
    for c in &r.cost {
        s += &format!(
            "| {} ({} × {} heads) | `{}` | {} | {} | {} | {} | {:.2} mm² |\n",
            c.model.name,
            c.model.n_layer,
            c.model.n_head,
            c.chip,
            c.counts.window,
            si(c.latency.total_ns * 1e-9, "s"),
            si(c.model_latency_ns * 1e-9, "s"),
            si(c.energy_pj.per_model * 1e-12, "J"),
            c.area_mm2.per_model
        );
    }
    s += "\n| model | GPU | GPU latency | chip latency | speed-up | GPU energy | chip energy (same heads) | energy ratio |\n|---|---|--:|--:|--:|--:|--:|--:|\n";
    for c in &r.cost {
        for cmp in &c.comparisons {
            s += &format!(
                "| {} | {} | {} | {} | {:.0}× | {} | {} | {:.0}× |\n",
                c.model.name,
                cmp.baseline,
                si(cmp.gpu_latency_s, "s"),
                si(cmp.chip_latency_s, "s"),
                cmp.speedup,
                si(cmp.gpu_energy_j, "J"),
                si(cmp.chip_energy_j, "J"),
                cmp.energy_ratio
            );
        }
    }
    s += "\n![latency and energy against GPUs](cost_vs_gpu.png)\n\n![energy breakdown](energy_breakdown.png)\n\n";
    s += "Caveats: the chip's window is its array length; where it differs from the GPU's 1,024-token KV cache the \
          comparison is of unequal work (the demo model's window is shorter). Latency is one layer's, all heads in \
          parallel; the GPU figure is also per layer. Energy is compared for the GPU measurement's 12 heads \
          (in the plot too), whatever the model's heads per layer.\n\n";

    if let Some(t) = &m.training {
        s += "## How the models were made\n\nBy `gaincell pipeline` (the run's config and metrics are in the \
              family's `training/` folder). Validation losses of that run:\n\n| run | chip | starts from | steps | validation loss |\n|---|---|---|--:|--:|\n";
        if let Some(stages) = t["stages"].as_array() {
            for st in stages {
                s += &format!(
                    "| {} | {} | {} | {} | {} |\n",
                    st["stage"].as_str().unwrap_or("?"),
                    st["chip"].as_str().unwrap_or("?"),
                    st["init"].as_str().unwrap_or("?"),
                    st["steps"],
                    st["final_val_loss"]
                        .as_f64()
                        .map_or("–".into(), |v| format!("{v:.4}"))
                );
            }
        }
        if let (Some(u), Some(a)) = (
            t["unadapted_val_loss"].as_f64(),
            t["adapted_val_loss"].as_f64(),
        ) {
            s += &format!(
                "\nLinear weights on the nonlinear chip: {u:.4} unadapted, {a:.4} adapted.\n"
            );
        }
        s += "\n";
    }
    s += &format!(
        "---\nTimes: text {:.1} s, adaptation {:.1} s, evaluation {:.1} s, generation {:.1} s; total {:.1} s.\n",
        r.timings.text_s,
        r.timings.adaptation_s,
        r.timings.evaluation_s,
        r.timings.generation_s,
        r.timings.total_s
    );
    s
}
