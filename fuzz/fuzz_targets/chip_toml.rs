//! Chip TOML files (`--chip FILE`): `ChipConfig::from_file` (read, parse, `base = "PRESET"` merging,
//! validation), then what a command does with a loaded chip: its quantizers, λ, the cell curve, and the TOML
//! `gaincell chip show` prints, which must load again.

#![no_main]

use gaincell_chip::ChipConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = gaincell_fuzz::temp_file("chip.toml", data);
    let Ok(cfg) = ChipConfig::from_file(&path) else {
        return;
    };
    for q in [&cfg.query, &cfg.key, &cfg.value, &cfg.output] {
        let quant = q.quantizer();
        let _ = (
            quant.apply(0.5),
            quant.clips(2.0),
            quant.boundary_margin(0.25),
        );
    }
    let _ = (cfg.lambda(), cfg.is_gain_cell());
    let _ = (
        cfg.cell.eval(0.5),
        cfg.cell.polynomial(),
        cfg.cell.linear_slope(),
        cfg.cell.label(),
    );
    let text = cfg.to_toml_string();
    if let Err(e) = ChipConfig::from_toml_str(&text, "chip show") {
        panic!("a loaded chip's own TOML does not load again: {e}\n{text}");
    }
});
