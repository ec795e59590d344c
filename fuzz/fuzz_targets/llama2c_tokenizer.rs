//! llama2.c `tokenizer.bin` (`tok512.bin`, …): `Llama2cTokenizer::from_bytes`, and `Tokenizer::load` on the
//! input written as `tokenizer.bin`, then encoding and decoding a short text.

#![no_main]

use gaincell_model::{Llama2cTokenizer, Tokenizer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(t) = Llama2cTokenizer::from_bytes(data, "tokenizer.bin") else {
        return;
    };
    let n = t.vocab_size() as u32;
    let _ = (t.max_token_length(), t.bos(), t.eos(), t.token_id(b" "));
    let ids = t.encode(
        "Once upon a time, \u{1F600} Lily saw a big dog.",
        true,
        true,
    );
    assert!(
        ids.iter().all(|&i| i < n),
        "encoded an id outside the vocabulary"
    );
    let _ = t.decode_bytes(&ids);
    for &id in &ids {
        let _ = (t.piece(id), t.score(id), t.decode_piece(t.bos(), id));
    }
    let _ = t.decode_bytes(&[n, u32::MAX]);
    let _ = t.encode("", false, false);
    let path = gaincell_fuzz::temp_file("tokenizer.bin", data);
    let t = Tokenizer::load(&path.display().to_string()).expect("from_bytes accepted it");
    let _ = (t.vocab_size(), t.bos(), t.eot(), t.encode("A b c"));
});
