"""dce: drop nodes none of whose results are used (every op is pure; variable updates are
graph results, so they stay)."""

from __future__ import annotations

from ..ir import Graph, Value


def dce(graph: Graph) -> Graph:
    live = {r.name for r in graph.results}
    kept = []
    for node in reversed(graph.nodes):
        if any(o.name in live for o in node.outputs):
            kept.append(node)
            live |= {x.name for x in node.inputs if isinstance(x, Value)}
            live |= {x.name for r in node.regions for n in r.walk() for x in n.inputs
                     if isinstance(x, Value)}
    return Graph(graph.name, graph.params, tuple(reversed(kept)), graph.results, graph.meta)
