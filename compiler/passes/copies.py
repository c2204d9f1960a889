"""Copy kernels: a movement op that fusion left on its own runs as a kernel of its own where
the target wants one — on a device everywhere (data stays there), on the CPU inside loop
bodies (so the loop can run as one compiled function); elsewhere the CPU leaves it to numpy.
Target-aware, so it runs after the pipeline, before lowering; codegen takes no fusion
decision of its own."""

from __future__ import annotations

from .. import ops as P
from ..ir import Graph, Node
from ..ops.base import CONTROL
from .fuse import copy_kernel

# ops a device runs as copy kernels: movement, gathers, scatter-add and arg-reductions
DEVICE_COPIES = P.COPIES | {P.SCATTER_ADD, P.ARGMAX, P.ARGMIN}


def add_copy_kernels(graph: Graph, everywhere: bool, in_loop: bool = False) -> Graph:
    """``graph`` with its lone movement ops wrapped in copy kernels: all of them when
    ``everywhere``, else those inside while/scan bodies (cond branches inherit)."""
    nodes, changed = [], False
    for node in graph.nodes:
        if node.op.kind == CONTROL:
            inner = in_loop or node.op is not P.COND
            regions = tuple(add_copy_kernels(r, everywhere, inner) for r in node.regions)
            if any(a is not b for a, b in zip(regions, node.regions)):
                node = Node(node.op, node.inputs, node.outputs, node.attrs, regions, node.loc)
                changed = True
        elif node.op in DEVICE_COPIES and (everywhere or in_loop and node.op in P.COPIES):
            node = copy_kernel(node, f"c{node.outputs[0].name}")
            changed = True
        nodes.append(node)
    return Graph(graph.name, graph.params, tuple(nodes), graph.results, graph.meta) \
        if changed else graph
