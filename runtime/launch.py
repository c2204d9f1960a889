"""A whole program in one native call: the native backend compiles a program whose steps
are all kernels into one entry function beside its kernels (compiler/codegen/launch_llvm.py)
that runs every kernel in order; a call of the program is then one ctypes call, which
releases the GIL, instead of a Python loop over steps (~3 us a step).

The entry takes, in this order: the program's arguments and the arrays this call allocates
(its results), as ndarray objects whose data pointers it reads itself (native.py
``ARRAY_DATA_OFFSET``); a table of data pointers (the arena's buffers, then the program's
constants), made once per arena; the sizes of the program's symbols, made once per
binding; and whether kernels may run in parallel. ``layout`` is that order, computed the
same way by the compiler and here.
"""

from __future__ import annotations

import ctypes
import math
import threading
from dataclasses import dataclass

import numpy as np

from .arena import MAX_BINDINGS
from .buffer import POOL
from .native import object_entry
from .program import POOLED_BYTES, Program, eval_dim
from .threads import forked, parallel_available


def bind(program: Program, module) -> None:
    """``program.launch``, where the module holds the program's entry in a form this
    process can call (``object_entry``: compiled for the same ndarray layout)."""
    if program.entry and module.has(object_entry(program.entry)):
        program.launch = Launch(program, module)


@dataclass
class Layout:
    new: list        # (step index, output index) of each output allocated per call
    constants: list  # constant slots, in the table after the arena's buffers
    symbols: list    # the sizes the entry reads, in order
    sources: dict    # slot -> ("param", i) | ("new", j) | ("const", slot) | ("arena", b)


def eligible(program: Program) -> bool:
    """Whether one entry can run ``program``: every step is a kernel."""
    return bool(program.steps) and all(st.kind == "kernel" for st in program.steps)


def layout(program: Program) -> Layout:
    sources: dict = {s: ("param", i) for i, s in enumerate(program.params)}
    constants = sorted(program.constants)
    sources.update({s: ("const", s) for s in constants})
    new, symbols = [], set()
    for i, st in enumerate(program.steps):
        symbols.update(st.symbols)
        for d in st.work:
            symbols.update(_names(d))
        for k, out in enumerate(st.outputs):
            if st.inplace[k] is not None:
                sources[out] = sources[st.inplace[k]]
            elif st.arena[k] is not None:
                sources[out] = ("arena", st.arena[k])
            else:
                sources[out] = ("new", len(new))
                new.append((i, k))
    return Layout(new, constants, sorted(symbols), sources)


def _names(d) -> set:
    if isinstance(d, int):
        return set()
    return {f for term in d.split("+") for f in term.split("*") if not f[0].isdigit()}


class Launch:
    """The bound entry of a program: ``launch(args, env)`` runs it and returns its
    results, as ``execute`` would. Per binding of the sizes it keeps the size array and
    the shapes of the arrays a call allocates; per thread and binding, an arena and its
    table of pointers (no lock on the way: a call runs no Python while it holds them)."""

    def __init__(self, program: Program, module):
        self.program, self.layout = program, layout(program)
        n = len(program.params) + len(self.layout.new)
        self.fn = module.function(object_entry(program.entry), [ctypes.py_object] * n +
                                  [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_bool])
        self.keys = tuple(sorted({d for shape in program.param_shapes for d in shape
                                  if isinstance(d, str)}))
        self.results = [self.layout.sources[r] for r in program.results]
        self.parallel = parallel_available()
        self._bindings: dict = {}
        self._local = threading.local()

    def _bind(self, key, env):
        steps, lay = self.program.steps, self.layout
        sizes = [env[s] for s in lay.symbols]
        news = []
        for i, k in lay.new:
            shape = tuple(eval_dim(d, env) for d in steps[i].out_shapes[k])
            dtype = np.dtype(steps[i].out_dtypes[k])
            news.append((shape, dtype, math.prod(shape) * dtype.itemsize >= POOLED_BYTES))
        if len(self._bindings) >= MAX_BINDINGS:
            self._bindings.clear()
        binding = self._bindings[key] = ((ctypes.c_int64 * max(1, len(sizes)))(*sizes), news)
        return binding

    def _arena(self, key, env):
        arenas, consts = self.program.arenas, self.program.constants
        views = arenas.acquire(env)[1] if arenas is not None else []  # kept by this thread
        arrays = list(views) + [consts[s] for s in self.layout.constants]
        table = (ctypes.c_void_p * max(1, len(arrays)))(*[a.ctypes.data for a in arrays])
        local = self._local.__dict__
        if len(local) >= MAX_BINDINGS:
            local.clear()
        local[key] = arena = (views, table)
        return arena

    def __call__(self, args: list, env: dict) -> list:
        key = tuple([env[s] for s in self.keys])
        binding = self._bindings.get(key) or self._bind(key, env)
        views, table = self._local.__dict__.get(key) or self._arena(key, env)
        news = [POOL.empty(shape, dtype) if pooled else np.empty(shape, dtype)
                for shape, dtype, pooled in binding[1]]
        self.fn(*args, *news, table, binding[0], self.parallel and not forked())
        consts = self.program.constants
        return [args[ref] if kind == "param" else news[ref] if kind == "new" else
                consts[ref] if kind == "const" else views[ref].copy()  # outlives the arena
                for kind, ref in self.results]
