"""The functions of ``map``, ``filter`` and friends, as tf.data runs them: traced once per
element shape into a compiled function (``@function``: its kernels, no Python per op), or,
when the function cannot be traced (it reads values in Python, takes text), called eagerly.
With ``num_parallel_calls`` the calls run on a pool of threads (a compiled call releases
the GIL), in order unless ``deterministic=False``. A map followed by ``batch`` runs once a
batch where the traced function is elementwise over its element (``batchable``)."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from .. import nest
from .elements import is_text, to_numpy, to_tensors

AUTOTUNE = -1
TRIAL = 32  # calls timed on one thread, then on the pool, by AUTOTUNE


class ElementFunction:
    """``fn`` applied to an element (a tuple element is passed unpacked, as tf.data)."""

    def __init__(self, fn, what: str):
        if not callable(fn):
            raise TypeError(f"Dataset.{what}: expected a callable; received {fn!r:.60}")
        self.fn, self.what = fn, what
        self._compiled = None
        self._eager = False
        self._lock = threading.Lock()

    def _call(self, fn, element):
        t = to_tensors(element)
        return fn(*t) if isinstance(t, tuple) else fn(t)

    def __call__(self, element):
        """The function's result on ``element``, as numpy."""
        if not self._eager and not any(is_text(a) for a in nest.flatten(element)):
            compiled = self._traced()
            try:
                out = self._call(compiled, element)
            except Exception:  # it needs Python values: eagerly from now on (an error in
                self._eager = True  # the data itself is raised by the eager call)
            else:
                return nest.map_structure(to_numpy, out)
        return nest.map_structure(to_numpy, self._call(self.fn, element))

    def batched(self, element):
        """The function over whole batches of elements like ``element``, when the traced
        function allows it (``batchable``), else None. Traced once per element shape."""
        if self._eager or any(is_text(a) for a in nest.flatten(element)):
            return None
        compiled = self._traced()
        try:
            t = to_tensors(element)
            concrete = compiled.get_concrete_function(*t) if isinstance(t, tuple) else \
                compiled.get_concrete_function(t)
        except Exception:  # it cannot trace: it runs eagerly, element by element
            return None
        if not batchable(concrete):
            return None

        def over_batch(batch):
            return nest.map_structure(to_numpy, self._call(compiled, batch))
        return over_batch

    def _traced(self):
        with self._lock:
            if self._compiled is None:
                from ..function import function
                self._compiled = function(self.fn)
            return self._compiled


def batchable(concrete) -> bool:
    """Whether a function traced on one element gives, run on a batch of elements, the
    batch of its results: every op that depends on the element is elementwise (unary,
    binary, select, cast) between values of the element's rank or with ones that do not
    depend on it and have no more dims (they broadcast alike with a batch dim in front),
    there are no random draws, variable writes or control flow, and every result depends
    on the element. Anything else (reductions, reshapes, gathers, random augmentation)
    runs element by element."""
    from compiler import ops as P
    from compiler.ops.base import Kind
    if concrete._writes or any(kind != "result" for kind, _ in concrete._out_leaves):
        return False
    graph = concrete.graph
    derived = set()
    for param, source in zip(graph.params, concrete._param_sources):
        if source[0] in ("arg", "argvar"):
            derived.add(param.name)
    elementwise = (Kind.UNARY, Kind.BINARY, Kind.SELECT, Kind.CAST)
    for node in graph.nodes:
        ins = [x for x in node.inputs if hasattr(x, "name")]
        mine = [x for x in ins if x.name in derived]
        if node.op is P.CONSTANT:
            continue
        if node.op.kind not in elementwise and (mine or node.op.kind in (
                Kind.SOURCE, Kind.CONTROL, Kind.COLLECTIVE)):
            return False
        if not mine:
            continue
        out_rank = len(node.outputs[0].type.shape)
        if any(len(x.type.shape) != out_rank for x in mine) or \
                any(len(x.type.shape) > out_rank for x in ins):
            return False
        derived.update(o.name for o in node.outputs)
    return all(r.name in derived for r in graph.results)


def workers(num_parallel_calls) -> int:
    """The threads of ``num_parallel_calls``: 1 for None, the CPUs for AUTOTUNE."""
    if num_parallel_calls is None:
        return 1
    if num_parallel_calls == AUTOTUNE:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1)
    n = int(num_parallel_calls)
    if n < 1:
        raise ValueError(f"num_parallel_calls must be positive or AUTOTUNE; received {n}")
    return n


def mapped(items, fn, num_parallel_calls=None, deterministic=None):
    """``fn(x)`` for each x of the iterable ``items``, on threads when asked. AUTOTUNE
    times a stretch of calls on one thread and a stretch on the pool, and keeps the faster
    (a function that is mostly Python runs slower on threads, which share the GIL)."""
    n = workers(num_parallel_calls)
    if n == 1:
        for x in items:
            yield fn(x)
        return
    items = iter(items)
    if num_parallel_calls == AUTOTUNE:
        trial = list(itertools.islice(items, TRIAL))
        t = time.perf_counter()
        yield from (fn(x) for x in trial)
        alone = time.perf_counter() - t
        trial = list(itertools.islice(items, TRIAL))
        t = time.perf_counter()
        yield from _pooled(trial, fn, n, deterministic)
        if len(trial) == TRIAL and time.perf_counter() - t >= alone:
            yield from (fn(x) for x in items)
            return
    yield from _pooled(items, fn, n, deterministic)


def _pooled(items, fn, n, deterministic):
    ordered = deterministic is None or deterministic
    with ThreadPoolExecutor(n, thread_name_prefix="kiln-data-map") as pool:
        pending: deque = deque()
        for x in items:
            pending.append(pool.submit(fn, x))
            if len(pending) >= 2 * n:
                yield from _drain(pending, ordered, keep=n)
        yield from _drain(pending, ordered, keep=0)


def _drain(pending: deque, ordered: bool, keep: int):
    while len(pending) > keep:
        if ordered:
            yield pending.popleft().result()
            continue
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for f in done:
            pending.remove(f)
            yield f.result()
