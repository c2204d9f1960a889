"""Kiln's thread pool (runtime/pool.py): every index of a loop runs once, on the caller and
the workers, from one Python thread or several at once, after the workers have slept, with
the thread count numba.set_num_threads gives, and in a forked child; the workers keep off
the caller's CPU."""

from __future__ import annotations

import ctypes
import os
import pathlib
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from llvmlite import ir

from runtime import pool
from runtime.native import NativeModule
from runtime.threads import (
    WORKER,
    chunk_range,
    parallel_available,
    parallel_for,
    pool_size,
    thread_id,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
I32, I64 = ir.IntType(32), ir.IntType(64)
pytestmark = pytest.mark.skipif(not (pool.supported() and parallel_available()),
                                reason="Kiln's pool runs on x86-64 Linux")


@pytest.fixture(autouse=True, scope="module")
def on_kilns_pool():
    """These loops on Kiln's pool (the default; KILN_POOL=numba hands them to numba's)."""
    before = pool.delegated
    pool.delegate(False)
    yield
    pool.delegate(before)


def _module():
    """loop(lo, hi, ctx): for each i in [lo, hi) on the pool, counts[i] += 1 (atomic) and
    who[i] = the thread's index, each index taking ctx.delay time-stamp cycles."""
    m = ir.Module("pool_test")
    w = ir.Function(m, WORKER, "body")
    b = ir.IRBuilder(w.append_basic_block("e"))
    first, count = chunk_range(b, w)
    ctx = b.bitcast(w.args[3], I64.as_pointer())
    counts, who = (b.inttoptr(b.load(b.gep(ctx, [I64(j)])), I64.as_pointer()) for j in (0, 1))
    delay = b.load(b.gep(ctx, [I64(2)]))
    clock = ir.Function(m, ir.FunctionType(I64, []), "llvm.readcyclecounter")
    tid = thread_id(b)
    i = b.alloca(I64)
    b.store(first, i)
    head, body, wait, done = (w.append_basic_block(x) for x in ("h", "b", "w", "d"))
    b.branch(head)
    b.position_at_end(head)
    at = b.load(i)
    b.cbranch(b.icmp_signed("<", at, b.add(first, count)), body, done)
    b.position_at_end(body)
    b.atomic_rmw("add", b.gep(counts, [at]), I64(1), "seq_cst")
    b.store(tid, b.gep(who, [at]))
    start = b.call(clock, [])
    b.branch(wait)
    b.position_at_end(wait)
    b.store(b.add(at, I64(1)), i)
    b.cbranch(b.icmp_unsigned("<", b.sub(b.call(clock, []), start), delay), wait, head)
    b.position_at_end(done)
    b.ret_void()
    f = ir.Function(m, ir.FunctionType(ir.VoidType(), [I64, I64, I64.as_pointer()]), "loop")
    entry, body = f.append_basic_block("e"), f.append_basic_block("b")
    ir.IRBuilder(entry).branch(body)  # (parallel_for puts its allocas in the entry block)
    b = ir.IRBuilder(body)
    parallel_for(b, w, b.bitcast(f.args[2], ir.IntType(8).as_pointer()), *f.args[:2])
    b.ret_void()
    return NativeModule(str(m), level=1)


_LOOP = None


def run(n: int, delay: int = 0, lo: int = 0):
    """(counts, who) of a loop over [lo, lo + n)."""
    global _LOOP
    if _LOOP is None:
        module = _module()
        _LOOP = (module, ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64,
                                          ctypes.c_void_p)(module.address("loop")))
    counts, who = np.zeros(lo + n, np.int64), np.full(lo + n, -1, np.int64)
    ctx = np.array([counts.ctypes.data, who.ctypes.data, delay], np.int64)
    _LOOP[1](lo, lo + n, ctx.ctypes.data)
    return counts[lo:], who[lo:]


