//! Tokenizers: GPT-2's byte-level BPE (embedded, works offline), HuggingFace `tokenizer.json` files, and
//! llama2.c's `tokenizer.bin` (sentencepiece-style BPE with scores and byte fallback, encoded as `run.c` does).

use std::path::{Path, PathBuf};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::llama2c_tokenizer::Llama2cTokenizer;

/// Text ↔ token ids.
pub enum Tokenizer {
    /// GPT-2's BPE (r50k_base), embedded in the binary.
    Gpt2(&'static tiktoken_rs::CoreBPE),
    /// Any HuggingFace `tokenizer.json` (e.g. a small BPE trained on our corpus, or a Llama's).
    Hf(Box<tokenizers::Tokenizer>),
    /// llama2.c's `tokenizer.bin` (the tinyllamas' `tok512.bin`, …).
    Llama2c(Box<Llama2cTokenizer>),
}

/// The llama2.c tokenizer files a folder may hold, in the order they are looked for.
fn llama2c_tokenizer_in(dir: &Path) -> Option<PathBuf> {
    let named = dir.join("tokenizer.bin");
    if named.is_file() {
        return Some(named);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "bin")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("tok"))
                && Llama2cTokenizer::load(p).is_ok()
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// The tokenizer file of a model folder: `tokenizer.json`, else a llama2.c `tokenizer.bin` (or `tok*.bin`).
pub(crate) fn file_in(dir: &Path) -> Option<PathBuf> {
    let json = dir.join("tokenizer.json");
    if json.is_file() {
        return Some(json);
    }
    llama2c_tokenizer_in(dir)
}

impl Tokenizer {
    /// GPT-2's tokenizer.
    pub fn gpt2() -> Self {
        Tokenizer::Gpt2(tiktoken_rs::r50k_base_singleton())
    }

    /// `gpt2`, a `tokenizer.json` file, a llama2.c `tokenizer.bin`, or a folder holding one of them.
    pub fn load(spec: &str) -> Result<Self> {
        if spec == "gpt2" {
            return Ok(Self::gpt2());
        }
        let p = Path::new(spec);
        let file = if p.is_dir() {
            file_in(p).unwrap_or_else(|| p.join("tokenizer.json"))
        } else {
            p.to_path_buf()
        };
        if !file.is_file() {
            return Err(ModelError::Tokenizer(format!(
                "`{spec}` is neither `gpt2` nor a tokenizer.json or llama2.c tokenizer.bin file (or a folder \
                 holding one)"
            )));
        }
        if file.extension().is_some_and(|x| x == "bin") {
            let t = Llama2cTokenizer::load(&file).map_err(ModelError::Tokenizer)?;
            return Ok(Tokenizer::Llama2c(Box::new(t)));
        }
        let bad = |m: String| ModelError::Tokenizer(format!("{}: {m}", file.display()));
        let text = std::fs::read_to_string(&file).map_err(|e| bad(e.to_string()))?;
        // tokenizers panics (`expect("Helper")`) on a JSON syntax error inside `decoder`: check the syntax first,
        // and turn any other panic of the library on a malformed file into an error.
        serde_json::from_str::<serde::de::IgnoredAny>(&text)
            .map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let t = std::panic::catch_unwind(|| text.parse::<tokenizers::Tokenizer>())
            .map_err(|_| bad("not a tokenizer.json the tokenizers library can read".into()))?
            .map_err(|e| bad(e.to_string()))?;
        Ok(Tokenizer::Hf(Box::new(t)))
    }

    /// The tokenizer that goes with a model (a folder, or a llama2.c `.bin` whose folder is looked in): its
    /// `tokenizer.json`, else a llama2.c `tokenizer.bin` (or `tok*.bin`), else — for a GPT-2 — GPT-2's own.
    pub fn for_model(path: &Path, config: &ModelConfig) -> Result<Self> {
        let dir = if path.is_file() {
            path.parent().unwrap_or(Path::new("."))
        } else {
            path
        };
        if let Some(file) = file_in(dir) {
            return Self::load(&file.display().to_string());
        }
        match config {
            ModelConfig::Gpt2(_) => Ok(Self::gpt2()),
            _ => Err(ModelError::Tokenizer(format!(
                "{} holds no tokenizer.json or llama2.c tokenizer.bin: pass the model's tokenizer with --tokenizer",
                dir.display()
            ))),
        }
    }

