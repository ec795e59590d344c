//! Class "every number validated at the edge": sizes with an upper bound that the message names, and counts that
//! multiply user-given sizes checked for overflow (they used to wrap around in release builds).

mod common;

use common::fails_with;

#[test]
fn a_chip_taller_than_2_to_the_16_rows_is_refused_naming_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let chip = dir.path().join("tall.toml");
    std::fs::write(
        &chip,
        "base = \"paper-nonlinear\"\n[geometry]\nhead_dim = 70000\n",
    )
    .unwrap();
    fails_with(
        &["chip", "show", chip.to_str().unwrap()],
        "geometry.head_dim` is 70000: give at most 2^16 = 65536 rows",
    );
}

#[test]
fn a_sweep_whose_point_count_overflows_is_refused_not_wrapped() {
    // 8 lists of 256 values: 2^64 combinations, which the unchecked product wrapped to 0 in release builds
    // (passing the bound).
    let values: String = (0..256)
        .map(|i| format!("{}", 1 + i))
        .collect::<Vec<_>>()
        .join(",");
    let keys = [
        "cost.energy.dac_pj",
        "cost.energy.adder_pj",
        "cost.energy.io_pj",
        "cost.energy.readout_pj",
        "cost.area.cell_um2",
        "cost.area.dac_um2",
        "cost.area.adder_um2",
        "cost.area.readout_um2",
    ];
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let mut args = vec![
        "sweep".to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    for k in keys {
        args.push("--vary".into());
        args.push(format!("{k}={values}"));
    }
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    fails_with(
        &args,
        "256 × 256 × 256 × 256 × 256 × 256 × 256 × 256 points (more than 10000)",
    );
    assert!(!out.exists(), "a refused sweep wrote {}", out.display());
}

#[test]
fn a_config_json_with_absurd_sizes_is_refused_before_anything_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    let config = r#"{"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768,
        "n_layer": 1000000000, "n_head": 12}"#;
    std::fs::write(model.join("config.json"), config).unwrap();
    std::fs::write(model.join("model.safetensors"), b"").unwrap();
    fails_with(
        &[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "-n",
            "1",
            "--prompt",
            "a",
        ],
        "more than 2^40 = 1099511627776",
    );
    assert_eq!(
        std::fs::read_to_string(model.join("config.json")).unwrap(),
        config
    );
}

#[test]
fn counts_of_zero_are_refused_by_the_parser_and_fractions_outside_zero_one_at_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    let o = out.to_str().unwrap();
    for (args, says) in [
        (
            vec!["bench", "attention", "--tokens", "0"],
            "'--tokens <TOKENS>': 0: give at least 1",
        ),
        (
            vec!["bench", "attention", "--heads", "0"],
            "'--heads <HEADS>': 0: give at least 1",
        ),
        (
            vec!["bench", "attention", "--reps", "0"],
            "'--reps <REPS>': 0: give at least 1",
        ),
        (
            vec!["bench", "train", "--steps", "0"],
            "'--steps <STEPS>': 0: give at least 1",
        ),
        (
            vec!["bench", "train", "--batch", "0"],
            "'--batch <BATCH>': 0: give at least 1",
        ),
    ] {
        let r = common::gaincell(&args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.lines().next().unwrap_or("").contains(says),
            "{args:?}: {err}"
        );
    }
    fails_with(
        &[
            "data",
            "prepare",
            "--tokenizer",
            "gpt2",
            "--input",
            "x",
            "--val-fraction",
            "1.5",
            "--out",
            o,
        ],
        "--val-fraction 1.5: give a share strictly between 0 and 1",
    );
    assert!(!out.exists());
}
