//! Device variation and noise (docs/chip-model.md#noise-and-variation): off means bit-identical to the ideal chip;
//! on, the parallel and incremental forms and the f64 reference draw the same numbers, whatever the thread count;
//! each source has the σ configured (measured over many draws) and its formula (a tiny case worked by hand).

mod common;

use common::*;
use gaincell_attn::{
    gain_cell_backward, gain_cell_backward_at, gain_cell_forward_at, reference, GainCellParams,
    KvArray, Probes, Shape, Site,
};
use gaincell_chip::draw::{Source, Stream};
use gaincell_chip::ChipConfig;

/// Every source on, moderately.
const ALL_ON: &str = "[variation]\nseed = 11\ncell_gain_sigma = 0.05\ncell_offset_sigma_v = 0.01\n\
c2p_gain_sigma = 0.05\nc2p_threshold_sigma_ua = 0.5\ncounter_gain_sigma = 0.05\n\
counter_threshold_sigma_ua = 0.2\n[noise]\nseed = 5\nwrite_sigma_v = 0.01\n\
score_read_sigma_ua = 0.5\nvalue_read_sigma_ua = 0.2";

fn forward_at(chip: &ChipConfig, site: Site, x: &Inputs) -> Fast {
    let p = GainCellParams::new(chip).unwrap();
    let Shape { heads, t, .. } = x.shape;
    let mut f = Fast {
        scores: vec![0.0; heads * t * t],
        phi: vec![0.0; heads * t * t],
        out: vec![0.0; x.shape.len()],
    };
    let probes = Probes {
        scores: &mut f.scores,
        phi: &mut f.phi,
    };
    gain_cell_forward_at(
        &p,
        site,
        x.shape,
        &x.q,
        &x.k,
        &x.v,
        &mut f.out,
        Some(probes),
    )
    .unwrap();
    f
}

/// The incremental form of every kernel head at `site`: each sequence's key/value heads written once per token,
/// read by each of their query heads.
fn incremental_at(chip: &ChipConfig, site: Site, x: &Inputs) -> Vec<f32> {
    let p = GainCellParams::new(chip).unwrap();
    let Shape { heads, t, d } = x.shape;
    let mut out = vec![0.0; x.shape.len()];
    for h in 0..heads {
        let at = site.head(h, heads);
        let mut arrays = KvArray::at(&p, at);
        for i in 0..t {
            let row = (h * t + i) * d..(h * t + i + 1) * d;
            arrays.write(&x.k[row.clone()], &x.v[row.clone()]).unwrap();
            arrays
                .read_as(at.head, &x.q[row.clone()], &mut out[row])
                .unwrap();
        }
    }
    out
}

/// Parallel = incremental = f64 reference, with the chip's noise on, at `site`.
fn check_forms(chip: &ChipConfig, site: Site, shape: Shape, seed: u64) {
    let mut x = inputs(shape, seed, false);
    if site.group > 1 {
        // A group's query heads read the same arrays: give them the same keys and values, as repeat_kv does.
        let per = shape.t * shape.d;
        for h in 0..shape.heads {
            let src = (h / site.group) * site.group;
            if src != h {
                x.k.copy_within(src * per..(src + 1) * per, h * per);
                x.v.copy_within(src * per..(src + 1) * per, h * per);
            }
        }
    }
    let parallel = forward_at(chip, site, &x).out;
    let inc = incremental_at(chip, site, &x);
    let r = reference::gain_cell_at(chip, site, shape, &x.q, &x.k, &x.v);
    let step = chip.output.quantizer().step as f64;
    let p64: Vec<f64> = parallel.iter().map(|&x| x as f64).collect();
    let ties = assert_out_close(&inc, &p64, &r.margin, step, 1e-5, 1e-4);
    let ties_ref = assert_out_close(&parallel, &r.out, &r.margin, step, 1e-4, 1e-4);
    eprintln!(
        "{} {shape:?} {site:?}: {ties} / {ties_ref} readout ties",
        chip.name
    );
    let clean = fast(&strip_noise(chip), &x).out;
    assert_ne!(clean, parallel, "the noise must change the result");
}

