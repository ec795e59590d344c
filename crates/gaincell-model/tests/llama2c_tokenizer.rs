//! The llama2.c tokenizer gives the same ids as an independent transcription of llama2.c's run.c
//! (scripts/llama2c_tokenizer.py, which wrote tests/fixtures/llama2c-tokenizer/ids.json), on tricky strings and
//! on the whole TinyStories validation head (compared through hashes only: the text may not enter the repo).
//! Tests needing the shared model/data folder print "skipped: …" and pass when it is absent.

use std::path::{Path, PathBuf};
use std::time::Instant;

use gaincell_model::Llama2cTokenizer;
use sha2::{Digest, Sha256};

fn fixture() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/llama2c-tokenizer/ids.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn shared(rel: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")).join(rel)
}

fn tok512_path() -> PathBuf {
    shared("models/stories260K/tok512.bin")
}

/// tok512.bin, or None (after saying so) when the shared folder is absent.
fn tok512(test: &str) -> Option<Llama2cTokenizer> {
    let path = tok512_path();
    if !path.exists() {
        eprintln!("skipped {test}: {} not found", path.display());
        return None;
    }
    Some(Llama2cTokenizer::load(&path).unwrap())
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn le_bytes(ids: &[u32]) -> Vec<u8> {
    ids.iter().flat_map(|id| id.to_le_bytes()).collect()
}

#[test]
fn tok512_file_is_the_one_the_fixture_was_made_from() {
    let Some(tok) = tok512("tok512_file_is_the_one_the_fixture_was_made_from") else {
        return;
    };
    let f = fixture();
    let bytes = std::fs::read(tok512_path()).unwrap();
    assert_eq!(
        sha256_hex(&bytes),
        f["tokenizer"]["sha256"].as_str().unwrap()
    );
    assert_eq!(tok.vocab_size(), 512);
    assert_eq!(tok.max_token_length(), 7);
    assert_eq!((tok.bos(), tok.eos()), (1, 2));
    assert_eq!(tok.piece(1), b"\n<s>\n");
    assert_eq!(tok.piece(2), b"\n</s>\n");
    // No duplicate pieces, so a hash map lookup is exactly run.c's bsearch.
    let mut pieces: Vec<&[u8]> = (0..512).map(|id| tok.piece(id)).collect();
    pieces.sort();
    pieces.dedup();
    assert_eq!(pieces.len(), 512, "tok512.bin has duplicate pieces");
    // Only the byte tokens look like "<0x..": the strict `<0xHH>` decode rule equals run.c's sscanf here.
    for id in 0..512u32 {
        let is_byte = (3..259).contains(&id);
        assert_eq!(tok.piece(id).starts_with(b"<0x"), is_byte, "id {id}");
        if is_byte {
            assert_eq!(tok.decode_piece(0, id), vec![(id - 3) as u8]);
        }
    }
}

#[test]
fn tricky_strings_match_run_c() {
    let Some(tok) = tok512("tricky_strings_match_run_c") else {
        return;
    };
    let f = fixture();
    let cases = f["strings"].as_array().unwrap();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    for case in cases {
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            tok.encode(text, true, false),
            ids(&case["bos_ids"]),
            "bos=true {text:?}"
        );
        assert_eq!(
            tok.encode(text, false, true),
            ids(&case["eos_ids"]),
            "eos=true {text:?}"
        );
    }
}

#[test]
fn tinystories_matches_run_c() {
    let Some(tok) = tok512("tinystories_matches_run_c") else {
        return;
    };
    let path = shared("data/eval/tinystories/tinystories_val_head.txt");
    if !path.exists() {
        eprintln!(
            "skipped tinystories_matches_run_c: {} not found",
            path.display()
        );
        return;
    }
    let f = fixture();
    let want = &f["tinystories"];
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        sha256_hex(text.as_bytes()),
        want["file_sha256"].as_str().unwrap(),
        "{} is not the file the fixture was made from",
        path.display()
    );
    // The fixture's rule: split on every "\n\n" (separators dropped, nothing stripped), bos=true, eos=false.
    let paragraphs: Vec<&str> = text.split("\n\n").collect();
    let short: Vec<&str> = want["paragraph_sha256_8"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(
        paragraphs.len() as u64,
        want["paragraphs"].as_u64().unwrap()
    );
    assert_eq!(short.len(), paragraphs.len());

    let start = Instant::now();
    let encoded: Vec<Vec<u32>> = paragraphs
        .iter()
        .map(|p| tok.encode(p, true, false))
        .collect();
    let elapsed = start.elapsed();

    let mut all = Sha256::new();
    let mut total = 0u64;
    let mut bad = Vec::new();
    for (i, ids) in encoded.iter().enumerate() {
        let bytes = le_bytes(ids);
        all.update(&bytes);
        total += ids.len() as u64;
        if sha256_hex(&bytes)[..8] != *short[i] {
            bad.push(i);
        }
    }
    assert!(
        bad.is_empty(),
        "{} paragraphs differ from run.c, first ones: {:?}",
        bad.len(),
        &bad[..bad.len().min(10)]
    );
    assert_eq!(total, want["total_ids"].as_u64().unwrap());
    let all: String = all.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(all, want["ids_sha256"].as_str().unwrap());
    eprintln!(
        "{} paragraphs, {total} ids, encoded in {:.1} ms",
        paragraphs.len(),
        elapsed.as_secs_f64() * 1e3
    );

    // The whole file as one text (no paragraph split) must be fast too: run.c's loop would be O(n²) here.
    let start = Instant::now();
    let one = tok.encode(&text, true, false);
    let elapsed = start.elapsed();
    eprintln!(
        "whole file ({} bytes) as one text: {} ids in {:.1} ms",
        text.len(),
        one.len(),
        elapsed.as_secs_f64() * 1e3
    );
    assert_eq!(tok.decode_bytes(&one).unwrap(), text.as_bytes());
    if !cfg!(debug_assertions) {
        assert!(elapsed.as_secs_f64() < 1.0, "took {elapsed:?}");
    }
}

