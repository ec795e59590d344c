//! `gaincell cost`: latency, energy, area and retention of a chip running a model's attention, beside GPU
//! baselines; `--explain` lists every constant with its provenance.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use gaincell_chip::{ChipConfig, Provenance};
use gaincell_cost::{
    evaluate, explain, published_baselines, CostReport, GpuBaseline, ModelShape,
    COMPARISON_DEFINITION, SILICON_RETENTION_S,
};

#[derive(Args)]
pub struct CostArgs {
    /// Preset name or path to a chip TOML file (its `[cost]` section holds the constants).
    #[arg(long, default_value = "paper-nonlinear")]
    pub chip: String,
    /// gpt2, gpt2-medium, gpt2-large, gpt2-xl, stories260K, tinyllama-1.1b, a Hugging Face config.json (GPT-2,
    /// Llama, Mistral) or a folder holding one, or a llama2.c checkpoint (.bin).
    #[arg(long, default_value = "gpt2")]
    pub model: String,
    /// A GPU measurement written by scripts/gpu_attention_baseline.py, compared beside the published RTX 4090 and
    /// Jetson Nano figures (repeatable).
    #[arg(long = "gpu", value_name = "FILE")]
    pub gpu: Vec<PathBuf>,
    /// Also write the full report as JSON to FILE (`-` for standard output instead of the tables).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// List every constant the cost model uses with its value, unit and source (published, derived or assumed),
    /// and say exactly what the GPU comparison compares.
    #[arg(long)]
    pub explain: bool,
}

pub fn run(args: CostArgs) -> Result<()> {
    let chip = ChipConfig::load(&args.chip)?;
    if args.explain {
        print!("{}", explain_text(&chip));
        return Ok(());
    }
    let model = load_model(&args.model)?;
    let baselines = load_baselines(&args.gpu)?;
    let report = evaluate(&chip, &model, &baselines)?;
    match &args.json {
        Some(p) if crate::paths::is_stdout(p) => {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(());
        }
        Some(p) => crate::paths::write_file(p, serde_json::to_string_pretty(&report)? + "\n")?,
        None => {}
    }
    print!("{}", report_text(&report));
    Ok(())
}

