"""Runs of kernels in one native call: the native backend compiles each run of a program's
kernel steps (``segments``: the whole program when every step is a kernel, else the runs
between steps that need Python) into one entry function beside its kernels
(compiler/codegen/launch_llvm.py) that runs them in order; the run is then one ctypes call,
which releases the GIL, instead of a Python loop over steps (~3 us a step).

An entry takes, in this order: as ndarray objects whose data pointers it reads itself
(native.py ``ARRAY_DATA_OFFSET``), the program's arguments (a whole program) or what the run
reads that it does not make, then the arrays this call allocates; a table of data pointers
(the arena's buffers, then the program's constants), made once per arena; the sizes of the
run's symbols, made once per binding; and whether kernels may run in parallel. ``layout``
is that order, computed the same way by the compiler and here.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

from .arena import MAX_BINDINGS
from .native import object_entry
from .program import Program, empty, eval_dim, eval_shape
from .threads import forked, parallel_available


def bind(program: Program, module) -> None:
    """Each segment's runner, where the module holds its entry in a form this process can
    call (``object_entry``: compiled for the same ndarray layout): ``program.launch`` when
    one segment is the whole program, else ``program.runners`` by first step."""
    for name, first, stop in program.segments:
        if not module.has(object_entry(name)):
            continue
        if (first, stop) == (0, len(program.steps)):
            program.launch = Launch(program, module, name)
        else:
            program.runners[first] = Segment(program, module, name, first, stop)


def segments(program: Program) -> list[tuple[int, int]]:
    """The runs of kernel (and view) steps that one entry each runs: the whole program when
    every step is one; else each run of two kernels or more (one is called as it is)."""
    steps = program.steps
    native = [st.kind in ("kernel", "view") for st in steps]
    if steps and all(native) and any(st.kind == "kernel" for st in steps):
        return [(0, len(steps))]
    runs, i = [], 0
    while i < len(steps):
        j = i
        while j < len(steps) and native[j]:
            j += 1
        if sum(st.kind == "kernel" for st in steps[i:j]) >= 2:
            runs.append((i, j))
        i = max(j, i + 1)
    return runs


@dataclass
class Layout:
    objects: list    # slots passed as ndarray objects: the program's parameters (a whole
    #                  program), or what a segment reads that it does not make
    new: list        # (step index, output index) of each output allocated per call
    constants: list  # constant slots, in the table after the arena's buffers
    symbols: list    # the sizes the entry reads, in order
    sources: dict    # slot -> ("object", j) | ("new", j) | ("const", slot) | ("arena", b)


def layout(program: Program, first: int, stop: int) -> Layout:
    constants = sorted(program.constants)
    sources: dict = {s: ("const", s) for s in constants}
    objects = list(program.params) if (first, stop) == (0, len(program.steps)) else []
    sources.update({s: ("object", j) for j, s in enumerate(objects)})
    new, symbols = [], set()
    for i in range(first, stop):
        st = program.steps[i]
        symbols.update(st.symbols)
        for d in st.work:
            symbols.update(_names(d))
        for s in st.inputs:
            if s not in sources:
                sources[s] = ("object", len(objects))
                objects.append(s)
        if st.kind == "view":  # the input's memory under another shape
            sources[st.outputs[0]] = sources[st.inputs[0]]
            continue
        for k, out in enumerate(st.outputs):
            if st.inplace[k] is not None:
                sources[out] = sources[st.inplace[k]]
            elif st.arena[k] is not None:
                sources[out] = ("arena", st.arena[k])
            else:
                sources[out] = ("new", len(new))
                new.append((i, k))
    return Layout(objects, new, constants, sorted(symbols), sources)


def _names(d) -> set:
    if isinstance(d, int):
        return set()
    return {f for term in d.split("+") for f in term.split("*") if not f[0].isdigit()}


def _table(arrays) -> ctypes.Array:
    return (ctypes.c_void_p * max(1, len(arrays)))(*[a.ctypes.data for a in arrays])


class _Entry:
    """An entry of a run of kernel steps, bound: its ctypes function, and per binding of
    the program's sizes the size array and the shapes of the arrays a call allocates."""

    def __init__(self, program: Program, module, name: str, first: int, stop: int):
        self.program, self.stop = program, stop
        self.layout = lay = layout(program, first, stop)
        self.fn = module.function(object_entry(name), [ctypes.py_object] * (
            len(lay.objects) + len(lay.new)) + [ctypes.c_void_p, ctypes.c_void_p,
                                                ctypes.c_bool])
        shapes = [*program.param_shapes, *(program.steps[i].out_shapes[k] for i, k in lay.new),
                  *(b[0] for b in program.buffers)]
        self.keys = tuple(sorted(set(lay.symbols) | {n for shape in shapes for d in shape
                                                     for n in _names(d)}))
        self.parallel = parallel_available()
        self._bindings: dict = {}

    def _binding(self, env):
        key = tuple([env[s] for s in self.keys])
        binding = self._bindings.get(key)
        if binding is None:
            if len(self._bindings) >= MAX_BINDINGS:
                self._bindings.clear()
            sizes = [env[s] for s in self.layout.symbols]
            steps = self.program.steps
            news = [(tuple(eval_dim(d, env) for d in steps[i].out_shapes[k]),
                     np.dtype(steps[i].out_dtypes[k])) for i, k in self.layout.new]
            binding = self._bindings[key] = (
                key, (ctypes.c_int64 * max(1, len(sizes)))(*sizes), news)
        return binding

    def _call(self, objects, binding, table) -> list:
        news = [empty(shape, dtype) for shape, dtype in binding[2]]
        self.fn(*objects, *news, table, binding[1], self.parallel and not forked())
        return news


