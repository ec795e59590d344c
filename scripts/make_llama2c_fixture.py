#!/usr/bin/env python3
"""Regenerate the tiny llama2.c checkpoints used by crates/gaincell-model/tests/llama2c_format.rs.

Provenance: an independent numpy transcription of the writers in karpathy/llama2.c `export.py`
(`legacy_export`, `version1_export`, `version2_export`, `serialize_fp32`, `serialize_int8`, `quantize_q80`)
and of the q/k row permutation `permute_original` that its `hf_export` applies when writing a HuggingFace
model. It shares no code with the Rust reader (crates/gaincell-model/src/llama2c.rs), so a misreading of the
format on either side shows up as a test failure. torch is not needed.

The model: a random tiny llama2.c Transformer, dim 16, hidden_dim 40, 2 layers, 4 query heads, 2 kv heads
(head_size 4, kv_dim 8), vocab 32, seq_len 24, drawn from numpy's default_rng(SEED). The rmsnorm weights are
1 + noise (not all ones), so a norm read from the wrong offset cannot pass. One extra random classifier
matrix `wcls` [vocab, dim] is used by the unshared-classifier file only.

Writes to crates/gaincell-model/tests/fixtures/llama2c/:
  tiny-legacy.bin           version 0 (legacy): 7 int32 header, shared classifier (vocab_size positive),
                            fp32 weights in run.c's order, including the freq_cis_real/imag tables
                            [seq_len, head_size/2] that readers skip.
  tiny-legacy-unshared.bin  the same, vocab_size written negative and wcls appended after freq_cis.
  tiny-v1.bin               version 1: 256-byte header ("ak42" magic, version 1, 7 int32, uint8 shared=1,
                            zero padding), fp32 weights in version1_export's order (norms first).
  tiny-v2.bin               version 2: Q8_0, group size GROUP_SIZE (export.py's default 64 would back off
                            to 16 for dim 16; 8 divides every quantised tensor and keeps groups shorter than
                            a row), shared classifier.
  expected.safetensors      the HF LlamaForCausalLM state dict (model.embed_tokens.weight, model.layers.{l}.*,
                            model.norm.weight) in nn.Linear [out, in] layout with q_proj/k_proj permuted to
                            HF's half-split rotary layout, all float32; plus lm_head.weight = wcls, which only
                            tiny-legacy-unshared.bin carries (the shared files must produce no lm_head).
  expected-v2.safetensors   the same names for tiny-v2.bin, holding the values dequantised in numpy
                            (int8 * per-group scale, as runq.c's dequantize does), then permuted; no lm_head.

Rerun from the repository root (numpy and safetensors may already be installed; if not,
`pip install numpy safetensors`):

    python3 scripts/make_llama2c_fixture.py
"""
import pathlib
import struct

import numpy as np
from safetensors.numpy import save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/gaincell-model/tests/fixtures/llama2c"
SEED = 20240607
DIM, HIDDEN, N_LAYERS, N_HEADS, N_KV_HEADS, VOCAB, SEQ_LEN = 16, 40, 2, 4, 2, 32, 24
GROUP_SIZE = 8
MAGIC = 0x616B3432  # "ak42"
HEAD_SIZE = DIM // N_HEADS
KV_DIM = HEAD_SIZE * N_KV_HEADS


