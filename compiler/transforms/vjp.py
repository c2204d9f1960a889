"""Reverse-mode automatic differentiation on the IR.

One algorithm, ``backward``, serves every caller. It walks recorded applications of ops (a
graph's nodes, or what a ``GradientTape`` saw) in reverse, calls each op's ``vjp`` rule, sums
the cotangents of values used more than once, sums broadcast gradients back to each input's
shape, and gives no gradient to integer and boolean values. Rules emit ops through an
``Emitter``, so the same rules build a new graph (``vjp_graph``, on ``Value`` handles) or run
eagerly and are traced into an enclosing function (the framework's emitter, on tensors) —
which is also what makes higher derivatives work: the backward ops are themselves recorded.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import dtypes as dt
from .. import ops as P
from ..builder import GraphBuilder
from ..errors import GradientError, KilnError
from ..ir import Graph, Literal, TensorType, Value


class Site(NamedTuple):
    """What a gradient rule sees of one application: its operands, its (first) output, its
    canonical attributes, and which operands want a gradient."""

    inputs: tuple
    output: object
    attrs: dict
    needs: tuple


class Record(NamedTuple):
    """One op application. ``rule`` is the op's ``vjp`` (or a custom gradient's callable,
    which gets the cotangents of all outputs: ``rule(e, site, gs)``); ``name`` names it in
    errors."""

    name: str
    rule: object
    inputs: tuple
    outputs: tuple
    attrs: dict
    custom: bool = False


class Emitter:
    """How rules make ops. Subclasses define ``emit`` (op name, operands, attrs -> one handle
    or a tuple), ``type`` (handle -> TensorType) and ``key`` (handle -> hashable identity)."""

    def emit(self, op, inputs, attrs, regions=()):
        raise NotImplementedError

    def region_builder(self) -> GraphBuilder:
        """A builder for a region of an op the rule emits (control flow's gradients),
        numbering its values apart from the graph being built."""
        raise NotImplementedError

    def type(self, h) -> TensorType:
        raise NotImplementedError

    def pullback(self, graph: Graph, wrt, cts) -> Graph:
        """A region's pullback (control flow's gradients differentiate their regions; the
        rules get it from here, so ops import no transform)."""
        return pullback(graph, wrt, cts)

    def key(self, h):
        raise NotImplementedError

    def __call__(self, name: str, *inputs, **attrs):
        return self.emit(P.REGISTRY[name], list(inputs), attrs)

    def lit(self, value, like) -> Literal:
        """A scalar of ``like``'s dtype (``like`` a handle, a Literal or a DType)."""
        dtype = like if isinstance(like, dt.DType) else (
            like.dtype if isinstance(like, Literal) else self.type(like).dtype)
        return Literal(value, dtype)

    def sum_to(self, g, t: TensorType):
        """Sum a broadcast gradient back to shape ``t.shape``."""
        gs = self.type(g).shape
        if gs == t.shape:
            return g
        lead = len(gs) - len(t.shape)
        axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(t.shape)
                                          if d == 1 and gs[lead + i] != 1)
        if axes:
            g = self("reduce_sum", g, axes=axes, keepdims=False)
        return self("reshape", g, shape=t.shape) if self.type(g).shape != t.shape else g

    def zeros(self, t: TensorType):
        return self("broadcast_to", Literal(0, t.dtype), shape=t.shape)

    def ones(self, t: TensorType):
        return self("broadcast_to", Literal(1, t.dtype), shape=t.shape)


def differentiable(t: TensorType) -> bool:
    return t.dtype.is_float


def _add_all(e: Emitter, parts: list):
    total = parts[0]
    for p in parts[1:]:
        total = e("add", total, p)
    return total


