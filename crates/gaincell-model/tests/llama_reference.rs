//! The Llama family against HuggingFace transformers (fixtures of `scripts/make_llama_fixture.py`): a random tiny
//! `LlamaForCausalLM` with grouped-query attention and an untied head (one file and sharded), a `MistralForCausalLM`
//! with a native sliding window and a tied head; the incremental and prefix forms against the parallel one on
//! softmax and gain-cell chips; our checkpoints round-tripping; and bad configs refused.

mod common;

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use common::max_abs_diff;
use gaincell_chip::ChipConfig;
use gaincell_model::{checkpoint, Decoder, Model, ModelConfig};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn reference(name: &str) -> (Tensor, Tensor, Tensor) {
    let t =
        candle_core::safetensors::load(fixture(name).join("reference.safetensors"), &Device::Cpu)
            .unwrap();
    let ids = t["input_ids"].to_dtype(candle_core::DType::U32).unwrap();
    (ids, t["logits"].clone(), t["logits_incremental"].clone())
}

fn software() -> ChipConfig {
    ChipConfig::load("software").unwrap()
}

/// A paper-nonlinear chip with the fixtures' 8-row heads, a 16-token window in 8-token sub-tiles (the 29-token
/// inputs wrap it) and strong leakage.
fn small_nonlinear() -> ChipConfig {
    ChipConfig::from_toml_str(
        "base = \"paper-nonlinear\"\n[geometry]\nhead_dim = 8\nwindow = 16\ntile_rows = 8\n[leakage]\nlambda_per_token = 1e-3\n",
        "test",
    )
    .unwrap()
}

#[test]
fn logits_match_transformers_one_file_and_sharded() {
    let (ids, logits, _) = reference("tiny-llama");
    for folder in ["tiny-llama", "tiny-llama-sharded"] {
        let m = checkpoint::load(&fixture(folder), Some(software())).unwrap();
        assert_eq!(m.config.family(), "llama");
        assert_eq!((m.config.n_head(), m.config.n_kv_head()), (6, 2), "GQA");
        let ours = m.forward(&ids).unwrap();
        let d = max_abs_diff(&ours, &logits);
        assert!(d < 1e-4, "{folder}: max |Δ logit| {d}");
    }
}

#[test]
fn mistral_sliding_window_and_tied_head_match_transformers() {
    let (ids, logits, incremental) = reference("tiny-mistral");
    let m = checkpoint::load(&fixture("tiny-mistral"), None).unwrap();
    assert_eq!(m.config.native_window(), Some(8));
    let d = max_abs_diff(&m.forward(&ids).unwrap(), &logits);
    assert!(d < 1e-4, "parallel: max |Δ logit| {d}");
    let d = max_abs_diff(&decode(&m, &row(&ids, 0)), &incremental.squeeze(0).unwrap());
    assert!(d < 1e-4, "incremental: max |Δ logit| {d}");
}

fn row(ids: &Tensor, b: usize) -> Vec<u32> {
    ids.get(b).unwrap().to_vec1().unwrap()
}

/// Logits `[T, V]` of decoding `ids` one token at a time.
fn decode(m: &Model, ids: &[u32]) -> Tensor {
    let mut dec = Decoder::new(m).unwrap();
    let rows: Vec<Tensor> = ids
        .iter()
        .map(|&t| Tensor::new(dec.step(t).unwrap(), &Device::Cpu).unwrap())
        .collect();
    Tensor::stack(&rows, 0).unwrap()
}

#[test]
fn incremental_decoding_matches_transformers_kv_cache_and_our_parallel_form() {
    let (ids, logits, incremental) = reference("tiny-llama");
    let m = checkpoint::load(&fixture("tiny-llama"), None).unwrap();
    let seq = row(&ids, 0);
    let ours = decode(&m, &seq);
    let d = max_abs_diff(&ours, &incremental.squeeze(0).unwrap());
    assert!(d < 1e-4, "vs HF's KV cache: {d}");
    let d = max_abs_diff(&ours, &logits.get(0).unwrap());
    assert!(d < 1e-4, "vs the parallel form: {d}");
}

