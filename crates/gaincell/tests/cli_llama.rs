//! The Llama family through the CLI: llama2.c's stories260K (`../shared/models`, skipped with a message when
//! absent) converted to an HF folder and back, generating the story llama2.c prints, its perplexity on TinyStories,
//! its chip's cost with shared key/value arrays; and bad Llama inputs, one clear error each.

mod common;

use std::path::PathBuf;

use common::{fails_with, gaincell, stdout};

fn stories260k() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/models/stories260K/stories260K.bin");
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "skipped: {} not found (the shared models folder is absent)",
            p.display()
        );
        None
    }
}

fn tiny_llama() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../gaincell-model/tests/fixtures/tiny-llama")
}

const STORY: &str =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

fn greedy(model: &str) -> String {
    stdout(&gaincell(&[
        "generate",
        "--model",
        model,
        "--temperature",
        "0",
        "-n",
        "40",
    ]))
}

#[test]
fn stories260k_converts_to_hf_and_back_and_generates_llama2cs_story() {
    let Some(bin) = stories260k() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let hf = tmp.path().join("hf");
    let text = stdout(&gaincell(&[
        "convert",
        "--from",
        bin.to_str().unwrap(),
        "--out",
        hf.to_str().unwrap(),
    ]));
    assert!(
        text.contains("LlamaForCausalLM") && text.contains("tokenizer.bin"),
        "{text}"
    );
    for f in ["config.json", "model.safetensors", "tokenizer.bin"] {
        assert!(hf.join(f).is_file(), "{f}");
    }
    let back = tmp.path().join("back.bin");
    stdout(&gaincell(&[
        "convert",
        "--from",
        hf.to_str().unwrap(),
        "--out",
        back.to_str().unwrap(),
    ]));
    std::fs::copy(
        bin.with_file_name("tok512.bin"),
        tmp.path().join("tokenizer.bin"),
    )
    .unwrap();
    for model in [bin.clone(), hf, back] {
        let out = greedy(model.to_str().unwrap());
        assert!(out.starts_with(STORY), "{}: {out}", model.display());
    }
}

#[test]
fn stories260k_perplexity_on_tinystories_and_the_cost_of_its_chip() {
    let Some(bin) = stories260k() else { return };
    let data = std::env::var_os("GAINCELL_DATA")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/eval")
        })
        .join("tinystories/tinystories_val_head.txt");
    if !data.is_file() {
        eprintln!(
            "SKIPPED: {} not found (set GAINCELL_DATA to the shared data's eval folder)",
            data.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("ppl.json");
    stdout(&gaincell(&[
        "eval",
        "ppl",
        "--model",
        bin.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--max-tokens",
        "3000",
        "--json",
        json.to_str().unwrap(),
    ]));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let ppl = r["result"]["perplexity"].as_f64().unwrap();
    // The real model on text it never trained on (4.67 over the whole file): a random one would give ~512.
    assert!(ppl > 2.0 && ppl < 8.0, "perplexity {ppl}");

    let chip = tmp.path().join("chip.toml");
    std::fs::write(
        &chip,
        "base = \"paper-nonlinear\"\n[geometry]\nhead_dim = 8\nwindow = 256\n",
    )
    .unwrap();
    let out = stdout(&gaincell(&[
        "cost",
        "--chip",
        chip.to_str().unwrap(),
        "--model",
        bin.to_str().unwrap(),
    ]));
    assert!(
        out.contains("5 layers × 8 heads × 8 dims (4 key/value heads)"),
        "{out}"
    );
    assert!(
        out.contains("replicated (parallel)") && out.contains("time-multiplexed queries"),
        "{out}"
    );
    // A chip whose arrays do not fit the model's heads is refused, naming both widths.
    fails_with(
        &[
            "generate",
            "--model",
            bin.to_str().unwrap(),
            "--chip",
            "paper-nonlinear",
        ],
        "head_dim = 8",
    );
}

#[test]
fn bad_llama_inputs_are_one_clear_error_each() {
    let tmp = tempfile::tempdir().unwrap();
    // A llama2.c checkpoint whose header disagrees with its size.
    if let Some(bin) = stories260k() {
        let bytes = std::fs::read(&bin).unwrap();
        let bad = tmp.path().join("short.bin");
        std::fs::write(&bad, &bytes[..bytes.len() - 4]).unwrap();
        fails_with(
            &[
                "generate",
                "--model",
                bad.to_str().unwrap(),
                "--prompt",
                "x",
            ],
            "1056540 bytes",
        );
        // A truncated tokenizer.bin beside a good model.
        let dir = tmp.path().join("tok");
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy(&bin, dir.join("model.bin")).unwrap();
        let tok = std::fs::read(bin.with_file_name("tok512.bin")).unwrap();
        std::fs::write(dir.join("tokenizer.bin"), &tok[..tok.len() - 3]).unwrap();
        fails_with(
            &[
                "generate",
                "--model",
                dir.join("model.bin").to_str().unwrap(),
            ],
            "truncated",
        );
    }
    // HF configs whose heads do not divide the width, or whose key/value heads do not divide the heads.
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tiny_llama().join("config.json")).unwrap())
            .unwrap();
    for (i, (edit, says)) in [
        (
            ("hidden_size", 50),
            "hidden_size (50) is not a multiple of num_attention_heads (6)",
        ),
        (
            ("num_key_value_heads", 4),
            "num_key_value_heads (4) must divide num_attention_heads (6)",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tmp.path().join(format!("cfg{i}"));
        std::fs::create_dir(&dir).unwrap();
        let mut j = base.clone();
        j.as_object_mut().unwrap().remove("head_dim");
        j[edit.0] = edit.1.into();
        std::fs::write(dir.join("config.json"), j.to_string()).unwrap();
        std::fs::copy(
            tiny_llama().join("model.safetensors"),
            dir.join("model.safetensors"),
        )
        .unwrap();
        fails_with(
            &[
                "eval",
                "ppl",
                "--model",
                dir.to_str().unwrap(),
                "--tokenizer",
                "gpt2",
                "--data",
                "Cargo.toml",
            ],
            says,
        );
    }
}
