//! Helpers shared by the trainer's integration tests.

use std::path::{Path, PathBuf};

/// A structured corpus, a 300-entry BPE and its shards.
pub fn tiny_data(dir: &Path) -> PathBuf {
    let words = [
        "the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "big", "red", "house",
    ];
    let corpus = dir.join("corpus");
    std::fs::create_dir_all(&corpus).unwrap();
    let mut files = Vec::new();
    for f in 0..4 {
        let text: String = (0..2000)
            .map(|i| {
                let w = words[(i * 7 + f * 3 + i / 13) % words.len()];
                if i % 11 == 10 {
                    format!("{w}.\n")
                } else {
                    format!("{w} ")
                }
            })
            .collect();
        let p = corpus.join(format!("book{f}.txt"));
        std::fs::write(&p, &text).unwrap();
        files.push(p);
    }
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let tok = gaincell_model::train_bpe(texts.iter(), 300).unwrap();
    let data = dir.join("data");
    gaincell_train::data::prepare(&tok, "bpe", &files[..3], &files[3..], &data, &|_, _| {})
        .unwrap();
    data
}
