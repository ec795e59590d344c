#!/usr/bin/env python3
"""Training throughput of the small GPT in PyTorch + transformers on CPU: the baseline for `gaincell bench train`.

The model is GPT2LMHeadModel (4 layers, 4 heads, 256 wide, vocab 8192, ctx 256 by default), trained with AdamW on
random token ids (seeded; throughput does not depend on the text), batch 8, for the attention
  - `software`: transformers' own SDPA attention, causal;
  - `paper-nonlinear`: the gain-cell attention as the published PyTorch implementation formulates it (dense T x T
    matrices, one matmul per coefficient of the 10-term cell polynomial, decay matrix powers, tiles as a reshape:
    bench_pytorch_attention.py's `gain_cell`), window 128, with the per-head affine scalers as parameters, trained
    with the paper's surrogate gradient (value of the nonlinear cell, gradient of the linear one) and
    straight-through quantisers. Tiles are by absolute position here (the chip groups by ring-buffer slot), which
    changes no cost.
--warmup untimed steps (default 3), then --steps timed ones; tokens/s = batch x ctx / the median step's seconds (as
`gaincell bench train` reports its own).

The model (--family):
  gpt2 (default)  GPT2LMHeadModel of --layers / --heads / --embd / --vocab / --ctx, as above.
  llama           a random LlamaForCausalLM (SiLU-gated MLP, RMSNorm eps 1e-5, RoPE theta 10000) of --layers /
                  --heads / --n-kv-head (default --heads) / --embd / --intermediate (default int(8 embd / 3) rounded
                  up to a multiple of 32) / --vocab (defaults as above), untied unless --tie-embeddings, or a preset
                  --shape (implies llama; flags given explicitly override it):
                    stories260K       llama2.c's stories260K: dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads,
                                      vocab 512, seq 512, tied
                    tinyllama-layers  TinyLlama-1.1B's layer: hidden 2048, intermediate 5632, 32 heads, 4 kv heads,
                                      vocab 32000, untied, seq 2048, --layers of them (default 2)
                  --ctx stays 256 unless given (capped at the shape's seq). For `paper-nonlinear` the kv heads are
                  repeated to the query heads (as HF's eager attention does) before the gain-cell attention.
The JSON written to --out keeps tokens_per_s (one figure per kind), threads, torch, transformers, date, layers,
heads, embd, vocab, ctx, window, batch, steps and adds family, shape, n_kv_head, intermediate, tied, params, and
peak_rss_mb (per kind: the process's peak resident memory during that kind's steps, Linux VmHWM after a reset).

    pip install torch transformers
    python3 scripts/bench_pytorch_train.py --threads 2 --out pytorch_train.json
    python3 scripts/bench_pytorch_train.py --threads 2 --shape stories260K --out pytorch_train_stories260K.json
    python3 scripts/bench_pytorch_train.py --threads 2 --shape tinyllama-layers --layers 2 --batch 1 --kinds software
"""
import argparse
import datetime
import json
import time

import torch
import transformers
from transformers import AttentionInterface, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from bench_pytorch_attention import C, window_mask

# Llama-family presets: the model's sizes; "seq" is its context (max_position_embeddings).
SHAPES = {
    "stories260K": dict(embd=64, intermediate=172, layers=5, heads=8, n_kv_head=4, vocab=512, seq=512, tied=True),
    "tinyllama-layers": dict(embd=2048, intermediate=5632, layers=2, heads=32, n_kv_head=4, vocab=32000, seq=2048,
                             tied=False),
}
SMALL_GPT = dict(layers=4, heads=4, embd=256, vocab=8192, n_kv_head=None, intermediate=None, seq=None)
SIZE_FLAGS = ("layers", "heads", "n_kv_head", "embd", "intermediate", "vocab")


