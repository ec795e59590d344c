//! `gaincell eval download`: the task data from the HuggingFace Hub, from the datasets lm-evaluation-harness
//! reads, verified (pinned SHA-256 where the file is known, item counts, and a read through the task's own
//! reader) and converted to the files `eval tasks` reads, written atomically into the data folder.
//!
//! Files are fetched with hf-hub into a scratch folder inside the data folder (removed afterwards, whatever
//! happens), so a refused file leaves nothing behind. `HF_ENDPOINT` points hf-hub at another server (a mirror,
//! or the tests' local stand-in); `HF_HUB_OFFLINE=1` refuses at once. `GAINCELL_DOWNLOAD_MANIFEST` (for tests)
//! names a JSON file `{"sha256": {"<repo>/<path>": "<hex>"}, "items": {"<task>": n}}` that replaces the pinned
//! hashes and item counts, so synthetic fixtures can stand in for the real files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::parquet_rows::parquet_rows;
use anyhow::{anyhow, bail, Context, Result};
use gaincell_eval::samples::sha256_hex;
use gaincell_eval::Task;
use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Repo, RepoType};
use serde_json::Value;

/// The Hub's address when `HF_ENDPOINT` is unset.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How a downloaded file becomes the harness's files.
#[derive(Clone, Copy, Debug)]
enum Convert {
    /// JSON lines kept as they are (`{"text": ...}`), to `lambada/lambada_test.jsonl`.
    LambadaJsonl,
    /// Parquet rows `{"text"}` (one per line of the raw file, blank lines empty) back to `wiki.test.raw`.
    WikitextParquet,
    /// Parquet rows of Rowan/hellaswag to the original JSON lines (`hellaswag_val.jsonl`).
    HellaswagParquet,
    /// Parquet rows `{"goal", "sol1", "sol2", "label"}` to `valid.jsonl` + `valid-labels.lst`.
    PiqaParquet,
    /// Parquet rows of allenai/ai2_arc to HF JSON lines (`{"question", "choices": {"text", "label"}, "answerKey"}`).
    ArcParquet(&'static str),
}

/// One task's file on the Hub: a dataset repository, the revision, the file, its SHA-256 where it is known.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    pub task: Task,
    pub repo: &'static str,
    pub revision: &'static str,
    pub path: &'static str,
    /// SHA-256 of the file as downloaded (None where it could not be pinned: the content checks still apply).
    pub sha256: Option<&'static str>,
    /// SHA-256 of the converted file where the canonical one is known (WikiText-2's wiki.test.raw).
    pub converted_sha256: Option<&'static str>,
    /// Documents the task's reader must find in the converted data.
    pub items: usize,
    convert: Convert,
}

/// The sources, one per task that can be downloaded (lm-evaluation-harness's `dataset_path`s).
pub const SOURCES: &[Source] = &[
    Source {
        task: Task::Wikitext,
        // The harness reads EleutherAI/wikitext_document_level, built from these very lines.
        repo: "Salesforce/wikitext",
        revision: "main",
        path: "wikitext-2-raw-v1/test-00000-of-00001.parquet",
        sha256: None,
        converted_sha256: Some("173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08"),
        items: 62,
        convert: Convert::WikitextParquet,
    },
    Source {
        task: Task::LambadaOpenai,
        repo: "EleutherAI/lambada_openai",
        revision: "main",
        path: "data/lambada_test.jsonl",
        sha256: Some("4aa8d02cd17c719165fc8a7887fddd641f43fcafa4b1c806ca8abc31fabdb226"),
        converted_sha256: None,
        items: 5153,
        convert: Convert::LambadaJsonl,
    },
    Source {
        task: Task::Hellaswag,
        repo: "Rowan/hellaswag",
        revision: "refs/convert/parquet",
        path: "default/validation/0000.parquet",
        sha256: None,
        converted_sha256: None,
        items: 10042,
        convert: Convert::HellaswagParquet,
    },
    Source {
        task: Task::Piqa,
        repo: "ybisk/piqa",
        revision: "refs/convert/parquet",
        path: "plain_text/validation/0000.parquet",
        sha256: None,
        converted_sha256: None,
        items: 1838,
        convert: Convert::PiqaParquet,
    },
    Source {
        task: Task::ArcEasy,
        repo: "allenai/ai2_arc",
        revision: "main",
        path: "ARC-Easy/test-00000-of-00001.parquet",
        sha256: None,
        converted_sha256: None,
        items: 2376,
        convert: Convert::ArcParquet("arc-easy/arc_easy.jsonl"),
    },
    Source {
        task: Task::ArcChallenge,
        repo: "allenai/ai2_arc",
        revision: "main",
        path: "ARC-Challenge/test-00000-of-00001.parquet",
        sha256: None,
        converted_sha256: None,
        items: 1172,
        convert: Convert::ArcParquet("arc-challenge/arc_challenge.jsonl"),
    },
];

