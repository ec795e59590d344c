//! arc_easy and arc_challenge (`arc_easy.yaml`, `arc_challenge.yaml`): AI2 ARC test sets,
//! `Question: {question}\nAnswer:` followed by each answer's text.
//!
//! Three line formats are read: `{"query": "Question: …", "choices": [...], "gold": i}` (the shared data),
//! AI2's release (`{"question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}`), and HF datasets'
//! JSON export (`{"question", "choices": {"text": [...], "label": [...]}, "answerKey"}`).

use std::path::Path;

use serde_json::Value;

use super::{find, read_jsonl, Doc, Task};
use crate::error::{EvalError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Easy,
    Challenge,
}

pub fn load(dir: &Path, level: Level) -> Result<Vec<Doc>> {
    let (task, folder, file, ai2) = match level {
        Level::Easy => (Task::ArcEasy, "arc-easy", "arc_easy.jsonl", "ARC-Easy"),
        Level::Challenge => (
            Task::ArcChallenge,
            "arc-challenge",
            "arc_challenge.jsonl",
            "ARC-Challenge",
        ),
    };
    let hint = format!(
        "put the {ai2} test set there as JSON lines: {{\"query\": \"Question: ...\", \"choices\": [...], \"gold\": i}}, \
         or {ai2}-Test.jsonl from https://ai2-public-datasets.s3.amazonaws.com/arc/ARC-V1-Feb2018.zip \
         (ARC-V1-Feb2018-2/{ai2}/{ai2}-Test.jsonl) in {folder}/, or HF dataset allenai/ai2_arc ({ai2}, test) as JSON lines"
    );
    let path = find(
        task,
        dir,
        &[
            &format!("{folder}/{file}"),
            &format!("{folder}/{ai2}-Test.jsonl"),
        ],
        &hint,
    )?;
    read_jsonl::<Value>(&path)?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (question, choices, gold) = parse(v).ok_or_else(|| {
                EvalError::data(
                    &path,
                    format!(
                        "line {}: not a known ARC format (see `gaincell eval tasks --help`)",
                        i + 1
                    ),
                )
            })?;
            Ok(doc(&question, choices, gold))
        })
        .collect()
}

/// Question, answer texts and the gold answer's index, from any of the three formats.
fn parse(v: &Value) -> Option<(String, Vec<String>, usize)> {
    let texts = |a: &Value| -> Option<Vec<String>> {
        a.as_array()?
            .iter()
            .map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    if let Some(query) = v["query"].as_str() {
        let q = query.strip_prefix("Question: ").unwrap_or(query);
        let q = q.strip_suffix("\nAnswer:").unwrap_or(q);
        let choices = texts(&v["choices"])?;
        let gold = v["gold"].as_u64()? as usize;
        return (gold < choices.len()).then(|| (q.to_string(), choices, gold));
    }
    let key = v["answerKey"].as_str()?;
    let (question, choices, labels) = match &v["question"] {
        Value::String(q) => (
            q.clone(),
            texts(&v["choices"]["text"])?,
            texts(&v["choices"]["label"])?,
        ),
        q => {
            let list = q["choices"].as_array()?;
            (
                q["stem"].as_str()?.to_string(),
                list.iter()
                    .map(|c| c["text"].as_str().map(str::to_string))
                    .collect::<Option<_>>()?,
                list.iter()
                    .map(|c| c["label"].as_str().map(str::to_string))
                    .collect::<Option<_>>()?,
            )
        }
    };
    let gold = labels.iter().position(|l| l == key)?;
    (choices.len() == labels.len()).then_some((question, choices, gold))
}

pub fn doc(question: &str, choices: Vec<String>, gold: usize) -> Doc {
    Doc::choice(&format!("Question: {question}\nAnswer:"), choices, gold)
}
