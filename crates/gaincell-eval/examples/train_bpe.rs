//! Train a small byte-level BPE (GPT-2's scheme) on text files, for small models whose vocabulary GPT-2's
//! tokenizer does not fit (the 512-entry test fixture, models trained on our corpus):
//!
//!     cargo run --release -p gaincell-eval --example train_bpe -- 512 tokenizer.json corpus/train-000.txt …

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [vocab, out, files @ ..] = args.as_slice() else {
        return Err("usage: train_bpe VOCAB_SIZE OUT.json TEXT_FILE…".into());
    };
    if files.is_empty() {
        return Err("give at least one text file to train on".into());
    }
    let texts = files
        .iter()
        .map(std::fs::read_to_string)
        .collect::<Result<Vec<_>, _>>()?;
    // One training "sentence" per line, as HF's trainer sees files.
    let lines = texts.iter().flat_map(|t| t.lines());
    let tok = gaincell_model::train_bpe(lines, vocab.parse()?)?;
    tok.save(Path::new(out))?;
    println!(
        "{out}: {} entries, <|endoftext|> = {:?}",
        tok.vocab_size(),
        tok.eot()
    );
    Ok(())
}