#[test]
fn decode_round_trips() {
    let Some(tok) = tok512("decode_round_trips") else {
        return;
    };
    let f = fixture();
    for case in f["strings"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        // run.c sees a C string: the text ends at the first NUL.
        let c_text = text.split('\0').next().unwrap();
        // With BOS the dummy-prefix space is stripped again: exact round trip.
        let with_bos = tok.decode_bytes(&ids(&case["bos_ids"])).unwrap();
        assert_eq!(with_bos, c_text.as_bytes(), "bos {text:?}");
        // Without BOS the dummy prefix stays (EOS adds nothing).
        let without = tok.decode_bytes(&ids(&case["eos_ids"])).unwrap();
        let want = if c_text.is_empty() {
            String::new()
        } else {
            format!(" {c_text}")
        };
        assert_eq!(without, want.as_bytes(), "eos {text:?}");
    }
    let err = tok.decode_bytes(&[1, 512]).unwrap_err();
    assert!(err.contains("512") && err.contains("out of range"), "{err}");
}

#[test]
fn bad_files_are_clear_errors() {
    let real = match std::fs::read(tok512_path()) {
        Ok(b) => b,
        Err(_) => {
            eprintln!(
                "skipped bad_files_are_clear_errors: {} not found",
                tok512_path().display()
            );
            return;
        }
    };
    let check = |bytes: &[u8], needles: &[&str]| {
        let err = Llama2cTokenizer::from_bytes(bytes, "tok512.bin").unwrap_err();
        for n in needles {
            assert!(err.contains(n), "{n:?} not in: {err}");
        }
        assert!(
            err.starts_with("tok512.bin: ") && !err.contains('\n'),
            "{err}"
        );
    };
    // Cut in the middle of entry 300's piece (entry 0 starts at byte 4).
    let mut at = 4;
    for _ in 0..300 {
        let len = i32::from_le_bytes(real[at + 4..at + 8].try_into().unwrap()) as usize;
        at += 8 + len;
    }
    let len300 = i32::from_le_bytes(real[at + 4..at + 8].try_into().unwrap()) as usize;
    assert!(len300 >= 2);
    check(&real[..at + 9], &["truncated", "entry 300", "piece"]);
    // Cut inside entry 300's score/length.
    check(
        &real[..at + 5],
        &["truncated", "entry 300", "score and length"],
    );
    // Empty file; header only.
    check(&[], &["only 0 bytes", "header"]);
    check(&real[..4], &["no entries"]);
    // A negative length in entry 5.
    let mut neg = real.clone();
    let mut at = 4;
    for _ in 0..5 {
        let len = i32::from_le_bytes(neg[at + 4..at + 8].try_into().unwrap()) as usize;
        at += 8 + len;
    }
    neg[at + 4..at + 8].copy_from_slice(&(-3i32).to_le_bytes());
    check(&neg, &["entry 5", "negative piece length -3"]);
    // A length above max_token_length (7).
    let mut long = real.clone();
    long[at + 4..at + 8].copy_from_slice(&1000i32.to_le_bytes());
    check(&long, &["entry 5", "1000", "max_token_length 7"]);
    // A missing file.
    let err = Llama2cTokenizer::load(Path::new("/nonexistent/tok512.bin")).unwrap_err();
    assert!(
        err.contains("/nonexistent/tok512.bin") && err.contains("cannot read"),
        "{err}"
    );
}
