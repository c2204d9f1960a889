"""Kiln's thread pool (runtime/pool.py, the default) against numba's TBB pool
(KILN_POOL=numba), taking turns in one process on the same compiled steps (this machine's
speed moves in phases of seconds: across processes a 10% difference drowns).

    .venv-bench/bin/python bench/pool_ab.py [--rounds] [workload ...]   # bench/run.py's names

By default the pools alternate call by call. ``--rounds`` times them as bench/run.py does
(a 0.3 s pause, 3 warm-up calls, 5 timed calls, in 8 rounds), with numpy's and JAX's calls
of the workload between (where they have one): the pause lets the workers fall asleep, which
is where Kiln's pool once ran batch-256 inference 2x slower (bench/README.md).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import peers
from common import median_seconds
from run import WORKLOADS

from runtime import pool
from runtime.threads import parallel_available

DEFAULT = ["mlp_train_step_b256", "cnn_train_step_b64", "mlp_infer_b256", "matmul_1024^3",
           "softmax_4096^2"]
CALLS = 150  # per pool, alternating call by call
ROUNDS = 8


def alternating(call) -> dict[str, list]:
    times: dict[str, list] = {"kiln": [], "numba": []}
    for r in range(CALLS):
        for which in ("kiln", "numba") if r % 2 else ("numba", "kiln"):
            pool.delegate(which == "numba")
            t0 = time.perf_counter()
            call()
            times[which].append(time.perf_counter() - t0)
    return times


def in_rounds(call, others) -> dict[str, list]:
    times: dict[str, list] = {"kiln": [], "numba": []}
    for r in range(ROUNDS):
        for which in ("kiln", "numba") if r % 2 else ("numba", "kiln"):
            for other in others:
                median_seconds(other, repeat=5, budget_s=1.0)
            pool.delegate(which == "numba")
            times[which].append(median_seconds(call, repeat=5, budget_s=1.0))
    return times


def main(argv: list[str]) -> None:
    rounds = "--rounds" in argv
    names = [a for a in argv if not a.startswith("--")] or DEFAULT
    parallel_available()
    kiln = peers.Kiln()
    peer_systems = [peers.load(n)[0] for n in ("numpy", "jax")] if rounds else []
    for name in names:
        method, args, _, _, _ = WORKLOADS[name]()
        call = getattr(kiln, method)(*args)
        call()  # compile
        others = [getattr(p, method)(*args) for p in peer_systems
                  if p is not None and hasattr(p, method)]
        for other in others:
            other()
        times = in_rounds(call, others) if rounds else alternating(call)
        pool.delegate(False)
        k, n = (statistics.median(times[w]) * 1e3 for w in ("kiln", "numba"))
        print(f"{name:>24}: Kiln's pool {k:8.3f} ms   numba's {n:8.3f} ms   "
              f"(numba/kiln {n / k:.3f})   load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
