#!/usr/bin/env python3
"""PyTorch side of the attention benchmark, and an independent cross-check of the simulator.

Times, on the CPU with the given thread count, one GPT-2 attention layer (B 1, H 12, T 1024, D 64):
  - PyTorch's own scaled_dot_product_attention (causal), the software reference;
  - gain-cell attention as the published PyTorch implementation formulates it (dense T x T matrices, a matmul per
    coefficient c_ij of the 10-term cell polynomial, decay matrix powers, tiles as a reshape), re-implemented here
    from the algorithm's description (docs/chip-model.md), for the linear and the nonlinear cell.
and SDPA's forward + backward (autograd, the gradient of q, k and v for a given output gradient), the step
training pays. Writes a JSON file that `gaincell bench attention --pytorch FILE` prints beside its own figures
(`ms_median` forward, `ms_median_train` forward + backward).

With --check DIR it also saves its q, k, v as .npy and its outputs, so that
`gaincell attention --chip paper-nonlinear --q DIR/q.npy --k DIR/k.npy --v DIR/v.npy --out-dir DIR/gaincell`
can be compared with DIR/torch_out_nonlinear.npy (scripts/compare_npy.py does it).

    pip install torch numpy && python3 scripts/bench_pytorch_attention.py --threads 2 --out pytorch_attention.json
"""
import argparse
import json
import math
import platform
import statistics
import time

import torch

# The cell polynomial as the reference stores it: c_ij for y^i * V_in^j, V_in = 0.9 (docs/chip-model.md#cell-curve).
C = [0.17393044, 0.15653739, 0.14088365, 0.12679529, 5.51975209, 4.96777688, 4.4709992, -1.44776001, -1.30298401,
     46.05483778]


def quantise(x, levels, lo, hi):
    step = (hi - lo) / (levels - 1)
    return step * torch.round(x / step)


def window_mask(t, w):
    i = torch.arange(t).view(-1, 1)
    j = torch.arange(t).view(1, -1)
    return (j <= i) & (j > i - w)


def gain_cell(q, k, v, nonlinear, lam=1.6e-4, w=1024, tile=64):
    b, h, t, d = q.shape
    q = quantise(q.clamp(0, 1), 16, 0, 1)
    k = quantise(k.clamp(0, 0.9), 8, 0, 0.9) - 0.45
    v = quantise(v.clamp(0, 0.9), 8, 0, 0.9) - 0.45
    mask = window_mask(t, w)
    age = (torch.arange(t).view(-1, 1) - torch.arange(t).view(1, -1)).clamp(min=0).float()
    decay = torch.exp(-lam * age) * mask
    kt = k.transpose(-1, -2)
    if nonlinear:
        s, idx = 0, 0
        for i in range(4):
            for jj in range(4 - i):
                s = s + torch.matmul(q, kt.pow(i) * 0.9**jj * C[idx]) * decay.pow(i)
                idx += 1
    else:
        s = 19.3 * torch.matmul(q, kt) * decay
    s = s.masked_fill(~mask, 0.0)
    phi = (s * (1 / 80)).clamp(0, 1)
    n_tiles = (t + tile - 1) // tile
    pad = n_tiles * tile - t
    phi_t = torch.nn.functional.pad(phi, (0, pad)).view(b, h, t, n_tiles, tile).transpose(2, 3)
    v_t = torch.nn.functional.pad(v, (0, 0, 0, pad)).view(b, h, n_tiles, tile, d)
    dec_t = torch.nn.functional.pad(decay, (0, pad)).view(t, n_tiles, tile).transpose(0, 1)
    if nonlinear:
        a, idx = 0, 0
        for i in range(4):
            for jj in range(4 - i):
                a = a + torch.matmul(phi_t * dec_t.pow(i), v_t.pow(i) * 0.9**jj * C[idx])
                idx += 1
    else:
        a = 19.3 * torch.matmul(phi_t * dec_t, v_t)
    a = quantise((a * (1 / 40)).clamp(-1, 1), 32, -1, 1)
    return s, phi, a.sum(dim=2)


def timed(fn, reps):
    fn()
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ms), min(ms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default="pytorch_attention.json")
    ap.add_argument("--check", help="folder for q/k/v and PyTorch outputs as .npy (cross-check with gaincell)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(7)
    shape = (1, 12, 1024, 64)
    q, k, v = torch.rand(shape), torch.rand(shape) * 0.9, torch.rand(shape) * 0.9
    rows = {}
    with torch.no_grad():
        sm = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        rows["softmax"] = timed(sm, args.reps * 4)
        rows["paper-linear"] = timed(lambda: gain_cell(q, k, v, False), args.reps)
        rows["paper-nonlinear"] = timed(lambda: gain_cell(q, k, v, True), args.reps)
        if args.check:
            import pathlib
            import numpy as np
            out = pathlib.Path(args.check)
            out.mkdir(parents=True, exist_ok=True)
            for name, x in (("q", q), ("k", k), ("v", v)):
                np.save(out / f"{name}.npy", x.numpy().astype(np.float32))
            for nl in (False, True):
                s, phi, o = gain_cell(q, k, v, nl)
                tag = "nonlinear" if nl else "linear"
                np.save(out / f"torch_out_{tag}.npy", o.numpy())
                np.save(out / f"torch_phi_{tag}.npy", phi.numpy())
    # Forward + backward of SDPA, as training runs it.
    qg, kg, vg = (x.clone().requires_grad_() for x in (q, k, v))
    grad = torch.rand(shape) - 0.5

    def sm_train():
        o = torch.nn.functional.scaled_dot_product_attention(qg, kg, vg, is_causal=True)
        o.backward(grad)
        for x in (qg, kg, vg):
            x.grad = None

    train_rows = {"softmax": timed(sm_train, args.reps * 4)}
    result = {
        "what": "PyTorch CPU attention, B 1 x H 12 x T 1024 x D 64, causal; gain-cell in the published dense form",
        "torch": torch.__version__,
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
        "ms_median": {k: v[0] for k, v in rows.items()},
        "ms_min": {k: v[1] for k, v in rows.items()},
        "ms_median_train": {k: v[0] for k, v in train_rows.items()},
        "ms_min_train": {k: v[1] for k, v in train_rows.items()},
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    for name, (med, mn) in rows.items():
        print(f"{name:<18} {med:9.1f} ms median  {mn:9.1f} ms min")
    for name, (med, mn) in train_rows.items():
        print(f"{name + ' fwd+bwd':<18} {med:9.1f} ms median  {mn:9.1f} ms min")


if __name__ == "__main__":
    main()
