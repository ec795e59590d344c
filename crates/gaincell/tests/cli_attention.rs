//! `gaincell attention` and `gaincell chip` from the outside: what a user with numpy arrays sees.

use std::path::Path;
use std::process::{Command, Output};

use ndarray::{ArrayD, IxDyn};
use rand::{Rng, SeedableRng};

fn gaincell(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gaincell"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn save(path: &Path, shape: &[usize], data: Vec<f32>) {
    ndarray_npy::write_npy(path, &ArrayD::from_shape_vec(IxDyn(shape), data).unwrap()).unwrap();
}

fn load(path: &Path) -> ArrayD<f32> {
    ndarray_npy::read_npy(path).unwrap()
}

fn uniform(n: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(lo..hi)).collect()
}

/// The paper's cubic (docs/chip-model.md#cell-curve), written out here so the test does not lean on the library's
/// curve code.
fn f(y: f64) -> f64 {
    0.52136 + 13.6123 * y - 2.62045 * y * y + 46.0548 * y * y * y
}

/// Runs `gaincell attention` on q, k, v in a fresh folder; returns the folder and the process output.
fn run_attention(
    chip: &str,
    shape: &[usize],
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    for (name, x) in [("q", q), ("k", k), ("v", v)] {
        save(&dir.path().join(format!("{name}.npy")), shape, x);
    }
    let p = |n: &str| dir.path().join(n).display().to_string();
    let out = gaincell(&[
        "attention",
        "--chip",
        chip,
        "--q",
        &p("q.npy"),
        "--k",
        &p("k.npy"),
        "--v",
        &p("v.npy"),
        "--out-dir",
        &p("sim"),
    ]);
    (dir, out)
}

#[test]
fn single_64x64_array_matches_the_published_array_formula() {
    // The reference's own single-array check: Q in [0,1], K, V in [0,0.9], no quantisation, no leakage.
    let (t, d) = (64, 64);
    let (q, k, v) = (
        uniform(t * d, 0.0, 1.0, 1),
        uniform(t * d, 0.0, 0.9, 2),
        uniform(t * d, 0.0, 0.9, 3),
    );
    let (dir, out) = run_attention(
        "paper-nonlinear-ideal",
        &[t, d],
        q.clone(),
        k.clone(),
        v.clone(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("q 0 of 4096"), "{stdout}");
    let scores = load(&dir.path().join("sim/scores.npy"));
    let phi = load(&dir.path().join("sim/phi.npy"));
    let o = load(&dir.path().join("sim/out.npy"));
    assert_eq!(
        (scores.shape(), phi.shape(), o.shape()),
        ([t, t].as_slice(), [t, t].as_slice(), [t, d].as_slice())
    );

    let at = |x: &[f32], i: usize, c: usize| x[i * d + c] as f64;
    let (mut worst_s, mut worst_phi, mut worst_out) = (0.0f64, 0.0f64, 0.0f64);
    for i in 0..t {
        let mut acc = vec![0.0f64; d];
        for j in 0..t {
            let (s, scale) = if j <= i {
                let terms: Vec<f64> = (0..d)
                    .map(|c| at(&q, i, c) * f(at(&k, j, c) - 0.45))
                    .collect();
                (
                    terms.iter().sum::<f64>(),
                    terms.iter().map(|x| x.abs()).sum::<f64>(),
                )
            } else {
                (0.0, 1.0)
            };
            let ph = (s / 80.0).clamp(0.0, 1.0);
            worst_s = worst_s.max((scores[[i, j]] as f64 - s).abs() / scale.max(1.0));
            worst_phi = worst_phi.max((phi[[i, j]] as f64 - ph).abs());
            for (c, a) in acc.iter_mut().enumerate() {
                *a += ph * f(at(&v, j, c) - 0.45);
            }
        }
        for (c, a) in acc.iter().enumerate() {
            worst_out = worst_out.max((o[[i, c]] as f64 - (a / 40.0).clamp(-1.0, 1.0)).abs());
        }
    }
    assert!(
        worst_s < 1e-6 && worst_phi < 1e-6 && worst_out < 1e-6,
        "S {worst_s:e}, φ {worst_phi:e}, out {worst_out:e}"
    );
}

#[test]
fn leading_dimensions_are_kept_and_clamping_is_counted() {
    let shape = [2, 3, 70, 64];
    let n: usize = shape.iter().product();
    let (dir, out) = run_attention(
        "paper-nonlinear",
        &shape,
        uniform(n, -0.5, 1.5, 4),
        uniform(n, 0.0, 0.9, 5),
        uniform(n, 0.0, 0.9, 6),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        load(&dir.path().join("sim/scores.npy")).shape(),
        &[2, 3, 70, 70]
    );
    assert_eq!(
        load(&dir.path().join("sim/out.npy")).shape(),
        &[2, 3, 70, 64]
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Half of U(−0.5, 1.5) lies outside [0, 1].
    let clamped: usize = stdout
        .split("q ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (clamped as f64 - n as f64 / 2.0).abs() < n as f64 * 0.02,
        "{stdout}"
    );
}

/// Exit code 2 and one line on stderr that says what was wrong.
fn assert_clean_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("error:") && stderr.contains(needle),
        "expected `{needle}` in: {stderr}"
    );
}

