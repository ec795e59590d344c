//! The paper presets against the paper's published figures (docs/cost-model.md), each within 2 %.

use gaincell_chip::preset;
use gaincell_cost::{evaluate, published_baselines, CostReport, ModelShape};

const PAPER_PRESETS: &[&str] = &[
    "paper-linear",
    "paper-nonlinear",
    "paper-linear-ideal",
    "paper-nonlinear-ideal",
];

fn gpt2(chip: &str) -> CostReport {
    evaluate(
        &preset(chip).unwrap(),
        &ModelShape::builtin("gpt2").unwrap(),
        &published_baselines(),
    )
    .unwrap()
}

#[track_caller]
fn within_2_percent(what: &str, got: f64, published: f64) {
    let rel = (got / published - 1.0).abs();
    assert!(
        rel <= 0.02,
        "{what}: {got} vs published {published} ({:.2} % off)",
        rel * 100.0
    );
}

#[test]
fn latency_is_65_ns_per_token_per_layer() {
    for chip in PAPER_PRESETS {
        within_2_percent(chip, gpt2(chip).latency.total_ns, 65.0);
    }
}

#[test]
fn energy_breakdown_per_head_per_token_matches_the_paper() {
    for chip in PAPER_PRESETS {
        let e = gpt2(chip).energy;
        within_2_percent("Φ(Q·Kᵀ) arrays", e.qk_pj, 1120.0);
        within_2_percent("Φ(S)·V arrays", e.pv_pj, 700.0);
        within_2_percent("digital control and routing", e.digital_pj, 4000.0);
        within_2_percent("DACs", e.dac_pj, 330.0);
        within_2_percent("total per head", e.total_pj, 6150.0);
    }
}

#[test]
fn a_gpt2_layer_takes_73_8_nj_per_token() {
    let r = gpt2("paper-nonlinear");
    within_2_percent("12 heads", r.energy_pj.per_layer * 1e-3, 73.8);
    // Whole model: 12 layers of 12 heads.
    within_2_percent("12 layers", r.energy_pj.per_model * 1e-3, 12.0 * 73.8);
    within_2_percent("model latency", r.model_latency_ns, 12.0 * 65.0);
}

#[test]
fn ratios_against_both_gpus_match_the_published_ones() {
    let r = gpt2("paper-nonlinear");
    let by_name = |n: &str| r.comparisons.iter().find(|c| c.baseline == n).unwrap();
    let rtx = by_name("RTX 4090");
    let nano = by_name("Jetson Nano");
    within_2_percent("RTX 4090 speed-up", rtx.speedup, 344.0);
    within_2_percent("Jetson Nano speed-up", nano.speedup, 7521.0);
    within_2_percent("RTX 4090 energy ratio", rtx.energy_ratio, 97_000.0);
    within_2_percent("Jetson Nano energy ratio", nano.energy_ratio, 44_000.0);
    // The paper's rounded GPU figures, compared with the paper's own chip figures.
    within_2_percent("RTX 4090 latency", rtx.gpu_latency_s, 22.4e-6);
    within_2_percent("RTX 4090 energy", rtx.gpu_energy_j, 7.18e-3);
    within_2_percent("Jetson latency", nano.gpu_latency_s, 489e-6);
    within_2_percent("Jetson energy", nano.gpu_energy_j, 3.25e-3);
    // What is compared: one layer's latency, and 12 heads' energy (the GPU workload's heads).
    within_2_percent("chip side of the energy ratio", rtx.chip_energy_j, 73.8e-9);
    assert_eq!(rtx.chip_latency_s, r.latency.total_ns * 1e-9);
    assert!(rtx.caveats.is_empty() && nano.caveats.is_empty());
}

#[test]
fn counts_of_the_paper_chip() {
    let r = gpt2("paper-nonlinear");
    let c = &r.counts;
    assert_eq!((c.sub_tiles, c.adder_depth, c.additions), (16, 4, 15 * 64));
    assert_eq!(c.cells, 2 * 64 * 1024);
    assert_eq!(r.cells.per_layer, (12 * 2 * 64 * 1024) as f64);
    assert_eq!(r.cells.per_model, (12 * 12 * 2 * 64 * 1024) as f64);
    assert_eq!(r.arrays.per_model, (12 * 12 * 2) as f64);
    assert_eq!(r.sub_tiles.per_head, 32.0);
}

#[test]
fn retention_needed_by_a_gpt2_window() {
    let r = gpt2("paper-nonlinear").retention;
    // 12 layers × 65 ns between two tokens; a column lives 1,024 of them.
    assert!((r.token_period_s - 780e-9).abs() < 1e-15);
    assert!((r.column_lifetime_s - 1024.0 * 780e-9).abs() < 1e-12);
    assert_eq!(r.oldest_age_tokens, 1023);
    assert!((r.oldest_decay - (-1.6e-4f64 * 1023.0).exp()).abs() < 1e-12);
    // docs/chip-model.md#leakage: λ = 1.6e-4 stands for ≈ 5 ms retention at this token period.
    let implied = r.implied_retention_s.unwrap();
    assert!((implied - 780e-9 / 1.6e-4).abs() < 1e-12 && (implied / 5e-3 - 1.0).abs() < 0.03);
    assert!((r.silicon_lambda_per_token - 780e-9 / 5e-3).abs() < 1e-12);
}