fn strip_noise(chip: &ChipConfig) -> ChipConfig {
    let mut c = chip.clone();
    c.variation = Default::default();
    c.noise = Default::default();
    c
}

#[test]
fn every_sigma_zero_is_bit_identical_to_the_ideal_chip() {
    let zero =
        "[variation]\nseed = 3\ncell_gain_sigma = 0.0\n[noise]\nseed = 8\nwrite_sigma_v = 0.0";
    for (base, extra) in [
        ("paper-nonlinear", "[geometry]\nwindow = 128"),
        ("paper-linear", "[leakage]\nenabled = false"),
        ("paper-nonlinear", "[cell]\nkind = \"sigmoid\""),
    ] {
        let plain = chip(base, extra);
        let zeroed = chip(base, &format!("{extra}\n{zero}"));
        assert!(!GainCellParams::new(&zeroed).unwrap().is_noisy());
        let x = inputs(Shape::new(3, 150, 64), 4, true);
        let (a, b) = (fast(&plain, &x), fast(&zeroed, &x));
        assert_eq!(a.out, b.out);
        assert_eq!(a.scores, b.scores);
        assert_eq!(a.phi, b.phi);
        // The site only keys draws: without noise it changes nothing.
        let c = forward_at(&zeroed, Site::new(4, 1, 1), &x);
        assert_eq!(a.out, c.out);
        let g = vec![0.01f32; x.shape.len()];
        let p0 = GainCellParams::new(&plain).unwrap();
        let p1 = GainCellParams::new(&zeroed).unwrap();
        let g0 = gain_cell_backward(&p0, x.shape, &x.q, &x.k, &x.v, &g).unwrap();
        let g1 =
            gain_cell_backward_at(&p1, Site::new(2, 3, 1), x.shape, &x.q, &x.k, &x.v, &g).unwrap();
        assert_eq!((g0.q, g0.k, g0.v), (g1.q, g1.k, g1.v));
    }
}

#[test]
fn parallel_equals_incremental_with_noise_on() {
    let c = chip(
        "paper-nonlinear",
        &format!("[geometry]\nwindow = 128\n[leakage]\nlambda_per_token = 1e-3\n{ALL_ON}"),
    );
    check_forms(&c, Site::default(), Shape::new(3, 192, 64), 21);
    check_forms(&c, Site::new(3, 2, 2), Shape::new(4, 150, 64), 22);
    let c = chip(
        "paper-linear",
        &format!("[geometry]\nwindow = 96\ntile_rows = 32\nhead_dim = 32\n{ALL_ON}"),
    );
    check_forms(&c, Site::new(1, 3, 1), Shape::new(3, 151, 32), 23);
    let c = chip(
        "paper-linear",
        &format!("[geometry]\nwindow = 64\ntiling = false\nhead_dim = 16\n[leakage]\nenabled = false\n{ALL_ON}"),
    );
    check_forms(&c, Site::default(), Shape::new(2, 100, 16), 24);
    // The per-element path (a curve without polynomial form under leakage).
    let c = chip(
        "paper-nonlinear",
        &format!("[geometry]\nwindow = 64\nhead_dim = 16\n[cell]\nkind = \"sigmoid\"\n{ALL_ON}"),
    );
    check_forms(&c, Site::default(), Shape::new(2, 100, 16), 25);
}

#[test]
fn same_seed_same_result_on_one_and_two_threads() {
    let c = chip(
        "paper-nonlinear",
        &format!("[geometry]\nwindow = 128\n{ALL_ON}"),
    );
    let x = inputs(Shape::new(4, 200, 64), 9, false);
    let run = |threads: usize, chip: &ChipConfig| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let f = forward_at(chip, Site::new(2, 4, 1), &x);
            let p = GainCellParams::new(chip).unwrap();
            let g =
                gain_cell_backward_at(&p, Site::new(2, 4, 1), x.shape, &x.q, &x.k, &x.v, &f.out)
                    .unwrap();
            (f.out, g.q, g.k, g.v)
        })
    };
    let one = run(1, &c);
    assert_eq!(one, run(2, &c));
    assert_eq!(one, run(2, &c.clone()), "a chip instance is its seed");
    let mut other = c.clone();
    other.variation.seed = 12;
    assert_ne!(one.0, run(2, &other).0, "another seed is another chip");
}

