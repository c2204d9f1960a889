"""Programs covering the CUDA kernel families, run by ``tests/compiler/test_cuda.py`` in child
processes (numba's simulator and ``compile_ptx`` cannot share one):

    python tests/cuda_cases.py sim   # run each compiled for CUDA in the simulator, compare
                                     # with the reference interpreter
    python tests/cuda_cases.py ptx   # compile every generated kernel to PTX for compute
                                     # capabilities 8.0 and 9.0 and link each to a cubin

Each prints one JSON line per case.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import framework as tf  # noqa: E402
from compiler.codegen.compile import compile_graph  # noqa: E402
from compiler.interpret import bind_dims, run  # noqa: E402
from runtime.program import execute  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 5)).astype(np.float32)
Y = RNG.normal(size=(3, 5)).astype(np.float32)
B = RNG.normal(size=(5,)).astype(np.float32)
LABELS = np.array([0, 4, 2], np.int32)


def _mlp_step(x, labels, w1, b1, w2):
    with tf.GradientTape() as tape:
        tape.watch([w1, b1, w2])
        h = tf.nn.relu(tf.matmul(x, w1) + b1)
        logits = tf.matmul(h, w2)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    g1, gb, g2 = tape.gradient(loss, [w1, b1, w2])
    return loss, w1 - 0.1 * g1, b1 - 0.1 * gb, w2 - 0.1 * g2


def _gather_grad(x, i):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(tf.gather(x, i, axis=1) ** 2) + tf.reduce_sum(tf.gather(x, i[1:] % 3))
    return tape.gradient(y, x)


def _pool_grads(x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(tf.nn.max_pool2d(x, 2, 2, "VALID") ** 2) + \
            tf.reduce_sum(tf.nn.avg_pool2d(x, 3, 2, "SAME") ** 2)
    return tape.gradient(y, x)


def _control_flow(x, n):
    def body(i, v):
        v = tf.cond(tf.reduce_sum(v) > 0, lambda: v * 0.5 - 0.1, lambda: tf.tanh(v) + x)
        return i + 1, v
    _, v = tf.while_loop(lambda i, v: i < n, body, (0, x))
    return tf.scan(lambda a, r: a * 0.9 + r, v, initializer=tf.zeros(5), reverse=True)


def _cnn_step(x, labels, k, w):
    with tf.GradientTape() as tape:
        tape.watch([k, w])
        h = tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(x, k, 1, "SAME")), 2, 2, "VALID")
        logits = tf.matmul(tf.reshape(h, [-1, 2 * 2 * 4]), w)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    gk, gw = tape.gradient(loss, [k, w])
    return loss, k - 0.1 * gk, w - 0.1 * gw


def _narrow(d):
    """16-bit kernels: loaded widened, computed in float32, stored rounded: an elementwise
    chain with a cast, a row softmax, a matmul with its epilogue, a conv2d, an argmax."""
    def f(x, y, w, img, k):
        x, y, w, img, k = (tf.cast(a, d) for a in (x, y, w, img, k))
        chain = tf.nn.gelu(x * y + 1.0, approximate=True) - tf.cast(tf.cast(x, tf.float32)
                                                                     * 3.0, d)
        return (chain, tf.nn.softmax(x * 2.0), tf.nn.relu(tf.matmul(x, w) + 0.5),
                tf.nn.conv2d(img, k, 1, "SAME"), tf.argmax(x, 1))
    return f, (X, Y, RNG.normal(size=(5, 20)).astype(np.float32),
               RNG.normal(size=(2, 5, 4, 4)).astype(np.float32),
               RNG.normal(size=(3, 3, 4, 6)).astype(np.float32))


def _mixed_step(x, labels, w1, w2):
    """An MLP step computing in bfloat16 on float32 weights (mixed_bfloat16's shape)."""
    with tf.GradientTape() as tape:
        tape.watch([w1, w2])
        h = tf.nn.relu(tf.matmul(tf.cast(x, tf.bfloat16), tf.cast(w1, tf.bfloat16)))
        logits = tf.cast(tf.matmul(h, tf.cast(w2, tf.bfloat16)), tf.float32)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    g1, g2 = tape.gradient(loss, [w1, w2])
    return loss, w1 - 0.1 * g1, w2 - 0.1 * g2


# Relative error allowed against the reference interpreter, which rounds every op's result
# to its dtype where a kernel rounds only what it stores (float32 cases: 1e-6).
TOLERANCE = {"float16": 4e-3, "bfloat16": 3e-2, "mixed_bfloat16_step": 3e-2}

CASES = {
    # elementwise chains, broadcasting, the float32 math functions, casts, selects
    "elementwise": (lambda x, y, b: tf.nn.gelu(x * y + b, approximate=True) *
                    tf.exp(-x) + tf.sigmoid(y) - tf.tanh(b), (X, Y, B)),
    "math": (lambda x, y: tf.where(x > y, tf.math.log(tf.abs(x) + 1.0), tf.sqrt(y * y)) +
             tf.cast(tf.cast(x * 3.0, tf.int32), tf.float32) + tf.pow(tf.abs(y), 1.5)
             - tf.math.erf(x) + tf.maximum(x, y), (X, Y)),
    "integer": (lambda a: (a * 3 + 1) // 2 - a % 3, (np.arange(12, dtype=np.int32),)),
    # counter-based random bits (Philox), fused with their consumers: the same bits as the
    # CPU and the reference
    "random": (lambda key, x: tf.random.stateless_uniform([3, 5], seed=key) * x +
               tf.cast(tf.random.stateless_uniform([7], seed=key, minval=0, maxval=100,
                                                   dtype=tf.int32), tf.float32)[1:6],
               (np.array([7, -3], np.int32), X)),
    # movement ops fused as index-mapped loads
    "views": (lambda x, y: tf.transpose(x)[1:4] * 2.0 + tf.reverse(tf.transpose(y), [0])[1:4]
              + tf.pad(x, [[0, 0], [1, 0]])[:, :3][0], (X, Y)),
    "concat": (lambda x, y: tf.concat([x, y * 2.0], 1) + 1.0, (X, Y)),
    "gather": (lambda x, i: tf.gather(x, i, axis=1) * 2.0 + tf.gather(x, i[1:] % 3)[:, :4],
               (X, np.array([4, 0, 2, 2], np.int32))),
    # its gradient: scatter-add with repeated indices (atomics on one block)
    "scatter_add": (lambda x, i: _gather_grad(x, i), (X, np.array([4, 0, 2, 2], np.int32))),
    # row reductions with prologue and epilogue
    "softmax": (lambda x: tf.nn.softmax(x * 2.0), (X,)),
    "log_softmax": (lambda x: tf.nn.log_softmax(x), (X,)),
    "layer_norm": (lambda x: (x - tf.reduce_mean(x, -1, keepdims=True)) *
                   tf.math.rsqrt(tf.reduce_variance(x, -1, keepdims=True) + 1e-3), (X,)),
    "max_min_rows": (lambda x: tf.reduce_max(x, 1) - tf.reduce_min(x, 1) +
                     tf.reduce_prod(x, 1), (X,)),
    "cross_entropy": (lambda x, labels: tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels, x), (X, LABELS)),
    # argmax/argmin (accuracy metrics): a thread per output element; ties give the first
    # index, a NaN wins over every number
    "arg_reduce": (lambda x: tf.cast(tf.argmax(x, 1), tf.float32) * 10.0 +
                   tf.cast(tf.argmin(x, 0, output_type=tf.int32), tf.float32)[:3],
                   (np.array([[1.0, 3.0, 3.0, 0.0], [np.nan, 2.0, np.nan, 5.0],
                              [-1.0, -1.0, -2.0, -2.0]], np.float32),)),
    # column and whole reductions
    "columns": (lambda x: tf.reduce_sum(x * x, 0) + tf.reduce_mean(x, 0), (X,)),
    # a whole reduction that also yields its elementwise input (one block writes all of it)
    "total": (lambda x, y: (tf.reduce_mean(tf.square(x - y)), tf.square(x - y)), (X, Y)),
    "scalars": (lambda x, y: tf.reduce_sum(tf.reduce_sum(x * y), []) / tf.cast(tf.size(x),
                                                                               tf.float32)
                + tf.reduce_sum(x[:1, :1] * 2.0), (X, Y)),
    "nan_max": (lambda x: tf.reduce_max(x, 1), (np.array([[1.0, np.nan], [2.0, -np.inf]],
                                                         np.float32),)),
    # matmuls (shared-memory tiles) with their epilogues, every transpose
    "matmul_epilogue": (lambda x, w, b: tf.nn.relu(tf.matmul(x, w) + b),
                        (X, RNG.normal(size=(5, 20)).astype(np.float32),
                         RNG.normal(size=(20,)).astype(np.float32))),
    "matmul_transposed": (lambda x, y: tf.matmul(x, y, transpose_a=True) +
                          tf.matmul(x, y, transpose_b=True)[0, 0], (X, Y)),
    # conv2d as an implicit GEMM with its epilogue; strides, dilation, SAME padding
    "conv2d": (lambda x, w, b: tf.nn.relu(tf.nn.conv2d(x, w, 2, "SAME") + b) +
               tf.reduce_sum(tf.nn.conv2d(x, w, 1, "VALID", dilations=2)),
               (RNG.normal(size=(2, 6, 5, 3)).astype(np.float32),
                RNG.normal(size=(3, 2, 3, 4)).astype(np.float32),
                RNG.normal(size=(4,)).astype(np.float32))),
    # pooling and its gradients (per-image scatter), SAME and VALID windows
    "pools": (lambda x: tf.nn.max_pool2d(x, 2, 2, "VALID") * 2.0 +
              tf.nn.avg_pool2d(x, 3, 2, "SAME"), (RNG.normal(size=(2, 4, 4, 3))
                                                  .astype(np.float32),)),
    "pool_gradients": (lambda x: _pool_grads(x), (RNG.normal(size=(2, 5, 4, 3))
                                                  .astype(np.float32),)),
    # a training step: forward, gradients and SGD
    "cnn_train_step": (_cnn_step, (RNG.normal(size=(3, 4, 4, 2)).astype(np.float32), LABELS,
                                   RNG.normal(size=(3, 3, 2, 4)).astype(np.float32),
                                   RNG.normal(size=(16, 5)).astype(np.float32))),
    "control_flow": (_control_flow, (X, np.array(4, np.int32))),
    "mlp_train_step": (_mlp_step, (X, LABELS, RNG.normal(size=(5, 4)).astype(np.float32),
                                   np.zeros(4, np.float32),
                                   RNG.normal(size=(4, 5)).astype(np.float32))),
    "float16": _narrow(tf.float16),
    "bfloat16": _narrow(tf.bfloat16),
    "mixed_bfloat16_step": (_mixed_step, (X, LABELS, RNG.normal(size=(5, 4)).astype(
        np.float32), RNG.normal(size=(4, 5)).astype(np.float32))),
}


def compiled(name):
    fn, args = CASES[name]
    cf = tf.function(fn).get_concrete_function(*args)
    return cf, compile_graph(cf.graph, target="cuda"), [np.asarray(a) for a in args]


def simulate(name) -> dict:
    cf, c, arrays = compiled(name)
    got = execute(c.program, arrays, env=bind_dims(cf.graph.params, arrays))
    ref = run(cf.graph, arrays)
    err = 0.0
    same_nan = True
    for g, r in zip(got, ref):
        g, r = np.asarray(g, np.float64), np.asarray(r, np.float64)
        same_nan &= bool(np.array_equal(np.isnan(g), np.isnan(r)))
        ok = ~np.isnan(r) & np.isfinite(r)
        err = max(err, float(np.max(np.abs(g[ok] - r[ok]) / (1 + np.abs(r[ok])), initial=0)))
        same_nan &= bool(np.array_equal(g[np.isinf(r)], r[np.isinf(r)]))
    return {"case": name, "kernels": c.stats["kernels"], "max_rel_err": err,
            "tolerance": TOLERANCE.get(name, 1e-6),
            "narrow_kernels": sum(any(str(d) in ("float16", "bfloat16") for d in st.out_dtypes)
                                  for st in c.program.steps if st.kind == "kernel"),
            "special_values_match": same_nan,
            "host_ops": [st.name for st in c.program.steps if st.kind == "library"]}


def compile_ptx(name) -> dict:
    from runtime.cuda import compile_ptx as ptx_of
    from runtime.cuda import link_cubin
    _, c, _ = compiled(name)
    t0 = time.perf_counter()
    done = []
    for k in c.kernels:
        for cc in ((8, 0), (9, 0)):
            ptx = ptx_of(c.program.module, k.name, k.signature, cc)
            cubin = link_cubin(ptx, f"sm_{cc[0]}{cc[1]}")
            done.append((k.name, cc, len(ptx), len(cubin)))
    return {"case": name, "kernels": len(c.kernels), "compiled": len(done),
            "seconds": round(time.perf_counter() - t0, 2)}


def resident() -> list[dict]:
    """Variables stay on the device between calls of a CUDA function (the host copy is
    refreshed only when read), and a Keras fit on CUDA follows the CPU's losses."""
    out = []

    def sgd_run(device):
        w = tf.Variable(np.full((5, 3), 0.1, np.float32))
        b = tf.Variable(np.zeros(3, np.float32))

        @tf.function(device=device)
        def step(x, y):
            with tf.GradientTape() as tape:
                logits = tf.matmul(x, w) + b
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
            gw, gb = tape.gradient(loss, [w, b])
            w.assign_sub(0.5 * gw)
            b.assign_sub(0.5 * gb)
            return loss

        from numba import cuda
        made = []
        allocate = cuda.device_array
        cuda.device_array = lambda *a, **k: made.append(1) or allocate(*a, **k)
        losses, on_device, allocations = [], [], []
        try:
            for _ in range(3):
                before = len(made)
                losses.append(float(step(X[:, :5], LABELS[:3] % 3)))
                on_device.append(w._store.device_newer)
                allocations.append(len(made) - before)
        finally:
            cuda.device_array = allocate
        return losses, on_device, w.numpy(), w._store.device is None, allocations

    cpu, cuda = sgd_run("cpu"), sgd_run("cuda")
    out.append({"case": "resident_variables",
                "max_loss_diff": max(abs(a - b) for a, b in zip(cpu[0], cuda[0])),
                "max_weight_diff": float(np.abs(cpu[2] - cuda[2]).max()),
                "stayed_on_device": all(cuda[1]), "synced_on_read": cuda[3],
                "device_allocations_per_step": cuda[4]})

    out.append(resident_results())
    x = RNG.normal(size=(12, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)

    def fit(device):
        tf.keras.utils.set_random_seed(0)
        model = tf.keras.Sequential([tf.keras.layers.Dense(6, activation="relu",
                                                           input_shape=(5,)),
                                     tf.keras.layers.Dense(3)])
        model.compile(tf.keras.optimizers.Adam(0.05), tf.keras.losses
                      .SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        with tf.device(device):
            hist = model.fit(x, y, batch_size=5, epochs=2, verbose=0, shuffle=False)
        return hist.history["loss"]

    a, b = fit("cpu"), fit("cuda")
    out.append({"case": "keras_fit", "max_loss_diff": max(abs(p - q) for p, q in zip(a, b))})
    # control flow on device buffers: branches and loop bodies run as device sub-programs
    args = (tf.constant(X), tf.constant(np.array(4, np.int32)))
    got = tf.function(_control_flow, device="cuda")(*args)
    out.append({"case": "control_flow_on_device", "on_device": "GPU" in got.device,
                "max_err": float(np.abs(got.numpy() - _control_flow(*args).numpy()).max())})
    return out


def resident_results() -> dict:
    """A CUDA function's results stay on the device: passed to another CUDA call they are
    not copied (no upload, and no copy back), read they come back once, and when they die
    their buffers return to the device pool. Constants are uploaded once per program."""
    from numba import cuda

    from runtime.cuda import MEMORY
    f = tf.function(lambda x: tf.nn.relu(x * 2.0 - 1.0) + tf.constant([1.0, 2.0, 3.0]),
                    device="cuda")
    x = RNG.normal(size=(4, 3)).astype(np.float32)
    uploads, upload = [], cuda.to_device
    cuda.to_device = lambda *a, **k: uploads.append(1) or upload(*a, **k)
    try:
        y = f(x)                      # x and the constants go up
        first = len(uploads)
        z = f(y)                      # y is already there; the constants too
        second = len(uploads) - first
    finally:
        cuda.to_device = upload
    on_device = y.device.endswith("GPU:0") and y._host is None and z._host is None
    want_y = np.maximum(x * 2 - 1, 0) + [1, 2, 3]
    want_z = np.maximum(want_y * 2 - 1, 0) + [1, 2, 3]
    err = float(max(np.abs(y.numpy() - want_y).max(), np.abs(z.numpy() - want_z).max()))
    free = sum(len(v) for v in MEMORY._free.values())
    del y, z
    return {"case": "resident_results", "results_on_device": on_device, "max_err": err,
            "uploads_first_call": first, "uploads_second_call": second,
            "returned_to_pool": sum(len(v) for v in MEMORY._free.values()) - free}


def main():
    mode = sys.argv[1]
    if mode == "resident":
        for rec in resident():
            print(json.dumps(rec), flush=True)
        return
    names = sys.argv[2:] or list(CASES)
    for name in names:
        try:
            rec = simulate(name) if mode == "sim" else compile_ptx(name)
        except Exception as e:  # reported, so the parent test names the case
            rec = {"case": name, "error": f"{type(e).__name__}: {e}"[:2000]}
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
