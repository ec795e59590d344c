//! `gaincell tokenizer train` / `encode` from the outside.

use std::process::{Command, Output};

use gaincell_model::Tokenizer;

fn gaincell(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gaincell"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn trains_a_bpe_of_the_asked_size_that_round_trips_text() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    std::fs::create_dir(&corpus).unwrap();
    let line = "The quick brown fox jumps over the lazy dog; the dog sleeps, the fox runs. 1234 ünïcödé 🦊\n";
    std::fs::write(corpus.join("a.txt"), line.repeat(200)).unwrap();
    std::fs::write(
        corpus.join("b.txt"),
        "Another book, another story about foxes and dogs.\n".repeat(50),
    )
    .unwrap();
    std::fs::write(corpus.join("skip.bin"), [0xffu8, 0xfe]).unwrap(); // not .txt: ignored
    let out_path = tmp.path().join("tok/tokenizer.json");
    let out = gaincell(&[
        "tokenizer",
        "train",
        "--input",
        corpus.to_str().unwrap(),
        "--vocab",
        "300",
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tok = Tokenizer::load(out_path.to_str().unwrap()).unwrap();
    assert_eq!(tok.vocab_size(), 300);
    assert_eq!(tok.eot(), Some(0), "<|endoftext|> is id 0");
    let text = "the lazy fox, 5678 — ünïcödé 🦊 unseen words too";
    let ids = tok.encode(text).unwrap();
    assert_eq!(tok.decode(&ids).unwrap(), text);
    // Merges learnt: the corpus's frequent words take fewer tokens than bytes.
    assert!(tok.encode("the fox").unwrap().len() < "the fox".len());

    let enc = gaincell(&[
        "tokenizer",
        "encode",
        "--tokenizer",
        out_path.to_str().unwrap(),
        "fox",
    ]);
    assert!(enc.status.success());
    assert!(String::from_utf8_lossy(&enc.stdout).contains("bytes"));
}

#[test]
fn bad_inputs_are_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let empty_dir = tmp.path().join("empty");
    std::fs::create_dir(&empty_dir).unwrap();
    let out = tmp.path().join("t.json");
    let text = tmp.path().join("t.txt");
    std::fs::write(&text, "some text\n").unwrap();
    for (args, says) in [
        (vec!["--input", "/nonexistent/corpus"], "no such file"),
        (vec!["--input", empty_dir.to_str().unwrap()], "no .txt"),
        (
            vec!["--input", text.to_str().unwrap(), "--vocab", "100"],
            "at least 258",
        ),
    ] {
        let mut a = vec!["tokenizer", "train", "--out", out.to_str().unwrap()];
        a.extend(args);
        let o = gaincell(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(!out.exists(), "nothing written on error");
    }
}
