//! Scaling laws, each checked against a formula written out here rather than the library's.

use gaincell_chip::{preset, ChipConfig};
use gaincell_cost::{evaluate, CostReport, ModelShape};

fn chip(overrides: &str) -> ChipConfig {
    ChipConfig::from_toml_str(
        &format!("base = \"paper-nonlinear\"\n{overrides}"),
        "test.toml",
    )
    .unwrap()
}

fn cost(c: &ChipConfig) -> CostReport {
    evaluate(c, &ModelShape::builtin("gpt2").unwrap(), &[]).unwrap()
}

fn window(w: usize) -> ChipConfig {
    chip(&format!("[geometry]\nwindow = {w}\n"))
}

#[test]
fn doubling_the_window_doubles_cells_and_array_area() {
    for w in [256, 512, 1024, 2048] {
        let (a, b) = (cost(&window(w)), cost(&window(2 * w)));
        assert_eq!(b.counts.cells, 2 * a.counts.cells);
        assert_eq!(b.cells.per_model, 2.0 * a.cells.per_model);
        assert_eq!(b.area.cells_um2, 2.0 * a.area.cells_um2);
        // Array energy doubles too: twice the MACs, conversions and readouts at the same pulse widths.
        assert!((b.energy.qk_pj / a.energy.qk_pj - 2.0).abs() < 1e-12);
        assert!((b.energy.pv_pj / a.energy.pv_pj - 2.0).abs() < 1e-12);
        // DACs write one column whatever the window.
        assert_eq!(b.energy.dac_pj, a.energy.dac_pj);
        // Periphery shared by the whole head (DACs, PWM drivers) does not grow: total area less than doubles.
        assert!(b.area_mm2.per_head < 2.0 * a.area_mm2.per_head);
        assert!(b.area_mm2.per_head > a.area_mm2.per_head);
    }
}

#[test]
fn the_window_changes_latency_only_through_the_adder_tree() {
    // Sub-tiles of 64: 4 → 8 → 16 → 32 sub-tiles, tree depth 2 → 3 → 4 → 5, one stage each.
    for (w, depth) in [(256, 2.0), (512, 3.0), (1024, 4.0), (2048, 5.0)] {
        let stage = 2.5;
        let c = chip(&format!(
            "[geometry]\nwindow = {w}\n[cost.timing]\nadder_stage_ns = {stage}\n"
        ));
        let expected = 15.0 + 15.0 + 16.0 + 15.0 + depth * stage;
        assert!(
            (cost(&c).latency.total_ns - expected).abs() < 1e-9,
            "W = {w}"
        );
    }
    // Without tiling there is no tree: the window does not change latency at all.
    let untiled = |w: usize| chip(&format!("[geometry]\nwindow = {w}\ntiling = false\n"));
    assert_eq!(cost(&untiled(256)).latency.total_ns, 61.0);
    assert_eq!(cost(&untiled(4096)).latency.total_ns, 61.0);
}

#[test]
fn latency_follows_the_configured_timing() {
    // 5-bit queries: 31 PWM steps of 1 ns instead of 15.
    assert_eq!(cost(&chip("[query]\nbits = 5\n")).latency.total_ns, 81.0);
    // 6-bit counters: 32 counts instead of 16.
    assert_eq!(cost(&chip("[output]\nbits = 6\n")).latency.total_ns, 81.0);
    // A write longer than the computation shows through the pipeline; without the pipeline it always adds.
    assert_eq!(
        cost(&chip("[cost.timing]\nwrite_ns = 100.0\n"))
            .latency
            .total_ns,
        100.0
    );
    assert_eq!(
        cost(&chip("[cost.timing]\npipelined_write = false\n"))
            .latency
            .total_ns,
        75.0
    );
}

#[test]
fn energy_terms_from_first_principles() {
    // A chip far from the paper's: 512-token window in 32-token sub-tiles, 5-bit queries, other constants.
    let c = chip(
        "[geometry]\nwindow = 512\ntile_rows = 32\n[query]\nbits = 5\n\
         [cost.energy]\ncell_current_ua = 4.0\nread_voltage_v = 0.8\nquery_activity = 0.3\nphi_activity = 0.1\n\
         score_c2p_pj = 0.5\nreadout_pj = 0.7\ndac_pj = 3.0\nadder_pj = 0.2\nio_pj = 2.0\ntile_control_pj = 10.0\n\
         [cost.timing]\npwm_step_ns = 0.5\nphi_pulse_max_ns = 20.0\n",
    );
    let e = cost(&c).energy;
    let (d, w, tiles) = (64.0, 512.0, 16.0);
    let t_max_ns = 31.0 * 0.5;
    // I (A) · V · t (s) per MAC, in pJ.
    let qk = d * w * (4.0e-6 * 0.8 * 0.3 * t_max_ns * 1e-9) * 1e12 + w * 0.5;
    let pv = d * w * (4.0e-6 * 0.8 * 0.1 * 20.0e-9) * 1e12 + tiles * d * 0.7;
    let digital = tiles * 10.0 + (tiles - 1.0) * d * 0.2 + 2.0 * d * 2.0;
    let dac = 2.0 * d * 3.0;
    for (name, got, want) in [
        ("qk", e.qk_pj, qk),
        ("pv", e.pv_pj, pv),
        ("digital", e.digital_pj, digital),
        ("dac", e.dac_pj, dac),
        ("total", e.total_pj, qk + pv + digital + dac),
    ] {
        assert!((got - want).abs() < 1e-9 * want, "{name}: {got} vs {want}");
    }
}

