//! Outputs that are, contain or lie inside an input are refused before anything is written: one line, exit 2,
//! every input file unchanged byte for byte.

mod common;

use std::path::{Path, PathBuf};

use common::{copy_dir, fails_with, snapshot};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn adapt_refuses_to_write_over_or_inside_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let model = d.join("linear");
    copy_dir(&repo().join("models/stories260k/linear"), &model);
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let before = snapshot(d);
    let m = model.to_str().unwrap();
    let inside = model.join("adapted");
    let around = d.join("data/..");
    for (out, relation) in [
        (m, "is the input --from"),
        (inside.to_str().unwrap(), "lies inside the input --from"),
        (around.to_str().unwrap(), "contains the input --from"),
    ] {
        fails_with(
            &[
                "adapt",
                "--from",
                m,
                "--data",
                data.to_str().unwrap(),
                "--out",
                out,
            ],
            relation,
        );
    }
    assert_eq!(
        before,
        snapshot(d),
        "no input file changed, nothing written"
    );
}

#[test]
fn data_prepare_refuses_an_output_inside_its_input() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let text = d.join("text");
    std::fs::create_dir_all(&text).unwrap();
    std::fs::write(text.join("a.txt"), "Once upon a time there was a test.\n").unwrap();
    let before = snapshot(d);
    fails_with(
        &[
            "data",
            "prepare",
            "--tokenizer",
            "gpt2",
            "--input",
            text.to_str().unwrap(),
            "--out",
            text.join("shards").to_str().unwrap(),
        ],
        "lies inside the input --input",
    );
    assert_eq!(before, snapshot(d));
}
