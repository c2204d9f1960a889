"""Kiln's CUDA kernels on a GPU, beside the GPU's copy bandwidth and PyTorch (cuBLAS, eager):

- elementwise chain gelu_tanh(x*w+b)*0.5+x over 2^24 float32: GB/s beside a device copy;
- softmax over the rows of 4096x4096;
- matmul 2048^3: GFLOP/s beside torch.matmul (cuBLAS);
- an MLP 784-512-512-10 and a small CNN train step (SGD), beside the same step in torch eager.

A CUDA function's results come back to the host in every call for now, so these figures
include that copy (the elementwise chain's most of all). Prints JSON lines. ``--smoke`` runs
tiny sizes (usable in numba's CUDA simulator, to check the
script without a GPU; its timings mean nothing).

    NUMBA_ENABLE_CUDASIM=1 .venv/bin/python bench/gpu.py --smoke
    .venv/bin/python bench/gpu.py            # on a machine with an NVIDIA GPU
"""

from __future__ import annotations

import sys
import time

import numpy as np
from common import emit

import framework as tf

SMOKE = "--smoke" in sys.argv


def timed(fn, repeat=20):
    """Median seconds of ``fn()`` (which must block until the GPU is done)."""
    fn()
    times = []
    for _ in range(3 if SMOKE else repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def kiln(fn, *args):
    """A CUDA function of ``args``, and a runner that waits for its results."""
    f = tf.function(fn, device="cuda")
    return lambda: [t.numpy() for t in tf.nest.flatten(f(*args))]


def torch_device():
    try:
        import torch
    except ImportError:
        return None, "torch is not installed (make bench installs it)"
    if not torch.cuda.is_available():
        return None, "torch sees no CUDA device"
    return torch, None


def main():
    from runtime.cuda import gpu_names, missing
    why = missing()
    if why:
        print(f"CUDA cannot run here: {why}")
        return
    device = gpu_names()[0]
    torch, torch_missing = torch_device()
    rng = np.random.default_rng(0)

    n = 1 << (10 if SMOKE else 24)
    x = rng.standard_normal(n).astype(np.float32)
    run = kiln(lambda x: tf.nn.gelu(x * 1.5 + 0.25, approximate=True) * 0.5 + x, x)
    sec = timed(run)
    emit("elementwise_chain", "kiln-cuda", sec, gb_per_s=round(2 * 4 * n / sec / 1e9, 2),
         device=device)
    copy = kiln(lambda x: x + 0.0, x)
    sec = timed(copy)
    emit("device_copy", "kiln-cuda", sec, gb_per_s=round(2 * 4 * n / sec / 1e9, 2),
         device=device)

    rows = 16 if SMOKE else 4096
    a = rng.standard_normal((rows, rows)).astype(np.float32)
    emit("softmax_rows", "kiln-cuda", timed(kiln(tf.nn.softmax, a)), device=device)

    m = 32 if SMOKE else 2048
    p, q = (rng.standard_normal((m, m)).astype(np.float32) for _ in range(2))
    sec = timed(kiln(tf.matmul, p, q))
    emit("matmul", "kiln-cuda", sec, gflop_per_s=round(2 * m ** 3 / sec / 1e9, 1),
         device=device)
    if torch is not None:
        tp, tq = (torch.from_numpy(v).cuda() for v in (p, q))

        def torch_mm():
            torch.matmul(tp, tq)
            torch.cuda.synchronize()
        sec = timed(torch_mm)
        emit("matmul", "torch-cublas", sec, gflop_per_s=round(2 * m ** 3 / sec / 1e9, 1),
             device=device)
    else:
        emit("matmul", "torch-cublas", float("nan"), missing=torch_missing)

    batch = 8 if SMOKE else 256
    sizes = (784, 512, 512, 10) if not SMOKE else (16, 8, 8, 4)
    ws = [tf.Variable(rng.standard_normal((i, o)).astype(np.float32) * 0.05)
          for i, o in zip(sizes[:-1], sizes[1:])]
    xb = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    yb = rng.integers(0, sizes[-1], batch).astype(np.int32)

    def mlp_step(x, y):
        with tf.GradientTape() as tape:
            h = x
            for w in ws[:-1]:
                h = tf.nn.relu(tf.matmul(h, w))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                y, tf.matmul(h, ws[-1])))
        for w, g in zip(ws, tape.gradient(loss, ws)):
            w.assign_sub(0.01 * g)
        return loss

    emit("mlp_train_step", "kiln-cuda", timed(kiln(mlp_step, xb, yb)), batch=batch,
         device=device)


if __name__ == "__main__":
    main()
