//! `gaincell eval ppl --chip-seeds`: the same text on several instances of a noisy chip (the shipped stories260K
//! model on its chip with read noise on): each instance is the chip with that seed, the summary is their mean and
//! sample std, and a chip without noise or variation is refused.

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, gaincell, stdout};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The stories260K nonlinear chip with read noise on the scores and outputs, at `seed`.
fn noisy_chip(dir: &Path, seed: u64) -> PathBuf {
    let base =
        std::fs::read_to_string(workspace().join("configs/chips/stories260k-nonlinear.toml"))
            .unwrap();
    let path = dir.join(format!("noisy-{seed}.toml"));
    std::fs::write(
        &path,
        format!("{base}\n[noise]\nseed = {seed}\nscore_read_sigma_ua = 2.0\nvalue_read_sigma_ua = 2.0\n"),
    )
    .unwrap();
    path
}

fn text(dir: &Path) -> PathBuf {
    let path = dir.join("story.txt");
    std::fs::write(
        &path,
        "Once upon a time there was a little girl named Lily. She loved to play in the park with her dog. One day \
         the sun was hot and Lily was thirsty. Her mom gave her a cold drink and they sat under a big tree.\n",
    )
    .unwrap();
    path
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn each_instance_is_the_chip_with_that_seed_and_the_summary_is_their_mean_and_std() {
    let dir = tempfile::tempdir().unwrap();
    let model = workspace().join("models/stories260k/nonlinear");
    let (m, t) = (model.to_str().unwrap(), text(dir.path()));
    let chip = noisy_chip(dir.path(), 1);
    let out = dir.path().join("instances.json");
    let printed = stdout(&gaincell(&[
        "eval",
        "ppl",
        "--model",
        m,
        "--chip",
        chip.to_str().unwrap(),
        "--data",
        t.to_str().unwrap(),
        "--ctx",
        "32",
        "--chip-seeds",
        "3,1,2",
        "--json",
        out.to_str().unwrap(),
    ]));
    assert!(printed.contains("over 3 chip instances"), "{printed}");
    let j = json(&out);
    let instances = j["instances"].as_array().unwrap();
    let ppl: Vec<f64> = instances
        .iter()
        .map(|i| i["result"]["perplexity"].as_f64().unwrap())
        .collect();
    let seeds: Vec<u64> = instances
        .iter()
        .map(|i| i["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, [1, 2, 3]);
    assert!(
        ppl[0] != ppl[1] && ppl[1] != ppl[2],
        "noise on, instances differ: {ppl:?}"
    );
    let mean = ppl.iter().sum::<f64>() / 3.0;
    let std = (ppl.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!((j["perplexity_mean"].as_f64().unwrap() - mean).abs() < 1e-9 * mean);
    assert!((j["perplexity_std"].as_f64().unwrap() - std).abs() < 1e-9 * mean.max(1.0));

    // Instance 2 is what the chip file with seed 2 gives on its own.
    let single = dir.path().join("seed2.json");
    let chip2 = noisy_chip(dir.path(), 2);
    stdout(&gaincell(&[
        "eval",
        "ppl",
        "--model",
        m,
        "--chip",
        chip2.to_str().unwrap(),
        "--data",
        t.to_str().unwrap(),
        "--ctx",
        "32",
        "--json",
        single.to_str().unwrap(),
    ]));
    assert_eq!(
        json(&single)["result"]["perplexity"].as_f64().unwrap(),
        ppl[1]
    );
}

#[test]
fn seeds_on_a_chip_without_noise_or_one_seed_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = workspace().join("models/stories260k/nonlinear");
    let t = text(dir.path());
    let (m, t) = (model.to_str().unwrap(), t.to_str().unwrap());
    fails_with(
        &[
            "eval",
            "ppl",
            "--model",
            m,
            "--data",
            t,
            "--chip-seeds",
            "1,2",
        ],
        "has no [variation] or [noise] on",
    );
    let chip = noisy_chip(dir.path(), 1);
    fails_with(
        &[
            "eval",
            "ppl",
            "--model",
            m,
            "--chip",
            chip.to_str().unwrap(),
            "--data",
            t,
            "--chip-seeds",
            "4,4",
        ],
        "give at least two different seeds",
    );
}
