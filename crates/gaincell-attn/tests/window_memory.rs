//! A window longer than the sequence costs nothing: every form (parallel, incremental, backward, reference) gives
//! bit-identical results for a window of 10⁶ tokens and one just long enough, and the incremental arrays hold room
//! for the tokens written, not for the window.

mod common;

use common::*;
use gaincell_attn::{gain_cell_backward, reference, GainCellParams, KvArray, Shape};
use gaincell_chip::ChipConfig;

const HUGE: usize = 1_000_000;

/// `base` with `overrides` and the given window.
fn with_window(base: &str, overrides: &str, window: usize) -> ChipConfig {
    let mut c = chip(base, overrides);
    c.geometry.window = window;
    c.validate().unwrap();
    c
}

fn incremental(chip: &ChipConfig, x: &Inputs) -> (Vec<f32>, Vec<usize>) {
    let p = GainCellParams::new(chip).unwrap();
    let Shape { heads, t, d } = x.shape;
    let mut out = vec![0.0; x.shape.len()];
    let mut columns = Vec::new();
    for h in 0..heads {
        let mut arrays = KvArray::new(&p);
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
        columns.push(arrays.allocated_columns());
    }
    (out, columns)
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn bits64(x: &[f64]) -> Vec<u64> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Every form on the same inputs, for a window of `short` tokens (≥ T) and of 10⁶: identical bits.
fn same_bits(base: &str, overrides: &str, shape: Shape, short: usize, seed: u64) {
    let x = inputs(shape, seed, true);
    let (a, b) = (
        with_window(base, overrides, short),
        with_window(base, overrides, HUGE),
    );
    let (fa, fb) = (fast(&a, &x), fast(&b, &x));
    assert_eq!(bits(&fa.out), bits(&fb.out), "{base}: parallel out");
    assert_eq!(bits(&fa.scores), bits(&fb.scores), "{base}: parallel S");
    assert_eq!(bits(&fa.phi), bits(&fb.phi), "{base}: parallel φ");
    let ((ia, _), (ib, cols)) = (incremental(&a, &x), incremental(&b, &x));
    assert_eq!(bits(&ia), bits(&ib), "{base}: incremental out");
    for c in cols {
        assert!(
            c <= 2 * shape.t + 16,
            "{base}: {c} columns for {} tokens",
            shape.t
        );
    }
    let (ra, rb) = (
        reference::gain_cell(&a, shape, &x.q, &x.k, &x.v),
        reference::gain_cell(&b, shape, &x.q, &x.k, &x.v),
    );
    assert_eq!(bits64(&ra.out), bits64(&rb.out), "{base}: reference out");
    assert_eq!(
        bits64(&ra.margin),
        bits64(&rb.margin),
        "{base}: reference margin"
    );
    let g: Vec<f32> = (0..shape.len())
        .map(|i| ((i % 7) as f32 - 3.0) * 0.1)
        .collect();
    let (pa, pb) = (
        GainCellParams::new(&a).unwrap(),
        GainCellParams::new(&b).unwrap(),
    );
    let (ga, gb) = (
        gain_cell_backward(&pa, shape, &x.q, &x.k, &x.v, &g).unwrap(),
        gain_cell_backward(&pb, shape, &x.q, &x.k, &x.v, &g).unwrap(),
    );
    for (name, u, v) in [
        ("q", &ga.q, &gb.q),
        ("k", &ga.k, &gb.k),
        ("v", &ga.v, &gb.v),
    ] {
        assert_eq!(bits(u), bits(v), "{base}: gradient of {name}");
    }
}

#[test]
fn a_million_token_window_equals_a_window_as_long_as_the_sequence() {
    // Three query blocks and a ragged end; the short window is exactly T (a whole number of 64-token sub-tiles).
    let shape = Shape::new(3, 192, 64);
    same_bits("paper-nonlinear", "", shape, 192, 31);
    same_bits(
        "paper-nonlinear",
        "[leakage]\nlambda_per_token = 1e-3",
        shape,
        192,
        32,
    );
    same_bits("paper-linear", "", Shape::new(2, 150, 64), 1024, 33);
    // Per-element path (a sigmoid cell under leakage) and the untiled readout.
    same_bits(
        "paper-nonlinear",
        "[cell]\nkind = \"sigmoid\"\n[leakage]\nlambda_per_token = 1e-3",
        Shape::new(3, 100, 64),
        1024,
        34,
    );
    same_bits(
        "paper-nonlinear",
        "[geometry]\ntiling = false",
        Shape::new(3, 130, 64),
        1024,
        35,
    );
}

#[test]
fn a_fresh_array_holds_room_for_its_tokens_not_its_window() {
    let c = with_window(
        "paper-nonlinear",
        "[leakage]\nlambda_per_token = 1e-3",
        HUGE,
    );
    let p = GainCellParams::new(&c).unwrap();
    let mut a = KvArray::new(&p);
    assert_eq!(a.allocated_columns(), 0);
    let x = inputs(Shape::new(1, 100, 64), 36, false);
    let mut out = vec![0.0; 64];
    for i in 0..100 {
        let r = i * 64..(i + 1) * 64;
        a.step(&x.q[r.clone()], &x.k[r.clone()], &x.v[r], &mut out)
            .unwrap();
        let cols = a.allocated_columns();
        assert!(
            cols > i && cols <= 2 * (i + 1) + 16,
            "{cols} columns after {} tokens",
            i + 1
        );
    }
    // A short window stops growing at the window and wraps.
    let c = with_window("paper-nonlinear", "", 128);
    let p = GainCellParams::new(&c).unwrap();
    let mut a = KvArray::new(&p);
    let x = inputs(Shape::new(1, 300, 64), 37, false);
    for i in 0..300 {
        let r = i * 64..(i + 1) * 64;
        a.step(&x.q[r.clone()], &x.k[r.clone()], &x.v[r], &mut out)
            .unwrap();
        assert!(a.allocated_columns() <= 128);
    }
    assert_eq!(a.allocated_columns(), 128);
}

#[test]
fn a_million_token_window_is_a_legal_chip_and_the_bound_is_far_above() {
    with_window("paper-nonlinear", "", HUGE);
    let mut c = chip("paper-nonlinear", "");
    c.geometry.window = (1usize << 32) + 64;
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("geometry.window") && e.contains("2^32"), "{e}");
}

/// With an output range that excludes 0 an idle sub-tile reads out a non-zero count, so the window's length
/// matters; the incremental arrays (and the per-element kernel) still add one such readout per idle sub-tile of
/// the full window, as the reference does.
#[test]
fn idle_sub_tiles_still_read_out_when_zero_is_outside_the_output_range() {
    for (cell, window) in [
        ("", 1024),
        ("", HUGE),
        ("[cell]\nkind = \"sigmoid\"\n", 1024),
    ] {
        let overrides = format!("{cell}[output]\nmin = 0.01\n[leakage]\nlambda_per_token = 1e-3");
        let c = with_window("paper-nonlinear", &overrides, window);
        let shape = Shape::new(1, 100, 64);
        let x = inputs(shape, 38, false);
        let r = reference::gain_cell(&c, shape, &x.q, &x.k, &x.v);
        let (inc, _) = incremental(&c, &x);
        assert!(
            max_rel(&inc, &r.out) < 1e-4,
            "{overrides} W {window}: incremental"
        );
        let empty = c.output.quantizer().apply(0.0) as f64;
        let idle = (window / 64 - 2) as f64;
        assert!(r.out[0] >= idle * empty, "{} vs {}", r.out[0], idle * empty);
    }
}
