"""Parallel kernels on a busy machine (JSON lines): each workload on 1 and 2 threads, alone
and beside a process that keeps one core busy. Each parallel region must hand out its work
in pieces (numba's TBB threading layer steals work; an even split waits for the thread the
competitor descheduled), so Kiln on 2 threads should not lose to Kiln on 1 there.

    .venv/bin/python bench/contention.py [workload...]
"""

from __future__ import annotations

import os
import subprocess
import sys

import numba
import numpy as np
from common import emit, median_seconds
from train_step import kiln_step, problem

import framework as tf


def workloads():
    rng = np.random.default_rng(0)
    x, y, ws = problem()
    params = [tf.Variable(w.copy()) for w in ws]
    xt, yt = tf.constant(x), tf.constant(y)
    step = tf.function(kiln_step)
    rows = tf.constant(rng.standard_normal((2048, 1024)).astype(np.float32))
    mat = tf.constant(rng.standard_normal((768, 768)).astype(np.float32))
    softmax = tf.function(lambda a: tf.nn.softmax(a))
    gelu = tf.function(lambda a: tf.nn.gelu(a * 2.0 + 1.0))
    matmul = tf.function(lambda a: tf.matmul(a, a))
    return {"mlp_sgd_step": lambda: step(xt, yt, params),
            "softmax_2048x1024": lambda: softmax(rows),
            "gelu_2M": lambda: gelu(rows),
            "matmul_768": lambda: matmul(mat)}


def set_threads(n: int) -> None:
    """Threads for numba's kernels and the native backend's parallel loops (both run on
    numba's pool, runtime/threads.py)."""
    numba.set_num_threads(n)


def main():
    runs = workloads()
    if sys.argv[1:]:
        runs = {k: v for k, v in runs.items() if k in sys.argv[1:]}
    for fn in runs.values():
        fn()  # compile before timing
    set_threads(numba.config.NUMBA_NUM_THREADS)  # starts numba's side of the pool
    layer = numba.threading_layer()
    for busy in (False, True):
        competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"]) \
            if busy else None
        try:
            for name, fn in runs.items():
                for threads in (1, 2):
                    set_threads(threads)
                    emit(name, "kiln", median_seconds(fn, repeat=40), threads=threads,
                         busy_core=busy, layer=layer, load=os.getloadavg()[0],
                         backend=os.environ.get("KILN_BACKEND", "llvm"))
        finally:
            if competitor is not None:
                competitor.kill()
            set_threads(numba.config.NUMBA_NUM_THREADS)


if __name__ == "__main__":
    main()