    /// The token a document starts with, when the tokenizer has one (Llama's BOS); GPT-2's has none.
    pub fn bos(&self) -> Option<u32> {
        match self {
            Tokenizer::Gpt2(_) => None,
            // The post-processor adds it to an empty text, when the tokenizer has one.
            Tokenizer::Hf(t) => t
                .encode("", true)
                .ok()
                .and_then(|e| e.get_ids().first().copied()),
            Tokenizer::Llama2c(t) => Some(t.bos()),
        }
    }

    /// Token ids of a document: [`Tokenizer::bos`] (when there is one) followed by [`Tokenizer::encode`] — how a
    /// Llama sees the start of a text, and what llama2.c's `run.c` feeds for a prompt.
    pub fn encode_document(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids: Vec<u32> = self.bos().into_iter().collect();
        ids.extend(self.encode(text)?);
        Ok(ids)
    }

    /// Token ids of `text`, without a start-of-document token; special tokens such as `<|endoftext|>` are encoded
    /// as plain text. llama2.c's tokenizer adds its dummy-prefix space to a non-empty text, as `run.c` does.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Llama2c(t) => Ok(t.encode(text, false, false)),
            Tokenizer::Gpt2(bpe) => Ok(bpe.encode_ordinary(text)),
            Tokenizer::Hf(t) => Ok(t
                .encode(text, false)
                .map_err(|e| ModelError::Tokenizer(e.to_string()))?
                .get_ids()
                .to_vec()),
        }
    }

    /// Token ids of `text` as the continuation of a text already encoded with [`Tokenizer::encode`]: the same,
    /// except that llama2.c's dummy-prefix space (once per text) is not added again. See
    /// [`Tokenizer::splits_before_space`] for when the two together give the ids of the whole text.
    pub fn encode_continuation(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Llama2c(t) => Ok(t.encode_continuation(text)),
            _ => self.encode(text),
        }
    }

    /// True when a text cut just before a space `' '` that follows a non-whitespace character encodes, its first
    /// part with [`Tokenizer::encode`] and the rest with [`Tokenizer::encode_continuation`], to exactly the ids
    /// of the whole text (what streaming a file needs):
    /// - GPT-2, and HF tokenizers whose only stage is GPT-2's byte-level pre-tokenisation (no normaliser, no
    ///   added prefix space, no truncation or padding): no pre-token runs from a non-whitespace character into
    ///   the whitespace after it (the pattern's classes never mix the two, and its only look-ahead, `\s+(?!\S)`,
    ///   starts inside whitespace), the suffix is matched from the cut as in the whole text (no look-behind),
    ///   and each pre-token is encoded on its own. Added tokens must not hold a space after another character.
    /// - llama2.c: when no merge can join the two sides ([`Llama2cTokenizer::splits_before_space`]).
    /// - Any other HF tokenizer (a Metaspace `▁` prefix, normalisers…): false.
    pub fn splits_before_space(&self) -> bool {
        match self {
            Tokenizer::Gpt2(_) => true,
            Tokenizer::Llama2c(t) => t.splits_before_space(),
            Tokenizer::Hf(t) => {
                use tokenizers::PreTokenizerWrapper;
                let byte_level = matches!(
                    t.get_pre_tokenizer(),
                    Some(PreTokenizerWrapper::ByteLevel(b)) if !b.add_prefix_space && b.use_regex
                );
                // An added token that strips the whitespace after it would reach across the cut.
                let added_ok = t.get_added_tokens_decoder().values().all(|a| {
                    let c = a.content.as_bytes();
                    !a.rstrip && !(1..c.len()).any(|k| c[k] == b' ')
                });
                byte_level
                    && added_ok
                    && t.get_normalizer().is_none()
                    && t.get_truncation().is_none()
                    && t.get_padding().is_none()
            }
        }
    }

    /// True when encoding ignores everything after the first `'\0'` (llama2.c's `run.c` reads a C string).
    pub fn stops_at_nul(&self) -> bool {
        matches!(self, Tokenizer::Llama2c(_))
    }

    /// The bytes a sequence of ids stands for (may end inside a UTF-8 character: streaming output decodes the
    /// whole prefix and prints what became valid).
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        match self {
            Tokenizer::Llama2c(t) => t.decode_bytes(ids).map_err(ModelError::Tokenizer),
            Tokenizer::Gpt2(bpe) => bpe
                .decode_bytes(ids)
                .map_err(|e| ModelError::Tokenizer(format!("{e:?}"))),
            Tokenizer::Hf(t) => Ok(t
                .decode(ids, false)
                .map_err(|e| ModelError::Tokenizer(e.to_string()))?
                .into_bytes()),
        }
    }

    /// Text of a sequence of ids (invalid UTF-8 replaced).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.decode_bytes(ids)?).into_owned())
    }

    /// Size of the vocabulary.
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Gpt2(_) => 50257,
            Tokenizer::Hf(t) => t.get_vocab_size(true),
            Tokenizer::Llama2c(t) => t.vocab_size(),
        }
    }

    /// The end-of-text id, when the vocabulary has one.
    pub fn eot(&self) -> Option<u32> {
        match self {
            Tokenizer::Gpt2(_) => Some(50256),
            Tokenizer::Hf(t) => t
                .token_to_id("<|endoftext|>")
                .or_else(|| t.token_to_id("</s>"))
                .or_else(|| t.token_to_id("<|end_of_text|>")),
            // llama2.c's data separates documents with BOS (each story starts with it), and run.c stops
            // generating when the model predicts it.
            Tokenizer::Llama2c(t) => Some(t.bos()),
        }
    }
}

