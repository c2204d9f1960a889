"""Passes inside control flow: every pass runs on the regions of ``cond``, ``while_loop`` and
``scan`` (innermost first) before the graph around them, so loop bodies are simplified and
fused like any function. Regions are closed (they read only their parameters), so a pass
sees each one as a graph of its own; afterwards values it created are renamed apart from the
rest of the function, and kernels fused inside a region take the region's name as a prefix,
so every kernel of a program has its own name."""

from __future__ import annotations

from ..ir import Graph, Literal, Node, Value
from ..ops.base import CONTROL, FUSION


def in_regions(fn):
    """The pass ``fn`` applied inside control-flow regions too."""
    def run(graph: Graph) -> Graph:
        if any(n.op.kind == CONTROL for n in graph.nodes):
            graph = _map_regions(graph, run)
        return fn(graph)
    run.__name__ = getattr(fn, "__name__", "pass")
    return run


def _names(graph: Graph) -> set[str]:
    out = {p.name for p in graph.params}
    for n in graph.nodes:
        out.update(o.name for o in n.outputs)
        for r in n.regions:
            out |= _names(r)
    return out


def _map_regions(graph: Graph, fn) -> Graph:
    taken = {p.name for p in graph.params} | {o.name for n in graph.nodes for o in n.outputs}
    numbers = [int(x) for x in _names(graph) if x.isdigit()]
    counter = iter(range(max(numbers, default=-1) + 1, 1 << 62))
    nodes = []
    for node in graph.nodes:
        if node.op.kind != CONTROL:
            nodes.append(node)
            continue
        regions = []
        for k, r in enumerate(node.regions):
            new = fn(r)
            clash = {x for x in _names(new) if x in taken}
            mapping = {x: str(next(counter)) for x in sorted(clash)}
            prefix = f"c{node.outputs[0].name if node.outputs else ''}r{k}_"
            new = _rename(new, mapping, prefix)
            taken |= _names(new)
            regions.append(new)
        nodes.append(Node(node.op, node.inputs, node.outputs, node.attrs, tuple(regions),
                          node.loc))
    return Graph(graph.name, graph.params, tuple(nodes), graph.results, graph.meta)


def _rename(graph: Graph, mapping: dict, kernel_prefix: str) -> Graph:
    def v(x):
        return Value(mapping[x.name], x.type) if isinstance(x, Value) and x.name in mapping \
            else x

    nodes = []
    for n in graph.nodes:
        attrs = n.attrs
        if n.op.kind == FUSION and not str(n.attr("name")).startswith(kernel_prefix):
            attrs = tuple((k, kernel_prefix + val if k == "name" else val) for k, val in attrs)
        regions = tuple(_rename(r, mapping, "") for r in n.regions)
        nodes.append(Node(n.op, tuple(v(x) for x in n.inputs), tuple(v(o) for o in n.outputs),
                          attrs, regions, n.loc))
    return Graph(graph.name, tuple(v(p) for p in graph.params), tuple(nodes),
                 tuple(v(r) for r in graph.results), graph.meta)


def licm(graph: Graph) -> Graph:
    """Loop-invariant code motion: a node of a ``while_loop`` or ``scan`` region that reads
    only loop-invariant operands (and literals) is computed once, before the loop, and
    passed in as one more invariant operand. Broadcasts stay (they are free inside a fused
    kernel and would only take memory outside); ``cond`` branches keep their work (it runs
    only when taken)."""
    from .. import ops as P
    from ..rewrite import Rewriter
    if not any(n.op in (P.WHILE_LOOP, P.SCAN) for n in graph.nodes):
        return graph
    rw = Rewriter(graph)
    taken = _names(graph)
    for node in graph.nodes:
        node = rw.remapped(node)
        if node.op not in (P.WHILE_LOOP, P.SCAN):
            rw.keep(node)
            continue
        first = node.attr("n_carry") + (node.attr("n_elems") if node.op is P.SCAN else 0)
        hoisted: list = []          # (region index, inner value name, outer operand)
        kept_nodes = []
        for ri, r in enumerate(node.regions):
            outer = {p.name: node.inputs[j] for j, p in enumerate(r.params) if j >= first}
            kept = []
            for n in r.nodes:
                movable = not n.regions and n.op is not P.BROADCAST_TO and all(
                    isinstance(x, Literal) or x.name in outer for x in n.inputs)
                if not movable:
                    kept.append(n)
                    continue
                outs = rw.emit(n.op, [x if isinstance(x, Literal) else outer[x.name]
                                      for x in n.inputs], dict(n.attrs), n.loc)
                for o, v in zip(n.outputs, outs):
                    outer[o.name] = v
                    hoisted.append((ri, o.name, v))
            kept_nodes.append(kept)
        if not hoisted:
            rw.keep(node)
            continue
        regions = []
        for ri, r in enumerate(node.regions):
            params, subst = list(r.params), {}
            for owner, inner, v in hoisted:
                name = f"inv{v.name}_{ri}"
                while name in taken:
                    name += "_"
                taken.add(name)
                p = Value(name, v.type)
                params.append(p)
                if owner == ri:
                    subst[inner] = p
            regions.append(_substitute(Graph(r.name, tuple(params), tuple(kept_nodes[ri]),
                                             r.results, r.meta), subst))
        rw.keep(Node(node.op, node.inputs + tuple(v for _, _, v in hoisted), node.outputs,
                     node.attrs, tuple(regions), node.loc))
    return rw.finish()


def _substitute(graph: Graph, subst: dict) -> Graph:
    def v(x):
        return subst.get(x.name, x) if isinstance(x, Value) else x
    nodes = tuple(Node(n.op, tuple(v(x) for x in n.inputs), n.outputs, n.attrs, n.regions,
                       n.loc) for n in graph.nodes)
    return Graph(graph.name, graph.params, nodes, tuple(v(r) for r in graph.results),
                 graph.meta)
