//! Inputs that crashed a fuzz target (fuzz/, `cargo +nightly fuzz run shard_meta`): each must now be a clear
//! error. The bytes are the `meta.json` the target wrote (train.bin and val.bin empty).

use gaincell_train::data::{Shards, Split, META};

fn open(meta: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(META), meta).unwrap();
    std::fs::write(dir.path().join(Split::Train.file()), b"").unwrap();
    std::fs::write(dir.path().join(Split::Val.file()), b"").unwrap();
    match Shards::open(dir.path()) {
        Ok(_) => panic!("opened shards whose meta.json cannot be right"),
        Err(e) => e.to_string(),
    }
}

/// `train_tokens × 4` overflowed usize (a panic with overflow checks, a wrong size check without).
#[test]
fn token_count_whose_bytes_overflow_is_an_error() {
    let e = open(
        br#"{"format":"gaincell-tokens/1","vocab_size":512,"dtype":"u32","train_tokens":4611686018427387905,"val_tokens":0,"tokenizer":"gpt2","eot":null,"train_files":[],"val_files":[]}"#,
    );
    assert!(e.contains("more than any file holds"), "{e}");
}

/// A dtype other than u16/u32 was read as u16.
#[test]
fn unknown_dtype_is_an_error() {
    let e = open(
        br#"{"format":"gaincell-tokens/1","vocab_size":512,"dtype":"u8","train_tokens":0,"val_tokens":0,"tokenizer":"gpt2","eot":null,"train_files":[],"val_files":[]}"#,
    );
    assert!(e.contains("dtype `u8`"), "{e}");
}
