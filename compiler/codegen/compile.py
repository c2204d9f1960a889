"""``compile_graph``: traced graph -> optimized and fused graphs -> generated kernels ->
a loaded ``runtime.Program``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from runtime import jit
from runtime.program import Program, walk_programs, walk_steps

from .. import __version__
from ..passes.pipeline import optimize
from .program import build_program
from .render_cpu import module_source


@dataclass
class Compiled:
    program: Program
    stages: dict            # "optimized", "fused" -> Graph
    source: str             # the generated module ("kernels" stage)
    stats: dict = field(default_factory=dict)
    kernels: list = field(default_factory=list)  # KernelSource per kernel (CUDA: signatures)


def compile_graph(graph, dump=None, aliases=None, target: str = "cpu") -> Compiled:
    """Optimize, fuse, generate and load for ``target`` ("cpu" or "cuda"). ``dump(suffix,
    text)`` receives every stage; ``aliases`` (result index -> parameter index) lets
    variable updates happen in place."""
    stages, pass_times = optimize(graph, dump=dump)
    t0 = time.perf_counter()
    program, kernels = build_program(stages["fused"], aliases, target)
    kernels = list({k.name: k for k in kernels}.values())  # a helper several loops share
    helpers = set().union(*[k.helpers for k in kernels]) if kernels else set()
    if target == "cuda":
        from .render_cuda import module_source_cuda
        source = module_source_cuda(kernels, helpers, __version__) if kernels else ""
    else:
        source = module_source(kernels, helpers, __version__) if kernels else ""
    if dump is not None:
        dump("kernels.py", source)
    t1 = time.perf_counter()
    if kernels:
        mod = jit.load_module(source)
        for p in walk_programs(program):
            p.module = mod
        if target == "cuda":
            from runtime.cuda import load_kernels
            n_in = {st.name: len(st.inputs) for st in walk_steps(program) if st.kind == "kernel"}
            launchers = load_kernels(mod, [(k.name, k.launch, n_in[k.name]) for k in kernels])
        for st in walk_steps(program):
            if st.kind == "kernel" and target == "cuda":
                st.fn_par = st.fn_ser = launchers[st.name]
            elif st.kind == "kernel" or st.kind == "control" and st.source:
                st.fn_par = getattr(mod, st.name + "_par")
                st.fn_ser = getattr(mod, st.name + "_ser")
    stats = {"passes": pass_times, "codegen_s": t1 - t0, "load_s": time.perf_counter() - t1,
             "kernels": sum(1 for k in kernels if k.kind not in ("loop", "helper")),
             "library_calls": sum(1 for s in walk_steps(program) if s.kind == "library")}
    return Compiled(program, stages, source, stats, kernels)