#[test]
fn bad_inputs_give_one_clear_line_and_exit_code_2() {
    let ok = || uniform(8 * 64, 0.0, 0.9, 7);
    let (_d, out) = run_attention("paper-nonlinear", &[8 * 64], ok(), ok(), ok());
    assert_clean_error(&out, "give [T, D], [B, T, D] or [B, H, T, D]");

    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    save(&dir.path().join("q.npy"), &[8, 64], ok());
    save(
        &dir.path().join("k.npy"),
        &[9, 64],
        uniform(9 * 64, 0.0, 0.9, 8),
    );
    save(&dir.path().join("v.npy"), &[8, 64], ok());
    save(
        &dir.path().join("d32.npy"),
        &[8, 32],
        uniform(8 * 32, 0.0, 0.9, 9),
    );
    let mut nan = ok();
    nan[17] = f32::NAN;
    save(&dir.path().join("nan.npy"), &[8, 64], nan);
    ndarray_npy::write_npy(
        dir.path().join("f64.npy"),
        &ndarray::Array2::<f64>::zeros((8, 64)),
    )
    .unwrap();
    let run = |chip: &str, q: &str, k: &str, v: &str| {
        gaincell(&[
            "attention",
            "--chip",
            chip,
            "--q",
            &p(q),
            "--k",
            &p(k),
            "--v",
            &p(v),
            "--out-dir",
            &p("o"),
        ])
    };
    assert_clean_error(
        &run("paper-nonlinear", "q.npy", "k.npy", "v.npy"),
        "same shape",
    );
    assert_clean_error(
        &run("paper-nonlinear", "q.npy", "d32.npy", "v.npy"),
        "same shape",
    );
    assert_clean_error(
        &run("paper-nonlinear", "d32.npy", "d32.npy", "d32.npy"),
        "head_dim = 64",
    );
    assert_clean_error(&run("paper-nonlinear", "nan.npy", "v.npy", "v.npy"), "NaN");
    assert_clean_error(
        &run("paper-nonlinear", "f64.npy", "v.npy", "v.npy"),
        "float32",
    );
    assert_clean_error(
        &run("paper-nonlinear", "missing.npy", "v.npy", "v.npy"),
        "no such file",
    );
    assert_clean_error(
        &run("paper-nonlinaer", "q.npy", "v.npy", "v.npy"),
        "unknown chip `paper-nonlinaer`",
    );

    std::fs::write(
        dir.path().join("neg.toml"),
        "base = \"paper-nonlinear\"\n[key]\nbits = -3\n",
    )
    .unwrap();
    assert_clean_error(&run(&p("neg.toml"), "q.npy", "v.npy", "v.npy"), "key.bits");
    std::fs::write(
        dir.path().join("win.toml"),
        "base = \"paper-nonlinear\"\n[geometry]\nwindow = 1000\n",
    )
    .unwrap();
    assert_clean_error(
        &run(&p("win.toml"), "q.npy", "v.npy", "v.npy"),
        "not a multiple of geometry.tile_rows",
    );
    std::fs::write(
        dir.path().join("broken.toml"),
        "base = \"paper-nonlinear\"\n[key\nbits = 3\n",
    )
    .unwrap();
    assert_clean_error(&gaincell(&["chip", "check", &p("broken.toml")]), "line 2");
}

#[test]
fn chip_show_prints_a_file_that_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    for preset in ["software", "paper-linear", "paper-nonlinear-ideal"] {
        let out = gaincell(&["chip", "show", preset]);
        assert!(out.status.success());
        let path = dir.path().join(format!("{preset}.toml"));
        std::fs::write(&path, &out.stdout).unwrap();
        let check = gaincell(&["chip", "check", &path.display().to_string()]);
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        assert!(String::from_utf8_lossy(&check.stdout).starts_with(preset));
    }
    let list = String::from_utf8_lossy(&gaincell(&["chip", "list"]).stdout).to_string();
    assert!(list.contains("paper-nonlinear-ideal") && list.contains("software-window"));
}
