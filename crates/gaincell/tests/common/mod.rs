//! What the CLI tests share: run the binary, read its output, check one-line errors.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn gaincell(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gaincell"))
        .args(args)
        .output()
        .expect("the binary runs")
}

pub fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A failure must exit with code 2 and say one line starting with `error:` that contains `needle`.
#[track_caller]
pub fn fails_with(args: &[&str], needle: &str) {
    let out = gaincell(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "{needle}: {err}"
    );
}

/// Every file under `dir` (recursively) with its bytes: compared before and after, it shows that a refused
/// command changed nothing.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    files
}

/// Copy the files of the folder `from` (not its subfolders) into `to`, created if missing.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// A path inside the repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// Token shards of a few hundred short sentences in `tokenizer` (a quarter held out), and one of the text files
/// they came from: the small data the study tests run on.
pub fn story_shards(dir: &Path, tokenizer: &Path) -> (PathBuf, PathBuf) {
    let corpus = dir.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    let names = ["Tom", "Lily", "Sam", "Mia", "Ben"];
    let things = ["ball", "cat", "tree", "cake", "boat"];
    for f in 0..4 {
        let text: String = (0..200)
            .map(|i| {
                let (n, t) = (names[(i + f) % 5], things[(i * 3 + f) % 5]);
                format!("{n} saw a big {t}. {n} was happy and played with the {t}.\n")
            })
            .collect();
        std::fs::write(corpus.join(format!("story{f}.txt")), text).unwrap();
    }
    let out = dir.join("data");
    stdout(&gaincell(&[
        "data",
        "prepare",
        "--tokenizer",
        tokenizer.to_str().unwrap(),
        "--input",
        corpus.to_str().unwrap(),
        "--val-fraction",
        "0.25",
        "--out",
        out.to_str().unwrap(),
    ]));
    (out, corpus.join("story0.txt"))
}