def llama_intermediate(embd):
    """The Llama MLP width rule used when --intermediate is not given: int(8 embd / 3) rounded up to 32."""
    return -(-int(8 * embd / 3) // 32) * 32


def resolve(ap, args, default_ctx):
    """Fill the model sizes (args.layers, ...) and --ctx from --family, --shape and the defaults."""
    if args.shape:
        if args.family == "gpt2" and args.family_given:
            ap.error(f"--shape {args.shape} is a Llama-family shape: use it without --family gpt2")
        args.family = "llama"
    if args.family == "gpt2":
        for flag in ("n_kv_head", "intermediate"):
            if getattr(args, flag) is not None:
                ap.error(f"--{flag.replace('_', '-')} needs --family llama")
        if args.tie_embeddings:
            ap.error("--tie-embeddings needs --family llama (GPT-2 is always tied)")
        base = dict(SMALL_GPT, tied=True)
    else:
        base = dict(SHAPES[args.shape]) if args.shape else dict(SMALL_GPT, tied=False)
    for k in SIZE_FLAGS:
        if getattr(args, k) is None:
            setattr(args, k, base[k])
    if args.family == "gpt2":
        args.n_kv_head, args.intermediate = args.heads, 4 * args.embd
    else:
        args.n_kv_head = args.n_kv_head or args.heads
        args.intermediate = args.intermediate or llama_intermediate(args.embd)
        if args.heads % args.n_kv_head or args.embd % args.heads:
            ap.error(f"--heads {args.heads} must divide --embd {args.embd} and be a multiple of --n-kv-head "
                     f"{args.n_kv_head}")
    args.tied = base["tied"] or args.tie_embeddings
    args.seq = base["seq"] or default_ctx
    if args.ctx is None:
        args.ctx = min(default_ctx, args.seq)


def ste_quantise(x, levels, lo, hi):
    step = (hi - lo) / (levels - 1)
    return x + (step * torch.round(x / step) - x).detach()


def gain_cell_train(q, k, v, window, lam=1.6e-4, tile=64):
    """Surrogate: forward = nonlinear cell, backward = linear cell (slope 19.3)."""
    b, h, t, d = q.shape
    q = ste_quantise(q.clamp(0, 1), 16, 0, 1)
    k = ste_quantise(k.clamp(0, 0.9), 8, 0, 0.9) - 0.45
    v = ste_quantise(v.clamp(0, 0.9), 8, 0, 0.9) - 0.45
    mask = window_mask(t, window)
    age = (torch.arange(t).view(-1, 1) - torch.arange(t).view(1, -1)).clamp(min=0).float()
    decay = torch.exp(-lam * age) * mask
    kt = k.transpose(-1, -2)
    s_lin = 19.3 * torch.matmul(q, kt) * decay
    with torch.no_grad():
        s_non, idx = 0, 0
        for i in range(4):
            for jj in range(4 - i):
                s_non = s_non + torch.matmul(q, kt.pow(i) * 0.9**jj * C[idx]) * decay.pow(i)
                idx += 1
        s_non = s_non.masked_fill(~mask, 0.0)
    phi_lin = (s_lin / 80).clamp(0, 1)
    phi_non = (s_non / 80).clamp(0, 1)
    n_tiles = (t + tile - 1) // tile
    pad = n_tiles * tile - t
    tiles = lambda p: torch.nn.functional.pad(p, (0, pad)).view(b, h, t, n_tiles, tile).transpose(2, 3)
    v_t = torch.nn.functional.pad(v, (0, 0, 0, pad)).view(b, h, n_tiles, tile, d)
    dec_t = torch.nn.functional.pad(decay, (0, pad)).view(t, n_tiles, tile).transpose(0, 1)
    a_lin = 19.3 * torch.matmul(tiles(phi_lin) * dec_t, v_t)
    with torch.no_grad():
        a_non, idx = 0, 0
        for i in range(4):
            for jj in range(4 - i):
                a_non = a_non + torch.matmul(tiles(phi_non) * dec_t.pow(i), v_t.pow(i) * 0.9**jj * C[idx])
                idx += 1
    a_lin = (a_lin / 40).clamp(-1, 1)
    a_non = (a_non / 40).clamp(-1, 1)
    a = a_lin + (a_non - a_lin).detach()
    return ste_quantise(a, 32, -1, 1).sum(dim=2)


def gaincell_attention(module, query, key, value, attention_mask, **kwargs):
    h = query.shape[1]
    if key.shape[1] != h:  # grouped-query attention (Llama): kv head j serves query heads j*g .. j*g+g-1
        key, value = (x.repeat_interleave(h // key.shape[1], dim=1) for x in (key, value))
    if not hasattr(module, "gc_scalers"):
        init = torch.tensor([[1.0, 0.0], [1.0, 0.45], [1.0, 0.45], [1.0, 0.0]]).repeat(h, 1, 1).permute(1, 0, 2)
        module.gc_scalers = torch.nn.Parameter(init.contiguous())  # [4 (q k v o), H, 2 (a b)]
    s = module.gc_scalers
    aff = lambda x, i: x * s[i, :, 0].view(1, h, 1, 1) + s[i, :, 1].view(1, h, 1, 1)
    out = gain_cell_train(aff(query, 0), aff(key, 1), aff(value, 2), module.gc_window)
    return aff(out, 3).transpose(1, 2).contiguous(), None


def bench(kind, args):
    torch.manual_seed(0)
    if args.family == "gpt2":
        cls, cfg = GPT2LMHeadModel, GPT2Config(vocab_size=args.vocab, n_positions=args.ctx, n_embd=args.embd,
                                               n_layer=args.layers, n_head=args.heads, resid_pdrop=0.0,
                                               embd_pdrop=0.0, attn_pdrop=0.0)
    else:
        cls, cfg = LlamaForCausalLM, LlamaConfig(
            vocab_size=args.vocab, hidden_size=args.embd, intermediate_size=args.intermediate,
            num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.n_kv_head,
            max_position_embeddings=max(args.seq, args.ctx), rms_norm_eps=1e-5, rope_theta=10000.0,
            tie_word_embeddings=args.tied, attention_dropout=0.0)
    if kind == "paper-nonlinear":
        AttentionInterface.register("gaincell", gaincell_attention)
        cfg._attn_implementation = "gaincell"
    else:
        cfg._attn_implementation = "sdpa"
    model = cls(cfg).train()
    blocks = model.transformer.h if args.family == "gpt2" else model.model.layers
    for block in blocks:
        (block.attn if args.family == "gpt2" else block.self_attn).gc_window = args.window
    args.params = sum(p.numel() for p in model.parameters())
    ids = torch.randint(0, args.vocab, (args.warmup + args.steps, args.batch, args.ctx + 1),
                        generator=torch.Generator().manual_seed(1))
    # The scalers are created on the first forward: build them before the optimiser.
    with torch.no_grad():
        model(ids[0, :1, :8])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    times = []
    reset_peak_rss()
    for step in range(args.warmup + args.steps):  # the first --warmup steps are not timed
        x, y = ids[step, :, :-1], ids[step, :, 1:]
        t0 = time.perf_counter()
        logits = model(x).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, args.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if step >= args.warmup:
            times.append(dt)
        print(f"{kind} step {step}{' (warm-up)' if step < args.warmup else ''}: {dt * 1e3:.0f} ms, loss {loss.item():.3f}")
    args.peak_rss_mb[kind] = peak_rss_mb()
    return args.batch * args.ctx / sorted(times)[len(times) // 2]


def reset_peak_rss():
    """Reset this process's peak resident size to its current size (Linux), so each kind's peak is its own."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mb():
    """Peak resident memory since the last reset, in MB (Linux VmHWM; the process's peak elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--layers", "--n-layer", dest="layers", type=int, help="default 4 (tinyllama-layers: 2)")
    ap.add_argument("--heads", "--n-head", dest="heads", type=int, help="default 4")
    ap.add_argument("--embd", "--n-embd", dest="embd", type=int, help="default 256")
    ap.add_argument("--vocab", type=int, help="default 8192")
    ap.add_argument("--ctx", type=int, help="default 256 (capped at the --shape's seq)")
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--kinds", default="software,paper-nonlinear")
    ap.add_argument("--out", default="pytorch_train.json")
    ap.add_argument("--family", choices=("gpt2", "llama"), help="model family (default gpt2)")
    ap.add_argument("--shape", choices=sorted(SHAPES), help="Llama-family preset (implies --family llama)")
    ap.add_argument("--n-kv-head", type=int, help="key/value heads (llama; default --heads)")
    ap.add_argument("--intermediate", type=int, help="MLP width (llama; default int(8 embd / 3) rounded up to 32)")
    ap.add_argument("--tie-embeddings", action="store_true", help="llama: lm_head tied to the embeddings")
    args = ap.parse_args()
    args.family_given, args.family = args.family is not None, args.family or "gpt2"
    resolve(ap, args, default_ctx=256)
    torch.set_num_threads(args.threads)
    print(f"model: {args.family} {args.shape or ''} layers {args.layers}, heads {args.heads}, kv heads "
          f"{args.n_kv_head}, embd {args.embd}, intermediate {args.intermediate}, vocab {args.vocab}, tied "
          f"{args.tied}, ctx {args.ctx}")
    args.peak_rss_mb = {}
    tps = {k: bench(k, args) for k in args.kinds.split(",")}
    result = {"tokens_per_s": tps, "threads": args.threads, "torch": torch.__version__,
              "transformers": transformers.__version__, "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "layers": args.layers, "heads": args.heads, "embd": args.embd, "vocab": args.vocab, "ctx": args.ctx,
              "window": args.window, "batch": args.batch, "steps": args.steps, "warmup": args.warmup,
              "family": args.family,
              "shape": args.shape, "n_kv_head": args.n_kv_head, "intermediate": args.intermediate, "tied": args.tied,
              "params": args.params, "peak_rss_mb": args.peak_rss_mb}
    for k, v in tps.items():
        print(f"{k}: {v:.1f} tokens/s on {args.threads} threads")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
