//! hellaswag (`hellaswag.yaml`, `utils.py`): HellaSwag validation set. The query is
//! `preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())`, the choices the preprocessed endings.
//!
//! Two readers: the original `hellaswag_val.jsonl` (ctx_a and ctx_b apart: exactly the harness), and the
//! six-line text file of the shared data (context, gold, four endings) whose context is the preprocessed
//! `activity_label: ctx_a ctx_b` with ctx_b *not* capitalised. There ctx_b is taken to be the fragment after the
//! context's last sentence end when it starts with a lower-case letter (ActivityNet items: every such fragment
//! in the file is one; WikiHow items have an empty ctx_b), and Python's `capitalize` is applied to it.

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use super::{find, read_jsonl, read_text, Doc, Task};
use crate::error::{EvalError, Result};

const HINT: &str = "put HellaSwag's validation set there: hellaswag_val.jsonl from \
                    https://github.com/rowanz/hellaswag/tree/master/data (or HF dataset Rowan/hellaswag), or the \
                    six-line hellaswag_val_full.txt";
const JSONL: &str = "hellaswag/hellaswag_val.jsonl";
const TXT: &str = "hellaswag/hellaswag_val_full.txt";

/// A line of the original data.
#[derive(Deserialize)]
pub struct Original {
    pub activity_label: String,
    pub ctx_a: String,
    pub ctx_b: String,
    pub endings: Vec<String>,
    pub label: serde_json::Value,
}

pub fn load(dir: &Path) -> Result<Vec<Doc>> {
    let path = find(Task::Hellaswag, dir, &[JSONL, TXT], HINT)?;
    if path.ends_with(JSONL) {
        read_jsonl::<Original>(&path)?
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let gold = label(&o.label, o.endings.len()).ok_or_else(|| {
                    EvalError::data(&path, format!("line {}: label {}", i + 1, o.label))
                })?;
                Ok(doc_original(o, gold))
            })
            .collect()
    } else {
        read_six_lines(&path)
    }
}

fn label(v: &serde_json::Value, n: usize) -> Option<usize> {
    let i = match v {
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        v => v.as_u64()? as usize,
    };
    (i < n).then_some(i)
}

fn read_six_lines(path: &Path) -> Result<Vec<Doc>> {
    let text = read_text(path)?;
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.len() - lines.iter().rev().take_while(|l| l.is_empty()).count();
    if !n.is_multiple_of(6) {
        return Err(EvalError::data(
            path,
            format!("{n} lines: expected 6 per item (context, gold, four endings)"),
        ));
    }
    lines[..n]
        .chunks_exact(6)
        .enumerate()
        .map(|(i, item)| {
            let gold = item[1]
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&g| g < 4)
                .ok_or_else(|| {
                    EvalError::data(
                        path,
                        format!("line {}: gold `{}`, expected 0 to 3", 6 * i + 2, item[1]),
                    )
                })?;
            Ok(doc_merged(
                item[0],
                item[2..].iter().map(|s| s.to_string()).collect(),
                gold,
            ))
        })
        .collect()
}

/// The harness's document from the original fields.
pub fn doc_original(o: &Original, gold: usize) -> Doc {
    let ctx = format!("{} {}", o.ctx_a, capitalize(&o.ctx_b));
    Doc::choice(
        &preprocess(&format!("{}: {ctx}", o.activity_label)),
        o.endings.iter().map(|e| preprocess(e)).collect(),
        gold,
    )
}

/// The harness's document from a context that joins ctx_a and an uncapitalised ctx_b (see the module doc).
pub fn doc_merged(context: &str, endings: Vec<String>, gold: usize) -> Doc {
    static LAST: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"[.!?] ([a-z][^.!?]*)$").expect("valid"));
    let context = match LAST.captures(context).and_then(|c| c.get(1)) {
        Some(m) => format!("{}{}", &context[..m.start()], capitalize(m.as_str())),
        None => context.to_string(),
    };
    Doc::choice(
        &preprocess(&context),
        endings.iter().map(|e| preprocess(e)).collect(),
        gold,
    )
}

/// `utils.preprocess`: strip, ` [title]` → `. `, drop `[…]` tags, collapse the double spaces left.
pub fn preprocess(text: &str) -> String {
    static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[.*?\]").expect("valid"));
    let t = text.trim().replace(" [title]", ". ");
    TAG.replace_all(&t, "").replace("  ", " ")
}

/// Python's `str.capitalize`: the first character upper case, the rest lower case.
pub fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c
            .to_uppercase()
            .chain(chars.as_str().to_lowercase().chars())
            .collect(),
        None => String::new(),
    }
}
