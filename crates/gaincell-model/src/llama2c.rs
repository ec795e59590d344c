//! llama2.c checkpoints (karpathy/llama2.c `.bin` files) read into HuggingFace Llama tensors, and written back.
//!
//! Three on-disk formats, all little-endian, all written by llama2.c's `export.py`:
//!
//! - **legacy** (version 0, `legacy_export`, read by `run.c`): seven `i32` (dim, hidden_dim, n_layers, n_heads,
//!   n_kv_heads, vocab_size, seq_len; a negative vocab_size flags an unshared classifier), then `f32` tensors:
//!   token embedding, every layer's attention rmsnorm, then every wq, wk, wv, wo, ffn rmsnorm, w1, w2, w3, the
//!   final rmsnorm, the RoPE tables freq_cis_real/imag `[seq_len, head_size/2]` (skipped here), and the
//!   classifier when it is not shared with the embedding.
//! - **version 1** (`version1_export`): a 256-byte header (`u32` magic `0x616b3432`, "ak42"; `i32` version 1;
//!   the seven `i32`; `u8` shared_classifier; zero padding), then `f32` tensors: attention norms, ffn norms,
//!   final norm, embedding, every wq, wk, wv, wo, w1, w2, w3, and the classifier when not shared.
//! - **version 2** (`version2_export`, read by `runq.c`): the same header plus an `i32` group_size right after
//!   the flag byte (offset 37), the norms in `f32`, then each matrix of the version 1 order as Q8_0: its `int8`
//!   values followed by one `f32` scale per group of group_size consecutive values. Values are dequantised as
//!   `runq.c` does, `q as f32 * scale`.
//!
//! Every header is validated (positive, bounded, consistent dims; group size dividing each quantised tensor) and
//! the file length must equal exactly what the header implies before anything is allocated.
//!
//! Tensors come out under HF `LlamaForCausalLM` state-dict names in `nn.Linear` `[out, in]` layout, with q_proj
//! and k_proj rows permuted from llama2.c's interleaved rotary pairs to HF's half-split layout ([`permute_to_hf`],
//! the permutation `export.py`'s `hf_export` applies); `lm_head.weight` is present only when the classifier is
//! not shared. [`write_llama2c_v1`] takes such tensors back to a version 1 file. Errors are one line each.

use std::collections::HashMap;
use std::path::Path;

/// The `u32` magic that starts version 1 and 2 files: "ak42" read as a big-endian word, stored little-endian.
pub const LLAMA2C_MAGIC: u32 = 0x616b_3432;
/// Bytes of the legacy header: seven `i32`.
pub const LEGACY_HEADER_BYTES: usize = 28;
/// Bytes of the version 1 and 2 headers, padding included.
pub const VERSIONED_HEADER_BYTES: usize = 256;

/// Largest `dim` this reader accepts (Llama-2 70B has 8192).
pub const MAX_DIM: usize = 1 << 16;
/// Largest `hidden_dim` this reader accepts.
pub const MAX_HIDDEN_DIM: usize = 1 << 20;
/// Largest `n_layers` this reader accepts.
pub const MAX_LAYERS: usize = 1 << 10;
/// Largest `n_heads` (and `n_kv_heads`) this reader accepts.
pub const MAX_HEADS: usize = 1 << 12;
/// Largest `vocab_size` this reader accepts.
pub const MAX_VOCAB: usize = 1 << 22;
/// Largest `seq_len` this reader accepts.
pub const MAX_SEQ_LEN: usize = 1 << 20;

/// The hyperparameters a llama2.c header carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Llama2cHeader {
    pub dim: usize,
    pub hidden_dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    /// Always positive here; the legacy sign flag is decoded into `shared_classifier`.
    pub vocab_size: usize,
    pub seq_len: usize,
    /// The classifier is the token embedding (no `lm_head.weight`).
    pub shared_classifier: bool,
    /// 0 = legacy, 1 = fp32, 2 = Q8_0.
    pub version: u32,
    /// Q8_0 group size, version 2 only.
    pub group_size: Option<usize>,
}

impl Llama2cHeader {
    /// `dim / n_heads`.
    pub fn head_size(&self) -> usize {
        self.dim / self.n_heads
    }

    /// Rows of k_proj and v_proj: `head_size * n_kv_heads`.
    pub fn kv_dim(&self) -> usize {
        self.head_size() * self.n_kv_heads
    }

    fn describe(&self) -> String {
        format!(
            "dim={} hidden_dim={} n_layers={} n_heads={} n_kv_heads={} vocab_size={} seq_len={}",
            self.dim,
            self.hidden_dim,
            self.n_layers,
            self.n_heads,
            self.n_kv_heads,
            self.vocab_size,
            self.seq_len
        )
    }
}

/// A parsed checkpoint: its header and `(HF name, shape, row-major f32 values)` in HF module order.
#[derive(Debug, Clone)]
pub struct Llama2cCheckpoint {
    pub header: Llama2cHeader,
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl Llama2cCheckpoint {
    /// The shape and values of the tensor called `name`.
    pub fn get(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.tensors
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, s, v)| (s.as_slice(), v.as_slice()))
    }
}

/// Permutes the rows of a `[rows, cols]` q or k projection from llama2.c's rotary layout (within each head of
/// `rows / heads` rows, pair `i` is rows `2i, 2i+1`) to HF's (pair `i` is rows `i, i + head_size/2`): HF row
/// `h*hs + j*hs/2 + i` is llama2.c row `h*hs + 2i + j`. This is `hf_export`'s `permute_original`,
/// `w.view(heads, hs/2, 2, cols).transpose(1, 2).reshape(rows, cols)`.
///
/// # Panics
/// If `w.len() != rows * cols`, `heads` does not divide `rows`, or the head size is odd.
pub fn permute_to_hf(w: &[f32], heads: usize, rows: usize, cols: usize) -> Vec<f32> {
    permute_rows(w, heads, rows, cols, true)
}

/// The inverse of [`permute_to_hf`]: HF's half-split rotary rows back to llama2.c's interleaved pairs.
///
/// # Panics
/// As [`permute_to_hf`].
pub fn permute_from_hf(w: &[f32], heads: usize, rows: usize, cols: usize) -> Vec<f32> {
    permute_rows(w, heads, rows, cols, false)
}

