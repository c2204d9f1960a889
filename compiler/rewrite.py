"""The rewrite driver: rules are small functions run over the nodes in order.

A rule receives a node (with its inputs already rewritten) and a ``Rewriter``; it returns
None (no change) or the operands that replace the node's outputs. New nodes are made with
``rw.emit``, which type-checks them and gives them fresh value numbers. Values that are not
replaced keep their names, so before/after dumps diff cleanly.
"""

from __future__ import annotations

from collections.abc import Callable

from .ir import Graph, Literal, Node, Value, sorted_attrs

Rule = Callable[[Node, "Rewriter"], "tuple | None"]


def _max_number(graph: Graph) -> int:
    n = -1
    for v in list(graph.params) + [o for node in graph.walk() for o in node.outputs]:
        if v.name.isdigit():
            n = max(n, int(v.name))
    return n


class Rewriter:
    """Rebuilds a graph node by node; ``subst`` maps old value names to new operands."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.subst: dict[str, Value | Literal] = {}
        self.nodes: list[Node] = []
        self._producer: dict[str, Node] = {}
        self._next = _max_number(graph) + 1

    def fresh(self, type) -> Value:
        v = Value(str(self._next), type)
        self._next += 1
        return v

    def get(self, x):
        return self.subst.get(x.name, x) if isinstance(x, Value) else x

    def emit(self, op, inputs, attrs=None, loc=None, regions=()) -> tuple[Value, ...]:
        """Append a new, type-checked node; returns its outputs."""
        attrs, out_types = op.typecheck([x.type for x in inputs], attrs or {}, regions)
        node = Node(op, tuple(inputs), tuple(self.fresh(t) for t in out_types),
                    sorted_attrs(attrs), tuple(regions), loc)
        self.keep(node)
        return node.outputs

    def keep(self, node: Node) -> None:
        self.nodes.append(node)
        for o in node.outputs:
            self._producer[o.name] = node

    def producer(self, x) -> Node | None:
        """The node (already in the new graph) that computes operand ``x``, if any."""
        return self._producer.get(x.name) if isinstance(x, Value) else None

    def remapped(self, node: Node) -> Node:
        inputs = tuple(self.get(x) for x in node.inputs)
        if inputs == node.inputs:
            return node
        return Node(node.op, inputs, node.outputs, node.attrs, node.regions, node.loc)

    def finish(self, meta=()) -> Graph:
        results = tuple(self.get(r) for r in self.graph.results)
        return Graph(self.graph.name, self.graph.params, tuple(self.nodes), results,
                     meta or self.graph.meta)


def apply_rules(graph: Graph, rules: list[Rule]) -> Graph:
    """One forward sweep: each node is offered to the rules in order; the first that returns
    a replacement wins. Run again for a fixed point (the pipeline does)."""
    rw = Rewriter(graph)
    for node in graph.nodes:
        node = rw.remapped(node)
        for rule in rules:
            start = len(rw.nodes)
            out = rule(node, rw)
            if out is not None:
                for old, new in zip(node.outputs, out):
                    rw.subst[old.name] = new
                break
            for n in rw.nodes[start:]:  # a rule that declined leaves nothing behind
                for o in n.outputs:
                    rw._producer.pop(o.name, None)
            del rw.nodes[start:]
        else:
            rw.keep(node)
    return rw.finish()
