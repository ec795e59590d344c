//! `gaincell study variation` on the shipped stories260K nonlinear model and a small prepared text, fine-tuned two
//! steps each way: the ideal rows are the trainer's validation loss and `eval ppl`'s text loss on the chip without
//! noise, a noisy point's instances differ from each other but repeat exactly on a rerun (and match
//! `eval ppl --chip-seeds`), and bad σ flags are one-line errors naming the field.

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, gaincell, repo, stdout, story_shards};

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const CHIP: &str = "configs/chips/stories260k-nonlinear.toml";

fn study(data: &Path, text: &Path, extra: &[&str], out: &Path) -> serde_json::Value {
    let mut args: Vec<String> = [
        "study",
        "variation",
        "--model",
        &s(&repo("models/stories260k/nonlinear")),
        "--chip",
        &s(&repo(CHIP)),
        "--data",
        &s(data),
        "--fields",
        "cell_gain_sigma,write_sigma_v,all",
        "--scales",
        "1,2",
        "--instances",
        "2",
        "--batch",
        "2",
        "--ctx",
        "32",
        "--eval-batches",
        "2",
        "--text",
        &s(text),
        "--text-tokens",
        "200",
        "--out",
        &s(out),
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|e| e.to_string()));
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    stdout(&gaincell(&a));
    json(&out.join("results.json"))
}

fn model<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {r}"))
}

fn point<'a>(m: &'a serde_json::Value, field: &str, scale: f64) -> &'a serde_json::Value {
    m["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["field"] == field && p["scale"].as_f64() == Some(scale))
        .unwrap_or_else(|| panic!("{field} × {scale} in {m}"))
}

/// `eval ppl`'s mean loss per token on the text (one chip, or the mean over `--chip-seeds`).
fn eval_text_loss(
    model: &Path,
    chip: &Path,
    text: &Path,
    seeds: Option<&str>,
    json_out: &Path,
) -> f64 {
    let mut args = vec![
        "eval".to_string(),
        "ppl".into(),
        "--model".into(),
        s(model),
        "--chip".into(),
        s(chip),
        "--data".into(),
        s(text),
        "--max-tokens".into(),
        "200".into(),
        "--ctx".into(),
        "32".into(),
        "--stride".into(),
        "16".into(),
        "--json".into(),
        s(json_out),
    ];
    if let Some(seeds) = seeds {
        args.extend(["--chip-seeds".to_string(), seeds.to_string()]);
    }
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    stdout(&gaincell(&a));
    let r = json(json_out);
    match seeds {
        None => {
            r["result"]["nll"].as_f64().unwrap() / r["result"]["tokens_scored"].as_f64().unwrap()
        }
        Some(_) => r["loss_mean"].as_f64().unwrap(),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[test]
fn ideal_rows_are_the_noiseless_chip_and_noisy_instances_differ_but_repeat() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, text) = story_shards(
        tmp.path(),
        &repo("models/stories260k/nonlinear/tokenizer.bin"),
    );
    let out = tmp.path().join("a");
    let a = study(&data, &text, &["--finetune-steps", "2"], &out);
    for f in ["results.md", "variation.png", "variation.svg"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        md.contains("## What it finds") && md.contains("noise-aware"),
        "{md}"
    );
    let (plain, aware) = (model(&a, "plain"), model(&a, "noise-aware"));

    // The plain fine-tune's own last validation (on the chip without noise) is the study's ideal row.
    let metrics = std::fs::read_to_string(out.join("plain/finetune/metrics.jsonl")).unwrap();
    let last_eval = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|e| e["kind"] == "eval")
        .unwrap();
    assert_eq!(plain["ideal_val_loss"], last_eval["val_loss"], "{a}");
    // The noise-aware fine-tune trained on other chips, so its weights (and ideal loss) differ.
    assert_ne!(aware["ideal_val_loss"], plain["ideal_val_loss"]);
    // eval ppl on the noiseless chip scores the text as the ideal row does.
    let chip = repo(CHIP);
    let plain_ckpt = PathBuf::from(plain["checkpoint"].as_str().unwrap());
    let aware_ckpt = PathBuf::from(aware["checkpoint"].as_str().unwrap());
    let eval = eval_text_loss(
        &plain_ckpt,
        &chip,
        &text,
        None,
        &tmp.path().join("ppl.json"),
    );
    let ideal_text = plain["ideal_text_loss"].as_f64().unwrap();
    assert!(close(eval, ideal_text), "{eval} {ideal_text}");

    // With noise on, the two chip instances differ.
    for m in [plain, aware] {
        assert_eq!(m["points"].as_array().unwrap().len(), 6);
        for p in m["points"].as_array().unwrap() {
            let v = p["val_losses"].as_array().unwrap();
            assert_eq!(v.len(), 2);
            assert_ne!(v[0], v[1], "{p}");
            assert!(p["val_loss_std"].as_f64().unwrap() > 0.0, "{p}");
            assert!(p["text_loss_std"].as_f64().unwrap() > 0.0, "{p}");
        }
        assert!(point(m, "all", 2.0)["sigma"].is_null());
        assert_eq!(point(m, "write_sigma_v", 2.0)["sigma"].as_f64(), Some(0.02));
        assert_eq!(m["thresholds"].as_array().unwrap().len(), 3);
    }
    assert_eq!(a["chip_seeds"], serde_json::json!([1, 2]));

    // Chip seeds 1 and 2 are what `eval ppl --chip-seeds 1,2` sets: the same text loss on the same chip.
    let noisy = tmp.path().join("gain.toml");
    std::fs::write(
        &noisy,
        format!(
            "{}\n[variation]\ncell_gain_sigma = 0.05\n",
            std::fs::read_to_string(&chip).unwrap()
        ),
    )
    .unwrap();
    let eval = eval_text_loss(
        &aware_ckpt,
        &noisy,
        &text,
        Some("1,2"),
        &tmp.path().join("seeds.json"),
    );
    let study_text = point(aware, "cell_gain_sigma", 1.0)["text_loss_mean"]
        .as_f64()
        .unwrap();
    assert!(close(eval, study_text), "{eval} {study_text}");

    // A rerun with the two models given: every number repeats exactly.
    let b = study(
        &data,
        &text,
        &[
            "--plain-model",
            &s(&plain_ckpt),
            "--aware-model",
            &s(&aware_ckpt),
        ],
        &tmp.path().join("b"),
    );
    for name in ["plain", "noise-aware"] {
        let (x, y) = (model(&a, name), model(&b, name));
        assert_eq!(x["ideal_val_loss"], y["ideal_val_loss"], "{name}");
        assert_eq!(x["ideal_text_loss"], y["ideal_text_loss"], "{name}");
        assert_eq!(x["points"], y["points"], "{name}");
        assert_eq!(x["thresholds"], y["thresholds"], "{name}");
    }
}

