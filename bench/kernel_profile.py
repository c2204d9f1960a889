"""The per-kernel profile of one Kiln step of a bench/run.py model: each kernel's time, GB/s,
GFLOP/s and share of the step, its fraction of the roofline, and how much of the step's
wall time the kernels account for (the rest is per-call overhead: argument binding,
launches, the buffer pool).

The roofline is the machine's as Kiln reaches it, measured first in the same process: the
memory bandwidth of a compiled elementwise kernel over 2^25 floats (bytes read + written)
and the rate of Kiln's GEMM on 1024^3 (best of five each). A kernel's fraction is the larger
of its GB/s over the first and its GFLOP/s over the second, so the next gap is visible: a
large kernel far under 100% is the one to work on.

    python bench/kernel_profile.py mlp|cnn[_mixed_float16|_mixed_bfloat16]|mlp_infer_b1|mlp_infer_b256
        [calls]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import peers
import run

import framework as tf

MODELS = {"mlp": lambda: ("mlp_train", run.train_inputs("mlp")[0]),
          "cnn": lambda: ("cnn_train", run.train_inputs("cnn")[0]),
          **{f"{m}_{policy}": (lambda m=m, policy=policy: (f"{m}_train_{policy}",
                                                           run.train_inputs(m)[0]))
             for m in ("mlp", "cnn") for policy in ("mixed_float16", "mixed_bfloat16")},
          "mlp_infer_b1": lambda: run._infer(1)[:2],
          "mlp_infer_b256": lambda: run._infer(256)[:2]}


def limits() -> tuple[float, float]:
    """(GB/s, GFLOP/s): a compiled copy-like kernel's bandwidth, Kiln's GEMM's rate."""
    x = tf.constant(np.ones(1 << 25, np.float32))
    a = tf.constant(np.ones((1024, 1024), np.float32))
    scale = tf.function(lambda x: x * 2.0)
    matmul = tf.function(lambda a: tf.matmul(a, a))
    best = []
    for f, arg in ((scale, x), (matmul, a)):
        f(arg)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            f(arg)
            times.append(time.perf_counter() - t0)
        best.append(min(times))
    return 2 * 4 * (1 << 25) / best[0] / 1e9, 2 * 1024 ** 3 / best[1] / 1e9


def table(rows, bandwidth: float, peak: float) -> str:
    head = (f"{'kernel':<44} {'kind':<11} {'calls':>5} {'total ms':>9} {'share':>6} "
            f"{'GB/s':>7} {'GFLOP/s':>8} {'roof':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        roof = max(r["gb_per_s"] / bandwidth, r["gflop_per_s"] / peak)
        lines.append(f"{r['name'][:44]:<44} {r['kind']:<11} {r['calls']:>5} "
                     f"{r['seconds'] * 1e3:>9.3f} {r['share']:>6.1%} {r['gb_per_s']:>7.2f} "
                     f"{r['gflop_per_s']:>8.2f} {roof:>5.0%}")
    return "\n".join(lines)


def main(model: str, calls: int = 20):
    if model not in MODELS:
        raise SystemExit(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    bandwidth, peak = limits()
    method, args = MODELS[model]()
    step = getattr(peers.Kiln(), method)(*args)
    for _ in range(3):  # compile and warm up
        step()
    t0 = time.perf_counter()
    for _ in range(calls):
        step()
    wall = (time.perf_counter() - t0) / calls
    with tf.debugging.profile() as p:
        for _ in range(calls):
            step()
    kernels = sum(r["seconds"] for r in p.rows) / calls
    print(f"{model}: {wall * 1e3:.3f} ms per step (mean of {calls} calls); kernels "
          f"and library calls {kernels * 1e3:.3f} ms ({kernels / wall:.0%}), the rest is "
          f"per-call overhead. Roofline: {bandwidth:.1f} GB/s, {peak:.0f} GFLOP/s (load "
          f"{os.getloadavg()[0]:.2f}). Per kernel, totals over {calls} steps:\n")
    print(table(p.rows, bandwidth, peak))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "mlp", *map(int, sys.argv[2:3]))
