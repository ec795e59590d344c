//! Per-sample logs in lm-evaluation-harness's shape (`--log_samples`: `samples_<task>_<date>.jsonl`, one JSON
//! object a line, as `EvaluationTracker.save_results_samples` of lm_eval 0.4.x writes them), and the comparison
//! of two such logs (ours against the harness's, or two runs).
//!
//! A line holds, in this order: `doc_id`; `doc`; `target` (a string: the gold index of a multiple-choice
//! document, the continuation of a LAMBADA one, the page of a wikitext one); `arguments`, the request strings
//! as `{"gen_args_<i>": {"arg_0": context, "arg_1": continuation}}` (a rolling request has only `arg_0`, the
//! text); `resps` and `filtered_resps`, each request's `[log-likelihood, is_greedy]` written as Python's `str`
//! of them (`"-50.543914794921875"`, `"False"`; a rolling request's answer is the log-likelihood alone);
//! `filter` (`"none"`); `metrics`, the names of the per-document metrics; `doc_hash`, `prompt_hash` and
//! `target_hash` (SHA-256 of `json.dumps(doc, indent=2, ensure_ascii=False)`, of the first request's context and
//! of the target); then the per-document metrics themselves (`acc`, `acc_norm` as 0.0 / 1.0; LAMBADA's
//! `perplexity` the log-likelihood and `acc` 0 / 1; wikitext's `[log-likelihood, words or bytes]`).
//!
//! One difference from the harness: `doc` is our reading of the document (`{"query", "choices", "gold"}` for
//! multiple choice, `{"text"}` for LAMBADA, `{"page", "words", "bytes"}` for wikitext), not the data set's row,
//! so `doc_hash` differs from the harness's where the rows differ; the requests, the target and their hashes
//! are the harness's exactly.
//!
//! Reading is lenient: log-likelihoods and flags may be strings or JSON numbers and booleans, `arguments` an
//! object as above or a list of `[context, continuation]` lists (the harness's in-memory form).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::{EvalError, Result};
use crate::metrics;
use crate::scorer::Scored;
use crate::tasks::{Doc, Task};

/// One request's answer: its log-likelihood and, except for a rolling request, whether greedy decoding gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resp {
    pub loglikelihood: f64,
    pub greedy: Option<bool>,
}

/// One line of a samples log.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub doc_id: u64,
    pub doc: Value,
    pub target: String,
    /// Each request's strings: `[context, continuation]`, or `[text]` for a rolling request.
    pub arguments: Vec<Vec<String>>,
    /// `filtered_resps` (`resps` when a file has no filtered answers).
    pub resps: Vec<Resp>,
    /// `resps`' first answer of each request, where the file has them.
    pub raw_resps: Option<Vec<Resp>>,
    /// Per-document metrics, in the file's order.
    pub metrics: Vec<(String, Value)>,
    pub doc_hash: Option<String>,
    pub prompt_hash: Option<String>,
    pub target_hash: Option<String>,
}

/// Hex SHA-256 of a string (`lm_eval.utils.hash_string`).
pub fn hash_string(s: &str) -> String {
    sha256_hex(s.as_bytes())
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Python's `repr` of a float: the shortest digits that read back to `x`, positional for exponents −4 to 15,
/// else `d.ddde±XX`; always a `.0` or an exponent, so it reads as a float.
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{:e}", x.abs()); // shortest round-trip digits: "5.0543914794921875e1"
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if x < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        if exp < 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize))
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                format!("{sign}{digits}{}.0", "0".repeat(int_len - digits.len()))
            } else {
                format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
            }
        }
    } else {
        let rest = &digits[1..];
        let dot = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{}{dot}e{esign}{:02}", &digits[..1], exp.abs())
    }
}

/// `json.dumps(v, ensure_ascii=False)`: `", "` and `": "` separators, floats as Python writes them. With
/// `indent`, `json.dumps(v, indent=indent, ensure_ascii=False)`. Object keys in the map's order.
pub fn py_json(v: &Value, indent: Option<usize>) -> String {
    let mut out = String::new();
    write_py(v, indent, 0, &mut out);
    out
}

