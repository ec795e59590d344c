//! `gaincell sweep`: the cost of every combination of chip fields, as a CSV and plots (PNG and SVG).
//!
//! A sweep is a list of points; each point is the base chip with some fields set (`--vary KEY=V1,V2,...`, every
//! combination, the first `--vary` changing slowest). A row of the CSV is a point's key columns (`point` and the
//! varied fields) followed by column groups computed from the point's chip. Cost is the only group today; an
//! accuracy sweep adds its own group (e.g. `val_loss`) per point, and the key columns stay the join key.

pub(crate) mod plot;

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use gaincell_chip::ChipConfig;
use gaincell_cost::{evaluate, CostReport};

use super::cost::{load_baselines, load_model, si};

/// More points than this is almost certainly a typo in a `--vary` list.
const MAX_POINTS: usize = 10_000;

#[derive(Args)]
pub struct SweepArgs {
    /// Base chip: preset name or path to a chip TOML file.
    #[arg(long, default_value = "paper-nonlinear")]
    pub chip: String,
    /// gpt2, gpt2-medium, gpt2-large, gpt2-xl, or the path to a Hugging Face config.json.
    #[arg(long, default_value = "gpt2")]
    pub model: String,
    /// KEY=V1,V2,...: a chip field and the values it takes (repeatable; every combination runs). KEY is window,
    /// tile, head_dim, tiling, query_bits, key_bits, value_bits, output_bits, or any dotted field of the chip
    /// TOML, e.g. cost.energy.dac_pj or cost.timing.adder_stage_ns.
    #[arg(long = "vary", value_name = "KEY=VALUES", required = true)]
    pub vary: Vec<String>,
    /// A GPU measurement written by scripts/gpu_attention_baseline.py, drawn beside the published baselines
    /// (repeatable).
    #[arg(long = "gpu", value_name = "FILE")]
    pub gpu: Vec<PathBuf>,
    /// Folder for sweep.csv and the plots (created if missing).
    #[arg(long, default_value = "sweep")]
    pub out: PathBuf,
    /// Write the CSV only.
    #[arg(long)]
    pub no_plots: bool,
}

/// One `--vary`: where the field lives in the chip TOML, and its values as written and as TOML.
struct Vary {
    key: String,
    path: Vec<String>,
    values: Vec<(String, toml::Value)>,
}

/// One chip of the sweep.
pub struct Point {
    /// The varied fields as `--vary` named them, with the values as written.
    pub settings: Vec<(String, String)>,
    pub chip: ChipConfig,
}

/// A point's cost, ready to become a CSV row and plot marks.
pub struct Row {
    pub settings: Vec<(String, String)>,
    pub report: CostReport,
}

