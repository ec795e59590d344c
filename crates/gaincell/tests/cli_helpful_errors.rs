//! Class "errors that help": the OS error once, with its path; a directory or a device where a file is expected
//! says so (and outputs to a device are written into it, not renamed over it); a prompt longer than the model's
//! context gives its length; a model folder without a tokenizer says which one was used instead.

mod common;

use std::path::Path;

use common::{fails_with, gaincell};

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .display()
        .to_string()
}

#[test]
fn the_os_error_is_said_once_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = gaincell(&["train", "--config", d]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("os error 21").count(), 1, "{err}");
    assert!(err.contains(d), "{err}");
}

#[test]
fn a_directory_given_as_a_file_says_it_is_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    fails_with(
        &[
            "attention",
            "--chip",
            "paper-nonlinear",
            "--q",
            d,
            "--k",
            d,
            "--v",
            d,
            "--out-dir",
            o,
        ],
        &format!("{d} is a directory: give a .npy file"),
    );
    fails_with(&["cost", "--chip", d], "Is a directory");
    fails_with(
        &["cost", "--chip", "paper-nonlinear", "--json", d],
        &format!("{d} is a directory: give the name of a file to write"),
    );
    assert!(!out.exists());
}

#[cfg(unix)]
#[test]
fn outputs_to_a_device_or_through_a_symlink_are_written_into_it_not_renamed_over_it() {
    use std::os::unix::fs::FileTypeExt;
    let out = gaincell(&["cost", "--chip", "paper-nonlinear", "--json", "/dev/null"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());

    let dir = tempfile::tempdir().unwrap();
    let (target, link) = (dir.path().join("cost.json"), dir.path().join("latest.json"));
    std::fs::write(&target, "old").unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = gaincell(&[
        "cost",
        "--chip",
        "paper-nonlinear",
        "--json",
        link.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert!(written.is_object());
}

#[test]
fn a_prompt_longer_than_the_context_gives_its_length() {
    let prompt = "Once upon a time there was a cat. ".repeat(100);
    fails_with(
        &[
            "generate",
            "--model",
            &repo("models/stories260k/software"),
            "--prompt",
            &prompt,
            "-n",
            "3",
        ],
        "tokens but the model has 512 positions: shorten it to at most 511 tokens",
    );
}

#[test]
fn a_model_folder_without_a_tokenizer_says_which_tokenizer_was_used() {
    let model = repo("crates/gaincell-model/tests/fixtures/tiny-gpt2");
    fails_with(
        &["generate", "--model", &model, "--prompt", "hi", "-n", "1"],
        "has no tokenizer.json or tokenizer.bin, so GPT-2's tokenizer was used",
    );
}
