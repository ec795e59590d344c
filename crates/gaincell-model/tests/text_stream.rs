//! Streamed tokenization equals tokenizing the whole text, for the tokenizers the project ships: llama2.c's
//! tok512 (stories260K) and GPT-2's, with read blocks small enough that every few words are a cut and multi-byte
//! characters straddle block ends.

use std::path::{Path, PathBuf};

use gaincell_model::text_stream::tokenize_stream;
use gaincell_model::Tokenizer;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Stories with punctuation, doubled spaces, blank lines, tabs and non-ASCII text (which tok512 encodes by
/// byte fallback).
fn text() -> String {
    let mut s = String::new();
    for i in 0..200 {
        s.push_str(&format!(
            "Once upon a time, Lily saw a big dog.  \"Hello!\" she said; the dog — named Rex №{i} — ran.\n"
        ));
        if i % 7 == 0 {
            s.push_str("\n\tThe end?  Ünïcödé: 日本語 テキスト, émoji 🦀 ☃.\u{a0}Done \n\n");
        }
    }
    s
}

fn check(tok: &Tokenizer, text: &str) {
    let whole = tok.encode_document(text).unwrap();
    for block in [1, 2, 3, 5, 17, 64, 1000, 1 << 20] {
        let got = tokenize_stream(tok, text.as_bytes(), block, None, &mut |_| {}).unwrap();
        assert_eq!(got.ids, whole, "block {block}");
        assert_eq!(got.bytes, text.len());
        for m in [1, 100, whole.len() / 2, whole.len() - 1] {
            let got = tokenize_stream(tok, text.as_bytes(), block, Some(m), &mut |_| {}).unwrap();
            assert_eq!(got.ids, whole[..m], "block {block}, max {m}");
            assert_eq!(got.bytes, tok.decode_bytes(&whole[..m]).unwrap().len());
        }
    }
}

#[test]
fn llama2c_tok512_streams_exactly() {
    let tok = Tokenizer::load(
        workspace()
            .join("models/stories260k/software/tokenizer.bin")
            .to_str()
            .unwrap(),
    )
    .unwrap();
    assert!(
        tok.splits_before_space(),
        "tok512 has no merge across a word's end"
    );
    check(&tok, &text());
    // Text after a NUL is ignored, as in the whole-text encoding.
    let with_nul = format!("{}\0 and more words here", &text()[..500]);
    let whole = tok.encode_document(&with_nul).unwrap();
    let got = tokenize_stream(&tok, with_nul.as_bytes(), 7, None, &mut |_| {}).unwrap();
    assert_eq!(got.ids, whole);
    assert_eq!(got.bytes, with_nul.len());
}

#[test]
fn gpt2_streams_exactly() {
    let tok = Tokenizer::gpt2();
    assert!(tok.splits_before_space());
    check(&tok, &text());
}

#[test]
fn a_byte_level_bpe_trained_here_streams_exactly() {
    let t = text();
    let tok = gaincell_model::train_bpe(t.lines(), 300).unwrap();
    assert!(tok.splits_before_space());
    check(&tok, &t);
}
