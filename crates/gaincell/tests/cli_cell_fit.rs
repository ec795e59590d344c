//! `gaincell cell fit` from the outside: the paper's cubic from the reference's SPICE sweep (when ../shared is
//! there), the synthetic fixture's 1-D, weighted and 2-D fits against numpy (scripts/make_cell_fit_fixture.py),
//! .npy and .npz inputs, the chip file it writes, and one-line errors for bad tables.

mod common;

use std::path::{Path, PathBuf};

use common::{fails_with, gaincell, stdout};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cell-fit")
}

fn synthetic() -> PathBuf {
    fixtures().join("synthetic_iv.csv")
}

fn fixture_json(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Run `cell fit` on `iv` with `extra` options, the chip file in a temporary folder; the JSON result.
fn fit_json(iv: &Path, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("chip.toml");
    let mut args = vec![
        "cell",
        "fit",
        "--iv",
        iv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
        "-",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&stdout(&gaincell(&args))).unwrap()
}

#[track_caller]
fn close(got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= rel * w.abs().max(1e-12),
            "{got:?} vs {want:?} (relative tolerance {rel})"
        );
    }
}

/// The reference's SPICE sweep beside the checkout, or `None` (with a message) when it is absent.
fn shared_sweep() -> Option<PathBuf> {
    let path = match std::env::var_os("GAINCELL_SHARED") {
        Some(s) => PathBuf::from(s).join("data/spice/authors_gain_cell_iv.csv"),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/spice/authors_gain_cell_iv.csv"),
    };
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipped: {} is absent (the shared data folder beside the checkout, or $GAINCELL_SHARED)",
            path.display()
        );
        None
    }
}

#[test]
fn the_reference_sweep_gives_the_papers_cubic() {
    let Some(iv) = shared_sweep() else { return };
    let r = fit_json(&iv, &["--v-in", "0.9", "--degree", "3", "--offset", "0.45"]);
    let got = floats(&r["coefficients"]);
    close(&got, &[0.52136, 13.6123, -2.62045, 46.0548], 1e-4);
    let numpy = fixture_json("authors_fit.json");
    close(&got, &floats(&numpy["fit_1d"]["coefficients"]), 1e-10);
    assert_eq!(r["n_points"], 50);
    let r2 = r["r_squared"].as_f64().unwrap();
    assert!((r2 - numpy["fit_1d"]["r_squared"].as_f64().unwrap()).abs() < 1e-12);
    let r = fit_json(&iv, &["--form", "2d"]);
    close(
        &floats(&r["coefficients"]),
        &floats(&numpy["fit_2d"]["collapsed_at_v_in"]),
        1e-8,
    );
}

#[test]
fn synthetic_table_1d_fit_matches_numpy() {
    let want = fixture_json("synthetic_fit.json");
    let r = fit_json(&synthetic(), &[]);
    close(
        &floats(&r["coefficients"]),
        &floats(&want["fit_1d"]["coefficients"]),
        1e-10,
    );
    assert_eq!(r["n_points"], want["fit_1d"]["n_points"]);
    for (got, key) in [
        (&r["residuals"]["rms_ua"], "rms_ua"),
        (&r["residuals"]["max_abs_ua"], "max_abs_ua"),
        (&r["r_squared"], "r_squared"),
    ] {
        close(
            &[got.as_f64().unwrap()],
            &[want["fit_1d"][key].as_f64().unwrap()],
            1e-6,
        );
    }
}

#[test]
fn synthetic_table_weighted_fit_matches_numpy() {
    let want = fixture_json("synthetic_fit.json");
    let r = fit_json(&synthetic(), &["--weighted"]);
    close(
        &floats(&r["coefficients"]),
        &floats(&want["fit_1d_weighted"]["coefficients"]),
        1e-10,
    );
    assert_eq!(r["weights"]["levels_v"].as_array().unwrap().len(), 8);
}

