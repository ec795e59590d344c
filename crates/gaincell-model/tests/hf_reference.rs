//! Known answers from HuggingFace transformers: a random tiny GPT-2 saved by scripts/make_gpt2_fixture.py, and
//! the logits HF computed for a fixed input. Our loader and forward must reproduce them.

mod common;

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use common::max_abs_diff;
use gaincell_chip::ChipConfig;
use gaincell_model::{checkpoint, Decoder, Model};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn reference() -> (Tensor, Tensor) {
    let t =
        candle_core::safetensors::load(fixture("tiny-gpt2/reference.safetensors"), &Device::Cpu)
            .unwrap();
    let ids = t["input_ids"].to_dtype(candle_core::DType::U32).unwrap();
    (ids, t["logits"].clone())
}

fn software() -> ChipConfig {
    ChipConfig::load("software").unwrap()
}

#[test]
fn logits_match_transformers_for_both_checkpoint_layouts() {
    let (ids, want) = reference();
    for dir in ["tiny-gpt2", "tiny-gpt2-prefixed"] {
        let model = checkpoint::load(&fixture(dir), Some(software())).unwrap();
        let got = model.forward(&ids).unwrap();
        let e = max_abs_diff(&got, &want);
        assert!(e < 1e-4, "{dir}: logits differ from transformers by {e}");
    }
}

#[test]
fn incremental_software_decoding_matches_the_parallel_forward() {
    let (ids, _) = reference();
    let model = checkpoint::load(&fixture("tiny-gpt2"), Some(software())).unwrap();
    check_incremental(&model, &ids.get(0).unwrap().to_vec1::<u32>().unwrap());
}

#[test]
fn incremental_chip_decoding_matches_the_parallel_forward_past_the_window() {
    // A window of 32 tokens in 16-token sub-tiles, stronger leakage: 100 tokens wrap the ring buffer three times.
    let chip = ChipConfig::from_toml_str(
        "base = \"paper-nonlinear\"\n[geometry]\nwindow = 32\ntile_rows = 16\n[leakage]\nlambda_per_token = 1e-3\n",
        "test",
    )
    .unwrap();
    let model = checkpoint::load(&fixture("tiny-gpt2"), Some(chip)).unwrap();
    let ids: Vec<u32> = (0..100u32).map(|i| (i * 37 + 11) % 512).collect();
    check_incremental(&model, &ids);
}

fn check_incremental(model: &Model, ids: &[u32]) {
    let parallel = model
        .forward(
            &Tensor::new(ids, &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap(),
        )
        .unwrap();
    let mut dec = Decoder::new(model).unwrap();
    for (t, &id) in ids.iter().enumerate() {
        let step = dec.step(id).unwrap();
        let row: Vec<f32> = parallel.get(0).unwrap().get(t).unwrap().to_vec1().unwrap();
        let e = step
            .iter()
            .zip(&row)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            e < 1e-4,
            "{}: token {t}: incremental logits differ by {e}",
            model.chip.name
        );
    }
}

#[test]
fn our_checkpoints_round_trip_with_chip_and_scalers() {
    let chip = ChipConfig::load("paper-linear").unwrap();
    let model = checkpoint::load(&fixture("tiny-gpt2"), Some(chip)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    checkpoint::save(&model, dir.path(), serde_json::json!({"note": "test"})).unwrap();
    let back = checkpoint::load(dir.path(), None).unwrap();
    assert_eq!(back.chip, model.chip);
    let (ids, _) = reference();
    let e = max_abs_diff(&back.forward(&ids).unwrap(), &model.forward(&ids).unwrap());
    assert_eq!(e, 0.0);
    assert_eq!(back.scalers.len(), 2, "every layer carries its scalers");
}