fn write_py(v: &Value, indent: Option<usize>, level: usize, out: &mut String) {
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v {
        Value::Number(n) if n.is_f64() => out.push_str(&py_float(n.as_f64().unwrap_or(f64::NAN))),
        Value::Array(xs) if !xs.is_empty() => {
            out.push('[');
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                write_py(x, indent, level + 1, out);
            }
            newline(out, level);
            out.push(']');
        }
        Value::Object(m) if !m.is_empty() => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_py(x, indent, level + 1, out);
            }
            newline(out, level);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The samples of one task's documents, from each document's scored requests (as `evaluate` keeps them in
/// [`TaskResult::per_doc`](crate::TaskResult)).
pub fn samples(task: Task, docs: &[Doc], scored: &[Vec<Scored>]) -> Vec<Sample> {
    let wanted: BTreeSet<&str> = task.metrics().iter().map(|m| m.name).collect();
    docs.iter()
        .zip(scored)
        .enumerate()
        .map(|(i, (d, s))| {
            let resp = |x: &Scored| Resp {
                loglikelihood: x.loglikelihood,
                greedy: Some(x.greedy),
            };
            let (doc, target, arguments, resps, metrics) = match d {
                Doc::Choice {
                    requests,
                    choices,
                    gold,
                } => {
                    let ll: Vec<f64> = s.iter().map(|x| x.loglikelihood).collect();
                    let chars: Vec<usize> = choices.iter().map(|c| c.chars().count()).collect();
                    let (acc, acc_norm) = metrics::multiple_choice(&ll, &chars, *gold);
                    let shared = requests.iter().all(|r| r.context == requests[0].context);
                    // One context and a continuation per choice: the target is the gold index. Several
                    // contexts and one continuation (WinoGrande's partial evaluation): the continuation.
                    let (doc, target) = if shared {
                        (
                            json!({"query": requests[0].context, "choices": choices, "gold": gold}),
                            gold.to_string(),
                        )
                    } else {
                        let cont = &requests[0].continuation;
                        let cont = cont.strip_prefix(' ').unwrap_or(cont);
                        (
                            json!({"choices": choices, "continuation": cont, "gold": gold}),
                            cont.to_string(),
                        )
                    };
                    let mut m = Vec::new();
                    for (name, v) in [("acc", acc), ("acc_norm", acc_norm)] {
                        if wanted.contains(name) {
                            m.push((name.to_string(), json!(v)));
                        }
                    }
                    let args = requests
                        .iter()
                        .map(|r| vec![r.context.clone(), r.continuation.clone()])
                        .collect();
                    (doc, target, args, s.iter().map(resp).collect(), m)
                }
                Doc::Continuation(r) => {
                    let text = if r.context.is_empty() {
                        r.continuation.trim_start().to_string()
                    } else {
                        format!("{}{}", r.context, r.continuation)
                    };
                    let mut m = Vec::new();
                    if wanted.contains("perplexity") {
                        m.push(("perplexity".into(), json!(s[0].loglikelihood)));
                    }
                    if wanted.contains("acc") {
                        m.push(("acc".into(), json!(u8::from(s[0].greedy))));
                    }
                    (
                        json!({ "text": text }),
                        r.continuation.clone(),
                        vec![vec![r.context.clone(), r.continuation.clone()]],
                        vec![resp(&s[0])],
                        m,
                    )
                }
                Doc::Rolling { text, words, bytes } => {
                    let ll = s[0].loglikelihood;
                    let m = [
                        ("word_perplexity", *words),
                        ("byte_perplexity", *bytes),
                        ("bits_per_byte", *bytes),
                    ]
                    .into_iter()
                    .filter(|(n, _)| wanted.contains(n))
                    .map(|(n, w)| (n.to_string(), json!([ll, w])))
                    .collect();
                    (
                        json!({"page": text, "words": words, "bytes": bytes}),
                        text.clone(),
                        vec![vec![text.clone()]],
                        vec![Resp {
                            loglikelihood: ll,
                            greedy: None,
                        }],
                        m,
                    )
                }
            };
            Sample {
                doc_id: i as u64,
                doc_hash: Some(hash_string(&py_json(&doc, Some(2)))),
                prompt_hash: Some(hash_string(&arguments[0][0])),
                target_hash: Some(hash_string(&target)),
                doc,
                target,
                arguments,
                raw_resps: Some(resps.clone()),
                resps,
                metrics,
            }
        })
        .collect()
}

fn resp_value(r: &Resp) -> Value {
    match r.greedy {
        Some(g) => json!([py_float(r.loglikelihood), if g { "True" } else { "False" }]),
        None => json!(py_float(r.loglikelihood)),
    }
}

impl Sample {
    /// The line lm_eval writes for this sample (without the newline).
    pub fn to_line(&self) -> String {
        let mut args = serde_json::Map::new();
        for (i, a) in self.arguments.iter().enumerate() {
            let inner: serde_json::Map<String, Value> = a
                .iter()
                .enumerate()
                .map(|(j, s)| (format!("arg_{j}"), json!(s)))
                .collect();
            args.insert(format!("gen_args_{i}"), Value::Object(inner));
        }
        let raw = self.raw_resps.as_ref().unwrap_or(&self.resps);
        let mut fields: Vec<(&str, Value)> = vec![
            ("doc_id", json!(self.doc_id)),
            ("doc", self.doc.clone()),
            ("target", json!(self.target)),
            ("arguments", Value::Object(args)),
            (
                "resps",
                Value::Array(raw.iter().map(|r| json!([resp_value(r)])).collect()),
            ),
            (
                "filtered_resps",
                Value::Array(self.resps.iter().map(resp_value).collect()),
            ),
            ("filter", json!("none")),
            (
                "metrics",
                Value::Array(self.metrics.iter().map(|(n, _)| json!(n)).collect()),
            ),
        ];
        for (name, h) in [
            ("doc_hash", &self.doc_hash),
            ("prompt_hash", &self.prompt_hash),
            ("target_hash", &self.target_hash),
        ] {
            if let Some(h) = h {
                fields.push((name, json!(h)));
            }
        }
        let mut out = String::from("{");
        for (i, (k, v)) in fields
            .iter()
            .map(|(k, v)| (*k, v))
            .chain(self.metrics.iter().map(|(k, v)| (k.as_str(), v)))
            .enumerate()
        {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}: {}", json!(k), py_json(v, None));
        }
        out.push('}');
        out
    }

    /// One line of a samples log (ours or lm_eval's); the error says which field is wrong.
    pub fn parse(v: &Value) -> std::result::Result<Sample, String> {
        let obj = v.as_object().ok_or("not a JSON object")?;
        let doc_id = obj
            .get("doc_id")
            .and_then(Value::as_u64)
            .ok_or("no `doc_id` (a non-negative integer): not a samples log")?;
        let arguments = parse_arguments(obj.get("arguments").ok_or("no `arguments`")?)?;
        let raw_resps = obj
            .get("resps")
            .map(|r| {
                r.as_array()
                    .ok_or("`resps` is not a list")?
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        let first = x
                            .as_array()
                            .and_then(|a| a.first())
                            .ok_or(format!("`resps[{i}]` is not a non-empty list"))?;
                        parse_resp(first).map_err(|e| format!("`resps[{i}]`: {e}"))
                    })
                    .collect::<std::result::Result<Vec<_>, String>>()
            })
            .transpose()?;
        let resps = match obj.get("filtered_resps") {
            Some(f) => f
                .as_array()
                .ok_or("`filtered_resps` is not a list")?
                .iter()
                .enumerate()
                .map(|(i, x)| parse_resp(x).map_err(|e| format!("`filtered_resps[{i}]`: {e}")))
                .collect::<std::result::Result<Vec<_>, String>>()?,
            None => raw_resps
                .clone()
                .ok_or("neither `filtered_resps` nor `resps`")?,
        };
        if resps.len() != arguments.len() {
            return Err(format!(
                "{} requests in `arguments` but {} answers in `filtered_resps`",
                arguments.len(),
                resps.len()
            ));
        }
        let names: Vec<String> = match obj.get("metrics").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .map(|n| n.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or("`metrics` is not a list of names")?,
            None => KNOWN_METRICS
                .iter()
                .filter(|n| obj.contains_key(**n))
                .map(|n| n.to_string())
                .collect(),
        };
        let metrics = names
            .into_iter()
            .map(|n| match obj.get(&n) {
                Some(v) => Ok((n, v.clone())),
                None => Err(format!("metric `{n}` is listed but has no value")),
            })
            .collect::<std::result::Result<_, String>>()?;
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(Sample {
            doc_id,
            doc: obj.get("doc").cloned().unwrap_or(Value::Null),
            target: match obj.get("target") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            },
            arguments,
            resps,
            raw_resps,
            metrics,
            doc_hash: text("doc_hash"),
            prompt_hash: text("prompt_hash"),
            target_hash: text("target_hash"),
        })
    }
}

