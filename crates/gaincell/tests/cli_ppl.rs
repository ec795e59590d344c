//! `gaincell eval ppl` end to end on WikiText-2 with the HF fixture model, checked against a perplexity computed
//! here independently (plain windows, candle's own log-softmax, no strided bookkeeping shared with the library).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{Device, Tensor, D};
use gaincell_model::{checkpoint, train_bpe, Tokenizer};

fn gaincell(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gaincell"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture_model() -> PathBuf {
    workspace().join("crates/gaincell-model/tests/fixtures/tiny-gpt2")
}

/// The shared data's wikitext-2-raw folder (`$GAINCELL_DATA`, else ../shared/data/eval beside the repository), or
/// None with a message saying the test is skipped.
fn wikitext() -> Option<PathBuf> {
    let dir = std::env::var_os("GAINCELL_DATA")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/data/eval"))
        .join("wikitext-2-raw");
    if dir.join("wiki.test.raw").exists() && dir.join("wiki.valid.raw").exists() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} not found (set GAINCELL_DATA to the shared data's eval folder; CI does)",
            dir.display()
        );
        None
    }
}

/// The fixture's vocabulary has 512 entries, so it gets a 512-entry byte-level BPE trained on the *validation*
/// split (never on the text it is scored on).
fn fixture_tokenizer(wiki: &Path, dir: &Path) -> PathBuf {
    let valid = std::fs::read_to_string(wiki.join("wiki.valid.raw")).unwrap();
    let tok = train_bpe(valid.lines(), 512).unwrap();
    assert_eq!(tok.vocab_size(), 512);
    let path = dir.join("tokenizer.json");
    tok.save(&path).unwrap();
    path
}

/// Σ −ln p over the stream, each token after the first scored once from the window that first contains it with
/// up to ctx − stride tokens of context: written from the definition, window by window.
fn reference_nll(ids: &[u32], ctx: usize, stride: usize, chip: &str) -> (f64, usize) {
    let chip = gaincell_chip::ChipConfig::load(chip).unwrap();
    let model = checkpoint::load(&fixture_model(), Some(chip)).unwrap();
    let (mut nll, mut scored, mut covered, mut begin) = (0.0f64, 0usize, 1usize, 0usize);
    while covered < ids.len() {
        let end = (begin + ctx).min(ids.len());
        let window = Tensor::new(&ids[begin..end], &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logp = candle_nn::ops::log_softmax(&model.forward(&window).unwrap(), D::Minus1)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for j in covered..end {
            nll -= logp[j - 1 - begin][ids[j] as usize] as f64;
            scored += 1;
        }
        covered = end;
        begin += stride;
    }
    (nll, scored)
}

fn eval_ppl(tokenizer: &Path, data: &Path, extra: &[&str], json: &Path) -> serde_json::Value {
    let model = fixture_model();
    let mut args = vec![
        "eval",
        "ppl",
        "--model",
        model.to_str().unwrap(),
        "--tokenizer",
        tokenizer.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = gaincell(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    v["result"].clone()
}

#[test]
fn wikitext_perplexity_of_the_fixture_model_end_to_end() {
    let Some(wiki) = wikitext() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tokenizer = fixture_tokenizer(&wiki, tmp.path());
    let test_file = wiki.join("wiki.test.raw");
    let text = std::fs::read_to_string(&test_file).unwrap();
    let ids = Tokenizer::load(tokenizer.to_str().unwrap())
        .unwrap()
        .encode(&text)
        .unwrap();
    let n = ids.len();
    assert!(n > 100_000, "WikiText-2 test is ~1.3 MB; got {n} tokens");

    // The whole file, non-overlapping windows of the model's 128 positions.
    let r = eval_ppl(
        &tokenizer,
        &test_file,
        &["--ctx", "128", "--stride", "128"],
        &tmp.path().join("all.json"),
    );
    assert_eq!(r["tokens"].as_u64().unwrap() as usize, n);
    // Disjoint windows (stride = ctx): the first token of each window has no context and is not scored.
    let scored = n - n.div_ceil(128);
    assert_eq!(r["tokens_scored"].as_u64().unwrap() as usize, scored);
    assert_eq!(r["bytes"].as_u64().unwrap() as usize, text.len());
    let (nll, ppl, bpb) = (
        r["nll"].as_f64().unwrap(),
        r["perplexity"].as_f64().unwrap(),
        r["bits_per_byte"].as_f64().unwrap(),
    );
    assert!(((ppl - (nll / scored as f64).exp()) / ppl).abs() < 1e-9);
    assert!(((bpb - nll / std::f64::consts::LN_2 / text.len() as f64) / bpb).abs() < 1e-9);
    // A random-initialised model knows nothing: its perplexity sits near the vocabulary size.
    assert!(ppl > 100.0 && ppl < 2000.0, "perplexity {ppl}");
    eprintln!(
        "fixture model on WikiText-2 test: {n} tokens, perplexity {ppl:.2}, bits/byte {bpb:.4}"
    );

    // Overlapping windows on the first 20,000 tokens, on both chips, against the perplexity computed here from
    // the definition.
    let m = 20_000;
    for chip in ["software", "paper-nonlinear"] {
        let r = eval_ppl(
            &tokenizer,
            &test_file,
            &[
                "--ctx",
                "128",
                "--stride",
                "48",
                "--max-tokens",
                "20000",
                "--chip",
                chip,
            ],
            &tmp.path().join(format!("{chip}.json")),
        );
        let (want_nll, scored) = reference_nll(&ids[..m], 128, 48, chip);
        assert_eq!(scored, m - 1);
        assert_eq!(r["tokens_scored"].as_u64().unwrap() as usize, m - 1);
        let got_nll = r["nll"].as_f64().unwrap();
        assert!(
            ((got_nll - want_nll) / want_nll).abs() < 1e-5,
            "{chip}: nll {got_nll} vs reference {want_nll}"
        );
        eprintln!(
            "{chip}: first {m} tokens, perplexity {:.2}",
            r["perplexity"].as_f64().unwrap()
        );
    }
}

#[test]
fn empty_or_missing_data_is_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, "  \n").unwrap();
    let model = fixture_model();
    for (data, says) in [
        (empty.clone(), "is empty"),
        (tmp.path().join("nope.txt"), "nope.txt"),
    ] {
        let out = gaincell(&[
            "eval",
            "ppl",
            "--model",
            model.to_str().unwrap(),
            "--tokenizer",
            "gpt2",
            "--data",
            data.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `--json -` puts the JSON alone on standard output (the chip line and the result line go to standard error);
/// no file named `-` is written.
#[test]
fn json_dash_is_standard_output() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("story.txt");
    std::fs::write(
        &text,
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.\n",
    )
    .unwrap();
    let model = workspace().join("models/stories260k/software");
    let out = Command::new(env!("CARGO_BIN_EXE_gaincell"))
        .args(["eval", "ppl", "--model", model.to_str().unwrap()])
        .args([
            "--data",
            text.to_str().unwrap(),
            "--ctx",
            "32",
            "--json",
            "-",
        ])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    let ppl = v["result"]["perplexity"].as_f64().unwrap();
    assert!(ppl.is_finite() && ppl > 1.0, "{ppl}");
    assert!(
        err.contains("perplexity"),
        "the human line goes to stderr: {err}"
    );
    assert!(!tmp.path().join("-").exists(), "no file named -");
}
