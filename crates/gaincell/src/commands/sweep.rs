//! `gaincell sweep`: the cost of every combination of chip fields, and with `--accuracy-*` a model's accuracy on
//! each, as sweep.csv, results.json, results.md and plots (PNG and SVG), the Pareto fronts of accuracy against
//! energy and latency marked and drawn.
//!
//! A sweep is a list of points; each point is the base chip with some fields set (`--vary KEY=V1,V2,...`, every
//! combination, the first `--vary` changing slowest). A row of the CSV is a point's key columns (`point` and the
//! varied fields) followed by column groups computed from the point's chip: cost, then accuracy and `pareto`.
//! `--shard I/N` runs a share of the points and `sweep merge` joins the shards ([`shard`]).

mod accuracy;
mod front_plot;
mod pareto;
pub(crate) mod plot;
mod report;
mod shard;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use gaincell_chip::ChipConfig;
use gaincell_cost::{evaluate, published_baselines, CostReport, GpuBaseline, ModelShape};
use indicatif::{ProgressBar, ProgressStyle};

use self::accuracy::{Accuracy, AccuracyArgs};
use self::shard::{Definition, ShardFile, ShardPoint, ShardSpec, VaryDef};
use super::cost::{load_model, model_shape, si};

/// More points than this is almost certainly a typo in a `--vary` list.
const MAX_POINTS: usize = 10_000;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SweepArgs {
    #[command(subcommand)]
    pub action: Option<SweepCommand>,
    /// Base chip: preset name or path to a chip TOML file.
    #[arg(long, default_value = "paper-nonlinear")]
    pub chip: String,
    /// Model whose attention is costed: gpt2, gpt2-medium, gpt2-large, gpt2-xl, stories260K, tinyllama-1.1b, or
    /// the path to a Hugging Face config.json (default: the --accuracy-model's shape, else gpt2).
    #[arg(long)]
    pub model: Option<String>,
    /// KEY=V1,V2,...: a chip field and the values it takes (repeatable; every combination runs). KEY is window,
    /// tile, head_dim, tiling, query_bits, key_bits, value_bits, output_bits, or any dotted field of the chip
    /// TOML, e.g. cost.energy.dac_pj or cost.timing.adder_stage_ns.
    #[arg(long = "vary", value_name = "KEY=VALUES", required = true)]
    pub vary: Vec<String>,
    /// A GPU measurement written by scripts/gpu_attention_baseline.py, drawn beside the published baselines
    /// (repeatable).
    #[arg(long = "gpu", value_name = "FILE")]
    pub gpu: Vec<PathBuf>,
    /// Folder for sweep.csv, results.json, results.md and the plots (created if missing).
    #[arg(long, default_value = "sweep")]
    pub out: PathBuf,
    /// Write the tables only.
    #[arg(long)]
    pub no_plots: bool,
    /// Run only the points whose index is ≡ I (mod N), writing shard-I-of-N.json into --out (no tables); join
    /// the shards with `gaincell sweep merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    #[command(flatten)]
    pub accuracy: AccuracyArgs,
}

#[derive(Subcommand)]
pub enum SweepCommand {
    /// Join the shard files of one sweep (`--shard I/N` runs) into the files the unsharded run writes; refuses
    /// shards of different sweeps, and points missing or given twice.
    Merge(MergeArgs),
}