/// An ideal linear chip (no quantisation, no leakage) of `d` dims and window `w`, with `extra` TOML lines.
fn ideal(d: usize, w: usize, extra: &str) -> ChipConfig {
    chip(
        "paper-linear-ideal",
        &format!("[geometry]\nhead_dim = {d}\nwindow = {w}\ntile_rows = {w}\n{extra}"),
    )
}

fn constant_inputs(shape: Shape, q: f32, k: f32, v: f32) -> Inputs {
    Inputs {
        shape,
        q: vec![q; shape.len()],
        k: vec![k; shape.len()],
        v: vec![v; shape.len()],
    }
}

/// The standard deviation of `xs` (mean known to be 0) and the tolerance of 5 standard errors for `sigma`.
fn sd_within(what: &str, xs: &[f64], sigma: f64) {
    let n = xs.len() as f64;
    let sd = (xs.iter().map(|x| x * x).sum::<f64>() / n).sqrt();
    let mean = xs.iter().sum::<f64>() / n;
    let tol = 5.0 * sigma / (2.0 * n).sqrt();
    eprintln!("{what}: σ measured {sd:.5} over {n} draws, configured {sigma} (± {tol:.5}), mean {mean:.5}");
    assert!(
        (sd - sigma).abs() < tol,
        "{what}: σ {sd} vs {sigma} ± {tol}"
    );
    assert!(mean.abs() < 5.0 * sigma / n.sqrt(), "{what}: mean {mean}");
}

/// Scores of the last query row of each head, and every score of the window, noisy minus clean.
fn score_diffs(noisy: &Fast, clean: &Fast, shape: Shape, last_row_only: bool) -> Vec<f64> {
    let n = shape.t;
    let mut out = Vec::new();
    for h in 0..shape.heads {
        let rows = if last_row_only { n - 1..n } else { 0..n };
        for t in rows {
            for j in 0..=t {
                let i = (h * n + t) * n + j;
                out.push((noisy.scores[i] - clean.scores[i]) as f64);
            }
        }
    }
    out
}

const SLOPE: f64 = 19.3;

