"""The thread pool that native kernels' parallel loops and the GEMM run on
(runtime/threads.py): numba's TBB pool, loaded without importing numba, so a program on the
native backend never pays numba's import; ``numba.set_num_threads`` still sets its threads."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys
import numpy as np
import framework as tf
from runtime import threads
rng = np.random.default_rng(0)
x = rng.standard_normal((1000, 700)).astype(np.float32)
w = rng.standard_normal((700, 300)).astype(np.float32)
f = tf.function(lambda x, w: tf.nn.relu(tf.matmul(x, w)) + tf.reduce_sum(x, 1, keepdims=True))
got = f(x, w).numpy()
want = np.maximum(x.astype(np.float64) @ w, 0) + x.sum(1, keepdims=True)
ok = bool(np.allclose(got, want, atol=2e-3))
numba_loaded = "numba" in sys.modules
import numba
numba.set_num_threads(1)
one = f(x, w).numpy()
print(json.dumps({"ok": ok, "numba_loaded": numba_loaded, "started": threads.parallel_available(),
                  "one_thread_same": bool(np.allclose(one, got, atol=2e-3)),
                  "layer": numba.threading_layer()}))
"""


def _child(extra_env=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(extra_env or {}))
    env.pop("KILN_BACKEND", None)
    r = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_native_programs_run_on_the_pool_without_importing_numba():
    out = _child()
    assert out["ok"] and out["started"] and out["one_thread_same"]
    assert not out["numba_loaded"]
    assert out["layer"] == "tbb"  # numba, imported later, finds the same pool


def test_a_threading_layer_the_user_chose_is_numbas_to_load():
    out = _child({"NUMBA_THREADING_LAYER": "omp"})
    assert out["ok"] and out["started"] and out["one_thread_same"]
    assert out["layer"] == "omp"


def test_float64_kernels_find_libm_in_a_fresh_process(tmp_path):
    # float64 tanh and erf are libm calls, which LLVM finds only once libm is loaded for it
    # (numba, when imported first, had done that; a fresh process had not)
    code = ("import numpy as np, scipy.special, sys, framework as tf\n"
            "x = np.linspace(-2, 2, 7)\n"
            "y = tf.function(lambda x: tf.tanh(x) + tf.math.erf(x))(x).numpy()\n"
            "assert 'numba' not in sys.modules\n"
            "print(abs(y - np.tanh(x) - scipy.special.erf(x)).max())\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), KILN_CACHE_DIR=str(tmp_path))
    env.pop("KILN_BACKEND", None)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert float(r.stdout) < 1e-15
