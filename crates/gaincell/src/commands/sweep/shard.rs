//! Splitting a sweep over jobs and putting it back together. `--shard I/N` runs the points whose index is
//! ≡ I (mod N) (round robin, so neighbouring points, which cost alike, spread over the jobs) and writes
//! `shard-I-of-N.json`: the sweep's definition, the point indices and their accuracy. `sweep merge` checks that
//! the shards come from one sweep and hold every point once, then recomputes the cost (cheap and deterministic)
//! and writes what the unsharded run writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::accuracy::{Accuracy, AccuracySpec};

/// The `format` of shard files this version writes and reads.
pub const FORMAT: &str = "gaincell-sweep-shard/1";

/// `--shard I/N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    pub index: usize,
    pub count: usize,
}

impl ShardSpec {
    pub fn parse(text: &str) -> Result<Self> {
        let usage = "write I/N with 0 ≤ I < N, e.g. --shard 0/4";
        let Some((i, n)) = text.split_once('/') else {
            bail!("--shard {text}: {usage}");
        };
        let (Ok(index), Ok(count)) = (i.trim().parse::<usize>(), n.trim().parse::<usize>()) else {
            bail!("--shard {text}: {usage}");
        };
        if count == 0 {
            bail!("--shard {text}: N is the number of shards, at least 1 ({usage})");
        }
        if index >= count {
            bail!(
                "--shard {text}: the index must be below N (0 to {}), shards count from 0",
                count - 1
            );
        }
        Ok(ShardSpec { index, count })
    }

    /// Whether the point of index `i` is this shard's.
    pub fn holds(self, i: usize) -> bool {
        i % self.count == self.index
    }

    pub fn file_name(self) -> String {
        format!("shard-{}-of-{}.json", self.index, self.count)
    }
}

/// What makes two runs the same sweep: the base chip, the varied fields, the cost model, the GPU baselines and
/// the accuracy settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    /// The base chip as TOML (every field resolved).
    pub base_chip: String,
    pub vary: Vec<VaryDef>,
    pub cost_model: ShapeDef,
    /// GPU measurement files (`--gpu`): path and text.
    pub gpu: Vec<(String, String)>,
    pub accuracy: Option<AccuracySpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VaryDef {
    pub key: String,
    pub values: Vec<String>,
}

/// [`gaincell_cost::ModelShape`], which the cost crate only serialises.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShapeDef {
    pub name: String,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub n_ctx: Option<usize>,
}

impl From<&gaincell_cost::ModelShape> for ShapeDef {
    fn from(m: &gaincell_cost::ModelShape) -> Self {
        ShapeDef {
            name: m.name.clone(),
            n_layer: m.n_layer,
            n_head: m.n_head,
            n_kv_head: m.n_kv_head,
            head_dim: m.head_dim,
            n_ctx: m.n_ctx,
        }
    }
}

impl From<&ShapeDef> for gaincell_cost::ModelShape {
    fn from(m: &ShapeDef) -> Self {
        gaincell_cost::ModelShape {
            name: m.name.clone(),
            n_layer: m.n_layer,
            n_head: m.n_head,
            n_kv_head: m.n_kv_head,
            head_dim: m.head_dim,
            n_ctx: m.n_ctx,
        }
    }
}

/// One shard's file.
#[derive(Serialize, Deserialize)]
pub struct ShardFile {
    pub format: String,
    pub shard: ShardSpec,
    /// Points in the whole sweep.
    pub total_points: usize,
    pub indices: Vec<usize>,
    pub definition: Definition,
    pub points: Vec<ShardPoint>,
}

#[derive(Serialize, Deserialize)]
pub struct ShardPoint {
    pub index: usize,
    pub settings: Vec<(String, String)>,
    pub accuracy: Option<Accuracy>,
}

/// The shard files named on the command line: files, or folders holding `shard-*-of-*.json`.
fn shard_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in inputs {
        if !p.is_dir() {
            files.push(p.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(p)
            .with_context(|| format!("reading {}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| {
                let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
                name.is_some_and(|n| n.starts_with("shard-") && n.ends_with(".json"))
            })
            .collect();
        if found.is_empty() {
            bail!(
                "{} holds no shard-I-of-N.json: give the --out folders of `gaincell sweep --shard I/N` runs",
                p.display()
            );
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

fn read_shard(path: &Path) -> Result<ShardFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not JSON: give a shard file of `gaincell sweep --shard`",
            path.display()
        )
    })?;
    if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        bail!(
            "{} is not a sweep shard (its `format` is not \"{FORMAT}\"): give files that \
             `gaincell sweep --shard` wrote",
            path.display()
        );
    }
    serde_json::from_value(v).with_context(|| format!("{}: a damaged shard file", path.display()))
}

