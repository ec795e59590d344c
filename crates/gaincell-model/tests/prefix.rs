//! Prefix reuse gives the logits of the plain forward: rows picked from a padded batch, and continuations run
//! after a cached prefix, on softmax (full and windowed) and gain-cell chips, past the window.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use gaincell_chip::ChipConfig;
use gaincell_model::{checkpoint, Model};

fn model(chip: ChipConfig) -> Model {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-gpt2");
    checkpoint::load(&dir, Some(chip)).unwrap()
}

fn chips() -> Vec<ChipConfig> {
    let toml = |s: &str| ChipConfig::from_toml_str(s, "test").unwrap();
    vec![
        ChipConfig::load("software").unwrap(),
        toml("base = \"software\"\n[geometry]\nwindow = 16\ntile_rows = 16\n"),
        ChipConfig::load("paper-linear").unwrap(),
        ChipConfig::load("paper-nonlinear").unwrap(),
        // 32-token window in 16-token sub-tiles with strong leakage: 90 tokens wrap the ring buffer.
        toml("base = \"paper-nonlinear\"\n[geometry]\nwindow = 32\ntile_rows = 16\n[leakage]\nlambda_per_token = 1e-3\n"),
    ]
}

fn ids(n: usize, seed: u32) -> Vec<u32> {
    (0..n as u32)
        .map(|i| (i * 37 + seed * 101 + 11) % 512)
        .collect()
}

/// Logits `[T, V]` of the plain forward of one sequence.
fn forward(m: &Model, ids: &[u32]) -> Vec<Vec<f32>> {
    let x = Tensor::new(ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    m.forward(&x)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2()
        .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn picked_rows_of_a_padded_batch_equal_the_forward() {
    for chip in chips() {
        let m = model(chip);
        let seqs = [ids(40, 1), ids(7, 2), ids(23, 3)];
        let rows = vec![vec![0, 17, 39], vec![6], vec![3, 4, 22]];
        let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
        let got: Vec<Vec<f32>> = m.logits_at(&refs, &rows).unwrap().to_vec2().unwrap();
        let mut n = 0;
        for (s, r) in seqs.iter().zip(&rows) {
            let want = forward(&m, s);
            for &t in r {
                let e = max_diff(&got[n], &want[t]);
                assert!(e < 1e-4, "{}: row {t}: {e}", m.chip.name);
                n += 1;
            }
        }
    }
}

#[test]
fn continuations_after_a_cached_prefix_equal_the_forward_of_the_whole_sequence() {
    for chip in chips() {
        let m = model(chip);
        let prefixes = [ids(50, 4), ids(9, 5)];
        let refs: Vec<&[u32]> = prefixes.iter().map(|s| s.as_slice()).collect();
        let (head, caches) = m.prefill(&refs, &[vec![49], vec![0, 8]]).unwrap();
        let head: Vec<Vec<f32>> = head.to_vec2().unwrap();
        assert_eq!(caches[0].len(), 50);
        // Three continuations of the first prefix, one of the second, different lengths, in one batch.
        let conts = [ids(40, 6), ids(3, 7), ids(1, 8), ids(30, 9)];
        let of = [0, 0, 0, 1];
        let items: Vec<_> = conts
            .iter()
            .zip(of)
            .map(|(c, p)| (&caches[p], c.as_slice()))
            .collect();
        let rows: Vec<Vec<usize>> = conts.iter().map(|c| (0..c.len()).collect()).collect();
        let got: Vec<Vec<f32>> = m.extend(&items, &rows).unwrap().to_vec2().unwrap();
        let whole0 = forward(&m, &prefixes[0]);
        assert!(max_diff(&head[0], &whole0[49]) < 1e-4);
        let mut n = 0;
        for (c, p) in conts.iter().zip(of) {
            let whole: Vec<u32> = prefixes[p].iter().chain(c).copied().collect();
            let want = forward(&m, &whole);
            for t in 0..c.len() {
                let e = max_diff(&got[n], &want[prefixes[p].len() + t]);
                assert!(
                    e < 1e-4,
                    "{}: continuation of prefix {p}, token {t}: {e}",
                    m.chip.name
                );
                n += 1;
            }
        }
    }
}

#[test]
fn bad_requests_are_refused_with_a_reason() {
    let m = model(ChipConfig::load("software").unwrap());
    let s = ids(10, 1);
    let err = m.logits_at(&[&s], &[vec![10]]).unwrap_err().to_string();
    assert!(err.contains("row 10"), "{err}");
    let long = ids(129, 1);
    let err = m.logits_at(&[&long], &[vec![0]]).unwrap_err().to_string();
    assert!(err.contains("128 positions"), "{err}");
    let (_, caches) = m.prefill(&[&ids(100, 1)], &[vec![0]]).unwrap();
    let err = m
        .extend(&[(&caches[0], &ids(29, 2))], &[vec![0]])
        .unwrap_err()
        .to_string();
    assert!(err.contains("from position 100"), "{err}");
}
