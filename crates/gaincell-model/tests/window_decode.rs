//! Decoding on a chip whose window is far longer than the sequence (10⁶ tokens) gives bit-identical logits to a
//! window just long enough, in both forms: token by token (the arrays grow with the tokens) and the whole
//! sequence at once.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use gaincell_chip::ChipConfig;
use gaincell_model::{checkpoint, Decoder};

fn chip(window: usize) -> ChipConfig {
    ChipConfig::from_toml_str(
        &format!(
            "base = \"paper-nonlinear\"\n[geometry]\nhead_dim = 8\nwindow = {window}\n\
             [leakage]\nlambda_per_token = 1e-3\n"
        ),
        "test",
    )
    .unwrap()
}

#[test]
fn a_million_token_window_decodes_like_a_short_one() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/stories260k/nonlinear");
    let ids: Vec<u32> = (0..150).map(|i| (i * 37 + 11) % 512).collect();
    let run = |window: usize| {
        let model = checkpoint::load(&dir, Some(chip(window))).unwrap();
        let mut dec = Decoder::new(&model).unwrap();
        let steps: Vec<Vec<u32>> = ids
            .iter()
            .map(|&t| dec.step(t).unwrap().iter().map(|x| x.to_bits()).collect())
            .collect();
        let x = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let whole: Vec<u32> = model
            .forward(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect();
        (steps, whole)
    };
    let (short, huge) = (run(192), run(1_000_000));
    assert!(short.0 == huge.0, "token-by-token logits differ");
    assert!(short.1 == huge.1, "whole-sequence logits differ");
}
