//! Token shards (nanoGPT style): text tokenised once into `train.bin` / `val.bin`, flat little-endian token ids
//! (u16 when the vocabulary fits, else u32) with documents separated by the tokenizer's end-of-text token
//! (`<|endoftext|>`; a llama2.c tokenizer's BOS), plus `meta.json` and the tokenizer's file. [`prepare`] writes
//! them from text, [`crate::generate`] from a model's own samples, both through [`ShardWriter`].
//! Training reads them memory-mapped and samples random contiguous windows; batch `i` of a run depends only on
//! the seed and `i`, so a resumed run sees exactly the batches an uninterrupted one would.

use std::path::{Path, PathBuf};

use gaincell_model::Tokenizer;
use memmap2::Mmap;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

pub const META: &str = "meta.json";

/// What `meta.json` records about a prepared data folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    pub format: String,
    pub vocab_size: usize,
    /// `u16` or `u32`.
    pub dtype: String,
    pub train_tokens: usize,
    pub val_tokens: usize,
    /// Where the tokenizer came from: its file in the folder (`tokenizer.json` for an HF tokenizer,
    /// `tokenizer.bin` for a llama2.c one), else (GPT-2's built-in tokenizer) `gpt2`.
    pub tokenizer: String,
    pub eot: Option<u32>,
    pub train_files: Vec<String>,
    pub val_files: Vec<String>,
}

const FORMAT: &str = "gaincell-tokens/1";

/// Which split of the shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train = 0,
    Val = 1,
}

impl Split {
    pub fn file(self) -> &'static str {
        match self {
            Split::Train => "train.bin",
            Split::Val => "val.bin",
        }
    }
}

/// The train and validation files of a corpus: `DIR/train` and `DIR/val` subfolders when they exist (the shared
/// Gutenberg corpus keeps whole books in one split), else the listed files with the last `val_fraction` of them
/// (at least one) held out.
pub fn split_inputs(inputs: &[PathBuf], val_fraction: f64) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    if let [dir] = inputs {
        if dir.join("train").is_dir() && dir.join("val").is_dir() {
            return Ok((
                text_files(&dir.join("train"))?,
                text_files(&dir.join("val"))?,
            ));
        }
    }
    let mut files = Vec::new();
    for i in inputs {
        if i.is_dir() {
            files.extend(text_files(i)?);
        } else if i.is_file() {
            files.push(i.clone());
        } else {
            return Err(TrainError::Input(format!(
                "{}: no such file or folder",
                i.display()
            )));
        }
    }
    if files.len() < 2 {
        return Err(TrainError::Input(format!(
            "{} text file(s): give at least two (one is held out for validation), or a folder with train/ and val/",
            files.len()
        )));
    }
    let n_val = ((files.len() as f64 * val_fraction).round() as usize).clamp(1, files.len() - 1);
    let val = files.split_off(files.len() - n_val);
    Ok((files, val))
}

