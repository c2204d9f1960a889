"""Framework overhead (JSON lines): an eager op on a small tensor, the fixed cost of calling a
compiled function of one tiny kernel, tracing a small MLP, and a traced call at batch 1,
beside numpy.

    python bench/overhead.py
"""

from __future__ import annotations

import time

import numpy as np
from common import emit, median_seconds

import framework as tf


def main():
    a = np.ones(100, np.float32)
    ta = tf.constant(a)
    emit("eager_add_100_f32", "kiln", median_seconds(lambda: ta + ta, repeat=2000))
    emit("eager_add_100_f32", "numpy", median_seconds(lambda: a + a, repeat=2000))

    tiny = tf.function(lambda x: x + 1.0)
    t4, a4 = tf.constant(np.ones(4, np.float32)), np.ones(4, np.float32)
    tiny(t4)
    emit("call_tiny_kernel", "kiln", median_seconds(lambda: tiny(t4), repeat=5000))
    emit("call_tiny_kernel", "numpy", median_seconds(lambda: a4 + 1.0, repeat=5000))

    rng = np.random.default_rng(0)
    w1 = tf.Variable(rng.normal(size=(784, 128)).astype(np.float32) * 0.05)
    w2 = tf.Variable(rng.normal(size=(128, 10)).astype(np.float32) * 0.05)

    def mlp(x):
        return tf.nn.log_softmax(tf.matmul(tf.nn.relu(tf.matmul(x, w1)), w2))

    f = tf.function(mlp, input_signature=[tf.TensorSpec([None, 784], tf.float32)])
    t0 = time.perf_counter()
    cf = f.get_concrete_function()
    emit("trace_mlp_784_128_10", "kiln", time.perf_counter() - t0, nodes=cf.stats["nodes"])
    x = rng.normal(size=(1, 784)).astype(np.float32)
    W1, W2 = w1.numpy(), w2.numpy()

    def numpy_mlp():
        z = np.maximum(x @ W1, 0) @ W2
        z = z - z.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    emit("mlp_784_128_10_batch1_call", "kiln", median_seconds(lambda: f(x), repeat=500))
    emit("mlp_784_128_10_batch1_call", "kiln_eager", median_seconds(lambda: mlp(x),
                                                                     repeat=500))
    emit("mlp_784_128_10_batch1_call", "numpy", median_seconds(numpy_mlp, repeat=500))


if __name__ == "__main__":
    main()
