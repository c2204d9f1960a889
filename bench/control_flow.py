"""Loops in compiled functions: each workload as Kiln compiles it (a loop whose regions are
kernels runs as one generated function) beside the same program run region by region from
Python (the runtime's fallback), and a hand-written numpy loop.

    python bench/control_flow.py
"""

from __future__ import annotations

import numpy as np
from common import emit, median_seconds

import compiler.codegen.program as codegen_program  # noqa: E402
import framework as tf  # noqa: E402
from framework import keras  # noqa: E402

RNG = np.random.default_rng(0)


def newton(x, n):
    y = tf.ones_like(x)
    i = tf.constant(0)
    while i < n:
        y = 0.5 * (y + x / y)
        i += 1
    return y


def decay(xs):
    return tf.scan(lambda a, r: a * 0.9 + r, xs)


def _numpy_newton(x, n):
    y = np.ones_like(x)
    for _ in range(n):
        y = np.float32(0.5) * (y + x / y)
    return y


def _numpy_decay(xs):
    out, a = np.empty_like(xs), xs[0]
    out[0] = a
    for i in range(1, len(xs)):
        a = a * np.float32(0.9) + xs[i]
        out[i] = a
    return out


def workloads():
    x = np.linspace(1, 100, 256).astype(np.float32)
    xs = RNG.normal(size=(2000, 64)).astype(np.float32)
    seq = RNG.normal(size=(32, 50, 16)).astype(np.float32)
    lstm, gru = keras.layers.LSTM(64, return_sequences=True), \
        keras.layers.GRU(64, return_sequences=True)
    return [("while newton 256x2000 it", newton, (x, np.int32(2000)),
             lambda: _numpy_newton(x, 2000)),
            ("scan 2000x64", decay, (xs,), lambda: _numpy_decay(xs)),
            ("LSTM 64 units, 32x50x16", lambda s: lstm(s), (seq,), None),
            ("GRU 64 units, 32x50x16", lambda s: gru(s), (seq,), None)]


def main():
    plan_loop = codegen_program.plan_loop
    for name, fn, args, numpy_fn in workloads():
        tensors = [tf.constant(a) for a in args]
        for system, plan in (("kiln", plan_loop), ("kiln-region-by-region", None)):
            codegen_program.plan_loop = plan_loop if plan else (lambda *a: None)
            f = tf.function(fn)
            f(*tensors)
            emit(name, system, median_seconds(lambda f=f, t=tensors: f(*t)))
        codegen_program.plan_loop = plan_loop
        if numpy_fn is not None:
            emit(name, "numpy", median_seconds(numpy_fn))


if __name__ == "__main__":
    main()
