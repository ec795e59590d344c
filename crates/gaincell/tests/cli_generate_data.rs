//! `gaincell data generate` from the outside: shards sampled from a model are byte-identical for a seed whatever the
//! thread count, differ for another seed, have the shape `data prepare` gives (documents separated by the
//! end-of-text token, at most ctx tokens each, exactly the token budget), and `gaincell train` trains on them. On
//! the real stories260K (skipped when absent) and on the tiny GPT-2 fixture (always); bad inputs fail in one line.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{fails_with, stdout};
use gaincell_model::Tokenizer;
use gaincell_train::data::{Shards, Split};
use gaincell_train::generate::Generation;

const STORIES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/models/stories260K/stories260K.bin"
);

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../gaincell-model/tests/fixtures/tiny-gpt2")
}

/// `gaincell data generate ARGS --out OUT`, with `RAYON_NUM_THREADS` set when `threads` is given.
fn generate(args: &[&str], out: &Path, threads: Option<usize>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gaincell"));
    cmd.args(["data", "generate"])
        .args(args)
        .arg("--out")
        .arg(out);
    if let Some(t) = threads {
        cmd.env("RAYON_NUM_THREADS", t.to_string());
    }
    cmd.output().expect("the binary runs")
}

/// The three files `gaincell train` reads.
fn shard_bytes(dir: &Path) -> Vec<Vec<u8>> {
    ["train.bin", "val.bin", "meta.json"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect()
}

fn tokens(shards: &Shards, split: Split) -> Vec<u32> {
    (0..shards.len(split))
        .map(|i| shards.token(split, i))
        .collect()
}

/// The documents of a token stream, split after each end-of-text token (the last may lack it: cut at the budget).
fn documents(stream: &[u32], eot: u32) -> Vec<&[u32]> {
    stream.split_inclusive(|&t| t == eot).collect()
}

/// Generate with `args` at 4 threads, again at the default count, at 1 thread, and with another seed; check the
/// first three are byte-identical and the last differs; check the folder's shape against `generation.json`.
/// Returns the first folder, its shards and record.
fn check_reproducible(
    tmp: &Path,
    args: &[&str],
    seed: u64,
    budget: usize,
) -> (PathBuf, Shards, Generation) {
    let seed_s = seed.to_string();
    let other_s = (seed + 1).to_string();
    let with_seed = |s: &str| {
        let mut v: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        v.extend([
            "--seed".into(),
            s.into(),
            "--tokens".into(),
            budget.to_string(),
        ]);
        v
    };
    let run = |name: &str, s: &str, threads: Option<usize>| -> PathBuf {
        let out = tmp.join(name);
        let a = with_seed(s);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let started = std::time::Instant::now();
        let o = generate(&a, &out, threads);
        let text = stdout(&o);
        eprintln!(
            "{name} ({threads:?} threads): {:.2} s\n{}",
            started.elapsed().as_secs_f64(),
            text.trim_end()
        );
        out
    };
    let a = run("a", &seed_s, Some(4));
    let b = run("b", &seed_s, None);
    let c = run("c", &seed_s, Some(1));
    let d = run("d", &other_s, None);
    assert!(
        shard_bytes(&a) == shard_bytes(&b),
        "same seed, different shards"
    );
    assert!(
        shard_bytes(&a) == shard_bytes(&c),
        "one thread gave different shards"
    );
    assert!(
        shard_bytes(&a)[0] != shard_bytes(&d)[0],
        "another seed gave the same train.bin"
    );

    // What `gaincell train` opens (it checks each shard's length against meta.json).
    let shards = Shards::open(&a).unwrap();
    let meta = &shards.meta;
    assert_eq!(meta.format, "gaincell-tokens/1");
    assert_eq!(meta.train_tokens + meta.val_tokens, budget);
    let width = if meta.dtype == "u32" { 4 } else { 2 };
    assert_eq!(
        std::fs::metadata(a.join("train.bin")).unwrap().len() as usize,
        meta.train_tokens * width
    );
    assert_eq!(
        std::fs::metadata(a.join("val.bin")).unwrap().len() as usize,
        meta.val_tokens * width
    );
    assert!(meta.train_tokens > 0 && meta.val_tokens > 0);

    let record: Generation =
        serde_json::from_str(&std::fs::read_to_string(a.join("generation.json")).unwrap()).unwrap();
    assert_eq!(record.format, "gaincell-generation/1");
    assert_eq!(record.seed, seed);
    assert_eq!(record.tokens, budget);
    assert_eq!(
        (record.train_tokens, record.val_tokens),
        (meta.train_tokens, meta.val_tokens)
    );
    assert_eq!(
        record.documents,
        record.train_documents + record.val_documents
    );
    assert!(record.val_documents >= 1 && record.train_documents >= 1);
    assert_eq!(
        record.ended_by_model + record.stopped_at_ctx + usize::from(record.last_document_cut),
        record.documents
    );
    assert!(record.tool.starts_with("gaincell "));
    assert!(record.wall_s > 0.0 && record.sampled_tokens >= budget - record.documents);
    assert_eq!(meta.eot, record.eot);

    // Documents as `prepare` writes them: separated by the end-of-text token, at most ctx tokens each.
    let eot = meta
        .eot
        .expect("these tokenizers have an end-of-text token");
    let (train, val) = (tokens(&shards, Split::Train), tokens(&shards, Split::Val));
    let (dt, dv) = (documents(&train, eot), documents(&val, eot));
    assert_eq!(
        (dt.len(), dv.len()),
        (record.train_documents, record.val_documents)
    );
    assert!(
        dt.iter().all(|d| d.last() == Some(&eot)),
        "every train document ends with the end-of-text token"
    );
    assert!(dt.iter().chain(&dv).all(|d| d.len() <= record.ctx));
    assert_eq!(
        val.last() != Some(&eot),
        record.last_document_cut,
        "only a document cut at the budget lacks its end-of-text token"
    );
    (a, shards, record)
}

/// A few steps of `gaincell train` (a fresh tiny GPT) on a generated folder.
fn train_on(tmp: &Path, data: &Path) {
    let out = tmp.join("run");
    let cfg = format!(
        r#"chip = "software"
[model]
n_layer = 1
n_head = 2
n_embd = 32
n_positions = 16
[data]
dir = "{}"
[train]
out = "{}"
steps = 3
batch = 2
ctx = 16
seed = 1
eval_every = 3
eval_batches = 1
checkpoint_every = 3
[optim]
lr = 1e-3
min_lr = 1e-4
warmup_steps = 1
decay_steps = 3
beta1 = 0.9
beta2 = 0.95
eps = 1e-8
weight_decay = 0.1
grad_clip = 1.0
"#,
        data.display(),
        out.display()
    );
    let path = tmp.join("train.toml");
    std::fs::write(&path, cfg).unwrap();
    stdout(&common::gaincell(&[
        "train",
        "--config",
        path.to_str().unwrap(),
    ]));
    assert!(out.join("checkpoint/model.safetensors").is_file());
}

#[test]
fn stories260k_generates_reproducible_english_stories() {
    if !Path::new(STORIES).is_file() {
        eprintln!(
            "SKIPPED: {STORIES} not found (the shared models folder sits beside the repository)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (dir, shards, record) = check_reproducible(
        tmp.path(),
        &["--model", STORIES, "--val-fraction", "0.2"],
        3,
        6000,
    );
    assert_eq!(record.family, "llama");
    assert_eq!(
        (record.start_token, record.eot),
        (1, Some(1)),
        "llama2.c: BOS"
    );
    assert_eq!(record.ctx, 512);
    assert_eq!(shards.meta.dtype, "u16", "a 512-entry vocabulary fits u16");
    assert_eq!(shards.meta.tokenizer, "tokenizer.bin");
    assert!(
        std::fs::read(dir.join("tokenizer.bin")).unwrap()
            == std::fs::read(Path::new(STORIES).with_file_name("tok512.bin")).unwrap(),
        "the model's tokenizer travels with the data"
    );
    assert!(
        record.ended_by_model > 0,
        "the model ends some stories itself"
    );

    let tok = Tokenizer::load(dir.join("tokenizer.bin").to_str().unwrap()).unwrap();
    let text = tok.decode(&tokens(&shards, Split::Train)).unwrap();
    eprintln!("{}", &text[..text.len().min(600)]);
    assert!(
        text.contains(" the ") && text.contains('.'),
        "not English-looking: {text}"
    );
    let letters = text
        .chars()
        .filter(|c| c.is_ascii_alphabetic() || *c == ' ')
        .count();
    assert!(
        letters as f64 > 0.8 * text.chars().count() as f64,
        "mostly letters and spaces: {text}"
    );
    train_on(tmp.path(), &dir);
}

/// A 300-entry byte-level BPE in GPT-2's scheme (`<|endoftext|>` = id 0, no start-of-document token) that fits the
/// fixture's 512-entry vocabulary.
fn small_tokenizer(dir: &Path) -> String {
    let text = "The cat sat on the mat. The dog ran to the park and back again. Pour water into the glass.";
    let tok = gaincell_model::train_bpe(std::iter::repeat_n(text, 20), 300).unwrap();
    let path = dir.join("tokenizer.json");
    tok.save(&path).unwrap();
    path.display().to_string()
}

#[test]
fn tiny_gpt2_generates_reproducible_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = small_tokenizer(tmp.path());
    let model = fixture().display().to_string();
    let (dir, shards, record) = check_reproducible(
        tmp.path(),
        &[
            "--model",
            &model,
            "--tokenizer",
            &tok,
            "--ctx",
            "40",
            "--top-k",
            "50",
        ],
        0,
        2000,
    );
    assert_eq!(record.family, "gpt2");
    assert_eq!(
        (record.start_token, record.eot),
        (0, Some(0)),
        "no BOS: documents start from <|endoftext|>"
    );
    assert_eq!(
        (record.ctx, record.top_k, record.temperature),
        (40, Some(50), 1.0)
    );
    assert_eq!(shards.meta.vocab_size, 300);
    assert_eq!(shards.meta.tokenizer, "tokenizer.json");
    let saved = Tokenizer::load(dir.join("tokenizer.json").to_str().unwrap()).unwrap();
    assert_eq!(saved.vocab_size(), 300);
    // Only ids the tokenizer knows are sampled (the model's vocabulary is 512).
    let all: Vec<u32> = tokens(&shards, Split::Train)
        .into_iter()
        .chain(tokens(&shards, Split::Val))
        .collect();
    assert!(all.iter().all(|&t| t < 300));
    // Random weights: many documents run to ctx (39 sampled tokens and the separator), the rest end when the
    // model happens to sample <|endoftext|>.
    assert!(record.stopped_at_ctx > 0);
    assert!(record.documents >= 2000 / 40);
    train_on(tmp.path(), &dir);
}

#[test]
fn bad_inputs_fail_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = small_tokenizer(tmp.path());
    // A copy of the fixture, so that a failing check cannot write into the repository.
    let model = tmp.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture().join(f), model.join(f)).unwrap();
    }
    let model = model.display().to_string();
    let out = tmp.path().join("out").display().to_string();
    let inside = format!("{model}/data");
    let cases: [(&[&str], &str); 11] = [
        (&["--tokens", "0"], "tokens 0"),
        (&["--temperature=-1"], "temperature -1"),
        (&["--temperature", "NaN"], "temperature NaN"),
        (&["--top-k", "0"], "top-k 0"),
        (&["--ctx", "1"], "ctx 1"),
        (&["--ctx", "129"], "the model has 128 positions"),
        (&["--val-fraction", "0"], "val fraction 0"),
        (&["--val-fraction", "1"], "val fraction 1"),
        (&["--val-fraction", "NaN"], "val fraction NaN"),
        (&["--tokens", "5"], "a single document"),
        (&["--out", &model], "the same as the model folder"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["data", "generate", "--model", &model, "--tokenizer", &tok];
        args.extend_from_slice(extra);
        if !extra.contains(&"--tokens") {
            args.extend(["--tokens", "100"]);
        }
        if !extra.contains(&"--out") {
            args.extend(["--out", &out]);
        }
        fails_with(&args, needle);
    }
    fails_with(
        &[
            "data",
            "generate",
            "--model",
            &model,
            "--tokenizer",
            &tok,
            "--tokens",
            "100",
            "--out",
            &inside,
        ],
        "inside the model folder",
    );
    assert!(
        !Path::new(&inside).exists(),
        "nothing written inside the model"
    );
    assert!(
        !Path::new(&out).join("meta.json").exists(),
        "no failed run wrote a data folder"
    );
}
