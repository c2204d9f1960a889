"""``GraphBuilder``: the one way to make nodes. Every node passes its op's attribute check,
canonicalization and type rule as it is built, so a built graph always verifies."""

from __future__ import annotations

import itertools
import re

from .ir import Graph, Literal, Loc, Node, Operand, TensorType, Value, sorted_attrs


def _ident(name: str) -> str:
    name = re.sub(r"\W", "_", name) or "arg"
    return name if not name[0].isdigit() else "_" + name


class GraphBuilder:
    """Builds one graph. ``region()`` gives a child builder that shares the value numbering,
    so names stay unique across the whole function."""

    def __init__(self, name: str, _parent: GraphBuilder | None = None):
        self.name = name
        self.params: list[Value] = []
        self.nodes: list[Node] = []
        self._counter = _parent._counter if _parent else itertools.count()
        self._names: set[str] = _parent._names if _parent else set()

    def param(self, name: str, type: TensorType) -> Value:
        base = _ident(name)
        unique, k = base, 1
        while unique in self._names:
            unique, k = f"{base}_{k}", k + 1
        self._names.add(unique)
        v = Value(unique, type)
        self.params.append(v)
        return v

    def emit(self, op, inputs: list[Operand], attrs: dict | None = None, loc: Loc | None = None,
             regions: tuple[Graph, ...] = ()) -> tuple[Value, ...]:
        """Append ``op(inputs)``; returns its result values. Raises the op's typed errors."""
        attrs, out_types = op.typecheck([x.type for x in inputs], attrs or {}, regions)
        outputs = []
        for t in out_types:
            name = str(next(self._counter))
            while name in self._names:
                name = str(next(self._counter))
            self._names.add(name)
            outputs.append(Value(name, t))
        node = Node(op, tuple(inputs), tuple(outputs), sorted_attrs(attrs), tuple(regions), loc)
        self.nodes.append(node)
        return node.outputs

    def emit1(self, op, inputs, attrs=None, loc=None) -> Value:
        return self.emit(op, inputs, attrs, loc)[0]

    def region(self, name: str = "region") -> GraphBuilder:
        return GraphBuilder(name, self)

    def build(self, results: list[Value], meta: tuple = ()) -> Graph:
        for r in results:
            if isinstance(r, Literal):
                raise TypeError("graph results must be values, not literals")
        return Graph(self.name, tuple(self.params), tuple(self.nodes), tuple(results), meta)


def inline(b: GraphBuilder, graph: Graph, args) -> list[Operand]:
    """Append ``graph``'s nodes to ``b`` with its parameters bound to ``args``; returns its
    results. Values get fresh names in ``b`` (nested regions too), so one graph may be
    inlined several times."""
    env: dict[str, Operand] = {p.name: a for p, a in zip(graph.params, args)}

    def get(x):
        return env.get(x.name, x) if isinstance(x, Value) else x

    for n in graph.nodes:
        regions = tuple(copy_graph(r, b) for r in n.regions)
        outs = b.emit(n.op, [get(x) for x in n.inputs], dict(n.attrs), n.loc, regions)
        env.update({o.name: v for o, v in zip(n.outputs, outs)})
    return [get(r) for r in graph.results]


def copy_graph(graph: Graph, parent: GraphBuilder) -> Graph:
    """``graph`` as a region of ``parent``'s graph: the same computation, renamed apart."""
    rb = parent.region(graph.name)
    params = [rb.param(p.name, p.type) for p in graph.params]
    return rb.build(inline(rb, graph, params), graph.meta)