#[test]
fn each_source_has_the_sigma_configured() {
    // One dim: S_tj = q·19.3·w_j, and w = 0.65 − 0.45 = 0.2 before noise; the last row reads every key.
    let shape = Shape::new(64, 128, 1);
    let x = constant_inputs(shape, 1.0, 0.65, 0.65);
    let clean_chip = ideal(1, 128, "");
    let clean = fast(&clean_chip, &x);
    let noisy = |extra: &str| fast(&ideal(1, 128, extra), &x);

    let f = noisy("[noise]\nwrite_sigma_v = 0.02");
    let d: Vec<f64> = score_diffs(&f, &clean, shape, true)
        .iter()
        .map(|s| s / SLOPE)
        .collect();
    sd_within("write noise (V)", &d, 0.02);

    let f = noisy("[variation]\ncell_offset_sigma_v = 0.03");
    let d: Vec<f64> = score_diffs(&f, &clean, shape, true)
        .iter()
        .map(|s| s / SLOPE)
        .collect();
    sd_within("cell offset (V)", &d, 0.03);

    let f = noisy("[variation]\ncell_gain_sigma = 0.1");
    let d: Vec<f64> = score_diffs(&f, &clean, shape, true)
        .iter()
        .map(|s| s / (SLOPE * 0.2))
        .collect();
    sd_within("cell gain (relative)", &d, 0.1);

    let f = noisy("[noise]\nscore_read_sigma_ua = 0.7");
    let d = score_diffs(&f, &clean, shape, false);
    sd_within("score read (µA)", &d, 0.7);

    // Converters: φ·S_sat = gain·S − threshold, S = 3.86 inside the linear range; one converter per key slot.
    let phis = |f: &Fast| -> Vec<f64> {
        (0..shape.heads)
            .flat_map(|h| {
                let n = shape.t;
                (0..n).map(move |j| ((h * n + n - 1) * n + j, h))
            })
            .map(|(i, _)| f.phi[i] as f64 * 80.0)
            .collect()
    };
    let base = phis(&clean);
    let f = noisy("[variation]\nc2p_threshold_sigma_ua = 0.4");
    let d: Vec<f64> = phis(&f).iter().zip(&base).map(|(a, b)| b - a).collect();
    sd_within("converter threshold (µA)", &d, 0.4);
    let f = noisy("[variation]\nc2p_gain_sigma = 0.08");
    let d: Vec<f64> = phis(&f)
        .iter()
        .zip(&base)
        .map(|(a, b)| a / b - 1.0)
        .collect();
    sd_within("converter gain (relative)", &d, 0.08);

    // Output lines: one readout per (query, dim) with tiling off; out·A_sat = gain·(Σ + read) − threshold. 64 dims
    // give one counter per (head, dim); the output range is opened so nothing clips.
    let shape = Shape::new(128, 64, 64);
    let x = constant_inputs(shape, 0.5, 0.65, 0.65);
    let open = "[output]\nmin = -1000.0\nmax = 1000.0\n[readout]\ns_sat = 1000.0";
    let out = |extra: &str| fast(&ideal(64, 64, &format!("{open}\n{extra}")), &x).out;
    let clean = out("");
    let f = out("[noise]\nvalue_read_sigma_ua = 0.3");
    let d: Vec<f64> = f
        .iter()
        .zip(&clean)
        .map(|(a, b)| (a - b) as f64 * 40.0)
        .collect();
    sd_within("value read (µA)", &d, 0.3);
    // Counters are static: the last query row of each head sees each counter once.
    let last = |o: &[f32]| -> Vec<f64> {
        (0..shape.heads)
            .flat_map(|h| (0..64).map(move |c| (h * 64 + 63) * 64 + c))
            .map(|i| o[i] as f64)
            .collect()
    };
    let base = last(&clean);
    let f = out("[variation]\ncounter_threshold_sigma_ua = 0.25");
    let d: Vec<f64> = last(&f)
        .iter()
        .zip(&base)
        .map(|(a, b)| (b - a) * 40.0)
        .collect();
    sd_within("counter threshold (µA)", &d, 0.25);
    let f = out("[variation]\ncounter_gain_sigma = 0.06");
    let d: Vec<f64> = last(&f)
        .iter()
        .zip(&base)
        .map(|(a, b)| a / b - 1.0)
        .collect();
    sd_within("counter gain (relative)", &d, 0.06);
}

/// The stream of `source` at the coordinates `path`.
fn stream(seed: u64, source: Source, path: &[u64]) -> Stream {
    path.iter().fold(Stream::new(seed, source), |s, &x| s.at(x))
}

/// Draw `i` of `source` at the coordinates `path`, as the generator gives it.
fn z(seed: u64, source: Source, path: &[u64], i: u64) -> f64 {
    stream(seed, source, path).normal(i) as f64
}

/// The first (`second` false) or second normal of pair `m` of `source` at `path`: what pairs of values (gain
/// and offset, key and value) take.
fn zp(seed: u64, source: Source, path: &[u64], m: u64, second: bool) -> f64 {
    let (a, b) = stream(seed, source, path).pair(m);
    (if second { b } else { a }) as f64
}

