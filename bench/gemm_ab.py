"""Two builds of Kiln's float32 GEMM (runtime/sgemm.py) in one process, timed alternately on
the same arrays: the base, and a variant compiled with some of the module's constants
changed. This machine's speed moves in phases of seconds (bench/README.md), so a change of
a few percent shows only when both builds take turns inside one process; identical builds
measure within 1-2% of each other this way.

    .venv/bin/python bench/gemm_ab.py PIECES=4             # the bench models' shapes
    .venv/bin/python bench/gemm_ab.py SHARED_MANY=16777216 KC=192 --shapes 1024x1024x1024

A shape is MxKxN, with a ``t`` after K for op(A) transposed or after N for op(B)
transposed (``784x256tx512``: a weight gradient x^T @ d). The workspace is 64-byte aligned
as the arena's is (a 16-byte aligned one costs a third of the rate).
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

import numpy as np

from runtime import sgemm
from runtime.threads import parallel_available

SHAPES = ["1024x1024x1024", "256x784x512", "256x512x512", "784x256tx512", "512x256tx512",
          "256x512x784t"]
SIGNATURE = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                     ctypes.c_int8] * 2, ctypes.c_void_p, ctypes.c_int64,
                             ctypes.c_int64, ctypes.c_void_p, ctypes.c_int8)


def build(symbol: str, constants: dict):
    """The GEMM compiled under ``constants`` (module names of runtime/sgemm.py; the
    workspace sizes that follow from the blocking are recomputed)."""
    g = {**vars(sgemm), **constants}
    # (sgemm's PACK, for the variant's blocking: keep the two in step)
    pack = g["KC"] * (g["NC"] + g["NR"]) + g["KC"] * (g["MC"] + g["MR"]) + g["MR"] * g["NR"]
    constants = {"PACK": pack, "WORK": pack + g["PARTIAL"], **constants}
    saved = {k: getattr(sgemm, k) for k in constants}
    for k, v in constants.items():
        setattr(sgemm, k, v)
    try:
        return SIGNATURE(sgemm.address(type(symbol, (sgemm._Gemm,), {"symbol": symbol,
                                                                     "kc": g["KC"]})))
    finally:
        for k, v in saved.items():
            setattr(sgemm, k, v)


def compare(variants: dict, shape: str, rounds: int = 30, calls: int = 3) -> str:
    m, k, n = shape.split("x")
    ta, tb = k.endswith("t"), n.endswith("t")
    m, k, n = int(m), int(k.rstrip("t")), int(n.rstrip("t"))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    c = np.empty((m, n), np.float32)
    raw = np.empty(int(np.prod(sgemm.workspace_shape())) * 4 + 16, np.float32)
    work = raw[(-raw.ctypes.data % 64) // 4:]
    want = (a.T if ta else a) @ (b.T if tb else b)
    def call(fn):
        fn(a.ctypes.data, *a.shape, int(ta), b.ctypes.data, *b.shape, int(tb), c.ctypes.data,
           m, n, work.ctypes.data, 0)
    for fn in variants.values():
        call(fn)
        np.testing.assert_allclose(c, want, rtol=1e-3, atol=1e-3)
    times: dict = {name: [] for name in variants}
    order = list(variants)
    for r in range(rounds):
        for name in order if r % 2 else order[::-1]:  # each first in every other round
            best = float("inf")
            for _ in range(calls):
                t0 = time.perf_counter()
                call(variants[name])
                best = min(best, time.perf_counter() - t0)
            times[name].append(best)
    rates = {name: 2 * m * n * k / np.median(t) / 1e9 for name, t in times.items()}
    base = next(iter(rates.values()))
    return f"{shape:>16}: " + "  ".join(f"{name} {r:6.1f} GFLOP/s (x{r / base:.3f})"
                                        for name, r in rates.items())


def main(argv: list[str]) -> None:
    shapes = argv[argv.index("--shapes") + 1:] if "--shapes" in argv else SHAPES
    changes = {a.split("=")[0]: int(a.split("=")[1]) for a in argv
               if "=" in a and a not in shapes}
    parallel_available()
    variants = {"base": build("kiln_sgemm_base", {}),
                " ".join(argv[:len(changes)]) or "same": build("kiln_sgemm_variant", changes)}
    for shape in shapes:
        print(compare(variants, shape), flush=True)
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
