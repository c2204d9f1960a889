"""Seconds per `fit` epoch: Kiln's Keras `fit` beside the same models trained by hand in
numpy (same layers, loss, Adam and batch order), for
  - an MLP 784-512-512-10 (relu, batch 256, 10240 synthetic samples: 40 steps), and
  - the digits CNN of examples/digits_cnn.py (8x8x1, conv 32, maxpool, conv 64, dense 64,
    dense 10; batch 32, the 1347 training digits: 43 steps).
Epoch 1 includes compiling (from the disk cache after the first run); the figure is the
median of the later epochs. Prints JSON lines.

    .venv/bin/python bench/keras_fit.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np
from common import emit

import framework as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "examples"))
EPOCHS = 4


# -- numpy reference: layers with forward/backward, Adam as Keras ------------------------------


class Adam:
    def __init__(self, params, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
        self.params, self.lr, self.b1, self.b2, self.eps, self.t = params, lr, b1, b2, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads):
        self.t += 1
        a = self.lr * np.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m += (g - m) * (1 - self.b1)
            v += (g * g - v) * (1 - self.b2)
            p -= a * m / (np.sqrt(v) + self.eps)


def softmax_ce(z, y):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    p = e / e.sum(1, keepdims=True)
    n = len(y)
    loss = -np.log(p[np.arange(n), y]).mean()
    p[np.arange(n), y] -= 1
    return loss, p / n


def dense_params(rng, sizes):
    out = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        lim = np.sqrt(6 / (a + b))
        out += [rng.uniform(-lim, lim, (a, b)).astype(np.float32), np.zeros(b, np.float32)]
    return out


def numpy_mlp_step(ps, opt, x, y):
    w1, b1, w2, b2, w3, b3 = ps
    a1 = x @ w1 + b1
    h1 = np.maximum(a1, 0)
    a2 = h1 @ w2 + b2
    h2 = np.maximum(a2, 0)
    loss, dz = softmax_ce(h2 @ w3 + b3, y)
    dh2 = (dz @ w3.T) * (a2 > 0)
    dh1 = (dh2 @ w2.T) * (a1 > 0)
    opt.step([x.T @ dh1, dh1.sum(0), h1.T @ dh2, dh2.sum(0), h2.T @ dz, dz.sum(0)])
    return loss


def im2col(x):
    """3x3 'same' windows of NHWC x: [N*H*W, 9*C]."""
    n, h, w, c = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = np.stack([xp[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=3)
    return cols.reshape(n * h * w, 9 * c)


def col2im(dcols, shape):
    n, h, w, c = shape
    d = dcols.reshape(n, h, w, 9, c)
    dxp = np.zeros((n, h + 2, w + 2, c), dcols.dtype)
    for k, (i, j) in enumerate((i, j) for i in range(3) for j in range(3)):
        dxp[:, i:i + h, j:j + w] += d[:, :, :, k]
    return dxp[:, 1:-1, 1:-1]


def conv_forward(x, w, b):
    cols = im2col(x)
    out = cols @ w.reshape(-1, w.shape[-1]) + b
    return cols, out.reshape(x.shape[:3] + (w.shape[-1],))


def numpy_cnn_step(ps, opt, x, y):
    k1, c1, k2, c2, w3, b3, w4, b4 = ps
    n = len(x)
    cols1, a1 = conv_forward(x, k1, c1)
    h1 = np.maximum(a1, 0)                                # [n, 8, 8, 32]
    r = h1.reshape(n, 4, 2, 4, 2, 32)
    p1 = r.max(axis=(2, 4))                               # [n, 4, 4, 32]
    cols2, a2 = conv_forward(p1, k2, c2)
    h2 = np.maximum(a2, 0)                                # [n, 4, 4, 64]
    f = h2.reshape(n, -1)
    a3 = f @ w3 + b3
    h3 = np.maximum(a3, 0)
    loss, dz = softmax_ce(h3 @ w4 + b4, y)
    dh3 = (dz @ w4.T) * (a3 > 0)
    da2 = (dh3 @ w3.T).reshape(h2.shape) * (a2 > 0)
    g2 = da2.reshape(-1, 64)
    dk2 = (cols2.T @ g2).reshape(k2.shape)
    dp1 = col2im(g2 @ k2.reshape(-1, 64).T, p1.shape)
    mask = r == p1[:, :, None, :, None, :]
    da1 = (mask * dp1[:, :, None, :, None, :]).reshape(h1.shape) * (a1 > 0)
    g1 = da1.reshape(-1, 32)
    dk1 = (cols1.T @ g1).reshape(k1.shape)
    opt.step([dk1, g1.sum(0), dk2, g2.sum(0), f.T @ dh3, dh3.sum(0), h3.T @ dz, dz.sum(0)])
    return loss


def numpy_epochs(step, ps, x, y, batch, epochs):
    opt = Adam(ps)
    times = []
    for e in range(epochs):
        order = np.random.default_rng(e).permutation(len(x))
        t0 = time.perf_counter()
        for s in range(0, len(x), batch):
            idx = order[s:s + batch]
            step(ps, opt, x[idx], y[idx])
        times.append(time.perf_counter() - t0)
    return times


# -- Kiln --------------------------------------------------------------------------------------


class EpochTimer(tf.keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)


def kiln_epochs(model, x, y, batch, epochs):
    timer = EpochTimer()
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=[timer])
    return timer.times


def report(workload, system, times, **extra):
    emit(workload, system, statistics.median(times[1:]), first_epoch_s=round(times[0], 3),
         unit="ms per epoch", **extra)


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10240, 784)).astype(np.float32)
    y = rng.integers(0, 10, len(x)).astype(np.int64)
    tf.keras.utils.set_random_seed(0)
    mlp = tf.keras.Sequential([tf.keras.layers.Dense(512, activation="relu", input_shape=(784,)),
                               tf.keras.layers.Dense(512, activation="relu"),
                               tf.keras.layers.Dense(10)])
    mlp.compile(optimizer="adam", metrics=["accuracy"],
                loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    report("fit_mlp_784_512_512_10_b256", "kiln", kiln_epochs(mlp, x, y, 256, EPOCHS),
           steps=40)
    ps = dense_params(rng, [784, 512, 512, 10])
    report("fit_mlp_784_512_512_10_b256", "numpy",
           numpy_epochs(numpy_mlp_step, ps, x, y, 256, EPOCHS), steps=40)

    try:
        from digits_data import load_digits
    except ImportError:
        return
    import digits_cnn
    (xd, yd), _ = load_digits(image=True)
    tf.keras.utils.set_random_seed(0)
    report("fit_digits_cnn_b32", "kiln", kiln_epochs(digits_cnn.build(), xd, yd, 32, EPOCHS),
           steps=43)
    lim = np.sqrt(6 / (9 + 9 * 32))
    cnn = [rng.uniform(-lim, lim, (3, 3, 1, 32)).astype(np.float32), np.zeros(32, np.float32),
           rng.uniform(-0.05, 0.05, (3, 3, 32, 64)).astype(np.float32),
           np.zeros(64, np.float32)] + dense_params(rng, [1024, 64, 10])
    report("fit_digits_cnn_b32", "numpy", numpy_epochs(numpy_cnn_step, cnn, xd, yd, 32, EPOCHS),
           steps=43)


if __name__ == "__main__":
    main()
