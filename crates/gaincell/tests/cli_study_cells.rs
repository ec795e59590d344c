//! `gaincell study cells` on the shipped stories260K linear model and a small prepared text: the linear curve in
//! the nonlinear chip is the linear chip itself (the same loss to the last digit), every stage gives a finite
//! loss, the reports are written, a rerun reuses the finished fine-tunes, and bad input is one clear error.

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, gaincell, repo, stdout, story_shards};

fn shards(dir: &Path) -> PathBuf {
    story_shards(dir, &repo("models/stories260k/linear/tokenizer.bin")).0
}

#[test]
fn the_linear_curve_reproduces_the_linear_chip_and_every_stage_is_finite() {
    let tmp = tempfile::tempdir().unwrap();
    let data = shards(tmp.path());
    let out = tmp.path().join("study");
    let args = |out: &Path| -> Vec<String> {
        [
            "study",
            "cells",
            "--linear",
            repo("models/stories260k/linear").to_str().unwrap(),
            "--chip",
            repo("configs/chips/stories260k-nonlinear.toml")
                .to_str()
                .unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--only",
            "linear,exp(3y)",
            "--finetune-steps",
            "2",
            "--batch",
            "2",
            "--ctx",
            "32",
            "--eval-batches",
            "1",
            "--max-iterations",
            "5",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let a = args(&out);
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    stdout(&gaincell(&a));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let rows = r["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["curve"], "linear");
    assert_eq!(
        rows[0]["unadapted_val_loss"],
        r["linear_on_linear_val_loss"]
    );
    for row in rows {
        for k in [
            "unadapted_val_loss",
            "adapted_val_loss",
            "finetuned_val_loss",
        ] {
            let v = row[k].as_f64().unwrap();
            assert!(v.is_finite() && v > 0.0, "{k}: {row}");
        }
        assert!(row["adaptation_iterations"].as_u64().unwrap() <= 5);
    }
    for f in [
        "results.md",
        "cells.png",
        "cells.svg",
        "exp_3y_/adapted/model.safetensors",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // A rerun takes the finished fine-tunes as they are: the same table.
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    stdout(&gaincell(&a));
    assert_eq!(std::fs::read_to_string(out.join("results.md")).unwrap(), md);
}

#[test]
fn unknown_curves_and_software_chips_are_refused() {
    let linear = repo("models/stories260k/linear");
    let chip = repo("configs/chips/stories260k-nonlinear.toml");
    let tmp = tempfile::tempdir().unwrap();
    let o = tmp.path().join("o");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "study",
            "cells",
            "--linear",
            linear.to_str().unwrap(),
            "--data",
            "nowhere",
            "--out",
            o.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |extra: &[&str], says: &str| {
        let v = base(extra);
        let v: Vec<&str> = v.iter().map(|s| s.as_str()).collect();
        fails_with(&v, says);
    };
    run(
        &["--chip", chip.to_str().unwrap(), "--only", "tanh"],
        "--only tanh: not a built-in curve",
    );
    run(
        &["--chip", "software"],
        "--chip software: give a gain-cell chip",
    );
    run(
        &["--chip", chip.to_str().unwrap(), "--curve", "mine"],
        "--curve mine: give NAME=FILE.toml",
    );
    assert!(!o.exists());
}
