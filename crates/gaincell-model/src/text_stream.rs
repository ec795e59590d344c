//! Tokenizing a text file as a stream, for perplexity on files of any size: the text is read in blocks, cut at
//! points where encoding the pieces one after another gives exactly the ids of the whole text, and reading stops
//! as soon as more tokens than asked for are in. Memory follows the block size and the ids kept, not the file.
//!
//! The cut rule: just before a space `' '` that follows a non-whitespace character, and only for tokenizers
//! that promise the pieces encode like the whole there ([`Tokenizer::splits_before_space`]: GPT-2's byte-level
//! BPE and tokenizers built the same way, llama2.c's whose vocabulary has no merge across such a point). A block
//! may end inside a UTF-8 character: its bytes wait for the next block. Text with no such point (one long word,
//! or a tokenizer without the promise) is held until the end of the file and encoded whole, as before.

use std::io::{ErrorKind, Read};

use crate::error::{ModelError, Result};
use crate::tokenizer::Tokenizer;

/// Bytes read at a time.
pub const BLOCK_BYTES: usize = 1 << 20;

/// What [`tokenize_stream`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamedText {
    /// [`Tokenizer::encode_document`] of the whole text, cut to `max_tokens` when given.
    pub ids: Vec<u32>,
    /// UTF-8 bytes the ids stand for: the whole text's length, or with a cut the length of the ids' decoding.
    pub bytes: usize,
}

/// Byte offset of the last cut point in `text` at or after `from` (a char boundary): the position of a `' '`
/// whose preceding character is not whitespace. The character before `from` is not looked at.
fn last_cut(text: &str, from: usize) -> Option<usize> {
    let mut after_is_space = false;
    for (i, c) in text[from..].char_indices().rev() {
        if after_is_space && !c.is_whitespace() {
            return Some(from + i + c.len_utf8());
        }
        after_is_space = c == ' ';
    }
    None
}