/// A built-in model by name, else a Hugging Face config.json by path.
pub fn load_model(spec: &str) -> Result<ModelShape> {
    if let Some(m) = ModelShape::builtin(spec) {
        return Ok(m);
    }
    let mut path = Path::new(spec).to_path_buf();
    if path.is_dir() {
        path = path.join("config.json");
    }
    if !path.is_file() {
        return Err(ModelShape::unknown(spec).into());
    }
    if path.extension().is_some_and(|x| x == "bin") {
        // A llama2.c checkpoint: its header holds the shape.
        let config = gaincell_model::checkpoint::read_config(&path.display().to_string())?;
        return Ok(model_shape(&config, &path.display().to_string()));
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read model config {}", path.display()))?;
    Ok(ModelShape::from_hf_config(
        &text,
        &path.display().to_string(),
    )?)
}

/// What the cost model needs of a model's shape: layers, query and key/value heads, head width, context.
pub fn model_shape(c: &gaincell_model::ModelConfig, name: &str) -> ModelShape {
    ModelShape {
        name: name.into(),
        n_layer: c.n_layer(),
        n_head: c.n_head(),
        n_kv_head: c.n_kv_head(),
        head_dim: c.head_dim(),
        n_ctx: Some(c.n_positions()),
    }
}

/// The published baselines followed by the user's measurement files.
pub fn load_baselines(files: &[PathBuf]) -> Result<Vec<GpuBaseline>> {
    let mut all = published_baselines();
    for f in files {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read GPU measurement file {}", f.display()))?;
        all.push(GpuBaseline::from_measurement_json(
            &text,
            &f.display().to_string(),
        )?);
    }
    Ok(all)
}

fn report_text(r: &CostReport) -> String {
    let c = &r.counts;
    let m = &r.model;
    let mut s = format!("Chip {} running {} ({})\n\n", r.chip, m.name, m.describe());

    s += &format!(
        "{:<30}{:>14}{:>14}{:>14}\n",
        "Arrays and cells", "per head", "per layer", "per model"
    );
    for (label, t) in [
        ("  key + value arrays", &r.arrays),
        (
            &format!("  sub-tiles ({} × {})", c.head_dim, c.tile_rows) as &str,
            &r.sub_tiles,
        ),
        ("  gain cells", &r.cells),
    ] {
        s += &format!(
            "{label:<30}{:>14}{:>14}{:>14}\n",
            thousands(t.per_head),
            thousands(t.per_layer),
            thousands(t.per_model)
        );
    }
    s += &format!(
        "  window {} tokens = {} sub-tiles of {} per array; adder tree depth {} ({} additions per head per token)\n\n",
        thousands(c.window as f64),
        c.sub_tiles,
        c.tile_rows,
        c.adder_depth,
        thousands(c.additions as f64)
    );

    let l = &r.latency;
    s += "Latency per token, one layer (all heads in parallel)\n";
    for (label, ns) in [
        ("query pulses (T_max)", l.query_pulses_ns),
        ("φ pulses", l.phi_pulses_ns),
        ("output counters", l.counters_ns),
        ("adder tree", l.adder_tree_ns),
        ("routing and reset", l.overhead_ns),
    ] {
        s += &format!("  {label:<28}{:>12}\n", si(ns * 1e-9, "s"));
    }
    let write_note = if l.write_exposed_ns == 0.0 {
        "hidden by the pipeline".to_string()
    } else {
        format!("adds {}", si(l.write_exposed_ns * 1e-9, "s"))
    };
    s += &format!(
        "  {:<28}{:>12}  {write_note}\n",
        "k, v column write",
        si(l.write_ns * 1e-9, "s")
    );
    if let Some(n) = c.refresh_period_tokens {
        s += &format!(
            "  {:<28}{:>12}  {} columns per token (every {n} tokens), queued behind the write\n",
            "refresh rewrites",
            si(l.refresh_ns * 1e-9, "s"),
            c.refresh_columns
        );
    }
    s += &format!("  {:<28}{:>12}\n", "total", si(l.total_ns * 1e-9, "s"));
    s += &format!(
        "  {:<28}{:>12}\n\n",
        format!("whole model ({} layers)", m.n_layer),
        si(r.model_latency_ns * 1e-9, "s")
    );

    let e = &r.energy;
    s += &format!(
        "{:<30}{:>14}{:>14}{:>14}\n",
        "Energy per token", "per head", "per layer", "per model"
    );
    let (heads, layers) = (m.n_head as f64, (m.n_head * m.n_layer) as f64);
    let refresh = c
        .refresh_period_tokens
        .map(|_| ("  DACs, refresh rewrites", e.refresh_pj));
    for (label, pj) in [
        Some(("  Φ(Q·Kᵀ) arrays", e.qk_pj)),
        Some(("  Φ(S)·V arrays", e.pv_pj)),
        Some(("  digital control, routing", e.digital_pj)),
        Some(("  DACs", e.dac_pj)),
        refresh,
        Some(("  total", e.total_pj)),
    ]
    .into_iter()
    .flatten()
    {
        s += &format!(
            "{label:<30}{:>14}{:>14}{:>14}\n",
            si(pj * 1e-12, "J"),
            si(pj * 1e-12 * heads, "J"),
            si(pj * 1e-12 * layers, "J")
        );
    }
    s += "\n";

    let a = &r.area;
    s += &format!(
        "{:<30}{:>14}{:>14}{:>14}\n",
        "Area (assumed constants)", "per head", "per layer", "per model"
    );
    for (label, um2) in [
        ("  gain cells", a.cells_um2),
        ("  periphery", a.periphery_um2),
        ("  total", a.total_um2),
    ] {
        let mm2 = um2 * 1e-6;
        s += &format!(
            "{label:<30}{:>14}{:>14}{:>14}\n",
            format!("{} mm²", sig(mm2)),
            format!("{} mm²", sig(mm2 * heads)),
            format!("{} mm²", sig(mm2 * layers))
        );
    }
    s += "\n";

    if let Some(g) = &r.shared_arrays {
        s += &format!(
            "Grouped-query attention: {} query heads share {} key/value heads ({} per group); the tables above\n\
             give every query head its own arrays (replicated). Per layer, per token:\n",
            m.n_head, m.n_kv_head, g.group
        );
        s += &format!(
            "  {:<26}{:>12}{:>14}{:>12}{:>12}{:>12}\n",
            "arrays read by", "array pairs", "gain cells", "latency", "energy", "area"
        );
        for (label, c) in [
            ("replicated (parallel)", &g.replicated),
            ("time-multiplexed queries", &g.time_multiplexed),
        ] {
            s += &format!(
                "  {label:<26}{:>12}{:>14}{:>12}{:>12}{:>12}\n",
                c.array_pairs,
                thousands(c.cells),
                si(c.latency_ns * 1e-9, "s"),
                si(c.energy_pj * 1e-12, "J"),
                format!("{} mm²", sig(c.area_mm2))
            );
        }
        s += "  replicated: each query head owns a copy of its group's arrays, all written with the same column;\n";
        s += "  time-multiplexed: one pair per key/value head, the group's query pulses applied one after another.\n\n";
    }

    let t = &r.retention;
    s += "Retention\n";
    s += &format!(
        "  token period                {} ({})\n",
        si(t.token_period_s, "s"),
        t.token_period_source
    );
    s += &format!(
        "  a column must hold          {} ({} tokens)\n",
        si(t.column_lifetime_s, "s"),
        thousands(c.window as f64)
    );
    if let Some(implied) = t.implied_retention_s {
        s += &format!(
            "  λ in force                  {:e} per token: the oldest key ({} tokens old) keeps {:.1} %\n",
            t.lambda_per_token,
            thousands(t.oldest_age_tokens as f64),
            100.0 * t.oldest_decay
        );
        s += &format!(
            "  that λ stands for           {} retention at this token period\n",
            si(implied, "s")
        );
    } else {
        s += "  λ in force                  0 (leakage off)\n";
    }
    s += &format!(
        "  {:<28}λ = {:.3e} per token: the oldest key keeps {:.1} %\n\n",
        format!("silicon cells ({})", si(SILICON_RETENTION_S, "s")),
        t.silicon_lambda_per_token,
        100.0 * t.silicon_oldest_decay
    );

    s += "Against GPUs: per token, one layer's attention (see --explain for exactly what is compared)\n";
    s += &format!(
        "  {:<24}{:>12}{:>12}{:>12}{:>13}{:>10}{:>13}\n",
        "baseline", "GPU time", "GPU energy", "chip time", "chip energy", "faster", "less energy"
    );
    for cmp in &r.comparisons {
        s += &format!(
            "  {:<24}{:>12}{:>12}{:>12}{:>13}{:>10}{:>13}\n",
            cmp.baseline,
            si(cmp.gpu_latency_s, "s"),
            si(cmp.gpu_energy_j, "J"),
            si(cmp.chip_latency_s, "s"),
            si(cmp.chip_energy_j, "J"),
            format!("{}×", thousands(cmp.speedup)),
            format!("{}×", thousands(cmp.energy_ratio))
        );
        for caveat in &cmp.caveats {
            s += &format!("      note: {caveat}\n");
        }
    }
    let mut heads: Vec<usize> = r.comparisons.iter().map(|c| c.heads).collect();
    heads.dedup();
    if let [h] = heads[..] {
        s += &format!(
            "  chip time: one layer; chip energy: {h} heads × {} (the GPU workload's heads)\n",
            si(e.total_pj * 1e-12, "J")
        );
    }
    s
}

fn explain_text(chip: &ChipConfig) -> String {
    let rows = explain(chip);
    let mut s = format!(
        "Constants the cost model reads from chip {}: value, unit, provenance, source.\n\
         published = the paper (Leroux et al. 2025); derived = computed from published figures; assumed = ours.\n\
         docs/cost-model.md in the gaincell repository explains each one.\n\n",
        chip.name
    );
    for r in &rows {
        let changed = if r.is_paper_value {
            String::new()
        } else {
            "  (set by this chip; the source describes the paper value)".to_string()
        };
        s += &format!(
            "{} = {} {}  [{}]{changed}\n    {}\n",
            r.field,
            r.value,
            r.unit,
            r.provenance.label(),
            r.source
        );
    }
    let assumed: Vec<&str> = rows
        .iter()
        .filter(|r| r.provenance == Provenance::Assumed)
        .map(|r| r.field.as_str())
        .collect();
    s += &format!(
        "\nAssumed, not published ({}): {}\n\nGPU baselines built in\n",
        assumed.len(),
        assumed.join(", ")
    );
    for b in published_baselines() {
        let w = &b.workload;
        s += &format!(
            "  {}: {} and {} per token (batch {}, {} heads × {}, {} tokens)\n    {}\n",
            b.name,
            si(b.latency_per_token_s, "s"),
            si(b.energy_per_token_j, "J"),
            w.batch,
            w.heads,
            w.head_dim,
            thousands(w.tokens as f64),
            b.source
        );
    }
    s += &format!("\nWhat the comparison compares\n  {COMPARISON_DEFINITION}\n");
    s
}

/// `1234567.8` → "1,234,568".
pub fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if x < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// Four significant digits, at most.
fn sig(x: f64) -> String {
    match x.abs() {
        v if v >= 1000.0 => thousands(x),
        v if v >= 100.0 => format!("{x:.1}"),
        v if v >= 10.0 => format!("{x:.2}"),
        v if v >= 1.0 || v == 0.0 => format!("{x:.3}"),
        _ => format!("{x:.4}"),
    }
}

/// A quantity in base units with an SI prefix: `si(6.5e-8, "s")` → "65.00 ns".
pub fn si(x: f64, unit: &str) -> String {
    const PREFIXES: [(&str, f64); 6] = [
        ("", 1.0),
        ("m", 1e-3),
        ("µ", 1e-6),
        ("n", 1e-9),
        ("p", 1e-12),
        ("f", 1e-15),
    ];
    let (p, scale) = PREFIXES
        .iter()
        .copied()
        .find(|(_, scale)| x.abs() >= *scale)
        .unwrap_or(PREFIXES[PREFIXES.len() - 1]);
    format!("{} {p}{unit}", sig(x / scale))
}
