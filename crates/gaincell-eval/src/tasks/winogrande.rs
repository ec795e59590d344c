//! winogrande (`default.yaml`, `preprocess_winogrande.py`): WinoGrande XL validation set (`dev.jsonl`) with
//! partial scoring: each option fills the blank and becomes the context, and the same continuation (the
//! sentence after the blank) is scored after each; `acc` only.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{find, read_jsonl, Doc, Task};
use crate::error::{EvalError, Result};
use crate::request::Request;

const HINT: &str = "put WinoGrande's dev set there as JSON lines {\"sentence\", \"option1\", \"option2\", \"answer\"} \
                    (winogrande_1.1/dev.jsonl from \
                    https://storage.googleapis.com/ai2-mosaic/public/winogrande/winogrande_1.1.zip, or HF dataset \
                    allenai/winogrande, winogrande_xl validation, as JSON lines)";

#[derive(Deserialize)]
struct Line {
    sentence: String,
    option1: String,
    option2: String,
    answer: Value,
}

pub fn load(dir: &Path) -> Result<Vec<Doc>> {
    let path = find(Task::Winogrande, dir, &["winogrande/dev.jsonl"], HINT)?;
    read_jsonl::<Line>(&path)?
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let bad = |m: &str| EvalError::data(&path, format!("line {}: {m}", i + 1));
            let gold = match &l.answer {
                Value::String(s) if s == "1" || s == "2" => s.parse::<usize>().expect("digit") - 1,
                Value::Number(n) if n.as_u64() == Some(1) || n.as_u64() == Some(2) => {
                    n.as_u64().expect("checked") as usize - 1
                }
                a => return Err(bad(&format!("answer {a}, expected \"1\" or \"2\""))),
            };
            doc(&l.sentence, &l.option1, &l.option2, gold)
                .ok_or_else(|| bad("no `_` in the sentence"))
        })
        .collect()
}

/// `doc_to_choice` (the sentence up to the blank, then the option) as contexts, `doc_to_target` (the rest,
/// stripped) after the target delimiter as their continuation.
pub fn doc(sentence: &str, option1: &str, option2: &str, gold: usize) -> Option<Doc> {
    let blank = sentence.find('_')?;
    let target = format!(" {}", sentence[blank + 1..].trim());
    let choices: Vec<String> = [option1, option2]
        .iter()
        .map(|o| format!("{}{o}", &sentence[..blank]))
        .collect();
    Some(Doc::Choice {
        requests: choices
            .iter()
            .map(|c| Request::new(c.clone(), target.clone()))
            .collect(),
        choices,
        gold,
    })
}
