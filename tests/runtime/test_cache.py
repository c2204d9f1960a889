"""The compile cache across processes: a second process compiles nothing, damaged entries
are recompiled, concurrent processes filling a cold cache are safe, KILN_CACHE=0 writes
nothing. Counted with numba's cache statistics, never timed."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROGRAM = """
import json, sys
import numpy as np
import framework as tf
from runtime.jit import cache_stats

@tf.function
def f(x, w):  # the product is large enough for Kiln's own GEMM (a parallel function)
    return tf.nn.softmax(x * 2.0) + tf.reduce_sum(x, 0) + tf.matmul(x, w)

x = np.linspace(-1, 1, 64 * 96, dtype=np.float32).reshape(64, 96)
w = np.cos(np.arange(96 * 96, dtype=np.float32)).reshape(96, 96)
want = tf.nn.softmax(x * 2.0).numpy() + x.sum(0) + x @ w
ok = bool(np.allclose(f(x, w).numpy(), want, rtol=1e-4, atol=1e-4))
module = f.get_concrete_function(x, w).compiled().program.module
print(json.dumps(dict(ok=ok, **cache_stats(module))))
"""


def run(tmp_path, cache, extra_env=None, n=1):
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    env = dict(os.environ, PYTHONPATH=str(ROOT), KILN_CACHE_DIR=str(cache), KILN_BACKEND="numba",
               **(extra_env or {}))  # (numba's cache; the native one: test_native.py)
    env.pop("KILN_DUMP_IR", None)
    procs = [subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out if n > 1 else out[0]


def test_second_process_compiles_nothing(tmp_path):
    cache = tmp_path / "cache"
    first = run(tmp_path, cache)
    assert first["ok"] and first["misses"] >= 1 and first["hits"] == 0
    second = run(tmp_path, cache)
    assert second["ok"] and second["misses"] == 0 and second["hits"] >= 1


def test_damaged_entries_are_recompiled(tmp_path):
    cache = tmp_path / "cache"
    run(tmp_path, cache)
    numba_files = list((cache / "__pycache__").iterdir())
    assert numba_files
    for f in numba_files:  # truncate numba's index and machine code
        f.write_bytes(f.read_bytes()[:20])
    assert run(tmp_path, cache)["ok"]
    (source,) = cache.glob("kiln_*.py")
    source.write_text(source.read_text()[:100])  # a truncated generated module
    assert run(tmp_path, cache)["ok"]
    healthy = run(tmp_path, cache)  # and the cache is whole again
    assert healthy["ok"] and healthy["misses"] == 0


def test_concurrent_processes_fill_a_cold_cache_safely(tmp_path):
    cache = tmp_path / "cache"
    results = run(tmp_path, cache, n=4)
    assert all(r["ok"] for r in results)
    assert not [p for p in cache.rglob("*") if ".tmp-" in p.name]  # no half-written files
    after = run(tmp_path, cache)
    assert after["ok"] and after["misses"] == 0


def test_cache_disabled_writes_nothing(tmp_path):
    cache = tmp_path / "cache"
    r = run(tmp_path, cache, {"KILN_CACHE": "0"})
    assert r["ok"]
    assert not any(cache.rglob("*.py"))


@pytest.mark.parametrize("dependency", ["mathlib", "gemm"])
def test_generated_modules_depend_on_their_imports(monkeypatch, dependency):
    """numba's cache checks only a module's own file; kernels inline mathlib's and gemm's
    functions, so the module source carries their hash and changes (recompiling) with them."""
    import importlib
    import inspect

    from compiler.codegen import render_cpu
    module = importlib.import_module(f"runtime.{dependency}")
    before = render_cpu.module_source([], set(), "0")
    real = inspect.getsource
    monkeypatch.setattr(inspect, "getsource",
                        lambda obj: "changed" if obj is module else real(obj))
    assert render_cpu.module_source([], set(), "0") != before


def test_unwritable_cache_folder_still_runs(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    r = run(tmp_path, blocker / "cache")
    assert r["ok"]


@pytest.mark.parametrize("mode", [0o777, 0o770])
def test_a_folder_others_may_write_is_not_trusted(tmp_path, mode):
    """numba's index files are pickles: a cache folder another user could plant files in is
    not used (kernels stay in memory, with a warning), as ssh refuses such key folders."""
    cache = tmp_path / "shared"
    cache.mkdir()
    cache.chmod(mode)
    r = run(tmp_path, cache)
    assert r["ok"] and r["hits"] == 0 and not list(cache.iterdir())  # compiled in memory
    cache.chmod(0o700)
    assert run(tmp_path, cache)["misses"] >= 1 and list(cache.glob("kiln_*.py"))