#[test]
fn incremental_equals_parallel_on_a_gain_cell_chip_past_the_window_with_gqa() {
    let (ids, _, _) = reference("tiny-llama");
    for chip in [
        small_nonlinear(),
        ChipConfig::from_toml_str(
            "base = \"paper-linear\"\n[geometry]\nhead_dim = 8\nwindow = 16\ntile_rows = 8\n",
            "test",
        )
        .unwrap(),
    ] {
        let m = checkpoint::load(&fixture("tiny-llama"), Some(chip)).unwrap();
        assert!(m.attention.is_gain_cell());
        assert_eq!(
            m.scalers[0].k.a.dims(),
            [2],
            "one k scaler per key/value head"
        );
        assert_eq!(m.scalers[0].q.a.dims(), [6], "one q scaler per query head");
        let seq = row(&ids, 1);
        let parallel = m
            .forward(
                &Tensor::new(seq.as_slice(), &Device::Cpu)
                    .unwrap()
                    .unsqueeze(0)
                    .unwrap(),
            )
            .unwrap()
            .squeeze(0)
            .unwrap();
        let d = max_abs_diff(&decode(&m, &seq), &parallel);
        assert!(d < 1e-4, "{}: incremental vs parallel {d}", m.chip.name);
    }
}

#[test]
fn prefix_continuations_equal_the_forward_for_llama() {
    let (ids, _, _) = reference("tiny-llama");
    for chip in [software(), small_nonlinear()] {
        let m = checkpoint::load(&fixture("tiny-llama"), Some(chip)).unwrap();
        let seq = row(&ids, 0);
        let whole = m
            .forward(
                &Tensor::new(seq.as_slice(), &Device::Cpu)
                    .unwrap()
                    .unsqueeze(0)
                    .unwrap(),
            )
            .unwrap()
            .squeeze(0)
            .unwrap();
        let (_, caches) = m.prefill(&[&seq[..20]], &[vec![19]]).unwrap();
        let rows: Vec<usize> = (0..9).collect();
        let cont = m.extend(&[(&caches[0], &seq[20..])], &[rows]).unwrap();
        let d = max_abs_diff(&cont, &whole.narrow(0, 20, 9).unwrap());
        assert!(d < 1e-4, "{}: continuation vs forward {d}", m.chip.name);
    }
}

#[test]
fn llama_checkpoints_round_trip_with_chip_and_scalers() {
    let mut m = checkpoint::load(&fixture("tiny-llama"), Some(small_nonlinear())).unwrap();
    m.scalers[1].v.b = (m.scalers[1].v.b.clone() + 0.01).unwrap();
    let out = tempfile::tempdir().unwrap();
    checkpoint::save(&m, out.path(), serde_json::Value::Null).unwrap();
    let back = checkpoint::load(out.path(), None).unwrap();
    assert_eq!(back.config, m.config);
    assert_eq!(back.chip.name, m.chip.name);
    let (ids, _, _) = reference("tiny-llama");
    assert_eq!(
        max_abs_diff(&m.forward(&ids).unwrap(), &back.forward(&ids).unwrap()),
        0.0
    );
    // The config.json we write is one HF reads as a Llama.
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(j["architectures"][0], "LlamaForCausalLM");
    assert_eq!(j["num_key_value_heads"], 2);
}

#[test]
fn random_llama_shapes_build_and_count_their_parameters() {
    let c = ModelConfig::named("stories260K").unwrap();
    let m = Model::random(c.clone(), software(), 3).unwrap();
    let n: usize = m.named_tensors().iter().map(|(_, t)| t.elem_count()).sum();
    assert_eq!(n, c.parameters());
    assert_eq!(n, 260_032, "stories260K's parameter count");
}

#[test]
fn bad_llama_configs_are_one_clear_error_each() {
    let base = std::fs::read_to_string(fixture("tiny-llama").join("config.json")).unwrap();
    let with = |k: &str, v: serde_json::Value| {
        let mut j: serde_json::Value = serde_json::from_str(&base).unwrap();
        j[k] = v;
        ModelConfig::from_json(&j.to_string(), "config.json")
            .unwrap_err()
            .to_string()
    };
    let e = with("num_key_value_heads", 4.into());
    assert!(
        e.contains("num_key_value_heads (4) must divide num_attention_heads (6)"),
        "{e}"
    );
    let mut j: serde_json::Value = serde_json::from_str(&base).unwrap();
    j.as_object_mut().unwrap().remove("head_dim");
    j["hidden_size"] = 50.into();
    let e = ModelConfig::from_json(&j.to_string(), "config.json")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("hidden_size (50) is not a multiple of num_attention_heads (6)"),
        "{e}"
    );
    let e = with("model_type", "gpt_neox".into());
    assert!(e.contains("model_type `gpt_neox`"), "{e}");
    let e = with("hidden_act", "gelu".into());
    assert!(e.contains("SwiGLU"), "{e}");
}
