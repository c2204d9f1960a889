"""Compiler benchmarks (JSON lines): Kiln beside numpy and a hand-written numba kernel.

    python bench/kernels.py             # all workloads
    python bench/kernels.py softmax     # the ones whose name contains "softmax"

Workloads (float32): the elementwise chain gelu_tanh(x*w+b)*0.5+x on 2^24 elements;
softmax and layer norm over the rows of 4096x4096; matmul 1024^3 alone and with bias+relu;
MLP 784-512-512-10 forward at batch 256; cold and warm (new process) compile time of the MLP.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numba
import numpy as np
from common import emit, median_seconds
from numba import prange

import framework as tf

RNG = np.random.default_rng(0)
NJ = dict(parallel=True, error_model="numpy", fastmath=True)


# -- hand-written numba kernels (what a careful person writes for each job) --------------------

@numba.njit(inline="always")
def _tanh_rational(x):  # clamped rational tanh, max error ~1e-6
    x = min(max(x, np.float32(-9.0)), np.float32(9.0))
    x2 = x * x
    p = x * (np.float32(135135.0) + x2 * (np.float32(17325.0) + x2 * (np.float32(378.0) + x2)))
    q = np.float32(135135.0) + x2 * (np.float32(62370.0) + x2 * (np.float32(3150.0)
                                                                 + x2 * np.float32(28.0)))
    return min(max(p / q, np.float32(-1.0)), np.float32(1.0))


@numba.njit(**NJ)
def hand_gelu_chain(x, w, b, out):
    c = np.float32(math.sqrt(2.0 / math.pi))
    for i in prange(x.shape[0]):
        for j in range(x.shape[1]):
            h = x[i, j] * w[j] + b[j]
            g = np.float32(0.5) * h * (np.float32(1.0) + _tanh_rational(
                c * (h + np.float32(0.044715) * h * h * h)))
            out[i, j] = g * np.float32(0.5) + x[i, j]


@numba.njit(**NJ)
def hand_softmax(x, out):
    for i in prange(x.shape[0]):
        m = x[i, 0]
        for j in range(x.shape[1]):
            m = max(m, x[i, j])
        s = np.float32(0.0)
        for j in range(x.shape[1]):
            e = np.exp(x[i, j] - m)
            out[i, j] = e
            s += e
        inv = np.float32(1.0) / s
        for j in range(x.shape[1]):
            out[i, j] *= inv


@numba.njit(**NJ)
def hand_layer_norm(x, g, b, out):
    n = x.shape[1]
    for i in prange(x.shape[0]):
        s = np.float32(0.0)
        for j in range(n):
            s += x[i, j]
        mean = s / n
        v = np.float32(0.0)
        for j in range(n):
            d = x[i, j] - mean
            v += d * d
        inv = np.float32(1.0) / np.sqrt(v / n + np.float32(1e-3))
        for j in range(n):
            out[i, j] = (x[i, j] - mean) * inv * g[j] + b[j]


@numba.njit(**NJ)
def hand_matmul_bias_relu(a, w, b, out):
    np.dot(a, w, out)
    for i in prange(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = max(out[i, j] + b[j], np.float32(0.0))


# -- workloads ----------------------------------------------------------------------------------


def f32(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def bench_elementwise():
    x, w, b = f32(4096, 4096), f32(4096), f32(4096)
    gb = (x.nbytes * 2) / 1e9  # read x, write out (w and b stay in cache)

    @tf.function
    def chain(x, w, b):
        return tf.nn.gelu(x * w + b, approximate=True) * 0.5 + x

    def numpy_chain():
        h = x * w + b
        return 0.5 * h * (1 + np.tanh(np.float32(math.sqrt(2 / math.pi)) *
                                      (h + np.float32(0.044715) * h ** 3))) * 0.5 + x

    out = np.empty_like(x)
    ref = numpy_chain()
    run_all("elementwise_gelu_chain_2^24", {
        "kiln": lambda: chain(x, w, b), "numpy": numpy_chain,
        "numba_hand": lambda: hand_gelu_chain(x, w, b, out)}, ref, gb=gb)


def bench_softmax():
    x = f32(4096, 4096)
    f = tf.function(tf.nn.softmax)
    out = np.empty_like(x)

    def numpy_softmax():
        e = np.exp(x - x.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    run_all("softmax_rows_4096x4096", {"kiln": lambda: f(x), "numpy": numpy_softmax,
                                       "numba_hand": lambda: hand_softmax(x, out)},
            numpy_softmax(), gb=x.nbytes * 2 / 1e9)


def bench_layer_norm():
    x, g, b = f32(4096, 4096), f32(4096), f32(4096)
    f = tf.function(lambda x, g, b: tf.nn.layer_norm(x, g, b))
    out = np.empty_like(x)

    def numpy_ln():
        m = x.mean(1, keepdims=True)
        v = ((x - m) ** 2).mean(1, keepdims=True)
        return (x - m) / np.sqrt(v + np.float32(1e-3)) * g + b

    run_all("layer_norm_rows_4096x4096", {"kiln": lambda: f(x, g, b), "numpy": numpy_ln,
                                          "numba_hand": lambda: hand_layer_norm(x, g, b, out)},
            numpy_ln(), gb=x.nbytes * 2 / 1e9)


def bench_matmul():
    a, w, b = f32(1024, 1024), f32(1024, 1024), f32(1024)
    flop = 2 * 1024 ** 3
    mm = tf.function(tf.matmul)
    run_all("matmul_1024^3", {"kiln": lambda: mm(a, w), "numpy": lambda: a @ w}, a @ w,
            gflop=flop / 1e9)
    fused = tf.function(lambda a, w, b: tf.nn.relu(tf.matmul(a, w) + b))
    out = np.empty_like(a)
    run_all("matmul_bias_relu_1024^3", {
        "kiln": lambda: fused(a, w, b), "numpy": lambda: np.maximum(a @ w + b, 0),
        "numba_hand": lambda: hand_matmul_bias_relu(a, w, b, out)},
        np.maximum(a @ w + b, 0), gflop=flop / 1e9)


MLP_SOURCE = """
import numpy as np
import framework as tf
rng = np.random.default_rng(0)
sizes = [784, 512, 512, 10]
ws = [tf.Variable(rng.normal(size=(m, n)).astype(np.float32) * 0.05)
      for m, n in zip(sizes, sizes[1:])]
