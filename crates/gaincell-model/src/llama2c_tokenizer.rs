//! llama2.c's tokenizer in pure Rust: loads a llama2.c `tokenizer.bin` (e.g. stories260K's `tok512.bin`) and
//! encodes/decodes exactly like `run.c` (karpathy/llama2.c master: `build_tokenizer`, `encode`, `decode`).
//!
//! Self-contained on purpose: only `std`, errors are one-line `String`s. The independent reference is
//! `scripts/llama2c_tokenizer.py` (a line-by-line Python transcription of run.c), which wrote the fixture that
//! `tests/llama2c_tokenizer.rs` compares against.
//!
//! # File format
//! Little-endian `i32` max_token_length, then per entry until end of file: `f32` score, `i32` length, `length`
//! bytes of piece. run.c takes the entry count (vocab_size) from the model checkpoint and ignores anything after
//! it; here every entry up to end of file is read and [`Llama2cTokenizer::vocab_size`] reports how many there
//! were, so a caller pairing this with a checkpoint should check that the two agree. Rejected with a one-line
//! error: files under 4 bytes, max_token_length outside 1..=2^20, an entry cut short, a negative piece length
//! or one above max_token_length (run.c's merge buffer would overflow), a piece holding a NUL byte, no entries,
//! fewer than 259 entries (run.c's byte fallback needs ids 3..=258) and no `" "` piece (the dummy prefix).
//!
//! # Encoding (what run.c does, and so what this does)
//! 1. BOS (id 1) if asked for.
//! 2. The dummy prefix: the id of the piece `" "`, only when the text is non-empty.
//! 3. One lookup per UTF-8 codepoint; a codepoint that is not a piece becomes its bytes, each as id `byte + 3`
//!    (ids 0, 1, 2 are `<unk>`, BOS, EOS; 3..=258 are `<0x00>`..`<0xFF>`). run.c gathers at most 4 bytes per
//!    lookup (`str_len < 4`); that cap only matters for invalid UTF-8, which a `&str` cannot hold.
//! 4. Merge: while some adjacent pair's concatenation is a piece with score `> -1e10` (float32), merge the pair
//!    with the highest such score, the leftmost one among equal scores (run.c scans left to right with a strict
//!    `>`). BOS, when present, takes part like any other token: run.c concatenates its piece (`"\n<s>\n"` in
//!    tok512.bin) with the next one and looks that up too (never a piece in tok512.bin, but done here as well).
//!    Byte-fallback tokens take part with their *text* (`"<0x0A>"`), as in run.c.
//! 5. EOS (id 2) appended after merging, if asked for.
//!
//! run.c rescans every pair after every merge (O(n²)). [`Llama2cTokenizer::encode`] keeps the tokens in a
//! doubly linked list and every mergeable adjacent pair in a max-heap keyed by (score, position of its left
//! token, smaller first); entries made stale by a merge are skipped when popped (nodes and entries carry
//! merge-clock stamps). Nodes keep their original index, so index order is sequence order and "smallest left
//! index" is run.c's "leftmost". After each merge only the two pairs touching the merged token change, so the
//! heap always holds every current mergeable pair (plus stale ones), and its top valid entry is exactly the
//! pair run.c's scan picks. Scores are compared as run.c's `>` compares floats: `-0.0` counts as equal to `0.0`
//! (tok512.bin has `" t"` at `-0.0` and the specials/bytes at `0.0`), and NaN never wins. A unit test checks
//! the heap against a literal transcription of run.c's loop on random vocabularies full of score ties.
//!
//! # Lookup and duplicates
//! run.c's `str_lookup` bsearch()es a qsort()ed copy of the vocab with strcmp. With unique pieces that is
//! exactly a hash map lookup. With duplicate pieces C's answer is unspecified (qsort is not stable and bsearch
//! may return any equal element); here the lowest id wins. stories260K's tok512.bin has no duplicate pieces
//! (the integration test checks it), so for the real file there is no difference.
//!
//! # Text with NUL
//! run.c's text is a C string, so [`Llama2cTokenizer::encode`] stops at the first `'\0'` of the text.

