"""One SGD training step of an MLP 784-512-10 (relu, softmax cross-entropy, batch 256):
Kiln's compiled step (forward, tape.gradient and the update in one program) beside the same
step written by hand in numpy, and Kiln's eager tape. Prints JSON lines; ``--ir`` also prints
the fused step.

    .venv/bin/python bench/train_step.py [--ir]
"""

from __future__ import annotations

import sys

import numpy as np
from common import emit, median_seconds

import framework as tf

N, D, H, C, LR = 256, 784, 512, 10, 0.1


def problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D)).astype(np.float32)
    y = rng.integers(0, C, N).astype(np.int32)
    ws = [rng.standard_normal((D, H)).astype(np.float32) * 0.05, np.zeros(H, np.float32),
          rng.standard_normal((H, C)).astype(np.float32) * 0.05, np.zeros(C, np.float32)]
    return x, y, ws


def kiln_step(x, y, params):
    w1, b1, w2, b2 = params
    with tf.GradientTape() as tape:
        h = tf.nn.relu(tf.matmul(x, w1) + b1)
        logits = tf.matmul(h, w2) + b2
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
    for p, g in zip(params, tape.gradient(loss, params)):
        p.assign_sub(LR * g)
    return loss


def numpy_step(x, y, ws):
    w1, b1, w2, b2 = ws
    a = x @ w1 + b1
    h = np.maximum(a, 0)
    z = h @ w2 + b2
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(1, keepdims=True)
    loss = -np.log(p[np.arange(N), y]).mean()
    p[np.arange(N), y] -= 1
    dz = p / N
    dh = (dz @ w2.T) * (a > 0)
    w2 -= LR * (h.T @ dz)
    b2 -= LR * dz.sum(0)
    w1 -= LR * (x.T @ dh)
    b1 -= LR * dh.sum(0)
    return loss


def main():
    x, y, ws = problem()
    params = [tf.Variable(w.copy()) for w in ws]
    xt, yt = tf.constant(x), tf.constant(y)
    step = tf.function(kiln_step)
    cf = step.get_concrete_function(xt, yt, params)
    np_ws = [w.copy() for w in ws]
    losses = float(step(xt, yt, params)), float(numpy_step(x, y, np_ws))
    stats = cf.compiled().stats
    emit("mlp_sgd_step", "kiln", median_seconds(lambda: step(xt, yt, params), repeat=50),
         kernels=stats["kernels"], library_calls=stats["library_calls"],
         first_loss_diff=abs(losses[0] - losses[1]))
    emit("mlp_sgd_step", "numpy", median_seconds(lambda: numpy_step(x, y, np_ws), repeat=50))
    emit("mlp_sgd_step", "kiln-eager", median_seconds(lambda: kiln_step(xt, yt, params),
                                                      repeat=20))
    if "--ir" in sys.argv:
        print(cf.ir("fused"))


if __name__ == "__main__":
    main()
