//! `gaincell cost` and `gaincell sweep` from the outside: JSON fields, `--explain`, one-line errors, sweep files.

mod common;

use std::path::Path;

use common::{fails_with, gaincell, stdout};

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&stdout(&gaincell(args))).unwrap()
}

fn near(got: &serde_json::Value, want: f64) -> bool {
    (got.as_f64().unwrap() / want - 1.0).abs() < 0.02
}

#[test]
fn json_report_has_the_published_figures() {
    let r = json(&[
        "cost",
        "--chip",
        "paper-nonlinear",
        "--model",
        "gpt2",
        "--json",
        "-",
    ]);
    assert!(near(&r["latency"]["total_ns"], 65.0));
    for (part, pj) in [
        ("qk_pj", 1120.0),
        ("pv_pj", 700.0),
        ("digital_pj", 4000.0),
        ("dac_pj", 330.0),
        ("total_pj", 6150.0),
    ] {
        assert!(
            near(&r["energy"][part], pj),
            "{part}: {}",
            r["energy"][part]
        );
    }
    assert!(near(&r["energy_pj"]["per_layer"], 73_800.0));
    assert_eq!(r["cells"]["per_model"], 12.0 * 12.0 * 2.0 * 64.0 * 1024.0);
    assert_eq!(r["model"]["n_layer"], 12);
    let cmp = r["comparisons"].as_array().unwrap();
    assert_eq!(cmp.len(), 2);
    assert!(near(&cmp[0]["speedup"], 344.0) && near(&cmp[0]["energy_ratio"], 97_000.0));
    assert!(near(&cmp[1]["speedup"], 7521.0) && near(&cmp[1]["energy_ratio"], 44_000.0));
    assert!(r["area_mm2"]["per_model"].as_f64().unwrap() > 0.0);
    assert!(near(&r["retention"]["column_lifetime_s"], 1024.0 * 780e-9));
}

#[test]
fn tables_and_json_file_together() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cost.json");
    let text = stdout(&gaincell(&[
        "cost",
        "--model",
        "gpt2-xl",
        "--json",
        path.to_str().unwrap(),
    ]));
    assert!(text.contains("48 layers × 25 heads × 64 dims"), "{text}");
    assert!(
        text.contains("RTX 4090") && text.contains("Jetson Nano"),
        "{text}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(r["model"]["n_head"], 25);
    // 48 layers of 25 heads.
    let head = r["energy"]["total_pj"].as_f64().unwrap();
    assert!(near(&r["energy_pj"]["per_model"], 48.0 * 25.0 * head));
}

#[test]
fn a_hugging_face_config_and_a_measurement_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"n_layer": 6, "n_head": 12, "n_embd": 768}"#).unwrap();
    let gpu = dir.path().join("h100.json");
    std::fs::write(
        &gpu,
        r#"{"format": "gaincell-gpu-baseline/1", "gpu": "NVIDIA H100", "driver": "550.54.15",
            "date": "2026-01-01T00:00:00Z",
            "workload": {"batch": 64, "heads": 12, "head_dim": 64, "tokens": 1024},
            "latency_per_token_s": 6.5e-6, "energy_per_token_j": 7.38e-4}"#,
    )
    .unwrap();
    let r = json(&[
        "cost",
        "--model",
        config.to_str().unwrap(),
        "--gpu",
        gpu.to_str().unwrap(),
        "--json",
        "-",
    ]);
    assert_eq!(r["model"]["n_layer"], 6);
    let cmp = r["comparisons"].as_array().unwrap();
    assert_eq!(cmp.len(), 3);
    assert_eq!(cmp[2]["baseline"], "NVIDIA H100");
    // 6.5 µs / 65 ns and 0.738 mJ / 73.8 nJ.
    assert!(near(&cmp[2]["speedup"], 100.0) && near(&cmp[2]["energy_ratio"], 10_000.0));
}

#[test]
fn explain_lists_every_assumed_parameter_with_its_source() {
    let text = stdout(&gaincell(&["cost", "--explain"]));
    for field in [
        "cost.timing.phi_pulse_max_ns",
        "cost.timing.counter_step_ns",
        "cost.timing.adder_stage_ns",
        "cost.timing.write_ns",
        "cost.energy.query_activity",
        "cost.energy.score_c2p_pj",
        "cost.energy.readout_pj",
        "cost.energy.adder_pj",
        "cost.energy.io_pj",
        "cost.area.cell_um2",
        "cost.area.score_c2p_um2",
        "cost.area.readout_um2",
        "cost.area.dac_um2",
        "cost.area.pwm_driver_um2",
        "cost.area.adder_um2",
        "cost.area.tile_control_um2",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{field} = ")))
            .unwrap_or_else(|| panic!("{field} missing from:\n{text}"));
        assert!(line.contains("[assumed]"), "{line}");
    }
    let derived = text
        .lines()
        .find(|l| l.starts_with("cost.energy.cell_current_ua = "))
        .unwrap();
    assert!(derived.contains("[derived]"), "{derived}");
    assert!(text.contains("Assumed, not published (16)"), "{text}");
    // What the comparison compares, and the GPU figures' provenance.
    assert!(text.contains("per token of one sequence through the attention of one layer"));
    assert!(
        text.contains("7.178 mJ") && text.contains("488.9 µs"),
        "{text}"
    );
}