/// `*.txt` / `*.raw` files under `dir`, recursively, sorted.
pub fn text_files(dir: &Path) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for e in std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))? {
            let p = e.map_err(|e| TrainError::io(dir, e))?.path();
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.extension().is_some_and(|x| x == "txt" || x == "raw") {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    out.sort();
    if out.is_empty() {
        return Err(TrainError::Input(format!(
            "{}: no .txt or .raw files",
            dir.display()
        )));
    }
    Ok(out)
}

/// Tokenise `train` and `val` files into `out` (`train.bin`, `val.bin`, `meta.json`, and the tokenizer's file —
/// `tokenizer.json`, or a llama2.c `tokenizer.bin` — unless it is GPT-2's built-in one). Files are tokenised in
/// parallel, paragraph blocks at a time; `progress(bytes_done, bytes_total)` is called as they finish. Each file
/// ends with the tokenizer's end-of-text token ([`Tokenizer::eot`]) when it has one: that is how documents are
/// separated in the shards.
pub fn prepare(
    tokenizer: &Tokenizer,
    tokenizer_source: &str,
    train: &[PathBuf],
    val: &[PathBuf],
    out: &Path,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Meta> {
    let mut writer = ShardWriter::new(out, tokenizer)?;
    let total: usize = train
        .iter()
        .chain(val)
        .map(|f| std::fs::metadata(f).map(|m| m.len() as usize).unwrap_or(0))
        .sum();
    let done = std::sync::atomic::AtomicUsize::new(0);
    for (files, split) in [(train, Split::Train), (val, Split::Val)] {
        let ids: Vec<Vec<u32>> = files
            .par_iter()
            .map(|f| -> Result<Vec<u32>> {
                let text = std::fs::read_to_string(f).map_err(|e| TrainError::io(f, e))?;
                let mut ids = Vec::with_capacity(text.len() / 3);
                // Blocks of paragraphs: BPE cost grows with piece length, and progress stays smooth.
                for block in text.split_inclusive("\n\n").collect::<Vec<_>>().chunks(64) {
                    ids.extend(tokenizer.encode(&block.concat())?);
                }
                ids.extend(tokenizer.eot());
                let d = done.fetch_add(text.len(), std::sync::atomic::Ordering::Relaxed);
                progress(d + text.len(), total);
                Ok(ids)
            })
            .collect::<Result<_>>()?;
        let flat: Vec<u32> = ids.into_iter().flatten().collect();
        writer.write(split, &flat)?;
    }
    let names = |fs: &[PathBuf]| fs.iter().map(|f| f.display().to_string()).collect();
    writer.finish(tokenizer, tokenizer_source, names(train), names(val))
}

/// Writes a data folder in the format [`Shards::open`] reads — shared by [`prepare`] and
/// [`crate::generate`]: each split's token stream as flat little-endian ids (`u16` when the tokenizer's
/// vocabulary fits, else `u32`), then the tokenizer's file, then `meta.json` last (every file under a temporary
/// name, renamed into place).
pub struct ShardWriter {
    out: PathBuf,
    wide: bool,
    counts: [usize; 2],
}

impl ShardWriter {
    /// Creates `out` (and its parents) when it does not exist.
    pub fn new(out: &Path, tokenizer: &Tokenizer) -> Result<Self> {
        std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
        Ok(ShardWriter {
            out: out.to_path_buf(),
            wide: tokenizer.vocab_size() > u16::MAX as usize + 1,
            counts: [0; 2],
        })
    }

    /// Write one split's whole token stream (`train.bin` or `val.bin`).
    pub fn write(&mut self, split: Split, tokens: &[u32]) -> Result<()> {
        let bytes: Vec<u8> = if self.wide {
            tokens.iter().flat_map(|t| t.to_le_bytes()).collect()
        } else {
            if let Some(&t) = tokens.iter().find(|&&t| t > u16::MAX as u32) {
                return Err(TrainError::Input(format!(
                    "token id {t} does not fit the u16 shards of a vocabulary of at most {} entries",
                    u16::MAX as usize + 1
                )));
            }
            tokens
                .iter()
                .flat_map(|&t| (t as u16).to_le_bytes())
                .collect()
        };
        write_atomic(&self.out.join(split.file()), &bytes)?;
        self.counts[split as usize] = tokens.len();
        Ok(())
    }

    /// Save the tokenizer beside the shards (under [`Tokenizer::file_name`]; GPT-2's built-in one is recorded by
    /// `tokenizer_source`) and write `meta.json`.
    pub fn finish(
        self,
        tokenizer: &Tokenizer,
        tokenizer_source: &str,
        train_files: Vec<String>,
        val_files: Vec<String>,
    ) -> Result<Meta> {
        let saved = match tokenizer.file_name() {
            Some(name) => {
                let path = self.out.join(name);
                let tmp = self.out.join(format!(".{name}.tmp"));
                tokenizer.save(&tmp)?;
                std::fs::rename(&tmp, &path).map_err(|e| TrainError::io(&path, e))?;
                Some(name)
            }
            None => None,
        };
        let meta = Meta {
            format: FORMAT.into(),
            vocab_size: tokenizer.vocab_size(),
            dtype: if self.wide { "u32" } else { "u16" }.into(),
            train_tokens: self.counts[Split::Train as usize],
            val_tokens: self.counts[Split::Val as usize],
            tokenizer: saved.map_or_else(|| tokenizer_source.to_string(), str::to_string),
            eot: tokenizer.eot(),
            train_files,
            val_files,
        };
        write_atomic(
            &self.out.join(META),
            serde_json::to_string_pretty(&meta)
                .expect("json")
                .as_bytes(),
        )?;
        Ok(meta)
    }
}

/// Write a file under a temporary name and rename it into place (the model crate's, one rule for every file).
pub use gaincell_model::checkpoint::write_atomically as write_atomic;

/// A prepared data folder, memory-mapped.
pub struct Shards {
    pub meta: Meta,
    pub dir: PathBuf,
    train: Mmap,
    val: Mmap,
}

impl Shards {
    pub fn open(dir: &Path) -> Result<Self> {
        let meta_path = dir.join(META);
        let text = std::fs::read_to_string(&meta_path).map_err(|_| {
            TrainError::Input(format!(
                "{}: not a prepared data folder (no {META}); run `gaincell data prepare --out {}` first",
                dir.display(),
                dir.display()
            ))
        })?;
        let meta: Meta = serde_json::from_str(&text)
            .map_err(|e| TrainError::Input(format!("{}: {e}", meta_path.display())))?;
        if meta.format != FORMAT {
            return Err(TrainError::Input(format!(
                "{}: format `{}`, this version reads `{FORMAT}`",
                meta_path.display(),
                meta.format
            )));
        }
        let width: usize = match meta.dtype.as_str() {
            "u16" => 2,
            "u32" => 4,
            other => {
                return Err(TrainError::Input(format!(
                    "{}: dtype `{other}`, expected `u16` or `u32`: prepare the data again",
                    meta_path.display()
                )))
            }
        };
        let map = |split: Split, tokens: usize| -> Result<Mmap> {
            let path = dir.join(split.file());
            // A token count whose bytes do not fit in memory cannot match any file (and must not overflow).
            let Some(want) = tokens.checked_mul(width) else {
                return Err(TrainError::Input(format!(
                    "{}: {META} says {tokens} tokens of {width} bytes, more than any file holds: prepare the data again",
                    path.display()
                )));
            };
            let f = std::fs::File::open(&path).map_err(|e| TrainError::io(&path, e))?;
            // SAFETY: the file is opened read-only and our own writers replace shards by rename, never in place.
            let m = unsafe { Mmap::map(&f) }.map_err(|e| TrainError::io(&path, e))?;
            if m.len() != want {
                return Err(TrainError::Input(format!(
                    "{}: {} bytes, but {META} says {tokens} tokens of {width} bytes (truncated or replaced?): prepare the data again",
                    path.display(),
                    m.len()
                )));
            }
            Ok(m)
        };
        Ok(Shards {
            train: map(Split::Train, meta.train_tokens)?,
            val: map(Split::Val, meta.val_tokens)?,
            meta,
            dir: dir.to_path_buf(),
        })
    }

    pub fn len(&self, split: Split) -> usize {
        match split {
            Split::Train => self.meta.train_tokens,
            Split::Val => self.meta.val_tokens,
        }
    }

    pub fn is_empty(&self, split: Split) -> bool {
        self.len(split) == 0
    }

    /// Token `i` of a split.
    #[inline]
    pub fn token(&self, split: Split, i: usize) -> u32 {
        let m = match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        };
        if self.meta.dtype == "u32" {
            u32::from_le_bytes(m[4 * i..4 * i + 4].try_into().expect("4 bytes"))
        } else {
            u16::from_le_bytes(m[2 * i..2 * i + 2].try_into().expect("2 bytes")) as u32
        }
    }

    /// `rows` random windows of `ctx + 1` tokens from `split`, as inputs and next-token targets (`rows × ctx`
    /// each, row-major). The windows depend only on `(seed, index)`.
    pub fn batch(
        &self,
        split: Split,
        rows: usize,
        ctx: usize,
        seed: u64,
        index: u64,
    ) -> Result<(Vec<u32>, Vec<u32>)> {
        let n = self.len(split);
        if n < ctx + 1 {
            return Err(TrainError::Input(format!(
                "the {split:?} split holds {n} tokens, fewer than one window of ctx + 1 = {}",
                ctx + 1
            )));
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index);
        let (mut x, mut y) = (
            Vec::with_capacity(rows * ctx),
            Vec::with_capacity(rows * ctx),
        );
        for _ in 0..rows {
            let start = rng.gen_range(0..=n - ctx - 1);
            x.extend((start..start + ctx).map(|i| self.token(split, i)));
            y.extend((start + 1..start + ctx + 1).map(|i| self.token(split, i)));
        }
        Ok((x, y))
    }
}