/// A tiny known case: one head at layer 2, two tokens, one dim, linear ideal chip (S_sat 80, A_sat 40); every
/// value worked out from the draws read back from the generator.
#[test]
fn known_answers_per_source() {
    let shape = Shape::new(1, 2, 1);
    let x = Inputs {
        shape,
        q: vec![1.0, 0.6],
        k: vec![0.65, 0.85],
        v: vec![0.75, 0.55],
    };
    let site = Site::new(2, 1, 1);
    let (l, vs, ns) = (2u64, 7u64, 9u64);
    // `extra`: lines of [variation] (those naming a converter, counter or cell) or else of [noise].
    let run = |extra: &str| {
        let static_source = ["cell_", "c2p_", "counter_"]
            .iter()
            .any(|p| extra.starts_with(p));
        let (var, noise) = if static_source {
            (extra, "")
        } else {
            ("", extra)
        };
        let c = ideal(
            1,
            2,
            &format!("[variation]\nseed = {vs}\n{var}\n[noise]\nseed = {ns}\n{noise}"),
        );
        forward_at(&c, site, &x)
    };
    // Clean weights, and the hand-made forward of a linear cell for given weights and perturbations.
    let (wk, wv) = ([0.2f64, 0.4], [0.3f64, 0.1]);
    let q = [1.0f64, 0.6];
    let check = |f: &Fast,
                 wk: [f64; 2],
                 wv: [f64; 2],
                 s_read: [[f64; 2]; 2],
                 conv: [(f64, f64); 2],
                 o_read: [f64; 2],
                 cnt: (f64, f64)| {
        for t in 0..2 {
            let mut acc = 0.0;
            for j in 0..=t {
                let s = q[t] * SLOPE * wk[j] + s_read[t][j];
                let (g, th) = conv[j];
                let phi = ((g * s - th) / 80.0).clamp(0.0, 1.0);
                assert!(
                    (f.scores[t * 2 + j] as f64 - s).abs() < 1e-4,
                    "S[{t},{j}] {} vs {s}",
                    f.scores[t * 2 + j]
                );
                assert!((f.phi[t * 2 + j] as f64 - phi).abs() < 1e-6);
                acc += phi * SLOPE * wv[j];
            }
            let o = ((cnt.0 * (acc + o_read[t]) - cnt.1) / 40.0).clamp(-1.0, 1.0);
            assert!(
                (f.out[t] as f64 - o).abs() < 1e-6,
                "out[{t}] {} vs {o}",
                f.out[t]
            );
        }
    };
    let none = ([[0.0; 2]; 2], [(1.0, 0.0); 2], [0.0; 2], (1.0, 0.0));

    // Write noise: per position (key first, value second of pair 0 of its stream), added to the stored voltage.
    let f = run("write_sigma_v = 0.01");
    let zw = |j: u64, value| zp(ns, Source::Write, &[l, 0, 0, j, 0], 0, value);
    let k2 = [wk[0] + 0.01 * zw(0, false), wk[1] + 0.01 * zw(1, false)];
    let v2 = [wv[0] + 0.01 * zw(0, true), wv[1] + 0.01 * zw(1, true)];
    check(&f, k2, v2, none.0, none.1, none.2, none.3);

    // Cell gain and offset: per (array, slot), gain and offset of pair 0 (dim 0).
    let f = run("cell_gain_sigma = 0.1\ncell_offset_sigma_v = 0.02");
    let cell = |array: u64, slot: u64, w: f64| {
        (1.0 + 0.1 * zp(vs, Source::Cell, &[l, 0, array, slot], 0, false)) * w
            + 0.02 * zp(vs, Source::Cell, &[l, 0, array, slot], 0, true)
    };
    let k2 = [cell(0, 0, wk[0]), cell(0, 1, wk[1])];
    let v2 = [cell(1, 0, wv[0]), cell(1, 1, wv[1])];
    check(&f, k2, v2, none.0, none.1, none.2, none.3);

    // Score read: per (query t), draw j.
    let f = run("score_read_sigma_ua = 0.5");
    let zr = |t: u64, j: u64| 0.5 * z(ns, Source::ScoreRead, &[l, 0, 0, t], j);
    let s_read = [[zr(0, 0), 0.0], [zr(1, 0), zr(1, 1)]];
    check(&f, wk, wv, s_read, none.1, none.2, none.3);

    // Converters: per slot j, gain and threshold of pair j.
    let f = run("c2p_gain_sigma = 0.1\nc2p_threshold_sigma_ua = 0.3");
    let conv = |j: u64| {
        (
            1.0 + 0.1 * zp(vs, Source::Converter, &[l, 0], j, false),
            0.3 * zp(vs, Source::Converter, &[l, 0], j, true),
        )
    };
    check(&f, wk, wv, none.0, [conv(0), conv(1)], none.2, none.3);

    // Value read: per query t, draw tile·D + dim = 0.
    let f = run("value_read_sigma_ua = 0.2");
    let o_read = [0, 1].map(|t| 0.2 * z(ns, Source::ValueRead, &[l, 0, 0, t], 0));
    check(&f, wk, wv, none.0, none.1, o_read, none.3);

    // Counter: per (tile 0, dim 0), gain and threshold of pair 0.
    let f = run("counter_gain_sigma = 0.1\ncounter_threshold_sigma_ua = 0.2");
    let cnt = (
        1.0 + 0.1 * zp(vs, Source::Counter, &[l, 0], 0, false),
        0.2 * zp(vs, Source::Counter, &[l, 0], 0, true),
    );
    check(&f, wk, wv, none.0, none.1, none.2, cnt);
}

