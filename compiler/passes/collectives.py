"""collectives: start every ``all_reduce`` as early as the program allows, so the data
travels while the rest of the program computes (the runtime waits for it just before the
first step that reads a result: compiler/codegen/program.py).

An all_reduce of many tensors (a train step's gradients, made one layer after another by
the backward pass) is split into buckets in the order the program makes them: a bucket
closes once it holds ``BUCKET_BYTES`` and the next tensor comes from a later node, and
each bucket moves to just after the node that makes its last tensor. The first buckets
then travel while the backward pass computes the rest. Every rank runs the same program,
so every rank starts the same collectives in the same order (as MPI requires)."""

from __future__ import annotations

from ..ir import Graph, Node, Value
from ..ops import ALL_REDUCE
from ..ops.base import CONTROL

BUCKET_BYTES = 1 << 20  # a bucket's least size: each costs one collective's latency
SMALL_BYTES = 256       # results this small move up with the collective they feed


def schedule_collectives(graph: Graph) -> Graph:
    if not any(n.op is ALL_REDUCE for n in graph.nodes):
        return graph
    made: dict[str, Node] = {o.name: n for n in graph.nodes for o in n.outputs}
    at = {o.name: i for i, n in enumerate(graph.nodes) for o in n.outputs}
    small = _small_cone(graph, made)
    key: dict[str, tuple] = {}  # value -> the sort key of the node that makes it
    keyed = []
    for i, node in enumerate(graph.nodes):
        parts = [node]
        if node.op is ALL_REDUCE:
            parts = [Node(node.op, tuple(node.inputs[k] for k in b),
                          tuple(node.outputs[k] for k in b), node.attrs, loc=node.loc)
                     for b in _buckets(node, at)]
        for part in parts:
            if part.op is ALL_REDUCE or id(part) in small:  # just after its last input
                k = max((key[x.name] for x in part.inputs if isinstance(x, Value)
                         and x.name in key), default=(-1,)) + (len(keyed),)
            else:
                k = (i,)
            key.update((o.name, k) for o in part.outputs)
            keyed.append((k, part))
    nodes = tuple(node for _, node in sorted(keyed, key=lambda t: t[0]))
    return Graph(graph.name, graph.params, nodes, graph.results, graph.meta)


def _small_cone(graph: Graph, made: dict) -> set[int]:
    """The nodes that collectives' inputs come from, transitively, as long as each one's
    results are small (a batch's size, a metric's count) and none reads another
    collective's result: they move up with the collective at no cost in memory, so it
    starts at once (a worker's share of the global batch is then summed while the forward
    pass runs)."""
    small, todo = set(), [n for n in graph.nodes if n.op is ALL_REDUCE]
    while todo:
        for x in todo.pop().inputs:
            node = made.get(x.name) if isinstance(x, Value) else None
            if node is not None and id(node) not in small and node.op.kind != CONTROL and \
                    node.op is not ALL_REDUCE and \
                    all(_nbytes(o) <= SMALL_BYTES for o in node.outputs) and \
                    not any(_reduced(y, made) for y in node.inputs):
                small.add(id(node))
                todo.append(node)
    return small


def _reduced(x, made: dict) -> bool:
    """Whether ``x`` is an all_reduce's result (what reads it waits for the collective)."""
    node = made.get(x.name) if isinstance(x, Value) else None
    return node is not None and node.op is ALL_REDUCE


def _buckets(node: Node, at: dict) -> list[list[int]]:
    """The node's operand positions in buckets, in the order their values are made (``at``:
    a value's maker's index)."""
    def position(k):
        x = node.inputs[k]
        return at.get(x.name, -1) if isinstance(x, Value) else -1

    order = sorted(range(len(node.inputs)), key=position)
    buckets, current, size = [], [], 0
    for n, k in enumerate(order):
        current.append(k)
        size += _nbytes(node.inputs[k])
        last = n + 1 == len(order)
        if last or size >= BUCKET_BYTES and position(order[n + 1]) != position(k):
            buckets.append(current)
            current, size = [], 0
    return buckets


def _nbytes(x) -> int:
    """A tensor's size in bytes; one of a size known only at run time counts as a bucket."""
    t = x.type
    return t.size() * t.dtype.np.itemsize if t.is_static else BUCKET_BYTES
