"""Fused graph -> ``runtime.Program``: slots for every value, a step per kernel or library
op, liveness (each intermediate is freed after its last use), and in-place reuse of an
input buffer that dies at an elementwise kernel with the same type."""

from __future__ import annotations

import functools

import numpy as np

from runtime import control
from runtime.program import Program, Step

from .. import ops as P
from ..errors import KilnError
from ..interpret import resolve_attr
from ..ir import Graph, Literal
from ..ops.base import ARG_REDUCE, BINARY, CONTROL, REDUCE, SELECT, UNARY, WINDOW
from ..passes.fuse import copy_kernel
from ..printer import print_graph
from . import targets
from .loops import ROW_HELPER, plan_loop
from .render_cpu import KernelSource


def dim_for_runtime(d) -> int | str:
    """A dim as the runtime sees it: an int, or its expression text (``"N*784"``)."""
    return d if isinstance(d, int) else str(d)


def dims_for_runtime(shape) -> tuple:
    return tuple(dim_for_runtime(d) for d in shape)


def library_call(node):
    """A step function running the op's numpy reference (ops without a generated kernel)."""
    op, attrs, loc = node.op, node.attrs, node.loc

    def fn(env, *arrays):
        resolved = {k: resolve_attr(v, env) for k, v in attrs}
        try:
            with np.errstate(all="ignore"):
                out = op.ref(*arrays, **resolved)
        except KilnError as e:
            raise e.with_location(str(loc) if loc else None) from None
        return tuple(np.asarray(o) for o in out) if isinstance(out, tuple) else \
            (np.asarray(out),)
    return fn


def control_call(node, subs, shapes, dtypes):
    """The step function of a control-flow node, running its regions' programs."""
    a = node.attr_dict
    if node.op is P.COND:
        return functools.partial(control.run_cond, subs)
    if node.op is P.WHILE_LOOP:
        return functools.partial(control.run_while, subs[0], subs[1], a["n_carry"],
                                 a["maximum_iterations"])
    length = None if a["length"] is None else dim_for_runtime(a["length"])
    return functools.partial(control.run_scan, subs[0], a["n_carry"], a["n_elems"], length,
                             a["reverse"], shapes, dtypes)


def build_program(graph: Graph, aliases: dict[int, int] | None = None, target=None,
                  in_loop: bool = False) -> tuple[Program, list[KernelSource]]:
    """``aliases`` maps a result index to the parameter index whose buffer may receive it
    (a variable's new value written in place); ``target`` picks the renderer. Inside a
    loop's regions (``in_loop``) movement ops left alone by fusion become copy kernels, so
    the loop can run as one compiled function (loops.py)."""
    target = target or targets.get("cpu")
    render = target.render
    copies = (P.TRANSPOSE, P.SLICE, P.PAD, P.CONCAT, P.RESHAPE, P.BROADCAST_TO, P.GATHER_,
              P.SCATTER_ADD, P.ARGMAX, P.ARGMIN)
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
    steps, kernels = [], []
    for node in graph.nodes:
        if node.op is P.CONSTANT:
            s = new_slot(node.outputs[0])
            constants[s] = node.attr("value").array
            continue
        if node.op in copies and (target.copies_everywhere or in_loop and node.op in P.COPIES):
            node = copy_kernel(node, f"c{node.outputs[0].name}")
        inputs = [operand_slot(x) for x in node.inputs]
        outputs = [new_slot(o) for o in node.outputs]
        shapes = [dims_for_runtime(o.type.shape) for o in node.outputs]
        dtypes = [o.type.dtype.np for o in node.outputs]
        cost = _cost(node)
        if node.op.kind == CONTROL:
            subs = []
            for r in node.regions:
                sub, ks = build_program(r, None, target,
                                        in_loop or node.op is not P.COND)
                kernels += ks
                subs.append(sub)
            st = Step(f"{node.op.name}_%{node.outputs[0].name}", "control", inputs, outputs,
                      shapes, dtypes, fn=control_call(node, subs, shapes, dtypes),
                      subprograms=subs, fusion=node.op.name)
            planned = plan_loop(node, subs, shapes, dtypes) \
                if target.compiled_loops and node.op is not P.COND else None
            if planned is not None:  # one generated function runs the whole loop
                plan, st.source = planned
                st.name, st.fn = plan.name, functools.partial(control.run_compiled, plan, st)
                kernels.append(KernelSource(plan.name, st.source, [], (), "loop", set()))
                kernels.append(KernelSource("_row", ROW_HELPER, [], (), "helper", set()))
            steps.append(st)
        elif node.op is P.KERNEL:
            ks = render(node)
            kernels.append(ks)
            steps.append(Step(ks.name, "kernel", inputs, outputs, shapes, dtypes,
                              symbols=ks.symbols, work=dims_for_runtime(ks.domain),
                              source=ks.source, ir=print_graph(node.regions[0]),
                              fusion=ks.kind, flops=cost[0], nbytes=cost[1],
                              scratch=[(dims_for_runtime(shape), d.np)
                                       for shape, d in ks.scratch]))
            steps[-1].aligned = {inputs[i] for i in ks.aligned}
        else:
            steps.append(Step(f"{node.op.name}_%{node.outputs[0].name}", "library", inputs,
                              outputs, shapes, dtypes, fn=library_call(node), flops=cost[0],
                              nbytes=cost[1]))
    results = [slot[r.name] for r in graph.results]
    _plan_memory(steps, params, results, constants, types)
    for r, p in (aliases or {}).items():
        _write_in_place(steps, results[r], params[p], types)
    program = Program(len(slot) + len(constants), params,
                      [dims_for_runtime(p.type.shape) for p in graph.params], results, steps,
                      constants)
    return program, kernels