#[test]
fn the_backward_sees_the_noisy_forward() {
    // The linear chip's surrogate is its exact gradient: with noise on it must still match the reference's
    // difference quotients, which draw the same numbers.
    let c = chip(
        "paper-linear",
        &format!(
            "[geometry]\nwindow = 32\ntile_rows = 16\nhead_dim = 8\n[leakage]\nlambda_per_token = 0.01\n\
             [query]\nquantize = false\n[key]\nquantize = false\n[value]\nquantize = false\n\
             [output]\nquantize = false\n{ALL_ON}"
        ),
    );
    let shape = Shape::new(2, 40, 8);
    let x = inputs(shape, 31, false);
    let site = Site::new(1, 2, 1);
    let p = GainCellParams::new(&c).unwrap();
    let w: Vec<f32> = (0..shape.len())
        .map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.4)
        .collect();
    let g = gain_cell_backward_at(&p, site, shape, &x.q, &x.k, &x.v, &w).unwrap();
    let loss = |q: &[f32], k: &[f32], v: &[f32]| -> f64 {
        let r = reference::gain_cell_at(&c, site, shape, q, k, v);
        r.out.iter().zip(&w).map(|(o, &w)| o * w as f64).sum()
    };
    let h = 1e-3f32;
    let mut checked = 0;
    for (which, grad) in [(0, &g.q), (1, &g.k), (2, &g.v)] {
        for i in (0..shape.len()).step_by(37) {
            let mut xs = [x.q.clone(), x.k.clone(), x.v.clone()];
            xs[which][i] += h;
            let up = loss(&xs[0], &xs[1], &xs[2]);
            xs[which][i] -= 2.0 * h;
            let down = loss(&xs[0], &xs[1], &xs[2]);
            let fd = (up - down) / (2.0 * h as f64);
            let a = grad[i] as f64;
            // A clamp's kink inside ±h makes the quotient meaningless: skip those (rare).
            if (fd - a).abs() > 2e-3 * fd.abs().max(1.0) {
                eprintln!("input {which}[{i}]: analytic {a}, difference {fd}");
                continue;
            }
            checked += 1;
        }
    }
    let total = 3 * shape.len().div_ceil(37);
    assert!(
        checked * 10 >= total * 9,
        "{checked} of {total} gradients match"
    );
    let clean = strip_noise(&c);
    let g0 = gain_cell_backward(
        &GainCellParams::new(&clean).unwrap(),
        shape,
        &x.q,
        &x.k,
        &x.v,
        &w,
    )
    .unwrap();
    assert_ne!(g0.k, g.k, "the gradient sees the noise");
}

#[test]
fn repeated_calls_on_one_chip_draw_the_same_cells() {
    // The cell-variation tables are drawn on first use and kept: a later call, longer (the tables grow) or
    // shorter, must see the cells a fresh chip draws.
    let c = chip(
        "paper-linear",
        &format!("[geometry]\nwindow = 96\ntile_rows = 32\nhead_dim = 32\n{ALL_ON}"),
    );
    let p = GainCellParams::new(&c).unwrap();
    for (t, seed) in [(20, 31), (130, 32), (20, 31), (60, 33)] {
        let x = inputs(Shape::new(2, t, 32), seed, false);
        let run = |p: &GainCellParams| {
            let mut out = vec![0.0; x.shape.len()];
            gain_cell_forward_at(
                p,
                Site::new(1, 2, 1),
                x.shape,
                &x.q,
                &x.k,
                &x.v,
                &mut out,
                None,
            )
            .unwrap();
            out
        };
        let fresh = GainCellParams::new(&c).unwrap();
        assert_eq!(run(&p), run(&fresh), "T = {t}");
    }
}
