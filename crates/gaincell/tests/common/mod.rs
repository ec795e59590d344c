//! What the CLI tests share: run the binary, read its output, check one-line errors.
#![allow(dead_code)]

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