fn permute_rows(w: &[f32], heads: usize, rows: usize, cols: usize, to_hf: bool) -> Vec<f32> {
    assert!(
        heads > 0 && rows.is_multiple_of(heads) && (rows / heads).is_multiple_of(2),
        "rotary permutation needs rows ({rows}) to split into {heads} heads of even size"
    );
    assert_eq!(
        Some(w.len()),
        rows.checked_mul(cols),
        "rotary permutation: {} values is not a [{rows}, {cols}] matrix",
        w.len()
    );
    let hs = rows / heads;
    let half = hs / 2;
    let mut out = vec![0.0f32; w.len()];
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let interleaved = h * hs + 2 * i + j;
                let split = h * hs + j * half + i;
                let (src, dst) = if to_hf {
                    (interleaved, split)
                } else {
                    (split, interleaved)
                };
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

/// Whether `bytes_prefix` (the first bytes of a file, 28 or more for a legacy sniff) looks like a llama2.c
/// checkpoint: it starts with the version 1/2 magic (any version, so [`read_llama2c`] can name an unsupported
/// one), or its first 28 bytes are a legacy header that passes every header check. The file length is not
/// checked here; [`read_llama2c`] does that.
pub fn is_llama2c(bytes_prefix: &[u8]) -> bool {
    if bytes_prefix.len() >= 4 && u32_at(bytes_prefix, 0) == LLAMA2C_MAGIC {
        return true;
    }
    bytes_prefix.len() >= LEGACY_HEADER_BYTES
        && header_from_params(params_at(bytes_prefix, 0), 0).is_ok()
}

/// Reads a llama2.c checkpoint at `path` (any version); see [`read_llama2c`].
pub fn load_llama2c(path: &Path) -> Result<Llama2cCheckpoint, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "{}: cannot read the llama2.c checkpoint: {e}; check the path and its permissions",
            path.display()
        )
    })?;
    read_llama2c(&bytes, &path.display().to_string())
}

/// Parses a whole llama2.c checkpoint (legacy, version 1 or version 2) into HF-named f32 tensors. `origin` (a
/// path or other label) starts every error message.
pub fn read_llama2c(bytes: &[u8], origin: &str) -> Result<Llama2cCheckpoint, String> {
    let (header, start, pieces) = parse_header(bytes, bytes.len(), origin)?;
    decode(bytes, start, header, &pieces)
}

/// Reads only the header of the llama2.c checkpoint at `path` and checks it against the file's length, as
/// [`read_llama2c`] does, without reading the weights: a model's shape, or whether a file is a checkpoint.
pub fn load_llama2c_header(path: &Path) -> Result<Llama2cHeader, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| {
        format!(
            "{}: cannot read the llama2.c checkpoint: {e}; check the path and its permissions",
            path.display()
        )
    };
    let mut f = std::fs::File::open(path).map_err(cannot)?;
    let len = f.metadata().map_err(cannot)?.len() as usize;
    let mut prefix = Vec::with_capacity(VERSIONED_HEADER_BYTES);
    f.by_ref()
        .take(VERSIONED_HEADER_BYTES as u64)
        .read_to_end(&mut prefix)
        .map_err(cannot)?;
    Ok(parse_header(&prefix, len, &path.display().to_string())?.0)
}

/// The header of a file of `len` bytes that starts with `bytes` (its first 256 bytes or more), validated against
/// that length: the header, where the tensors start, and their layout.
fn parse_header(
    bytes: &[u8],
    len: usize,
    origin: &str,
) -> Result<(Llama2cHeader, usize, Vec<Piece>), String> {
    if len == 0 {
        return Err(format!(
            "{origin}: the file is empty (0 bytes), not a llama2.c checkpoint; re-download or re-export it"
        ));
    }
    if len >= 4 && u32_at(bytes, 0) == LLAMA2C_MAGIC {
        if len < VERSIONED_HEADER_BYTES {
            return Err(format!(
                "{origin}: a llama2.c file with the \"ak42\" magic needs a {VERSIONED_HEADER_BYTES}-byte header, \
                 the file has {len} bytes; the file is truncated, re-download or re-export it"
            ));
        }
        let version = i32_at(bytes, 4);
        if version != 1 && version != 2 {
            return Err(format!(
                "{origin}: unknown llama2.c checkpoint version {version} (this reader knows legacy, 1 and 2); \
                 re-export it with llama2.c's export.py --version 1"
            ));
        }
        let version = version as u32;
        let mut header = header_from_params(params_at(bytes, 8), version)
            .map_err(|e| format!("{origin}: {e}"))?;
        header.shared_classifier = match bytes[36] {
            0 => false,
            1 => true,
            b => {
                return Err(format!(
                    "{origin}: the shared_classifier flag (byte 36) is {b}, expected 0 or 1; the header is corrupt, \
                     re-export the checkpoint"
                ))
            }
        };
        if version == 2 {
            let gs = i32_at(bytes, 37);
            if gs <= 0 {
                return Err(format!(
                    "{origin}: Q8_0 group_size is {gs}, it must be positive; the header is corrupt, re-export the \
                     checkpoint"
                ));
            }
            header.group_size = Some(gs as usize);
        }
        let pieces = layout(&header);
        check_groups(&header, &pieces).map_err(|e| format!("{origin}: {e}"))?;
        let need = file_bytes(&header, &pieces, VERSIONED_HEADER_BYTES)
            .map_err(|e| format!("{origin}: {e}"))?;
        if need != len {
            let what = match header.group_size {
                Some(gs) => format!("version 2, Q8_0 group_size {gs}"),
                None => "version 1, fp32".to_string(),
            };
            return Err(format!(
                "{origin}: header says {} ({what}, {} classifier) which needs {need} bytes, the file has {len}; {}",
                header.describe(),
                if header.shared_classifier { "shared" } else { "unshared" },
                size_hint(need, len)
            ));
        }
        return Ok((header, VERSIONED_HEADER_BYTES, pieces));
    }
    if len >= 4 && bytes[..4] == *b"ak42" {
        return Err(format!(
            "{origin}: the llama2.c magic is byte-swapped (a big-endian file?); llama2.c checkpoints are \
             little-endian, re-export it with llama2.c's export.py"
        ));
    }
    if len < LEGACY_HEADER_BYTES {
        return Err(format!(
            "{origin}: {len} bytes is too short for a llama2.c checkpoint (a legacy header alone is \
             {LEGACY_HEADER_BYTES} bytes, and v1/v2 files start with the magic 0x616b3432); the file is truncated \
             or not a llama2.c checkpoint{}",
            other_format_hint(bytes)
        ));
    }
    let header = header_from_params(params_at(bytes, 0), 0).map_err(|e| {
        format!(
            "{origin}: not a llama2.c checkpoint: no v1/v2 magic 0x616b3432 (\"ak42\") and the first \
             {LEGACY_HEADER_BYTES} bytes are not a valid legacy header: {e}{}",
            other_format_hint(bytes)
        )
    })?;
    let pieces = layout(&header);
    let need =
        file_bytes(&header, &pieces, LEGACY_HEADER_BYTES).map_err(|e| format!("{origin}: {e}"))?;
    if need != len {
        let mut other = header.clone();
        other.shared_classifier = !header.shared_classifier;
        let other_need = file_bytes(&other, &layout(&other), LEGACY_HEADER_BYTES)
            .map_err(|e| format!("{origin}: {e}"))?;
        let (expected, alternative) = if header.shared_classifier {
            (
                "vocab_size > 0: shared classifier",
                "with an unshared classifier",
            )
        } else {
            (
                "vocab_size < 0: unshared classifier",
                "with a shared classifier",
            )
        };
        let hint = if other_need == len {
            format!("the file size matches the layout {alternative}, so the header's vocab_size sign is wrong")
        } else {
            size_hint(need, len)
        };
        return Err(format!(
            "{origin}: header says {} (legacy, {expected}) which needs {need} bytes ({other_need} {alternative}), \
             the file has {len}; {hint}",
            header.describe()
        ));
    }
    Ok((header, LEGACY_HEADER_BYTES, pieces))
}

