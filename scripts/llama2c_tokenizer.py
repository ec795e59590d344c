#!/usr/bin/env python3
"""llama2.c's tokenizer, transcribed from run.c into plain Python (standard library only).

This is the independent reference for the Rust module crates/gaincell-model/src/llama2c_tokenizer.rs. It follows
karpathy/llama2.c `run.c` (master) function by function, statement by statement, on purpose *without* the Rust
version's optimisations:

* `build_tokenizer`: little-endian int32 max_token_length, then per entry float32 score, int32 length, `length`
  bytes. run.c reads exactly `vocab_size` entries (the number comes from the model checkpoint); here
  `vocab_size=None` reads entries until end of file. Pieces are kept as C strings (cut at an embedded NUL, which
  is what run.c's `vocab[i][len] = '\\0'` + strcmp/sprintf see).
* `str_lookup`: run.c qsort()s the pieces once (lazily, in the first `encode`) and bsearch()es them with strcmp.
  A dict gives the same answer whenever the pieces are unique; with duplicate pieces C's answer is
  unspecified (qsort is not stable, bsearch returns *any* match), so the dict keeps the lowest id and a warning
  is printed. stories260K's tok512.bin has no duplicates.
* `encode`: optional BOS (1); the dummy-prefix " " token when the text is non-empty; one lookup per UTF-8
  codepoint (run.c's `str_len < 4` cap only changes anything for invalid UTF-8), byte fallback (byte + 3) when
  the codepoint is not a piece; then run.c's O(n^2) loop: scan *all* adjacent pairs (BOS included), take the
  first pair whose concatenation is a piece with the strictly highest score (> -1e10 as float32), merge, repeat.
  EOS (2) is appended after merging.
* `decode`: a piece right after BOS loses one leading space; a piece that sscanf("<0x%02hhX>") accepts becomes
  that raw byte. (sscanf's looser corners - whitespace, signs, "0x" prefixes - are not emulated; only pieces
  starting with "<0x" and 1-2 hex digits count, which for tok512.bin means exactly ids 3..258.)

Library use:

    import llama2c_tokenizer as lt
    t = lt.build_tokenizer("../shared/models/stories260K/tok512.bin")
    lt.encode(t, "Once upon a time", bos=True, eos=False)

CLI (paths default to the project's shared/ folder beside the repository):

    python3 scripts/llama2c_tokenizer.py fixture      # rewrites tests/fixtures/llama2c-tokenizer/ids.json
    python3 scripts/llama2c_tokenizer.py encode "Once upon a time" --bos
    python3 scripts/llama2c_tokenizer.py decode 1 403 407

`fixture` takes a minute or two (the O(n^2) merge loop over the whole TinyStories file, on purpose). The
TinyStories text itself must not enter the repository, so the fixture stores only counts and SHA-256 hashes of
its ids; the paragraph rule is PARAGRAPH_RULE below and must match tests/llama2c_tokenizer.rs.
"""
import argparse
import hashlib
import json
import pathlib
import re
import struct
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DEFAULT_TOKENIZER = SHARED / "models/stories260K/tok512.bin"
DEFAULT_TEXT = SHARED / "data/eval/tinystories/tinystories_val_head.txt"
DEFAULT_OUT = ROOT / "crates/gaincell-model/tests/fixtures/llama2c-tokenizer/ids.json"

# run.c: `float best_score = -1e10;` - the double literal rounded to float.
F32_MINUS_1E10 = struct.unpack("<f", struct.pack("<f", -1e10))[0]
BOS = 1
EOS = 2

PARAGRAPH_RULE = (
    "decode the file as UTF-8 and split it on every occurrence of the two-character string \"\\n\\n\" "
    "(Python str.split('\\n\\n') / Rust str::split(\"\\n\\n\"): non-overlapping, left to right); the "
    "separators are dropped, nothing else is stripped (a paragraph keeps its single newlines, and the last one "
    "keeps the file's final \"\\n\"), empty paragraphs would be kept; each paragraph is encoded on its own with "
    "bos=true, eos=false"
)


