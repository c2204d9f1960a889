"""Data-parallel training on 1 and 2 MPI ranks, one thread each (JSON lines): the MLP and the
CNN of bench/run.py trained with Keras `fit` under MultiWorkerMirroredStrategy at a fixed
global batch, the time of a step (an epoch's time over its steps), the scaling efficiency
(throughput on N ranks over N times one rank's), the all-reduce's share of the step (the
gradient buffer's Allreduce timed alone, on the same ranks), each rank's time in its
collectives' steps (starting them, and waiting for what has not arrived), and the same on
2 ranks without the collectives pass (each all-reduce then starts where the program made
it and is waited for at once: no overlap with the backward pass) and with the progress
thread forced on (KILN_MPI_PROGRESS=thread; "auto" leaves it off where the ranks' threads
take every core, as here).

    .venv/bin/python bench/distributed.py          # runs 1 and 2 ranks with mpiexec
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 12


def worker(model_name: str) -> None:
    import peers
    import run

    import framework as tf
    from runtime import collective
    s = tf.distribute.MultiWorkerMirroredStrategy()
    (params, x, y), _ = run.train_inputs(model_name, reference=False)
    x, y = np.concatenate([x] * STEPS), np.concatenate([y] * STEPS)
    batch = len(x) // STEPS
    with s.scope():
        build = peers.keras_mlp if model_name == "mlp" else peers.keras_cnn
        m = build(tf.keras, params)
        m.compile(optimizer=tf.keras.optimizers.Adam(1e-3),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)  # compile, warm up
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        m.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        times.append((time.perf_counter() - t0) / STEPS)
    with tf.debugging.profile() as prof:  # each rank's time in its collectives' steps
        m.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    mine = sum(r["seconds"] for r in prof.rows if r["kind"] in ("collective", "wait"))
    waits = collective.all_gather(np.array([mine / STEPS * 1e3]), s._group)
    grads = [np.ones(tuple(v.shape), "f") for v in m.trainable_variables]
    reduce_s = []
    for _ in range(20):
        t0 = time.perf_counter()
        collective.all_reduce(grads, s._group, "sum")
        reduce_s.append(time.perf_counter() - t0)
    if s.is_chief:
        print(json.dumps({"workload": f"{model_name}_train_step_dp", "ranks":
                          s.num_replicas_in_sync, "global_batch": batch,
                          "step_ms": round(float(np.median(times)) * 1e3, 3),
                          "allreduce_ms": round(float(np.median(reduce_s)) * 1e3, 3),
                          "in_collectives_ms": [round(float(w), 3) for w in waits],
                          "collectives_pass": "collectives" not in os.environ.get(
                              "KILN_DISABLE_PASSES", ""),
                          "progress": os.environ.get("KILN_MPI_PROGRESS", "auto"),
                          "gradient_mb": round(sum(g.nbytes for g in grads) / 2**20, 2),
                          "load": os.getloadavg()[0]}), flush=True)


def main() -> None:
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    for model_name in ("mlp", "cnn"):
        rows = {}
        for ranks, variant in ((1, {}), (2, {}), (2, {"KILN_DISABLE_PASSES": "collectives"}),
                               (2, {"KILN_MPI_PROGRESS": "thread"})):
            out = subprocess.run([mpiexec, "-n", str(ranks), sys.executable, __file__,
                                  model_name], capture_output=True, text=True, timeout=900,
                                 env={**env, **variant})
            line = [x for x in out.stdout.splitlines() if x.startswith("{")]
            if out.returncode or not line:
                print(json.dumps({"workload": f"{model_name}_train_step_dp", "ranks": ranks,
                                  "status": "error: " + out.stderr.strip()[-300:]}))
                continue
            rec = json.loads(line[-1])
            rows.setdefault(ranks, rec)
            if 1 in rows and ranks > 1:
                rec["speedup"] = round(rows[1]["step_ms"] / rec["step_ms"], 3)
                rec["scaling_efficiency"] = round(rec["speedup"] / ranks, 3)
                rec["allreduce_share"] = round(rec["allreduce_ms"] / rec["step_ms"], 3)
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    if len(sys.argv) > 1:
        worker(sys.argv[1])
    else:
        main()
