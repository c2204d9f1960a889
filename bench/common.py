"""Timing helpers shared by the bench scripts: medians of repeated runs, JSON lines."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import runtime.env  # noqa: E402,F401  (same thread/BLAS settings for every system)


def median_seconds(fn, repeat: int = 15, warmup: int = 3, budget_s: float = 3.0,
                   settle_s: float = 0.3) -> float:
    # A pause first: the thread pools of the system timed before (OpenBLAS's, numba's)
    # spin for a while after their last call and would take a core from this one.
    time.sleep(settle_s)
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeat and (time.perf_counter() - start < budget_s or len(times) < 3):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def emit(workload: str, system: str, seconds: float, **extra) -> dict:
    rec = {"workload": workload, "system": system, "ms": round(seconds * 1e3, 4),
           "host": platform.node(), **extra}
    print(json.dumps(rec), flush=True)
    return rec
