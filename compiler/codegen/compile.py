"""``compile_graph``: traced graph -> optimized and fused graphs -> generated kernels ->
a ``runtime.Program`` (data), bound by ``runtime.load``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from runtime.launch import segments
from runtime.load import load
from runtime.program import Program, walk_programs, walk_steps

from .. import __version__
from ..passes.copies import add_copy_kernels
from ..passes.fuse import narrow_floats
from ..passes.pipeline import optimize
from . import targets
from .program import build_program


@dataclass
class Compiled:
    program: Program
    stages: dict            # "optimized", "fused" -> Graph
    source: str             # the generated module ("kernels" stage)
    stats: dict = field(default_factory=dict)
    kernels: list = field(default_factory=list)  # KernelSource per kernel (CUDA: signatures)


def compile_graph(graph, dump=None, aliases=None, target="cpu",
                  optimized: bool = False) -> Compiled:
    """Optimize, fuse, generate and load for ``target``: a device ("cpu", "cuda"; its
    backends are tried in order, targets.py), a backend by name ("numba", "llvm") or a
    sequence of backends to try. ``dump(suffix, text)`` receives every stage; ``aliases``
    (result index -> parameter index) lets variable updates happen in place; ``optimized``
    takes ``graph`` as already optimized and fused (no pass runs)."""
    tried = targets.candidates(target)

    def passes(tgt):  # fusion depends on what the target computes (float16 or not)
        if optimized:
            return {"optimized": graph, "fused": graph}, {}
        with narrow_floats(tgt.narrow_floats, tgt.narrow_library):
            return optimize(graph, dump=dump)
    stages, pass_times = passes(tried[0])
    t0 = time.perf_counter()
    stages["fused"] = add_copy_kernels(stages["fused"], tried[0].copies_everywhere)
    fallbacks = []
    for tgt in tried:  # the first backend that lowers every kernel takes the program
        if (tgt.narrow_floats, tgt.narrow_library) != (
                tried[0].narrow_floats, tried[0].narrow_library) and not optimized:
            stages, pass_times = passes(tgt)
            stages["fused"] = add_copy_kernels(stages["fused"], tried[0].copies_everywhere)
        try:
            program, kernels = build_program(stages["fused"], aliases, tgt)
            break
        except targets.Unsupported as e:
            if tgt is tried[-1]:
                raise
            fallbacks.append(f"{tgt.name}: {e}")
    for i, p in enumerate(walk_programs(program) if tgt.entry is not None else ()):
        for first, stop in segments(p):  # runs of kernels, one native call each (launch.py)
            entry = tgt.entry(p, f"kiln_program{i}_{first}", first, stop)
            if entry is not None:
                kernels.append(entry)
                p.segments.append([entry.name, first, stop])
    calls = [", ".join(st.name for st in p.steps[a:b]) for p in walk_programs(program)
             for _, a, b in p.segments]
    if calls:  # reported with the fused IR, as its notes are
        fused = stages["fused"]
        notes = dict(fused.meta).get("notes", ()) + tuple(f"one native call: {c}" for c in calls)
        stages["fused"] = replace(fused, meta=tuple({**dict(fused.meta), "notes": notes}.items()))
    kernels = list({k.name: k for k in kernels}.values())  # a helper several loops share
    helpers = set().union(*[k.helpers for k in kernels]) if kernels else set()
    source = tgt.module_source(kernels, helpers, __version__) if kernels else ""
    if dump is not None:
        dump("kernels.py", source)
    program.source = source
    t1 = time.perf_counter()
    load(program)
    stats = {"passes": pass_times, "codegen_s": t1 - t0, "load_s": time.perf_counter() - t1,
             "kernels": sum(1 for k in kernels if k.kind not in ("loop", "helper", "entry")),
             "library_calls": sum(1 for s in walk_steps(program) if s.kind == "library"),
             "backend": tgt.name, "fallbacks": fallbacks}
    return Compiled(program, stages, source, stats, kernels)
