"""Inspecting traced programs: ``dump_ir`` and the ``KILN_DUMP_IR`` directory."""

from __future__ import annotations

import hashlib
import os
import re
import threading

from runtime.files import write_atomic

from .host_calls import (  # noqa: F401  (tf.debugging's asserts)
    assert_all_finite,
    assert_equal,
    assert_greater,
    assert_greater_equal,
    assert_less,
    assert_less_equal,
    assert_non_negative,
    assert_none_equal,
    assert_rank,
    assert_type,
    check_numerics,
    disable_check_numerics,
    enable_check_numerics,
)

DUMP_ENV = "KILN_DUMP_IR"


def dump_ir(f, *args, stage: str = "traced", **kwargs) -> str:
    """The IR of ``f`` (a ``@function`` or a ConcreteFunction) for these arguments.

    Example:
        >>> print(framework.debugging.dump_ir(f, framework.ones([2, 3])))
    """
    from .concrete import ConcreteFunction
    from .function import Function
    if isinstance(f, ConcreteFunction):
        return f.ir(stage)
    if not isinstance(f, Function):
        raise TypeError(f"dump_ir: expected a @function or ConcreteFunction; received "
                        f"{type(f).__name__}")
    return f.get_concrete_function(*args, **kwargs).ir(stage)


def dump_name(cf) -> str:
    """``<function>-<signature>``: readable, short, unique per signature."""
    sig = "_".join(re.sub(r"[^\w]+", "-", str(p.type)).strip("-") for p in cf.graph.params
                   [:sum(1 for s in cf.specs if s is not None)])
    name = re.sub(r"[^\w.]+", "_", cf.name)
    if len(sig) > 60:
        sig = sig[:40] + "-" + hashlib.sha1(sig.encode()).hexdigest()[:10]
    return f"{name}-{sig}" if sig else name


def stage_dumper(cf):
    """With ``KILN_DUMP_IR`` set, a function writing ``<name>-<sig>.<suffix>`` files for the
    compiler's stages (``03-after-layout.ir``, ``kernels.py``); else None."""
    folder = os.environ.get(DUMP_ENV)
    if not folder:
        return None
    os.makedirs(folder, exist_ok=True)
    base = os.path.join(folder, dump_name(cf))
    return lambda suffix, text: write_atomic(f"{base}.{suffix}", text)


def maybe_dump(cf) -> None:
    """With ``KILN_DUMP_IR`` set, write the traced stage now (the compiler's stages follow
    when the function compiles)."""
    dump = stage_dumper(cf)
    if dump is not None:
        dump("traced.ir", cf.ir("traced"))


# -- profiling -------------------------------------------------------------------------------------

class _Local(threading.local):
    profiles: tuple = ()   # profile() blocks of this thread, innermost last


_local = _Local()


def active_profile() -> dict | None:
    """The records of the innermost ``profile()`` block of this thread, or None."""
    stack = _local.profiles
    return stack[-1].records if stack else None


class _Records(dict):
    """Per-step totals by name, and ``events``: every step's (name, kind, start, end,
    thread) in order, for ``write_trace``."""

    def __init__(self):
        super().__init__()
        self.events: list = []


class Profile:
    """Per-kernel timings of compiled ``@function`` calls: name, calls, total time, bytes
    moved and GB/s, FLOPs and GFLOP/s. Use as ``profile(f, *args)`` or as a context manager;
    ``print(p)`` shows the table, ``p.rows`` the numbers."""

    def __init__(self):
        self.records = _Records()

    def __enter__(self):
        _local.profiles = _local.profiles + (self,)
        return self

    def __exit__(self, *exc):
        _local.profiles = tuple(p for p in _local.profiles if p is not self)
        return False

    def write_trace(self, path) -> None:
        """The profiled steps as a timeline in the Chrome trace-event format (loads in
        Perfetto and chrome://tracing): one event a kernel or library call, one row per
        calling thread."""
        import json
        import os

        from runtime.files import write_atomic
        events = self.records.events
        start = min((e[2] for e in events), default=0.0)
        trace = [{"name": name, "cat": kind, "ph": "X", "pid": os.getpid(), "tid": tid,
                  "ts": round((t0 - start) * 1e6, 3), "dur": round((t1 - t0) * 1e6, 3)}
                 for name, kind, t0, t1, tid in events]
        write_atomic(os.fspath(path), json.dumps({"traceEvents": trace,
                                                  "displayTimeUnit": "ms"}))

    @property
    def rows(self) -> list[dict]:
        total = sum(r["seconds"] for r in self.records.values()) or 1.0
        out = []
        for name, r in sorted(self.records.items(), key=lambda kv: -kv[1]["seconds"]):
            sec = r["seconds"]
            out.append({"name": name, "kind": r["kind"], "calls": r["calls"], "seconds": sec,
                        "bytes": r["bytes"], "flops": r["flops"],
                        "gb_per_s": r["bytes"] / sec / 1e9 if sec else 0.0,
                        "gflop_per_s": r["flops"] / sec / 1e9 if sec else 0.0,
                        "share": sec / total})
        return out

    def __str__(self) -> str:
        head = (f"{'kernel':<44} {'kind':<11} {'calls':>5} {'total ms':>9} {'share':>6} "
                f"{'GB/s':>7} {'GFLOP/s':>8}")
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r['name'][:44]:<44} {r['kind']:<11} {r['calls']:>5} "
                         f"{r['seconds'] * 1e3:>9.3f} {r['share']:>6.1%} "
                         f"{r['gb_per_s']:>7.2f} {r['gflop_per_s']:>8.2f}")
        return "\n".join(lines)


def profile(f=None, *args, **kwargs) -> Profile:
    """Profile compiled kernels.

    ``profile(f, *args)`` calls ``f(*args)`` once to compile and warm up, then once more
    under the profiler, and returns the Profile; ``with profile() as p:`` collects every
    compiled call inside the block (a function's first call also includes compiling its
    kernels).

    Example:
        >>> p = framework.debugging.profile(step, x, y)
        >>> print(p)
    """
    p = Profile()
    if f is None:
        return p
    f(*args, **kwargs)  # compile and warm up outside the measurement
    with p:
        f(*args, **kwargs)
    return p


def load_ir(text: str):
    """Compile IR text (for example, a dump edited by hand) and return a callable that takes
    numpy arrays or tensors and returns a tuple of tensors.

    Example:
        >>> f = framework.debugging.load_ir(open("kiln-ir/f-f32-3.traced.ir").read())
        >>> f(np.ones(3, np.float32))
    """
    import numpy as np

    from compiler.codegen.compile import compile_graph
    from compiler.interpret import bind_dims
    from compiler.parser import parse
    from compiler.verify import verify
    from runtime.program import execute

    from .tensor import Tensor
    graph = verify(parse(text))
    compiled = compile_graph(graph)

    def call(*args):
        arrays = [np.asarray(a, dtype=p.type.dtype.np) for a, p in zip(args, graph.params)]
        if len(arrays) != len(graph.params):
            from compiler.errors import SignatureError
            raise SignatureError(f"@{graph.name}", f"expected {len(graph.params)} arguments; "
                                 f"received {len(args)}")
        env = bind_dims(graph.params, arrays)
        return tuple(Tensor(a) for a in execute(compiled.program, arrays, env=env,
                                                profile=active_profile()))

    call.graph, call.compiled = graph, compiled
    return call
