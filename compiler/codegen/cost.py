"""The cost model of a program's steps: FLOPs and compulsory bytes, as dim polynomials the
runtime evaluates for each call (profiles report GFLOP/s and GB/s from them)."""

from __future__ import annotations

from .. import ops as P
from ..ir import Literal
from ..ops.base import ARG_REDUCE, BINARY, REDUCE, SELECT, UNARY, WINDOW
from .dims import dim_for_runtime


def flops_of(node):
    """Floating-point operations of one (unfused) node, as a dim polynomial."""
    op = node.op
    if op is P.MATMUL:
        a, b = node.inputs
        k = a.type.shape[-2] if node.attr("transpose_a") else a.type.shape[-1]
        return node.outputs[0].type.size() * k * 2
    if op is P.CONV2D:
        w = node.inputs[1].type.shape
        return node.outputs[0].type.size() * (w[0] * w[1] * w[2] * 2)
    if op is P.CONV2D_BACKPROP_FILTER:  # each filter element: a sum over the output pixels
        g = node.inputs[1].type.shape
        return node.outputs[0].type.size() * (g[0] * g[1] * g[2] * 2)
    if op.kind in (UNARY, BINARY, SELECT):
        return node.outputs[0].type.size()
    if op.kind in (REDUCE, ARG_REDUCE, WINDOW):
        return node.inputs[0].type.size()
    return 0


def step_cost(node):
    """(FLOPs, bytes moved) of a step: compulsory traffic, each input read and each output
    written once."""
    inner = node.regions[0].nodes if node.op is P.KERNEL else (node,)
    flops = 0
    for n in inner:
        flops = flops_of(n) + flops
    moved = 0
    for v in [x for x in node.inputs if not isinstance(x, Literal)] + list(node.outputs):
        moved = v.type.size() * v.type.dtype.np.itemsize + moved
    return dim_for_runtime(flops), dim_for_runtime(moved)