/// Serialises HF-named tensors (as [`read_llama2c`] returns them) to a llama2.c version 1 file: q_proj and k_proj
/// go back to the interleaved rotary layout, `lm_head.weight` is written when `header.shared_classifier` is false
/// (and must then be present; when shared it may be absent or equal to the embedding). `header.version` and
/// `header.group_size` are ignored; every tensor must have the shape the header implies and none may be extra.
pub fn write_llama2c_v1(
    header: &Llama2cHeader,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
) -> Result<Vec<u8>, String> {
    let mut params = [0i32; 7];
    let fields = [
        header.dim,
        header.hidden_dim,
        header.n_layers,
        header.n_heads,
        header.n_kv_heads,
        header.vocab_size,
        header.seq_len,
    ];
    for ((p, &v), (name, _)) in params.iter_mut().zip(&fields).zip(FIELDS) {
        *p = i32::try_from(v).map_err(|_| {
            format!("cannot write llama2.c v1: header {name}={v} does not fit the format's i32; fix the header")
        })?;
    }
    let mut h =
        header_from_params(params, 1).map_err(|e| format!("cannot write llama2.c v1: {e}"))?;
    h.shared_classifier = header.shared_classifier;

    let mut by_name: HashMap<&str, (&[usize], &[f32])> = HashMap::new();
    for (name, shape, values) in tensors {
        if by_name.insert(name, (shape, values)).is_some() {
            return Err(format!(
                "cannot write llama2.c v1: tensor {name} is given twice; pass each tensor once"
            ));
        }
    }
    // Check every tensor before allocating the output, whose size comes from the header.
    let pieces = layout(&h);
    let mut sources = Vec::with_capacity(pieces.len());
    for piece in &pieces {
        let name = hf_name(piece.slot, piece.layer);
        let (shape, values) = *by_name.get(name.as_str()).ok_or_else(|| {
            format!(
                "cannot write llama2.c v1: missing tensor {name} (header {}); pass every tensor read_llama2c returns",
                h.describe()
            )
        })?;
        check_tensor(&name, shape, values, piece)?;
        sources.push((piece.slot, values));
    }
    let mut used = sources.len();
    if h.shared_classifier {
        if let Some(&(shape, values)) = by_name.get(LM_HEAD) {
            used += 1;
            let (_, embed) = by_name[EMBED];
            if shape != [h.vocab_size, h.dim] || values != embed {
                return Err(format!(
                    "cannot write llama2.c v1: {LM_HEAD} differs from {EMBED} but header.shared_classifier is true; \
                     set shared_classifier = false to write it"
                ));
            }
        }
    }
    if used != by_name.len() {
        let mut extra: Vec<&str> = by_name
            .keys()
            .copied()
            .filter(|n| *n != LM_HEAD && !pieces.iter().any(|p| hf_name(p.slot, p.layer) == *n))
            .collect();
        extra.sort_unstable();
        return Err(format!(
            "cannot write llama2.c v1: unexpected tensor {} (header {}); llama2.c has no place for it, drop it",
            extra.first().copied().unwrap_or("?"),
            h.describe()
        ));
    }

    let total = file_bytes(&h, &pieces, VERSIONED_HEADER_BYTES)
        .map_err(|e| format!("cannot write llama2.c v1: {e}"))?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&LLAMA2C_MAGIC.to_le_bytes());
    out.extend_from_slice(&1i32.to_le_bytes());
    for p in params {
        out.extend_from_slice(&p.to_le_bytes());
    }
    out.push(u8::from(h.shared_classifier));
    out.resize(VERSIONED_HEADER_BYTES, 0);
    for (slot, values) in sources {
        match slot {
            Slot::Wq => push_f32(&mut out, &permute_from_hf(values, h.n_heads, h.dim, h.dim)),
            Slot::Wk => push_f32(
                &mut out,
                &permute_from_hf(values, h.n_kv_heads, h.kv_dim(), h.dim),
            ),
            _ => push_f32(&mut out, values),
        }
    }
    debug_assert_eq!(out.len(), total);
    Ok(out)
}