bs = [tf.Variable(np.zeros(n, np.float32)) for n in sizes[1:]]

@tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float32)])
def mlp(x):
    for i, (w, b) in enumerate(zip(ws, bs)):
        x = tf.matmul(x, w) + b
        x = tf.nn.relu(x) if i < len(ws) - 1 else tf.nn.softmax(x)
    return x
"""


def bench_mlp():
    ns: dict = {}
    exec(MLP_SOURCE, ns)
    x = f32(256, 784)
    ws = [w.numpy() for w in ns["ws"]]
    bs = [b.numpy() for b in ns["bs"]]

    def numpy_mlp():
        h = x
        for i, (w, b) in enumerate(zip(ws, bs)):
            h = h @ w + b
            if i < 2:
                h = np.maximum(h, 0)
        e = np.exp(h - h.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    run_all("mlp_784_512_512_10_forward_b256", {"kiln": lambda: ns["mlp"](x),
                                               "numpy": numpy_mlp}, numpy_mlp())


def bench_compile_time():
    """Cold (empty cache) and warm (cache filled by a previous process) first call."""
    import tempfile
    code = MLP_SOURCE + """
import time, json
t0 = time.perf_counter()
mlp(np.ones((256, 784), np.float32))
print(json.dumps({"first_call_s": time.perf_counter() - t0}))
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, KILN_CACHE_DIR=cache, PYTHONPATH=root)
        for label in ("cold", "warm"):
            t = __import__("time").perf_counter()
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                 text=True, check=True)
            total = __import__("time").perf_counter() - t
            first = json.loads(out.stdout.strip().splitlines()[-1])["first_call_s"]
            emit(f"mlp_compile_{label}", "kiln", first, process_s=round(total, 3))


def run_all(workload, systems, reference, gb=None, gflop=None):
    for name, fn in systems.items():
        out = fn()
        got = out.numpy() if hasattr(out, "numpy") else (out if out is not None else None)
        err = None
        if got is not None and np.shape(got) == np.shape(reference):
            err = float(np.max(np.abs(np.asarray(got, np.float64) - reference)))
        s = median_seconds(fn)
        extra = {"max_abs_err": err}
        if gb:
            extra["gb_per_s"] = round(gb / s, 2)
        if gflop:
            extra["gflop_per_s"] = round(gflop / s, 1)
        emit(workload, name, s, **extra)


WORKLOADS = {"elementwise": bench_elementwise, "softmax": bench_softmax,
             "layer_norm": bench_layer_norm, "matmul": bench_matmul, "mlp": bench_mlp,
             "compile": bench_compile_time}

if __name__ == "__main__":
    chosen = [k for k in WORKLOADS if not sys.argv[1:] or any(a in k for a in sys.argv[1:])]
    for k in chosen:
        WORKLOADS[k]()
