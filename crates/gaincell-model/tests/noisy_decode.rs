//! A noisy chip (every variation and noise source on) decodes token by token as it computes the whole sequence:
//! the layer index and the grouped-query head layout reach the kernels of both forms, which draw alike (all
//! tokens' logits agree but for a readout tie or two).

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use gaincell_chip::ChipConfig;
use gaincell_model::{checkpoint, Decoder};

fn chip(noise: bool) -> ChipConfig {
    let sources = "[variation]\nseed = 3\ncell_gain_sigma = 0.05\ncell_offset_sigma_v = 0.01\n\
                   c2p_gain_sigma = 0.05\nc2p_threshold_sigma_ua = 0.3\ncounter_gain_sigma = 0.05\n\
                   counter_threshold_sigma_ua = 0.1\n[noise]\nseed = 4\nwrite_sigma_v = 0.01\n\
                   score_read_sigma_ua = 0.3\nvalue_read_sigma_ua = 0.1\n";
    ChipConfig::from_toml_str(
        &format!(
            "base = \"paper-nonlinear\"\n[geometry]\nhead_dim = 8\nwindow = 64\n\
             [leakage]\nlambda_per_token = 1e-3\n{}",
            if noise { sources } else { "" }
        ),
        "test",
    )
    .unwrap()
}

fn logits(noise: bool, ids: &[u32]) -> (Vec<f32>, Vec<f32>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/stories260k/nonlinear");
    let model = checkpoint::load(&dir, Some(chip(noise))).unwrap();
    assert!(model.config.n_kv_head() < model.config.n_head(), "GQA");
    let mut dec = Decoder::new(&model).unwrap();
    let steps: Vec<f32> = ids.iter().flat_map(|&t| dec.step(t).unwrap()).collect();
    let x = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let whole = model
        .forward(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    (steps, whole)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn a_noisy_chip_decodes_like_its_parallel_form() {
    let ids: Vec<u32> = (0..100).map(|i| (i * 37 + 11) % 512).collect();
    let (steps, whole) = logits(true, &ids);
    // The two forms sum scores and tile outputs in different orders, so a value that lands within rounding of a
    // 5-bit counter level (a readout tie, which the kernel tests count) may read out one level apart: that
    // moves one token's logits. A draw keyed wrongly (layer, head layout, position) moves most of them.
    let v = steps.len() / ids.len();
    let apart: Vec<(usize, f32)> = (0..ids.len())
        .map(|t| {
            (
                t,
                max_abs_diff(&steps[t * v..(t + 1) * v], &whole[t * v..(t + 1) * v]),
            )
        })
        .filter(|(_, d)| *d >= 1e-3)
        .collect();
    assert!(
        apart.len() <= 2,
        "token by token vs whole sequence: tokens with |Δ logit| ≥ 1e-3 (token, Δ): {apart:?}"
    );
    let (clean, _) = logits(false, &ids);
    let n = max_abs_diff(&steps, &clean);
    assert!(n > 1e-2, "the noise reaches the logits: {n}");
}