const KNOWN_METRICS: [&str; 8] = [
    "acc",
    "acc_norm",
    "acc_bytes",
    "exact_match",
    "perplexity",
    "word_perplexity",
    "byte_perplexity",
    "bits_per_byte",
];

fn parse_arguments(v: &Value) -> std::result::Result<Vec<Vec<String>>, String> {
    let strings = |a: &Value, what: &str| -> std::result::Result<Vec<String>, String> {
        match a {
            Value::Array(xs) => xs
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or(format!("{what} holds a non-string")),
            Value::Object(m) => indexed(m, "arg_", what)?
                .into_iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or(format!("{what} holds a non-string")),
            _ => Err(format!("{what} is neither a list nor an object")),
        }
    };
    match v {
        Value::Array(xs) => xs
            .iter()
            .enumerate()
            .map(|(i, a)| strings(a, &format!("`arguments[{i}]`")))
            .collect(),
        Value::Object(m) => indexed(m, "gen_args_", "`arguments`")?
            .into_iter()
            .enumerate()
            .map(|(i, a)| strings(a, &format!("`arguments.gen_args_{i}`")))
            .collect(),
        _ => Err("`arguments` is neither a list nor an object".into()),
    }
}

/// `{"<prefix>0": a, "<prefix>1": b, …}` in index order; every key must be `<prefix><index>`, 0 to n − 1.
fn indexed<'a>(
    m: &'a serde_json::Map<String, Value>,
    prefix: &str,
    what: &str,
) -> std::result::Result<Vec<&'a Value>, String> {
    let mut by_index = BTreeMap::new();
    for (k, v) in m {
        let i: usize = k
            .strip_prefix(prefix)
            .and_then(|n| n.parse().ok())
            .ok_or(format!("{what}: key `{k}` is not `{prefix}<n>`"))?;
        by_index.insert(i, v);
    }
    if by_index.keys().copied().ne(0..by_index.len()) {
        return Err(format!("{what}: the `{prefix}<n>` keys are not 0 to n − 1"));
    }
    Ok(by_index.into_values().collect())
}