#[test]
fn bad_inputs_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let tile = write(
        "tile.toml",
        "base = \"paper-nonlinear\"\n[geometry]\ntile_rows = 48\n",
    );
    fails_with(&["cost", "--chip", &tile], "geometry.window");
    let energy = write(
        "energy.toml",
        "base = \"paper-nonlinear\"\n[cost.energy]\ndac_pj = -1.0\n",
    );
    fails_with(
        &["cost", "--chip", &energy],
        "`cost.energy.dac_pj` is -1: energies must be positive",
    );
    let zero = write(
        "zero.toml",
        "base = \"paper-nonlinear\"\n[cost.energy]\nreadout_pj = 0.0\n",
    );
    fails_with(&["cost", "--chip", &zero], "cost.energy.readout_pj");
    let bad_gpu = write("gpu.json", "{\"format\": \"gaincell-gpu-baseline/1\",");
    fails_with(&["cost", "--gpu", &bad_gpu], "not valid JSON");
    let no_energy = write(
        "gpu2.json",
        r#"{"format": "gaincell-gpu-baseline/1", "gpu": "X", "driver": "1", "date": "d",
            "workload": {"batch": 64, "heads": 12, "head_dim": 64, "tokens": 1024},
            "latency_per_token_s": 1e-6, "energy_per_token_j": 0}"#,
    );
    fails_with(&["cost", "--gpu", &no_energy], "energy_per_token_j");
    fails_with(&["cost", "--model", "gpt5"], "unknown model `gpt5`");
    fails_with(&["cost", "--chip", "software"], "softmax");
    fails_with(
        &[
            "sweep",
            "--vary",
            "window=1000",
            "--out",
            dir.path().to_str().unwrap(),
        ],
        "geometry.window",
    );
    fails_with(
        &[
            "sweep",
            "--vary",
            "nonsense.field=1",
            "--out",
            dir.path().to_str().unwrap(),
        ],
        "not a chip field",
    );
}

#[test]
fn sweep_writes_csv_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let text = stdout(&gaincell(&[
        "sweep",
        "--chip",
        "paper-nonlinear",
        "--vary",
        "window=256,512,1024,2048",
        "--vary",
        "tile=32,64,128",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(text.starts_with("12 points"), "{text}");
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 13);
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(&header[..3], &["point", "window", "tile"]);
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let mut unique = header.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), header.len(), "no repeated column: {header:?}");
    // Last --vary changes fastest; the paper point (1024, 64) sits at index 7.
    let paper: Vec<&str> = lines[1 + 7].split(',').collect();
    assert_eq!((paper[1], paper[2]), ("1024", "64"));
    let num = |row: &[&str], name: &str| row[col(name)].parse::<f64>().unwrap();
    assert!((num(&paper, "latency_ns") - 65.0).abs() < 1.3);
    assert!((num(&paper, "energy_head_pj") / 6150.0 - 1.0).abs() < 0.02);
    assert!((num(&paper, "speedup_vs_rtx_4090") / 344.0 - 1.0).abs() < 0.02);
    // Doubling the window at a fixed tile doubles the cells.
    let w2048: Vec<&str> = lines[1 + 10].split(',').collect();
    assert_eq!(num(&w2048, "cells_model"), 2.0 * num(&paper, "cells_model"));
    for stem in [
        "latency_vs_window",
        "energy_vs_window",
        "energy_breakdown",
        "area_vs_window",
    ] {
        let png = std::fs::read(out.join(format!("{stem}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
            "{stem}.png"
        );
        let svg = std::fs::read_to_string(out.join(format!("{stem}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("<text"),
            "{stem}.svg"
        );
    }
    assert!(Path::new(&out.join("sweep.csv")).is_file());
}

#[test]
fn refresh_shows_its_energy_and_time_and_bad_noise_fails_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let refresh = write(
        "refresh.toml",
        "base = \"paper-nonlinear\"\n[refresh]\nevery_tokens = 100\n",
    );
    let text = stdout(&gaincell(&["cost", "--chip", &refresh]));
    assert!(
        text.contains("refresh rewrites") && text.contains("10 columns per token"),
        "{text}"
    );
    assert!(text.contains("DACs, refresh rewrites"), "{text}");
    let plain = stdout(&gaincell(&["cost", "--chip", "paper-nonlinear"]));
    assert!(!plain.contains("refresh"), "{plain}");
    let r = json(&["cost", "--chip", &refresh, "--json", "-"]);
    assert!(near(
        &r["energy"]["refresh_pj"],
        10.0 * 128.0 * 330.0 / 128.0
    ));

    let negative = write(
        "negative.toml",
        "base = \"paper-nonlinear\"\n[noise]\nscore_read_sigma_ua = -0.5\n",
    );
    fails_with(&["cost", "--chip", &negative], "noise.score_read_sigma_ua");
    let long = write(
        "long.toml",
        "base = \"paper-nonlinear\"\n[refresh]\nevery_tokens = 5000\n",
    );
    fails_with(&["cost", "--chip", &long], "refresh.every_tokens");
    let unknown = write(
        "unknown.toml",
        "base = \"paper-nonlinear\"\n[noise]\nshot_sigma = 0.1\n",
    );
    fails_with(&["chip", "check", &unknown], "shot_sigma");
}