impl Source {
    /// The files the conversion writes, relative to the data folder.
    pub fn outputs(&self) -> Vec<&'static str> {
        match self.convert {
            Convert::LambadaJsonl => vec!["lambada/lambada_test.jsonl"],
            Convert::WikitextParquet => vec!["wikitext-2-raw/wiki.test.raw"],
            Convert::HellaswagParquet => vec!["hellaswag/hellaswag_val.jsonl"],
            Convert::PiqaParquet => vec!["piqa/valid.jsonl", "piqa/valid-labels.lst"],
            Convert::ArcParquet(out) => vec![out],
        }
    }
}

/// The source of a task, if it can be downloaded.
pub fn source(task: Task) -> Option<&'static Source> {
    SOURCES.iter().find(|s| s.task == task)
}

/// The Hub address in use: `HF_ENDPOINT`, else huggingface.co.
pub fn endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
}

/// Whether the Hub answers a TCP connection within two seconds (and `HF_HUB_OFFLINE` is not set).
pub fn online() -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    if std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1") {
        return false;
    }
    let e = endpoint();
    let (tls, rest) = match e.split_once("://") {
        Some((scheme, rest)) => (scheme == "https", rest),
        None => (true, e.as_str()),
    };
    let host = rest.split('/').next().unwrap_or_default();
    let addr = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:{}", if tls { 443 } else { 80 })
    };
    let Ok(addrs) = addr.to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).is_ok())
}

/// Hashes and item counts that replace the pinned ones (`GAINCELL_DOWNLOAD_MANIFEST`).
#[derive(Default)]
struct Manifest {
    sha256: BTreeMap<String, String>,
    items: BTreeMap<String, usize>,
}

fn manifest() -> Result<Option<Manifest>> {
    let Some(path) = std::env::var_os("GAINCELL_DOWNLOAD_MANIFEST").filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let path = PathBuf::from(path);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("GAINCELL_DOWNLOAD_MANIFEST {}", path.display()))?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("GAINCELL_DOWNLOAD_MANIFEST {}", path.display()))?;
    let mut m = Manifest::default();
    for (k, h) in v["sha256"].as_object().into_iter().flatten() {
        m.sha256
            .insert(k.clone(), h.as_str().unwrap_or_default().to_string());
    }
    for (k, n) in v["items"].as_object().into_iter().flatten() {
        m.items
            .insert(k.clone(), n.as_u64().unwrap_or_default() as usize);
    }
    Ok(Some(m))
}

/// What to check a file against: the manifest's values where one is given, else the pinned ones.
struct Expect {
    sha256: Option<String>,
    converted_sha256: Option<String>,
    items: usize,
}

fn expect(s: &Source, m: Option<&Manifest>) -> Expect {
    match m {
        Some(m) => Expect {
            sha256: m.sha256.get(&format!("{}/{}", s.repo, s.path)).cloned(),
            converted_sha256: None,
            items: m.items.get(s.task.name()).copied().unwrap_or(s.items),
        },
        None => Expect {
            sha256: s.sha256.map(str::to_string),
            converted_sha256: s.converted_sha256.map(str::to_string),
            items: s.items,
        },
    }
}