#[test]
fn synthetic_table_2d_fit_matches_numpy() {
    let want = fixture_json("synthetic_fit.json");
    let r = fit_json(&synthetic(), &["--form", "2d", "--degree-v-in", "3"]);
    let got: Vec<f64> = r["fit_2d"]["coefficients"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(floats)
        .collect();
    let numpy: Vec<f64> = want["fit_2d"]["coefficients_2d"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(floats)
        .collect();
    let scale = numpy.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert_eq!(got.len(), 16);
    for (g, w) in got.iter().zip(&numpy) {
        assert!((g - w).abs() < 1e-8 * scale, "{got:?} vs {numpy:?}");
    }
    close(
        &floats(&r["coefficients"]),
        &floats(&want["fit_2d"]["collapsed_at_v_in"]),
        1e-8,
    );
    assert_eq!(r["fit_2d"]["n_points"], 300);
}

/// The synthetic table's columns (V, V, A) as the CSV holds them.
fn synthetic_columns() -> [Vec<f64>; 3] {
    let text = std::fs::read_to_string(synthetic()).unwrap();
    let mut cols: [Vec<f64>; 3] = Default::default();
    for line in text.lines().skip(1) {
        for (c, x) in cols.iter_mut().zip(line.split(',')) {
            c.push(x.parse().unwrap());
        }
    }
    cols
}

#[test]
fn npy_and_npz_tables_give_the_csv_fit() {
    let dir = tempfile::tempdir().unwrap();
    let [vs, vi, ia] = synthetic_columns();
    let n = vs.len();
    let mut flat = Vec::with_capacity(3 * n);
    for k in 0..n {
        flat.extend([vs[k], vi[k], ia[k]]);
    }
    let npy = dir.path().join("iv.npy");
    let a = ndarray::Array2::from_shape_vec((n, 3), flat).unwrap();
    ndarray_npy::write_npy(&npy, &a).unwrap();
    let dev = candle_core::Device::Cpu;
    let t = |v: &Vec<f64>| candle_core::Tensor::from_vec(v.clone(), n, &dev).unwrap();
    let npz = dir.path().join("iv.npz");
    candle_core::Tensor::write_npz(
        &[("v_store", t(&vs)), ("v_in", t(&vi)), ("i_out", t(&ia))],
        &npz,
    )
    .unwrap();
    let npz_units = dir.path().join("iv-units.npz");
    candle_core::Tensor::write_npz(
        &[
            ("v_store_v", t(&vs)),
            ("v_in_v", t(&vi)),
            ("i_out_a", t(&ia)),
        ],
        &npz_units,
    )
    .unwrap();
    let csv = floats(&fit_json(&synthetic(), &[])["coefficients"]);
    for path in [&npy, &npz, &npz_units] {
        close(&floats(&fit_json(path, &[])["coefficients"]), &csv, 1e-12);
    }
    // A NaN in an array is named by row and column.
    let mut bad = a.clone();
    bad[[2, 2]] = f64::NAN;
    let bad_npy = dir.path().join("bad.npy");
    ndarray_npy::write_npy(&bad_npy, &bad).unwrap();
    let out = dir.path().join("out.toml");
    fails_with(
        &[
            "cell",
            "fit",
            "--iv",
            bad_npy.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        "bad.npy: row 2 (from 0), column 2 (I) is NaN",
    );
    assert!(!out.exists());
}

#[test]
fn unit_suffixes_are_converted() {
    // The same table in mV and nA fits to the same coefficients (currents in µA, y in V).
    let dir = tempfile::tempdir().unwrap();
    let [vs, vi, ia] = synthetic_columns();
    let mut text = String::from("i_out_na,v_store_mv,v_in_mv\n");
    for k in 0..vs.len() {
        text.push_str(&format!(
            "{:?},{:?},{:?}\n",
            ia[k] * 1e9,
            vs[k] * 1e3,
            vi[k] * 1e3
        ));
    }
    let path = dir.path().join("iv-mv.csv");
    std::fs::write(&path, text).unwrap();
    let csv = floats(&fit_json(&synthetic(), &[])["coefficients"]);
    close(
        &floats(&fit_json(&path, &["--v-in", "0.9"])["coefficients"]),
        &csv,
        1e-8,
    );
}

#[test]
fn the_chip_file_loads_and_shows_the_fitted_coefficients() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fitted.toml");
    let plot = dir.path().join("plots/fit");
    let json = dir.path().join("fit.json");
    let text = stdout(&gaincell(&[
        "cell",
        "fit",
        "--iv",
        synthetic().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]));
    assert!(text.contains("coefficients (µA, constant first)"), "{text}");
    assert!(text.contains("R² = "), "{text}");
    let file = std::fs::read_to_string(&out).unwrap();
    assert!(file.starts_with("# Cell curve fitted by `gaincell cell fit` to "));
    assert!(
        file.contains("synthetic_iv.csv")
            && file.contains("v_in = 0.9 V")
            && file.contains("degree 3")
    );
    assert!(file.contains("R² = "));
    assert!(file.contains("base = \"paper-nonlinear\""), "{file}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let shown = stdout(&gaincell(&["chip", "show", out.to_str().unwrap()]));
    assert!(shown.contains("kind = \"polynomial\""), "{shown}");
    let line = shown
        .lines()
        .find(|l| l.starts_with("coefficients = "))
        .unwrap();
    let inner = line
        .trim_start_matches("coefficients = [")
        .trim_end_matches(']');
    let shown_c: Vec<f64> = inner
        .split(',')
        .map(|x| x.trim().parse().unwrap())
        .collect();
    // serde_json's float parsing may be one ulp off the shortest representation the TOML holds.
    close(&shown_c, &floats(&r["coefficients"]), 1e-14);
    stdout(&gaincell(&["chip", "check", out.to_str().unwrap()]));
    for ext in ["png", "svg"] {
        let p = dir.path().join(format!("plots/fit.{ext}"));
        assert!(std::fs::metadata(&p).unwrap().len() > 1000, "{p:?}");
    }
    // Written through a temporary name and a rename: nothing else is left in the folder.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["fit.json", "fitted.toml", "plots"]);
}

#[test]
fn the_chip_file_can_go_to_standard_output() {
    let text = stdout(&gaincell(&[
        "cell",
        "fit",
        "--iv",
        synthetic().to_str().unwrap(),
        "--out",
        "-",
        "--base",
        "paper-linear",
    ]));
    assert!(text.starts_with("# Cell curve fitted"), "{text}");
    assert!(text.contains("base = \"paper-linear\""));
}

/// Each bad table is a one-line error (exit 2) naming the problem, and neither the table nor an existing --out
/// file changes.
#[test]
fn bad_tables_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.toml");
    std::fs::write(&out, "old").unwrap();
    let good = "v_store_v,v_in_v,i_out_a\n0.0,0.9,-1e-5\n0.2,0.9,-4e-6\n0.4,0.9,0.1e-6\n0.6,0.9,3e-6\n0.8,0.9,8e-6\n";
    let cases: Vec<(&str, String, Vec<&str>, &str)> = vec![
        (
            "few.csv",
            "v_store_v,v_in_v,i_out_a\n0.1,0.9,1e-6\n0.2,0.9,2e-6\n0.3,0.9,3e-6\n".into(),
            vec![],
            "only 3 point(s) at v_in = 0.9 V: a degree-3 fit needs at least 4",
        ),
        ("degree.csv", good.into(), vec!["--degree", "5"], "a degree-5 fit needs at least 6"),
        ("degree0.csv", good.into(), vec!["--degree", "0"], "--degree 0 is out of range"),
        ("degree8.csv", good.into(), vec!["--degree", "8"], "at most 8 coefficients"),
        (
            "unsorted.csv",
            "v_store_v,v_in_v,i_out_a\n0.0,0.9,1e-6\n0.4,0.9,2e-6\n0.2,0.9,3e-6\n0.6,0.9,4e-6\n0.8,0.9,5e-6\n"
                .into(),
            vec![],
            "do not strictly increase: line 4 has v_store = 0.2 V",
        ),
        (
            "duplicate.csv",
            "v_store_v,v_in_v,i_out_a\n0.0,0.9,1e-6\n0.2,0.9,2e-6\n0.2,0.9,3e-6\n0.6,0.9,4e-6\n0.8,0.9,5e-6\n"
                .into(),
            vec![],
            "do not strictly increase",
        ),
        (
            "nan.csv",
            good.replace("0.4,0.9,0.1e-6", "0.4,0.9,NaN"),
            vec![],
            "line 4, column `i_out_a` is NaN",
        ),
        (
            "inf.csv",
            good.replace("0.6,0.9", "inf,0.9"),
            vec![],
            "line 5, column `v_store_v` is inf",
        ),
        (
            "mixed.csv",
            good.replace("v_in_v", "v_in_mv"),
            vec![],
            "mixed voltage units in the header: column `v_store_v` is in v but `v_in_mv` in mv",
        ),
        (
            "nounit.csv",
            good.replace("i_out_a", "i_out"),
            vec![],
            "column `i_out` has no unit",
        ),
        (
            "wrongunit.csv",
            good.replace("v_store_v", "v_store_a"),
            vec![],
            "column `v_store_a`: `a` is not a voltage unit",
        ),
        (
            "unknown.csv",
            good.replace("i_out_a", "current_a"),
            vec![],
            "unknown column `current_a`",
        ),
        (
            "twice.csv",
            good.replace("v_in_v,i_out_a", "v_store_mv,i_out_a"),
            vec![],
            "columns `v_store_v` and `v_store_mv` both give v_store",
        ),
        (
            "noheader.csv",
            good.replace("v_store_v,v_in_v,i_out_a\n", ""),
            vec![],
            "not a header",
        ),
        (
            "vin.csv",
            good.into(),
            vec!["--v-in", "0.8"],
            "no row has v_in = 0.8 V (within 1e-9 V); the table's read voltages are 0.9",
        ),
    ];
    for (name, text, extra, needle) in cases {
        let iv = dir.path().join(name);
        std::fs::write(&iv, &text).unwrap();
        let mut args = vec![
            "cell",
            "fit",
            "--iv",
            iv.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        fails_with(&args, needle);
        let err = String::from_utf8(gaincell(&args).stderr).unwrap();
        assert!(
            err.contains(name) || needle.starts_with("--degree") || needle.contains("coefficients"),
            "names the file: {err}"
        );
        assert_eq!(
            std::fs::read_to_string(&iv).unwrap(),
            text,
            "{name} unchanged"
        );
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "old",
            "{name}: --out unchanged"
        );
    }
    // The missing read voltage lists a few of those there are.
    if let Some(iv) = shared_sweep() {
        fails_with(
            &[
                "cell",
                "fit",
                "--iv",
                iv.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--v-in",
                "0.95",
            ],
            "read voltages are 0.45, 0.459, 0.468",
        );
    }
    // An output on top of the input is refused before anything is written.
    let iv = dir.path().join("good.csv");
    std::fs::write(&iv, good).unwrap();
    fails_with(
        &[
            "cell",
            "fit",
            "--iv",
            iv.to_str().unwrap(),
            "--out",
            iv.to_str().unwrap(),
        ],
        "is the input --iv",
    );
    assert_eq!(std::fs::read_to_string(&iv).unwrap(), good);
}
