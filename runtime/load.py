"""``load(program)``: bind a program's callables in this process — its generated module
loaded by its target's loader, its arenas (arena.py), each kernel step to that module's
functions, each library step to its op's reference (library.py), each control step to its
runner (control.py), each collective step to MPI (collective.py).

Adding a backend adds its loader here: how its module is loaded, and how the module's
functions become the callables of kernel steps.
"""

from __future__ import annotations

import math

from . import collective, control, jit, library
from .arena import Arenas
from .program import Program, runs_parallel, walk_programs, walk_steps


def _load_numba(program: Program):
    """The numba module; each kernel (and each compiled loop) as its parallel and serial
    functions, a kernel whose domain is static as the one its size picks."""
    module = jit.load_module(program.source)
    for st in walk_steps(program):
        if st.kind == "kernel" or st.loop is not None:
            st.fn_par = getattr(module, st.name + "_par")
            st.fn_ser = getattr(module, st.name + "_ser")
        if st.kind == "kernel":
            _static_variant(st)
    return module


def _static_variant(st) -> None:
    """A kernel whose domain is static calls the variant its size picks, chosen once."""
    if all(isinstance(d, int) for d in st.work):
        st.fn = st.fn_par if runs_parallel(math.prod(st.work), st.point_bytes) else st.fn_ser


def _load_cuda(program: Program):
    """The numba-cuda module; each kernel as a launcher of its ``cuda.jit`` function."""
    from .cuda import load_kernels
    module = jit.load_module(program.source)
    steps = [st for st in walk_steps(program) if st.kind == "kernel"]
    specs = {st.name: (st.name, st.launch, len(st.inputs)) for st in steps}
    launchers = load_kernels(module, list(specs.values()))
    for st in steps:
        st.fn_par = st.fn_ser = launchers[st.name]
    return module


def _load_native(program: Program):
    """The native module (object code for this CPU); each kernel as its parallel and serial
    native functions, one of them when the domain is static."""
    from .native import NativeKernel, load_module
    module = load_module(program.source)
    for st in walk_steps(program):
        if st.kind == "kernel":
            n = len(st.inputs) + len(st.outputs) + len(st.scratch), len(st.symbols)
            st.fn_ser = NativeKernel(module, st.name + "_ser", *n)
            st.fn_par = NativeKernel(module, st.name + "_par", *n, serial=st.fn_ser)
            _static_variant(st)
    from .launch import bind
    for p in walk_programs(program):
        bind(p, module)
    return module


# target -> loader(program) -> its loaded module, the kernel steps bound to its functions
LOADERS = {"numba": _load_numba, "cuda": _load_cuda, "llvm": _load_native}


def load(program: Program) -> Program:
    """Bind ``program`` (in place) and return it; loading its module compiles its kernels
    or, when the disk cache holds them, loads their machine code."""
    loader = LOADERS.get(program.target)
    if loader is None:
        raise library.LoadError(f"program for unknown target {program.target!r}; loaders "
                                 f"exist for {sorted(LOADERS)}")
    module = loader(program) if program.source else None
    for p in walk_programs(program):
        p.module = module
        p.arenas = Arenas(p.buffers, p.buckets) if p.buffers else None
    for st in walk_steps(program):
        if st.kind == "library":
            library.bind(st)
        elif st.kind == "control":
            control.bind(st)
        elif st.kind == "collective":
            collective.bind(st)
    return program