#[derive(Args)]
pub struct MergeArgs {
    /// Shard files, or folders holding shard-I-of-N.json files.
    #[arg(required = true, value_name = "SHARDS")]
    pub shards: Vec<PathBuf>,
    /// Folder for sweep.csv, results.json, results.md and the plots (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Write the tables only.
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

/// A point's results, ready to become a CSV row and plot marks.
pub struct Row {
    /// The point's index in the whole sweep.
    pub index: usize,
    pub settings: Vec<(String, String)>,
    pub report: CostReport,
    pub accuracy: Option<Accuracy>,
    /// On the front of accuracy vs energy per token, and vs latency per token.
    pub pareto: Option<(bool, bool)>,
}

pub fn run(args: SweepArgs) -> Result<()> {
    if let Some(SweepCommand::Merge(m)) = args.action {
        return merge(m);
    }
    let shard = args.shard.as_deref().map(ShardSpec::parse).transpose()?;
    let loaded_base = ChipConfig::load(&args.chip)?;
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
    // Checked before the model loads: a bad --vary is the first thing to say.
    expand(&loaded_base, &varies)?;
    let evaluator = if args.accuracy.wanted() {
        refuse_overlap(&args.out, &args.accuracy)?;
        Some(args.accuracy.load()?)
    } else {
        None
    };
    let cost_model = match (&args.model, &evaluator) {
        (Some(m), _) => load_model(m)?,
        (None, Some(e)) => model_shape(e.config(), &e.spec.model),
        (None, None) => load_model("gpt2")?,
    };
    let gpu = args
        .gpu
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read GPU measurement file {}", f.display()))?;
            Ok((f.display().to_string(), text))
        })
        .collect::<Result<Vec<_>>>()?;
    let def = Definition {
        base_chip: loaded_base.to_toml_string(),
        vary: varies
            .iter()
            .map(|v| VaryDef {
                key: v.key.clone(),
                values: v.values.iter().map(|(t, _)| t.clone()).collect(),
            })
            .collect(),
        cost_model: (&cost_model).into(),
        gpu,
        accuracy: evaluator.as_ref().map(|e| e.spec.clone()),
    };
    // The merge rebuilds the sweep from its definition; so does this run, so both compute from the same values.
    let (points, model, baselines) = rebuild(&def)?;
    if let Some(e) = &evaluator {
        for p in &points {
            e.check_fits(&p.chip).with_context(|| {
                format!(
                    "sweep point {} does not fit the model",
                    describe(&p.settings)
                )
            })?;
        }
    }
    let mut rows = cost_rows(points, &model, &baselines)?;
    let mine: Vec<usize> = (0..rows.len())
        .filter(|&i| shard.is_none_or(|s| s.holds(i)))
        .collect();
    if let Some(e) = &evaluator {
        let bar = ProgressBar::new(mine.len() as u64).with_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} points  {per_sec}  ETA {eta}  {msg}",
            )
            .expect("valid template"),
        );
        for &i in &mine {
            let what = describe(&rows[i].row.settings);
            let chip = &rows[i].chip_for_accuracy;
            let a = e
                .run(chip, &mut |done, total| {
                    bar.set_message(format!("{what}: {done}/{total}"))
                })
                .with_context(|| format!("sweep point {what}"))?;
            bar.suspend(|| println!("point {i:>4}  {what}  {}", accuracy_line(&a)));
            rows[i].row.accuracy = Some(a);
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    if let Some(s) = shard {
        let file = ShardFile {
            format: shard::FORMAT.into(),
            shard: s,
            total_points: rows.len(),
            indices: mine.clone(),
            definition: def,
            points: mine
                .iter()
                .map(|&i| ShardPoint {
                    index: i,
                    settings: rows[i].row.settings.clone(),
                    accuracy: rows[i].row.accuracy.clone(),
                })
                .collect(),
        };
        let path = args.out.join(s.file_name());
        crate::paths::write_file_creating_folder(
            &path,
            serde_json::to_string_pretty(&file)? + "\n",
        )?;
        println!(
            "shard {}/{}: {} of the sweep's {} points (index ≡ {} mod {}); wrote {}",
            s.index,
            s.count,
            mine.len(),
            rows.len(),
            s.index,
            s.count,
            path.display()
        );
        return Ok(());
    }
    let rows: Vec<Row> = rows.into_iter().map(|r| r.row).collect();
    finish(&args.out, &def, rows, &baselines, !args.no_plots)
}

/// A row with the chip its accuracy is computed on.
struct Pending {
    row: Row,
    chip_for_accuracy: ChipConfig,
}

/// Each point's cost (every point, in a shard too: it is cheap and validates the whole sweep).
fn cost_rows(
    points: Vec<Point>,
    model: &ModelShape,
    baselines: &[GpuBaseline],
) -> Result<Vec<Pending>> {
    points
        .into_iter()
        .enumerate()
        .map(|(index, p)| {
            let report = evaluate(&p.chip, model, baselines)
                .with_context(|| format!("sweep point {}", describe(&p.settings)))?;
            Ok(Pending {
                row: Row {
                    index,
                    settings: p.settings,
                    report,
                    accuracy: None,
                    pareto: None,
                },
                chip_for_accuracy: p.chip,
            })
        })
        .collect()
}

