//! Every constant the cost model reads from a chip, with its value, unit and provenance (`gaincell cost --explain`).

use gaincell_chip::{ChipConfig, ParamInfo, Provenance};

/// The chip fields outside `[cost]` that the cost model uses, then every `[cost]` constant.
pub fn explain(chip: &ChipConfig) -> Vec<ParamInfo> {
    let paper = gaincell_chip::preset("paper-nonlinear").expect("the paper preset exists");
    let g = &chip.geometry;
    let row = |field: &str, value: String, paper_value: String, unit, source| ParamInfo {
        field: field.to_string(),
        is_paper_value: value == paper_value,
        value,
        unit,
        provenance: Provenance::Published,
        source,
    };
    let mut rows = vec![
        row(
            "geometry.head_dim",
            g.head_dim.to_string(),
            paper.geometry.head_dim.to_string(),
            "rows",
            "the paper: a GPT-2 head has 64 dims, one array row each",
        ),
        row(
            "geometry.window",
            g.window.to_string(),
            paper.geometry.window.to_string(),
            "tokens",
            "the paper: sliding window W = 1,024, one array column per token",
        ),
        row(
            "geometry.tile_rows",
            g.tile_rows.to_string(),
            paper.geometry.tile_rows.to_string(),
            "tokens",
            "the paper: sub-tiles of 64 tokens × 64 dims, read out separately and summed digitally",
        ),
        row(
            "geometry.tiling",
            g.tiling.to_string(),
            paper.geometry.tiling.to_string(),
            "bool",
            "the paper: the value array is read out per sub-tile",
        ),
        row(
            "query.bits",
            chip.query.bits.to_string(),
            paper.query.bits.to_string(),
            "bits",
            "the paper: 16 PWM levels; sets T_max with cost.timing.pwm_step_ns",
        ),
        row(
            "output.bits",
            chip.output.bits.to_string(),
            paper.output.bits.to_string(),
            "bits",
            "the paper: 32 counter levels on [−1, 1]; sets the counting time",
        ),
    ];
    let mut lambda = row(
        "leakage (λ per token)",
        chip.lambda().to_string(),
        paper.lambda().to_string(),
        "1/token",
        "the paper's λ = 1.6e-4 ≈ 12 layers × 65 ns / 5 ms retention; used for the retention report only",
    );
    lambda.provenance = Provenance::Derived;
    rows.push(lambda);
    rows.extend(chip.cost.describe());
    rows
}
