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
One warm-up step, then --steps timed ones; tokens/s = batch x ctx x steps / seconds.

    pip install torch transformers
    python3 scripts/bench_pytorch_train.py --threads 2 --out pytorch_train.json
"""
import argparse
import datetime
import json
import time

import torch
import transformers
from transformers import AttentionInterface, GPT2Config, GPT2LMHeadModel

from bench_pytorch_attention import C, window_mask


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
    if not hasattr(module, "gc_scalers"):
        init = torch.tensor([[1.0, 0.0], [1.0, 0.45], [1.0, 0.45], [1.0, 0.0]]).repeat(h, 1, 1).permute(1, 0, 2)
        module.gc_scalers = torch.nn.Parameter(init.contiguous())  # [4 (q k v o), H, 2 (a b)]
    s = module.gc_scalers
    aff = lambda x, i: x * s[i, :, 0].view(1, h, 1, 1) + s[i, :, 1].view(1, h, 1, 1)
    out = gain_cell_train(aff(query, 0), aff(key, 1), aff(value, 2), module.gc_window)
    return aff(out, 3).transpose(1, 2).contiguous(), None


def bench(kind, args):
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=args.vocab, n_positions=args.ctx, n_embd=args.embd, n_layer=args.layers,
                     n_head=args.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    if kind == "paper-nonlinear":
        AttentionInterface.register("gaincell", gaincell_attention)
        cfg._attn_implementation = "gaincell"
    else:
        cfg._attn_implementation = "sdpa"
    model = GPT2LMHeadModel(cfg).train()
    for block in model.transformer.h:
        block.attn.gc_window = args.window
    ids = torch.randint(0, args.vocab, (args.steps + 1, args.batch, args.ctx + 1), generator=torch.Generator().manual_seed(1))
    # The scalers are created on the first forward: build them before the optimiser.
    with torch.no_grad():
        model(ids[0, :1, :8])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    elapsed = 0.0
    for step in range(args.steps + 1):  # step 0 is the warm-up
        x, y = ids[step, :, :-1], ids[step, :, 1:]
        t0 = time.perf_counter()
        logits = model(x).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, args.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if step > 0:
            elapsed += dt
        print(f"{kind} step {step}{' (warm-up)' if step == 0 else ''}: {dt * 1e3:.0f} ms, loss {loss.item():.3f}")
    return args.batch * args.ctx * args.steps / elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--embd", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--kinds", default="software,paper-nonlinear")
    ap.add_argument("--out", default="pytorch_train.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tps = {k: bench(k, args) for k in args.kinds.split(",")}
    result = {"tokens_per_s": tps, "threads": args.threads, "torch": torch.__version__,
              "transformers": transformers.__version__, "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "layers": args.layers, "heads": args.heads, "embd": args.embd, "vocab": args.vocab, "ctx": args.ctx,
              "window": args.window, "batch": args.batch, "steps": args.steps}
    for k, v in tps.items():
        print(f"{k}: {v:.1f} tokens/s on {args.threads} threads")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
