//! Inputs that crashed a fuzz target (fuzz/: `model_config`, `checkpoint_sidecar`): each must now be a clear
//! error, never a panic, an overflow or an allocation sized by the file.

use gaincell_model::{checkpoint, ModelConfig};

/// A folder holding only `name` with `bytes`.
fn folder_with(name: &str, bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), bytes).unwrap();
    dir
}

/// `parameters()` of a shape that passed validation overflowed (`bench ppl`, `convert` print it).
const GPT2_PARAMS_OVERFLOW: &[u8] =
    br#"{"model_type":"gpt2","vocab_size":8,"n_positions":8,"n_embd":4294967296,"n_layer":1,"n_head":1}"#;

#[test]
fn config_whose_parameter_count_overflows_is_an_error() {
    let text = std::str::from_utf8(GPT2_PARAMS_OVERFLOW).unwrap();
    let e = ModelConfig::from_json(text, "config.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("more parameters than"), "{e}");
    let dir = folder_with("config.json", GPT2_PARAMS_OVERFLOW);
    let e = checkpoint::read_config(&dir.path().display().to_string())
        .unwrap_err()
        .to_string();
    assert!(e.contains("more parameters than"), "{e}");
}

#[test]
fn llama_config_whose_parameter_count_overflows_is_an_error() {
    let text = r#"{"model_type":"llama","vocab_size":8,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,
        "num_attention_heads":2,"head_dim":4611686018427387904,"max_position_embeddings":1,"rms_norm_eps":1e-5}"#;
    let e = ModelConfig::from_json(text, "config.json")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("more parameters than") || e.contains("rotary table"),
        "{e}"
    );
}

/// `max_position_embeddings` sized the rotary table allocated at load (a huge value: an abort, not an error).
#[test]
fn config_whose_rotary_table_is_huge_is_an_error() {
    let text = r#"{"model_type":"llama","vocab_size":8,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,
        "num_attention_heads":2,"max_position_embeddings":1099511627776,"rms_norm_eps":1e-5}"#;
    let e = ModelConfig::from_json(text, "config.json")
        .unwrap_err()
        .to_string();
    assert!(e.contains("rotary table"), "{e}");
}

/// A sidecar's model shape was returned unchecked: `n_head` 0 divided by zero in `head_dim()`.
const SIDECAR_N_HEAD_0: &[u8] = br#"{"format":"gaincell-checkpoint/1","model":{"model_type":"gpt2","vocab_size":8,"n_positions":8,"n_embd":8,"n_layer":1,"n_head":0},"chip":""}"#;

#[test]
fn sidecar_with_an_invalid_model_is_an_error() {
    let dir = folder_with(checkpoint::SIDECAR, SIDECAR_N_HEAD_0);
    let e = checkpoint::read_config(&dir.path().display().to_string())
        .unwrap_err()
        .to_string();
    assert!(e.contains("gaincell.json") && e.contains("n_head"), "{e}");
    let e = checkpoint::load(dir.path(), None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("gaincell.json") && e.contains("n_head"), "{e}");
}

/// Found by the `hf_tokenizer` fuzz target (crash-8a44fcec52c331b1b439bf1c9f8f198e2175b503): a JSON syntax
/// error inside `decoder` made the tokenizers library panic (`expect("Helper")`) instead of returning its error.
#[test]
fn tokenizer_json_with_a_syntax_error_in_the_decoder_is_an_error() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz/tokenizer-decoder-syntax-error.json");
    let e = match gaincell_model::Tokenizer::load(&path.display().to_string()) {
        Ok(_) => panic!("loaded a tokenizer.json that is not JSON"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("not valid JSON"), "{e}");
}
