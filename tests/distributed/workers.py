"""Programs the distributed tests run, in one process or as MPI ranks (`mpiexec -n N python
workers.py CASE single|multi OUT`); each rank writes OUT/rank<r>.json: what the case computed.

    fit     Keras compile/fit (shuffled), evaluate and predict under the strategy
    loop    a custom training loop: strategy.run, compute_average_loss, apply_gradients
    api     scope, variables, reduce, gather, distributed datasets, the step's IR
    backup  fit with BackupAndRestore; with KILL_EPOCH set, the last rank kills itself
            (SIGKILL) in that epoch's second batch
    timeout a rank that never joins: the others raise CollectiveTimeout
    buckets fit with a middle layer big enough for two gradient buckets
    progress an all-reduce left to the progress thread
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import numpy as np

import framework as tf
from framework import keras
from runtime import collective

CASE, KIND, OUT = sys.argv[1:4]  # KIND: "single" (MirroredStrategy) or "multi"
RNG = np.random.default_rng(0)
X = RNG.standard_normal((200, 10)).astype("f")
Y = ((X[:, 0] > 0).astype("int32") + (X[:, 1] * X[:, 2] > 0)).astype("int32")


def strategy(**kw):
    return tf.distribute.MirroredStrategy() if KIND == "single" else \
        tf.distribute.MultiWorkerMirroredStrategy(**kw)


def model(width=16):
    m = keras.Sequential([keras.layers.Dense(width, activation="relu"),
                          keras.layers.Dense(width, activation="relu"),
                          keras.layers.Dense(3)] if width > 16 else
                         [keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
    m.build((None, 10))
    init = np.random.default_rng(7)
    m.set_weights([init.standard_normal(w.shape).astype("f") * 0.3 for w in m.get_weights()])
    return m


def fit(s, width=16):
    with s.scope():
        m = model(width)
        m.compile(optimizer=keras.optimizers.Adam(0.01), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    np.random.seed(3)  # the shuffle order (rank 0's, on every worker)
    h = m.fit(X, Y, epochs=3, batch_size=64, verbose=0)
    return {"history": h.history, "weights": [w.tolist() for w in m.get_weights()],
            "evaluate": m.evaluate(X, Y, batch_size=50, verbose=0),
            "predict": m.predict(X[:37], batch_size=16, verbose=0).tolist(),
            "step_ir": m.train_function.ir("optimized").count("= all_reduce"),
            "fused_ir": m.train_function.ir("fused").count("= all_reduce"),
            "reduced": dict(collective.STATS)}


def buckets(s):
    """fit with 1.1 MB of gradients in the middle layer: two gradient buckets, the first
    summed while the first layer's gradients are computed."""
    return fit(s, width=520)


def progress(s):
    """An all-reduce started and left alone while the caller computes (here: sleeps, as a
    kernel call does, with the GIL free) completes without a wait: the progress thread."""
    p = collective.start([np.ones(1 << 20, "f")], s._group, "sum")
    time.sleep(0.5)
    in_flight = len(p.requests)
    (total,) = p.wait()
    return {"in_flight": in_flight, "total": float(total[0]), "size": total.size}


def loop(s):
    with s.scope():
        m = model()
        opt = keras.optimizers.SGD(0.1)
    xent = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    @tf.function
    def step(x, y):
        def replica(x, y):
            with tf.GradientTape() as tape:
                loss = tf.nn.compute_average_loss(xent(y, m(x)), global_batch_size=64)
            grads = tape.gradient(loss, m.trainable_variables)
            opt.apply_gradients(zip(grads, m.trainable_variables))
            return loss
        return s.reduce(tf.distribute.ReduceOp.SUM, s.run(replica, args=(x, y)))

    data = tf.data.Dataset.from_tensor_slices((X[:192], Y[:192])).batch(64)
    losses = [float(step(x, y)) for _ in range(2)
              for x, y in s.experimental_distribute_dataset(data)]
    return {"losses": losses, "weights": [w.tolist() for w in m.get_weights()]}


def api(s):
    rank, n = s.cluster_resolver.task_id, s.num_replicas_in_sync
    with s.scope():
        inside = tf.distribute.get_strategy() is s
        v = tf.Variable(np.full(3, rank + 1.0, "f"))  # every rank starts with rank 0's
    local = tf.constant(np.arange(4.0, dtype="f") + rank)
    shards = [b.numpy().tolist() for b in s.experimental_distribute_dataset(
        tf.data.Dataset.range(10).batch(5))]
    return {"rank": rank, "replicas": n, "inside": inside, "variable": v.numpy().tolist(),
            "sum": s.reduce("SUM", local).numpy().tolist(),
            "mean_axis": float(s.reduce("MEAN", local, axis=0)),
            "gather": s.gather(local[: rank + 1]).numpy().tolist(), "shards": shards,
            "outside": tf.distribute.get_strategy() is not s}


def backup(s):
    kill = int(os.environ.get("KILL_EPOCH", "-1"))
    rank, last = s.cluster_resolver.task_id, s.num_replicas_in_sync - 1

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch == kill and batch == 1 and rank == last:
                os.kill(os.getpid(), signal.SIGKILL)

    with s.scope():
        m = model()
        m.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    h = m.fit(X, Y, epochs=4, batch_size=64, verbose=0, shuffle=False, callbacks=[
        keras.callbacks.BackupAndRestore(os.path.join(OUT, "..", "backup")), Kill()])
    return {"history": h.history, "epochs": h.epoch,
            "weights": [w.tolist() for w in m.get_weights()],
            "left": os.listdir(os.path.join(OUT, "..", "backup"))}


def timeout(s):
    if s.cluster_resolver.task_id == 1:
        time.sleep(4)  # never joins the all-reduce below
        return {"slept": True}
    try:
        s.reduce("SUM", tf.constant(1.0))
    except Exception as e:  # noqa: BLE001  (the test reads its type and message)
        return {"error": type(e).__name__, "message": str(e)}
    return {"error": None}


if __name__ == "__main__":
    kw = {"communication_options": tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=1.5)} if CASE == "timeout" else {}
    s = strategy(**kw)
    out = globals()[CASE](s)
    rank = s.cluster_resolver.task_id
    with open(os.path.join(OUT, f"rank{rank}.json"), "w") as f:
        json.dump({"rank": rank, **out}, f)
    if CASE == "timeout":  # a collective left pending: leave without MPI's finalize
        os._exit(0)