def _plan_memory(steps, params, results, constants, types) -> None:
    """Free each intermediate after its last use; let an elementwise kernel write into an
    input that dies there (same type, full domain)."""
    last_use: dict[int, int] = {}
    for i, st in enumerate(steps):
        for s in st.inputs:
            last_use[s] = i
    keep = set(params) | set(results) | set(constants)
    for i, st in enumerate(steps):
        st.frees = sorted(s for s in set(st.inputs) if last_use.get(s) == i and s not in keep)
        st.inplace = [None] * len(st.outputs)
        if st.kind != "kernel" or st.fusion not in ("elementwise", "rows"):
            continue  # BLAS, windows (pools) and gathers read neighbours of what they write
        taken = set()
        for k, out in enumerate(st.outputs):
            for s in st.frees:
                # Only an input the kernel reads exactly where it writes (not through a view
                # or a broadcast) may share the output's buffer.
                if s in taken or st.inputs.count(s) != 1 or s not in st.aligned:
                    continue
                t, u = types.get(s), types[out]
                if t == u and dims_for_runtime(t.shape) == tuple(st.work):
                    st.inplace[k] = s
                    taken.add(s)
                    break


def _flops_of(node):
    """Floating-point operations of one (unfused) node, as a dim polynomial."""
    op = node.op
    if op is P.MATMUL:
        a, b = node.inputs
        k = a.type.shape[-2] if node.attr("transpose_a") else a.type.shape[-1]
        return node.outputs[0].type.size() * k * 2
    if op is P.CONV2D:
        w = node.inputs[1].type.shape
        return node.outputs[0].type.size() * (w[0] * w[1] * w[2] * 2)
    if op.kind in (UNARY, BINARY, SELECT):
        return node.outputs[0].type.size()
    if op.kind in (REDUCE, ARG_REDUCE, WINDOW):
        return node.inputs[0].type.size()
    return 0


def _cost(node):
    """(FLOPs, bytes moved) of a step: compulsory traffic, each input read and each output
    written once."""
    inner = node.regions[0].nodes if node.op is P.KERNEL else (node,)
    flops = 0
    for n in inner:
        flops = _flops_of(n) + flops
    moved = 0
    for v in [x for x in node.inputs if not isinstance(x, Literal)] + list(node.outputs):
        moved = v.type.size() * v.type.dtype.np.itemsize + moved
    return dim_for_runtime(flops), dim_for_runtime(moved)


def _write_in_place(steps, result, param, types) -> None:
    """Let the kernel that computes ``result`` write it into ``param``'s buffer, when that
    is safe: an elementwise or rows kernel reading the parameter at the same index it writes
    (same type, full domain), and no later step reading the parameter."""
    readers = [i for i, st in enumerate(steps) if param in st.inputs]
    for i, st in enumerate(steps):
        if result not in st.outputs:
            continue
        k = st.outputs.index(result)
        ok = (st.kind == "kernel" and st.fusion in ("elementwise", "rows")
              and types[param] == types[result] and st.inputs.count(param) <= 1
              and (param in st.aligned or param not in st.inputs)
              and all(r <= i for r in readers) and param not in st.inplace
              and dims_for_runtime(types[result].shape) == tuple(st.work))
        if ok:
            st.inplace[k] = param
        return
