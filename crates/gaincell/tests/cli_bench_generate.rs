//! `gaincell bench generate`: the JSON holds one row per chip whose figures agree with each other (the attention's
//! share inside the total, tokens/s the inverse of ms/token, the first chip the reference of the overheads), and
//! a PyTorch figure read from a file is divided in as the ratio.

mod common;

use common::{fails_with, gaincell, stdout};

#[test]
fn rows_per_chip_with_the_attention_separated_and_the_pytorch_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let torch = dir.path().join("torch.json");
    std::fs::write(
        &torch,
        r#"{"tokens_per_s": {"software": 100.0}, "peak_rss_mb": 700.0, "torch": "t", "transformers": "x", "threads": 2, "date": "d"}"#,
    )
    .unwrap();
    let out = gaincell(&[
        "bench",
        "generate",
        "--new-tokens",
        "6",
        "--prompt-tokens",
        "3",
        "--reps",
        "1",
        "--pytorch",
        torch.to_str().unwrap(),
        "--json",
        "-",
    ]);
    let r: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = r["rows"].as_array().unwrap();
    let chips: Vec<&str> = rows.iter().map(|x| x["chip"].as_str().unwrap()).collect();
    assert_eq!(chips, ["software", "paper-linear", "paper-nonlinear"]);
    let first = rows[0]["ms_per_token"].as_f64().unwrap();
    for x in rows {
        let f = |k: &str| x[k].as_f64().unwrap();
        assert!(f("ms_per_token") > 0.0);
        assert!((f("tokens_per_s") - 1e3 / f("ms_per_token")).abs() < 1e-6 * f("tokens_per_s"));
        assert!(
            f("attention_ms_per_token") > 0.0 && f("attention_ms_per_token") < f("ms_per_token")
        );
        assert!(
            (f("attention_ms_per_token") + f("rest_ms_per_token") - f("ms_per_token")).abs() < 1e-9
        );
        assert!((f("overhead_ms_per_token") - (f("ms_per_token") - first)).abs() < 1e-9);
        assert!((f("vs_pytorch") - f("tokens_per_s") / 100.0).abs() < 1e-9);
    }
    assert_eq!(r["pytorch_peak_rss_mb"].as_f64(), Some(700.0));
    assert_eq!(r["new_tokens"].as_u64(), Some(6));
}

#[test]
fn lengths_beyond_the_shape_are_refused() {
    fails_with(
        &[
            "bench",
            "generate",
            "--prompt-tokens",
            "500",
            "--new-tokens",
            "100",
        ],
        "exceed the stories260K shape's 512 positions",
    );
}
