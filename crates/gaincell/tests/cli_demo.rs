//! `gaincell demo` in reduced form (few tokens, a short adaptation): the shipped family loads and the report
//! holds what it must; a single model given with --model takes the path that adapts it live; bad input is one
//! clear error.

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, gaincell, stdout};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Report files every run must write.
fn check_report(out: &Path, variants: &[&str]) -> serde_json::Value {
    for stem in ["adaptation", "quality", "cost_vs_gpu", "energy_breakdown"] {
        for ext in ["png", "svg"] {
            let p = out.join(format!("{stem}.{ext}"));
            assert!(
                std::fs::metadata(&p).unwrap().len() > 1000,
                "{}",
                p.display()
            );
        }
    }
    let r = read_json(&out.join("results.json"));
    let names: Vec<&str> = r["quality"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["variant"].as_str().unwrap())
        .collect();
    assert_eq!(names, variants);
    // The software model against itself.
    assert!(r["quality"][0]["kl"].as_f64().unwrap().abs() < 1e-9);
    assert_eq!(r["quality"][0]["top1_agreement"].as_f64(), Some(1.0));
    for q in r["quality"].as_array().unwrap() {
        let (ppl, nll) = (
            q["perplexity"].as_f64().unwrap(),
            q["nll"].as_f64().unwrap(),
        );
        assert!((ppl - nll.exp()).abs() < 1e-9 * ppl && q["kl"].as_f64().unwrap() >= -1e-9);
    }
    assert_eq!(r["generations"].as_array().unwrap().len(), variants.len());
    // This model, then GPT-2 on paper-nonlinear, each beside both published GPUs.
    assert_eq!(r["cost"].as_array().unwrap().len(), 2);
    assert_eq!(r["cost"][1]["model"]["name"], "gpt2");
    assert_eq!(r["cost"][1]["comparisons"].as_array().unwrap().len(), 2);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for v in variants {
        assert!(md.contains(&format!("| {v} |")), "report.md lists {v}");
    }
    assert!(md.contains("![quality](quality.png)") && md.contains("Adaptation, live"));
    r
}

#[test]
fn shipped_family_reduced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    // Run from elsewhere: the shipped models are found in the source tree.
    let s = stdout(&gaincell(&[
        "demo",
        "--tokens",
        "192",
        "--ctx",
        "64",
        "--adapt-batch",
        "2",
        "--max-iterations",
        "3",
        "--generate",
        "6",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(s.contains("── Adaptation") && s.contains("wrote"), "{s}");
    let r = check_report(
        &out,
        &["software", "linear", "unadapted", "adapted", "nonlinear"],
    );
    assert_eq!(r["stream"]["tokens"], 192);
    let its = r["adaptation"]["iterations"].as_array().unwrap();
    assert!(!its.is_empty() && its.len() <= 3);
    assert!(r["adaptation"]["targets"]
        .as_str()
        .unwrap()
        .contains("recorded while the linear model trained"));
    let shipped = repo().join("models/stories260k").canonicalize().unwrap();
    assert_eq!(
        r["models"]["source"].as_str().unwrap(),
        shipped.display().to_string()
    );
}

#[test]
fn single_model_is_adapted_live() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../gaincell-model/tests/fixtures/tiny-gpt2");
    let text = dir.path().join("text.txt");
    std::fs::write(
        &text,
        "The quick brown fox jumps over the lazy dog. ".repeat(20),
    )
    .unwrap();
    // The fixture has 512 token ids: a 300-entry BPE of the text fits.
    let tok = dir.path().join("tokenizer.json");
    stdout(&gaincell(&[
        "tokenizer",
        "train",
        "--input",
        text.to_str().unwrap(),
        "--vocab",
        "300",
        "--out",
        tok.to_str().unwrap(),
    ]));
    stdout(&gaincell(&[
        "demo",
        "--model",
        fixture.to_str().unwrap(),
        "--tokenizer",
        tok.to_str().unwrap(),
        "--data",
        text.to_str().unwrap(),
        "--adapt-batch",
        "2",
        "--ctx",
        "32",
        "--max-iterations",
        "4",
        "--generate",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]));
    let r = check_report(&out, &["software", "linear", "unadapted", "adapted"]);
    assert!(r["stream"]["source"].as_str().unwrap().contains("text.txt"));
    assert!(r["adaptation"]["targets"]
        .as_str()
        .unwrap()
        .contains("measured on the linear chip"));
}

#[test]
fn bad_input_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing");
    std::fs::create_dir(&missing).unwrap();
    fails_with(
        &["demo", "--models", missing.to_str().unwrap()],
        "no software here",
    );
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    fails_with(
        &[
            "demo",
            "--data",
            empty.to_str().unwrap(),
            "--out",
            dir.path().join("r").to_str().unwrap(),
        ],
        "at least 2 tokens",
    );
    fails_with(&["demo", "--ctx", "100000"], "--ctx 100000");
}
