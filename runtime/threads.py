"""The thread pools that native code's parallel loops run on: numba's (TBB's where TBB is
installed, runtime/env.py), and Kiln's own (runtime/pool.py: workers that stay awake
between a step's kernels), which runs every loop unless ``KILN_POOL=numba`` hands them on.
numba's also runs numba's own kernels, sets the thread count (``numba.set_num_threads``)
and serves program files compiled before Kiln had its pool.

A parallel loop is a worker function of numba's gufunc shape, ``worker(args, dims, steps,
data)``, handed to ``kiln_parallel_for`` (``numba_parallel_for``'s signature) with the range
[lo, hi) encoded as one "array" whose base is ``lo`` and whose step is 1: each call of the
worker gets the first index of its chunk in ``args[0]`` and the chunk's length in
``dims[0]``, and ``data`` points at the loop's context (the kernel's arguments). The caller
waits only for the chunks other threads took, never for a thread that the OS has not
scheduled yet: with a competing process on one of two cores, a libgomp team (whose closing
barrier every thread must reach) made two threads slower than one (bench/README.md, "A busy
machine"). The loops run on Kiln's pool (runtime/pool.py says why) where it runs (x86-64
Linux), else on numba's.

Helpers here build the IR of both sides (``chunk_range`` and ``thread_id`` in the worker,
``parallel_for`` at the call); ``parallel_available`` starts the pools, whose entry points
the loader binds.
"""

from __future__ import annotations

import os
import sys
import threading

from llvmlite import ir

from . import env

I8P, I32, I64 = ir.IntType(8).as_pointer(), ir.IntType(32), ir.IntType(64)
WORKER = ir.FunctionType(ir.VoidType(), [I8P.as_pointer(), I64.as_pointer(),
                                         I64.as_pointer(), I8P])
_lock = threading.Lock()
_started: bool | None = None
_forked = False  # this process was forked after the pool started


def _after_fork_in_child() -> None:
    # A pool's threads do not survive fork (numba's OpenMP layer aborts in such a child):
    # a forked child runs native kernels serially.
    global _forked
    _forked = True
    if "runtime.pool" in sys.modules:
        sys.modules["runtime.pool"].after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def forked() -> bool:
    return _forked


def pool_size() -> int:
    """The pool's threads: ``NUMBA_NUM_THREADS``, else the CPUs this process may run on
    (numba's own default, computed without importing numba)."""
    try:
        return max(1, int(os.environ["NUMBA_NUM_THREADS"]))
    except (KeyError, ValueError):
        pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _tbb_pool():
    """numba's TBB pool (its ``tbbpool`` extension, which needs only libtbb), loaded
    without importing numba (0.3 s): under its own module name, so numba, when a program
    does import it, finds the same pool already there."""
    import importlib.machinery
    import importlib.util
    name = "numba.np.ufunc.tbbpool"
    if name in sys.modules:
        return sys.modules[name]
    if "NUMBA_THREADING_LAYER" in os.environ or not env.APPLIED.get("libtbb"):
        return None  # the user chose a layer, or TBB is missing: numba decides
    spec = importlib.util.find_spec("numba")  # locates, does not import
    if spec is None or spec.origin is None:
        return None
    folder = os.path.join(os.path.dirname(spec.origin), "np", "ufunc")
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(folder, "tbbpool" + suffix)
        if os.path.exists(path):
            ext = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(ext)
            ext.loader.exec_module(module)
            sys.modules[name] = module
            return module
    return None


def parallel_available() -> bool:
    """Whether the thread pool runs (starting it): its ``numba_parallel_for``,
    ``get_num_threads`` and ``get_thread_id`` are then symbols that native modules
    resolve."""
    global _started
    if _started is None:
        with _lock:
            if _started is None:
                _started = _start()
    return _started


def _start() -> bool:
    import ctypes
    choice = os.environ.get("KILN_POOL", "kiln") or "kiln"
    if choice not in ("kiln", "numba"):
        raise ValueError(f"KILN_POOL must be kiln (the default) or numba; received {choice!r}")

    import llvmlite.binding as llvm
    try:
        pool = _tbb_pool()
    except ImportError:
        pool = None
    if pool is None:  # numba's own choice of layer (OpenMP, its workqueue)
        try:
            from numba.np.ufunc import parallel
            parallel._launch_threads()
        except Exception:  # no layer loads: kernels run their serial variants
            return False
    else:
        ctypes.CFUNCTYPE(None, ctypes.c_int)(pool.launch_threads)(pool_size())
        for symbol, attr in (("numba_parallel_for", "parallel_for"),
                             ("get_num_threads", "get_num_threads"),
                             ("get_thread_id", "get_thread_id")):
            llvm.add_symbol(symbol, getattr(pool, attr))
    from . import pool as kilns
    ours = kilns.start(pool_size())
    for symbol, theirs in (("kiln_parallel_for", "numba_parallel_for"),
                           ("kiln_thread_id", "get_thread_id")):
        llvm.add_symbol(symbol, ours[symbol] if ours else llvm.address_of_symbol(theirs))
    if ours and choice == "numba":
        kilns.delegate(True)
    return True


def declare(module: ir.Module, name: str, ftype: ir.FunctionType) -> ir.Function:
    fn = module.globals.get(name)
    return fn if fn is not None else ir.Function(module, ftype, name=name)


def chunk_range(b: ir.IRBuilder, worker: ir.Function) -> tuple[ir.Value, ir.Value]:
    """In a worker: the first index of its chunk and the chunk's length."""
    args, dims = worker.args[:2]
    return b.ptrtoint(b.load(args), I64), b.load(dims)


def _range(b: ir.IRBuilder, lo: ir.Value, hi: ir.Value):
    """The (args, dims, steps) a worker reads its chunk [lo, hi) from."""
    entry = b.function.entry_basic_block
    at = ir.IRBuilder(entry)
    if entry.terminator is not None:
        at.position_before(entry.terminator)
    else:
        at.position_at_start(entry)
    base, count, step = at.alloca(I8P), at.alloca(I64), at.alloca(I64)
    b.store(b.inttoptr(lo, I8P), base)
    b.store(b.sub(hi, lo), count)
    b.store(I64(1), step)
    return base, count, step


def run_chunk(b: ir.IRBuilder, worker: ir.Function, data: ir.Value, lo: ir.Value,
              hi: ir.Value) -> None:
    """Call ``worker`` over all of [lo, hi) on this thread."""
    b.call(worker, [*_range(b, lo, hi), data])


def thread_id(b: ir.IRBuilder) -> ir.Value:
    """In a worker: the index (i64) of the pool's thread running it, 0 on the caller's."""
    fn = declare(b.module, "kiln_thread_id", ir.FunctionType(I32, []))
    return b.zext(b.call(fn, []), I64)


def parallel_for(b: ir.IRBuilder, worker: ir.Function, data: ir.Value, lo: ir.Value,
                 hi: ir.Value) -> None:
    """Call ``worker`` over chunks of [lo, hi) on the pool's threads (numba's
    ``get_num_threads()`` of them: ``numba.set_num_threads`` sets it per calling thread),
    and return when every chunk is done."""
    module = b.module
    run = declare(module, "kiln_parallel_for", ir.FunctionType(
        ir.VoidType(), [I8P, I8P.as_pointer(), I64.as_pointer(), I64.as_pointer(), I8P,
                        I64, I64, I32]))
    threads = declare(module, "get_num_threads", ir.FunctionType(I32, []))
    b.call(run, [b.bitcast(worker, I8P), *_range(b, lo, hi), data, I64(0), I64(1),
                 b.call(threads, [])])
