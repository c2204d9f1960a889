"""Targets: one record per backend, in one registry; nothing else tests a target's name.

A target says how a kernel node renders (``render``), how the rendered kernels become one
module (``module_source``), which movement ops run as copy kernels of their own
(``copies_everywhere``: a device keeps data on itself; the CPU copies with numpy except
inside compiled loops) and whether a loop of kernels becomes one generated function
(``compiled_loops``) or else may run from Python (``python_loops``). How the loaded
module's functions bind to a program's steps is the runtime's business (runtime/load.py),
keyed by the same name."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import AttrError


class Unsupported(Exception):
    """A renderer cannot lower this kernel (yet): the next candidate target takes the
    program."""


@dataclass(frozen=True)
class Target:
    name: str
    render: Callable            # kernel node -> KernelSource
    module_source: Callable     # (kernels, helpers, version) -> module text
    copies_everywhere: bool     # every movement op a copy kernel (else only inside loops)
    compiled_loops: bool        # a loop of kernels runs as one generated function (loops.py)
    python_loops: bool = True   # a loop may run its regions' programs from Python (else a
    #                             program with a while_loop or scan goes to the next backend)
    entry: Callable | None = None  # (program, name, first, stop) -> KernelSource of one
    #                                function running those steps (or None), beside them
    products_apart: bool = False   # a matmul's or conv's product goes to a workspace of its
    #                                own, so the epilogue may write its outputs in place
    narrow_floats: bool = False    # float16 kernels: stored float16, computed in float32
    narrow_library: frozenset = frozenset()  # ops whose 16-bit forms stay library calls
    renders_in_place: bool = False  # render(node, in_place): an output written over an
    #                                 input it reads uses that input's pointer (one pointer:
    #                                 no runtime overlap check that fails, so it vectorizes)


def _render_cpu(node):
    from .render_cpu import render_kernel
    return render_kernel(node)


def _module_cpu(kernels, helpers, version):
    from .render_cpu import module_source
    return module_source(kernels, helpers, version)


def _render_cuda(node):
    from .render_cuda import render_cuda_kernel
    return render_cuda_kernel(node)


def _module_cuda(kernels, helpers, version):
    from .render_cuda import module_source_cuda
    return module_source_cuda(kernels, helpers, version)


def _render_llvm(node, in_place=None):
    from .render_llvm import render_kernel
    return render_kernel(node, in_place)


def _entry_llvm(program, name, first, stop):
    from .launch_llvm import entry_source
    return entry_source(program, name, first, stop)


def _module_llvm(kernels, helpers, version):
    from .render_llvm import module_source
    return module_source(kernels, helpers, version)


TARGETS = {
    "numba": Target("numba", _render_cpu, _module_cpu, copies_everywhere=False,
                  compiled_loops=True),
    "cuda": Target("cuda", _render_cuda, _module_cuda, copies_everywhere=True,
                   compiled_loops=False, narrow_floats=True, narrow_library=frozenset({
                       # no 16-bit atomics; pools accumulate in their output's dtype
                       "scatter_add", "max_pool", "avg_pool", "max_pool_grad",
                       "avg_pool_grad"})),
    "llvm": Target("llvm", _render_llvm, _module_llvm, copies_everywhere=False,
                   compiled_loops=False, python_loops=True, entry=_entry_llvm,
                   products_apart=True, narrow_floats=True, renders_in_place=True),
}
# The backends that may compile for a device, in the order they are tried: the native LLVM
# backend first (KILN_BACKEND=numba skips it); a program with a kernel it cannot lower yet
# (a grouped convolution, random bits, an argmax...) goes to numba whole.
DEVICES = {"cpu": ("llvm", "numba"), "cuda": ("cuda",)}


def candidates(name) -> list[Target]:
    """The targets to try, in order, for ``name``: a device ("cpu", "cuda"), a target
    ("numba", "llvm") or a sequence of targets."""
    if isinstance(name, (tuple, list)):
        return [get(n) for n in name]
    if name not in DEVICES:
        return [get(name)]
    backend = os.environ.get("KILN_BACKEND", "llvm")
    if backend not in ("numba", "llvm"):
        raise AttrError("KILN_BACKEND", f"expected 'numba' or 'llvm'; received {backend!r}")
    return [get(n) for n in DEVICES[name] if backend == "llvm" or n != "llvm"]


def get(name: str) -> Target:
    target = TARGETS.get(name)
    if target is None:
        raise AttrError("compile", f"unknown target {name!r}; targets are {sorted(TARGETS)}")
    return target
