"""layout: fold a transpose of the last two dims into the matmul that reads it."""

from __future__ import annotations

from .. import ops as P
from ..rewrite import apply_rules


def fold_transpose_into_matmul(node, rw):
    if node.op is not P.MATMUL:
        return None
    ins, flags = list(node.inputs), {"transpose_a": node.attr("transpose_a"),
                                     "transpose_b": node.attr("transpose_b")}
    changed = False
    for i, flag in ((0, "transpose_a"), (1, "transpose_b")):
        prev = rw.producer(ins[i])
        if prev is not None and prev.op is P.TRANSPOSE:
            perm = prev.attr("perm")
            r = len(perm)
            if perm == tuple(range(r - 2)) + (r - 1, r - 2):
                ins[i], flags[flag] = prev.inputs[0], not flags[flag]
                changed = True
    return rw.emit(P.MATMUL, ins, flags, node.loc) if changed else None


def layout(graph):
    return apply_rules(graph, [fold_transpose_into_matmul])
