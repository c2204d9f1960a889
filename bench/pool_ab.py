"""Kiln's thread pool (runtime/pool.py, opt-in: KILN_POOL=kiln) against numba's TBB pool
(the default), taking turns in one process on the same compiled steps (this machine's speed
moves in phases of seconds: across processes a 10% difference drowns).

    .venv-bench/bin/python bench/pool_ab.py [workload ...]   # bench/run.py's names
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("KILN_POOL", "kiln")  # (both pools are timed; this starts Kiln's in use)

import peers
from run import WORKLOADS

from runtime import pool
from runtime.threads import parallel_available

DEFAULT = ["mlp_train_step_b256", "cnn_train_step_b64", "mlp_infer_b256", "matmul_1024^3",
           "softmax_4096^2"]
CALLS = 150  # per pool, alternating call by call


def main(names: list[str]) -> None:
    parallel_available()
    kiln = peers.Kiln()
    for name in names or DEFAULT:
        method, args, _, _, _ = WORKLOADS[name]()
        call = getattr(kiln, method)(*args)
        call()  # compile
        times: dict[str, list] = {"kiln": [], "numba": []}
        for r in range(CALLS):
            for which in ("kiln", "numba") if r % 2 else ("numba", "kiln"):
                pool.delegate(which == "numba")
                t0 = time.perf_counter()
                call()
                times[which].append(time.perf_counter() - t0)
        pool.delegate(False)
        k, n = (statistics.median(times[w]) * 1e3 for w in ("kiln", "numba"))
        print(f"{name:>24}: Kiln's pool {k:8.3f} ms   numba's {n:8.3f} ms   "
              f"(numba/kiln {n / k:.3f})   load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
