"""cse: nodes with the same op, operands and attributes compute the same values (every op is
pure; random bits depend only on their key), so later copies reuse the first."""

from __future__ import annotations

from ..rewrite import Rewriter


def cse(graph):
    rw = Rewriter(graph)
    seen: dict = {}
    for node in graph.nodes:
        node = rw.remapped(node)
        if node.regions:
            rw.keep(node)
            continue
        try:
            key = (node.op, node.inputs, node.attrs, tuple(v.type for v in node.outputs))
            hash(key)
        except TypeError:
            rw.keep(node)
            continue
        first = seen.get(key)
        if first is None:
            seen[key] = node
            rw.keep(node)
        else:
            for old, new in zip(node.outputs, first.outputs):
                rw.subst[old.name] = new
    return rw.finish()
