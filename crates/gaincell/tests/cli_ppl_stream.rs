//! `gaincell eval ppl` reads its text as a stream: `--max-tokens N` on a long file scores exactly what the file's
//! first part alone scores, and a model whose loss is NaN is an error, not a number.

mod common;

use std::path::{Path, PathBuf};

use common::gaincell;
use gaincell_model::Tokenizer;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stories_model() -> PathBuf {
    workspace().join("models/stories260k/software")
}

/// A story-like text of about `bytes` bytes (varied lines, so no block of it repeats the one before exactly).
fn long_text(bytes: usize) -> String {
    let names = ["Lily", "Tom", "Ben", "Sue", "Max", "Mia", "Sam"];
    let things = ["ball", "kite", "cat", "red box", "big tree", "little boat"];
    let mut s = String::new();
    let mut i = 0usize;
    while s.len() < bytes {
        let (n, t) = (names[i % names.len()], things[(i / 3) % things.len()]);
        s.push_str(&format!(
            "Once upon a time, {n} found a {t}. {n} was very happy and played with the {t} all day, {i} times.\n"
        ));
        if i % 5 == 4 {
            s.push('\n');
        }
        i += 1;
    }
    s
}

/// The JSON result of `eval ppl` on `data` with `extra` flags.
fn ppl(data: &Path, extra: &[&str], json: &Path) -> serde_json::Value {
    let model = stories_model();
    let mut args = vec![
        "eval",
        "ppl",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--ctx",
        "64",
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

/// A 1.5 MB file (more than one 1 MiB read block) with `--max-tokens N` gives exactly the result of a file
/// holding only its first part, N tokens long: the same ids, losses and bytes.
#[test]
fn max_tokens_on_a_long_file_equals_the_file_cut_there() {
    let tmp = tempfile::tempdir().unwrap();
    let text = long_text(1_500_000);
    let long = tmp.path().join("long.txt");
    std::fs::write(&long, &text).unwrap();
    // The first part ends just before a space that follows a word (a point where the tokens of the part are
    // the first tokens of the whole).
    let end = text[..6000].rfind(" a ").unwrap();
    let part = tmp.path().join("part.txt");
    std::fs::write(&part, &text[..end]).unwrap();
    let tok = Tokenizer::load(stories_model().to_str().unwrap()).unwrap();
    let n = tok.encode_document(&text[..end]).unwrap().len();
    assert!(n > 500, "{n} tokens");

    let cut = ppl(
        &long,
        &["--max-tokens", &n.to_string()],
        &tmp.path().join("cut.json"),
    );
    let alone = ppl(&part, &[], &tmp.path().join("part.json"));
    for key in [
        "tokens",
        "tokens_scored",
        "bytes",
        "nll",
        "perplexity",
        "bits_per_byte",
    ] {
        assert_eq!(cut[key], alone[key], "{key}: {cut} vs {alone}");
    }
    assert_eq!(cut["tokens"].as_u64().unwrap() as usize, n);
    assert_eq!(cut["bytes"].as_u64().unwrap() as usize, end);
}

/// Offsets of a tensor's data in a safetensors file: (start, end) in bytes from the file's start.
fn tensor_bytes(file: &[u8], name: &str) -> Option<(usize, usize)> {
    let len = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&file[8..8 + len]).unwrap();
    let t = &header[name];
    let off = t["data_offsets"].as_array()?;
    assert_eq!(t["dtype"], "F32");
    let (a, b) = (off[0].as_u64()? as usize, off[1].as_u64()? as usize);
    Some((8 + len + a, 8 + len + b))
}

/// A checkpoint whose final norm weights are finite but huge (f32::MAX: the loader refuses NaN itself): the
/// logits overflow, the loss is NaN or infinite, and `eval ppl` says so and fails.
#[test]
fn a_nan_or_infinite_loss_is_an_error_naming_the_stage() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    common::copy_dir(&stories_model(), &model);
    let st = model.join("model.safetensors");
    let mut bytes = std::fs::read(&st).unwrap();
    let (a, b) = tensor_bytes(&bytes, "model.norm.weight").expect("the final norm's weight");
    for w in bytes[a..b].chunks_exact_mut(4) {
        w.copy_from_slice(&f32::MAX.to_le_bytes());
    }
    std::fs::write(&st, bytes).unwrap();
    let data = tmp.path().join("story.txt");
    std::fs::write(&data, long_text(2000)).unwrap();
    let out = gaincell(&[
        "eval",
        "ppl",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--ctx",
        "64",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("eval ppl: the mean loss over"), "{err}");
    assert!(err.contains("NaN") || err.contains("infinite"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("perplexity"),
        "no number printed"
    );
}