// ----------------------------------------------------------------------------------------------------------------

/// `(HF name, shape, row-major values)`, as in [`Llama2cCheckpoint::tensors`].
type NamedTensor = (String, Vec<usize>, Vec<f32>);

const EMBED: &str = "model.embed_tokens.weight";
const LM_HEAD: &str = "lm_head.weight";

/// Header field names and bounds, in file order.
const FIELDS: [(&str, usize); 7] = [
    ("dim", MAX_DIM),
    ("hidden_dim", MAX_HIDDEN_DIM),
    ("n_layers", MAX_LAYERS),
    ("n_heads", MAX_HEADS),
    ("n_kv_heads", MAX_HEADS),
    ("vocab_size", MAX_VOCAB),
    ("seq_len", MAX_SEQ_LEN),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Embed,
    AttNorm,
    Wq,
    Wk,
    Wv,
    Wo,
    FfnNorm,
    W1,
    W2,
    W3,
    FinalNorm,
    /// Legacy RoPE tables, skipped.
    Skip,
    Classifier,
}

/// One tensor of the file, in file order.
#[derive(Debug, Clone, Copy)]
struct Piece {
    slot: Slot,
    layer: usize,
    shape: [usize; 2],
    /// 1-D tensors (norms) have `shape[0] == 1` and come out as `[shape[1]]`.
    vector: bool,
    quantised: bool,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn i32_at(b: &[u8], off: usize) -> i32 {
    i32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn params_at(b: &[u8], off: usize) -> [i32; 7] {
    std::array::from_fn(|i| i32_at(b, off + 4 * i))
}

/// Validates the seven header ints; `version` 0 decodes the legacy vocab_size sign.
fn header_from_params(p: [i32; 7], version: u32) -> Result<Llama2cHeader, String> {
    let mut v = [0usize; 7];
    let mut shared = true;
    for (i, (&raw, (name, max))) in p.iter().zip(FIELDS).enumerate() {
        let mut x = i64::from(raw);
        if i == 5 && version == 0 && raw < 0 {
            shared = false;
            x = -x;
        }
        if x <= 0 {
            let note = if i == 5 && version != 0 && raw < 0 {
                " (only legacy files flag an unshared classifier with a negative vocab_size)"
            } else {
                ""
            };
            return Err(format!(
                "header field {name}={raw} is not positive{note}; the header is corrupt or this is not a llama2.c \
                 checkpoint"
            ));
        }
        if x > max as i64 {
            return Err(format!(
                "header field {name}={x} exceeds this reader's bound {name} <= {max}; the header is corrupt or this \
                 is not a llama2.c checkpoint"
            ));
        }
        v[i] = x as usize;
    }
    let [dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len] = v;
    if !dim.is_multiple_of(n_heads) {
        return Err(format!(
            "header dim={dim} is not a multiple of n_heads={n_heads}; the header is corrupt or this is not a \
             llama2.c checkpoint"
        ));
    }
    if n_kv_heads > n_heads || !n_heads.is_multiple_of(n_kv_heads) {
        return Err(format!(
            "header n_heads={n_heads} is not a multiple of n_kv_heads={n_kv_heads} (each kv head must serve a whole \
             number of query heads); the header is corrupt or this is not a llama2.c checkpoint"
        ));
    }
    let head_size = dim / n_heads;
    if !head_size.is_multiple_of(2) {
        return Err(format!(
            "header head_size = dim/n_heads = {dim}/{n_heads} = {head_size} is odd, rotary embeddings need it even; \
             the header is corrupt or this is not a llama2.c checkpoint"
        ));
    }
    Ok(Llama2cHeader {
        dim,
        hidden_dim,
        n_layers,
        n_heads,
        n_kv_heads,
        vocab_size,
        seq_len,
        shared_classifier: shared,
        version,
        group_size: None,
    })
}

/// The file's tensors in order (header excluded), for `h.version` (0: legacy; 1, 2: versioned order).
fn layout(h: &Llama2cHeader) -> Vec<Piece> {
    let (d, hid, kv, voc) = (h.dim, h.hidden_dim, h.kv_dim(), h.vocab_size);
    let q = h.version == 2;
    let mat = |slot, layer, rows, cols| Piece {
        slot,
        layer,
        shape: [rows, cols],
        vector: false,
        quantised: q,
    };
    let norm = |slot, layer, n| Piece {
        slot,
        layer,
        shape: [1, n],
        vector: true,
        quantised: false,
    };
    let layers =
        |out: &mut Vec<Piece>, f: &dyn Fn(usize) -> Piece| out.extend((0..h.n_layers).map(f));
    let mut out = Vec::with_capacity(9 * h.n_layers + 5);
    if h.version == 0 {
        out.push(mat(Slot::Embed, 0, voc, d));
        layers(&mut out, &|l| norm(Slot::AttNorm, l, d));
    } else {
        layers(&mut out, &|l| norm(Slot::AttNorm, l, d));
        layers(&mut out, &|l| norm(Slot::FfnNorm, l, d));
        out.push(norm(Slot::FinalNorm, 0, d));
        out.push(mat(Slot::Embed, 0, voc, d));
    }
    layers(&mut out, &|l| mat(Slot::Wq, l, d, d));
    layers(&mut out, &|l| mat(Slot::Wk, l, kv, d));
    layers(&mut out, &|l| mat(Slot::Wv, l, kv, d));
    layers(&mut out, &|l| mat(Slot::Wo, l, d, d));
    if h.version == 0 {
        layers(&mut out, &|l| norm(Slot::FfnNorm, l, d));
    }
    layers(&mut out, &|l| mat(Slot::W1, l, hid, d));
    layers(&mut out, &|l| mat(Slot::W2, l, d, hid));
    layers(&mut out, &|l| mat(Slot::W3, l, hid, d));
    if h.version == 0 {
        out.push(norm(Slot::FinalNorm, 0, d));
        let half = h.head_size() / 2;
        out.push(mat(Slot::Skip, 0, h.seq_len, half));
        out.push(mat(Slot::Skip, 1, h.seq_len, half));
    }
    if !h.shared_classifier {
        out.push(mat(Slot::Classifier, 0, voc, d));
    }
    out
}

fn numel(p: &Piece) -> Result<usize, String> {
    p.shape[0].checked_mul(p.shape[1]).ok_or_else(|| {
        format!(
            "{} size overflows; the header is corrupt",
            hf_name(p.slot, p.layer)
        )
    })
}

fn piece_bytes(p: &Piece, group_size: Option<usize>) -> Result<usize, String> {
    let n = numel(p)?;
    let bytes = match (p.quantised, group_size) {
        (true, Some(gs)) => (n / gs).checked_mul(4).and_then(|s| s.checked_add(n)),
        _ => n.checked_mul(4),
    };
    bytes.ok_or_else(|| {
        format!(
            "{} size overflows; the header is corrupt",
            hf_name(p.slot, p.layer)
        )
    })
}

fn file_bytes(h: &Llama2cHeader, pieces: &[Piece], header_bytes: usize) -> Result<usize, String> {
    pieces.iter().try_fold(header_bytes, |acc, p| {
        acc.checked_add(piece_bytes(p, h.group_size)?)
            .ok_or_else(|| {
                format!(
                    "header {} implies a file size that overflows; the header is corrupt",
                    h.describe()
                )
            })
    })
}

fn check_groups(h: &Llama2cHeader, pieces: &[Piece]) -> Result<(), String> {
    let Some(gs) = h.group_size else {
        return Ok(());
    };
    for p in pieces.iter().filter(|p| p.quantised) {
        let n = numel(p)?;
        if !n.is_multiple_of(gs) {
            return Err(format!(
                "Q8_0 group_size={gs} does not divide the {n} values of {} {:?}; the header is corrupt, re-export the \
                 checkpoint",
                hf_name(p.slot, p.layer),
                p.shape
            ));
        }
    }
    Ok(())
}

fn size_hint(need: usize, len: usize) -> String {
    if len < need {
        format!(
            "the file is {} bytes short (truncated?), re-download or re-export it",
            need - len
        )
    } else {
        format!(
            "the file has {} bytes more (a different format version or a corrupt header), re-export it",
            len - need
        )
    }
}

fn other_format_hint(b: &[u8]) -> &'static str {
    if b.starts_with(b"GGUF") {
        " (it looks like a GGUF file)"
    } else if b.starts_with(b"PK\x03\x04") {
        " (it looks like a zip archive, e.g. a PyTorch .pt checkpoint: export it with llama2.c's export.py)"
    } else if b.len() > 8 && b[8] == b'{' {
        " (it looks like a safetensors file)"
    } else {
        ""
    }
}

fn hf_name(slot: Slot, layer: usize) -> String {
    let layer_name = |suffix: &str| format!("model.layers.{layer}.{suffix}");
    match slot {
        Slot::Embed => EMBED.to_string(),
        Slot::AttNorm => layer_name("input_layernorm.weight"),
        Slot::Wq => layer_name("self_attn.q_proj.weight"),
        Slot::Wk => layer_name("self_attn.k_proj.weight"),
        Slot::Wv => layer_name("self_attn.v_proj.weight"),
        Slot::Wo => layer_name("self_attn.o_proj.weight"),
        Slot::FfnNorm => layer_name("post_attention_layernorm.weight"),
        Slot::W1 => layer_name("mlp.gate_proj.weight"),
        Slot::W3 => layer_name("mlp.up_proj.weight"),
        Slot::W2 => layer_name("mlp.down_proj.weight"),
        Slot::FinalNorm => "model.norm.weight".to_string(),
        Slot::Skip => format!("freq_cis_{}", if layer == 0 { "real" } else { "imag" }),
        Slot::Classifier => LM_HEAD.to_string(),
    }
}

/// Index of a tensor in the output (HF module order); `None` for skipped pieces.
fn out_index(slot: Slot, layer: usize, n_layers: usize) -> Option<usize> {
    let k = match slot {
        Slot::Embed => return Some(0),
        Slot::FinalNorm => return Some(1 + 9 * n_layers),
        Slot::Classifier => return Some(2 + 9 * n_layers),
        Slot::Skip => return None,
        Slot::AttNorm => 0,
        Slot::Wq => 1,
        Slot::Wk => 2,
        Slot::Wv => 3,
        Slot::Wo => 4,
        Slot::FfnNorm => 5,
        Slot::W1 => 6,
        Slot::W3 => 7,
        Slot::W2 => 8,
    };
    Some(1 + 9 * layer + k)
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Reads the pieces (whose total size has been checked against `bytes`) starting at `start`.
fn decode(
    bytes: &[u8],
    start: usize,
    header: Llama2cHeader,
    pieces: &[Piece],
) -> Result<Llama2cCheckpoint, String> {
    let n_out = 2 + 9 * header.n_layers + usize::from(!header.shared_classifier);
    let mut slots: Vec<Option<NamedTensor>> = (0..n_out).map(|_| None).collect();
    let mut at = start;
    for p in pieces {
        let n = numel(p)?;
        let len = piece_bytes(p, header.group_size)?;
        let chunk = &bytes[at..at + len];
        at += len;
        let Some(idx) = out_index(p.slot, p.layer, header.n_layers) else {
            continue;
        };
        let mut values = match (p.quantised, header.group_size) {
            (true, Some(gs)) => {
                let (q, s) = chunk.split_at(n);
                let scales = f32s(s);
                q.iter()
                    .enumerate()
                    .map(|(i, &v)| f32::from(v as i8) * scales[i / gs])
                    .collect()
            }
            _ => f32s(chunk),
        };
        match p.slot {
            Slot::Wq => values = permute_to_hf(&values, header.n_heads, header.dim, header.dim),
            Slot::Wk => {
                values = permute_to_hf(&values, header.n_kv_heads, header.kv_dim(), header.dim)
            }
            _ => {}
        }
        let shape = if p.vector {
            vec![p.shape[1]]
        } else {
            p.shape.to_vec()
        };
        slots[idx] = Some((hf_name(p.slot, p.layer), shape, values));
    }
    debug_assert_eq!(at, bytes.len());
    let tensors = slots
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            "internal error: a llama2.c tensor was not read; please report this".to_string()
        })?;
    Ok(Llama2cCheckpoint { header, tensors })
}

