//! Helpers shared by the fuzz targets: parsers that only take a path get the fuzz input through a fixed file (or
//! folder) per process under the system's temporary folder.

use std::path::PathBuf;

/// A folder of this process's own under the temporary folder, emptied: `gaincell-fuzz-<pid>/<name>`.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("gaincell-fuzz-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the fuzz temp folder");
    dir
}

/// Write `bytes` to the file `name` of this process's temporary folder (replacing it) and return its path.
pub fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gaincell-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the fuzz temp folder");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write the fuzz input");
    path
}

/// Split `data` at its first NUL byte: the part before, and the part after (empty when there is none).
pub fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// The questions every command asks of a model's shape once it is loaded; none may panic on a shape that passed
/// the loader's checks.
pub fn exercise_config(c: &gaincell_model::ModelConfig) {
    let _ = (
        c.family(),
        c.vocab_size(),
        c.n_positions(),
        c.n_embd(),
        c.n_layer(),
        c.n_head(),
        c.n_kv_head(),
        c.head_dim(),
        c.native_window(),
    );
    let _ = c.parameters();
    let _ = c.hf_json();
}