fn parse_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim() {
            "True" | "true" | "1" => Some(true),
            "False" | "false" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => n
            .as_f64()
            .filter(|x| *x == 0.0 || *x == 1.0)
            .map(|x| x == 1.0),
        _ => None,
    }
}

/// `[ll, is_greedy]` or a bare `ll` (a rolling request).
fn parse_resp(v: &Value) -> std::result::Result<Resp, String> {
    match v {
        Value::Array(xs) if xs.len() == 2 => Ok(Resp {
            loglikelihood: parse_f64(&xs[0]).ok_or("the log-likelihood is not a number")?,
            greedy: Some(parse_bool(&xs[1]).ok_or("is_greedy is not a boolean")?),
        }),
        Value::Array(xs) if xs.len() == 1 => parse_resp(&xs[0]),
        x => Ok(Resp {
            loglikelihood: parse_f64(x)
                .ok_or("neither [log-likelihood, is_greedy] nor a log-likelihood")?,
            greedy: None,
        }),
    }
}

/// A samples log from its text; errors name the file and line.
pub fn parse_jsonl(text: &str, path: &Path) -> Result<Vec<Sample>> {
    let mut out: Vec<Sample> = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |m: String| EvalError::data(path, format!("line {}: {m}", i + 1));
        let v: Value = serde_json::from_str(line).map_err(|e| err(format!("not JSON: {e}")))?;
        let s = Sample::parse(&v).map_err(err)?;
        if !seen.insert(s.doc_id) {
            return Err(err(format!("doc_id {} appears twice", s.doc_id)));
        }
        out.push(s);
    }
    if out.is_empty() {
        return Err(EvalError::data(path, "no samples: the file is empty"));
    }
    Ok(out)
}

