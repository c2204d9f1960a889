"""simplify: algebraic identities that are exact in IEEE arithmetic, movement-chain folding,
and constant folding of small constants.

Not here on purpose: ``x + 0.0 -> x`` (wrong for x = -0.0), ``x * 0 -> 0`` (wrong for inf
and nan), reassociation (changes rounding).
"""

from __future__ import annotations

import numpy as np

from .. import ops as P
from ..ir import Dense, Literal, Value
from ..ops.base import BINARY
from ..rewrite import apply_rules

FOLD_MAX_ELEMENTS = 1024  # constant folding never creates a constant larger than this


def _is(x, value) -> bool:
    """Is operand x the literal ``value`` (bit-exact, so -0.0 differs from 0.0)?"""
    if not isinstance(x, Literal):
        return False
    v = x.value
    if isinstance(value, bool) or isinstance(v, bool):
        return v is value
    if isinstance(value, float):
        return isinstance(v, float) and v == value and np.signbit(v) == np.signbit(value)
    return v == value


def _same(node, x):
    """Replace the node's output by x when x has exactly the output's type."""
    return (x,) if isinstance(x, Value) and x.type == node.outputs[0].type else None


def identities(node, rw):
    op, ins = node.op, node.inputs
    if op is P.STOP_GRADIENT:  # it has done its work: autodiff runs before the pipeline
        return _same(node, ins[0])
    if op.kind == BINARY:  # x * broadcast_to(2.0) -> x * 2.0 when x has the result's shape
        for k in (0, 1):
            prev, other = rw.producer(ins[k]), ins[1 - k]
            if prev is not None and _is_splat(prev) and isinstance(other, Value) and \
                    other.type.shape == node.outputs[0].type.shape:
                operands = [prev.inputs[0], other] if k == 0 else [other, prev.inputs[0]]
                return rw.emit(op, operands, node.attr_dict, node.loc)
    if op is P.MUL:
        for a, b in (ins, ins[::-1]):
            if _is(b, 1) or _is(b, 1.0):
                return _same(node, a)
    if op is P.DIV and (_is(ins[1], 1.0) or _is(ins[1], 1)):
        return _same(node, ins[0])
    if op is P.ADD:
        for a, b in (ins, ins[::-1]):
            if _is(b, -0.0) or (_is(b, 0) and not isinstance(b.value, float)):
                return _same(node, a)
    if op is P.SUB and (_is(ins[1], 0.0) or (_is(ins[1], 0) and
                                             not isinstance(ins[1].value, float))):
        return _same(node, ins[0])
    if op is P.POW and (_is(ins[1], 1.0) or _is(ins[1], 1)):
        return _same(node, ins[0])
    if op is P.LOGICAL_AND:
        for a, b in (ins, ins[::-1]):
            if _is(b, True):
                return _same(node, a)
    if op is P.SELECT_ and ins[1] == ins[2]:
        return _same(node, ins[1])
    if op in (P.NEG, P.LOGICAL_NOT):
        prev = rw.producer(ins[0])
        if prev is not None and prev.op is op:
            return _same(node, prev.inputs[0])
    if op is P.CAST_ and ins[0].type.dtype is node.attr("to"):
        return _same(node, ins[0])
    return None


def movement_chains(node, rw):
    op, x = node.op, node.inputs[0] if node.inputs else None
    if op in (P.RESHAPE, P.BROADCAST_TO) and isinstance(x, Value) and \
            x.type.shape == node.outputs[0].type.shape:
        return (x,)
    if op is P.TRANSPOSE and node.attr("perm") == tuple(range(len(node.attr("perm")))):
        return (x,)
    prev = rw.producer(x)
    if prev is None:
        return None
    if op is P.RESHAPE and prev.op is P.RESHAPE:
        return rw.emit(P.RESHAPE, [prev.inputs[0]], {"shape": node.attr("shape")}, node.loc)
    if op is P.BROADCAST_TO and prev.op is P.BROADCAST_TO:
        return rw.emit(P.BROADCAST_TO, [prev.inputs[0]], {"shape": node.attr("shape")},
                       node.loc)
    if op is P.TRANSPOSE and prev.op is P.TRANSPOSE:
        p1, p2 = prev.attr("perm"), node.attr("perm")
        perm = tuple(p1[i] for i in p2)
        if perm == tuple(range(len(perm))):
            return (prev.inputs[0],)
        return rw.emit(P.TRANSPOSE, [prev.inputs[0]], {"perm": perm}, node.loc)
    return None


def _constant_input(x, rw):
    """The array of a constant operand (a literal, a constant, a broadcast literal) or None."""
    if isinstance(x, Literal):
        return np.asarray(x.value, x.dtype.np)
    prev = rw.producer(x)
    if prev is not None and prev.op is P.CONSTANT:
        return prev.attr("value").array
    if prev is not None and _is_splat(prev):
        lit = prev.inputs[0]
        return np.broadcast_to(np.asarray(lit.value, lit.dtype.np), x.type.shape)
    return None


def _is_splat(node) -> bool:
    return node.op is P.BROADCAST_TO and isinstance(node.inputs[0], Literal) and \
        node.outputs[0].type.is_static


def fold_constants(node, rw):
    """Evaluate a node whose inputs are all constants, if its result is static and small or
    one value repeated (which becomes a broadcast literal, however large)."""
    if node.op in (P.CONSTANT, P.RANDOM_BITS, P.ALL_REDUCE) or node.regions or \
            len(node.outputs) != 1 or _is_splat(node):
        return None
    out = node.outputs[0].type
    if not out.is_static or _symbolic_attrs(node):
        return None
    arrays = [_constant_input(x, rw) for x in node.inputs]
    if any(a is None for a in arrays):
        return None
    with np.errstate(all="ignore"):
        value = np.asarray(node.op.ref(*arrays, **node.attr_dict))
    flat = value.reshape(-1)
    if value.size > 1 and (flat.view(np.uint8).reshape(value.size, -1) ==
                           flat[:1].view(np.uint8)).all():
        return rw.emit(P.BROADCAST_TO, [Literal(flat[0].item(), out.dtype)],
                       {"shape": out.shape}, node.loc)
    if value.size > FOLD_MAX_ELEMENTS:
        return None
    return rw.emit(P.CONSTANT, [], {"value": Dense(value)}, node.loc)


def _symbolic_attrs(node) -> bool:
    from ..ir import Sym

    def sym(v):
        return isinstance(v, Sym) or (isinstance(v, tuple) and any(sym(x) for x in v))
    return any(sym(v) for _, v in node.attrs)


RULES = [identities, movement_chains, fold_constants]


def simplify(graph):
    """Run the rules to a fixed point (at most 4 sweeps)."""
    for _ in range(4):
        new = apply_rules(graph, RULES)
        if new == graph:
            return new
        graph = new
    return graph