class Tokenizer:
    def __init__(self, vocab, vocab_scores, max_token_length):
        self.vocab = vocab  # list of bytes (C strings)
        self.vocab_scores = vocab_scores  # list of float (float32 values)
        self.vocab_size = len(vocab)
        self.max_token_length = max_token_length
        self.sorted_vocab = None  # run.c sorts lazily, in the first encode()


def build_tokenizer(path, vocab_size=None):
    data = pathlib.Path(path).read_bytes()
    # fread(&t->max_token_length, sizeof(int), 1, file)
    if len(data) < 4:
        raise ValueError(f"{path}: failed read (file is {len(data)} bytes, shorter than its 4-byte header)")
    (max_token_length,) = struct.unpack_from("<i", data, 0)
    off = 4
    vocab, vocab_scores = [], []
    i = 0
    while (off < len(data)) if vocab_size is None else (i < vocab_size):
        # fread(t->vocab_scores + i, sizeof(float), 1, file); fread(&len, sizeof(int), 1, file)
        if off + 8 > len(data):
            raise ValueError(f"{path}: failed read (entry {i}: score/length cut off at byte {len(data)})")
        score, length = struct.unpack_from("<fi", data, off)
        off += 8
        # t->vocab[i] = malloc(len + 1); fread(t->vocab[i], len, 1, file)
        if length < 0 or off + length > len(data):
            raise ValueError(f"{path}: failed read (entry {i}: piece of length {length} at byte {off})")
        piece = data[off : off + length]
        off += length
        # t->vocab[i][len] = '\0': everything later sees a C string
        vocab.append(piece.split(b"\0", 1)[0])
        vocab_scores.append(score)
        i += 1
    if not vocab:
        raise ValueError(f"{path}: no entries")
    return Tokenizer(vocab, vocab_scores, max_token_length)


def _sort_vocab(t):
    # qsort(sorted_vocab, ..., compare_tokens) + bsearch: a dict with the same answers for unique pieces.
    table = {}
    dups = 0
    for i, piece in enumerate(t.vocab):
        if piece in table:
            dups += 1
        else:
            table[piece] = i
    if dups:
        print(f"warning: {dups} duplicate pieces; run.c's bsearch may return any of them, here the lowest id",
              file=sys.stderr)
    return table


def str_lookup(s, sorted_vocab):
    # return the id of the piece equal to s, or -1
    return sorted_vocab.get(s, -1)


def encode(t, text, bos, eos):
    if text is None:
        raise ValueError("cannot encode NULL text")
    if isinstance(text, str):
        text = text.encode("utf-8")
    text = text.split(b"\0", 1)[0]  # char *text is a C string

    if t.sorted_vocab is None:
        t.sorted_vocab = _sort_vocab(t)

    str_buffer = bytearray()  # str_buffer[0..str_len]
    tokens = []

    if bos:
        tokens.append(BOS)

    # add_dummy_prefix: only if text != ""
    if len(text) > 0:
        dummy_prefix = str_lookup(b" ", t.sorted_vocab)
        if dummy_prefix == -1:
            raise ValueError("vocab has no ' ' piece (run.c would store -1 here)")
        tokens.append(dummy_prefix)

    # process the raw (UTF-8) byte sequence of the input string
    for c in range(len(text)):
        ch = text[c]
        if (ch & 0xC0) != 0x80:
            # a leading byte or ASCII: start a new codepoint (str_len = 0)
            str_buffer = bytearray()
        str_buffer.append(ch)
        nxt = text[c + 1] if c + 1 < len(text) else 0  # *(c+1) is the terminating NUL at the end
        if (nxt & 0xC0) == 0x80 and len(str_buffer) < 4:
            continue
        tid = str_lookup(bytes(str_buffer), t.sorted_vocab)
        if tid != -1:
            tokens.append(tid)
        else:
            # byte_fallback: +3 skips <unk>, <s>, </s>
            for b in str_buffer:
                tokens.append(b + 3)
        str_buffer = bytearray()  # str_len = 0

    # merge the best consecutive pair each iteration, according to vocab_scores
    while True:
        best_score = F32_MINUS_1E10
        best_id = -1
        best_idx = -1
        for i in range(len(tokens) - 1):
            # sprintf(str_buffer, "%s%s", vocab[tokens[i]], vocab[tokens[i+1]])
            merged = t.vocab[tokens[i]] + t.vocab[tokens[i + 1]]
            tid = str_lookup(merged, t.sorted_vocab)
            if tid != -1 and t.vocab_scores[tid] > best_score:
                best_score = t.vocab_scores[tid]
                best_id = tid
                best_idx = i
        if best_idx == -1:
            break
        tokens[best_idx] = best_id
        del tokens[best_idx + 1]

    if eos:
        tokens.append(EOS)
    return tokens