def backward(e: Emitter, records, seeds, sources) -> list:
    """Cotangents of ``sources`` (handles) given ``seeds`` [(handle, cotangent)] of later
    values, through ``records`` (in execution order). None where no path connects."""
    reach = {e.key(s) for s in sources if not isinstance(s, Literal)}
    live = []
    for r in records:  # forward: the records that depend on a source
        if any(not isinstance(x, Literal) and e.key(x) in reach for x in r.inputs):
            live.append(r)
            reach.update(e.key(o) for o in r.outputs)
    parts: dict = {}
    for h, g in seeds:
        if g is not None and e.key(h) in reach:
            parts.setdefault(e.key(h), []).append(g)

    def total(h):
        p = parts.pop(e.key(h), None)
        return None if p is None else _add_all(e, p)

    for r in reversed(live):
        gs = [total(o) for o in r.outputs]
        if all(g is None for g in gs):
            continue
        needs = tuple(not isinstance(x, Literal) and e.key(x) in reach
                      and differentiable(e.type(x)) for x in r.inputs)
        if not any(needs):
            continue
        site = Site(tuple(r.inputs), r.outputs[0], r.attrs, needs)
        if r.custom:
            gs = [e.zeros(e.type(o)) if g is None else g for o, g in zip(r.outputs, gs)]
            grads = r.rule(e, site, gs)
        elif getattr(r.rule, "all_cotangents", False):  # control flow: None where no path
            grads = r.rule(e, site, gs)
        elif not callable(r.rule):
            continue  # declared without gradient: nothing flows
        else:
            try:
                grads = r.rule(e, site, gs[0])
            except KilnError:
                raise
            except Exception as exc:  # a rule bug must still name the op
                raise GradientError(r.name, f"gradient rule failed: {exc!r}") from exc
        if len(grads) != len(r.inputs):
            raise GradientError(r.name, f"gradient rule returned {len(grads)} gradients for "
                                        f"{len(r.inputs)} inputs")
        for x, need, gx in zip(r.inputs, needs, grads):
            if need and gx is not None:
                parts.setdefault(e.key(x), []).append(e.sum_to(gx, e.type(x)))
    out = []
    for s in sources:
        p = parts.get(e.key(s)) if not isinstance(s, Literal) else None
        out.append(None if p is None else _add_all(e, p))
    return out


# ----------------------------------------------------------------------------------------------
# Graph -> Graph


class GraphEmitter(Emitter):
    def __init__(self, builder: GraphBuilder):
        self.builder = builder

    def emit(self, op, inputs, attrs, regions=()):
        outs = self.builder.emit(op, inputs, attrs, regions=regions)
        return outs if len(outs) > 1 else outs[0]

    def region_builder(self):
        return self.builder.region()

    def type(self, h):
        return h.type

    def key(self, h):
        return h


def node_attrs(node) -> dict:
    """A node's attributes as its gradient rule sees them: control flow adds its regions."""
    return node.attr_dict | {"regions": node.regions} if node.regions else node.attr_dict


def vjp_graph(graph: Graph, wrt=None, unconnected: str = "none", cts=None,
              grads_only: bool = False) -> Graph:
    """The pullback of ``graph``: parameters are the original ones followed by one cotangent
    per result (``ct0``, ``ct1``...; only for the results indexed by ``cts`` when given);
    results are the original results (unless ``grads_only``) followed by the gradient of
    each parameter in ``wrt`` (indices, default: every float parameter).
    ``unconnected="zero"`` gives zeros instead of failing for unconnected parameters."""
    if any(n.op is P.KERNEL for n in graph.walk()):
        raise GradientError("vjp", "graphs with fused kernels cannot be differentiated; "
                                   "differentiate before fusion")
    b = GraphBuilder(graph.name + "_vjp")
    for p in graph.params:
        b._names.add(p.name)
    b.params.extend(graph.params)
    for n in graph.walk():
        b._names.update(o.name for o in n.outputs)
        b._names.update(p.name for r in n.regions for p in r.params)
    b.nodes.extend(graph.nodes)
    cts = range(len(graph.results)) if cts is None else cts
    ct_params = [(graph.results[i], b.param(f"ct{i}", graph.results[i].type)) for i in cts]
    wrt = [i for i, p in enumerate(graph.params) if differentiable(p.type)] if wrt is None \
        else list(wrt)
    e = GraphEmitter(b)
    records = [Record(n.op.name, n.op.vjp, n.inputs, n.outputs, node_attrs(n))
               for n in graph.nodes]
    seeds = [(r, c) for r, c in ct_params if differentiable(r.type)]
    grads = backward(e, records, seeds, [graph.params[i] for i in wrt])
    results = [] if grads_only else list(graph.results)
    for i, g in zip(wrt, grads):
        p = graph.params[i]
        if g is None:
            if unconnected != "zero":
                raise GradientError("vjp", f"result does not depend on parameter %{p.name}; "
                                           "pass unconnected='zero' for zeros")
            g = e.zeros(p.type)
        if not isinstance(g, Value):
            g = e("broadcast_to", g, shape=p.type.shape)
        results.append(g)
    return b.build(results)


def pullback(graph: Graph, wrt, cts) -> Graph:
    """A region's pullback as a region: parameters are ``graph``'s followed by a cotangent for
    each result indexed by ``cts``; results are the gradients of the parameters indexed by
    ``wrt`` (zeros where unconnected)."""
    return vjp_graph(graph, wrt, "zero", cts=cts, grads_only=True)
