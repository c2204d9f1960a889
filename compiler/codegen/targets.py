"""Targets: one record per backend, in one registry; nothing else tests a target's name.

A target says how a kernel node renders (``render``), how the rendered kernels become one
module (``module_source``), which movement ops run as copy kernels of their own
(``copies_everywhere``: a device keeps data on itself; the CPU copies with numpy except
inside compiled loops), whether a loop of kernels becomes one generated function
(``compiled_loops``), and how the loaded module's functions bind to the program's steps
(``bind``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from runtime.program import walk_steps

from ..errors import AttrError


@dataclass(frozen=True)
class Target:
    name: str
    render: Callable            # kernel node -> KernelSource
    module_source: Callable     # (kernels, helpers, version) -> module text
    copies_everywhere: bool     # every movement op a copy kernel (else only inside loops)
    compiled_loops: bool        # a loop of kernels runs as one generated function (loops.py)
    bind: Callable              # (module, program, kernels) -> None


def _render_cpu(node):
    from .render_cpu import render_kernel
    return render_kernel(node)


def _module_cpu(kernels, helpers, version):
    from .render_cpu import module_source
    return module_source(kernels, helpers, version)


def _bind_cpu(mod, program, kernels):
    """Each kernel (and each compiled loop) as its parallel and serial numba functions."""
    for st in walk_steps(program):
        if st.kind == "kernel" or st.kind == "control" and st.source:
            st.fn_par = getattr(mod, st.name + "_par")
            st.fn_ser = getattr(mod, st.name + "_ser")


def _render_cuda(node):
    from .render_cuda import render_cuda_kernel
    return render_cuda_kernel(node)


def _module_cuda(kernels, helpers, version):
    from .render_cuda import module_source_cuda
    return module_source_cuda(kernels, helpers, version)


def _bind_cuda(mod, program, kernels):
    """Each kernel as a launcher of its ``cuda.jit`` function."""
    from runtime.cuda import load_kernels
    steps = [st for st in walk_steps(program) if st.kind == "kernel"]
    n_in = {st.name: len(st.inputs) for st in steps}
    launchers = load_kernels(mod, [(k.name, k.launch, n_in[k.name]) for k in kernels])
    for st in steps:
        st.fn_par = st.fn_ser = launchers[st.name]


TARGETS = {
    "cpu": Target("cpu", _render_cpu, _module_cpu, copies_everywhere=False,
                  compiled_loops=True, bind=_bind_cpu),
    "cuda": Target("cuda", _render_cuda, _module_cuda, copies_everywhere=True,
                   compiled_loops=False, bind=_bind_cuda),
}


def get(name: str) -> Target:
    target = TARGETS.get(name)
    if target is None:
        raise AttrError("compile", f"unknown target {name!r}; targets are {sorted(TARGETS)}")
    return target
