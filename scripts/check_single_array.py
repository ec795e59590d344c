#!/usr/bin/env python3
"""Independent numpy check of `gaincell attention` on single 64 x 64 arrays (the reference's own array test).

Draws Q in [0, 1] and K, V in [0, 0.9], runs the CLI under the `paper-nonlinear-ideal` chip (no quantisation, no
leakage) and compares with S = masked sum_d q * f(k - 0.45), phi = clamp(S / 80, 0, 1),
out = clamp(phi @ f(V - 0.45) / 40, -1, 1), f the gain cell's cubic
(docs/chip-model.md#cell-curve).

    pip install numpy && python3 scripts/check_single_array.py [path/to/gaincell]
"""
import pathlib
import subprocess
import sys
import tempfile

import numpy as np


def f(y):
    return 0.52136 + 13.6123 * y - 2.62045 * y**2 + 46.0548 * y**3


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else "target/release/gaincell"
    rng = np.random.default_rng(0)
    t = d = 64
    q = rng.uniform(0, 1, (t, d)).astype(np.float32)
    k = rng.uniform(0, 0.9, (t, d)).astype(np.float32)
    v = rng.uniform(0, 0.9, (t, d)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for name, x in (("q", q), ("k", k), ("v", v)):
            np.save(tmp / f"{name}.npy", x)
        subprocess.run([exe, "attention", "--chip", "paper-nonlinear-ideal", "--q", tmp / "q.npy", "--k", tmp / "k.npy",
                        "--v", tmp / "v.npy", "--out-dir", tmp / "sim"], check=True)
        got = {n: np.load(tmp / "sim" / f"{n}.npy") for n in ("scores", "phi", "out")}
    q64, k64, v64 = (x.astype(np.float64) for x in (q, k, v))
    mask = np.tril(np.ones((t, t), dtype=bool))
    s = np.where(mask, q64 @ f(k64 - 0.45).T, 0.0)
    phi = np.clip(s / 80, 0, 1)
    out = np.clip(phi @ f(v64 - 0.45) / 40, -1, 1)
    # A score is a signed sum of 64 currents: its float32 error is measured against the size of those terms.
    scale = {"scores": np.abs(q64) @ np.abs(f(k64 - 0.45)).T, "phi": np.abs(phi), "out": np.abs(out)}
    worst = {n: float(np.max(np.abs(got[n] - want) / np.maximum(1, scale[n])))
             for n, want in (("scores", s), ("phi", phi), ("out", out))}
    print("max relative difference:", worst)
    if max(worst.values()) > 1e-5:
        sys.exit("gaincell disagrees with numpy beyond float precision")
    print("ok: gaincell reproduces the single-array formula to float precision")


if __name__ == "__main__":
    main()