fn check_tensor(name: &str, shape: &[usize], values: &[f32], p: &Piece) -> Result<(), String> {
    let want: Vec<usize> = if p.vector {
        vec![p.shape[1]]
    } else {
        p.shape.to_vec()
    };
    if shape != want.as_slice() {
        return Err(format!(
            "cannot write llama2.c v1: {name} has shape {shape:?}, the header implies {want:?}; fix the header or \
             the tensor"
        ));
    }
    if values.len() != numel(p)? {
        return Err(format!(
            "cannot write llama2.c v1: {name} has {} values for shape {shape:?}; pass row-major data of that shape",
            values.len()
        ));
    }
    Ok(())
}

fn push_f32(out: &mut Vec<u8>, values: &[f32]) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in [-1, 1).
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn legacy_header_bytes(p: [i32; 7]) -> Vec<u8> {
        p.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn tiny_header(shared: bool) -> Llama2cHeader {
        Llama2cHeader {
            dim: 8,
            hidden_dim: 12,
            n_layers: 2,
            n_heads: 2,
            n_kv_heads: 1,
            vocab_size: 10,
            seq_len: 6,
            shared_classifier: shared,
            version: 1,
            group_size: None,
        }
    }

    fn tiny_tensors(h: &Llama2cHeader) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        layout(h)
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let shape = if p.vector {
                    vec![p.shape[1]]
                } else {
                    p.shape.to_vec()
                };
                (
                    hf_name(p.slot, p.layer),
                    shape,
                    noise(p.shape[0] * p.shape[1], i as u64 + 1),
                )
            })
            .collect()
    }

    #[test]
    fn permutation_round_trips() {
        for (heads, rows, cols) in [(1, 4, 1), (1, 8, 3), (4, 16, 16), (2, 8, 16), (3, 12, 5)] {
            let w = noise(rows * cols, rows as u64 * 31 + cols as u64);
            let hf = permute_to_hf(&w, heads, rows, cols);
            assert_ne!(
                hf, w,
                "heads {heads} rows {rows}: the permutation should move rows"
            );
            assert_eq!(permute_from_hf(&hf, heads, rows, cols), w);
            assert_eq!(
                permute_to_hf(&permute_from_hf(&w, heads, rows, cols), heads, rows, cols),
                w
            );
        }
        // A head size of 2 is the identity.
        let w = noise(6, 9);
        assert_eq!(permute_to_hf(&w, 3, 6, 1), w);
    }

    #[test]
    fn permutation_by_hand() {
        // One head of 8 rows: llama2.c pairs (0,1) (2,3) (4,5) (6,7) = (re, im) of frequencies 0..3. HF puts the
        // four real parts first, then the four imaginary parts.
        let w: Vec<f32> = (0..8).map(|v| v as f32).collect();
        assert_eq!(permute_to_hf(&w, 1, 8, 1), [0., 2., 4., 6., 1., 3., 5., 7.]);
        // Rows move whole: [4, 2] with rows r0..r3 becomes r0, r2, r1, r3.
        let w: Vec<f32> = (0..8).map(|v| v as f32).collect();
        assert_eq!(permute_to_hf(&w, 1, 4, 2), [0., 1., 4., 5., 2., 3., 6., 7.]);
        // Two heads of 4 rows permute independently.
        assert_eq!(permute_to_hf(&w, 2, 8, 1), [0., 2., 1., 3., 4., 6., 5., 7.]);
        assert_eq!(
            permute_from_hf(&[0., 2., 4., 6., 1., 3., 5., 7.], 1, 8, 1),
            [0., 1., 2., 3., 4., 5., 6., 7.]
        );
    }

    /// llama2.c's RoPE (run.c: rotate pairs (2i, 2i+1) by pos * 10000^(-2i/hs)) on W x equals HF's rotate_half
    /// RoPE (pairs (i, i + hs/2), same frequency) on permute_to_hf(W) x, up to the same row permutation.
    #[test]
    fn permutation_maps_interleaved_rope_to_half_split_rope() {
        let (heads, hs, cols, pos) = (2usize, 8usize, 5usize, 7.0f32);
        let rows = heads * hs;
        let w = noise(rows * cols, 3);
        let x = noise(cols, 4);
        let matvec = |m: &[f32]| -> Vec<f32> {
            (0..rows)
                .map(|r| (0..cols).map(|c| m[r * cols + c] * x[c]).sum())
                .collect()
        };
        let angle = |i: usize| pos / 10000f32.powf((2 * i) as f32 / hs as f32);
        let mut a = matvec(&w);
        for h in 0..heads {
            for i in 0..hs / 2 {
                let (r0, r1) = (h * hs + 2 * i, h * hs + 2 * i + 1);
                let (c, s) = (angle(i).cos(), angle(i).sin());
                let (v0, v1) = (a[r0], a[r1]);
                a[r0] = v0 * c - v1 * s;
                a[r1] = v0 * s + v1 * c;
            }
        }
        let mut b = matvec(&permute_to_hf(&w, heads, rows, cols));
        for h in 0..heads {
            for i in 0..hs / 2 {
                let (r0, r1) = (h * hs + i, h * hs + i + hs / 2);
                let (c, s) = (angle(i).cos(), angle(i).sin());
                let (v0, v1) = (b[r0], b[r1]);
                b[r0] = v0 * c - v1 * s;
                b[r1] = v0 * s + v1 * c;
            }
        }
        let a_hf = permute_to_hf(&a, heads, rows, 1);
        for (u, v) in a_hf.iter().zip(&b) {
            assert!((u - v).abs() < 1e-5, "{a_hf:?} vs {b:?}");
        }
    }

    #[test]
    fn header_validation_names_the_problem() {
        let ok = [8, 12, 2, 2, 1, 10, 6];
        assert!(header_from_params(ok, 0).is_ok());
        let cases: [([i32; 7], &str); 9] = [
            ([0, 12, 2, 2, 1, 10, 6], "dim=0 is not positive"),
            ([8, -3, 2, 2, 1, 10, 6], "hidden_dim=-3 is not positive"),
            ([8, 12, 2, 2, 1, 0, 6], "vocab_size=0 is not positive"),
            ([1 << 20, 12, 2, 2, 1, 10, 6], "dim <= 65536"),
            ([8, 12, 5000, 2, 1, 10, 6], "n_layers <= 1024"),
            (
                [8, 12, 2, 3, 1, 10, 6],
                "dim=8 is not a multiple of n_heads=3",
            ),
            (
                [12, 12, 2, 3, 2, 10, 6],
                "n_heads=3 is not a multiple of n_kv_heads=2",
            ),
            (
                [8, 12, 2, 2, 4, 10, 6],
                "n_heads=2 is not a multiple of n_kv_heads=4",
            ),
            (
                [6, 12, 2, 2, 1, 10, 6],
                "head_size = dim/n_heads = 6/2 = 3 is odd",
            ),
        ];
        for (p, want) in cases {
            let e = header_from_params(p, 0).unwrap_err();
            assert!(e.contains(want), "{p:?}: {e}");
            assert!(!e.contains('\n'));
            let e = read_llama2c(&legacy_header_bytes(p), "x.bin").unwrap_err();
            assert!(
                e.starts_with("x.bin: not a llama2.c checkpoint") && e.contains(want),
                "{e}"
            );
        }
        // Legacy: negative vocab = unshared; i32::MIN must not overflow.
        let h = header_from_params([8, 12, 2, 2, 1, -10, 6], 0).unwrap();
        assert!(!h.shared_classifier && h.vocab_size == 10);
        assert!(header_from_params([8, 12, 2, 2, 1, i32::MIN, 6], 0)
            .unwrap_err()
            .contains("vocab_size"));
        let e = header_from_params([8, 12, 2, 2, 1, -10, 6], 1).unwrap_err();
        assert!(e.contains("only legacy files"), "{e}");
    }

    #[test]
    fn legacy_size_mismatch_says_which_layout_was_expected() {
        let h = Llama2cHeader {
            version: 0,
            ..tiny_header(true)
        };
        let shared = file_bytes(&h, &layout(&h), LEGACY_HEADER_BYTES).unwrap();
        let unshared_h = Llama2cHeader {
            shared_classifier: false,
            ..h.clone()
        };
        let unshared = file_bytes(&unshared_h, &layout(&unshared_h), LEGACY_HEADER_BYTES).unwrap();
        assert_eq!(unshared - shared, 4 * 10 * 8);
        let mut b = legacy_header_bytes([8, 12, 2, 2, 1, 10, 6]);
        b.resize(unshared, 0);
        let e = read_llama2c(&b, "f").unwrap_err();
        assert!(
            e.contains(&format!(
                "which needs {shared} bytes ({unshared} with an unshared classifier)"
            )),
            "{e}"
        );
        assert!(e.contains("vocab_size sign is wrong"), "{e}");
        b.truncate(shared - 4);
        let e = read_llama2c(&b, "f").unwrap_err();
        assert!(
            e.contains(&format!("the file has {}", shared - 4)) && e.contains("4 bytes short"),
            "{e}"
        );
        b.resize(shared, 0);
        let ck = read_llama2c(&b, "f").unwrap();
        assert_eq!(ck.header, h);
        assert_eq!(ck.tensors.len(), 2 + 9 * 2);
    }

    #[test]
    fn v1_writer_round_trips_both_classifier_modes() {
        for shared in [true, false] {
            let h = tiny_header(shared);
            let t = tiny_tensors(&h);
            let bytes = write_llama2c_v1(&h, &t).unwrap();
            assert!(is_llama2c(&bytes));
            let ck = read_llama2c(&bytes, "mem").unwrap();
            assert_eq!(ck.header, h);
            let mut want = t.clone();
            let mut got = ck.tensors.clone();
            want.sort_by(|a, b| a.0.cmp(&b.0));
            got.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(got, want);
            assert_eq!(ck.get(LM_HEAD).is_some(), !shared);
            assert_eq!(write_llama2c_v1(&ck.header, &ck.tensors).unwrap(), bytes);
        }
    }

    #[test]
    fn v1_writer_rejects_bad_tensors() {
        let h = tiny_header(true);
        let t = tiny_tensors(&h);
        let mut missing = t.clone();
        missing.retain(|(n, _, _)| n != "model.layers.1.mlp.up_proj.weight");
        let e = write_llama2c_v1(&h, &missing).unwrap_err();
        assert!(
            e.contains("missing tensor model.layers.1.mlp.up_proj.weight"),
            "{e}"
        );
        let mut wrong = t.clone();
        let k = wrong
            .iter_mut()
            .find(|(n, _, _)| n.ends_with("0.self_attn.k_proj.weight"))
            .unwrap();
        k.1 = vec![8, 8];
        k.2 = vec![0.0; 64];
        let e = write_llama2c_v1(&h, &wrong).unwrap_err();
        assert!(
            e.contains("k_proj.weight has shape [8, 8], the header implies [4, 8]"),
            "{e}"
        );
        let mut extra = t.clone();
        extra.push((
            "model.layers.0.self_attn.q_norm.weight".into(),
            vec![4],
            vec![1.0; 4],
        ));
        let e = write_llama2c_v1(&h, &extra).unwrap_err();
        assert!(
            e.contains("unexpected tensor model.layers.0.self_attn.q_norm.weight"),
            "{e}"
        );
        let mut head = t.clone();
        head.push((LM_HEAD.into(), vec![10, 8], vec![0.5; 80]));
        let e = write_llama2c_v1(&h, &head).unwrap_err();
        assert!(e.contains("set shared_classifier = false"), "{e}");
        let mut dup = t.clone();
        dup.push(t[0].clone());
        assert!(write_llama2c_v1(&h, &dup)
            .unwrap_err()
            .contains("given twice"));
        let bad = Llama2cHeader {
            n_kv_heads: 3,
            ..h.clone()
        };
        assert!(write_llama2c_v1(&bad, &t)
            .unwrap_err()
            .contains("n_kv_heads=3"));
    }

    /// A hand-built version 2 file: dim 4, hidden 2, 1 layer, 2 heads of size 2 (identity permutation), 1 kv head,
    /// vocab 2, seq_len 3, group size 2, unshared classifier.
    #[test]
    fn v2_dequantises_like_runq() {
        let mut b = Vec::new();
        b.extend_from_slice(&LLAMA2C_MAGIC.to_le_bytes());
        b.extend_from_slice(&2i32.to_le_bytes());
        for v in [4i32, 2, 1, 2, 1, 2, 3] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.push(0);
        b.extend_from_slice(&2i32.to_le_bytes());
        b.resize(VERSIONED_HEADER_BYTES, 0);
        let norms: Vec<f32> = (0..12).map(|i| 1.0 + i as f32 / 16.0).collect();
        push_f32(&mut b, &norms);
        // (rows, cols) of embed, wq, wk, wv, wo, w1, w2, w3, wcls.
        let shapes = [
            (2, 4),
            (4, 4),
            (2, 4),
            (2, 4),
            (4, 4),
            (2, 4),
            (4, 2),
            (2, 4),
            (2, 4),
        ];
        let mut expected = Vec::new();
        for (t, (r, c)) in shapes.iter().enumerate() {
            let n = r * c;
            let q: Vec<i8> = (0..n).map(|i| ((i * 37 + t * 11) % 255) as i8).collect();
            let s: Vec<f32> = (0..n / 2).map(|g| 0.01 * (g + t + 1) as f32).collect();
            b.extend(q.iter().map(|&v| v as u8));
            push_f32(&mut b, &s);
            expected.push((0..n).map(|i| q[i] as f32 * s[i / 2]).collect::<Vec<f32>>());
        }
        let ck = read_llama2c(&b, "v2").unwrap();
        assert_eq!(ck.header.version, 2);
        assert_eq!(ck.header.group_size, Some(2));
        assert!(!ck.header.shared_classifier);
        let names = [
            EMBED,
            "model.layers.0.self_attn.q_proj.weight",
            "model.layers.0.self_attn.k_proj.weight",
            "model.layers.0.self_attn.v_proj.weight",
            "model.layers.0.self_attn.o_proj.weight",
            "model.layers.0.mlp.gate_proj.weight",
            "model.layers.0.mlp.down_proj.weight",
            "model.layers.0.mlp.up_proj.weight",
            LM_HEAD,
        ];
        for ((name, want), (r, c)) in names.iter().zip(&expected).zip(shapes) {
            let (shape, got) = ck.get(name).unwrap();
            assert_eq!(shape, [r, c], "{name}");
            assert_eq!(got, want.as_slice(), "{name}");
        }
        assert_eq!(
            ck.get("model.layers.0.input_layernorm.weight").unwrap().1,
            &norms[0..4]
        );
        assert_eq!(
            ck.get("model.layers.0.post_attention_layernorm.weight")
                .unwrap()
                .1,
            &norms[4..8]
        );
        assert_eq!(ck.get("model.norm.weight").unwrap().1, &norms[8..12]);
        // A group size that does not divide a tensor is named.
        let mut bad = b.clone();
        bad[37..41].copy_from_slice(&3i32.to_le_bytes());
        let e = read_llama2c(&bad, "v2").unwrap_err();
        assert!(
            e.contains("group_size=3 does not divide the 8 values of model.embed_tokens.weight"),
            "{e}"
        );
        bad[37..41].copy_from_slice(&0i32.to_le_bytes());
        assert!(read_llama2c(&bad, "v2")
            .unwrap_err()
            .contains("group_size is 0"));
        // One byte short.
        let e = read_llama2c(&b[..b.len() - 1], "v2").unwrap_err();
        assert!(
            e.contains("version 2, Q8_0 group_size 2, unshared classifier"),
            "{e}"
        );
    }

    #[test]
    fn sniff_and_format_errors() {
        let h = tiny_header(true);
        let v1 = write_llama2c_v1(&h, &tiny_tensors(&h)).unwrap();
        assert!(is_llama2c(&v1[..8]));
        assert!(is_llama2c(&legacy_header_bytes([
            288, 768, 6, 6, 6, 32000, 256
        ])));
        assert!(is_llama2c(&legacy_header_bytes([
            288, 768, 6, 6, 6, -32000, 256
        ])));
        assert!(!is_llama2c(&legacy_header_bytes([
            288, 768, 6, 5, 6, 32000, 256
        ])));
        assert!(!is_llama2c(b"GGUF\x03\0\0\0 and then some more bytes....."));
        assert!(!is_llama2c(&[0u8; 28]));
        assert!(!is_llama2c(&[1u8; 10]));

        let mut v3 = v1.clone();
        v3[4..8].copy_from_slice(&3i32.to_le_bytes());
        let e = read_llama2c(&v3, "m").unwrap_err();
        assert!(e.contains("unknown llama2.c checkpoint version 3"), "{e}");
        let mut flag = v1.clone();
        flag[36] = 7;
        assert!(read_llama2c(&flag, "m")
            .unwrap_err()
            .contains("shared_classifier flag (byte 36) is 7"));
        assert!(read_llama2c(&v1[..100], "m")
            .unwrap_err()
            .contains("256-byte header"));
        let mut swapped = v1.clone();
        swapped[..4].copy_from_slice(b"ak42");
        assert!(read_llama2c(&swapped, "m")
            .unwrap_err()
            .contains("byte-swapped"));
        assert!(read_llama2c(&[], "m").unwrap_err().contains("empty"));
        assert!(read_llama2c(&[1, 2, 3], "m")
            .unwrap_err()
            .contains("too short"));
        let e = read_llama2c(
            b"GGUF\x03\0\0\0\x10\0\0\0\0\0\0\0\x05\0\0\0\0\0\0\0 pad pad",
            "m",
        )
        .unwrap_err();
        assert!(
            e.contains("not a llama2.c checkpoint") && e.contains("GGUF"),
            "{e}"
        );
        let e = load_llama2c(Path::new("/nonexistent/model.bin")).unwrap_err();
        assert!(e.starts_with("/nonexistent/model.bin: cannot read"), "{e}");
    }
}