_BYTE_PIECE = re.compile(rb"<0x([0-9A-Fa-f]{1,2})")


def decode(t, prev_token, token):
    piece = t.vocab[token]
    # following BOS (1) token, sentencepiece decoder strips any leading whitespace
    if prev_token == BOS and piece[:1] == b" ":
        piece = piece[1:]
    # sscanf(piece, "<0x%02hhX>", &byte_val) == 1 -> the raw byte (run.c prints nothing for 0x00, a NUL)
    m = _BYTE_PIECE.match(piece)
    if m:
        return bytes([int(m.group(1), 16)])
    return piece


# ----------------------------------------------------------------------------------------------------------------
# fixture

STRINGS = [
    "",
    " ",
    "  ",
    "   ",
    "a",
    " a",
    "a ",
    "  leading two",
    "trailing two  ",
    "multiple     spaces   inside",
    "Once upon a time",
    "The little dog ran to the park and played with a big red ball.",
    "\n",
    "\n\n",
    "line one\nline two\n\nline four\n",
    "\r\n windows line\r\n",
    "\t",
    "tab\tseparated\tvalues\t",
    " \t\n mixed \n\t whitespace \n",
    "0",
    "42",
    "3.14159",
    "1234567890",
    "2024-06-30, 12:34",
    "$1,000.00 + 15% = ?",
    "!!!???...",
    "(){}[]<>|\\~`^_#@&*",
    "\"Hello,\" she said. 'Yes!' - he replied; ok?",
    "don't I'll they're WE'VE",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9",
    "\u00c6r\u00f8sk\u00f8bing Stra\u00dfe",
    "\u00f1and\u00fa",
    "\u00e9",
    "e\u0301 combining",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\u4e2d\u6587\u5206\u8bcd\u3002",
    "\ud55c\uad6d\uc5b4",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
    "\u0645\u0631\u062d\u0628\u0627",
    "\U0001f600",
    "\U0001f44d\U0001f3fd thumbs",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522",
    "\U0001f1fa\U0001f1f8 flag",
    "\U0010ffff max",
    "\ufeffBOM first",
    "\uff21\uff22\uff23 fullwidth",
    "mixed: Lily \u65e5\u672c \U0001f600 caf\u00e9 \u041c\u0438\u0440",
    "\u2019 \u201c \u201d \u2013 \u2014 \u2026 \u20ac\u2122 \u00e2",
    "\u00e2\u20ac\u2122 mojibake \u00e2\u20ac\u0153",
    "\u00a0no-break\u00a0space",
    "\u200ahair space",
    "<s>",
    "\n<s>\n",
    "</s>",
    "\n</s>\n",
    "<unk>",
    "<0x0A>",
    "<0x00> and <0xFF>",
    "a<0x41>b",
    "x\u0000after NUL",
    "\u0001\u0002\u007f control",
    " ".join(["the"] * 200),
    "a" * 300,
    "hello" * 100,
    "ab" * 200,
    "Lily and Ben " * 40,
]


def sha256_ids(ids):
    return hashlib.sha256(struct.pack(f"<{len(ids)}I", *ids)).hexdigest()


def _dump(fixture):
    """JSON with one string case per line and the short hashes a dozen to a line (smaller diffs than indent=1)."""
    strings = fixture["strings"]
    short = fixture["tinystories"]["paragraph_sha256_8"]
    head = dict(fixture, strings="@STRINGS@")
    head["tinystories"] = dict(fixture["tinystories"], paragraph_sha256_8="@SHORT@")
    text = json.dumps(head, indent=1)
    rows = ",\n".join("  " + json.dumps(case) for case in strings)
    text = text.replace('"@STRINGS@"', "[\n" + rows + "\n ]")
    lines = [", ".join(json.dumps(h) for h in short[i : i + 12]) for i in range(0, len(short), 12)]
    text = text.replace('"@SHORT@"', "[\n   " + ",\n   ".join(lines) + "\n  ]")
    json.loads(text)  # still valid JSON
    return text + "\n"


