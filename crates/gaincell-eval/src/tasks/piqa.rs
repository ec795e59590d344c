//! piqa (`piqa.yaml`): PIQA validation set, `Question: {goal}\nAnswer:` followed by each solution.

use std::path::Path;

use serde::Deserialize;

use super::{find, read_jsonl, read_text, Doc, Task};
use crate::error::{EvalError, Result};

const HINT: &str = "put PIQA's dev set there: valid.jsonl and valid-labels.lst side by side (physicaliqa-train-dev.zip \
                    from https://yonatanbisk.com/piqa/data/, or HF dataset ybisk/piqa)";

#[derive(Deserialize)]
struct Line {
    goal: String,
    sol1: String,
    sol2: String,
}

pub fn load(dir: &Path) -> Result<Vec<Doc>> {
    let path = find(Task::Piqa, dir, &["piqa/valid.jsonl"], HINT)?;
    let labels_path = find(Task::Piqa, dir, &["piqa/valid-labels.lst"], HINT)?;
    let lines: Vec<Line> = read_jsonl(&path)?;
    let labels: Vec<usize> = read_text(&labels_path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| match l.trim() {
            "0" => Ok(0),
            "1" => Ok(1),
            other => Err(EvalError::data(
                &labels_path,
                format!("line {}: label `{other}`, expected 0 or 1", i + 1),
            )),
        })
        .collect::<Result<_>>()?;
    if labels.len() != lines.len() {
        return Err(EvalError::data(
            &labels_path,
            format!("{} labels for {} questions", labels.len(), lines.len()),
        ));
    }
    Ok(lines
        .into_iter()
        .zip(labels)
        .map(|(l, gold)| doc(&l.goal, &l.sol1, &l.sol2, gold))
        .collect())
}

pub fn doc(goal: &str, sol1: &str, sol2: &str, gold: usize) -> Doc {
    Doc::choice(
        &format!("Question: {goal}\nAnswer:"),
        vec![sol1.to_string(), sol2.to_string()],
        gold,
    )
}
