#!/usr/bin/env python3
"""Greedy decoding throughput of PyTorch + transformers `generate` (with its KV cache) on CPU: the baseline for
`gaincell bench generate`, on a random model of the same shape, the same prompt length, the same number of new
tokens and the same thread count.

tokens/s of the decode phase = (N - 1) / (t(N new tokens) - t(1 new token)), medians over --reps runs each: the
prompt's prefill and the first token are taken out, as gaincell times its token-by-token loop on its own.
Peak memory: the process's maximum resident set size (getrusage), in MB.

    pip install torch transformers
    python3 scripts/bench_pytorch_generate.py --threads 2 --family gpt2 --layers 12 --heads 12 --embd 768 \
        --vocab 50257 --positions 1024 --out pytorch_generate_gpt2.json
"""
import argparse
import datetime
import json
import resource
import statistics
import time

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM


def build(a):
    torch.manual_seed(0)
    if a.family == "gpt2":
        cfg = GPT2Config(vocab_size=a.vocab, n_positions=a.positions, n_embd=a.embd, n_layer=a.layers,
                         n_head=a.heads)
        model = GPT2LMHeadModel(cfg)
    else:
        cfg = LlamaConfig(vocab_size=a.vocab, hidden_size=a.embd, intermediate_size=a.intermediate,
                          num_hidden_layers=a.layers, num_attention_heads=a.heads,
                          num_key_value_heads=a.n_kv_head or a.heads, max_position_embeddings=a.positions,
                          tie_word_embeddings=a.tie_embeddings, rms_norm_eps=1e-5)
        model = LlamaForCausalLM(cfg)
    return model.eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=["gpt2", "llama"], default="gpt2")
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--embd", type=int, required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--n-kv-head", type=int)
    ap.add_argument("--intermediate", type=int)
    ap.add_argument("--tie-embeddings", action="store_true")
    ap.add_argument("--positions", type=int, required=True)
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.family == "llama" and a.intermediate is None:
        ap.error("--family llama needs --intermediate")
    if a.new_tokens < 2 or a.prompt_tokens < 1 or a.prompt_tokens + a.new_tokens > a.positions:
        ap.error("need --prompt-tokens >= 1, --new-tokens >= 2 and their sum <= --positions")
    torch.set_num_threads(a.threads)
    model = build(a)
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(0, a.vocab, (1, a.prompt_tokens), generator=g)

    def timed(n):
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n,
                                 min_new_tokens=n, do_sample=False, use_cache=True, pad_token_id=0)
        elapsed = time.perf_counter() - started
        assert out.shape[1] == a.prompt_tokens + n, out.shape
        return elapsed

    timed(2)  # warm-up
    t1 = statistics.median(timed(1) for _ in range(a.reps))
    tn = statistics.median(timed(a.new_tokens) for _ in range(a.reps))
    tps = (a.new_tokens - 1) / max(tn - t1, 1e-9)
    result = {
        "tokens_per_s": {"software": tps},
        "seconds_first_token": t1,
        "seconds_all_tokens": tn,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "params": sum(p.numel() for p in model.parameters()),
        "threads": a.threads,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "date": datetime.date.today().isoformat(),
        **{k: getattr(a, k) for k in ("family", "layers", "heads", "embd", "vocab", "n_kv_head", "intermediate",
                                      "tie_embeddings", "positions", "prompt_tokens", "new_tokens", "reps")},
    }
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"PyTorch {torch.__version__} generate: {tps:.1f} tokens/s decode, peak RSS "
          f"{result['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