#[test]
fn bad_sigma_flags_are_one_line_errors_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let o = tmp.path().join("o");
    let model = s(&repo("models/stories260k/nonlinear"));
    let chip = s(&repo(CHIP));
    let run = |extra: &[&str], says: &str| {
        let mut v = vec![
            "study",
            "variation",
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
        &["--sigma", "bogus=1"],
        "--sigma bogus=1: `bogus` is not a σ field",
    );
    run(
        &["--sigma", "bogus=1"],
        "cell_gain_sigma, cell_offset_sigma_v, c2p_gain_sigma, c2p_threshold_sigma_ua, counter_gain_sigma, \
         counter_threshold_sigma_ua, write_sigma_v, score_read_sigma_ua, value_read_sigma_ua",
    );
    run(
        &["--sigma", "write_sigma_v=-0.01"],
        "--sigma write_sigma_v=-0.01: a standard deviation is a finite number > 0",
    );
    run(
        &["--sigma", "write_sigma_v"],
        "--sigma write_sigma_v: give FIELD=VALUE",
    );
    run(
        &["--fields", "cell_gain_sigma,bogus"],
        "--fields bogus: `bogus` is not a σ field",
    );
    run(&["--instances", "0"], "--instances 0: give at least 1");
    run(
        &["--scales", "1,0"],
        "--scales 0: a multiple of the nominal σ is a positive number",
    );
    run(
        &["--scales=-1"],
        "--scales -1: a multiple of the nominal σ is a positive number",
    );
    run(&["--scales", ""], "--scales: give at least one multiple");
    run(
        &["--plain-model", &model],
        "--plain-model: give --aware-model too",
    );
    run(
        &["--aware-model", &model],
        "--aware-model: give --plain-model too",
    );
    assert!(!o.exists());
}
