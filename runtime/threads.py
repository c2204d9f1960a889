"""The thread pool that native code's parallel loops run on: numba's ``parallel_for``,
over its threading layer (TBB's work-stealing scheduler where TBB is installed, runtime/env.py).

A parallel loop is a worker function of numba's gufunc shape, ``worker(args, dims, steps,
data)``, handed to ``numba_parallel_for`` with the range [lo, hi) encoded as one
"array" whose base is ``lo`` and whose step is 1: each call of the worker gets the first
index of its chunk in ``args[0]`` and the chunk's length in ``dims[0]``, and ``data`` points
at the loop's context (the kernel's arguments). TBB splits the range into chunks that idle
threads steal, and the caller waits only for the chunks that were taken, never for a thread
that the OS has not scheduled yet: with a competing process on one of two cores, a
libgomp team (whose closing barrier every thread must reach) made two threads slower than
one (bench/README.md, "A busy machine").

Helpers here build the IR of both sides (``chunk_range`` in the worker, ``parallel_for`` at
the call); ``parallel_available`` starts numba's pool, whose entry points the loader binds.
"""

from __future__ import annotations

import os

from llvmlite import ir

I8P, I32, I64 = ir.IntType(8).as_pointer(), ir.IntType(32), ir.IntType(64)
WORKER = ir.FunctionType(ir.VoidType(), [I8P.as_pointer(), I64.as_pointer(),
                                         I64.as_pointer(), I8P])
_started: bool | None = None
_forked = False  # this process was forked after the pool started


def _after_fork_in_child() -> None:
    # A pool's threads do not survive fork (numba's OpenMP layer aborts in such a child):
    # a forked child runs native kernels serially.
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def forked() -> bool:
    return _forked


def parallel_available() -> bool:
    """Whether numba's thread pool runs (starting it): its ``numba_parallel_for`` and
    ``get_num_threads`` are then symbols that native modules resolve."""
    global _started
    if _started is None:
        try:
            from numba.np.ufunc import parallel
            parallel._launch_threads()
            _started = True
        except Exception:  # no threading layer loads: kernels run their serial variants
            _started = False
    return _started


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


def parallel_for(b: ir.IRBuilder, worker: ir.Function, data: ir.Value, lo: ir.Value,
                 hi: ir.Value) -> None:
    """Call ``worker`` over chunks of [lo, hi) on the pool's threads (numba's
    ``get_num_threads()`` of them: ``numba.set_num_threads`` sets it per calling thread),
    and return when every chunk is done."""
    module = b.module
    run = declare(module, "numba_parallel_for", ir.FunctionType(
        ir.VoidType(), [I8P, I8P.as_pointer(), I64.as_pointer(), I64.as_pointer(), I8P,
                        I64, I64, I32]))
    threads = declare(module, "get_num_threads", ir.FunctionType(I32, []))
    b.call(run, [b.bitcast(worker, I8P), *_range(b, lo, hi), data, I64(0), I64(1),
                 b.call(threads, [])])
