//! Named chips: the paper's linear and nonlinear hardware, their ideal variants, and the software reference.

use crate::curve::gain_cell_coefficients;
use crate::{
    AttentionKind, CellCurve, ChipConfig, CostParams, Geometry, Leakage, QuantizerConfig, Readout,
    ScalerInit, ScalerInits,
};

/// Every preset name, in the order `gaincell chip list` shows them.
pub const PRESET_NAMES: &[&str] = &[
    "software",
    "software-window",
    "paper-linear",
    "paper-nonlinear",
    "paper-linear-ideal",
    "paper-nonlinear-ideal",
];

fn paper(name: &str, description: &str, cell: CellCurve) -> ChipConfig {
    let q = |bits, min, max| QuantizerConfig {
        bits,
        min,
        max,
        quantize: true,
    };
    ChipConfig {
        name: name.into(),
        description: description.into(),
        attention: AttentionKind::GainCell,
        geometry: Geometry {
            head_dim: 64,
            window: 1024,
            tile_rows: 64,
            tiling: true,
        },
        query: q(4, 0.0, 1.0),
        key: q(3, 0.0, 0.9),
        value: q(3, 0.0, 0.9),
        output: q(5, -1.0, 1.0),
        weight_offset: 0.45,
        readout: Readout {
            s_sat: 80.0,
            a_sat: 40.0,
        },
        leakage: Leakage {
            enabled: true,
            lambda_per_token: Some(1.6e-4),
            retention_s: None,
            token_period_s: None,
        },
        cell,
        scalers: ScalerInits {
            q: ScalerInit { a: 1.0, b: 0.0 },
            k: ScalerInit { a: 1.0, b: 0.45 },
            v: ScalerInit { a: 1.0, b: 0.45 },
            o: ScalerInit { a: 1.0, b: 0.0 },
        },
        cost: CostParams::paper(),
        variation: Default::default(),
        noise: Default::default(),
        refresh: Default::default(),
    }
}

fn ideal(mut c: ChipConfig, name: &str) -> ChipConfig {
    c.name = name.into();
    c.description = format!(
        "{} Ideal variant: no quantisation, no leakage (for single-array checks).",
        c.description
    );
    for qc in [&mut c.query, &mut c.key, &mut c.value, &mut c.output] {
        qc.quantize = false;
    }
    c.leakage.enabled = false;
    c
}

fn software(name: &str, window: usize, description: &str) -> ChipConfig {
    let mut c = paper(name, description, CellCurve::Linear { slope: 19.3 });
    c.attention = AttentionKind::Softmax;
    c.geometry.window = window;
    c
}

/// The preset called `name`, if there is one.
pub fn preset(name: &str) -> Option<ChipConfig> {
    let linear = || {
        paper(
            "paper-linear",
            "Intermediate model of the paper: all hardware constraints, linear cell f(y) = 19.3·y.",
            CellCurve::Linear { slope: 19.3 },
        )
    };
    let nonlinear = || {
        paper(
            "paper-nonlinear",
            "Gain-cell hardware of the paper: all constraints and the fitted cubic cell curve.",
            CellCurve::GainCell {
                coefficients: gain_cell_coefficients(),
            },
        )
    };
    Some(match name {
        "software" => software(
            "software",
            0,
            "Software model: softmax attention, full causal, no hardware constraints.",
        ),
        "software-window" => software(
            "software-window",
            1024,
            "Softmax attention over the chip's 1024-token sliding window, no other constraint.",
        ),
        "paper-linear" => linear(),
        "paper-nonlinear" => nonlinear(),
        "paper-linear-ideal" => ideal(linear(), "paper-linear-ideal"),
        "paper-nonlinear-ideal" => ideal(nonlinear(), "paper-nonlinear-ideal"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_validates_and_round_trips_through_toml() {
        for name in PRESET_NAMES {
            let c = preset(name).unwrap();
            c.validate().unwrap();
            let back = ChipConfig::from_toml_str(&c.to_toml_string(), name).unwrap();
            assert_eq!(back, c, "{name}");
        }
    }

    #[test]
    fn paper_constants_are_the_paper_defaults() {
        let c = preset("paper-nonlinear").unwrap();
        assert_eq!(
            (
                c.query.levels(),
                c.key.levels(),
                c.value.levels(),
                c.output.levels()
            ),
            (16, 8, 8, 32)
        );
        assert_eq!(
            (c.readout.s_sat, c.readout.a_sat, c.weight_offset),
            (80.0, 40.0, 0.45)
        );
        assert_eq!(
            (c.geometry.window, c.geometry.tile_rows, c.geometry.head_dim),
            (1024, 64, 64)
        );
        assert_eq!(c.lambda(), 1.6e-4);
        assert_eq!(
            c.cell.polynomial().unwrap(),
            vec![0.52136, 13.6123, -2.62045, 46.0548]
        );
        let i = preset("paper-nonlinear-ideal").unwrap();
        assert_eq!(i.lambda(), 0.0);
        assert!(!i.key.quantize && !i.output.quantize);
    }
}
