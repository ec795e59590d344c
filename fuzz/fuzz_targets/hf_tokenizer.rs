//! HuggingFace `tokenizer.json` files (`--tokenizer FILE`, a model folder's tokenizer): `Tokenizer::load` on the
//! input written as `tokenizer.json`, then encoding and decoding a short text.

#![no_main]

use gaincell_model::Tokenizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = gaincell_fuzz::temp_file("tokenizer.json", data);
    let Ok(t) = Tokenizer::load(&path.display().to_string()) else {
        return;
    };
    let _ = (t.vocab_size(), t.bos(), t.eot());
    if let Ok(ids) = t.encode("Once upon a time, Lily saw a big dog.\n") {
        let _ = t.decode(&ids);
        let _ = t.decode_bytes(&ids);
    }
    let _ = t.encode_document("A b c");
    let _ = t.decode(&[0, 1, 2, 3, u32::MAX]);
});
