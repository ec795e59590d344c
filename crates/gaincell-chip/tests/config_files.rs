//! Loading user TOML files: overrides on a preset, and a clear error for each impossible value.

use gaincell_chip::{CellCurve, ChipConfig, ChipError};

fn load(text: &str) -> Result<ChipConfig, ChipError> {
    ChipConfig::from_toml_str(text, "test.toml")
}

/// The error text, which must fit on one line.
fn err(text: &str) -> String {
    let e = load(text).unwrap_err().to_string();
    assert!(!e.contains('\n'), "errors are one line: {e}");
    e
}

#[test]
fn a_partial_file_overrides_only_what_it_names() {
    let c = load("base = \"paper-nonlinear\"\nname = \"mine\"\n[key]\nbits = 4\n").unwrap();
    assert_eq!(c.name, "mine");
    assert_eq!(c.key.levels(), 16);
    assert_eq!(c.key.max, 0.9);
    assert_eq!(c.value.levels(), 8);
}

#[test]
fn retention_and_token_period_derive_lambda() {
    let c =
        load("base = \"paper-linear\"\n[leakage]\nretention_s = 5e-3\ntoken_period_s = 780e-9\n")
            .unwrap();
    assert!((c.lambda() - 1.56e-4).abs() < 1e-12);
    assert!(c.leakage.lambda_per_token.is_none());
}

#[test]
fn changing_the_curve_kind_replaces_the_cell_table() {
    let c = load("base = \"paper-nonlinear\"\n[cell]\nkind = \"sigmoid\"\n").unwrap();
    assert_eq!(
        c.cell,
        CellCurve::Sigmoid {
            steepness: 10.0,
            span: 19.3,
            half_range: 0.45
        }
    );
}

#[test]
fn impossible_values_name_the_field() {
    let e = err("base = \"paper-nonlinear\"\n[geometry]\nwindow = 1000\n");
    assert!(
        e.contains("geometry.window") && e.contains("multiple"),
        "{e}"
    );
    let e = err("base = \"paper-nonlinear\"\n[key]\nbits = -1\n");
    assert!(e.contains("bits") && e.contains("-1"), "{e}");
    let e = err("base = \"paper-nonlinear\"\n[key]\nbits = 0\n");
    assert!(e.contains("key.bits"), "{e}");
    let e = err("base = \"paper-nonlinear\"\n[readout]\ns_sat = -80.0\n");
    assert!(e.contains("readout.s_sat"), "{e}");
    let e = err("base = \"paper-nonlinear\"\n[query]\nmin = 1.0\nmax = 0.0\n");
    assert!(e.contains("query.min"), "{e}");
    let e = err("base = \"nope\"\n");
    assert!(e.contains("`base`") && e.contains("paper-linear"), "{e}");
    let e = err("base = \"paper-nonlinear\"\n[geometry]\nwindows = 5\n");
    assert!(e.contains("windows"), "{e}");
    let e = err("base = \"paper-nonlinear\"\n[cell]\nkind = \"power\"\nexponent = 2\n");
    assert!(e.contains("cell.exponent"), "{e}");
    let e = err("name = \"x\"\n");
    assert!(e.contains("missing field") && e.contains("base ="), "{e}");
}

#[test]
fn unknown_preset_lists_the_known_ones() {
    let e = ChipConfig::load("paper-nonlinaer").unwrap_err().to_string();
    assert!(
        e.contains("paper-nonlinaer") && e.contains("paper-nonlinear-ideal"),
        "{e}"
    );
}

#[test]
fn noise_and_refresh_errors_name_the_field() {
    let b = "base = \"paper-nonlinear\"\n";
    let e = err(&format!("{b}[variation]\ncell_gain_sigma = -0.1\n"));
    assert!(
        e.contains("variation.cell_gain_sigma") && e.contains("-0.1"),
        "{e}"
    );
    let e = err(&format!("{b}[noise]\nwrite_sigma_v = -1e-3\n"));
    assert!(e.contains("noise.write_sigma_v"), "{e}");
    let e = err(&format!("{b}[noise]\nread_sigma = 0.1\n"));
    assert!(e.contains("read_sigma") && e.contains("noise"), "{e}");
    let e = err(&format!("{b}[variation]\ncell_gain = 0.1\n"));
    assert!(e.contains("cell_gain") && e.contains("variation"), "{e}");
    let e = err(&format!("{b}[refresh]\nevery_tokens = 2048\n"));
    assert!(
        e.contains("refresh.every_tokens") && e.contains("geometry.window"),
        "{e}"
    );
    let e = err(&format!("{b}[refresh]\nevery_tokens = 0\n"));
    assert!(e.contains("refresh.every_tokens"), "{e}");
    let e = err(&format!("{b}[refresh]\nmax_age_fraction = 1.5\n"));
    assert!(e.contains("refresh.max_age_fraction"), "{e}");
    let e = err(&format!(
        "{b}[refresh]\nevery_tokens = 10\nmax_age_fraction = 0.1\n"
    ));
    assert!(e.contains("refresh.every_tokens"), "{e}");
}

#[test]
fn noise_sections_default_to_off_and_load_back() {
    let c = load("base = \"paper-nonlinear\"\n").unwrap();
    assert!(c.variation.is_off() && c.noise.is_off() && c.refresh_period().is_none());
    assert!(
        !c.to_toml_string().contains("[variation]"),
        "presets print as before"
    );
    let c = load(
        "base = \"paper-nonlinear\"\n[variation]\nseed = 4\ncell_gain_sigma = 0.02\n\
         [noise]\nscore_read_sigma_ua = 0.5\n[refresh]\nevery_tokens = 100\n",
    )
    .unwrap();
    assert_eq!(c.variation.seed, 4);
    assert_eq!(c.variation.cell_offset_sigma_v, 0.0);
    assert_eq!(c.refresh_period(), Some(100));
    let back = ChipConfig::from_toml_str(&c.to_toml_string(), "back").unwrap();
    assert_eq!(back, c);
    // λ = 1.6e-4: ages up to ⌊−ln(0.99)/λ⌋ = 62 keep the decay within 1 %, so N = 63.
    let c = load("base = \"paper-nonlinear\"\n[refresh]\nmax_age_fraction = 0.01\n").unwrap();
    assert_eq!(c.refresh_period(), Some(63));
    let c = load("base = \"paper-nonlinear-ideal\"\n[refresh]\nmax_age_fraction = 0.01\n").unwrap();
    assert_eq!(c.refresh_period(), None, "no leakage, nothing to refresh");
}
