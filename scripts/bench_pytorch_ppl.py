#!/usr/bin/env python3
"""Perplexity throughput of a GPT-2 124M-shaped model in PyTorch + transformers on CPU (the baseline for gaincell).

Random weights (torch.manual_seed(0)), eval mode, no grad, batch 1, windows of --ctx tokens moved by --stride
(default: --ctx, non-overlapping; with a smaller stride only the last `stride` tokens of each window are scored, as
in HF's perplexity guide). Tokens are random ids, or --text FILE tokenised with GPT-2's BPE (tiktoken, ranks from
tiktoken-rs; see make_tokenizer_fixture.py; GPT-2 family only). One warm-up window, then --windows timed ones.
tokens/s counts scored tokens (= processed tokens when stride == ctx).

The model:
  --family gpt2 (default)  GPT2LMHeadModel, GPT2Config() defaults (12 layers, 12 heads, 768 wide, vocab 50257,
                           ctx 1024) unless --layers / --heads / --embd / --vocab are given.
  --family llama           a random LlamaForCausalLM (SiLU-gated MLP, RMSNorm eps 1e-5, RoPE theta 10000) of
                           --layers / --heads / --n-kv-head (default --heads) / --embd / --intermediate (default
                           int(8 embd / 3) rounded up to a multiple of 32) / --vocab (defaults as GPT-2 124M), untied
                           unless --tie-embeddings, or a preset --shape (implies llama; given flags override it):
                             stories260K       llama2.c's stories260K: dim 64, hidden 172, 5 layers, 8 heads,
                                               4 kv heads, vocab 512, seq 512, tied (--ctx defaults to 512)
                             tinyllama-layers  TinyLlama-1.1B's layer: hidden 2048, intermediate 5632, 32 heads,
                                               4 kv heads, vocab 32000, untied, seq 2048, --layers of them (default 2)
Attention is transformers' default implementation (recorded as `attn_implementation`). The JSON written to --out
keeps the GPT-2 fields (tokens_per_s, threads, torch, transformers, date, ctx, stride, windows, scored_tokens,
seconds, perplexity, source) and adds the model's family, shape, layers, heads, n_kv_head, embd, intermediate,
vocab, tied, params, attn_implementation.

    pip install torch transformers tiktoken
    python3 scripts/bench_pytorch_ppl.py --threads 16 --out pytorch_ppl.json [--text corpus.txt] [--stride 512]
    python3 scripts/bench_pytorch_ppl.py --threads 16 --shape stories260K --out pytorch_ppl_stories260K.json
    python3 scripts/bench_pytorch_ppl.py --threads 16 --shape tinyllama-layers --layers 2 --ctx 1024
"""
import argparse
import datetime
import json
import math
import time

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

# Llama-family presets: the model's sizes; "seq" is its context (max_position_embeddings).
SHAPES = {
    "stories260K": dict(embd=64, intermediate=172, layers=5, heads=8, n_kv_head=4, vocab=512, seq=512, tied=True),
    "tinyllama-layers": dict(embd=2048, intermediate=5632, layers=2, heads=32, n_kv_head=4, vocab=32000, seq=2048,
                             tied=False),
}
GPT2_124M = dict(layers=12, heads=12, embd=768, vocab=50257, seq=1024)
SIZE_FLAGS = ("layers", "heads", "n_kv_head", "embd", "intermediate", "vocab")


