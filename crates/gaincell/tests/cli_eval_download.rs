//! `gaincell eval download` against a local stand-in of the HuggingFace Hub: a tiny HTTP server on 127.0.0.1
//! serving the synthetic fixtures of tests/fixtures/hub (scripts/make_hub_fixtures.py) in the Hub's URL layout
//! (`/datasets/{repo}/resolve/{revision}/{path}`, with the etag, x-repo-commit and Content-Range headers hf-hub
//! reads). The fixtures' hashes and item counts come from a manifest (`GAINCELL_DOWNLOAD_MANIFEST`), since the
//! pinned ones are the real files'.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// (repo, path) of every fixture, with the task whose item count it carries.
const FILES: &[(&str, &str, &str, usize)] = &[
    (
        "Salesforce/wikitext",
        "wikitext-2-raw-v1/test-00000-of-00001.parquet",
        "wikitext",
        2,
    ),
    (
        "EleutherAI/lambada_openai",
        "data/lambada_test.jsonl",
        "lambada_openai",
        3,
    ),
    (
        "Rowan/hellaswag",
        "default/validation/0000.parquet",
        "hellaswag",
        2,
    ),
    (
        "ybisk/piqa",
        "plain_text/validation/0000.parquet",
        "piqa",
        2,
    ),
    (
        "allenai/ai2_arc",
        "ARC-Easy/test-00000-of-00001.parquet",
        "arc_easy",
        2,
    ),
    (
        "allenai/ai2_arc",
        "ARC-Challenge/test-00000-of-00001.parquet",
        "arc_challenge",
        2,
    ),
];

fn hub_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hub")
}

fn sha256(p: &Path) -> String {
    Sha256::digest(std::fs::read(p).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Starts the stand-in Hub on a free port; returns its address (`http://127.0.0.1:PORT`).
fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = answer(stream);
        }
    });
    format!("http://{addr}")
}

/// One request: `GET /datasets/{owner}/{name}/resolve/{revision}/{path}` with an optional `Range: bytes=a-[b]`.
fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = v.trim().strip_prefix("bytes=").map(str::to_string);
            }
        }
    }
    let url = first.split_whitespace().nth(1).unwrap_or_default();
    let parts: Vec<&str> = url.trim_start_matches('/').splitn(6, '/').collect();
    let file = match parts.as_slice() {
        ["datasets", owner, name, "resolve", _revision, path] => {
            Some(hub_root().join(owner).join(name).join(path))
        }
        _ => None,
    };
    let Some(bytes) = file.and_then(|f| std::fs::read(f).ok()) else {
        let body = "Entry not found";
        return write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    let n = bytes.len();
    let (start, end) = match range.as_deref().and_then(|r| r.split_once('-')) {
        Some((a, b)) => (
            a.parse().unwrap_or(0),
            b.parse::<usize>().map(|b| b.min(n - 1)).unwrap_or(n - 1),
        ),
        None => (0, n - 1),
    };
    let body = &bytes[start.min(n)..=end];
    let etag: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let status = if range.is_some() {
        "206 Partial Content"
    } else {
        "200 OK"
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{end}/{n}\r\n\
         ETag: \"{etag}\"\r\nX-Repo-Commit: {COMMIT}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}

/// A manifest with the fixtures' hashes (`corrupt`: the one of lambada's file is wrong) and item counts.
fn manifest(dir: &Path, corrupt: bool) -> PathBuf {
    let mut sha = serde_json::Map::new();
    let mut items = serde_json::Map::new();
    for (repo, path, task, n) in FILES {
        let mut h = sha256(&hub_root().join(repo).join(path));
        if corrupt && *task == "lambada_openai" {
            h = "0".repeat(64);
        }
        sha.insert(format!("{repo}/{path}"), h.into());
        items.insert(task.to_string(), (*n).into());
    }
    let p = dir.join(if corrupt {
        "manifest-corrupt.json"
    } else {
        "manifest.json"
    });
    std::fs::write(
        &p,
        serde_json::json!({"sha256": sha, "items": items}).to_string(),
    )
    .unwrap();
    p
}

fn run(args: &[&str], endpoint: &str, manifest: &Path, home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gaincell"))
        .args(args)
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HOME", home.join("hf"))
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("GAINCELL_DATA")
        .env("GAINCELL_DOWNLOAD_MANIFEST", manifest)
        .output()
        .expect("the binary runs")
}

/// The one-line `error:` a failure must print, with exit code 2.
#[track_caller]
fn one_line_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

/// Everything under `dir`, relative.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    out.sort();
    out
}

/// The tiny fixture model and a 300-entry BPE that fits its vocabulary.
fn model_and_tokenizer(dir: &Path) -> (String, String) {
    let text = "The cat sat on the mat. The dog ran to the park and back again. Pour water into the glass.";
    let tok = gaincell_model::train_bpe(std::iter::repeat_n(text, 20), 300).unwrap();
    let tok_path = dir.join("tokenizer.json");
    tok.save(&tok_path).unwrap();
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../gaincell-model/tests/fixtures/tiny-gpt2")
        .display()
        .to_string();
    (model, tok_path.display().to_string())
}

fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

#[test]
fn download_converts_every_task_and_eval_tasks_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = serve();
    let m = manifest(tmp.path(), false);
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let out = run(&["eval", "download", "--data-dir", d], &hub, &m, tmp.path());
    let printed = common::stdout(&out);
    assert!(printed.contains("downloading lambada_openai"), "{printed}");
    assert!(printed.contains("verified"), "{printed}");
    for f in [
        "wikitext-2-raw/wiki.test.raw",
        "lambada/lambada_test.jsonl",
        "hellaswag/hellaswag_val.jsonl",
        "piqa/valid.jsonl",
        "piqa/valid-labels.lst",
        "arc-easy/arc_easy.jsonl",
        "arc-challenge/arc_challenge.jsonl",
    ] {
        assert!(data.join(f).is_file(), "{f} missing: {printed}");
    }
    // Nothing but the harness's files: no scratch folder, no temporary file.
    assert!(
        listing(&data)
            .iter()
            .all(|p| !p.contains(".download") && !p.contains(".tmp")),
        "{:?}",
        listing(&data)
    );
    assert_eq!(
        std::fs::read_to_string(data.join("wikitext-2-raw/wiki.test.raw")).unwrap(),
        " \n = Cat = \n \n The cat sat on the mat . \n \n = Dog = \n \n The dog ran to the park . \n \n"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("piqa/valid-labels.lst")).unwrap(),
        "0\n0\n"
    );

    // `eval tasks` reads every downloaded task.
    let (model, tok_path) = model_and_tokenizer(tmp.path());
    let results = tmp.path().join("run.json");
    let out = run(
        &[
            "eval",
            "tasks",
            "--model",
            &model,
            "--tokenizer",
            &tok_path,
            "--chip",
            "paper-nonlinear",
            "--data-dir",
            d,
            "--tasks",
            "wikitext,lambada_openai,hellaswag,piqa,arc_easy,arc_challenge",
            "--bootstrap-iters",
            "0",
            "--out",
            results.to_str().unwrap(),
        ],
        &hub,
        &m,
        tmp.path(),
    );
    let printed = common::stdout(&out);
    assert!(!printed.contains("skipped"), "{printed}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    for t in [
        "wikitext",
        "lambada_openai",
        "hellaswag",
        "piqa",
        "arc_easy",
        "arc_challenge",
    ] {
        assert!(v["results"][t].is_object(), "{t}: {v}");
    }
}

