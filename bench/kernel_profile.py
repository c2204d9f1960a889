"""The per-kernel profile of one Kiln step of a bench/run.py model: each kernel's time, GB/s,
GFLOP/s and share of the step, and how much of the step's wall time the kernels account
for (the rest is per-call overhead: argument binding, launches, the buffer pool).

    python bench/kernel_profile.py mlp|cnn|mlp_infer_b1|mlp_infer_b256 [calls]
"""

from __future__ import annotations

import sys
import time

import peers
import run

import framework as tf

MODELS = {"mlp": lambda: ("mlp_train", run.train_inputs("mlp")[0]),
          "cnn": lambda: ("cnn_train", run.train_inputs("cnn")[0]),
          "mlp_infer_b1": lambda: run._infer(1)[:2],
          "mlp_infer_b256": lambda: run._infer(256)[:2]}


def main(model: str, calls: int = 20):
    if model not in MODELS:
        raise SystemExit(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
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
          f"per-call overhead. Per kernel, totals over {calls} steps:\n")
    print(p)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "mlp", *map(int, sys.argv[2:3]))
