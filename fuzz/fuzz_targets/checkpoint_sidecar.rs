//! Our checkpoints' `gaincell.json` sidecar (format, model shape, chip TOML, extra): `checkpoint::read_config`,
//! `checkpoint::read_extra` and `checkpoint::load` on a folder holding only the sidecar (the loader must fail
//! cleanly on the missing weights), then the shape queries every command makes.

#![no_main]

use gaincell_model::checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = gaincell_fuzz::fresh_dir("sidecar");
    std::fs::write(dir.join(checkpoint::SIDECAR), data).expect("write the sidecar");
    if let Ok(c) = checkpoint::read_config(&dir.display().to_string()) {
        gaincell_fuzz::exercise_config(&c);
    }
    let _ = checkpoint::read_extra(&dir);
    assert!(
        checkpoint::load(&dir, None).is_err(),
        "loaded a model without weights"
    );
});