/// The first field where two JSON values differ, as a dotted path.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value::Object;
    match (a, b) {
        (Object(x), Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, &p),
                    _ => Some(p),
                }
            })
        }
        _ if a == b => None,
        _ => Some(if path.is_empty() {
            "definition".into()
        } else {
            path.into()
        }),
    }
}

/// The merged sweep: its definition and every point's accuracy in index order.
pub struct Merged {
    pub definition: Definition,
    pub accuracy: Vec<Option<Accuracy>>,
    pub settings: Vec<Vec<(String, String)>>,
    pub files: Vec<PathBuf>,
}

/// Read the shards and check they are one sweep, every point once.
pub fn merge(inputs: &[PathBuf]) -> Result<Merged> {
    let files = shard_files(inputs)?;
    let shards = files
        .iter()
        .map(|f| read_shard(f))
        .collect::<Result<Vec<_>>>()?;
    let first = &shards[0];
    let first_def = serde_json::to_value(&first.definition)?;
    for (s, f) in shards.iter().zip(&files).skip(1) {
        let def = serde_json::to_value(&s.definition)?;
        if let Some(field) = first_difference(&first_def, &def, "") {
            bail!(
                "{} and {} are shards of different sweeps (they differ in `{field}`): merge the shards of one sweep",
                files[0].display(),
                f.display()
            );
        }
        if s.total_points != first.total_points {
            bail!(
                "{} and {} are shards of different sweeps ({} and {} points): merge the shards of one sweep",
                files[0].display(),
                f.display(),
                first.total_points,
                s.total_points
            );
        }
    }
    let total = first.total_points;
    let mut owner: BTreeMap<usize, usize> = BTreeMap::new();
    let mut accuracy = vec![None; total];
    let mut settings = vec![Vec::new(); total];
    for (k, (s, f)) in shards.iter().zip(&files).enumerate() {
        for p in &s.points {
            if p.index >= total {
                bail!(
                    "{}: point {} is outside the sweep's {total} points (a damaged shard file)",
                    f.display(),
                    p.index
                );
            }
            if let Some(&other) = owner.get(&p.index) {
                bail!(
                    "point {} is in both {} and {}: give each shard once",
                    p.index,
                    files[other].display(),
                    f.display()
                );
            }
            owner.insert(p.index, k);
            accuracy[p.index] = p.accuracy.clone();
            settings[p.index] = p.settings.clone();
        }
    }
    let missing: Vec<usize> = (0..total).filter(|i| !owner.contains_key(i)).collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(8).map(|i| i.to_string()).collect();
        let more = if missing.len() > 8 { ", …" } else { "" };
        let count = first.shard.count;
        let hint = if shards.iter().all(|s| s.shard.count == count) {
            let mut need: Vec<usize> = missing.iter().map(|i| i % count).collect();
            need.dedup();
            need.sort();
            need.dedup();
            let need: Vec<String> = need.iter().map(|i| format!("{i}/{count}")).collect();
            format!(
                ": add the shard{} {}",
                if need.len() > 1 { "s" } else { "" },
                need.join(", ")
            )
        } else {
            ": add the shards that hold them".into()
        };
        bail!(
            "{} of the sweep's {total} points are in no shard ({}{more}){hint}",
            missing.len(),
            shown.join(", ")
        );
    }
    Ok(Merged {
        definition: first.definition.clone(),
        accuracy,
        settings,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_syntax_and_bounds() {
        assert_eq!(
            ShardSpec::parse("1/3").unwrap(),
            ShardSpec { index: 1, count: 3 }
        );
        for (bad, needle) in [
            ("3", "write I/N"),
            ("a/2", "write I/N"),
            ("2/2", "below N"),
            ("0/0", "at least 1"),
        ] {
            let e = ShardSpec::parse(bad).unwrap_err().to_string();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        let s = ShardSpec { index: 1, count: 3 };
        let held: Vec<usize> = (0..8).filter(|&i| s.holds(i)).collect();
        assert_eq!(held, [1, 4, 7]);
    }

    #[test]
    fn the_first_difference_is_named_by_its_path() {
        let a =
            serde_json::json!({"vary": [{"key": "window"}], "accuracy": {"text": {"tokens": 5}}});
        let b =
            serde_json::json!({"vary": [{"key": "window"}], "accuracy": {"text": {"tokens": 6}}});
        assert_eq!(
            first_difference(&a, &b, "").as_deref(),
            Some("accuracy.text.tokens")
        );
        assert_eq!(first_difference(&a, &a, ""), None);
    }
}