def make_fixture(tokenizer_path, text_path, out_path):
    t = build_tokenizer(tokenizer_path)
    strings = []
    for s in STRINGS:
        strings.append({"text": s, "bos_ids": encode(t, s, True, False), "eos_ids": encode(t, s, False, True)})
    print(f"{len(strings)} strings", file=sys.stderr)

    text = pathlib.Path(text_path).read_bytes()
    paragraphs = text.decode("utf-8").split("\n\n")
    all_hash = hashlib.sha256()
    short = []
    total = 0
    start = time.time()
    for n, p in enumerate(paragraphs):
        ids = encode(t, p, True, False)
        blob = struct.pack(f"<{len(ids)}I", *ids)
        all_hash.update(blob)
        short.append(hashlib.sha256(blob).hexdigest()[:8])
        total += len(ids)
        if n % 500 == 0:
            print(f"  paragraph {n}/{len(paragraphs)} ({time.time() - start:.0f} s)", file=sys.stderr)
    print(f"{len(paragraphs)} paragraphs, {total} ids, {time.time() - start:.0f} s", file=sys.stderr)

    fixture = {
        "about": (
            "llama2.c tokenizer ids computed by scripts/llama2c_tokenizer.py, a line-by-line Python transcription "
            "of karpathy/llama2.c run.c (build_tokenizer, encode with its O(n^2) merge loop, str_lookup). "
            "Rerun: python3 scripts/llama2c_tokenizer.py fixture"
        ),
        "tokenizer": {
            "path": "shared/models/stories260K/tok512.bin",
            "sha256": hashlib.sha256(pathlib.Path(tokenizer_path).read_bytes()).hexdigest(),
            "vocab_size": t.vocab_size,
            "max_token_length": t.max_token_length,
        },
        "strings": strings,
        "tinystories": {
            "path": "shared/data/eval/tinystories/tinystories_val_head.txt",
            "file_sha256": hashlib.sha256(text).hexdigest(),
            "split": PARAGRAPH_RULE,
            "bos": True,
            "eos": False,
            "paragraphs": len(paragraphs),
            "total_ids": total,
            "ids_sha256": all_hash.hexdigest(),
            "ids_sha256_note": "sha256 over every id as a little-endian u32, paragraphs concatenated in order",
            "paragraph_sha256_8": short,
            "paragraph_sha256_8_note": "first 8 hex digits of the sha256 of each paragraph's ids (same byte layout)",
        },
    }
    out_path = pathlib.Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(_dump(fixture))
    print(f"wrote {out_path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", default=str(DEFAULT_TOKENIZER), help="llama2.c tokenizer.bin")
    sub = ap.add_subparsers(dest="cmd")
    f = sub.add_parser("fixture", help="write the test fixture (default command)")
    f.add_argument("--text", default=str(DEFAULT_TEXT), help="TinyStories text to hash")
    f.add_argument("--out", default=str(DEFAULT_OUT))
    e = sub.add_parser("encode", help="print the ids of TEXT")
    e.add_argument("text")
    e.add_argument("--bos", action="store_true")
    e.add_argument("--eos", action="store_true")
    d = sub.add_parser("decode", help="print the text of IDS (run.c's decode, BOS/EOS print nothing)")
    d.add_argument("ids", nargs="+", type=int)
    args = ap.parse_args()
    if args.cmd in (None, "fixture"):
        make_fixture(args.tokenizer, getattr(args, "text", DEFAULT_TEXT), getattr(args, "out", DEFAULT_OUT))
    elif args.cmd == "encode":
        print(" ".join(map(str, encode(build_tokenizer(args.tokenizer), args.text, args.bos, args.eos))))
    else:
        t = build_tokenizer(args.tokenizer)
        out = bytearray()
        prev = -1
        for tok in args.ids:
            if tok not in (BOS, EOS):
                out += decode(t, prev, tok)
            prev = tok
        sys.stdout.buffer.write(bytes(out) + b"\n")


if __name__ == "__main__":
    main()
