#!/usr/bin/env python3
"""Regenerate the tiny Llama / Mistral checkpoints + known-answer logits used by crates/gaincell-model's tests.

tiny-llama: a random-initialised HuggingFace LlamaForCausalLM (vocab 96, hidden 48, intermediate 80, 2 layers,
6 attention heads, 2 key-value heads: GQA with 3 query heads per kv head, head_dim 8, max_position_embeddings 64,
rms_norm_eps 1e-5, rope_theta 10000, untied lm_head, no attention bias), seeded with torch.manual_seed(0). On top of
the default initialiser (normal, std = initializer_range 0.02) every RMSNorm weight (inits to 1) is perturbed to
1 + 0.1 N(0, 1), so a wrong norm loading cannot pass. Eager attention, eval mode, float32.
tiny-mistral: MistralForCausalLM with the same sizes, sliding_window 8 (query i attends keys i-7 ..= i, i.e. 8 keys
including itself: checked below against the eager attention weights), tied embeddings (no lm_head.weight in
model.safetensors), same seeding and norm perturbation.

Writes to crates/gaincell-model/tests/fixtures/:
  tiny-llama/            config.json (as LlamaConfig.save_pretrained writes it) + model.safetensors (Hub names:
                         "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", ..., "lm_head.weight";
                         nn.Linear weights in [out, in] layout)
  tiny-llama/reference.safetensors
                         "input_ids" int64 [2, 29], "logits" f32 [2, 29, 96] (full forward, no grad),
                         "logits_incremental" f32 [1, 29, 96]: sequence 0 decoded token by token with HF's KV cache
                         (use_cache=True, one token per call).
  tiny-llama-sharded/    the same weights as save_pretrained(max_shard_size="100KB") writes them:
                         model-0000k-of-0000N.safetensors (N >= 2) + model.safetensors.index.json + config.json
                         (use tiny-llama/reference.safetensors for its logits).
  tiny-mistral/          config.json + model.safetensors + reference.safetensors ("input_ids" int64 [2, 29],
                         "logits" f32 [2, 29, 96], "logits_incremental" f32 [1, 29, 96] as above; HF's cache for a
                         sliding-window model).
generation_config.json is not kept. Every folder is reloaded with from_pretrained and must reproduce the logits
exactly; the incremental logits must match the full forward within 1e-5. The script also prints how far the logits
move under typical loader mistakes (RoPE pairing convention, GQA head mapping, norm weights, sliding window), to
show the fixture tells them apart.

    pip install torch transformers safetensors && python3 scripts/make_llama_fixture.py
"""
import hashlib
import inspect
import json
import pathlib
import shutil

import torch
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent.parent / "crates/gaincell-model/tests/fixtures"
LLAMA, SHARDED, MISTRAL = ROOT / "tiny-llama", ROOT / "tiny-llama-sharded", ROOT / "tiny-mistral"
BATCH, SEQ, VOCAB, WINDOW = 2, 29, 96, 8
SIZES = dict(vocab_size=VOCAB, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=6,
             num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
             attention_dropout=0.0)
# transformers 5.x renamed forward(past_key_values=...) / output.past_key_values to `cache`.
CACHE = "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"
DTYPE = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"


def build(cls, cfg):
    torch.manual_seed(0)
    model = cls(cfg).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        norms = [m for m in model.modules() if type(m).__name__.endswith("RMSNorm")]
        assert len(norms) == 2 * cfg.num_hidden_layers + 1, len(norms)
        for m in norms:
            m.weight.add_(0.1 * torch.randn(m.weight.shape, generator=g))  # gamma = 1 + noise
    return model


def logits_of(model, ids):
    with torch.no_grad():
        full = model(ids).logits
        past, steps = None, []
        for t in range(ids.shape[1]):  # sequence 0, one token at a time through the KV cache
            out = model(ids[:1, t:t + 1], use_cache=True, **{CACHE: past})
            past = getattr(out, CACHE)
            steps.append(out.logits)
    return full.float().contiguous(), torch.cat(steps, dim=1).float().contiguous()


