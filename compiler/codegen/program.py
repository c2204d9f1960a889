"""Fused graph -> ``runtime.Program`` (plain data; ``runtime.load`` binds it): slots for
every value, a step per kernel, library op, control op or view (a reshape: the same buffer
under another shape, no copy), liveness (each intermediate is
freed after its last use), and in-place reuse of an input buffer that dies at an
elementwise kernel with the same type."""

from __future__ import annotations

import numpy as np

from runtime.program import Program, Step

from .. import ops as P
from ..ir import Graph, Literal
from ..ops.base import CONTROL
from ..printer import print_graph
from . import targets
from .cost import step_cost
from .dims import dim_for_runtime, dims_for_runtime
from .library import encode_attrs
from .loops import ROW_HELPER, plan_loop
from .memory import plan_arena, plan_buckets, plan_memory, write_in_place
from .plan import KernelSource


def _control_attrs(node) -> dict:
    """A control step's attributes, as the runtime's runners take them (control.py)."""
    a = node.attr_dict
    if node.op is P.WHILE_LOOP:
        return {"n_carry": a["n_carry"], "maximum_iterations": a["maximum_iterations"]}
    if node.op is P.SCAN:
        length = a["length"]
        return {"n_carry": a["n_carry"], "n_elems": a["n_elems"], "reverse": a["reverse"],
                "length": None if length is None else dim_for_runtime(length)}
    return {}


def _place_waits(steps: list) -> list:
    """Each collective step's ``wait`` step, just before the first step that reads one of
    its results (else at the end): the steps between run while the data travels."""
    waits: dict[int, list] = {}
    for i, st in enumerate(steps):
        if st.kind != "collective":
            continue
        results = set(st.outputs[:-1])
        first = next((j for j in range(i + 1, len(steps))
                      if results.intersection(steps[j].inputs)), len(steps))
        waits.setdefault(first, []).append(
            Step(f"{st.name}.wait", "wait", [st.outputs[-1]], [], [], [], op=st.op,
                 loc=st.loc))
    if not waits:
        return steps
    placed = []
    for j, st in enumerate(steps):
        placed += waits.get(j, []) + [st]
    return placed + waits.get(len(steps), [])