/// The points, cost model and GPU baselines a definition describes.
fn rebuild(def: &Definition) -> Result<(Vec<Point>, ModelShape, Vec<GpuBaseline>)> {
    let base = ChipConfig::from_toml_str(&def.base_chip, "the sweep's base chip")?;
    let varies = def
        .vary
        .iter()
        .map(|v| parse_vary(&format!("{}={}", v.key, v.values.join(","))))
        .collect::<Result<Vec<_>>>()?;
    let points = expand(&base, &varies)?;
    let mut baselines = published_baselines();
    for (path, text) in &def.gpu {
        baselines.push(GpuBaseline::from_measurement_json(text, path)?);
    }
    Ok((points, (&def.cost_model).into(), baselines))
}

/// An output folder inside the model or the text would mix results with what is being read.
fn refuse_overlap(out: &Path, a: &AccuracyArgs) -> Result<()> {
    let mut inputs: Vec<(&str, &Path)> = Vec::new();
    if let Some(m) = a.model.as_deref().map(Path::new).filter(|p| p.exists()) {
        inputs.push(("--accuracy-model", m));
    }
    if let Some(t) = &a.text {
        inputs.push(("--accuracy-text", t));
    }
    crate::paths::refuse_overlap("--out", out, &inputs)
}

fn accuracy_line(a: &Accuracy) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &a.text {
        parts.push(format!(
            "loss {:.4}  perplexity {:.3}",
            t.loss, t.perplexity
        ));
    }
    if let Some(t) = &a.task {
        for m in &t.metrics {
            parts.push(format!("{} {} {:.4}", t.task, m.name, m.value));
        }
    }
    format!("{}  ({:.1} s)", parts.join("  "), a.seconds)
}

fn merge(m: MergeArgs) -> Result<()> {
    let merged = shard::merge(&m.shards)?;
    let (points, model, baselines) = rebuild(&merged.definition)?;
    if points.len() != merged.settings.len() {
        bail!(
            "the shards say {} points but their definition gives {}: a damaged shard file",
            merged.settings.len(),
            points.len()
        );
    }
    let mut rows = Vec::with_capacity(points.len());
    for (pending, (settings, accuracy)) in cost_rows(points, &model, &baselines)?
        .into_iter()
        .zip(merged.settings.into_iter().zip(merged.accuracy))
    {
        let mut row = pending.row;
        if row.settings != settings {
            bail!(
                "point {} is {} in its shard but {} in the sweep: a damaged shard file",
                row.index,
                describe(&settings),
                describe(&row.settings)
            );
        }
        if merged.definition.accuracy.is_some() && accuracy.is_none() {
            bail!(
                "point {} has no accuracy in its shard: a damaged shard file",
                row.index
            );
        }
        row.accuracy = accuracy;
        rows.push(row);
    }
    println!("merged {} shard files", merged.files.len());
    finish(&m.out, &merged.definition, rows, &baselines, !m.no_plots)
}

/// Mark the fronts, write the files and print the table.
fn finish(
    out: &Path,
    def: &Definition,
    mut rows: Vec<Row>,
    baselines: &[GpuBaseline],
    plots: bool,
) -> Result<()> {
    report::mark_fronts(&mut rows);
    let written = report::write_all(out, def, &rows, baselines, plots)?;
    let model = &def.cost_model;
    println!(
        "{} points: chip {} running {} ({} layers × {} heads)",
        rows.len(),
        rows.first().map_or("-", |r| r.report.chip.as_str()),
        model.name,
        model.n_layer,
        model.n_head
    );
    let name = rows
        .iter()
        .find_map(|r| r.accuracy.as_ref()?.shown())
        .map_or("", |s| s.1);
    // Wide enough for the longest point, so the columns stay aligned.
    let w = rows
        .iter()
        .map(|r| describe(&r.settings).chars().count() + 2)
        .fold(36, usize::max);
    println!(
        "  {:<w$}{:>12}{:>14}{:>14}{:>14}{:>10}",
        "point", "latency", "energy/head", "energy/layer", "area/layer", name
    );
    for r in &rows {
        let rep = &r.report;
        let loss = r
            .accuracy
            .as_ref()
            .and_then(|a| a.shown())
            .map_or(String::new(), |(v, _)| format!("{v:.4}"));
        println!(
            "  {:<w$}{:>12}{:>14}{:>14}{:>14}{:>10}",
            describe(&r.settings),
            si(rep.latency.total_ns * 1e-9, "s"),
            si(rep.energy.total_pj * 1e-12, "J"),
            si(rep.energy_pj.per_layer * 1e-12, "J"),
            format!("{:.3} mm²", rep.area_mm2.per_layer),
            loss
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