use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

/// BOS id (`<s>`, piece `"\n<s>\n"` in llama2.c exports).
pub const BOS_ID: u32 = 1;
/// EOS id (`</s>`, piece `"\n</s>\n"` in llama2.c exports).
pub const EOS_ID: u32 = 2;
/// Id of the byte-fallback token `<0x00>`; byte `b` is id `b + 3`.
const BYTE_OFFSET: u32 = 3;
/// run.c's `float best_score = -1e10;`: a merge must score strictly above this.
const NO_MERGE: f32 = -1e10;
/// No real tokenizer has pieces anywhere near this long; a header beyond it means a corrupt file.
const MAX_SANE_TOKEN_LENGTH: i32 = 1 << 20;

/// A llama2.c tokenizer: pieces (raw bytes), their scores, and a piece → id map.
#[derive(Clone)]
pub struct Llama2cTokenizer {
    vocab: Vec<Vec<u8>>,
    scores: Vec<f32>,
    max_token_length: usize,
    lookup: HashMap<Vec<u8>, u32, FxBuild>,
    /// Id of the piece `" "` (the dummy prefix).
    space_id: u32,
}

impl std::fmt::Debug for Llama2cTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llama2cTokenizer")
            .field("vocab_size", &self.vocab.len())
            .field("max_token_length", &self.max_token_length)
            .finish()
    }
}

fn read_u32_le(bytes: &[u8], at: usize) -> [u8; 4] {
    [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]
}

