//! HF `config.json`: `ModelConfig::from_json`, and `checkpoint::read_config` / `checkpoint::load` on a folder
//! holding only that `config.json` (the loader must fail cleanly on the missing weights), then the shape queries
//! every command makes.

#![no_main]

use gaincell_model::{checkpoint, ModelConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = ModelConfig::from_json(text, "config.json") {
            gaincell_fuzz::exercise_config(&c);
        }
    }
    let dir = gaincell_fuzz::fresh_dir("model_config");
    std::fs::write(dir.join("config.json"), data).expect("write config.json");
    if let Ok(c) = checkpoint::read_config(&dir.display().to_string()) {
        gaincell_fuzz::exercise_config(&c);
    }
    assert!(
        checkpoint::load(&dir, None).is_err(),
        "loaded a model without weights"
    );
});