#[test]
fn area_from_cells_and_periphery() {
    let c = chip("[geometry]\nwindow = 2048\ntile_rows = 128\n");
    let a = cost(&c).area;
    let (d, w, tiles) = (64.0, 2048.0, 16.0);
    let cells = 2.0 * d * w * 0.5;
    let periphery = w * 25.0
        + tiles * d * 50.0
        + 2.0 * d * 40.0
        + d * 10.0
        + (tiles - 1.0) * d * 20.0
        + tiles * 100.0;
    assert_eq!(a.cells_um2, cells);
    assert!((a.total_um2 - (cells + periphery)).abs() < 1e-6);
}

#[test]
fn larger_tiles_mean_fewer_readouts_and_a_shallower_tree() {
    let r64 = cost(&chip("[geometry]\ntile_rows = 64\n"));
    let r128 = cost(&chip("[geometry]\ntile_rows = 128\n"));
    assert_eq!(r128.counts.readouts * 2, r64.counts.readouts);
    assert_eq!(r128.counts.adder_depth + 1, r64.counts.adder_depth);
    assert_eq!(r128.latency.total_ns + 1.0, r64.latency.total_ns);
    assert_eq!(r128.counts.cells, r64.counts.cells);
}

#[test]
fn models_scale_per_layer_and_per_head() {
    let c = preset("paper-nonlinear").unwrap();
    let xl = evaluate(&c, &ModelShape::builtin("gpt2-xl").unwrap(), &[]).unwrap();
    let head = xl.energy.total_pj;
    assert!((xl.energy_pj.per_layer - 25.0 * head).abs() < 1e-6);
    assert!((xl.energy_pj.per_model - 48.0 * 25.0 * head).abs() < 1e-3);
    assert_eq!(xl.cells.per_model, (48 * 25 * 2 * 64 * 1024) as f64);
    assert_eq!(xl.model_latency_ns, 48.0 * xl.latency.total_ns);
    // The token period grows with the layer count, and with it the time a column must hold.
    assert!((xl.retention.token_period_s - 48.0 * 65e-9).abs() < 1e-15);
}

#[test]
fn a_given_token_period_sets_the_retention_requirement() {
    let c = chip("[leakage]\nretention_s = 5e-3\ntoken_period_s = 1e-6\n");
    let r = cost(&c).retention;
    assert_eq!(r.token_period_s, 1e-6);
    assert!((r.column_lifetime_s - 1024e-6).abs() < 1e-15);
    assert!((r.lambda_per_token - 2e-4).abs() < 1e-15);
    assert!((r.implied_retention_s.unwrap() - 5e-3).abs() < 1e-12);
}

#[test]
fn refresh_costs_rewrites_per_token() {
    let plain = cost(&preset("paper-nonlinear").unwrap());
    assert_eq!(plain.energy.refresh_pj, 0.0);
    assert_eq!(plain.latency.refresh_ns, 0.0);
    // Every 100 tokens in a 1,024-token window: columns are rewritten at ages 100, 200, …, 1000, so 10 are due at
    // each token, 2 · 64 values each through the DACs.
    let r = cost(&chip("[refresh]\nevery_tokens = 100\n"));
    assert_eq!(r.counts.refresh_columns, 10);
    let e = &preset("paper-nonlinear").unwrap().cost;
    let want_pj = 10.0 * 128.0 * e.energy.dac_pj;
    assert!((r.energy.refresh_pj - want_pj).abs() < 1e-9 * want_pj);
    assert!((r.energy.total_pj - plain.energy.total_pj - want_pj).abs() < 1e-9 * want_pj);
    assert_eq!(r.latency.refresh_ns, 10.0 * e.timing.write_ns);
    // The writes queue on the DACs: pipelined, only what exceeds the computation adds to the token's time.
    let writes = 11.0 * e.timing.write_ns;
    let exposed = (writes - r.latency.compute_ns).max(0.0);
    assert_eq!(r.latency.write_exposed_ns, exposed);
    assert_eq!(r.latency.total_ns, r.latency.compute_ns + exposed);
}