/// Read a samples log.
pub fn read(path: &Path) -> Result<Vec<Sample>> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::data(path, e.to_string()))?;
    parse_jsonl(&text, path)
}

/// The JSON-lines text of a log.
pub fn to_jsonl(samples: &[Sample]) -> String {
    samples.iter().map(|s| s.to_line() + "\n").collect()
}

/// The largest difference of one field over the matched documents, and where.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxDiff {
    pub delta: f64,
    pub doc_id: u64,
    /// The request (choice) it is in; `None` for a per-document metric.
    pub request: Option<usize>,
}

/// A per-document verdict (0 / 1 metric) that differs.
#[derive(Debug, Clone, PartialEq)]
pub struct VerdictDiff {
    pub doc_id: u64,
    pub a: f64,
    pub b: f64,
}

/// Two samples logs, matched by `doc_id`.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub docs_a: usize,
    pub docs_b: usize,
    pub matched: usize,
    pub only_a: Vec<u64>,
    pub only_b: Vec<u64>,
    /// Matched documents whose number of requests differs (their answers are not compared).
    pub request_count: Vec<u64>,
    /// Requests compared.
    pub requests: usize,
    /// Max |Δ log-likelihood| per field (`filtered_resps`, `resps`) and max |Δ| per continuous metric
    /// (`perplexity`, the log-likelihood of `word_perplexity`, …).
    pub max_diff: BTreeMap<String, MaxDiff>,
    /// `(doc_id, request)` whose is_greedy differs.
    pub greedy: Vec<(u64, usize)>,
    /// Documents whose request strings differ, with the first differing request.
    pub arguments: Vec<(u64, usize)>,
    /// Documents whose target differs.
    pub target: Vec<u64>,
    /// Documents whose hash differs, per hash present in both files.
    pub hashes: BTreeMap<String, Vec<u64>>,
    /// Per verdict metric (`acc`, `acc_norm`, …): the documents where it differs.
    pub verdicts: BTreeMap<String, Vec<VerdictDiff>>,
    /// Documents each verdict metric was compared on.
    pub verdict_docs: BTreeMap<String, usize>,
    /// Metrics present in one file only (`(name, in_a)`).
    pub one_sided: BTreeSet<(String, bool)>,
}

impl Comparison {
    /// Whether a verdict differs or the documents do not match (the reason for a non-zero exit).
    pub fn differs(&self) -> bool {
        self.verdicts.values().any(|v| !v.is_empty())
            || !self.only_a.is_empty()
            || !self.only_b.is_empty()
            || !self.request_count.is_empty()
    }
}

fn bump(
    map: &mut BTreeMap<String, MaxDiff>,
    field: &str,
    delta: f64,
    doc_id: u64,
    r: Option<usize>,
) {
    let d = MaxDiff {
        delta,
        doc_id,
        request: r,
    };
    let e = map.entry(field.to_string()).or_insert(d);
    // NaN on one side and a number on the other counts as the largest difference.
    if delta > e.delta || (delta.is_nan() && !e.delta.is_nan()) {
        *e = d;
    }
}