/// Fill `buf` from `r` (retrying interrupted reads); the number of bytes read, 0 at the end.
fn read_some(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Reads UTF-8 text block by block: each call to [`Utf8Blocks::next_block`] appends the next decodable text to
/// a string and keeps the bytes of a character cut by the block's end for the next call.
struct Utf8Blocks<R> {
    reader: R,
    buf: Vec<u8>,
    /// Bytes of a character the last block ended inside.
    partial: Vec<u8>,
    read: usize,
}

impl<R: Read> Utf8Blocks<R> {
    fn new(reader: R, block: usize) -> Self {
        Utf8Blocks {
            reader,
            buf: vec![0; block.max(1)],
            partial: Vec::new(),
            read: 0,
        }
    }

    /// Append the next block's text to `out`; false at the end of the input.
    fn next_block(&mut self, out: &mut String) -> Result<bool> {
        let io = |e| ModelError::Input(format!("reading the text: {e}"));
        let n = read_some(&mut self.reader, &mut self.buf).map_err(io)?;
        let invalid = |at: usize| {
            ModelError::Input(format!(
                "stream did not contain valid UTF-8 (at byte {at}): give a UTF-8 text file"
            ))
        };
        if n == 0 {
            if !self.partial.is_empty() {
                return Err(invalid(self.read - self.partial.len()));
            }
            return Ok(false);
        }
        let start = self.read - self.partial.len();
        self.read += n;
        self.partial.extend_from_slice(&self.buf[..n]);
        let valid = match std::str::from_utf8(&self.partial) {
            Ok(s) => s.len(),
            // An incomplete character at the end waits for the next block; anything else is an error.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => return Err(invalid(start + e.valid_up_to())),
        };
        out.push_str(std::str::from_utf8(&self.partial[..valid]).expect("checked above"));
        self.partial.drain(..valid);
        Ok(true)
    }
}

/// True when the text read from `reader` holds a non-whitespace character (reading stops at the first).
pub fn has_text(reader: impl Read, block: usize) -> Result<bool> {
    let mut blocks = Utf8Blocks::new(reader, block);
    let mut text = String::new();
    while blocks.next_block(&mut text)? {
        if text.chars().any(|c| !c.is_whitespace()) {
            return Ok(true);
        }
        text.clear();
    }
    Ok(false)
}

/// The ids of the text read from `reader`, exactly as [`Tokenizer::encode_document`] of the whole text gives
/// them (then cut to `max_tokens`), read `block` bytes at a time and encoded piece by piece (see the module
/// docs). With `max_tokens`, reading stops once more than that many ids are in: the ids then stand for a prefix
/// of the text, and `bytes` is the length of their decoding (as for the whole text cut to `max_tokens`).
/// `progress` is called with the bytes read so far after each block.
pub fn tokenize_stream(
    tok: &Tokenizer,
    reader: impl Read,
    block: usize,
    max_tokens: Option<usize>,
    progress: &mut dyn FnMut(usize),
) -> Result<StreamedText> {
    let cuts = tok.splits_before_space();
    let mut blocks = Utf8Blocks::new(reader, block);
    let mut ids: Vec<u32> = tok.bos().into_iter().collect();
    // Text read but not yet encoded (after the last cut).
    let mut pending = String::new();
    // Whether the first non-empty piece was encoded (it gets the text's start, e.g. llama2.c's dummy prefix),
    // and whether encoding has ended at a NUL (llama2.c ignores what follows).
    let (mut started, mut ended) = (false, false);
    let mut encode = |piece: &str, ids: &mut Vec<u32>| -> Result<()> {
        if ended || piece.is_empty() {
            return Ok(());
        }
        let piece = match piece.find('\0') {
            Some(z) if tok.stops_at_nul() => {
                ended = true;
                &piece[..z]
            }
            _ => piece,
        };
        if piece.is_empty() {
            return Ok(());
        }
        ids.extend(if started {
            tok.encode_continuation(piece)?
        } else {
            tok.encode(piece)?
        });
        started = true;
        Ok(())
    };
    let over = |ids: &Vec<u32>| max_tokens.is_some_and(|m| ids.len() > m);
    let mut whole = true;
    loop {
        // Only the text added by this block (and the character before it) can hold a new cut point.
        let from = pending.char_indices().next_back().map_or(0, |(i, _)| i);
        let more = blocks.next_block(&mut pending)?;
        progress(blocks.read);
        if !more {
            encode(&pending, &mut ids)?;
            break;
        }
        if cuts {
            if let Some(cut) = last_cut(&pending, from) {
                encode(&pending[..cut], &mut ids)?;
                pending.drain(..cut);
            }
        }
        if over(&ids) {
            whole = false;
            break;
        }
    }
    let bytes = match max_tokens {
        Some(m) if ids.len() > m => {
            ids.truncate(m);
            tok.decode_bytes(&ids)?.len()
        }
        _ => {
            debug_assert!(whole);
            blocks.read
        }
    };
    Ok(StreamedText { ids, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pieces `tokenize_stream` would encode, for a given block size.
    fn pieces(text: &str, block: usize) -> Vec<String> {
        let mut blocks = Utf8Blocks::new(text.as_bytes(), block);
        let (mut pending, mut out) = (String::new(), Vec::new());
        loop {
            let from = pending.char_indices().next_back().map_or(0, |(i, _)| i);
            if !blocks.next_block(&mut pending).unwrap() {
                out.push(pending);
                return out;
            }
            if let Some(cut) = last_cut(&pending, from) {
                out.push(pending[..cut].to_string());
                pending.drain(..cut);
            }
        }
    }

    #[test]
    fn cuts_fall_before_a_space_after_a_word() {
        assert_eq!(last_cut("ab cd", 0), Some(2));
        assert_eq!(last_cut("ab  cd ef", 0), Some(6));
        assert_eq!(last_cut("  ", 0), None);
        assert_eq!(last_cut("ab\ncd", 0), None);
        // Not before the second space of a run, nor at the very start.
        assert_eq!(last_cut("ab  ", 3), None);
        assert_eq!(last_cut(" ab", 0), None);
        assert_eq!(last_cut("é é", 0), Some(2));
    }

    /// Multi-byte characters straddle every block boundary (blocks of 1 to 7 bytes): the pieces join back into
    /// the text, each cut sits before a space after a non-space, and GPT-2's ids of the pieces equal those of
    /// the whole text, with and without a token limit.
    #[test]
    fn a_character_split_across_blocks_is_kept_whole() {
        let text = "Ünïcödé wörds — ñandú 日本語 テキスト  and   spaces\n\nthe ☃ snowman's 🦀 crab\u{a0}nbsp end ";
        let tok = Tokenizer::gpt2();
        let want = tok.encode_document(text).unwrap();
        for block in 1..=7 {
            let p = pieces(text, block);
            assert_eq!(p.concat(), text, "block {block}");
            for w in p.windows(2) {
                assert!(w[1].starts_with(' '), "block {block}: {w:?}");
                assert!(!w[0].ends_with(char::is_whitespace), "block {block}: {w:?}");
            }
            let got = tokenize_stream(&tok, text.as_bytes(), block, None, &mut |_| {}).unwrap();
            assert_eq!(got.ids, want, "block {block}");
            assert_eq!(got.bytes, text.len());
            for m in [0, 1, 5, want.len() - 1, want.len(), want.len() + 3] {
                let got =
                    tokenize_stream(&tok, text.as_bytes(), block, Some(m), &mut |_| {}).unwrap();
                let cut = &want[..m.min(want.len())];
                assert_eq!(got.ids, cut, "block {block}, max {m}");
                let bytes = if m < want.len() {
                    tok.decode_bytes(cut).unwrap().len()
                } else {
                    text.len()
                };
                assert_eq!(got.bytes, bytes, "block {block}, max {m}");
            }
        }
    }

    #[test]
    fn invalid_utf8_is_an_error_naming_the_byte() {
        let mut bytes = "ok then ".as_bytes().to_vec();
        bytes.push(0xff);
        bytes.extend_from_slice(b" more");
        let tok = Tokenizer::gpt2();
        for block in [1, 3, 64] {
            let e = tokenize_stream(&tok, bytes.as_slice(), block, None, &mut |_| {}).unwrap_err();
            assert!(e.to_string().contains("at byte 8"), "{e}");
        }
        // A character cut short by the end of the file.
        let e = tokenize_stream(&tok, &"ab é".as_bytes()[..4], 2, None, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("at byte 3"), "{e}");
    }

    #[test]
    fn whitespace_only_is_no_text() {
        assert!(!has_text(" \n\t\u{a0} ".as_bytes(), 2).unwrap());
        assert!(has_text("  é".as_bytes(), 1).unwrap());
        assert!(!has_text("".as_bytes(), 4).unwrap());
    }
}