impl Llama2cTokenizer {
    /// Parses a llama2.c `tokenizer.bin` held in memory; `origin` (a path or a name) starts every error message.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self, String> {
        let redo = "the file is incomplete or corrupt, download or export it again (llama2.c tokenizer.py --export)";
        if bytes.len() < 4 {
            return Err(format!(
                "{origin}: only {} bytes, shorter than the 4-byte max_token_length header: {redo}",
                bytes.len()
            ));
        }
        let mtl = i32::from_le_bytes(read_u32_le(bytes, 0));
        if !(1..=MAX_SANE_TOKEN_LENGTH).contains(&mtl) {
            return Err(format!(
                "{origin}: header says max_token_length = {mtl}, expected 1..={MAX_SANE_TOKEN_LENGTH}: \
                 this is not a llama2.c tokenizer.bin, or {redo}"
            ));
        }
        let max_token_length = mtl as usize;
        let mut vocab = Vec::new();
        let mut scores = Vec::new();
        let mut at = 4usize;
        while at < bytes.len() {
            let entry = vocab.len();
            let left = bytes.len() - at;
            if left < 8 {
                return Err(format!(
                    "{origin}: truncated at byte {} while reading the score and length of entry {entry} \
                     (needs 8 bytes from byte {at}, {left} left): {redo}",
                    bytes.len()
                ));
            }
            let score = f32::from_le_bytes(read_u32_le(bytes, at));
            let len = i32::from_le_bytes(read_u32_le(bytes, at + 4));
            at += 8;
            if len < 0 {
                return Err(format!(
                    "{origin}: entry {entry} (byte {}) has a negative piece length {len}: {redo}",
                    at - 4
                ));
            }
            let len = len as usize;
            if len > max_token_length {
                return Err(format!(
                    "{origin}: entry {entry} (byte {}) has a piece length {len} above the header's \
                     max_token_length {max_token_length} (run.c's merge buffer would overflow): {redo}",
                    at - 4
                ));
            }
            if len > bytes.len() - at {
                return Err(format!(
                    "{origin}: truncated at byte {} while reading the {len}-byte piece of entry {entry} \
                     (starts at byte {at}, {} bytes left): {redo}",
                    bytes.len(),
                    bytes.len() - at
                ));
            }
            let piece = &bytes[at..at + len];
            if piece.contains(&0) {
                return Err(format!(
                    "{origin}: the piece of entry {entry} (byte {at}) contains a NUL byte, which run.c would \
                     silently cut off: not a llama2.c tokenizer export, {redo}"
                ));
            }
            at += len;
            vocab.push(piece.to_vec());
            scores.push(score);
        }
        if vocab.is_empty() {
            return Err(format!(
                "{origin}: no entries after the 4-byte header (the file is {} bytes): {redo}",
                bytes.len()
            ));
        }
        let min = (BYTE_OFFSET + 256) as usize;
        if vocab.len() < min {
            return Err(format!(
                "{origin}: {} entries, but llama2.c's encoder needs at least {min} (<unk>, BOS, EOS and the \
                 256 byte-fallback tokens <0x00>..<0xFF> at ids 3..258): use a tokenizer exported with \
                 byte_fallback",
                vocab.len()
            ));
        }
        let mut lookup = HashMap::with_capacity_and_hasher(vocab.len(), FxBuild::default());
        for (id, piece) in vocab.iter().enumerate() {
            // Duplicates: the lowest id wins (run.c's bsearch would return an unspecified one of them).
            lookup.entry(piece.clone()).or_insert(id as u32);
        }
        let Some(&space_id) = lookup.get(&b" "[..]) else {
            return Err(format!(
                "{origin}: no piece \" \" among the {} entries; run.c's encoder needs it as the dummy prefix: \
                 use a tokenizer exported by llama2.c's tokenizer.py (which turns '\u{2581}' into ' ')",
                vocab.len()
            ));
        };
        Ok(Self {
            vocab,
            scores,
            max_token_length,
            lookup,
            space_id,
        })
    }

    /// Reads and parses a llama2.c `tokenizer.bin`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| {
            format!(
                "{}: cannot read the llama2.c tokenizer ({e}): check the path",
                path.display()
            )
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Number of entries in the file.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The header's max_token_length.
    pub fn max_token_length(&self) -> usize {
        self.max_token_length
    }

    /// BOS id (1).
    pub fn bos(&self) -> u32 {
        BOS_ID
    }

    /// EOS id (2).
    pub fn eos(&self) -> u32 {
        EOS_ID
    }

    /// The raw piece of `id`. Panics if `id >= vocab_size()`.
    pub fn piece(&self, id: u32) -> &[u8] {
        &self.vocab[id as usize]
    }

    /// The score of `id`. Panics if `id >= vocab_size()`.
    pub fn score(&self, id: u32) -> f32 {
        self.scores[id as usize]
    }

    /// The id of the piece equal to `bytes`, if any (run.c's `str_lookup`).
    pub fn token_id(&self, bytes: &[u8]) -> Option<u32> {
        self.lookup.get(bytes).copied()
    }

    /// The ids run.c's `encode(t, text, bos, eos, …)` produces (see the module docs). Text after a `'\0'` is
    /// ignored, as in C.
    pub fn encode(&self, text: &str, bos: bool, eos: bool) -> Vec<u32> {
        self.encode_with(text, bos, eos, true)
    }

    /// The ids of `text` as the continuation of a text already encoded: no BOS, no EOS and no dummy prefix (run.c
    /// adds that once, at the start of the whole text). Text after a `'\0'` is ignored, as in [`Self::encode`].
    pub fn encode_continuation(&self, text: &str) -> Vec<u32> {
        self.encode_with(text, false, false, false)
    }

    /// True when a text cut just before a space `' '` that follows another character encodes, piece by piece
    /// (the rest with [`Self::encode_continuation`]), to the ids of the whole text. Merges are chosen best-first
    /// and those on one side of the cut never change the candidates on the other, so the only way the pieces can
    /// differ from the whole is a merge across the cut: a token ending there joined with one starting with the
    /// space. That needs a mergeable piece `L + R` with `R` starting with `' '` and both `L` and `R` pieces;
    /// this checks the vocabulary has none.
    pub fn splits_before_space(&self) -> bool {
        !self.vocab.iter().enumerate().any(|(id, piece)| {
            let score = self.scores[id];
            let mergeable = !score.is_nan() && score > NO_MERGE;
            mergeable
                && (1..piece.len()).any(|k| {
                    piece[k] == b' '
                        && self.lookup.contains_key(&piece[..k])
                        && self.lookup.contains_key(&piece[k..])
                })
        })
    }

    fn encode_with(&self, text: &str, bos: bool, eos: bool, dummy_prefix: bool) -> Vec<u32> {
        let text = match text.find('\0') {
            Some(end) => &text[..end],
            None => text,
        };
        let mut tokens = Vec::with_capacity(text.len() + 3);
        if bos {
            tokens.push(BOS_ID);
        }
        if dummy_prefix && !text.is_empty() {
            tokens.push(self.space_id);
        }
        let mut buf = [0u8; 4];
        for ch in text.chars() {
            let cp = ch.encode_utf8(&mut buf).as_bytes();
            match self.lookup.get(cp) {
                Some(&id) => tokens.push(id),
                None => tokens.extend(cp.iter().map(|&b| b as u32 + BYTE_OFFSET)),
            }
        }
        let mut tokens = self.merge(tokens);
        if eos {
            tokens.push(EOS_ID);
        }
        tokens
    }

    /// The piece `a` + `b` if it is in the vocab with a score run.c would merge at: (id, score with -0.0 → 0.0).
    fn merge_candidate(&self, a: u32, b: u32, buf: &mut Vec<u8>) -> Option<(u32, f32)> {
        let (pa, pb) = (&self.vocab[a as usize], &self.vocab[b as usize]);
        if pa.len() + pb.len() > self.max_token_length {
            return None; // no piece is longer than max_token_length
        }
        buf.clear();
        buf.extend_from_slice(pa);
        buf.extend_from_slice(pb);
        let id = *self.lookup.get(buf.as_slice())?;
        let score = self.scores[id as usize];
        // run.c merges only when `score > best_score` (initially -1e10), never for NaN.
        if score.is_nan() || score <= NO_MERGE {
            return None;
        }
        Some((id, if score == 0.0 { 0.0 } else { score }))
    }

    /// run.c's merge loop, in O(n log n): linked list + heap with lazy invalidation (see the module docs).
    fn merge(&self, tokens: Vec<u32>) -> Vec<u32> {
        let n = tokens.len();
        if n < 2 {
            return tokens;
        }
        assert!(n < NIL as usize, "text too long: {n} tokens");
        let mut nodes: Vec<Node> = tokens
            .iter()
            .enumerate()
            .map(|(i, &tok)| Node {
                tok,
                prev: if i == 0 { NIL } else { i as u32 - 1 },
                next: if i + 1 == n { NIL } else { i as u32 + 1 },
                changed: 0,
            })
            .collect();
        let mut buf = Vec::with_capacity(2 * self.max_token_length);
        // Merge counter: merge k stamps the node it changes and the candidates it pushes with k.
        let mut clock = 0u32;
        // The candidate for the pair (left, next[left]), stamped with the current clock.
        let candidate = |nodes: &[Node], buf: &mut Vec<u8>, left: u32, stamp: u32| {
            let (l, r) = (
                &nodes[left as usize],
                &nodes[nodes[left as usize].next as usize],
            );
            self.merge_candidate(l.tok, r.tok, buf)
                .map(|(id, score)| Candidate {
                    key: ((score_order(score) as u64) << 32) | (NIL - left) as u64,
                    id,
                    stamp,
                })
        };
        let initial: Vec<Candidate> = (0..n as u32 - 1)
            .filter_map(|i| candidate(&nodes, &mut buf, i, 0))
            .collect();
        let mut heap = BinaryHeap::from(initial);
        while let Some(c) = heap.pop() {
            let l = NIL - c.key as u32;
            let left = nodes[l as usize];
            // Stale if the left node died or changed after the entry was made; while it is unchanged its right
            // neighbour is the same node (only merging into `l` relinks `l.next`), which may have changed by
            // merging with its own right neighbour.
            if left.changed > c.stamp || nodes[left.next as usize].changed > c.stamp {
                continue;
            }
            // Merge (l, r) into l; r dies.
            clock += 1;
            let r = left.next;
            let rn = nodes[r as usize].next;
            nodes[r as usize].changed = DEAD;
            let node = &mut nodes[l as usize];
            node.tok = c.id;
            node.changed = clock;
            node.next = rn;
            if rn != NIL {
                nodes[rn as usize].prev = l;
                heap.extend(candidate(&nodes, &mut buf, l, clock));
            }
            if left.prev != NIL {
                heap.extend(candidate(&nodes, &mut buf, left.prev, clock));
            }
        }
        // Node 0 is never removed (only right-hand nodes are).
        let mut out = Vec::with_capacity(n);
        let mut i = 0;
        while i != NIL {
            out.push(nodes[i as usize].tok);
            i = nodes[i as usize].next;
        }
        out
    }

    /// run.c's `decode(t, prev, token)`: the piece of `token`, without its leading space when `prev` is BOS; a
    /// piece of the form `<0xHH>` (hex digits in either case) becomes that one raw byte. Panics if `token` is
    /// out of range (use [`Self::decode_bytes`] for untrusted ids).
    ///
    /// run.c recognises byte pieces with `sscanf("<0x%02hhX>")`, which is looser (it would also accept e.g.
    /// `<0x4` or `<0x41>junk`); in tok512.bin only ids 3..258 start with `<0x`, so the two agree there.
    /// Unlike run.c's `safe_printf`, nothing is filtered: `<0x00>` gives `[0]`, `<0x0A>` gives `[b'\n']`.
    pub fn decode_piece(&self, prev: u32, token: u32) -> Vec<u8> {
        let mut piece: &[u8] = &self.vocab[token as usize];
        if prev == BOS_ID && piece.first() == Some(&b' ') {
            piece = &piece[1..];
        }
        match byte_piece(piece) {
            Some(b) => vec![b],
            None => piece.to_vec(),
        }
    }

    /// The bytes of a whole id sequence: the concatenation of [`Self::decode_piece`]`(prev, id)`, where BOS and
    /// EOS contribute no bytes (run.c never prints the BOS it starts from, and stops generating at BOS) and the
    /// first id has no predecessor, so only a piece right after an explicit BOS loses its leading space. Hence
    /// `decode_bytes(&encode(text, true, _)) == text` (up to a `'\0'`), while without BOS the dummy-prefix space
    /// stays: `decode_bytes(&encode(text, false, _)) == " " + text` for non-empty text. `<unk>` (0) decodes to
    /// its piece. An id `>= vocab_size()` is an error.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        let mut prev = u32::MAX;
        for (pos, &id) in ids.iter().enumerate() {
            if id as usize >= self.vocab.len() {
                return Err(format!(
                    "token id {id} at position {pos} is out of range: this llama2.c tokenizer has {} pieces \
                     (ids 0..{}); the ids come from a different tokenizer or model",
                    self.vocab.len(),
                    self.vocab.len() - 1
                ));
            }
            if id != BOS_ID && id != EOS_ID {
                out.extend_from_slice(&self.decode_piece(prev, id));
            }
            prev = id;
        }
        Ok(out)
    }
}

