#!/usr/bin/env python3
"""Measure decode-time attention on an NVIDIA GPU as the paper did, for `gaincell cost --gpu FILE`.

The paper's measurements and how `gaincell cost` compares with them: docs/cost-model.md#gpu-baselines.

Workload (the paper's GPU baseline): one layer's attention while decoding token by token with a KV cache, batch 64,
12 heads x 64 dims, a 1,024-slot cache. Every step writes the new k and v into the next cache slot (a ring buffer,
as on the chip) and attends one query per sequence and head over all 1,024 slots, i.e. the steady state of a
sliding window. A pass is 1,024 such steps; per-token figures divide by batch x steps.

Energy: the GPU's energy counter (NVML total energy, Volta and later) over the timed passes, or, where the counter
is missing, NVML power sampled every few ms and integrated. Static power (the idle GPU, measured just before with
the cache allocated) times the elapsed time is subtracted, so the figure is the energy the attention adds.

Run it on the machine with the GPU (needs PyTorch with CUDA, and pynvml: `pip install torch nvidia-ml-py`):

    python3 scripts/gpu_attention_baseline.py --out data/gpu/<gpu-name>.json
    gaincell cost --gpu data/gpu/<gpu-name>.json

Options change the workload (--batch, --heads, --head-dim, --tokens), the kernel (--kernel sdpa, PyTorch's
scaled_dot_product_attention as the paper did; --kernel matmul, the reference implementation's two matmuls without
softmax) and the precision (--dtype; the paper used float32). The file records the GPU model, driver, CUDA, PyTorch
and the date, so a committed measurement carries its provenance.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import platform
import sys
import threading
import time

FORMAT = "gaincell-gpu-baseline/1"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="measurement file to write (JSON)")
    p.add_argument("--batch", type=int, default=64, help="sequences decoded at once (64)")
    p.add_argument("--heads", type=int, default=12, help="attention heads of the layer (12)")
    p.add_argument("--head-dim", type=int, default=64, help="dims per head (64)")
    p.add_argument("--tokens", type=int, default=1024, help="KV-cache slots = steps per pass (1024)")
    p.add_argument("--kernel", choices=["sdpa", "matmul"], default="sdpa",
                   help="sdpa: torch scaled_dot_product_attention (the paper's); matmul: q·kᵀ then ·v, no softmax "
                        "(the reference implementation)")
    p.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32")
    p.add_argument("--passes", type=int, default=10, help="timed passes of --tokens steps (10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed passes first (3)")
    p.add_argument("--idle-seconds", type=float, default=5.0,
                   help="how long to sample the idle GPU's static power (5 s)")
    p.add_argument("--device", type=int, default=0, help="CUDA device index (0)")
    args = p.parse_args(argv)
    for name in ["batch", "heads", "head_dim", "tokens", "passes"]:
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup < 0 or args.idle_seconds <= 0:
        p.error("--warmup must be >= 0 and --idle-seconds > 0")
    return args


class PowerSampler:
    """Integrates NVML power (mW) over time in a background thread: the fallback without an energy counter."""

    def __init__(self, nvml, handle, period_s: float = 0.005):
        self.nvml, self.handle, self.period_s = nvml, handle, period_s
        self.joules = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last_t = time.perf_counter()
        last_w = self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1e3
        while not self._stop.is_set():
            time.sleep(self.period_s)
            t = time.perf_counter()
            w = self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1e3
            self.joules += 0.5 * (w + last_w) * (t - last_t)  # trapezoid
            last_t, last_w = t, w

    def __enter__(self) -> "PowerSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def energy_counter_mj(nvml, handle) -> int | None:
    """Total energy since the driver loaded (mJ), or None where the GPU has no counter."""
    try:
        return nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except nvml.NVMLError:
        return None


def static_power_w(nvml, handle, seconds: float) -> float:
    """Mean power of the idle GPU: the power the attention did not cause."""
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        samples.append(nvml.nvmlDeviceGetPowerUsage(handle) / 1e3)
        time.sleep(0.01)
    return sum(samples) / len(samples)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        import torch
        import pynvml as nvml
    except ImportError as e:
        sys.exit(f"error: {e.name} is missing: pip install torch nvidia-ml-py")
    if not torch.cuda.is_available():
        sys.exit("error: PyTorch sees no CUDA GPU: run this on the machine with the NVIDIA GPU")

    device = torch.device("cuda", args.device)
    dtype = getattr(torch, args.dtype)
    nvml.nvmlInit()
    handle = nvml.nvmlDeviceGetHandleByIndex(args.device)
    gpu = nvml.nvmlDeviceGetName(handle)
    gpu = gpu.decode() if isinstance(gpu, bytes) else gpu
    driver = nvml.nvmlSystemGetDriverVersion()
    driver = driver.decode() if isinstance(driver, bytes) else driver

    b, h, d, n = args.batch, args.heads, args.head_dim, args.tokens
    # The cache holds random values from the start: every step attends over all n slots (a full sliding window).
    k_cache = torch.rand(b, h, n, d, device=device, dtype=dtype)
    v_cache = torch.rand(b, h, n, d, device=device, dtype=dtype)
    # Fresh q, k, v for every step of a pass, made before timing (the projections are not attention).
    q_all = torch.rand(n, b, h, 1, d, device=device, dtype=dtype)
    k_all = torch.rand(n, b, h, d, device=device, dtype=dtype)
    v_all = torch.rand(n, b, h, d, device=device, dtype=dtype)

    def one_pass() -> None:
        # Ring buffer: a pass writes every slot once, oldest first, as the chip writes its columns.
        for t in range(n):
            k_cache[:, :, t] = k_all[t]
            v_cache[:, :, t] = v_all[t]
            q = q_all[t]
            if args.kernel == "sdpa":
                # One query against every slot: no mask.
                torch.nn.functional.scaled_dot_product_attention(q, k_cache, v_cache)
            else:
                torch.matmul(torch.matmul(q, k_cache.transpose(-1, -2)), v_cache)

    with torch.no_grad():
        for _ in range(args.warmup):
            one_pass()
        torch.cuda.synchronize(device)
        time.sleep(1.0)  # let clocks and power settle before sampling the idle GPU
        idle_w = static_power_w(nvml, handle, args.idle_seconds)

        start_mj = energy_counter_mj(nvml, handle)
        method = "nvml-energy-counter" if start_mj is not None else "nvml-power-sampling"
        meter = PowerSampler(nvml, handle) if start_mj is None else contextlib.nullcontext()
        with meter:
            t0 = time.perf_counter()
            for _ in range(args.passes):
                one_pass()
            torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - t0
        if start_mj is None:
            total_j = meter.joules
        else:
            total_j = (energy_counter_mj(nvml, handle) - start_mj) / 1e3

    net_j = total_j - idle_w * elapsed
    tokens = args.passes * n * b
    if net_j <= 0:
        sys.exit(f"error: measured energy {total_j:.3f} J does not exceed static power x time "
                 f"({idle_w:.1f} W x {elapsed:.3f} s): run more --passes")
    record = {
        "format": FORMAT,
        "gpu": gpu,
        "driver": driver,
        "date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "workload": {"batch": b, "heads": h, "head_dim": d, "tokens": n,
                     "kernel": args.kernel, "dtype": args.dtype},
        "latency_per_token_s": elapsed / tokens,
        "energy_per_token_j": net_j / tokens,
        "static_power_w": idle_w,
        "mean_net_power_w": net_j / elapsed,
        "energy_method": method,
        "passes": args.passes,
        "elapsed_s": elapsed,
        "software": {"torch": torch.__version__, "cuda": torch.version.cuda,
                     "python": platform.python_version()},
        "definition": "per token of one sequence through one layer's attention: wall time and energy above "
                      "static power of `passes` x `tokens` decoding steps, divided by batch x steps",
    }
    nvml.nvmlShutdown()
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    print(f"{gpu} (driver {driver}): {record['latency_per_token_s'] * 1e6:.3f} us and "
          f"{record['energy_per_token_j'] * 1e3:.4f} mJ per token "
          f"({method}, static {idle_w:.1f} W subtracted); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