def build():
    rng = np.random.default_rng(SEED)

    def mat(rows, cols, std=0.1):
        return (rng.standard_normal((rows, cols)) * std).astype(np.float32)

    def norm():
        return (1.0 + 0.1 * rng.standard_normal(DIM)).astype(np.float32)

    m = {"tok_embeddings": mat(VOCAB, DIM, 0.5), "layers": []}
    for _ in range(N_LAYERS):
        m["layers"].append({
            "attention_norm": norm(),
            "wq": mat(DIM, DIM),
            "wk": mat(KV_DIM, DIM),
            "wv": mat(KV_DIM, DIM),
            "wo": mat(DIM, DIM),
            "ffn_norm": norm(),
            "w1": mat(HIDDEN, DIM),
            "w2": mat(DIM, HIDDEN),
            "w3": mat(HIDDEN, DIM),
        })
    m["norm"] = norm()
    m["wcls"] = mat(VOCAB, DIM, 0.5)
    # model.py's precompute_freqs_cis(head_size, max_seq_len), theta 10000: what legacy files carry.
    freqs = 1.0 / (10000.0 ** (np.arange(0, HEAD_SIZE, 2, dtype=np.float32)[: HEAD_SIZE // 2] / HEAD_SIZE))
    angles = np.outer(np.arange(SEQ_LEN, dtype=np.float32), freqs.astype(np.float32))
    m["freqs_cos"] = np.cos(angles).astype(np.float32)
    m["freqs_sin"] = np.sin(angles).astype(np.float32)
    return m


def fp32(a):
    """serialize_fp32: the tensor flattened row-major as little-endian float32."""
    return np.ascontiguousarray(a, dtype="<f4").tobytes()


def int8(a):
    return np.ascontiguousarray(a, dtype=np.int8).tobytes()


def params(vocab):
    return struct.pack("<7i", DIM, HIDDEN, N_LAYERS, N_HEADS, N_KV_HEADS, vocab, SEQ_LEN)


def per_layer(m, key):
    return [layer[key] for layer in m["layers"]]


def legacy(m, shared):
    out = [params(VOCAB if shared else -VOCAB), fp32(m["tok_embeddings"])]
    for key in ("attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3"):
        out += [fp32(w) for w in per_layer(m, key)]
    out += [fp32(m["norm"]), fp32(m["freqs_cos"]), fp32(m["freqs_sin"])]
    if not shared:
        out.append(fp32(m["wcls"]))
    return b"".join(out)


def pad256(head):
    assert len(head) <= 256
    return head + b"\0" * (256 - len(head))


def version1(m):
    head = struct.pack("<I", MAGIC) + struct.pack("<i", 1) + params(VOCAB) + struct.pack("<B", 1)
    weights = per_layer(m, "attention_norm") + per_layer(m, "ffn_norm") + [m["norm"], m["tok_embeddings"]]
    for key in ("wq", "wk", "wv", "wo", "w1", "w2", "w3"):
        weights += per_layer(m, key)
    return pad256(head) + b"".join(fp32(w) for w in weights)


def quantize_q80(w, group_size):
    """Symmetric int8 in [-127, 127], one float32 scale per group of group_size consecutive values."""
    assert w.size % group_size == 0
    g = w.astype(np.float32).reshape(-1, group_size)
    scale = (np.abs(g).max(axis=1) / np.float32(127.0)).astype(np.float32)
    q = np.round(g / scale[:, None]).astype(np.int8)  # round half to even, as torch.round
    return q, scale


def dequantize(q, scale, shape):
    return (q.astype(np.float32) * scale[:, None]).astype(np.float32).reshape(shape)


def version2(m, group_size):
    head = (struct.pack("<I", MAGIC) + struct.pack("<i", 2) + params(VOCAB) + struct.pack("<B", 1)
            + struct.pack("<i", group_size))
    out = [pad256(head)]
    for w in per_layer(m, "attention_norm") + per_layer(m, "ffn_norm") + [m["norm"]]:
        out.append(fp32(w))
    deq = {"tok_embeddings": None, "layers": [dict(layer) for layer in m["layers"]], "norm": m["norm"]}
    quantised = [("tok_embeddings", None)]
    for key in ("wq", "wk", "wv", "wo", "w1", "w2", "w3"):
        quantised += [(key, l) for l in range(N_LAYERS)]
    for key, l in quantised:
        w = m[key] if l is None else m["layers"][l][key]
        q, s = quantize_q80(w, group_size)
        out += [int8(q), fp32(s)]
        d = dequantize(q, s, w.shape)
        if l is None:
            deq[key] = d
        else:
            deq["layers"][l][key] = d
    return b"".join(out), deq


def permute_original(w, n_heads, dim1, dim2):
    """hf_export's permutation: interleaved rotary pairs (2i, 2i+1) -> HF's half split (i, i + head_size/2)."""
    return w.reshape(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(0, 2, 1, 3).reshape(dim1, dim2)


def hf_state_dict(m, with_lm_head):
    sd = {"model.embed_tokens.weight": m["tok_embeddings"]}
    for l, layer in enumerate(m["layers"]):
        p = f"model.layers.{l}."
        sd[p + "input_layernorm.weight"] = layer["attention_norm"]
        sd[p + "self_attn.q_proj.weight"] = permute_original(layer["wq"], N_HEADS, DIM, DIM)
        sd[p + "self_attn.k_proj.weight"] = permute_original(layer["wk"], N_KV_HEADS, KV_DIM, DIM)
        sd[p + "self_attn.v_proj.weight"] = layer["wv"]
        sd[p + "self_attn.o_proj.weight"] = layer["wo"]
        sd[p + "post_attention_layernorm.weight"] = layer["ffn_norm"]
        sd[p + "mlp.gate_proj.weight"] = layer["w1"]
        sd[p + "mlp.up_proj.weight"] = layer["w3"]
        sd[p + "mlp.down_proj.weight"] = layer["w2"]
    sd["model.norm.weight"] = m["norm"]
    if with_lm_head:
        sd["lm_head.weight"] = m["wcls"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in sd.items()}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    m = build()
    v2, deq = version2(m, GROUP_SIZE)
    files = {
        "tiny-legacy.bin": legacy(m, shared=True),
        "tiny-legacy-unshared.bin": legacy(m, shared=False),
        "tiny-v1.bin": version1(m),
        "tiny-v2.bin": v2,
    }
    for name, data in files.items():
        (OUT / name).write_bytes(data)
    meta = {"source": "scripts/make_llama2c_fixture.py", "layout": "HF LlamaForCausalLM, q/k half-split rotary"}
    save_file(hf_state_dict(m, with_lm_head=True), str(OUT / "expected.safetensors"), metadata=meta)
    save_file(hf_state_dict(deq, with_lm_head=False), str(OUT / "expected-v2.safetensors"),
              metadata={**meta, "values": f"tiny-v2.bin dequantised, group size {GROUP_SIZE}"})
    for p in sorted(OUT.iterdir()):
        print(f"wrote {p} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
