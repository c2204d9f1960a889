"""``verify(graph)``: SSA order and scoping, unique names, registered ops, canonical
attributes, and every type rule re-run. Passes must leave graphs that verify."""

from __future__ import annotations

from .errors import KilnError, VerifyError
from .ir import Graph, Literal, Node, Value, sorted_attrs
from .ops import REGISTRY


def _where(node: Node) -> str:
    outs = ", ".join(f"%{v.name}" for v in node.outputs)
    return f"{outs} = {node.op.name}" + (f" ({node.loc})" if node.loc else "")


def verify(graph: Graph) -> Graph:
    """Check ``graph``; return it unchanged, or raise VerifyError naming the node."""
    _verify(graph, [], set())
    return graph


def _verify(g: Graph, outer: list[dict], names: set[str]) -> None:
    scope: dict[str, Value] = {}
    scopes = outer + [scope]

    def define(v: Value, what: str):
        if v.name in names:
            raise VerifyError(what, f"value %{v.name} is defined twice")
        names.add(v.name)
        scope[v.name] = v

    def check_use(x, what: str):
        if isinstance(x, Literal):
            return
        if not isinstance(x, Value):
            raise VerifyError(what, f"operand {x!r} is not a value or literal")
        for s in reversed(scopes):
            if x.name in s:
                if s[x.name] != x:
                    raise VerifyError(what, f"%{x.name} is used as {x.type} but defined as "
                                            f"{s[x.name].type}")
                return
        raise VerifyError(what, f"%{x.name} is used before it is defined")

    for p in g.params:
        define(p, f"parameter %{p.name} of @{g.name}")
    for node in g.nodes:
        where = _where(node)
        if REGISTRY.get(node.op.name) is not node.op:
            raise VerifyError(where, f"op {node.op.name!r} is not registered")
        for x in node.inputs:
            check_use(x, where)
        for r in node.regions:
            _verify(r, scopes, names)
        try:
            attrs, out_types = node.op.typecheck([x.type for x in node.inputs],
                                                 dict(node.attrs), node.regions)
            if sorted_attrs(attrs) != node.attrs:
                raise VerifyError(where, f"attributes are not canonical: {dict(node.attrs)}")
        except VerifyError:
            raise
        except KilnError as e:
            raise VerifyError(where, f"type rule fails: {e}") from None
        got = tuple(v.type for v in node.outputs)
        if out_types != got:
            raise VerifyError(where, f"result types {list(map(str, got))} differ from the type "
                                     f"rule's {list(map(str, out_types))}")
        for v in node.outputs:
            define(v, where)
    for r in g.results:
        check_use(r, f"results of @{g.name}")