/// Train a byte-level BPE (GPT-2's scheme: byte alphabet, GPT-2 pre-tokenisation, `<|endoftext|>` as id 0's
/// special token) of `vocab_size` entries on `texts`. For small models trained on our own corpus.
pub fn train_bpe<I, S>(texts: I, vocab_size: usize) -> Result<Tokenizer>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::{
        AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
        TokenizerImpl,
    };
    if vocab_size < 257 + 1 {
        return Err(ModelError::Tokenizer(format!(
            "vocab size {vocab_size}: a byte-level BPE needs at least 258 (256 bytes, <|endoftext|>, one merge)"
        )));
    }
    let err = |e: tokenizers::Error| ModelError::Tokenizer(e.to_string());
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(vec![AddedToken::from("<|endoftext|>", true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let byte_level = ByteLevel::new(false, true, true);
    let mut tok: TokenizerImpl<
        BPE,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    > = TokenizerImpl::new(BPE::default());
    tok.with_pre_tokenizer(Some(PreTokenizerWrapper::ByteLevel(byte_level)));
    tok.with_decoder(Some(DecoderWrapper::ByteLevel(byte_level)));
    tok.train(&mut trainer, texts).map_err(err)?;
    Ok(Tokenizer::Hf(Box::new(tokenizers::Tokenizer::from(tok))))
}

impl Tokenizer {
    /// The file name this tokenizer is saved under in a model folder (`None`: built in).
    pub fn file_name(&self) -> Option<&'static str> {
        match self {
            Tokenizer::Gpt2(_) => None,
            Tokenizer::Hf(_) => Some("tokenizer.json"),
            Tokenizer::Llama2c(_) => Some("tokenizer.bin"),
        }
    }

    /// Write an HF tokenizer as `tokenizer.json`, a llama2.c one as `tokenizer.bin` (GPT-2's needs no file: it
    /// is built in).
    pub fn save(&self, path: &Path) -> Result<()> {
        match self {
            Tokenizer::Llama2c(t) => {
                let mut bytes = (t.max_token_length() as i32).to_le_bytes().to_vec();
                for id in 0..t.vocab_size() as u32 {
                    let piece = t.piece(id);
                    bytes.extend(t.score(id).to_le_bytes());
                    bytes.extend((piece.len() as i32).to_le_bytes());
                    bytes.extend(piece);
                }
                crate::checkpoint::write_atomically(path, &bytes)
            }
            Tokenizer::Gpt2(_) => Err(ModelError::Tokenizer(
                "GPT-2's tokenizer is built in; nothing to save".into(),
            )),
            Tokenizer::Hf(t) => t
                .save(path, false)
                .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display()))),
        }
    }
}
