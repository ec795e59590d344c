//! Refresh (docs/chip-model.md#refresh): a column rewritten every N tokens is read at age (t − j) mod N and, with
//! write noise, holds the draws of its latest rewrite; the parallel and incremental forms and the reference agree.

mod common;

use common::*;
use gaincell_attn::{gain_cell_forward, reference, GainCellParams, KvArray, Probes, Shape};
use gaincell_chip::draw::{Source, Stream};
use gaincell_chip::ChipConfig;

fn incremental(chip: &ChipConfig, x: &Inputs) -> Vec<f32> {
    let p = GainCellParams::new(chip).unwrap();
    let Shape { heads, t, d } = x.shape;
    let mut out = vec![0.0; x.shape.len()];
    for h in 0..heads {
        let mut arrays = KvArray::at(
            &p,
            gaincell_attn::HeadSite {
                head: h,
                kv_head: h,
                ..Default::default()
            },
        );
        for i in 0..t {
            let row = (h * t + i) * d..(h * t + i + 1) * d;
            arrays
                .step(
                    &x.q[row.clone()],
                    &x.k[row.clone()],
                    &x.v[row.clone()],
                    &mut out[row],
                )
                .unwrap();
        }
    }
    out
}

fn check(chip: &ChipConfig, shape: Shape, seed: u64) {
    let x = inputs(shape, seed, false);
    let parallel = fast(chip, &x).out;
    let inc = incremental(chip, &x);
    let r = reference::gain_cell(chip, shape, &x.q, &x.k, &x.v);
    let step = chip.output.quantizer().step as f64;
    let p64: Vec<f64> = parallel.iter().map(|&x| x as f64).collect();
    let ties = assert_out_close(&inc, &p64, &r.margin, step, 1e-5, 1e-4);
    let ties_ref = assert_out_close(&parallel, &r.out, &r.margin, step, 1e-4, 1e-4);
    eprintln!("{}: {ties} / {ties_ref} readout ties", chip.name);
}

#[test]
fn both_forms_refresh_alike() {
    let leaky = "[geometry]\nwindow = 96\ntile_rows = 32\nhead_dim = 16\n[leakage]\nlambda_per_token = 0.02";
    let c = chip(
        "paper-nonlinear",
        &format!("{leaky}\n[refresh]\nevery_tokens = 10"),
    );
    check(&c, Shape::new(2, 150, 16), 1);
    // With write noise every rewrite draws anew; with cell variation too.
    let noisy = "[noise]\nseed = 3\nwrite_sigma_v = 0.02\nscore_read_sigma_ua = 0.3\n\
                 [variation]\ncell_gain_sigma = 0.05";
    let c = chip(
        "paper-nonlinear",
        &format!("{leaky}\n[refresh]\nevery_tokens = 7\n{noisy}"),
    );
    check(&c, Shape::new(2, 150, 16), 2);
    let c = chip(
        "paper-linear",
        &format!("{leaky}\n[refresh]\nmax_age_fraction = 0.1\n{noisy}"),
    );
    assert_eq!(c.refresh_period(), Some(6));
    check(&c, Shape::new(2, 130, 16), 3);
}

#[test]
fn refresh_recovers_what_leakage_loses() {
    // A strong leak: the refreshed chip stays closer to the leak-free one.
    let base = "[geometry]\nwindow = 128\nhead_dim = 16";
    let ideal = chip(
        "paper-linear",
        &format!("{base}\n[leakage]\nenabled = false"),
    );
    let leak = format!("{base}\n[leakage]\nlambda_per_token = 0.05");
    let leaky = chip("paper-linear", &leak);
    let refreshed = chip(
        "paper-linear",
        &format!("{leak}\n[refresh]\nevery_tokens = 4"),
    );
    let x = inputs(Shape::new(2, 128, 16), 5, false);
    let target = fast(&ideal, &x).out;
    let err = |c: &ChipConfig| -> f64 {
        let o = fast(c, &x).out;
        o.iter()
            .zip(&target)
            .map(|(a, b)| ((a - b) as f64).abs())
            .sum()
    };
    let (e_leak, e_ref) = (err(&leaky), err(&refreshed));
    assert!(e_ref < 0.5 * e_leak, "refresh {e_ref} vs leak {e_leak}");
}

/// One dim, one head, linear ideal chip, λ = 0.1, rewritten every 2 tokens, write noise σ = 0.01: the score of
/// query 3 on key 0 is q·19.3·e^(−0.1·1)·(0.2 + 0.01·z), z the draw of key 0's second write (writes = 1).
#[test]
fn known_answer_of_a_refreshed_column() {
    let c = chip(
        "paper-linear-ideal",
        "[geometry]\nhead_dim = 1\nwindow = 4\ntile_rows = 4\n[leakage]\nenabled = true\n\
         lambda_per_token = 0.1\n[refresh]\nevery_tokens = 2\n[noise]\nseed = 6\nwrite_sigma_v = 0.01",
    );
    let shape = Shape::new(1, 4, 1);
    let x = Inputs {
        shape,
        q: vec![1.0; 4],
        k: vec![0.65; 4],
        v: vec![0.65; 4],
    };
    let p = GainCellParams::new(&c).unwrap();
    let (mut s, mut phi, mut out) = (vec![0.0; 16], vec![0.0; 16], vec![0.0; 4]);
    let probes = Probes {
        scores: &mut s,
        phi: &mut phi,
    };
    gain_cell_forward(&p, shape, &x.q, &x.k, &x.v, &mut out, Some(probes)).unwrap();
    let z = |j: u64, writes: u64| {
        Stream::new(6, Source::Write)
            .at(0)
            .at(0)
            .at(0)
            .at(j)
            .at(writes)
            .normal(0) as f64
    };
    for (t, j) in [(3usize, 0usize), (3, 1), (2, 0), (1, 0), (3, 3)] {
        let (age, writes) = ((t - j) % 2, (t - j) / 2);
        let want = 19.3 * (-0.1 * age as f64).exp() * (0.2 + 0.01 * z(j as u64, writes as u64));
        let got = s[t * 4 + j] as f64;
        assert!((got - want).abs() < 1e-5, "S[{t},{j}] = {got}, want {want}");
    }
}
