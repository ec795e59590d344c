//! `gaincell bench attention`: the JSON has a forward row per kernel (each chip also with noise on, its ratio to
//! noise off) and a forward + backward row per noise-free kernel, their ratios to softmax consistent with their
//! times, and PyTorch's forward and forward + backward figures read from a file beside ours.

mod common;

use common::{gaincell, stdout};

#[test]
fn forward_and_training_rows_with_pytorch_figures() {
    let dir = tempfile::tempdir().unwrap();
    let torch = dir.path().join("torch.json");
    std::fs::write(
        &torch,
        r#"{"ms_median": {"softmax": 2.0}, "ms_median_train": {"softmax": 8.0}, "torch": "t", "threads": 2,
            "date": "d"}"#,
    )
    .unwrap();
    let out = gaincell(&[
        "bench",
        "attention",
        "--heads",
        "2",
        "--tokens",
        "96",
        "--reps",
        "1",
        "--pytorch",
        torch.to_str().unwrap(),
        "--json",
        "-",
    ]);
    let r: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names = |key: &str| -> Vec<String> {
        r[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["kernel"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names("rows"),
        [
            "softmax",
            "paper-linear",
            "paper-linear + noise",
            "paper-nonlinear",
            "paper-nonlinear + noise"
        ]
    );
    assert_eq!(
        names("train_rows"),
        ["softmax", "paper-linear", "paper-nonlinear"]
    );
    for key in ["rows", "train_rows"] {
        let rows = r[key].as_array().unwrap();
        let softmax = rows[0]["ms_median"].as_f64().unwrap();
        for x in rows {
            let f = |k: &str| x[k].as_f64().unwrap();
            assert!(f("ms_min") > 0.0 && f("ms_min") <= f("ms_median"), "{x}");
            assert!(
                (f("ratio_to_softmax") - f("ms_median") / softmax).abs() < 1e-9,
                "{x}"
            );
        }
    }
    assert_eq!(r["rows"][0]["pytorch_ms"], 2.0);
    assert_eq!(r["train_rows"][0]["pytorch_ms"], 8.0);
    assert!(r["train_rows"][1]["pytorch_ms"].is_null());
    // The ratio is the median over repetitions of noise-on over the noise-off run beside it: with one
    // repetition, the ratio of the two times.
    let noisy = &r["rows"][2];
    let ratio = noisy["ratio_to_noise_off"].as_f64().unwrap();
    let expected =
        noisy["ms_median"].as_f64().unwrap() / r["rows"][1]["ms_median"].as_f64().unwrap();
    assert!((ratio - expected).abs() < 1e-9);
}
