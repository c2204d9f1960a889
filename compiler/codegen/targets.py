"""Targets: one record per backend, in one registry; nothing else tests a target's name.

A target says how a kernel node renders (``render``), how the rendered kernels become one
module (``module_source``), which movement ops run as copy kernels of their own
(``copies_everywhere``: a device keeps data on itself; the CPU copies with numpy except
inside compiled loops) and whether a loop of kernels becomes one generated function
(``compiled_loops``). How the loaded module's functions bind to a program's steps is the
runtime's business (runtime/load.py), keyed by the same name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import AttrError


@dataclass(frozen=True)
class Target:
    name: str
    render: Callable            # kernel node -> KernelSource
    module_source: Callable     # (kernels, helpers, version) -> module text
    copies_everywhere: bool     # every movement op a copy kernel (else only inside loops)
    compiled_loops: bool        # a loop of kernels runs as one generated function (loops.py)


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


TARGETS = {
    "cpu": Target("cpu", _render_cpu, _module_cpu, copies_everywhere=False,
                  compiled_loops=True),
    "cuda": Target("cuda", _render_cuda, _module_cuda, copies_everywhere=True,
                   compiled_loops=False),
}


def get(name: str) -> Target:
    target = TARGETS.get(name)
    if target is None:
        raise AttrError("compile", f"unknown target {name!r}; targets are {sorted(TARGETS)}")
    return target