fn abs_diff(a: f64, b: f64) -> f64 {
    if a == b {
        0.0 // inf == inf
    } else {
        (a - b).abs()
    }
}

/// Compare two logs document by document.
pub fn compare(a: &[Sample], b: &[Sample]) -> Comparison {
    let index = |s: &[Sample]| -> BTreeMap<u64, usize> {
        s.iter().enumerate().map(|(i, x)| (x.doc_id, i)).collect()
    };
    let (ia, ib) = (index(a), index(b));
    let mut c = Comparison {
        docs_a: a.len(),
        docs_b: b.len(),
        only_a: ia.keys().filter(|k| !ib.contains_key(k)).copied().collect(),
        only_b: ib.keys().filter(|k| !ia.contains_key(k)).copied().collect(),
        ..Default::default()
    };
    for (&id, &i) in &ia {
        let Some(&j) = ib.get(&id) else { continue };
        let (x, y) = (&a[i], &b[j]);
        c.matched += 1;
        if x.resps.len() != y.resps.len() {
            c.request_count.push(id);
        } else {
            for (r, (p, q)) in x.resps.iter().zip(&y.resps).enumerate() {
                c.requests += 1;
                bump(
                    &mut c.max_diff,
                    "filtered_resps",
                    abs_diff(p.loglikelihood, q.loglikelihood),
                    id,
                    Some(r),
                );
                if let (Some(g), Some(h)) = (p.greedy, q.greedy) {
                    if g != h {
                        c.greedy.push((id, r));
                    }
                }
            }
            if let (Some(p), Some(q)) = (&x.raw_resps, &y.raw_resps) {
                for (r, (p, q)) in p.iter().zip(q).enumerate() {
                    bump(
                        &mut c.max_diff,
                        "resps",
                        abs_diff(p.loglikelihood, q.loglikelihood),
                        id,
                        Some(r),
                    );
                }
            }
        }
        if let Some(r) = (0..x.arguments.len().max(y.arguments.len()))
            .find(|&r| x.arguments.get(r) != y.arguments.get(r))
        {
            c.arguments.push((id, r));
        }
        if x.target != y.target {
            c.target.push(id);
        }
        for (name, p, q) in [
            ("prompt_hash", &x.prompt_hash, &y.prompt_hash),
            ("target_hash", &x.target_hash, &y.target_hash),
            ("doc_hash", &x.doc_hash, &y.doc_hash),
        ] {
            if let (Some(p), Some(q)) = (p, q) {
                let e = c.hashes.entry(name.to_string()).or_default();
                if p != q {
                    e.push(id);
                }
            }
        }
        let ym: BTreeMap<&str, &Value> = y.metrics.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let xm: BTreeMap<&str, &Value> = x.metrics.iter().map(|(k, v)| (k.as_str(), v)).collect();
        for (name, v) in &x.metrics {
            let Some(w) = ym.get(name.as_str()) else {
                c.one_sided.insert((name.clone(), true));
                continue;
            };
            compare_metric(&mut c, name, id, v, w);
        }
        for (name, _) in &y.metrics {
            if !xm.contains_key(name.as_str()) {
                c.one_sided.insert((name.clone(), false));
            }
        }
    }
    c
}

fn compare_metric(c: &mut Comparison, name: &str, id: u64, v: &Value, w: &Value) {
    let verdict = |x: f64| x == 0.0 || x == 1.0;
    match (parse_f64(v), parse_f64(w)) {
        (Some(p), Some(q)) if verdict(p) && verdict(q) => {
            *c.verdict_docs.entry(name.to_string()).or_default() += 1;
            let e = c.verdicts.entry(name.to_string()).or_default();
            if p != q {
                e.push(VerdictDiff {
                    doc_id: id,
                    a: p,
                    b: q,
                });
            }
        }
        (Some(p), Some(q)) => bump(&mut c.max_diff, name, abs_diff(p, q), id, None),
        _ => {
            // `[log-likelihood, weight]` (wikitext): the weights must agree, the log-likelihoods are compared.
            let pair = |x: &Value| -> Option<(f64, f64)> {
                let a = x.as_array().filter(|a| a.len() == 2)?;
                Some((parse_f64(&a[0])?, parse_f64(&a[1])?))
            };
            match (pair(v), pair(w)) {
                (Some((p, m)), Some((q, n))) => {
                    bump(&mut c.max_diff, name, abs_diff(p, q), id, None);
                    let weight = format!("{name} weight");
                    bump(&mut c.max_diff, &weight, abs_diff(m, n), id, None);
                }
                _ => bump(&mut c.max_diff, name, f64::NAN, id, None),
            }
        }
    }
}