def save(model, d, **kw):
    shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(d, safe_serialization=True, **kw)
    (d / "generation_config.json").unlink(missing_ok=True)


def reload_logits(d, ids, **kw):
    m = AutoModelForCausalLM.from_pretrained(d, **{DTYPE: torch.float32}, attn_implementation="eager", **kw).eval()
    with torch.no_grad():
        return m, m(ids).logits


def summary(name, full):
    digest = hashlib.sha256(full.numpy().tobytes()).hexdigest()[:16]
    print(f"{name}: max |logit| = {full.abs().max().item():.6f}, sum = {full.double().sum().item():.6f}, "
          f"sum |.| = {full.double().abs().sum().item():.6f}, sha256(f32 bytes) = {digest}")


def perturbed(model, ids, edit):
    """Logits of a copy of `model` whose state dict `edit` rewrote (what a loader with that mistake computes)."""
    m = type(model)(model.config).eval()
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    edit(sd, model.config)
    m.load_state_dict(sd)
    with torch.no_grad():
        return m(ids).logits


def rope_interleaved(sd, cfg):
    """A loader that rotates pairs (2i, 2i+1) (GPT-J / llama.c / Meta style) on HF weights, which pair (i, i+d/2)."""
    d = cfg.head_dim
    perm = torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)])  # HF slot j holds loader dim perm[j]
    inv = torch.argsort(perm)
    for k in list(sd):
        if k.endswith(("q_proj.weight", "k_proj.weight")):
            w = sd[k].view(-1, d, sd[k].shape[1])
            sd[k] = w[:, inv].reshape(sd[k].shape)


def gqa_tiled(sd, cfg):
    """A loader that maps query head h to kv head h % n_kv instead of HF's h // (n_heads / n_kv)."""
    h, hk, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    order = torch.tensor([q for j in range(hk) for q in range(h) if q % hk == j])  # slot s holds head order[s]
    for k in list(sd):
        if k.endswith("q_proj.weight"):
            sd[k] = sd[k].view(h, d, -1)[order].reshape(sd[k].shape)
        elif k.endswith("o_proj.weight"):
            sd[k] = sd[k].view(-1, h, d)[:, order].reshape(sd[k].shape)


def norms_ignored(sd, cfg):
    for k in sd:
        if k.endswith("norm.weight"):
            sd[k] = torch.ones_like(sd[k])


def sensitivity(name, model, ids, full, extra=()):
    for what, edit in [("RoPE pairs (2i, 2i+1)", rope_interleaved), ("GQA head h -> kv h % n_kv", gqa_tiled),
                       ("RMSNorm weights = 1", norms_ignored), *extra]:
        delta = (perturbed(model, ids, edit) - full).abs().max().item() if callable(edit) else edit
        print(f"  {name}, {what}: max |delta logits| = {delta:.3e}")
        assert delta > 1e-3, (name, what, delta)


def window_of(model, ids):
    """Which keys each query of layer 0 / head 0 attends, from the eager attention weights."""
    with torch.no_grad():
        att = model(ids[:1], output_attentions=True).attentions[0][0, 0]
    i = torch.arange(ids.shape[1])
    expect = (i.view(-1, 1) >= i.view(1, -1)) & (i.view(-1, 1) - i.view(1, -1) < WINDOW)
    return torch.equal(att > 0, expect)