def build_program(graph: Graph, aliases: dict[int, int] | None = None,
                  target=None) -> tuple[Program, list[KernelSource]]:
    """``aliases`` maps a result index to the parameter index whose buffer may receive it
    (a variable's new value written in place); ``target`` picks the renderer. Copy kernels
    are already in the graph (passes/copies.py)."""
    target = target or targets.candidates("cpu")[-1]  # (numba: it lowers every kernel)
    render = target.render
    slot: dict[str, int] = {}
    types: dict[int, object] = {}
    constants: dict[int, np.ndarray] = {}

    def new_slot(v) -> int:
        slot[v.name] = len(slot) + len(constants)
        types[slot[v.name]] = v.type
        return slot[v.name]

    def operand_slot(x) -> int:
        if isinstance(x, Literal):  # library ops take literals as 0-d constant arrays
            s = len(slot) + len(constants)
            constants[s] = np.asarray(x.value, x.dtype.np)
            return s
        return slot[x.name]

    params = [new_slot(p) for p in graph.params]
    result_names = {r.name for r in graph.results}
    steps, kernels = [], []
    rendered = []  # (step, its kernel node, its index in kernels)
    for node in graph.nodes:
        if node.op is P.CONSTANT:
            s = new_slot(node.outputs[0])
            constants[s] = node.attr("value").array
            continue
        inputs = [operand_slot(x) for x in node.inputs]
        outputs = [new_slot(o) for o in node.outputs]
        shapes = [dims_for_runtime(o.type.shape) for o in node.outputs]
        dtypes = [o.type.dtype.np for o in node.outputs]
        cost = step_cost(node)
        if node.op.kind == CONTROL:
            if node.op is not P.COND and not target.python_loops:
                raise targets.Unsupported(f"{node.op.name} (a loop runs as one compiled "
                                          f"function on numba, region by region here)")
            subs = []
            for r in node.regions:
                sub, ks = build_program(r, None, target)
                kernels += ks
                subs.append(sub)
            st = Step(f"{node.op.name}_%{node.outputs[0].name}", "control", inputs, outputs,
                      shapes, dtypes, op=node.op.name, attrs=_control_attrs(node),
                      subprograms=subs, fusion=node.op.name)
            planned = plan_loop(node, subs, shapes, dtypes) \
                if target.compiled_loops and node.op is not P.COND else None
            if planned is not None:  # one generated function runs the whole loop
                st.loop, st.source = planned
                st.name = st.loop.name
                kernels.append(KernelSource(st.name, st.source, [], (), "loop", set()))
                kernels.append(KernelSource("_row", ROW_HELPER, [], (), "helper", set()))
            steps.append(st)
        elif node.op is P.KERNEL:
            ks = render(node)
            kernels.append(ks)
            steps.append(Step(ks.name, "kernel", inputs, outputs, shapes, dtypes,
                              symbols=ks.symbols, work=dims_for_runtime(ks.domain),
                              source=ks.source, ir=print_graph(node.regions[0]),
                              fusion=ks.kind, launch=ks.launch, flops=cost[0],
                              nbytes=cost[1],
                              scratch=[(dims_for_runtime(shape), d.np)
                                       for shape, d in ks.scratch]))
            steps[-1].aligned = {inputs[i] for i in ks.aligned}
            steps[-1].point_bytes = sum(x.type.dtype.np.itemsize for x in (
                *(node.inputs[i] for i in ks.aligned), *node.outputs))
            rendered.append((steps[-1], node, len(kernels) - 1))
        elif node.op is P.RESHAPE and node.outputs[0].name not in result_names and \
                not target.copies_everywhere:
            # the same buffer under another shape (every array here is C-contiguous); a
            # result is copied instead (a library step), so no view outlives the call
            steps.append(Step(f"view_%{node.outputs[0].name}", "view", inputs, outputs,
                              shapes, dtypes, op=node.op.name, loc=str(node.loc or "")))
        elif node.op is P.ALL_REDUCE:  # started here, completed where first read
            pending = slot[f"{node.outputs[0].name}.pending"] = len(slot) + len(constants)
            steps.append(Step(f"all_reduce_%{node.outputs[0].name}", "collective", inputs,
                              outputs + [pending], shapes + [()], dtypes + [np.dtype(object)],
                              op=node.op.name, attrs=encode_attrs(node.attrs),
                              loc=str(node.loc or ""), flops=cost[0], nbytes=cost[1]))
        else:
            steps.append(Step(f"{node.op.name}_%{node.outputs[0].name}", "library", inputs,
                              outputs, shapes, dtypes, op=node.op.name,
                              attrs=encode_attrs(node.attrs), loc=str(node.loc or ""),
                              flops=cost[0], nbytes=cost[1]))
    results = [slot[r.name] for r in graph.results]
    steps = _place_waits(steps)
    plan_memory(steps, params, results, constants, types, target.products_apart)
    for r, p in (aliases or {}).items():
        write_in_place(steps, results[r], params[p], types, target.products_apart)
    buffers, escaping = plan_arena(steps, params, results, constants)
    if target.renders_in_place:  # again, with the pointers of outputs written in place
        for st, node, k in rendered:
            pairs = {r: st.inputs.index(s) for r, s in enumerate(st.inplace)
                     if s is not None and s in st.inputs}
            if pairs:
                kernels[k] = render(node, pairs)
                st.source = kernels[k].source
    buckets = plan_buckets(steps, buffers, params, results, constants)
    program = Program(len(slot) + len(constants), params,
                      [dims_for_runtime(p.type.shape) for p in graph.params], results, steps,
                      constants, target.name, buffers=buffers, escaping=escaping,
                      buckets=buckets)
    return program, kernels