pub fn run(args: SweepArgs) -> Result<()> {
    let base = ChipConfig::load(&args.chip)?;
    let model = load_model(&args.model)?;
    let baselines = load_baselines(&args.gpu)?;
    let varies = args
        .vary
        .iter()
        .map(|v| parse_vary(v))
        .collect::<Result<Vec<_>>>()?;
    for (i, v) in varies.iter().enumerate() {
        if varies[..i].iter().any(|w| w.path == v.path) {
            bail!("--vary {} is given twice", v.key);
        }
    }
    let points = expand(&base, &varies)?;
    let rows = points
        .into_iter()
        .map(|p| {
            let report = evaluate(&p.chip, &model, &baselines)
                .with_context(|| format!("sweep point {}", describe(&p.settings)))?;
            Ok(Row {
                settings: p.settings,
                report,
            })
        })
        .collect::<Result<Vec<_>>>()?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let csv_path = args.out.join("sweep.csv");
    let keys: Vec<String> = varies.iter().map(|v| v.key.clone()).collect();
    crate::paths::write_file(&csv_path, csv(&keys, &rows))?;
    let mut written = vec![csv_path];
    if !args.no_plots {
        written.extend(plot::all(&args.out, &rows, &baselines)?);
    }

    println!(
        "{} points: chip {} running {} ({})",
        rows.len(),
        base.name,
        model.name,
        model.describe()
    );
    println!(
        "  {:<36}{:>12}{:>14}{:>14}{:>14}",
        "point", "latency", "energy/head", "energy/layer", "area/layer"
    );
    for r in &rows {
        let rep = &r.report;
        println!(
            "  {:<36}{:>12}{:>14}{:>14}{:>14}",
            describe(&r.settings),
            si(rep.latency.total_ns * 1e-9, "s"),
            si(rep.energy.total_pj * 1e-12, "J"),
            si(rep.energy_pj.per_layer * 1e-12, "J"),
            format!("{:.3} mm²", rep.area_mm2.per_layer)
        );
    }
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// "window=256, tile=32".
pub fn describe(settings: &[(String, String)]) -> String {
    settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_vary(spec: &str) -> Result<Vary> {
    let (key, list) = spec
        .split_once('=')
        .ok_or_else(|| anyhow!("--vary {spec}: write KEY=V1,V2,... (e.g. window=256,512,1024)"))?;
    let key = key.trim();
    let path = match key {
        "window" => "geometry.window",
        "tile" | "tile_rows" => "geometry.tile_rows",
        "head_dim" => "geometry.head_dim",
        "tiling" => "geometry.tiling",
        "query_bits" => "query.bits",
        "key_bits" => "key.bits",
        "value_bits" => "value.bits",
        "output_bits" => "output.bits",
        other => other,
    };
    let values = list
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| (v.to_string(), toml_value(v)))
        .collect::<Vec<_>>();
    if key.is_empty() || values.is_empty() {
        bail!("--vary {spec}: give a field and at least one value, e.g. window=256,512,1024");
    }
    Ok(Vary {
        key: key.to_string(),
        path: path.split('.').map(str::to_string).collect(),
        values,
    })
}

/// A value as TOML reads it (integer, float, boolean), else as a string.
fn toml_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

/// Every combination of the varied values, each a validated chip.
fn expand(base: &ChipConfig, varies: &[Vary]) -> Result<Vec<Point>> {
    // Checked: a product of many lists wraps around in release builds and would pass the bound.
    let total = varies.iter().try_fold(1usize, |n, v| {
        n.checked_mul(v.values.len()).filter(|&n| n <= MAX_POINTS)
    });
    let Some(total) = total else {
        let lists: Vec<String> = varies.iter().map(|v| v.values.len().to_string()).collect();
        bail!(
            "the sweep has {} points (more than {MAX_POINTS}): shorten the --vary lists",
            lists.join(" × ")
        );
    };
    let base_table = toml::Table::try_from(base).context("chip config serialises")?;
    let mut points = Vec::with_capacity(total);
    for index in 0..total {
        // Mixed-radix digits of `index`, the last --vary changing fastest.
        let mut rest = index;
        let mut picks = vec![0; varies.len()];
        for (pick, v) in picks.iter_mut().zip(varies).rev() {
            *pick = rest % v.values.len();
            rest /= v.values.len();
        }
        let mut table = base_table.clone();
        let mut settings = Vec::new();
        for (v, &pick) in varies.iter().zip(&picks) {
            let (text, value) = &v.values[pick];
            set_path(&mut table, &v.path, value.clone())
                .with_context(|| format!("--vary {}", v.key))?;
            settings.push((v.key.clone(), text.clone()));
        }
        let origin = format!("sweep point {}", describe(&settings));
        let text = toml::to_string(&table).context("chip config serialises")?;
        let chip = ChipConfig::from_toml_str(&text, &origin).with_context(|| origin.clone())?;
        points.push(Point { settings, chip });
    }
    Ok(points)
}

/// Set `path` (e.g. `["cost", "energy", "dac_pj"]`) in a chip table; the chip's own validation judges the value.
fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<()> {
    let (leaf, parents) = path.split_last().expect("split gives one segment at least");
    let mut t = table;
    for (i, seg) in parents.iter().enumerate() {
        t = match t.get_mut(seg) {
            Some(toml::Value::Table(inner)) => inner,
            _ => bail!(
                "`{}` is not a chip field: see `gaincell chip show` for the fields",
                path[..=i].join(".")
            ),
        };
    }
    if matches!(t.get(leaf), Some(toml::Value::Table(_))) {
        bail!(
            "`{}` is a section, not a field: name one of its fields",
            path.join(".")
        );
    }
    t.insert(leaf.clone(), value);
    Ok(())
}

/// The CSV text: key columns, then the cost group. Numbers are written in full precision.
fn csv(keys: &[String], rows: &[Row]) -> String {
    let mut header: Vec<String> = vec!["point".into()];
    header.extend(keys.iter().cloned());
    let mut lines = Vec::with_capacity(rows.len() + 1);
    for (i, r) in rows.iter().enumerate() {
        // A cost column named like a varied key (`window`) would repeat it: the key column stays.
        let cost: Vec<(String, String)> = cost_columns(&r.report)
            .into_iter()
            .filter(|(name, _)| !keys.contains(name))
            .collect();
        if i == 0 {
            header.extend(cost.iter().map(|(name, _)| name.clone()));
            lines.push(header.join(","));
        }
        let mut cells = vec![i.to_string()];
        cells.extend(r.settings.iter().map(|(_, v)| csv_cell(v)));
        cells.extend(cost.into_iter().map(|(_, v)| v));
        lines.push(cells.join(","));
    }
    lines.join("\n") + "\n"
}

fn csv_cell(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// The cost column group of one point.
fn cost_columns(r: &CostReport) -> Vec<(String, String)> {
    let (c, l, e) = (&r.counts, &r.latency, &r.energy);
    let mut cols: Vec<(String, String)> = [
        ("chip", csv_cell(&r.chip)),
        ("model", csv_cell(&r.model.name)),
        ("window", c.window.to_string()),
        ("tile_rows", c.tile_rows.to_string()),
        ("sub_tiles", c.sub_tiles.to_string()),
        ("adder_depth", c.adder_depth.to_string()),
        ("latency_ns", l.total_ns.to_string()),
        ("model_latency_ns", r.model_latency_ns.to_string()),
        ("energy_qk_pj", e.qk_pj.to_string()),
        ("energy_pv_pj", e.pv_pj.to_string()),
        ("energy_digital_pj", e.digital_pj.to_string()),
        ("energy_dac_pj", e.dac_pj.to_string()),
        ("energy_head_pj", e.total_pj.to_string()),
        ("energy_layer_pj", r.energy_pj.per_layer.to_string()),
        ("energy_model_pj", r.energy_pj.per_model.to_string()),
        ("cells_model", r.cells.per_model.to_string()),
        ("area_head_mm2", r.area_mm2.per_head.to_string()),
        ("area_layer_mm2", r.area_mm2.per_layer.to_string()),
        ("area_model_mm2", r.area_mm2.per_model.to_string()),
        (
            "column_lifetime_s",
            r.retention.column_lifetime_s.to_string(),
        ),
        ("oldest_decay", r.retention.oldest_decay.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut used: Vec<String> = Vec::new();
    for cmp in &r.comparisons {
        // Two measurement files of the same GPU get distinct columns.
        let mut slug = slug(&cmp.baseline);
        if used.contains(&slug) {
            slug = format!("{slug}_{}", used.len() + 1);
        }
        used.push(slug.clone());
        cols.push((format!("speedup_vs_{slug}"), cmp.speedup.to_string()));
        cols.push((
            format!("energy_ratio_vs_{slug}"),
            cmp.energy_ratio.to_string(),
        ));
    }
    cols
}

/// "RTX 4090" → "rtx_4090".
fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    s.split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}