fn list<T: std::fmt::Display>(xs: impl IntoIterator<Item = T>) -> String {
    const SHOWN: usize = 20;
    let all: Vec<String> = xs.into_iter().map(|x| x.to_string()).collect();
    let mut s = all
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if all.len() > SHOWN {
        let _ = write!(s, ", … ({} more)", all.len() - SHOWN);
    }
    s
}

impl Comparison {
    /// The comparison as text: documents matched, the largest differences, the verdicts that differ.
    pub fn render(&self, name_a: &str, name_b: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "A = {name_a} ({} documents), B = {name_b} ({} documents): {} matched by doc_id, {} requests compared",
            self.docs_a, self.docs_b, self.matched, self.requests
        );
        if !self.only_a.is_empty() {
            let _ = writeln!(s, "only in A: doc_id {}", list(&self.only_a));
        }
        if !self.only_b.is_empty() {
            let _ = writeln!(s, "only in B: doc_id {}", list(&self.only_b));
        }
        if !self.request_count.is_empty() {
            let _ = writeln!(
                s,
                "different numbers of requests (not compared): doc_id {}",
                list(&self.request_count)
            );
        }
        if !self.max_diff.is_empty() {
            let _ = writeln!(s, "\n| field | max abs difference | at |\n|---|---:|---|");
            for (field, d) in &self.max_diff {
                let at = match d.request {
                    Some(r) => format!("doc_id {} request {r}", d.doc_id),
                    None => format!("doc_id {}", d.doc_id),
                };
                let _ = writeln!(s, "| {field} | {:.3e} | {at} |", d.delta);
            }
            s.push('\n');
        }
        let count = |what: &str, n: usize, of: usize, detail: String| {
            if n == 0 {
                format!("{what}: equal for all {of}\n")
            } else {
                format!("{what}: differ for {n} of {of}: {detail}\n")
            }
        };
        s += &count(
            "is_greedy",
            self.greedy.len(),
            self.requests,
            list(
                self.greedy
                    .iter()
                    .map(|(d, r)| format!("doc_id {d} request {r}")),
            ),
        );
        s += &count(
            "arguments",
            self.arguments.len(),
            self.matched,
            list(
                self.arguments
                    .iter()
                    .map(|(d, r)| format!("doc_id {d} request {r}")),
            ),
        );
        s += &count(
            "target",
            self.target.len(),
            self.matched,
            format!("doc_id {}", list(&self.target)),
        );
        for (name, ids) in &self.hashes {
            s += &count(
                name,
                ids.len(),
                self.matched,
                format!("doc_id {}", list(ids)),
            );
            if name == "doc_hash" && !ids.is_empty() {
                s += "  (doc_hash covers `doc`, gaincell's reading of the data row: it differs from the harness's \
                      where the rows are spelled differently; prompt_hash and target_hash cover the requests)\n";
            }
        }
        for (name, in_a) in &self.one_sided {
            let _ = writeln!(s, "{name}: only in {}", if *in_a { "A" } else { "B" });
        }
        for (name, diffs) in &self.verdicts {
            let of = self.verdict_docs.get(name).copied().unwrap_or(0);
            s += &count(
                &format!("verdict {name}"),
                diffs.len(),
                of,
                list(
                    diffs
                        .iter()
                        .map(|d| format!("doc_id {} (A {}, B {})", d.doc_id, d.a, d.b)),
                ),
            );
        }
        s
    }
}