def main():
    ROOT.mkdir(parents=True, exist_ok=True)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=torch.Generator().manual_seed(2024), dtype=torch.int64)

    # ---- tiny-llama + tiny-llama-sharded
    cfg = LlamaConfig(**SIZES, tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
                      attn_implementation="eager")
    model = build(LlamaForCausalLM, cfg)
    assert model.config._attn_implementation == "eager" and model.config.head_dim == 8
    sd = model.state_dict()
    assert sd["lm_head.weight"].data_ptr() != sd["model.embed_tokens.weight"].data_ptr(), "lm_head tied"
    assert sd["model.layers.0.self_attn.k_proj.weight"].shape == (16, 48), "k_proj not [kv_heads * head_dim, hidden]"
    full, inc = logits_of(model, ids)
    diff_llama = (full[:1] - inc).abs().max().item()
    assert diff_llama < 1e-5, diff_llama
    save(model, LLAMA)
    with safe_open(LLAMA / "model.safetensors", "pt") as f:
        assert sorted(f.keys()) == sorted(sd), sorted(f.keys())
    save_file({"input_ids": ids, "logits": full, "logits_incremental": inc}, LLAMA / "reference.safetensors")
    save(model, SHARDED, max_shard_size="100KB")
    shards = sorted(SHARDED.glob("model-*-of-*.safetensors"))
    index = json.loads((SHARDED / "model.safetensors.index.json").read_text())
    assert len(shards) >= 2 and sorted(index["weight_map"]) == sorted(sd), (shards, index)
    assert sorted(set(index["weight_map"].values())) == [p.name for p in shards]
    for d in (LLAMA, SHARDED):
        m, again = reload_logits(d, ids)
        assert isinstance(m, LlamaForCausalLM) and torch.equal(again, full), d

    # ---- tiny-mistral (native sliding window, tied embeddings)
    mcfg = MistralConfig(**SIZES, sliding_window=WINDOW, tie_word_embeddings=True, attn_implementation="eager")
    mistral = build(MistralForCausalLM, mcfg)
    assert mistral.lm_head.weight.data_ptr() == mistral.model.embed_tokens.weight.data_ptr(), "lm_head not tied"
    assert window_of(mistral, ids), "eager attention does not apply sliding_window as i-7 ..= i"
    mfull, minc = logits_of(mistral, ids)
    diff_mistral = (mfull[:1] - minc).abs().max().item()
    assert diff_mistral < 1e-5, diff_mistral
    save(mistral, MISTRAL)
    with safe_open(MISTRAL / "model.safetensors", "pt") as f:
        assert sorted(f.keys()) == sorted(k for k in mistral.state_dict() if k != "lm_head.weight"), sorted(f.keys())
    save_file({"input_ids": ids, "logits": mfull, "logits_incremental": minc}, MISTRAL / "reference.safetensors")
    m, again = reload_logits(MISTRAL, ids)
    assert isinstance(m, MistralForCausalLM) and m.config.sliding_window == WINDOW and torch.equal(again, mfull)
    _, no_window = reload_logits(MISTRAL, ids, sliding_window=None)
    window_delta = (no_window - mfull).abs().max().item()
    # Off by one: a window of 9 keys (i-8 ..= i) or 7 keys.
    _, w9 = reload_logits(MISTRAL, ids, sliding_window=WINDOW + 1)
    _, w7 = reload_logits(MISTRAL, ids, sliding_window=WINDOW - 1)

    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"max |logits - logits_incremental| (HF, seq 0): tiny-llama {diff_llama:.3e}, "
          f"tiny-mistral {diff_mistral:.3e}")
    summary("tiny-llama", full)
    summary("tiny-mistral", mfull)
    print("logit shifts under loader mistakes (the fixture must tell them apart):")
    sensitivity("tiny-llama", model, ids, full)
    sensitivity("tiny-mistral", mistral, ids, mfull,
                [("no sliding window", window_delta), ("window 9 keys", (w9 - mfull).abs().max().item()),
                 ("window 7 keys", (w7 - mfull).abs().max().item())])
    for p in sorted(p for d in (LLAMA, SHARDED, MISTRAL) for p in d.iterdir()):
        p.chmod(0o644)  # safetensors writes 0600
        names = ""
        if p.suffix == ".safetensors":
            with safe_open(p, "pt") as f:
                names = ", ".join(f"{k}{list(f.get_slice(k).get_shape())}" for k in sorted(f.keys()))
        print(f"{p.relative_to(ROOT)}  {p.stat().st_size} B  {names}")


if __name__ == "__main__":
    main()