/// `<0xHH>` → the byte 0xHH.
fn byte_piece(piece: &[u8]) -> Option<u8> {
    if piece.len() != 6 || !piece.starts_with(b"<0x") || piece[5] != b'>' {
        return None;
    }
    let hex = |c: u8| (c as char).to_digit(16);
    Some((hex(piece[3])? * 16 + hex(piece[4])?) as u8)
}

/// One token of the sequence being merged, in a doubly linked list (indices into the node array).
#[derive(Clone, Copy)]
struct Node {
    tok: u32,
    prev: u32,
    next: u32,
    /// The merge (clock value) that last changed `tok`, 0 for none; `DEAD` once the node was merged into its
    /// left neighbour.
    changed: u32,
}

const NIL: u32 = u32::MAX;
const DEAD: u32 = u32::MAX;

/// A mergeable adjacent pair. `key` = score (order-preserving bits) in the high half, `NIL - left` in the low
/// half, so the max-heap pops the highest score first and, among equal scores, the leftmost pair.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    key: u64,
    id: u32,
    /// The clock when this entry was made: it is stale if either node changed later.
    stamp: u32,
}

/// Maps an f32 (never NaN, never -0.0: see `merge_candidate`) to a u32 with the same order.
fn score_order(score: f32) -> u32 {
    let bits = score.to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// FxHash (rustc's hasher): piece lookups dominate encoding, and SipHash's DoS resistance buys nothing for a
/// table whose keys come from the tokenizer file.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
    }

    fn write_usize(&mut self, n: usize) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(K);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A tokenizer.bin image: `<unk>`, BOS, EOS, the 256 byte pieces, then `extra` (piece, score).
    fn file(extra: &[(&[u8], f32)]) -> Vec<u8> {
        let mut entries: Vec<(Vec<u8>, f32)> = vec![
            (b"<unk>".to_vec(), 0.0),
            (b"\n<s>\n".to_vec(), 0.0),
            (b"\n</s>\n".to_vec(), 0.0),
        ];
        entries.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>").into_bytes(), 0.0)));
        entries.extend(extra.iter().map(|(p, s)| (p.to_vec(), *s)));
        let mtl = entries.iter().map(|(p, _)| p.len()).max().unwrap() as i32;
        let mut out = mtl.to_le_bytes().to_vec();
        for (p, s) in entries {
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&(p.len() as i32).to_le_bytes());
            out.extend_from_slice(&p);
        }
        out
    }

    fn tok(extra: &[(&[u8], f32)]) -> Llama2cTokenizer {
        Llama2cTokenizer::from_bytes(&file(extra), "test").unwrap()
    }

    /// run.c's O(n²) loop, transcribed literally: the reference for the heap version.
    fn merge_naive(t: &Llama2cTokenizer, mut tokens: Vec<u32>) -> Vec<u32> {
        loop {
            let (mut best_score, mut best) = (NO_MERGE, None);
            for i in 0..tokens.len().saturating_sub(1) {
                let mut cat = t.piece(tokens[i]).to_vec();
                cat.extend_from_slice(t.piece(tokens[i + 1]));
                if let Some(id) = t.token_id(&cat) {
                    if t.score(id) > best_score {
                        best_score = t.score(id);
                        best = Some((i, id));
                    }
                }
            }
            let Some((i, id)) = best else { return tokens };
            tokens[i] = id;
            tokens.remove(i + 1);
        }
    }

    #[test]
    fn dummy_prefix_and_codepoints() {
        let t = tok(&[(b" ", -1.0), (b"a", -2.0), (b"\xc3\xa9", -3.0)]);
        let sp = t.token_id(b" ").unwrap();
        let a = t.token_id(b"a").unwrap();
        let e = t.token_id("é".as_bytes()).unwrap();
        assert_eq!(t.encode("", false, false), Vec::<u32>::new());
        assert_eq!(t.encode("", true, true), vec![1, 2]);
        assert_eq!(t.encode("a", true, false), vec![1, sp, a]);
        assert_eq!(t.encode("aé", false, true), vec![sp, a, e, 2]);
        // Text stops at NUL, like a C string.
        assert_eq!(t.encode("a\0a", false, false), vec![sp, a]);
        assert_eq!(t.encode("\0a", true, false), vec![1]);
    }

    #[test]
    fn byte_fallback() {
        let t = tok(&[(b" ", -1.0)]);
        // 'ü' = C3 BC, '😀' = F0 9F 98 80: each byte becomes id byte + 3.
        assert_eq!(
            t.encode("ü😀", false, false),
            vec![
                t.token_id(b" ").unwrap(),
                0xC3 + 3,
                0xBC + 3,
                0xF0 + 3,
                0x9F + 3,
                0x98 + 3,
                0x80 + 3
            ]
        );
    }

    #[test]
    fn merges_highest_score_first() {
        // "abc": "ab" (-5) vs "bc" (-1): bc wins, then "abc" needs a+bc.
        let t = tok(&[
            (b" ", -9.0),
            (b"a", -9.0),
            (b"b", -9.0),
            (b"c", -9.0),
            (b"ab", -5.0),
            (b"bc", -1.0),
            (b"abc", -7.0),
        ]);
        let id = |s: &str| t.token_id(s.as_bytes()).unwrap();
        assert_eq!(t.encode("abc", false, false), vec![id(" "), id("abc")]);
        // Without "abc", a + bc stays.
        let t2 = tok(&[
            (b" ", -9.0),
            (b"a", -9.0),
            (b"b", -9.0),
            (b"c", -9.0),
            (b"ab", -5.0),
            (b"bc", -1.0),
        ]);
        let id2 = |s: &str| t2.token_id(s.as_bytes()).unwrap();
        assert_eq!(
            t2.encode("abc", false, false),
            vec![id2(" "), id2("a"), id2("bc")]
        );
    }

    #[test]
    fn ties_go_to_the_leftmost_pair() {
        // "aaa": both pairs make "aa" at the same score; the left one merges: [aa, a].
        let t = tok(&[(b" ", -9.0), (b"a", -9.0), (b"aa", -1.0)]);
        let id = |s: &str| t.token_id(s.as_bytes()).unwrap();
        assert_eq!(
            t.encode("aaa", false, false),
            vec![id(" "), id("aa"), id("a")]
        );
        // Different pieces, equal scores (and -0.0 == 0.0 as in C): leftmost wins.
        let t = tok(&[
            (b" ", -9.0),
            (b"x", -9.0),
            (b"y", -9.0),
            (b"z", -9.0),
            (b"xy", -0.0),
            (b"yz", 0.0),
        ]);
        let id = |s: &str| t.token_id(s.as_bytes()).unwrap();
        assert_eq!(
            t.encode("xyz", false, false),
            vec![id(" "), id("xy"), id("z")]
        );
        // A merge scoring <= -1e10 never happens (run.c's initial best_score), NaN neither.
        let t = tok(&[
            (b" ", -9.0),
            (b"p", -9.0),
            (b"q", -9.0),
            (b"pq", -1e10),
            (b"qp", f32::NAN),
        ]);
        let id = |s: &str| t.token_id(s.as_bytes()).unwrap();
        assert_eq!(
            t.encode("pqp", false, false),
            vec![id(" "), id("p"), id("q"), id("p")]
        );
    }

    #[test]
    fn bos_takes_part_in_the_pair_scan() {
        // If BOS's piece + the next piece is itself a piece, run.c merges BOS away.
        let t = tok(&[(b" ", -9.0), (b"\n<s>\n ", -1.0)]);
        let merged = t.token_id(b"\n<s>\n ").unwrap();
        assert_eq!(t.encode("!", true, false), vec![merged, 36]); // '!' byte-falls back to 0x21 + 3
    }

    #[test]
    fn heap_matches_the_naive_loop_on_random_vocabularies() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let alphabet: &[&str] = &["a", "b", "c", " ", "é"];
        for _ in 0..200 {
            let mut extra: Vec<(Vec<u8>, f32)> = alphabet
                .iter()
                .map(|s| (s.as_bytes().to_vec(), -50.0))
                .collect();
            for _ in 0..30 {
                let len = 2 + rnd(4) as usize;
                let p: String = (0..len)
                    .map(|_| alphabet[rnd(alphabet.len() as u64) as usize])
                    .collect();
                if extra.iter().all(|(q, _)| q != p.as_bytes()) {
                    // Few distinct scores, so ties are common.
                    extra.push((p.into_bytes(), -(rnd(4) as f32)));
                }
            }
            let refs: Vec<(&[u8], f32)> = extra.iter().map(|(p, s)| (p.as_slice(), *s)).collect();
            let t = tok(&refs);
            for _ in 0..20 {
                let len = rnd(40) as usize;
                let text: String = (0..len)
                    .map(|_| alphabet[rnd(alphabet.len() as u64) as usize])
                    .collect();
                for bos in [false, true] {
                    let got = t.encode(&text, bos, false);
                    // The same start as encode(), then the literal run.c loop.
                    let mut start = Vec::new();
                    if bos {
                        start.push(1);
                    }
                    if !text.is_empty() {
                        start.push(t.token_id(b" ").unwrap());
                    }
                    start.extend(
                        text.chars()
                            .map(|c| t.token_id(c.to_string().as_bytes()).unwrap()),
                    );
                    assert_eq!(got, merge_naive(&t, start), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn decode_rules() {
        let t = tok(&[(b" ", -1.0), (b" hi", -2.0), (b"hi", -3.0)]);
        let hi_sp = t.token_id(b" hi").unwrap();
        assert_eq!(t.decode_piece(BOS_ID, hi_sp), b"hi");
        assert_eq!(t.decode_piece(0, hi_sp), b" hi");
        assert_eq!(t.decode_piece(0, 3 + 0x0A), b"\n");
        assert_eq!(t.decode_piece(0, 3), vec![0u8]);
        assert_eq!(t.decode_piece(0, BOS_ID), b"\n<s>\n");
        assert_eq!(byte_piece(b"<0xfe>"), Some(0xFE));
        assert_eq!(byte_piece(b"<0xG0>"), None);
        assert_eq!(byte_piece(b"<0x41>x"), None);
        assert_eq!(t.decode_bytes(&[1, hi_sp, hi_sp, 2]).unwrap(), b"hi hi");
        assert_eq!(t.decode_bytes(&[hi_sp, 1, hi_sp]).unwrap(), b" hihi");
        let ids = t.encode("hi ü", true, true);
        assert_eq!(t.decode_bytes(&ids).unwrap(), "hi ü".as_bytes());
        let ids = t.encode("hi ü", false, false);
        assert_eq!(t.decode_bytes(&ids).unwrap(), " hi ü".as_bytes());
        let err = t.decode_bytes(&[1, 9999]).unwrap_err();
        assert!(err.contains("9999") && err.contains("position 1"), "{err}");
    }

    #[test]
    fn load_errors() {
        let mut small = 7i32.to_le_bytes().to_vec();
        small.extend_from_slice(&0f32.to_le_bytes());
        small.extend_from_slice(&1i32.to_le_bytes());
        small.push(b' ');
        let err = Llama2cTokenizer::from_bytes(&small, "x.bin").unwrap_err();
        assert!(
            err.contains("1 entries, but") && err.contains("259"),
            "{err}"
        );
        let err = Llama2cTokenizer::from_bytes(&file(&[]), "x.bin").unwrap_err();
        assert!(err.contains("no piece \" \""), "{err}");
        let err = Llama2cTokenizer::from_bytes(&file(&[(b"a\0b", 0.0), (b" ", 0.0)]), "x.bin")
            .unwrap_err();
        assert!(err.contains("NUL"), "{err}");
        let err = Llama2cTokenizer::from_bytes(&0i32.to_le_bytes(), "x.bin").unwrap_err();
        assert!(err.contains("max_token_length = 0"), "{err}");
    }
}
