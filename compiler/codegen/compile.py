"""``compile_graph``: traced graph -> optimized and fused graphs -> generated kernels ->
a loaded ``runtime.Program``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from runtime import jit
from runtime.program import Program

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


def compile_graph(graph, dump=None, aliases=None) -> Compiled:
    """Optimize, fuse, generate and load. ``dump(suffix, text)`` receives every stage;
    ``aliases`` (result index -> parameter index) lets variable updates happen in place."""
    stages, pass_times = optimize(graph, dump=dump)
    t0 = time.perf_counter()
    program, kernels = build_program(stages["fused"], aliases)
    helpers = set().union(*[k.helpers for k in kernels]) if kernels else set()
    source = module_source(kernels, helpers, __version__) if kernels else ""
    if dump is not None:
        dump("kernels.py", source)
    t1 = time.perf_counter()
    if kernels:
        mod = jit.load_module(source)
        program.module = mod
        for st in program.steps:
            if st.kind == "kernel":
                st.fn_par = getattr(mod, st.name + "_par")
                st.fn_ser = getattr(mod, st.name + "_ser")
    stats = {"passes": pass_times, "codegen_s": t1 - t0, "load_s": time.perf_counter() - t1,
             "kernels": len(kernels),
             "library_calls": sum(1 for s in program.steps if s.kind == "library")}
    return Compiled(program, stages, source, stats)