#[test]
fn a_file_with_the_wrong_sha256_is_refused_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = serve();
    let m = manifest(tmp.path(), true);
    let data = tmp.path().join("data");
    let out = run(
        &[
            "eval",
            "download",
            "--tasks",
            "lambada_openai",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &hub,
        &m,
        tmp.path(),
    );
    let err = one_line_error(&out);
    assert!(
        err.contains("sha256") && err.contains("lambada_openai") && err.contains("refused"),
        "{err}"
    );
    assert_eq!(listing(&data), Vec::<String>::new());
}

#[test]
fn an_unreachable_hub_gives_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), false);
    let data = tmp.path().join("data");
    let out = run(
        &[
            "eval",
            "download",
            "--tasks",
            "piqa",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &closed_port(),
        &m,
        tmp.path(),
    );
    let err = one_line_error(&out);
    assert!(
        err.contains("downloading piqa") && err.contains("failed") && err.contains("offline"),
        "{err}"
    );
    assert_eq!(listing(&data), Vec::<String>::new());
}

#[test]
fn missing_data_offers_the_download_online_and_names_the_file_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), false);
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (model, tok) = model_and_tokenizer(tmp.path());
    let results = tmp.path().join("run.json");
    let args = [
        "eval",
        "tasks",
        "--model",
        &model,
        "--tokenizer",
        &tok,
        "--chip",
        "paper-nonlinear",
        "--data-dir",
        data.to_str().unwrap(),
        "--tasks",
        "piqa",
        "--out",
        results.to_str().unwrap(),
    ];
    let online = run(&args, &serve(), &m, tmp.path());
    let err = one_line_error(&online);
    assert!(err.contains("gaincell eval download --tasks piqa"), "{err}");
    let offline = run(&args, &closed_port(), &m, tmp.path());
    let err = one_line_error(&offline);
    assert!(!err.contains("eval download"), "{err}");
    assert!(
        err.contains(&data.join("piqa/valid.jsonl").display().to_string()),
        "{err}"
    );

    // --download fetches the missing task first.
    let hub = serve();
    let mut with = args.to_vec();
    with.push("--download");
    let out = run(&with, &hub, &m, tmp.path());
    let printed = common::stdout(&out);
    assert!(printed.contains("downloading piqa"), "{printed}");
    assert!(data.join("piqa/valid.jsonl").is_file());
}

#[test]
fn without_data_dir_or_gaincell_data_the_data_goes_to_the_user_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), false);
    let cache = tmp.path().join("cache");
    let out = Command::new(env!("CARGO_BIN_EXE_gaincell"))
        .args(["eval", "download", "--tasks", "lambada_openai"])
        .env("HF_ENDPOINT", serve())
        .env("HF_HOME", tmp.path().join("hf"))
        .env("XDG_CACHE_HOME", &cache)
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("GAINCELL_DATA")
        .env("GAINCELL_DOWNLOAD_MANIFEST", &m)
        .output()
        .unwrap();
    common::stdout(&out);
    assert!(cache
        .join("gaincell/eval/lambada/lambada_test.jsonl")
        .is_file());
}
