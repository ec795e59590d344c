//! lambada_openai (`lambada_openai.yaml`): OpenAI's LAMBADA test set; the context is the text up to its last
//! space, the continuation the last word with its space; `acc` is 1 where greedy decoding gives the whole word.

use std::path::Path;

use serde::Deserialize;

use super::{find, read_jsonl, Doc, Task};
use crate::error::Result;
use crate::request::Request;

const HINT: &str = "put OpenAI's LAMBADA test set there as JSON lines {\"text\": ...} (lambada_test.jsonl from \
                    https://openaipublic.blob.core.windows.net/gpt-2/data/lambada_test.jsonl, or HF dataset \
                    EleutherAI/lambada_openai)";

#[derive(Deserialize)]
struct Line {
    text: String,
}

pub fn load(dir: &Path) -> Result<Vec<Doc>> {
    let path = find(
        Task::LambadaOpenai,
        dir,
        &["lambada/lambada_test.jsonl"],
        HINT,
    )?;
    Ok(read_jsonl::<Line>(&path)?
        .into_iter()
        .map(|l| doc(&l.text))
        .collect())
}

/// `{{text.split(' ')[:-1]|join(' ')}}` and `{{' '+text.split(' ')[-1]}}`.
pub fn doc(text: &str) -> Doc {
    let (context, last) = text.rsplit_once(' ').unwrap_or(("", text));
    Doc::Continuation(Request::new(context, format!(" {last}")))
}