def llama_intermediate(embd):
    """The Llama MLP width rule used when --intermediate is not given: int(8 embd / 3) rounded up to 32."""
    return -(-int(8 * embd / 3) // 32) * 32


def resolve(ap, args, default_ctx):
    """Fill the model sizes (args.layers, ...) and --ctx / --stride from --family, --shape and the defaults."""
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
        base = dict(GPT2_124M, n_kv_head=None, intermediate=None, tied=True)
    else:
        no_shape = dict(GPT2_124M, n_kv_head=None, intermediate=None, tied=False)
        base = dict(SHAPES[args.shape]) if args.shape else no_shape
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
    args.seq = base["seq"]
    if args.ctx is None:
        args.ctx = min(default_ctx, args.seq)
    if args.stride is None:
        args.stride = args.ctx


def build_model(args):
    """The random model of the resolved sizes (GPT2Config() itself for the default GPT-2 124M)."""
    if args.family == "gpt2":
        sizes = dict(n_layer=args.layers, n_head=args.heads, n_embd=args.embd, vocab_size=args.vocab)
        default = GPT2Config()
        sizes = {k: v for k, v in sizes.items() if v != getattr(default, k)}
        return GPT2LMHeadModel(GPT2Config(n_positions=max(1024, args.ctx), **sizes))
    cfg = LlamaConfig(vocab_size=args.vocab, hidden_size=args.embd, intermediate_size=args.intermediate,
                      num_hidden_layers=args.layers, num_attention_heads=args.heads,
                      num_key_value_heads=args.n_kv_head, max_position_embeddings=max(args.seq, args.ctx),
                      rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=args.tied)
    return LlamaForCausalLM(cfg)


def model_fields(args, model):
    return {"family": args.family, "shape": args.shape, "layers": args.layers, "heads": args.heads,
            "n_kv_head": args.n_kv_head, "embd": args.embd, "intermediate": args.intermediate, "vocab": args.vocab,
            "tied": args.tied, "params": sum(p.numel() for p in model.parameters()),
            "attn_implementation": model.config._attn_implementation}


def tokens(args, n):
    if args.text is None:
        return torch.randint(0, args.vocab, (n,), generator=torch.Generator().manual_seed(0))
    import tiktoken
    from make_tokenizer_fixture import EOT, PAT, load_ranks
    enc = tiktoken.Encoding(name="gpt2", pat_str=PAT, mergeable_ranks=load_ranks()[1], special_tokens={EOT: 50256})
    with open(args.text, encoding="utf-8") as f:
        ids = enc.encode(f.read(), disallowed_special=())
    assert len(ids) >= n, f"{args.text}: {len(ids)} tokens, need {n} for {args.windows + 1} windows"
    return torch.tensor(ids[:n])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--ctx", type=int, help="window length (default 1024, or the --shape's seq if shorter)")
    ap.add_argument("--stride", type=int, help="default: --ctx")
    ap.add_argument("--windows", type=int, default=3, help="timed windows (after one warm-up)")
    ap.add_argument("--text", help="UTF-8 text file to score instead of random ids")
    ap.add_argument("--out", default="pytorch_ppl.json")
    ap.add_argument("--family", choices=("gpt2", "llama"), help="model family (default gpt2)")
    ap.add_argument("--shape", choices=sorted(SHAPES), help="Llama-family preset (implies --family llama)")
    ap.add_argument("--layers", "--n-layer", dest="layers", type=int)
    ap.add_argument("--heads", "--n-head", dest="heads", type=int)
    ap.add_argument("--n-kv-head", type=int, help="key/value heads (llama; default --heads)")
    ap.add_argument("--embd", "--n-embd", dest="embd", type=int)
    ap.add_argument("--intermediate", type=int, help="MLP width (llama; default int(8 embd / 3) rounded up to 32)")
    ap.add_argument("--vocab", type=int)
    ap.add_argument("--tie-embeddings", action="store_true", help="llama: lm_head tied to the embeddings")
    args = ap.parse_args()
    args.family_given, args.family = args.family is not None, args.family or "gpt2"
    resolve(ap, args, default_ctx=1024)
    assert 0 < args.stride <= args.ctx and args.windows >= 1
    if args.text is not None and (args.family != "gpt2" or args.vocab < 50257):
        ap.error("--text is tokenised with GPT-2's BPE: only with --family gpt2 and a vocabulary of 50257")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(args).eval()
    print(f"model: {json.dumps(model_fields(args, model))}")

    ids = tokens(args, args.ctx + args.stride * args.windows)
    nll, scored, elapsed = 0.0, 0, 0.0
    with torch.inference_mode():
        for w in range(args.windows + 1):  # window 0 is the warm-up
            begin = w * args.stride
            x = ids[begin:begin + args.ctx].unsqueeze(0)
            labels = x.clone()
            if w > 0:
                labels[:, :-args.stride] = -100  # score only the tokens not scored by the previous window
            t0 = time.perf_counter()
            loss = model(x, labels=labels).loss
            dt = time.perf_counter() - t0
            n = int((labels[:, 1:] != -100).sum())
            if w > 0:
                nll, scored, elapsed = nll + loss.item() * n, scored + n, elapsed + dt
            print(f"window {w}{' (warm-up)' if w == 0 else ''}: {dt * 1e3:.0f} ms, {n} tokens scored")

    result = {"tokens_per_s": scored / elapsed, "threads": args.threads, "torch": torch.__version__,
              "transformers": transformers.__version__, "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "ctx": args.ctx, "stride": args.stride, "windows": args.windows, "scored_tokens": scored,
              "seconds": elapsed, "perplexity": math.exp(nll / scored), "source": args.text or "random ids",
              **model_fields(args, model)}
    print(f"{result['tokens_per_s']:.1f} tokens/s on {args.threads} threads (perplexity {result['perplexity']:.1f})")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
