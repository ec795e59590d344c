//! The seven zero-shot tasks of the paper's table, as lm-evaluation-harness defines them: where their data is
//! read from, how a document becomes requests, and which metrics are reported. One module per task holds its
//! reader and prompt construction.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::error::{EvalError, Result};
use crate::request::Request;

pub mod arc;
pub mod hellaswag;
pub mod lambada;
pub mod piqa;
pub mod wikitext;
pub mod winogrande;

/// A task of the table, named as the harness names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Task {
    Wikitext,
    LambadaOpenai,
    Hellaswag,
    Piqa,
    ArcEasy,
    ArcChallenge,
    Winogrande,
}

/// One metric a task reports, and which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub higher_is_better: bool,
}

const ACC: Metric = Metric {
    name: "acc",
    higher_is_better: true,
};
const ACC_NORM: Metric = Metric {
    name: "acc_norm",
    higher_is_better: true,
};
const fn lower(name: &'static str) -> Metric {
    Metric {
        name,
        higher_is_better: false,
    }
}

impl serde::Serialize for Task {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Task {
    pub const ALL: [Task; 7] = [
        Task::Wikitext,
        Task::LambadaOpenai,
        Task::Hellaswag,
        Task::Piqa,
        Task::ArcEasy,
        Task::ArcChallenge,
        Task::Winogrande,
    ];

    /// The harness's task name.
    pub fn name(self) -> &'static str {
        match self {
            Task::Wikitext => "wikitext",
            Task::LambadaOpenai => "lambada_openai",
            Task::Hellaswag => "hellaswag",
            Task::Piqa => "piqa",
            Task::ArcEasy => "arc_easy",
            Task::ArcChallenge => "arc_challenge",
            Task::Winogrande => "winogrande",
        }
    }

    /// A task by the harness's name or a short alias (`lambada`, `arc-easy`, …).
    pub fn parse(s: &str) -> Result<Task> {
        let key = s.trim().to_ascii_lowercase().replace('-', "_");
        let alias = match key.as_str() {
            "lambada" => "lambada_openai",
            "wikitext2" | "wikitext_2" => "wikitext",
            k => k,
        };
        Task::ALL
            .into_iter()
            .find(|t| t.name() == alias)
            .ok_or_else(|| {
                EvalError::Input(format!(
                    "unknown task `{s}`: known tasks are {}",
                    Task::ALL.map(|t| t.name()).join(", ")
                ))
            })
    }

    /// What the harness reports for the task.
    pub fn metrics(self) -> &'static [Metric] {
        const WIKITEXT: [Metric; 3] = [
            lower("word_perplexity"),
            lower("byte_perplexity"),
            lower("bits_per_byte"),
        ];
        const LAMBADA: [Metric; 2] = [lower("perplexity"), ACC];
        match self {
            Task::Wikitext => &WIKITEXT,
            Task::LambadaOpenai => &LAMBADA,
            Task::Hellaswag | Task::Piqa | Task::ArcEasy | Task::ArcChallenge => &[ACC, ACC_NORM],
            Task::Winogrande => &[ACC],
        }
    }

    /// The version of the harness's task definition these prompts follow.
    pub fn version(self) -> f64 {
        match self {
            Task::Wikitext => 2.0,
            _ => 1.0,
        }
    }

    /// The task's documents, read from `data_dir`.
    pub fn load(self, data_dir: &Path) -> Result<Vec<Doc>> {
        match self {
            Task::Wikitext => wikitext::load(data_dir),
            Task::LambadaOpenai => lambada::load(data_dir),
            Task::Hellaswag => hellaswag::load(data_dir),
            Task::Piqa => piqa::load(data_dir),
            Task::ArcEasy => arc::load(data_dir, arc::Level::Easy),
            Task::ArcChallenge => arc::load(data_dir, arc::Level::Challenge),
            Task::Winogrande => winogrande::load(data_dir),
        }
    }
}

/// One document of a task and the requests it makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    /// Multiple choice: `requests[i]` scores choice i; `choices` are the harness's `doc_to_choice` strings, whose
    /// lengths in characters normalise `acc_norm`.
    Choice {
        requests: Vec<Request>,
        choices: Vec<String>,
        gold: usize,
    },
    /// One continuation: its log-likelihood and whether greedy decoding gives it (LAMBADA).
    Continuation(Request),
    /// A whole document scored with rolling windows (wikitext): the text scored, and the words and bytes the
    /// metrics divide by (counted on the original page, as the harness does).
    Rolling {
        text: String,
        words: usize,
        bytes: usize,
    },
}

impl Doc {
    /// A multiple-choice document whose choices continue one context after the target delimiter `" "`.
    pub fn choice(context: &str, choices: Vec<String>, gold: usize) -> Doc {
        Doc::Choice {
            requests: choices
                .iter()
                .map(|c| Request::new(context, format!(" {c}")))
                .collect(),
            choices,
            gold,
        }
    }
}

/// Where task data is read from: `--data-dir`, else `$GAINCELL_DATA`, else the user's cache folder
/// ([`default_data_dir`], where `gaincell eval download` puts it). A folder that holds an `eval` folder (a shared
/// data folder) stands for that `eval` folder.
pub fn data_dir(flag: Option<&Path>) -> PathBuf {
    let dir = flag
        .map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os("GAINCELL_DATA")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(default_data_dir);
    let has_tasks = ["lambada", "hellaswag", "piqa", "wikitext-2-raw"]
        .iter()
        .any(|t| dir.join(t).is_dir());
    if !has_tasks && dir.join("eval").is_dir() {
        dir.join("eval")
    } else {
        dir
    }
}

/// The user's cache folder for task data: `$XDG_CACHE_HOME/gaincell/eval`, else `~/.cache/gaincell/eval`
/// (`%LOCALAPPDATA%\gaincell\eval` on Windows), else `gaincell-data/eval` under the current folder.
pub fn default_data_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let cache = if cfg!(windows) {
        var("LOCALAPPDATA")
    } else {
        var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))
    };
    cache
        .unwrap_or_else(|| PathBuf::from("gaincell-data"))
        .join("gaincell")
        .join("eval")
}

/// The first of `candidates` (relative to `dir`) that exists, or the missing-data error naming the first.
pub(crate) fn find(task: Task, dir: &Path, candidates: &[&str], hint: &str) -> Result<PathBuf> {
    candidates
        .iter()
        .map(|c| dir.join(c))
        .find(|p| p.is_file())
        .ok_or_else(|| EvalError::MissingData {
            task: task.name().into(),
            path: dir.join(candidates[0]),
            hint: hint.into(),
        })
}

pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| EvalError::data(path, e.to_string()))
}

/// Every non-empty line of a JSON-lines file as a `T`.
pub(crate) fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    read_text(path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| EvalError::data(path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}