class Segment(_Entry):
    """The entry of a run of kernel steps inside a program that also has other steps:
    ``execute`` calls it in place of the run, with the call's arena."""

    def __init__(self, program: Program, module, name: str, first: int, stop: int):
        super().__init__(program, module, name, first, stop)
        # each output's source, and its shape where it is a view (its source has another)
        self.outputs = [(out, self.layout.sources[out], st.out_shapes[0]
                         if st.kind == "view" else None)
                        for st in program.steps[first:stop] for out in st.outputs]
        self._static_table = None

    def run(self, slots: list, env: dict, views) -> None:
        consts, lay = self.program.constants, self.layout
        if views is None:
            if self._static_table is None:
                self._static_table = _table([consts[s] for s in lay.constants])
            table = self._static_table
        else:
            table = views.table
            if table is None:
                table = views.table = _table(list(views) + [consts[s] for s in lay.constants])
        objects = [slots[s] for s in lay.objects]
        news = self._call(objects, self._binding(env), table)
        for out, (kind, ref), shape in self.outputs:
            x = objects[ref] if kind == "object" else news[ref] if kind == "new" \
                else views[ref] if kind == "arena" else consts[ref]
            slots[out] = x if shape is None else x.reshape(eval_shape(shape, env))


class Launch(_Entry):
    """The entry of a whole program: ``launch(args, env)`` runs it and returns its
    results, as ``execute`` would. Per thread and binding it keeps an arena and its table
    of pointers (no lock on the way: a call runs no Python while it holds them)."""

    def __init__(self, program: Program, module, name: str):
        super().__init__(program, module, name, 0, len(program.steps))
        self.results = [self.layout.sources[r] for r in program.results]
        self._local = threading.local()

    def _arena(self, key, env):
        arenas, consts = self.program.arenas, self.program.constants
        views = arenas.acquire(env)[1] if arenas is not None else []  # kept by this thread
        table = _table(list(views) + [consts[s] for s in self.layout.constants])
        local = self._local.__dict__
        if len(local) >= MAX_BINDINGS:
            local.clear()
        local[key] = arena = (views, table)
        return arena

    def __call__(self, args: list, env: dict) -> list:
        binding = self._binding(env)
        views, table = self._local.__dict__.get(binding[0]) or self._arena(binding[0], env)
        news = self._call(args, binding, table)
        consts = self.program.constants
        return [args[ref] if kind == "object" else news[ref] if kind == "new" else
                consts[ref] if kind == "const" else views[ref].copy()  # outlives the arena
                for kind, ref in self.results]