def test_every_index_runs_once_on_the_callers_and_the_workers_threads():
    seen = set()
    for n in (1, 2, 3, 7, 8, 9, 64, 1000, 12345):
        for lo in (0, 5):
            counts, who = run(n, lo=lo)
            assert (counts == 1).all(), (n, lo)
            assert ((who >= 0) & (who < pool_size())).all()
    for _ in range(50):  # chunks that take ~30 us each: the workers take some
        counts, who = run(16, delay=100_000)
        assert (counts == 1).all()
        seen |= set(who.tolist())
    assert seen == set(range(pool_size()))


def test_loops_from_several_python_threads_at_once():
    errors = []

    def many():
        for k in range(300):
            counts, who = run(1 + k % 40)
            if not (counts == 1).all():
                errors.append(counts)
    threads = [threading.Thread(target=many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_loops_run_after_the_workers_went_to_sleep():
    for rest in (0.0, 0.002, 0.02):
        time.sleep(rest)
        counts, _ = run(100, delay=10_000)
        assert (counts == 1).all()


def _masks() -> dict[int, set[int]]:
    """Each thread of this process: the CPUs it may run on."""
    masks = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            masks[int(tid)] = os.sched_getaffinity(int(tid))
        except OSError:  # (a thread that ended meanwhile)
            pass
    return masks


def test_workers_keep_off_the_callers_cpu():
    """Linux at times wakes a worker on its waker's CPU, beside an idle one: the two then
    ran in turns. A caller found on another CPU than before moves the workers off it."""
    allowed, threads = os.sched_getaffinity(0), pool_size()
    if len(allowed) < 2 or threads < 2:
        pytest.skip("one CPU")
    me = threading.get_native_id()
    first, second = sorted(allowed)[:2]
    workers = None
    try:
        for cpu in (first, second, first):
            os.sched_setaffinity(0, {cpu})  # (this thread only)
            counts, _ = run(64)
            assert (counts == 1).all()
            off = {t for t, m in _masks().items() if t != me and m == allowed - {cpu}}
            assert len(off) == threads - 1, (cpu, _masks())
            assert workers is None or off == workers  # the same threads each time
            workers = off
    finally:
        os.sched_setaffinity(0, allowed)


CHILD = r"""
import os, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {here!r})
import numba
from test_pool import run
from runtime.threads import pool_size
counts, who = run(64, delay=100_000)
assert (counts == 1).all()
numba.set_num_threads(1)  # this thread's loops: on it alone
counts, who = run(64, delay=10_000)
assert (counts == 1).all() and (who == 0).all(), who
numba.set_num_threads(pool_size())
pid = os.fork()
if pid == 0:  # the workers did not survive the fork: loops run on the child's thread
    counts, who = run(64, delay=10_000)
    os._exit(0 if (counts == 1).all() and (who == 0).all() else 3)
_, status = os.waitpid(pid, 0)
print("child", os.waitstatus_to_exitcode(status))
"""


def test_thread_count_from_numba_and_a_forked_child():
    code = CHILD.format(root=str(ROOT), here=str(pathlib.Path(__file__).parent))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT), KILN_POOL="kiln"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().endswith("child 0"), r.stdout


def test_kiln_pool_names_the_pool_that_runs_the_loops():
    code = (f"import sys; sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r}); "
            "from test_pool import run; from runtime import pool; "
            "counts, _ = run(64, delay=10_000); print(bool((counts == 1).all()), pool.delegated)")
    for choice, delegated in (("numba", True), ("kiln", False), ("", False), ("tbb", None)):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT),
                                                 KILN_POOL=choice))
        if delegated is None:
            assert r.returncode != 0 and "KILN_POOL must be kiln (the default) or numba; " \
                "received 'tbb'" in r.stderr, r.stderr[-2000:]
        else:
            assert r.returncode == 0, r.stderr[-3000:]
            assert r.stdout.split() == ["True", str(delegated)], r.stdout