/// Removes the scratch folder when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Downloads, verifies and converts the data of `tasks` into `dir`; returns the files written.
pub fn download(tasks: &[Task], dir: &Path) -> Result<Vec<PathBuf>> {
    let sources: Vec<&Source> = tasks
        .iter()
        .map(|&t| {
            source(t).ok_or_else(|| {
                anyhow!(
                    "task {} cannot be downloaded (downloadable: {})",
                    t.name(),
                    SOURCES
                        .iter()
                        .map(|s| s.task.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        })
        .collect::<Result<_>>()?;
    let endpoint = endpoint();
    if std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1") {
        bail!(
            "HF_HUB_OFFLINE=1: cannot download from {endpoint}; place the files by hand (see `gaincell eval tasks --help`)"
        );
    }
    let manifest = manifest()?;
    std::fs::create_dir_all(dir).with_context(|| format!("data folder {}", dir.display()))?;
    let scratch = Scratch(dir.join(format!(".download-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)
        .with_context(|| format!("scratch folder {}", scratch.0.display()))?;
    let api = ApiBuilder::from_env()
        .with_endpoint(endpoint.clone())
        .with_cache_dir(scratch.0.join("hub"))
        .with_progress(false)
        .build()
        .context("the HuggingFace Hub client")?;
    let mut written = Vec::new();
    for s in sources {
        let want = expect(s, manifest.as_ref());
        let label = format!("{} ({}@{}: {})", s.task.name(), s.repo, s.revision, s.path);
        println!("downloading {label} from {endpoint}");
        let repo = api.repo(Repo::with_revision(
            s.repo.to_string(),
            RepoType::Dataset,
            s.revision.to_string(),
        ));
        let local = repo.get(s.path).map_err(|e| {
            anyhow!(
                "downloading {label} from {endpoint} failed ({e}); offline, place {} in {} by hand \
                 (formats: `gaincell eval tasks --help`)",
                s.outputs().join(" and "),
                dir.display()
            )
        })?;
        let bytes = std::fs::read(&local).with_context(|| local.display().to_string())?;
        let got = sha256_hex(&bytes);
        match &want.sha256 {
            Some(h) if *h != got => bail!(
                "{label}: sha256 {got} does not match the expected {h}; the file was refused and nothing was written"
            ),
            Some(_) => println!("  sha256 {got} verified"),
            None => println!("  sha256 {got} (no pinned hash: checked by content)"),
        }
        let files = convert(s, &local, &bytes).with_context(|| label.clone())?;
        if let Some(h) = &want.converted_sha256 {
            let got = sha256_hex(&files[0].1);
            if *h != got {
                bail!(
                    "{label}: the converted {} has sha256 {got}, not the canonical {h}; nothing was written",
                    files[0].0
                );
            }
        }
        // Read the converted files with the task's own reader before anything reaches the data folder.
        let check = scratch.0.join("check");
        let _ = std::fs::remove_dir_all(&check);
        for (rel, data) in &files {
            let p = check.join(rel);
            std::fs::create_dir_all(p.parent().expect("relative path in a folder"))?;
            std::fs::write(&p, data)?;
        }
        let docs = s.task.load(&check).map_err(|e| {
            anyhow!("{label}: the converted data is unreadable ({e}); nothing was written")
        })?;
        if docs.len() != want.items {
            bail!(
                "{label}: {} documents, expected {}; the file was refused and nothing was written",
                docs.len(),
                want.items
            );
        }
        for (rel, data) in &files {
            let p = dir.join(rel);
            crate::paths::write_file_creating_folder(&p, data)?;
            println!("  wrote {} ({} bytes)", p.display(), data.len());
            written.push(p);
        }
        println!("  {}: {} documents", s.task.name(), docs.len());
    }
    Ok(written)
}

/// The harness's files (path relative to the data folder, bytes) from a downloaded file.
fn convert(s: &Source, local: &Path, bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let jsonl = |rows: &[Value]| -> Vec<u8> {
        let mut out = String::new();
        for r in rows {
            out.push_str(&r.to_string());
            out.push('\n');
        }
        out.into_bytes()
    };
    Ok(match s.convert {
        Convert::LambadaJsonl => {
            let text = std::str::from_utf8(bytes).context("not UTF-8")?;
            for (i, line) in text.lines().enumerate() {
                let v: Value =
                    serde_json::from_str(line).with_context(|| format!("line {}", i + 1))?;
                if !v["text"].is_string() {
                    bail!("line {}: no \"text\"", i + 1);
                }
            }
            vec![("lambada/lambada_test.jsonl".into(), bytes.to_vec())]
        }
        Convert::WikitextParquet => {
            let rows = parquet_rows(local)?;
            let mut out = String::new();
            for r in &rows {
                let t = r["text"]
                    .as_str()
                    .ok_or_else(|| anyhow!("a row without \"text\""))?;
                // The Hub's rows drop the blank lines' single space.
                out.push_str(if t.is_empty() { " \n" } else { t });
            }
            vec![("wikitext-2-raw/wiki.test.raw".into(), out.into_bytes())]
        }
        Convert::HellaswagParquet => {
            let rows = parquet_rows(local)?;
            for (i, r) in rows.iter().enumerate() {
                for k in ["activity_label", "ctx_a", "ctx_b", "endings", "label"] {
                    if r.get(k).is_none() {
                        bail!("row {}: no \"{k}\"", i + 1);
                    }
                }
            }
            vec![("hellaswag/hellaswag_val.jsonl".into(), jsonl(&rows))]
        }
        Convert::PiqaParquet => {
            let rows = parquet_rows(local)?;
            let mut labels = String::new();
            let mut items = Vec::new();
            for (i, r) in rows.iter().enumerate() {
                let label = match &r["label"] {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    _ => bail!("row {}: no \"label\"", i + 1),
                };
                labels.push_str(&label);
                labels.push('\n');
                items.push(
                    serde_json::json!({"goal": r["goal"], "sol1": r["sol1"], "sol2": r["sol2"]}),
                );
            }
            vec![
                ("piqa/valid.jsonl".into(), jsonl(&items)),
                ("piqa/valid-labels.lst".into(), labels.into_bytes()),
            ]
        }
        Convert::ArcParquet(out) => {
            let rows = parquet_rows(local)?;
            vec![(out.into(), jsonl(&rows))]
        }
    })
}
