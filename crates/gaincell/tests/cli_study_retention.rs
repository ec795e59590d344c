//! `gaincell study retention` on the shipped stories260K nonlinear model and a small prepared text: the ∞ point
//! is the chip with leakage disabled (validation loss and `eval ppl`'s text loss), every point is scored on the
//! same batches (the points' order changes nothing), and bad retention lists and refresh flags are one-line errors.

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, gaincell, repo, stdout, story_shards};

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn shards(dir: &Path) -> (PathBuf, PathBuf) {
    story_shards(dir, &repo("models/stories260k/nonlinear/tokenizer.bin"))
}

fn study(
    data: &Path,
    chip: &str,
    retentions: &str,
    extra: &[&str],
    out: &Path,
) -> serde_json::Value {
    let mut args: Vec<String> = [
        "study",
        "retention",
        "--model",
        &s(&repo("models/stories260k/nonlinear")),
        "--chip",
        chip,
        "--data",
        &s(data),
        "--retention-ms",
        retentions,
        "--batch",
        "2",
        "--ctx",
        "32",
        "--eval-batches",
        "2",
        "--out",
        &s(out),
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|e| e.to_string()));
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    stdout(&gaincell(&a));
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
}

fn point(r: &serde_json::Value, retention: Option<f64>) -> &serde_json::Value {
    r["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["retention_ms"].as_f64() == retention)
        .unwrap_or_else(|| panic!("{retention:?} in {r}"))
}

#[test]
fn infinity_is_leakage_off_and_every_point_sees_the_same_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, text) = shards(tmp.path());
    // The nonlinear chip with its leakage disabled, as a file: what the ∞ point must reproduce.
    let off = tmp.path().join("off.toml");
    std::fs::write(
        &off,
        "base = \"paper-nonlinear\"\nname = \"off\"\n[geometry]\nhead_dim = 8\nwindow = 256\n\
         tile_rows = 64\n[leakage]\nenabled = false\n",
    )
    .unwrap();
    let chip = s(&repo("configs/chips/stories260k-nonlinear.toml"));
    let text_flags = ["--text", text.to_str().unwrap(), "--text-tokens", "200"];
    let a = study(
        &data,
        &s(&off),
        "0.1,inf,10",
        &text_flags,
        &tmp.path().join("a"),
    );
    let inf = point(&a, None);
    assert_eq!(inf["val_loss"], a["chip_val_loss"], "{a}");
    assert_eq!(inf["lambda_per_token"].as_f64(), Some(0.0));
    assert_eq!(inf["delta_loss"].as_f64(), Some(0.0));
    // eval ppl on the leakage-off chip scores the text as the ∞ point does.
    let json = tmp.path().join("ppl.json");
    stdout(&gaincell(&[
        "eval",
        "ppl",
        "--model",
        &s(&repo("models/stories260k/nonlinear")),
        "--chip",
        &s(&off),
        "--data",
        text.to_str().unwrap(),
        "--max-tokens",
        "200",
        "--ctx",
        "32",
        "--stride",
        "16",
        "--json",
        &s(&json),
    ]));
    let ppl: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let eval_loss =
        ppl["result"]["nll"].as_f64().unwrap() / ppl["result"]["tokens_scored"].as_f64().unwrap();
    let study_loss = inf["text_loss"].as_f64().unwrap();
    assert!(
        (eval_loss - study_loss).abs() < 1e-9 * eval_loss,
        "{eval_loss} {study_loss}"
    );

    // Another order, another base chip (its own leakage on), a point fewer: the shared points agree exactly,
    // so the batches do not depend on a point's position or on the base chip's leakage.
    let b = study(&data, &chip, "10,0.1", &[], &tmp.path().join("b"));
    for r in [None, Some(0.1), Some(10.0)] {
        assert_eq!(point(&a, r)["val_loss"], point(&b, r)["val_loss"], "{r:?}");
    }
    // 0.1 ms leaks far more than 10 ms: λ = period / retention.
    let (p01, p10) = (point(&b, Some(0.1)), point(&b, Some(10.0)));
    let ratio =
        p01["lambda_per_token"].as_f64().unwrap() / p10["lambda_per_token"].as_f64().unwrap();
    assert!((ratio - 100.0).abs() < 1e-9, "{ratio}");
    let period = b["token_period_s"].as_f64().unwrap();
    assert!((p10["lambda_per_token"].as_f64().unwrap() - period / 10e-3).abs() < 1e-15);
    for p in b["points"].as_array().unwrap() {
        assert!(p["energy_per_token_pj"].as_f64().unwrap() > 0.0);
        assert!(p["latency_per_token_ns"].as_f64().unwrap() > 0.0);
        assert!(p["refresh_energy_per_token_pj"].is_null());
    }
    assert!(b["needed"].is_object(), "{b}");
    for f in ["results.md", "retention.png", "retention.svg"] {
        assert!(tmp.path().join("b").join(f).is_file(), "{f}");
    }
}

#[test]
fn bad_retention_lists_and_refresh_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let o = tmp.path().join("o");
    let model = s(&repo("models/stories260k/nonlinear"));
    let chip = s(&repo("configs/chips/stories260k-nonlinear.toml"));
    let run = |extra: &[&str], says: &str| {
        let mut v = vec![
            "study",
            "retention",
            "--model",
            &model,
            "--chip",
            &chip,
            "--data",
            "nowhere",
            "--out",
            o.to_str().unwrap(),
        ];
        v.extend_from_slice(extra);
        fails_with(&v, says);
    };
    run(
        &["--retention-ms", ""],
        "--retention-ms: give at least one retention",
    );
    run(
        &["--retention-ms", " , "],
        "--retention-ms: give at least one retention",
    );
    run(
        &["--retention-ms", "1,-3"],
        "--retention-ms -3: a retention is a positive number",
    );
    run(
        &["--retention-ms", "0,1"],
        "--retention-ms 0: a retention is a positive number",
    );
    run(
        &["--retention-ms", "1ms"],
        "--retention-ms 1ms: a retention is a positive number",
    );
    run(
        &["--retention-ms", "1,inf,1"],
        "--retention-ms 1: given twice",
    );
    run(
        &["--refresh-every", "0"],
        "--refresh-every 0: give whole numbers",
    );
    run(
        &["--token-period-s=-1e-9"],
        "--token-period-s -1e-9: give a positive",
    );
    assert!(!o.exists());
    // A refresh interval the chip cannot take (not below its 256-token window): refused before any point runs,
    // naming the field.
    fails_with(
        &[
            "study",
            "retention",
            "--model",
            &model,
            "--chip",
            &chip,
            "--data",
            "nowhere",
            "--refresh-every",
            "300",
            "--out",
            o.to_str().unwrap(),
        ],
        "--refresh-every 300: chip config field `refresh.every_tokens` is 300",
    );
    assert!(!o.exists());
}
